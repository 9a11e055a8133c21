"""Permission matrix entries for the ledger api (merged by tests/test_permissions.py)."""

from __future__ import annotations

A, M, C, R = "admin", "manager", "accountant", "reviewer"

# view (endpoint class) → method → roles allowed, as in tests/test_permissions.py
EXPECTED: dict[str, dict[str, set[str]]] = {
    "VoucherApi": {"get": {A, M, C, R}, "get_list": {A, M, C, R}, "info": {A, M, C, R},
                   "post": {A, M, C}, "put": {A, M, C}, "delete": {A, M, C},
                   "review": {A, M, R}, "unreview": {A, M, R}, "post_voucher": {A, M, C, R},
                   "reverse": {A, M, C}, "import_vouchers": {A, M, C}},
    "PeriodApi": {"get_list": {A, M, C, R}, "close": {A, M, C}, "reopen": {A, M}},
    "VoucherImportView": {"index": {A, M, C}, "template": {A, M, C}},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001
    """Primary keys the matrix uses in URLs of these views (view name → pk): a draft voucher of
    the accountant's client."""
    from tests.factories import make_books, make_client, make_voucher

    accountant = app.appbuilder.sm.find_user(username="accountant")
    book = make_books(make_client(accountant=accountant))
    return {"VoucherApi": make_voucher(book, user_id("accountant")).id}
