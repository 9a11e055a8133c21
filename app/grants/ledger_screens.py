"""Default grants for the ledger screens (role policy of the ledger).

* Manager: everything, including reopening a closed period (反结账).
* Accountant: their own clients only (the views scope rows): open books, edit the chart and the
  opening balances, enter/edit/delete drafts, post, reverse, renumber, close periods, print. Not review.
* Reviewer: reads every client's books and vouchers, prints, reviews and un-reviews, posts.
* Agent: nothing.
"""

from __future__ import annotations


def _grant(view: str, *perms: str) -> list[tuple[str, str]]:
    return [(perm, view) for perm in perms]


READ_VOUCHERS = ("can_list", "can_show", "can_export", "can_print")
CHOOSE_BOOKS = ("can_choose", "CurrentClientView")  # the current set of books (当前账套)

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": (
        _grant("LedgerBookView", "can_list", "can_open")
        + _grant("LedgerAccountView", "can_list", "can_edit")
        + _grant("OpeningBalanceView", "can_list", "can_edit")
        + _grant("LedgerPeriodView", "can_list", "can_close", "can_reopen", "can_renumber")
        + _grant("VoucherModelView", *READ_VOUCHERS, "can_add", "can_edit", "can_delete", "can_review", "can_post",
                 "can_reverse")
        + [("menu_access", "New voucher"), CHOOSE_BOOKS]
    ),
    "Accountant": (
        _grant("LedgerBookView", "can_list", "can_open")
        + _grant("LedgerAccountView", "can_list", "can_edit")
        + _grant("OpeningBalanceView", "can_list", "can_edit")
        + _grant("LedgerPeriodView", "can_list", "can_close", "can_renumber")
        + _grant("VoucherModelView", *READ_VOUCHERS, "can_add", "can_edit", "can_delete", "can_post", "can_reverse")
        + [("menu_access", "New voucher"), CHOOSE_BOOKS]
    ),
    "Reviewer": (
        _grant("LedgerBookView", "can_list")
        + _grant("LedgerAccountView", "can_list")
        + _grant("OpeningBalanceView", "can_list")
        + _grant("LedgerPeriodView", "can_list")
        + _grant("VoucherModelView", *READ_VOUCHERS, "can_review", "can_post")
        + [CHOOSE_BOOKS]
    ),
    "Agent": [],
}
