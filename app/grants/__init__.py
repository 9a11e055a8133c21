"""Default permissions of the built-in roles for the ledger screens, API and reports.

Each module holds ``GRANTS``: role name → ``(permission, view)`` pairs; ``app.security`` adds
them to ``ROLE_SPEC``. A grant must name a permission that a registered view has.
"""

from __future__ import annotations

from app.grants import (
    chat_analytics,
    chat_console,
    chat_faq,
    chat_inbox,
    chat_tools,
    chat_topics,
    leads,
    ledger_api,
    ledger_reports,
    ledger_screens,
    reports,
    staffing,
    tax,
    tax_filings,
    tax_worksheet,
    work_board,
)

MODULES = (ledger_screens, ledger_api, ledger_reports, chat_console, chat_tools, chat_inbox, chat_faq, chat_topics,
           staffing, chat_analytics, reports, tax, tax_worksheet, tax_filings, work_board, leads)


def merged() -> dict[str, list[tuple[str, str]]]:
    roles: dict[str, list[tuple[str, str]]] = {}
    for module in MODULES:
        for role, grants in module.GRANTS.items():
            roles.setdefault(role, []).extend(grants)
    return roles
