"""``/agent``: the agent console's namespace, for signed-in users with the chat permission and an
active agent profile. Thin: validate, call ``app.services.chat``, emit.

Events in: ``accept {conversation_id}`` (ack: the conversation's messages), ``message
{conversation_id, client_msg_id, text, note?}`` (ack ``{id, client_msg_id, created_at}``),
``typing {conversation_id}``, ``close {conversation_id}``, ``resume {conversation_id,
last_message_id}``. Events out: ``chat_request``, ``message``, ``visitor_typing``, ``closed``, ``error``.
"""

from __future__ import annotations

from flask import current_app, g, request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, Namespace, emit, join_room

from app.extensions import db, socketio
from app.models.chat import AgentGroup
from app.security import CHAT
from app.services import chat
from app.services.errors import DomainError
from app.sockets.agent_team import TeamEvents
from app.sockets.agent_tools import ToolEvents
from app.sockets.rooms import AGENT_KEY, agent_room, conversation_room, error_payload, site_agents_room, visitor_room


class AgentNamespace(TeamEvents, ToolEvents, Namespace):
    def _agent(self) -> chat.AgentProfile | None:
        """The connection's agent profile while it is active (an Admin may deactivate it mid-shift)."""
        agent = db.session.get(chat.AgentProfile, request.environ.get(AGENT_KEY) or 0)
        return agent if agent is not None and agent.active else None

    def on_connect(self, auth=None):  # noqa: ANN001, ANN201, ARG002
        g.user = current_user._get_current_object()  # what FAB's before_request would set for a page
        if not current_user.is_authenticated or not current_app.appbuilder.sm.can(CHAT):
            raise ConnectionRefusedError({"event": "connect", "message": "not allowed"})
        agent = chat.agent_for_user(db.session, current_user.id)
        if agent is None:
            raise ConnectionRefusedError({"event": "connect", "message": "no active agent profile"})
        request.environ[AGENT_KEY] = agent.id
        site_ids = {group.site_id for group in agent.groups} or set(
            db.session.scalars(db.select(AgentGroup.site_id)))
        for site_id in site_ids:
            join_room(site_agents_room(site_id))
        join_room(agent_room(agent.id))
        return None

    def _fail(self, event: str, exc: DomainError) -> dict:
        db.session.rollback()
        emit("error", error_payload(event, exc))
        return {"error": exc.message, "errors": exc.errors}

    def on_accept(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        try:
            conversation = chat.accept(db.session, self._agent(), data.get("conversation_id"))
        except DomainError as exc:
            return self._fail("accept", exc)
        join_room(conversation_room(conversation.id))
        socketio.emit("agent_joined", {"conversation_id": conversation.id, "name": conversation.agent.display_name},
                      to=visitor_room(conversation.visitor_id), namespace="/visitor")
        messages = chat.conversation_messages_after(db.session, conversation.id)
        return {"conversation_id": conversation.id, "messages": [chat.message_payload(m) for m in messages]}

    def on_message(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        note = data.get("note") is True
        try:
            message, created = chat.post_agent_message(db.session, self._agent(), data.get("conversation_id"),
                                                       data.get("client_msg_id"), data.get("text"), note=note)
        except DomainError as exc:
            return self._fail("message", exc)
        payload = chat.message_payload(message)
        if created:
            socketio.emit("message", payload, to=conversation_room(message.conversation_id), namespace="/agent",
                          skip_sid=request.sid)
            if not note:
                conversation = db.session.get(chat.Conversation, message.conversation_id)
                socketio.emit("message", payload, to=visitor_room(conversation.visitor_id), namespace="/visitor")
        return {"id": message.id, "client_msg_id": message.client_msg_id, "created_at": payload["created_at"]}

    def on_typing(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        agent = self._agent()
        conversation = db.session.get(chat.Conversation, data.get("conversation_id")) \
            if isinstance(data.get("conversation_id"), int) else None
        if agent is None or conversation is None or conversation.agent_id != agent.id:
            emit("error", {"event": "typing", "message": "not your conversation", "errors": {}})
            return None
        socketio.emit("agent_typing", {"conversation_id": conversation.id}, to=visitor_room(conversation.visitor_id),
                      namespace="/visitor")
        return None

    def on_close(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        try:
            conversation = chat.close(db.session, data.get("conversation_id"), agent=self._agent())
        except DomainError as exc:
            return self._fail("close", exc)
        payload = {"conversation_id": conversation.id, "by": "agent"}
        socketio.emit("closed", payload, to=visitor_room(conversation.visitor_id), namespace="/visitor")
        socketio.emit("closed", payload, to=conversation_room(conversation.id), namespace="/agent")
        return payload

    def on_resume(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        conversation = db.session.get(chat.Conversation, data.get("conversation_id")) \
            if isinstance(data.get("conversation_id"), int) else None
        agent = self._agent()
        if agent is None or conversation is None or conversation.agent_id != agent.id:
            emit("error", {"event": "resume", "message": "not your conversation", "errors": {}})
            return {"error": "not your conversation"}
        last = data.get("last_message_id") if isinstance(data.get("last_message_id"), int) else 0
        join_room(conversation_room(conversation.id))
        messages = chat.conversation_messages_after(db.session, conversation.id, last)
        for message in messages:
            emit("message", chat.message_payload(message))
        return {"resent": len(messages)}
