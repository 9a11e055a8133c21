"""Permission matrix entries for the ledger screens (merged by tests/test_permissions.py)."""

from __future__ import annotations

A, M, C, R = "admin", "manager", "accountant", "reviewer"
READERS = {A, M, C, R}
WRITERS = {A, M, C}

# view (endpoint class) → method → roles allowed, as in tests/test_permissions.py
EXPECTED: dict[str, dict[str, set[str]]] = {
    "LedgerBookView": {"list": READERS, "open_books": WRITERS},
    "LedgerAccountView": {"list": READERS, "add": WRITERS, "rename": WRITERS, "set_active": WRITERS,
                          "delete": WRITERS},
    "OpeningBalanceView": {"list": READERS, "save": WRITERS},
    "LedgerPeriodView": {"list": READERS, "close": WRITERS, "reopen": {A, M}, "renumber": WRITERS},
    "VoucherModelView": {"list": READERS, "show": READERS, "add": WRITERS, "edit": WRITERS, "delete": WRITERS,
                         "export_csv": READERS, "download": {A}, "review": {A, M, R}, "unreview": {A, M, R},
                         "post": READERS, "reverse": WRITERS, "print_voucher": READERS, "print_period": READERS},
    "CurrentClientView": {"choose": READERS},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001
    """Primary keys the matrix uses in URLs of these views (view name → pk): the accountant's
    client with books and a draft voucher of it."""
    from tests.factories import make_books, make_client, make_voucher

    accountant = app.appbuilder.sm.find_user(username="accountant")
    book = make_books(make_client(accountant=accountant))
    voucher = make_voucher(book, user_id("manager"))
    return {"LedgerAccountView": book.client_id, "OpeningBalanceView": book.client_id,
            "LedgerPeriodView": book.client_id, "VoucherModelView": voucher.id}
