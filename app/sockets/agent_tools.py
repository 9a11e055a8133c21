"""``/agent`` events for an agent's tools: proactive invitations of browsing visitors. Mixed into
``AgentNamespace``.

Events in: ``invite {visitor_id, text?}`` (ack ``{invitation_id}``). Events out: ``invite`` to the
visitor (``/visitor``), ``visitor_invited`` to the site's agents.
"""

from __future__ import annotations

from app.extensions import db, socketio
from app.models.chat import Visitor
from app.services import chat_tools
from app.sockets.rooms import site_agents_room, visitor_room


class ToolEvents:
    """Handlers ``on_<event>`` for the agent's tools (see docs/socket-protocol.md)."""

    def on_invite(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        invitation = chat_tools.invite_manually(db.session, self._agent(), data.get("visitor_id"),
                                                data.get("text"))
        visitor = db.session.get(Visitor, invitation.visitor_id)
        socketio.emit("invite", chat_tools.invitation_payload(db.session, invitation),
                      to=visitor_room(visitor.id), namespace="/visitor")
        socketio.emit("visitor_invited", chat_tools.invited_payload(db.session, invitation),
                      to=site_agents_room(visitor.site_id), namespace="/agent")
        return {"invitation_id": invitation.id}
