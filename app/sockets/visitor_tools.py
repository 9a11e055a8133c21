"""``/visitor`` events for invitations. Mixed into ``VisitorNamespace``.

Events in: ``invite_response {invitation_id, accepted}`` (ack ``{ok: true, conversation_id}``; an
accepted invitation starts the chat, ``app.services.chat_invite``). Events out: ``invite
{invitation_id, text, agent_name}`` when an automatic invitation rule fits (checked after every
page view and heartbeat, and by the sweep for time on the page); to the site's agents
``visitor_invited`` and ``invite_response``.
"""

from __future__ import annotations

from flask import current_app, request

from app.extensions import db, socketio
from app.services import chat_invite, chat_tools
from app.services.errors import DomainError
from app.sockets import deliver
from app.sockets.agent_team import move_local
from app.sockets.rooms import SITE_KEY, VISITOR_KEY, agent_room, conversation_room, site_agents_room, visitor_room


class VisitorToolEvents:
    """Handlers ``on_<event>`` (see docs/socket-protocol.md)."""

    def _after_tracking(self, page_view_id: int | None) -> None:
        """Called by ``VisitorNamespace`` after each stored ``page_view`` and ``heartbeat``: invite the
        visitor when an automatic invitation rule of their site now fits (at most once per rule and
        visit). Never answers the visitor with an error: a failed check just invites nobody."""
        visitor_id = request.environ.get(VISITOR_KEY)
        if visitor_id is None or page_view_id is None:
            return None
        try:
            invitation = chat_tools.invite_by_rule(db.session, visitor_id, page_view_id)
        except DomainError:
            db.session.rollback()
            return None
        if invitation is not None:
            socketio.emit("invite", chat_tools.invitation_payload(db.session, invitation),
                          to=visitor_room(visitor_id), namespace="/visitor")
            socketio.emit("visitor_invited", chat_tools.invited_payload(db.session, invitation),
                          to=site_agents_room(request.environ[SITE_KEY]), namespace="/agent")
        return None

    def on_invite_response(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        invitation = chat_tools.respond(db.session, request.environ.get(VISITOR_KEY),
                                        data.get("invitation_id"), data.get("accepted"))
        conversation, emits = chat_invite.start_invited_chat(
            db.session, invitation, include_ip=not current_app.config.get("TRACKING_TRUNCATE_IP", True))
        if conversation is not None and conversation.agent_id is not None:
            # the agent's consoles served here follow the chat now; elsewhere they join on resume
            move_local(agent_room(conversation.agent_id), conversation_room(conversation.id), join=True)
        socketio.emit("invite_response", {"invitation_id": invitation.id, "visitor_id": invitation.visitor_id,
                                          "accepted": invitation.status.value == "accepted",
                                          "conversation_id": conversation.id if conversation else None,
                                          "agent_id": conversation.agent_id if conversation else None},
                      to=site_agents_room(request.environ[SITE_KEY]), namespace="/agent")
        deliver(emits)
        return {"ok": True, "conversation_id": conversation.id if conversation else None}
