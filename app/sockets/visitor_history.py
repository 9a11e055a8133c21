"""``/visitor`` events for a returning visitor's earlier conversations (历史对话). Mixed into
``VisitorNamespace``.

- ``history {before_id?}`` → ack ``{conversations: [{conversation_id, started_at, closed_at,
  agent_name, messages, truncated}], more}``: the visitor's closed conversations, newest first,
  a page at a time (``app.services.chat_history``); never notes or whispers, never another
  visitor's. The ``session`` event says whether there are any (``history``).
A refused payload gets an ``error`` event ``{event, message, errors}`` and the ack ``{error, errors}``.
"""

from __future__ import annotations

from flask import request

from app.extensions import db
from app.services import chat_history
from app.sockets.rooms import VISITOR_KEY

IDENTITY_KEY = "desk.verified_user"  # request.environ: the user id verified on connecting, if any


class VisitorHistoryEvents:
    """Handlers ``on_<event>`` (see docs/socket-protocol.md)."""

    def on_history(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        return chat_history.earlier_conversations(db.session, request.environ.get(VISITOR_KEY),
                                                  data.get("before_id"), request.environ.get(IDENTITY_KEY))
