"""The printable documents: each builder reads its numbers from the services and returns a
``reports.render.Document``.

Builders take validated parameters (client id in the user's scope, months as ``YYYYMM``
integers); the services still raise ``NotFound`` / ``ValidationFailed`` for what only they can
check (books missing, a month before the books start, an unknown account code).

Cache keys: a ledger document whose last month is closed gets ``cache_key`` =
client, document, parameters, language and the last month's ``Period.version``. Only the
latest closed month can be reopened and reopening bumps its version, and a month can only be
closed after the one before it, so the last month's version changes whenever anything the
document shows may have changed. The statement of account and transcripts are never cached
(fees, payments and chats do not close with the books).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from itertools import zip_longest

from flask import current_app
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.models.chat import ConversationStatus
from app.models.contracts import ContractStatus, ServiceType
from app.models.crm import Client
from app.models.ledger import VoucherState
from app.services import ledger_reports as ledger
from app.services import periods, report_data
from app.services.accounting import last_day_of, period_label
from app.services.books import get_book
from app.services.timefmt import to_display
from app.views.ledger_screens_print import amount_in_words
from reports.render import NO_DATA, Document

DOCUMENTS = ("statement", "vouchers", "trial-balance", "general-ledger", "detail-ledger", "balance-sheet",
             "income-statement")
TITLES = {
    "statement": _l("Statement of account"),
    "vouchers": _l("Accounting vouchers"),
    "trial-balance": _l("Trial balance"),
    "general-ledger": _l("General ledger"),
    "detail-ledger": _l("Detail ledger"),
    "balance-sheet": _l("Balance sheet"),
    "income-statement": _l("Income statement"),
    "transcript": _l("Chat transcript"),
}
SERVICES = {ServiceType.bookkeeping.value: _l("Bookkeeping"), ServiceType.tax_filing.value: _l("Tax filing"),
            ServiceType.business_registration.value: _l("Business registration"), ServiceType.other.value: _l("Other")}
STATUSES = {ContractStatus.draft.value: _l("Draft"), ContractStatus.active.value: _l("Active"),
            ContractStatus.changed.value: _l("Changed"), ContractStatus.terminated.value: _l("Terminated"),
            ContractStatus.expired.value: _l("Expired")}
VOUCHER_STATES = {VoucherState.draft.value: _l("Draft"), VoucherState.reviewed.value: _l("Reviewed"),
                  VoucherState.posted.value: _l("Posted")}
BUCKETS = (("not_due", _l("Not yet due")), ("d1_30", _l("1–30 days")), ("d31_60", _l("31–60 days")),
           ("d61_90", _l("61–90 days")), ("over_90", _l("Over 90 days")))
SENDERS = {"visitor": _l("Visitor"), "agent": _l("Agent"), "system": _l("System"), "note": _l("Agent")}


def direction(balance: object) -> str:
    """借 / 贷 / 平 for a debit-minus-credit balance."""
    return str(_l("Dr") if balance > 0 else _l("Cr") if balance < 0 else _l("Even"))  # type: ignore[operator]


def person(user: object) -> str:
    if user is None:
        return ""
    parts = [getattr(user, name, "") or "" for name in ("first_name", "last_name")]
    name = " ".join(p.strip() for p in parts if p.strip() not in ("", "-"))
    return name or getattr(user, "username", "") or ""


def _range_text(start: int, end: int) -> str:
    return period_label(start) if start == end else f"{period_label(start)} – {period_label(end)}"


def cache_key(session: Session, client_id: int, kind: str, start: int, end: int, extra: str = "") -> str | None:
    """The cache key of a ledger document, or ``None`` when its last month is not closed."""
    book = get_book(session, client_id)
    if end not in periods.closed_periods(session, book.id):
        return None
    version = periods.period_version(session, book.id, end)
    raw = f"{client_id}|{kind}|{start}|{end}|{extra}|{get_locale()}|v{version}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _base(session: Session, kind: str, client_id: int, subtitle: str, author: str, **fields) -> Document:  # noqa: ANN003
    client = session.get(Client, client_id)
    title = str(TITLES[kind])
    fields.setdefault("context", {})
    fields["context"].update(no_data=NO_DATA, direction=direction, label=period_label)
    fields.setdefault("filename", f"{kind}-{client_id}.pdf")
    return Document(kind=kind, title=title, template=kind.replace("-", "_") + ".html",
                    client_name=client.name if client else "", subtitle=subtitle, author=author,
                    generated_at=_now(), **fields)


def _now() -> datetime:
    from app.models.base import utcnow

    return datetime.strptime(to_display(utcnow(), "%Y-%m-%d %H:%M:%S"), "%Y-%m-%d %H:%M:%S")


def statement(session: Session, client_id: int, start: int, end: int, author: str, **_: object) -> Document:
    st = report_data.account_statement(session, client_id, last_day_of(start).replace(day=1), last_day_of(end))
    subtitle = f"{st.start.isoformat()} – {st.end.isoformat()}"
    return _base(session, "statement", client_id, subtitle, author, rows=st.entries,
                 context={"st": st, "buckets": BUCKETS, "services": SERVICES, "statuses": STATUSES},
                 filename=f"statement-{client_id}-{period_label(start)}-{period_label(end)}.pdf")


def vouchers(session: Session, client_id: int, start: int, end: int, author: str, **_: object) -> Document:
    sheets = report_data.vouchers_for_print(session, client_id, start, end)
    return _base(session, "vouchers", client_id, _range_text(start, end), author, rows=sheets,
                 context={"words": amount_in_words, "person": person, "states": VOUCHER_STATES})


def trial_balance(session: Session, client_id: int, start: int, end: int, author: str, **_: object) -> Document:
    report = ledger.trial_balance(session, client_id, period_label(start), period_label(end), hide_zero=True)
    return _base(session, "trial-balance", client_id, _range_text(start, end), author, rows=report.rows,
                 landscape=True, context={"report": report, "empty": not report.rows})


def general_ledger(session: Session, client_id: int, start: int, end: int, author: str, **_: object) -> Document:
    accounts = ledger.general_ledger(session, client_id, period_label(start), period_label(end))
    rows = []
    for account in accounts:
        rows.append({"kind": "opening", "code": account.code, "name": account.name, "period": period_label(start),
                     "summary": str(_l("Opening balance")), "debit": None, "credit": None,
                     "balance": account.opening})
        for month in account.months:
            label = period_label(month.period)
            rows.append({"kind": "month", "code": account.code, "name": account.name, "period": label,
                         "summary": str(_l("Total for the month")), "debit": month.debit, "credit": month.credit,
                         "balance": month.balance})
            rows.append({"kind": "year", "code": account.code, "name": account.name, "period": label,
                         "summary": str(_l("Total for the year to date")), "debit": month.ytd_debit,
                         "credit": month.ytd_credit, "balance": month.balance})
    return _base(session, "general-ledger", client_id, _range_text(start, end), author, rows=rows, landscape=True,
                 context={"accounts": accounts})


def detail_ledger(session: Session, client_id: int, start: int, end: int, author: str, account_code: str = "",
                  **_: object) -> Document:
    report = ledger.detail_ledger(session, client_id, account_code, period_label(start), period_label(end))
    subtitle = f"{report.account_code} {report.account_name} {_range_text(start, end)}"
    return _base(session, "detail-ledger", client_id, subtitle, author, rows=report.rows, landscape=True,
                 context={"report": report, "empty": not any(r.kind == "line" for r in report.rows)},
                 filename=f"detail-ledger-{client_id}-{report.account_code}.pdf")


def _preparers(session: Session, client_id: int) -> str:
    client = session.get(Client, client_id)
    return person(client.accountant) if client is not None else ""


def balance_sheet(session: Session, client_id: int, start: int, end: int, author: str, **_: object) -> Document:
    report = ledger.balance_sheet(session, client_id, period_label(end))
    assets = [ln for ln in report.lines if ln.line <= 30]
    claims = [ln for ln in report.lines if ln.line > 30]
    empty = not any(ln.first or ln.second for ln in report.lines)
    subtitle = str(_l("As at %(day)s", day=last_day_of(end).isoformat()))
    return _base(session, "balance-sheet", client_id, subtitle, author, rows=list(zip_longest(assets, claims)),
                 landscape=True, context={"report": report, "empty": empty,
                                          "accountant": _preparers(session, client_id),
                                          "form_no": str(_l("Form 01 for small enterprises"))})


def income_statement(session: Session, client_id: int, start: int, end: int, author: str, **_: object) -> Document:
    report = ledger.income_statement(session, client_id, period_label(end))
    empty = not any(ln.first or ln.second for ln in report.lines)
    return _base(session, "income-statement", client_id, period_label(end), author, rows=report.lines,
                 context={"report": report, "empty": empty, "form_no": str(_l("Form 02 for small enterprises")),
                          "accountant": _preparers(session, client_id)})


BUILDERS: dict[str, Callable[..., Document]] = {
    "statement": statement, "vouchers": vouchers, "trial-balance": trial_balance, "general-ledger": general_ledger,
    "detail-ledger": detail_ledger, "balance-sheet": balance_sheet, "income-statement": income_statement,
}


def transcript(session: Session, conversation_id: int, author: str) -> Document:
    """The agency's copy of a conversation (notes marked, whispers left out)."""
    conversation = report_data.get_conversation(session, conversation_id)
    lines = report_data.transcript_lines(session, conversation_id, internal=True)
    visitor = conversation.visitor
    visitor_name = (visitor.name if visitor is not None and visitor.name else "") or f"#{conversation.visitor_id}"
    subtitle = to_display(conversation.queued_at)
    if conversation.status == ConversationStatus.closed and conversation.closed_at:
        subtitle += " – " + to_display(conversation.closed_at)
    return Document(kind="transcript", title=str(TITLES["transcript"]), template="transcript.html",
                    client_name=visitor_name, subtitle=subtitle, author=author,
                    filename=f"transcript-{conversation_id}.pdf", rows=lines, generated_at=_now(),
                    context={"conversation": conversation, "visitor_name": visitor_name, "senders": SENDERS,
                             "when": lambda at: to_display(at, "%Y-%m-%d %H:%M:%S"), "no_data": NO_DATA})


def sync_limit() -> int:
    """Documents with more rows than this render as a background job (``REPORTS_SYNC_MAX_ROWS``)."""
    return int(current_app.config.get("REPORTS_SYNC_MAX_ROWS", 400))


def chunk_rows() -> int:
    """Rows per chunk of a background render (``REPORTS_CHUNK_ROWS``)."""
    return int(current_app.config.get("REPORTS_CHUNK_ROWS", 250))
