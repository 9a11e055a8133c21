"""Permission matrix entries for the tax rates and the clients' tax profiles (merged by
tests/test_permissions.py)."""

from __future__ import annotations

A, M, C, R = "admin", "manager", "accountant", "reviewer"
STAFF = {A, M, C, R}

# view (endpoint class) → method → roles allowed, as in tests/test_permissions.py
EXPECTED: dict[str, dict[str, set[str]]] = {
    "TaxRateModelView": {"list": set(STAFF), "show": set(STAFF), "add": {A}, "edit": {A}, "delete": {A},
                         "export_csv": {A}, "download": {A}},
    "TaxRateApi": {"get": set(STAFF), "get_list": set(STAFF), "info": set(STAFF), "post": {A}, "put": {A},
                   "delete": {A}},
    "ClientTaxProfileView": {"show": set(STAFF), "save": {A, M, C}},
    "ClientTaxProfileApi": {"get": set(STAFF), "put": {A, M, C}},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    """Primary keys the matrix uses in URLs: a client of the accountant (the profile) and a
    seeded rate (the rate views)."""
    from sqlalchemy import select

    from app.models.tax import TaxRate
    from tests.factories import make_client

    client = make_client(accountant=app.appbuilder.sm.find_user(username="accountant"))
    rate_id = session.scalar(select(TaxRate.id).order_by(TaxRate.id))
    return {"ClientTaxProfileView": client.id, "ClientTaxProfileApi": client.id,
            "TaxRateModelView": rate_id, "TaxRateApi": rate_id}
