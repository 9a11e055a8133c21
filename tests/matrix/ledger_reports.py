"""Permission matrix entries for the ledger reports (merged by tests/test_permissions.py)."""

from __future__ import annotations

READERS = {"admin", "manager", "accountant", "reviewer"}
API_METHODS = ("trial_balance", "general_ledger", "ledger", "balance_sheet", "income_statement")
SCREENS = ("trial_balance", "general_ledger", "detail_ledger", "balance_sheet", "income_statement")

# view (endpoint class) → method → roles allowed, as in tests/test_permissions.py
EXPECTED: dict[str, dict[str, set[str]]] = {
    "LedgerReportApi": {method: set(READERS) for method in API_METHODS},
    "LedgerReportView": {method: set(READERS) for method in SCREENS},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001
    """Primary keys the matrix uses in URLs of these views (view name → pk): none, the reports
    take their client as a query parameter."""
    return {}
