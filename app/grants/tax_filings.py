"""Default grants for the filing calendar and the filing records.

Calendar: Admin enters official dates (Admin holds every permission); Manager, Accountant and
Reviewer read it. Filing records: Manager and Accountant (their own clients, by row scope) read,
make a month's records, file, pay and reopen; Reviewer reads; Agent nothing.
"""

from __future__ import annotations

CALENDAR_SCREEN = "TaxCalendarView"
CALENDAR_API = "TaxCalendarApi"
FILING_SCREEN = "TaxFilingView"
FILING_API = "TaxFilingApi"
LIST_LINKS = [("menu_access", "Overdue filings"), ("menu_access", "Filings due in 7 days")]

READ_CALENDAR = [("can_list", CALENDAR_SCREEN), ("can_get", CALENDAR_API)]
READ_FILINGS = [("can_list", FILING_SCREEN), ("can_show", FILING_SCREEN), ("can_get", FILING_API), *LIST_LINKS]
ACT_ON_FILINGS = READ_FILINGS + [
    ("can_edit", FILING_SCREEN), ("can_generate", FILING_SCREEN),
    ("can_generate", FILING_API), ("can_file", FILING_API), ("can_pay", FILING_API), ("can_reopen", FILING_API)]

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": READ_CALENDAR + ACT_ON_FILINGS,
    "Accountant": READ_CALENDAR + ACT_ON_FILINGS,
    "Reviewer": READ_CALENDAR + READ_FILINGS,
    "Agent": [],
}
