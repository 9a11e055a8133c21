"""``/visitor`` events for leaving a message and asking for a transcript. Mixed into
``VisitorNamespace``.

- ``leave_message {client_msg_id, name, phone?, email?, text}`` → ack ``{id}``; the site's agents get
  ``leave_message {id, name, site_id}``.
- ``transcript {email}`` → ack ``{ok: true}`` once the mail is sent.
A refused payload gets an ``error`` event ``{event, message, errors}`` and the ack ``{error, errors}``.
"""

from __future__ import annotations

from flask import current_app, request
from flask_socketio import emit

from app.extensions import db, socketio
from app.services import chat_inbox
from app.services.errors import DomainError
from app.sockets.rooms import SITE_KEY, VISITOR_KEY, error_payload, site_agents_room


class VisitorInboxEvents:
    """Handlers ``on_<event>`` (see docs/socket-protocol.md)."""

    def _inbox_failed(self, event: str, exc: DomainError) -> dict:
        db.session.rollback()
        emit("error", error_payload(event, exc))
        return {"error": exc.message, "errors": exc.errors}

    def on_leave_message(self, data=None):  # noqa: ANN001, ANN201
        try:
            message, created = chat_inbox.leave_message(db.session, request.environ.get(VISITOR_KEY), data)
        except DomainError as exc:
            return self._inbox_failed("leave_message", exc)
        if created:
            socketio.emit("leave_message", chat_inbox.leave_message_payload(message),
                          to=site_agents_room(request.environ[SITE_KEY]), namespace="/agent")
        return {"id": message.id}

    def on_transcript(self, data=None):  # noqa: ANN001, ANN201
        email = data.get("email") if isinstance(data, dict) else None
        try:
            chat_inbox.send_transcript(db.session, request.environ.get(VISITOR_KEY), email, current_app.config)
        except DomainError as exc:
            return self._inbox_failed("transcript", exc)
        return {"ok": True}
