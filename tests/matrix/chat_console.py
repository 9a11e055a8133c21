"""Permission matrix entries for the agent console (merged by tests/test_permissions.py)."""

from __future__ import annotations

CHAT_USERS = {"admin", "manager", "agent"}

EXPECTED: dict[str, dict[str, set[str]]] = {
    "AgentConsoleView": {method: set(CHAT_USERS) for method in ("index", "state", "visitor", "conversation")},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    """No rows needed: an unknown visitor or conversation is a 404 for permitted users (allowed),
    a 401/403 for the others (denied)."""
    return {}
