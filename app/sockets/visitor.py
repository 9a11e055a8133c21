"""``/visitor``: the widget's namespace. Thin: validate, call ``app.services.chat``, emit.

Connect with ``auth={"site_key", "visitor_token"?, "user_id"?, "user_hash"?, "language"?, "screen"?}``; the
server answers ``session {visitor_id, visitor_token, conversation_id, returning}``. Events in:
``message {client_msg_id, text}`` (ack ``{id, client_msg_id, created_at}``), ``typing {draft}``,
``resume {last_message_id}``, ``rate {score, comment}``, ``close``, ``page_view {url, title, referrer,
screen?}`` (ack ``{page_view_id}``), ``heartbeat {}`` (ack ``{page_view_id, seconds}``). Events out: ``message``,
``agent_typing``, ``closed``, ``error {event, message, errors}``; to the site's agents ``visitor_update``.
"""

from __future__ import annotations

from flask import current_app, request
from flask_socketio import ConnectionRefusedError, Namespace, emit, join_room

from app.extensions import db, socketio
from app.services import chat, tracking
from app.services.errors import DomainError
from app.sockets.rooms import (
    PAGE_VIEW_KEY,
    SITE_KEY,
    VISITOR_KEY,
    conversation_room,
    error_payload,
    site_agents_room,
    visitor_room,
)
from app.sockets.visitor_inbox import VisitorInboxEvents
from app.sockets.visitor_tools import VisitorToolEvents


class VisitorNamespace(VisitorInboxEvents, VisitorToolEvents, Namespace):
    def _visitor_id(self) -> int | None:
        return request.environ.get(VISITOR_KEY)

    def on_connect(self, auth=None):  # noqa: ANN001, ANN201
        auth = auth if isinstance(auth, dict) else {}
        try:
            admitted = chat.connect_visitor(
                db.session, secret_key=current_app.config["SECRET_KEY"], site_key=auth.get("site_key"),
                origin=request.headers.get("Origin"), token=auth.get("visitor_token"), ip=request.remote_addr,
                user_agent=request.headers.get("User-Agent"), language=auth.get("language"),
                user_id=auth.get("user_id"), user_hash=auth.get("user_hash"))
        except DomainError as exc:
            db.session.rollback()
            raise ConnectionRefusedError(error_payload("connect", exc)) from None
        visitor = admitted.visitor
        request.environ[VISITOR_KEY] = visitor.id
        request.environ[SITE_KEY] = admitted.site.id
        tracking.record_connection(
            db.session, visitor.id, ip=request.remote_addr, user_agent=request.headers.get("User-Agent"),
            language=auth.get("language"), screen=auth.get("screen"), geoip_db=current_app.config.get("GEOIP_DB"),
            truncate=current_app.config.get("TRACKING_TRUNCATE_IP", True))
        join_room(visitor_room(visitor.id))
        conversation = chat.open_conversation(db.session, visitor)
        emit("session", {"visitor_id": visitor.uid, "visitor_token": admitted.token,
                         "conversation_id": conversation.id if conversation else None,
                         "returning": admitted.returning})
        return None

    def on_disconnect(self, reason=None) -> None:  # noqa: ANN001, ARG002
        visitor_id = self._visitor_id()
        if visitor_id is not None:
            chat.disconnect_visitor(db.session, visitor_id)

    def on_message(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        visitor_id = self._visitor_id()
        try:
            message, created = chat.post_visitor_message(db.session, visitor_id, data.get("client_msg_id"),
                                                         data.get("text"))
        except DomainError as exc:
            db.session.rollback()
            emit("error", error_payload("message", exc))
            return {"error": exc.message, "errors": exc.errors}
        payload = chat.message_payload(message)
        if created:
            # Stored first; now everyone else hears of it (the visitor's other tabs and the agents).
            socketio.emit("message", payload, to=visitor_room(visitor_id), namespace="/visitor",
                          skip_sid=request.sid)
            socketio.emit("message", payload, to=conversation_room(message.conversation_id), namespace="/agent")
            socketio.emit("chat_request", {"conversation_id": message.conversation_id},
                          to=site_agents_room(request.environ[SITE_KEY]), namespace="/agent")
        return {"id": message.id, "client_msg_id": message.client_msg_id, "created_at": payload["created_at"],
                "conversation_id": message.conversation_id}

    def on_typing(self, data=None):  # noqa: ANN001, ANN201
        draft = data.get("draft") if isinstance(data, dict) else None
        if not isinstance(draft, str) or len(draft) > chat.MAX_TEXT:
            emit("error", {"event": "typing", "message": "draft is a string of at most 2000 characters",
                           "errors": {"draft": ["invalid"]}})
            return None
        conversation = chat.open_conversation(db.session, db.session.get(chat.Visitor, self._visitor_id()))
        if conversation is not None:
            socketio.emit("visitor_typing", {"conversation_id": conversation.id, "draft": draft},
                          to=conversation_room(conversation.id), namespace="/agent")
        return None

    def on_resume(self, data=None):  # noqa: ANN001, ANN201
        last = data.get("last_message_id", 0) if isinstance(data, dict) else None
        try:
            messages = chat.visitor_messages_after(db.session, self._visitor_id(), last)
        except DomainError as exc:
            emit("error", error_payload("resume", exc))
            return {"error": exc.message}
        for message in messages:
            emit("message", chat.message_payload(message))
        return {"resent": len(messages)}

    def on_rate(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        try:
            conversation = chat.rate(db.session, self._visitor_id(), data.get("score"), data.get("comment"))
        except DomainError as exc:
            db.session.rollback()
            emit("error", error_payload("rate", exc))
            return {"error": exc.message}
        return {"conversation_id": conversation.id, "rating": conversation.rating}

    def on_close(self, data=None):  # noqa: ANN001, ANN201, ARG002
        visitor = db.session.get(chat.Visitor, self._visitor_id())
        conversation = chat.open_conversation(db.session, visitor) if visitor else None
        if conversation is None:
            return {"closed": None}
        chat.close(db.session, conversation.id, visitor_id=visitor.id)
        socketio.emit("closed", {"conversation_id": conversation.id, "by": "visitor"},
                      to=conversation_room(conversation.id), namespace="/agent")
        return {"closed": conversation.id}

    def on_page_view(self, data=None):  # noqa: ANN001, ANN201
        visitor_id = self._visitor_id()
        try:
            view = tracking.record_page_view(db.session, visitor_id, data)
        except DomainError as exc:
            db.session.rollback()
            emit("error", error_payload("page_view", exc))
            return {"error": exc.message, "errors": exc.errors}
        request.environ[PAGE_VIEW_KEY] = view.id  # this tab's page: its heartbeats credit it
        payload = tracking.visitor_payload(db.session.get(chat.Visitor, visitor_id),
                                           include_ip=not current_app.config.get("TRACKING_TRUNCATE_IP", True))
        socketio.emit("visitor_update", payload, to=site_agents_room(request.environ[SITE_KEY]), namespace="/agent")
        return {"page_view_id": view.id}

    def on_heartbeat(self, data=None):  # noqa: ANN001, ANN201
        try:
            tracking.check_heartbeat(data)
            view = tracking.heartbeat(db.session, self._visitor_id(), request.environ.get(PAGE_VIEW_KEY))
        except DomainError as exc:
            db.session.rollback()
            emit("error", error_payload("heartbeat", exc))
            return {"error": exc.message, "errors": exc.errors}
        return {"page_view_id": view.id if view else None, "seconds": view.seconds if view else 0}
