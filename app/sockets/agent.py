"""``/agent``: the agent console's namespace, for signed-in users with the chat permission and an
active agent profile (or the supervise permission). Thin: validate, call the services, emit.

Events in: ``status {status}``, ``preferences {send_key}`` (ack the agent's preferences), ``ping``,
``queue_list``, ``accept {conversation_id}`` (ack: the conversation's messages), ``decline
{conversation_id}``, ``message {conversation_id, client_msg_id, text, note?}`` (ack ``{id,
client_msg_id, created_at}``), ``typing {conversation_id}``, ``close {conversation_id}``, ``resume
{conversation_id, last_message_id}`` (the read positions, then the later messages), ``read
{conversation_id, message_id}`` (read receipts, ``app.sockets.receipts``); the team, tool and topic
events of the mixins (``set_topics``: ``app.sockets.agent_topics``).
Events out: ``chat_offer``, ``offer_withdrawn``, ``queue_update``, ``agent_status``, ``preferences``,
``chat_request``, ``message``, ``visitor_typing``, ``closed``, ``read``, ``error``.
The team's, the tools' and the visitor card's events (lead, client contact, statement) are in
``agent_team``, ``agent_tools`` and ``agent_crm``.
"""

from __future__ import annotations

import time

from flask import current_app, g, request, session
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, Namespace, disconnect, emit, join_room

from app.extensions import db, socketio
from app.models.chat import AgentProfile, Conversation
from app.security import CHAT, SUPERVISE
from app.services import chat, chat_agents, chat_sites, credentials, presence, routing
from app.services.errors import AccessDenied
from app.services.routing import SEEN_REFRESH_SECONDS
from app.sockets import deliver
from app.sockets.agent_crm import CrmEvents
from app.sockets.agent_team import TeamEvents
from app.sockets.agent_tools import ToolEvents, announce_closed
from app.sockets.agent_topics import TopicEvents
from app.sockets.guard import connect_guarded, dispatch, guarded
from app.sockets.receipts import AgentReceiptEvents, send_positions
from app.sockets.rooms import (
    AGENT_KEY,
    SUPERVISORS_ROOM,
    TEAM_ROOM,
    agent_room,
    conversation_room,
    site_agents_room,
    user_room,
    visitor_room,
)

TOUCHED_KEY = "desk.presence_touched"  # request.environ: when this tab last refreshed the presence
SIGN_IN_KEY = "desk.sign_in"  # request.environ: (user id, session id, when last checked) of the connection
SESSION_RECHECK_SECONDS = SEEN_REFRESH_SECONDS  # how often an event checks that the sign-in still lives


def _tz() -> str:
    return current_app.config.get("TZ_DISPLAY", "UTC")


def _include_ip() -> bool:
    return not current_app.config.get("TRACKING_TRUNCATE_IP", True)


def _refused(message: object) -> ConnectionRefusedError:
    """A refusal the client receives as ``connect_error {message, data: {event, message, errors}}``,
    in the user's language."""
    text = str(message)
    return ConnectionRefusedError(text, {"event": "connect", "message": text, "errors": {}})


NOT_YOURS = _l("This conversation is not yours.")


class AgentNamespace(TeamEvents, ToolEvents, AgentReceiptEvents, TopicEvents, CrmEvents, Namespace):
    def trigger_event(self, event, *args):  # noqa: ANN001, ANN002, ANN201
        """Every event of a console tab also refreshes the agent's presence (``last_seen_at``, at
        most one write per ``SEEN_REFRESH_SECONDS`` and tab: the tab remembers when it last did).
        Unforeseen failures follow ``app.sockets.guard``."""
        if event in ("connect", "disconnect"):  # (python-socketio logs a failed disconnect with its traceback)
            return super().trigger_event(event, *args)
        handler = getattr(self, "on_" + (event or ""), None)
        if handler is None:
            return None

        def present(*data):  # noqa: ANN002, ANN202
            agent_id = request.environ.get(AGENT_KEY)
            now = time.monotonic()
            if not self._still_signed_in(now):
                disconnect()
                return {"error": str(_l("Your session has ended. Please sign in again.")), "errors": {}}
            if agent_id and now - request.environ.get(TOUCHED_KEY, -1e9) >= SEEN_REFRESH_SECONDS:
                presence.touch(db.session, agent_id)
                request.environ[TOUCHED_KEY] = now
            return handler(*data)

        return dispatch(self.socketio, guarded(event, present, self.namespace), event, self.namespace, *args)

    def _still_signed_in(self, now: float) -> bool:
        """Whether the browser session this connection was opened with still lives (not signed out,
        not ended by a password change or deactivation); checked once per
        ``SESSION_RECHECK_SECONDS`` and tab, so a console whose session ended is cut off at its next
        event (the console pings every 30 s)."""
        user_id, session_id, checked = request.environ.get(SIGN_IN_KEY, (None, None, -1e9))
        if now - checked < SESSION_RECHECK_SECONDS:
            return True
        idle = current_app.config["SESSION_IDLE_MINUTES"] * 60
        if user_id is None or not credentials.session_is_live(db.session, session_id, user_id, idle):
            return False
        request.environ[SIGN_IN_KEY] = (user_id, session_id, now)
        return True

    def _agent(self) -> AgentProfile | None:
        """The connection's agent profile while it is active (an Admin may deactivate it mid-shift)."""
        agent = db.session.get(AgentProfile, request.environ.get(AGENT_KEY) or 0)
        return agent if agent is not None and agent.active else None

    def on_connect(self, auth=None):  # noqa: ANN001, ANN201
        return connect_guarded(self._connect, lambda message, data: ConnectionRefusedError(message, data))(auth)

    def _connect(self, auth=None):  # noqa: ANN001, ANN202, ARG002
        if not chat_sites.same_origin(request.headers.get("Origin"), request.host):
            raise _refused(_l("A connection from another site is refused."))
        g.user = current_user._get_current_object()  # what FAB's before_request would set for a page
        sm = current_app.appbuilder.sm
        if not current_user.is_authenticated or not sm.can(CHAT):
            raise _refused(_l("You may not use the agent console."))
        agent = chat.agent_for_user(db.session, current_user.id)
        supervisor = sm.can(SUPERVISE)
        if agent is None and not supervisor:
            raise _refused(_l("You have no active agent profile."))
        request.environ[SIGN_IN_KEY] = (current_user.id, session.get("_sid"), time.monotonic())
        join_room(user_room(current_user.id))
        join_room(TEAM_ROOM)
        if supervisor:
            join_room(SUPERVISORS_ROOM)
        for conversation_id in chat.conversations_of_user(db.session, current_user.id):
            join_room(conversation_room(conversation_id))
        if agent is None:
            return None
        request.environ[AGENT_KEY] = agent.id
        for site_id in routing.agent_site_ids(db.session, agent):
            join_room(site_agents_room(site_id))
        join_room(agent_room(agent.id))
        deliver(presence.agent_connected(db.session, agent, tz=_tz(), include_ip=_include_ip()))
        request.environ[TOUCHED_KEY] = time.monotonic()
        return None

    def on_disconnect(self, reason=None) -> None:  # noqa: ANN001, ARG002
        agent_id = request.environ.get(AGENT_KEY)
        if agent_id:
            presence.agent_disconnected(db.session, agent_id)

    def on_ping(self, data=None):  # noqa: ANN001, ANN201, ARG002
        agent = self._agent()
        return {"ok": True, "status": agent.status.value if agent else None}

    def on_status(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        agent = self._agent()
        emits = presence.set_status(db.session, agent, data.get("status"), tz=_tz(), include_ip=_include_ip())
        deliver(emits)
        return {"status": agent.status.value}

    def on_preferences(self, data=None):  # noqa: ANN001, ANN201
        """The agent's console preferences (``chat_agents``); their other consoles follow at once."""
        data = data if isinstance(data, dict) else {}
        agent = self._agent()
        chosen = chat_agents.set_send_key(db.session, agent, data.get("send_key"))
        socketio.emit("preferences", chosen, to=agent_room(agent.id), namespace="/agent", skip_sid=request.sid)
        return chosen

    def on_queue_list(self, data=None):  # noqa: ANN001, ANN201, ARG002
        agent = self._agent()
        if agent is None:
            raise AccessDenied({"_": [str(_l("You have no active agent profile."))]})
        return {"queue": routing.queue_list(db.session, agent)}

    def on_accept(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        cid = data.get("conversation_id")
        before = db.session.get(Conversation, cid) if isinstance(cid, int) and not isinstance(cid, bool) else None
        from_queue = before is None or before.status == chat.ConversationStatus.queued
        conversation = chat.accept(db.session, self._agent(), cid)
        join_room(conversation_room(conversation.id))
        socketio.emit("agent_joined", {"conversation_id": conversation.id, "name": conversation.agent.display_name},
                      to=visitor_room(conversation.visitor_id), namespace="/visitor")
        deliver(routing.after_accept(db.session, conversation, from_queue=from_queue))
        messages = chat.conversation_messages_after(db.session, conversation.id)
        return {"conversation_id": conversation.id, "messages": [chat.message_payload(m) for m in messages]}

    def on_decline(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        emits = routing.decline(db.session, self._agent(), data.get("conversation_id"), include_ip=_include_ip())
        deliver(emits)
        return {"ok": True}

    def on_message(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        note = data.get("note") is True
        message, created = chat.post_agent_message(db.session, self._agent(), data.get("conversation_id"),
                                                   data.get("client_msg_id"), data.get("text"), note=note)
        payload = chat.message_payload(message)
        if created:
            socketio.emit("message", payload, to=conversation_room(message.conversation_id), namespace="/agent",
                          skip_sid=request.sid)
            if not note:
                conversation = db.session.get(Conversation, message.conversation_id)
                socketio.emit("message", payload, to=visitor_room(conversation.visitor_id), namespace="/visitor")
        return {"id": message.id, "client_msg_id": message.client_msg_id, "created_at": payload["created_at"]}

    def _readable(self, data: object) -> Conversation | None:
        conversation_id = data.get("conversation_id") if isinstance(data, dict) else None
        conversation = db.session.get(Conversation, conversation_id) \
            if isinstance(conversation_id, int) and not isinstance(conversation_id, bool) else None
        if conversation is None or not current_user.is_authenticated \
                or not chat.takes_part(db.session, conversation, current_user.id):
            return None
        return conversation

    def on_typing(self, data=None):  # noqa: ANN001, ANN201
        conversation = self._readable(data)
        if conversation is None or not chat.is_writer(db.session, self._agent(), conversation):
            emit("error", {"event": "typing", "message": str(NOT_YOURS), "errors": {}})
            return None
        socketio.emit("agent_typing", {"conversation_id": conversation.id}, to=visitor_room(conversation.visitor_id),
                      namespace="/visitor")
        return None

    def on_close(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        agent = self._agent()
        if agent is None:
            raise AccessDenied({"_": [str(_l("You have no active agent profile."))]})
        return announce_closed(chat.close(db.session, data.get("conversation_id"), agent=agent))

    def on_resume(self, data=None):  # noqa: ANN001, ANN201
        conversation = self._readable(data)
        if conversation is None:
            emit("error", {"event": "resume", "message": str(NOT_YOURS), "errors": {}})
            return {"error": str(NOT_YOURS)}
        last = data.get("last_message_id") if isinstance(data.get("last_message_id"), int) else 0
        join_room(conversation_room(conversation.id))
        send_positions(conversation)  # read receipts (已读) first: the console marks what it shows
        messages = chat.conversation_messages_after(db.session, conversation.id, last)
        for message in messages:
            emit("message", chat.message_payload(message))
        return {"resent": len(messages)}
