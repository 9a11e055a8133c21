"""Default grants for the ledger api and the voucher import screen.

Manager: everything, including reopening a closed period (反结账). Accountant (own clients, the
scope is applied by the views): enter, edit and delete drafts, post, reverse, import, close
periods; not review, not reopen. Reviewer: read, review and un-review, post; creates nothing.
Agent: nothing.
"""

from __future__ import annotations

VOUCHER = "VoucherApi"
PERIOD = "PeriodApi"
IMPORT_SCREEN = "VoucherImportView"


def _grant(view: str, perms: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(perm, view) for perm in perms]


GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": (_grant(VOUCHER, ("can_get", "can_info", "can_post", "can_put", "can_delete", "can_review",
                                 "can_unreview", "can_post_voucher", "can_reverse", "can_import"))
                + _grant(PERIOD, ("can_get", "can_close", "can_reopen"))
                + _grant(IMPORT_SCREEN, ("can_import",))),
    "Accountant": (_grant(VOUCHER, ("can_get", "can_info", "can_post", "can_put", "can_delete",
                                    "can_post_voucher", "can_reverse", "can_import"))
                   + _grant(PERIOD, ("can_get", "can_close"))
                   + _grant(IMPORT_SCREEN, ("can_import",))),
    "Reviewer": (_grant(VOUCHER, ("can_get", "can_info", "can_review", "can_unreview", "can_post_voucher"))
                 + _grant(PERIOD, ("can_get",))),
    "Agent": [],
}
