"""Permission matrix entries for the chat analytics (merged by tests/test_permissions.py)."""

from __future__ import annotations

A, M = "admin", "manager"

EXPECTED: dict[str, dict[str, set[str]]] = {
    "ChatAnalyticsView": {"show": {A, M}, "pdf": {A, M}},
    "ChatAnalyticsApi": {"get": {A, M}},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    """No object in the URLs (the API's table is a name)."""
    return {}
