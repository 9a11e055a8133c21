"""Permission matrix entries for the ledger reports (merged by tests/test_permissions.py)."""

from __future__ import annotations

# view (endpoint class) → method → roles allowed, as in tests/test_permissions.py
EXPECTED: dict[str, dict[str, set[str]]] = {}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001
    """Primary keys the matrix uses in URLs of these views (view name → pk)."""
    return {}
