"""Permission matrix entries for the tax worksheet and the accrual voucher (merged by
tests/test_permissions.py)."""

from __future__ import annotations

A, M, C, R = "admin", "manager", "accountant", "reviewer"

# view (endpoint class) → method → roles allowed, as in tests/test_permissions.py
EXPECTED: dict[str, dict[str, set[str]]] = {
    "TaxWorksheetView": {"index": {A, M, C, R}, "accrue": {A, M, C}},
    "TaxWorksheetApi": {"worksheet": {A, M, C, R}, "accrual": {A, M, C}},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    """No primary key in these URLs."""
    return {}
