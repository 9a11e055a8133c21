"""Default grants for the ledger reports: Manager, Accountant (own clients, by row scope) and
Reviewer read every report; Agent none."""

from __future__ import annotations

READ_REPORTS = [("can_get", "LedgerReportApi"), ("can_list", "LedgerReportView")]

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": list(READ_REPORTS),
    "Accountant": list(READ_REPORTS),
    "Reviewer": list(READ_REPORTS),
    "Agent": [],
}
