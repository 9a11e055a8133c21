"""``/agent`` events for an agent's tools: proactive invitations of browsing visitors and the
knowledge base search. Mixed into ``AgentNamespace``.

Events in: ``invite {visitor_id, text?}`` (ack ``{invitation_id}``), ``faq_search {q}`` (ack
``{results: [{id, question, answer, category, site_id}]}``), ``block_visitor {conversation_id,
reason?}`` (ack ``{conversation_id, by: "agent", blocked: true}``). Events out: ``invite`` to the
visitor (``/visitor``), ``visitor_invited`` to the site's agents; a block sends ``closed`` as a
close does and ends the visitor's connections (their reconnection is refused).
"""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l

from app.extensions import db, socketio
from app.models.chat import Conversation, Visitor
from app.security import SUPERVISE
from app.services import chat_faq, chat_tools, chat_visitors, routing
from app.services.errors import AccessDenied
from app.sockets import deliver
from app.sockets.rooms import conversation_room, site_agents_room, visitor_room


def announce_closed(conversation: Conversation) -> dict:
    """Tell the conversation's visitor and agents that an agent closed it, and send what follows a
    close (queue, presence); returns the ``closed`` payload, which is also the ack."""
    payload = {"conversation_id": conversation.id, "by": "agent"}
    socketio.emit("closed", payload, to=visitor_room(conversation.visitor_id), namespace="/visitor")
    socketio.emit("closed", payload, to=conversation_room(conversation.id), namespace="/agent")
    deliver(routing.after_close(db.session, conversation,
                                include_ip=not current_app.config.get("TRACKING_TRUNCATE_IP", True)))
    return payload


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

    def on_faq_search(self, data=None):  # noqa: ANN001, ANN201
        """Search the knowledge base: an agent in the entries of the sites they serve (and of every
        site), a supervisor without an agent profile in all of them."""
        data = data if isinstance(data, dict) else {}
        agent = self._agent()
        if agent is not None:
            site_ids = routing.agent_site_ids(db.session, agent)
        elif current_app.appbuilder.sm.can(SUPERVISE):
            site_ids = None
        else:
            raise AccessDenied({"_": [str(_l("You have no active agent profile."))]})
        return {"results": chat_faq.search_for_agent(db.session, site_ids, data.get("q"))}

    def on_block_visitor(self, data=None):  # noqa: ANN001, ANN201
        """One-click block (屏蔽) from the chat: the visitor is blocked on the site, the chat closed,
        and their open widgets disconnected (in any process; reconnecting is refused)."""
        data = data if isinstance(data, dict) else {}
        conversation, _ = chat_tools.block_from_chat(db.session, self._agent(), data.get("conversation_id"),
                                                     data.get("reason"))
        payload = announce_closed(conversation)
        for sid in chat_visitors.connection_sids(db.session, conversation.visitor_id):
            socketio.server.disconnect(sid, namespace="/visitor")
        return {**payload, "blocked": True}
