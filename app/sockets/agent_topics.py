"""``/agent`` events for conversation topics (对话主题). Mixed into ``AgentNamespace``.

- ``set_topics {conversation_id, topic_ids}`` → ack ``{conversation_id, topics: [{id, name}]}``: the
  conversation's topics become exactly *topic_ids* (``app.services.chat_topics``: its owner, an
  agent invited into it, or a supervisor; active topics, at most 10). The other agents in the
  conversation's room (owner, invited agents, watching supervisors) get ``topics
  {conversation_id, topics}``.
A refused payload gets an ``error`` event ``{event, message, errors}`` and the ack ``{error, errors}``.
"""

from __future__ import annotations

from flask import request

from app.extensions import db, socketio
from app.services import chat_topics
from app.sockets.rooms import conversation_room


class TopicEvents:
    """Handlers ``on_<event>`` (see docs/socket-protocol.md)."""

    def on_set_topics(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        who = self._member()  # (TeamEvents) the signed-in user and whether they supervise
        conversation, topics = chat_topics.set_topics(db.session, data.get("conversation_id"), data.get("topic_ids"),
                                                      who.user_id, who.supervisor)
        payload = {"conversation_id": conversation.id, "topics": topics}
        socketio.emit("topics", payload, to=conversation_room(conversation.id), namespace="/agent",
                      skip_sid=request.sid)
        return payload
