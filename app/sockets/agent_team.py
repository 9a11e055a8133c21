"""``/agent`` events for working together: transfer, inviting a second agent, the team room,
a supervisor's watch and whisper. Mixed into ``AgentNamespace``; the rules are in
``app.services.chat_team``.

Events in (ack in brackets): ``transfer {conversation_id, to_agent_id | to_group_id, note?}``
[``{ok, conversation_id, status}``], ``invite_agent {conversation_id, agent_id}`` [``{ok}``],
``accept_invite {conversation_id}`` [``{conversation_id, messages}``], ``leave {conversation_id}``
[``{ok}``], ``watch {conversation_id}`` [``{conversation_id, messages}``], ``unwatch
{conversation_id}`` [``{ok}``], ``whisper {conversation_id, client_msg_id, text}`` [``{id,
client_msg_id, created_at}``], ``team_message {client_msg_id, text}`` [the message],
``team_history {last_id?}`` [``{messages}``]. Events out: ``transferred``, ``chat_invited``,
``participant_joined``, ``participant_left``, ``message`` (whispers, transfer notes),
``team_message``, and the queue's ``chat_offer``/``queue_update``; to the visitor: ``transferred``,
``agent_joined``, the transfer's system message and ``queue``.
"""

from __future__ import annotations

from flask import current_app, g, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_socketio import join_room, leave_room

from app.extensions import db, socketio
from app.models.chat import Conversation, SenderType
from app.security import SUPERVISE
from app.services import chat, chat_team, routing, tracking
from app.services.errors import AccessDenied
from app.sockets import deliver
from app.sockets.rooms import TEAM_ROOM, agent_room, conversation_room, visitor_room

AGENT_NS = "/agent"


def _payload(data: object) -> dict:
    return data if isinstance(data, dict) else {}


def _include_ip() -> bool:
    return not current_app.config.get("TRACKING_TRUNCATE_IP", True)


def move_local(from_room: str, to_room: str, join: bool) -> None:
    """Make the connections of *from_room* that this process serves join (or leave) *to_room*.

    Other processes' connections follow when their console reacts to the event it receives
    (``resume``/``accept_invite`` join, ``leave`` leaves), so nothing depends on this process."""
    server = socketio.server
    for sid, _eio_sid in list(server.manager.get_participants(AGENT_NS, from_room)):
        (join_room if join else leave_room)(to_room, sid=sid, namespace=AGENT_NS)


def _join(conversation: Conversation, who: chat_team.Member, role: str) -> dict:
    """This connection joins the conversation's room; the others there hear who came in. Returns the
    ack: every message of the conversation (notes and whispers included)."""
    room = conversation_room(conversation.id)
    join_room(room)
    socketio.emit("participant_joined", {"conversation_id": conversation.id, "name": who.name, "role": role},
                  to=room, namespace=AGENT_NS, skip_sid=request.sid)
    messages = chat.conversation_messages_after(db.session, conversation.id)
    return {"conversation_id": conversation.id, "messages": [chat.message_payload(m) for m in messages]}


class TeamEvents:
    """Handlers ``on_<event>`` for the team events (see docs/socket-protocol.md)."""

    def _member(self) -> chat_team.Member:
        g.user = current_user._get_current_object()  # what FAB's permission checks read
        if not current_user.is_authenticated:
            raise AccessDenied({"_": [str(_l("You are not signed in."))]})
        return chat_team.member(db.session, current_user.id,
                                supervisor=bool(current_app.appbuilder.sm.can(SUPERVISE)))

    # --- transfer ---------------------------------------------------------------------------

    def on_transfer(self, data=None):  # noqa: ANN001, ANN201
        data = _payload(data)
        who = self._member()
        result = chat_team.transfer(db.session, who, data.get("conversation_id"), data.get("to_agent_id"),
                                    data.get("to_group_id"), data.get("note"))
        conversation = result.conversation
        room = conversation_room(conversation.id)
        if result.to_agent is not None:
            move_local(agent_room(result.to_agent.id), room, join=True)
        for message in result.messages:
            payload = chat.message_payload(message)
            socketio.emit("message", payload, to=room, namespace=AGENT_NS)
            if message.sender_type == SenderType.system:
                socketio.emit("message", payload, to=visitor_room(conversation.visitor_id), namespace="/visitor")
        socketio.emit("transferred", {"conversation_id": conversation.id, "name": result.name},
                      to=visitor_room(conversation.visitor_id), namespace="/visitor")
        announcement = {"conversation_id": conversation.id, "from_name": who.name, "note": result.transfer.note,
                        "name": result.name, "status": conversation.status.value,
                        "to_agent_id": result.to_agent.id if result.to_agent else None,
                        "to_group_id": result.to_group.id if result.to_group else None,
                        "visitor": tracking.visitor_payload(conversation.visitor, include_ip=_include_ip())}
        recipients = [room] + ([agent_room(result.to_agent.id)] if result.to_agent else [])
        socketio.emit("transferred", announcement, to=recipients, namespace=AGENT_NS)
        # The queue moves: a group transfer waits (or is offered) in FIFO order, and the agent who
        # handed the chat on has a free slot.
        emits = routing.drain(db.session, conversation.site_id, include_ip=_include_ip())
        changed = [conversation.id] + [e.payload["conversation_id"] for e in emits if e.event == "chat_offer"]
        deliver(emits + routing.queue_emits(db.session, conversation.site_id, changed=changed))
        if result.from_agent is not None and result.from_agent != result.to_agent:
            move_local(agent_room(result.from_agent.id), room, join=False)
            if not chat_team.takes_part(db.session, who, conversation.id):
                leave_room(room)
        return {"ok": True, "conversation_id": conversation.id, "status": conversation.status.value}

    # --- a second agent ---------------------------------------------------------------------

    def on_invite_agent(self, data=None):  # noqa: ANN001, ANN201
        data = _payload(data)
        who = self._member()
        participant, agent = chat_team.invite_agent(db.session, who, data.get("conversation_id"),
                                                    data.get("agent_id"))
        socketio.emit("chat_invited", {"conversation_id": participant.conversation_id, "by_name": who.name},
                      to=agent_room(agent.id), namespace=AGENT_NS)
        return {"ok": True}

    def on_accept_invite(self, data=None):  # noqa: ANN001, ANN201
        data = _payload(data)
        who = self._member()
        conversation = chat_team.accept_invite(db.session, who, data.get("conversation_id"))
        socketio.emit("agent_joined", {"conversation_id": conversation.id, "name": who.name},
                      to=visitor_room(conversation.visitor_id), namespace="/visitor")
        ack = _join(conversation, who, "invited")
        if who.agent is not None:
            joined = routing.joined_emits(db.session, conversation, who.agent)
            deliver(joined)
            ack["messages"] += [e.payload for e in joined if e.namespace == AGENT_NS]
        return ack

    def on_leave(self, data=None):  # noqa: ANN001, ANN201
        data = _payload(data)
        who = self._member()
        participant = chat_team.leave(db.session, who, data.get("conversation_id"))
        room = conversation_room(data["conversation_id"])
        leave_room(room)
        if participant is not None:
            socketio.emit("participant_left", {"conversation_id": participant.conversation_id, "name": who.name,
                                               "role": participant.role.value}, to=room, namespace=AGENT_NS)
        return {"ok": True}

    # --- supervisors ------------------------------------------------------------------------

    def on_watch(self, data=None):  # noqa: ANN001, ANN201
        data = _payload(data)
        who = self._member()
        conversation = chat_team.watch(db.session, who, data.get("conversation_id"))
        return _join(conversation, who, "watcher")

    def on_unwatch(self, data=None):  # noqa: ANN001, ANN201
        data = _payload(data)
        who = self._member()
        participant = chat_team.unwatch(db.session, who, data.get("conversation_id"))
        room = conversation_room(data["conversation_id"])
        if not chat_team.takes_part(db.session, who, data["conversation_id"]):
            leave_room(room)
        if participant is not None:
            socketio.emit("participant_left", {"conversation_id": participant.conversation_id, "name": who.name,
                                               "role": participant.role.value}, to=room, namespace=AGENT_NS)
        return {"ok": True}

    def on_whisper(self, data=None):  # noqa: ANN001, ANN201
        data = _payload(data)
        who = self._member()
        message, created = chat_team.whisper(db.session, who, data.get("conversation_id"),
                                             data.get("client_msg_id"), data.get("text"))
        payload = chat_team.whisper_payload(message)
        if created:
            # Only /agent rooms: the visitor's connections are never in them.
            conversation = db.session.get(Conversation, message.conversation_id)
            recipients = [conversation_room(conversation.id)] + (
                [agent_room(conversation.agent_id)] if conversation.agent_id else [])
            socketio.emit("message", payload, to=recipients, namespace=AGENT_NS, skip_sid=request.sid)
        return {"id": message.id, "client_msg_id": message.client_msg_id, "created_at": payload["created_at"]}

    # --- team room --------------------------------------------------------------------------

    def on_team_message(self, data=None):  # noqa: ANN001, ANN201
        data = _payload(data)
        who = self._member()
        message, created = chat_team.post_team_message(db.session, who, data.get("client_msg_id"),
                                                       data.get("text"))
        join_room(TEAM_ROOM)
        payload = chat_team.team_message_payload(message)
        if created:
            socketio.emit("team_message", payload, to=TEAM_ROOM, namespace=AGENT_NS, skip_sid=request.sid)
        return payload

    def on_team_history(self, data=None):  # noqa: ANN001, ANN201
        data = _payload(data)
        self._member()
        messages = chat_team.team_history(db.session, data.get("last_id"))
        join_room(TEAM_ROOM)
        return {"messages": [chat_team.team_message_payload(m) for m in messages]}
