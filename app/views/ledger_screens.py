"""The ledger screens staff use: books (账套), chart of accounts, opening balances (期初余额),
vouchers (记账凭证) with entry, review, posting and print, and period close (结账).

The views live in ``ledger_screens_books`` and ``ledger_screens_vouchers``; this module puts
them in the "Ledger" menu.
"""

from __future__ import annotations

from flask import Flask
from flask_appbuilder import AppBuilder
from flask_babel import lazy_gettext as _l

from app.views.ledger_screens_common import LEDGER_MENU


def register(app: Flask, appbuilder: AppBuilder) -> None:
    """Add the ledger screens to *appbuilder* under the "Ledger" menu."""
    from app.views import current_client
    from app.views.ledger_screens_books import LedgerAccountView, LedgerBookView, LedgerPeriodView, OpeningBalanceView
    from app.views.ledger_screens_vouchers import VoucherModelView

    appbuilder.add_view(LedgerBookView, "Books", label=_l("Books"), icon="fa-book", **LEDGER_MENU)
    appbuilder.add_view(VoucherModelView, "Vouchers", label=_l("Vouchers"), icon="fa-file-text-o", **LEDGER_MENU)
    appbuilder.add_link("New voucher", href="/ledger/vouchers/add", label=_l("New voucher"), icon="fa-plus",
                        category="Ledger")
    appbuilder.add_view(LedgerAccountView, "Chart of accounts", label=_l("Chart of accounts"), icon="fa-sitemap",
                        **LEDGER_MENU)
    appbuilder.add_view(OpeningBalanceView, "Opening balances", label=_l("Opening balances"), icon="fa-balance-scale",
                        **LEDGER_MENU)
    appbuilder.add_view(LedgerPeriodView, "Periods", label=_l("Periods"), icon="fa-calendar-check-o", **LEDGER_MENU)
    current_client.register(app, appbuilder)
