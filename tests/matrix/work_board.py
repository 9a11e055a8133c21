"""Permission matrix entries for the work board (merged by tests/test_permissions.py)."""

from __future__ import annotations

A, M, C, R = "admin", "manager", "accountant", "reviewer"
STAFF = {A, M, C, R}
ACT = {A, M, C}

# view (endpoint class) → method → roles allowed, as in tests/test_permissions.py
EXPECTED: dict[str, dict[str, set[str]]] = {
    "WorkBoardView": {"show": set(STAFF), "tick": set(ACT)},
    "WorkBoardApi": {"get": set(STAFF)},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    """No object in the URLs."""
    return {}
