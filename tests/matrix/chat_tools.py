"""Permission matrix entries for canned replies, invitation rules, chat files (merged by tests/test_permissions.py)."""

from __future__ import annotations

EXPECTED: dict[str, dict[str, set[str]]] = {}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    return {}
