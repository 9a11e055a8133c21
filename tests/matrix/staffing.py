"""Permission matrix entries for the staffing planner (merged by tests/test_permissions.py)."""

from __future__ import annotations

A, M = "admin", "manager"

EXPECTED: dict[str, dict[str, set[str]]] = {
    "StaffingView": {"show": {A, M}},
    "StaffingApi": {"get": {A, M}},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    """No object in the URLs."""
    return {}
