"""``read`` on both namespaces: read receipts (已读). Mixed into ``VisitorNamespace`` and
``AgentNamespace``; the rules are in ``app.services.chat_receipts``.

- /visitor ``read {message_id}`` → ack ``{conversation_id, reader: "visitor", up_to}``; the
  conversation's agents (/agent) and the visitor's other tabs hear ``read`` with that payload.
- /agent ``read {conversation_id, message_id}`` → ack ``{conversation_id, reader: "agent", up_to}``;
  the visitor's tabs (/visitor) and the conversation's other agent connections hear it.
A position that did not move (the same id again) is acknowledged and sent to nobody. ``resume``
(both namespaces) sends the stored positions as ``read`` events before the messages it resends.
"""

from __future__ import annotations

from flask import request
from flask_socketio import emit

from app.extensions import db, socketio
from app.models.chat import Conversation
from app.services import chat_receipts
from app.sockets.rooms import VISITOR_KEY, conversation_room, visitor_room


def send_positions(conversation: Conversation | None) -> None:
    """Send this connection the stored read positions of *conversation* (``read`` events)."""
    for payload in chat_receipts.positions(conversation):
        emit("read", payload)


class VisitorReceiptEvents:
    """The widget's handler ``on_read`` (see docs/socket-protocol.md)."""

    def on_read(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        visitor_id = request.environ.get(VISITOR_KEY)
        receipt = chat_receipts.mark_read_by_visitor(db.session, visitor_id, data.get("message_id"))
        payload = receipt.payload()
        if receipt.changed:
            socketio.emit("read", payload, to=conversation_room(receipt.conversation_id), namespace="/agent")
            socketio.emit("read", payload, to=visitor_room(receipt.visitor_id), namespace="/visitor",
                          skip_sid=request.sid)
        return payload

    def _send_read_positions(self) -> None:
        """Before ``resume`` resends messages: the positions of the visitor's newest conversation."""
        send_positions(chat_receipts.latest_conversation(db.session, request.environ.get(VISITOR_KEY)))


class AgentReceiptEvents:
    """The console's handler ``on_read`` (see docs/socket-protocol.md)."""

    def on_read(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        receipt = chat_receipts.mark_read_by_agent(db.session, self._agent(), data.get("conversation_id"),
                                                   data.get("message_id"))
        payload = receipt.payload()
        if receipt.changed:
            socketio.emit("read", payload, to=visitor_room(receipt.visitor_id), namespace="/visitor")
            socketio.emit("read", payload, to=conversation_room(receipt.conversation_id), namespace="/agent",
                          skip_sid=request.sid)
        return payload
