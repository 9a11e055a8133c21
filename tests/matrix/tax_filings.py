"""Permission matrix entries for the filing calendar and the filing records (merged by
tests/test_permissions.py)."""

from __future__ import annotations

A, M, C, R = "admin", "manager", "accountant", "reviewer"
STAFF = {A, M, C, R}
ACT = {A, M, C}

# view (endpoint class) → method → roles allowed, as in tests/test_permissions.py
EXPECTED: dict[str, dict[str, set[str]]] = {
    "TaxCalendarView": {"show": set(STAFF), "save": {A}},
    "TaxCalendarApi": {"get": set(STAFF), "put": {A}},
    "TaxFilingView": {"list": set(STAFF), "overdue": set(STAFF), "due_soon": set(STAFF), "show": set(STAFF),
                      "generate": set(ACT), "file": set(ACT), "pay": set(ACT), "reopen": set(ACT)},
    "TaxFilingApi": {"get_list": set(STAFF), "get": set(STAFF), "overdue": set(STAFF), "due_soon": set(STAFF),
                     "generate": set(ACT), "file": set(ACT), "pay": set(ACT), "reopen": set(ACT)},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    """Primary keys the matrix uses in URLs: a pending filing of the accountant's client and a
    year without official deadlines."""
    from app.services import tax_filings, tax_profile
    from tests.factories import make_client

    client = make_client(accountant=app.appbuilder.sm.find_user(username="accountant"))
    tax_profile.set_tax_profile(session, client.id, "monthly", "urban", {"vat": "monthly"})
    filing = tax_filings.generate_month(session, "2026-04")[0]
    return {"TaxFilingView": filing.id, "TaxFilingApi": filing.id, "TaxCalendarApi": 2030}
