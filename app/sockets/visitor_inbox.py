"""``/visitor`` events for leaving a message and asking for a transcript. Mixed into
``VisitorNamespace``.

- ``leave_message {client_msg_id, name, phone?, email?, text}`` → ack ``{id}``; the site's agents get
  ``leave_message {id, name, site_id}``.
- ``transcript {email}`` → ack ``{ok: true}`` once the mail is sent.
A refused payload gets an ``error`` event ``{event, message, errors}`` and the ack ``{error, errors}``.
"""

from __future__ import annotations

from flask import current_app, request

from app.extensions import db, socketio
from app.services import chat_inbox
from app.sockets.rooms import SITE_KEY, VISITOR_KEY, site_agents_room


class VisitorInboxEvents:
    """Handlers ``on_<event>`` (see docs/socket-protocol.md)."""

    def on_leave_message(self, data=None):  # noqa: ANN001, ANN201
        message, created = chat_inbox.leave_message(db.session, request.environ.get(VISITOR_KEY), data)
        if created:
            socketio.emit("leave_message", chat_inbox.leave_message_payload(message),
                          to=site_agents_room(request.environ[SITE_KEY]), namespace="/agent")
        return {"id": message.id}

    def on_transcript(self, data=None):  # noqa: ANN001, ANN201
        email = data.get("email") if isinstance(data, dict) else None
        chat_inbox.send_transcript(db.session, request.environ.get(VISITOR_KEY), email, current_app.config)
        return {"ok": True}
