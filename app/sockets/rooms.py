"""Room names and the error payload shared by the socket namespaces (rooms work across processes
through the message queue)."""

from __future__ import annotations

from app.services.errors import DomainError

VISITOR_KEY = "desk.visitor_id"  # request.environ keys of a connection
SITE_KEY = "desk.site_id"
PAGE_VIEW_KEY = "desk.page_view_id"
AGENT_KEY = "desk.agent_id"

TEAM_ROOM = "team"  # every connected agent and manager (群组沟通)
SUPERVISORS_ROOM = "supervisors"  # connected users with the supervise permission


def visitor_room(visitor_id: int) -> str:
    """Every tab of one visitor (``/visitor``)."""
    return f"visitor:{visitor_id}"


def conversation_room(conversation_id: int) -> str:
    """The agents in a conversation: owner, invited agents, watching supervisors (``/agent``)."""
    return f"conversation:{conversation_id}"


def site_agents_room(site_id: int) -> str:
    """The agents who serve a site (``/agent``)."""
    return f"site-agents:{site_id}"


def site_visitors_room(site_id: int) -> str:
    """Every widget connection of a site (``/visitor``): hears ``availability``."""
    return f"site-visitors:{site_id}"


def agent_room(agent_id: int) -> str:
    """Every console tab of one agent profile (``/agent``)."""
    return f"agent:{agent_id}"


def user_room(user_id: int) -> str:
    """Every console tab of one user (``/agent``), agent profile or not (supervisors)."""
    return f"user:{user_id}"


def error_payload(event: str, exc: DomainError) -> dict:
    return {"event": event, "message": exc.message, "errors": exc.errors}
