"""Default grants for the tax worksheet and the accrual voucher: Manager and Accountant (own
clients, by row scope) read the worksheet and make the accrual voucher; Reviewer reads the
worksheet (the voucher it reviews comes from it); Agent nothing."""

from __future__ import annotations

SCREEN = "TaxWorksheetView"
API = "TaxWorksheetApi"

READ = [("can_list", SCREEN), ("can_get", API)]
ACCRUE = [("can_accrue", SCREEN), ("can_post", API)]

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": READ + ACCRUE,
    "Accountant": READ + ACCRUE,
    "Reviewer": list(READ),
    "Agent": [],
}
