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

import base64
import functools
import hashlib
from collections.abc import Callable
from datetime import datetime
from itertools import zip_longest

from flask import current_app
from flask_babel import get_locale, lazy_pgettext
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.models.chat import ConversationStatus
from app.models.contracts import ContractStatus, ServiceType
from app.models.crm import Client
from app.models.ledger import VoucherState
from app.services import chat, periods, report_data
from app.services import ledger_reports as ledger
from app.services.accounting import last_day_of, period_label
from app.services.books import get_book
from app.services.timefmt import to_display
from app.views.ledger_screens_print import amount_in_words
from reports.lines import Column, Grid, paginate
from reports.pdf import MONO_FAMILY
from reports.render import NO_DATA, Document, money

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
    "tax-worksheet": _l("Tax worksheet"),
    "chat-analytics": _l("Chat analytics"),
}
SERVICES = {ServiceType.bookkeeping.value: _l("Bookkeeping"), ServiceType.tax_filing.value: _l("Tax filing"),
            ServiceType.business_registration.value: _l("Business registration"), ServiceType.other.value: _l("Other")}
STATUSES = {ContractStatus.draft.value: _l("Draft"),
            ContractStatus.active.value: lazy_pgettext("contract status", "Active"),
            ContractStatus.changed.value: _l("Changed"), ContractStatus.terminated.value: _l("Terminated"),
            ContractStatus.expired.value: _l("Expired")}
VOUCHER_STATES = {VoucherState.draft.value: _l("Draft"), VoucherState.reviewed.value: _l("Reviewed"),
                  VoucherState.posted.value: _l("Posted")}
BUCKETS = (("not_due", _l("Not yet due")), ("d1_30", _l("1–30 days")), ("d31_60", _l("31–60 days")),
           ("d61_90", _l("61–90 days")), ("over_90", _l("Over 90 days")))
SENDERS = {"visitor": _l("Visitor"), "agent": _l("Agent"), "system": _l("System"), "note": _l("Agent"),
           "bot": _l("Assistant (bot)")}


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


@functools.cache
def _layout_version() -> str:
    """A fingerprint of the statements' line formulas: a PDF cached under other formulas (lines
    4–10 of the income statement were once blank) is not served again."""
    from app.services.ledger_reports import BALANCE_SHEET_CSV, INCOME_STATEMENT_CSV

    digest = hashlib.sha256()
    for path in (BALANCE_SHEET_CSV, INCOME_STATEMENT_CSV):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_key(session: Session, client_id: int, kind: str, start: int, end: int, extra: str = "") -> str | None:
    """The cache key of a ledger document, or ``None`` when its last month is not closed."""
    book = get_book(session, client_id)
    if end not in periods.closed_periods(session, book.id):
        return None
    version = periods.period_version(session, book.id, end)
    raw = f"{client_id}|{kind}|{start}|{end}|{extra}|{get_locale()}|v{version}|{_layout_version()}"
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


def vouchers(session: Session, client_id: int, start: int, end: int, author: str, voucher_id: int | None = None,
             **_: object) -> Document:
    """The vouchers of the months *start*..*end*, or the one voucher *voucher_id* of them."""
    sheets = report_data.vouchers_for_print(session, client_id, start, end, voucher_id)
    extra = {} if voucher_id is None else {"filename": f"voucher-{client_id}-{period_label(start)}-{voucher_id}.pdf"}
    return _base(session, "vouchers", client_id, _range_text(start, end), author, rows=sheets,
                 context={"words": amount_in_words, "person": person, "states": VOUCHER_STATES}, **extra)


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
    sheets = LedgerSheets(report.rows)
    return _base(session, "detail-ledger", client_id, subtitle, author, rows=report.rows, landscape=True,
                 context={"report": report, "empty": not any(r.kind == "line" for r in report.rows),
                          "sheets": sheets},
                 filename=f"detail-ledger-{client_id}-{report.account_code}.pdf",
                 chunk_rows=chunk_rows() * LINE_CHUNK_FACTOR, page_plan=sheets.page_count, font_family=MONO_FAMILY)


LINE_CELLS = 168  # half-width cells in a line of 9pt Noto Sans Mono CJK across landscape A4 (273 mm)
LINES_PER_PAGE = 36  # data lines under the column header on a page (4.6 mm a line, 176 mm of page)
LINE_HEIGHT = 4.6  # mm
LINE_CHUNK_FACTOR = 4  # a ruled line costs WeasyPrint ~1/6 of a table row; each chunk more costs ~0.2 s to merge
LINES_FIRST_PAGE = 30  # the first page of a chunk also carries the title block


class LedgerSheets:
    """The detail ledger's rows as pages of ruled fixed-width lines (``reports.lines``).

    Built once per document (column widths over all its rows, so that chunks rendered apart
    line up); the template calls it with each chunk's rows: ``sheets(rows, first)`` → pages of
    ``(kind, text)`` lines, the header line being ``sheets.header``. Kinds: ``line``,
    ``opening``, ``total``. Needs the request's locale (headers and labels are translated).
    """

    def __init__(self, rows: list) -> None:
        self._cells = {id(r): self.cells(r) for r in rows}
        self.grid = Grid.fit((Column(str(_l("Date")), least=10), Column(str(_l("Voucher")), least=8),
                              Column(str(_l("Summary")), flex=True, least=24),
                              Column(str(_l("Debit")), "right", least=14), Column(str(_l("Credit")), "right", least=14),
                              Column(str(_l("Dr/Cr")), "center"), Column(str(_l("Balance")), "right", least=14)),
                             list(self._cells.values()), LINE_CELLS)
        self.header = self.grid.header()
        self._pages: dict[tuple[int, int, bool], list[list[tuple[str, str]]]] = {}

    @staticmethod
    def cells(r: object) -> tuple[str, ...]:
        """One ledger row as the texts of its seven cells (as the table showed them)."""
        kind = r.kind  # type: ignore[attr-defined]
        balance = (direction(r.balance), money(abs(r.balance)))  # type: ignore[attr-defined]
        if kind == "opening":
            return (period_label(r.period), "", str(_l("Opening balance")), "", "", *balance)  # type: ignore[attr-defined]
        if kind == "line":
            return (r.date.isoformat(), str(r.voucher or ""), str(r.summary or ""),  # type: ignore[attr-defined]
                    money(r.debit, blank_zero=True), money(r.credit, blank_zero=True), *balance)  # type: ignore[attr-defined]
        label = _l("Total for the month") if kind == "month_total" else _l("Total for the year to date")
        return (period_label(r.period), "", str(label), money(r.debit), money(r.credit), *balance)  # type: ignore[attr-defined]

    def rules_css(self) -> str:
        """The page block's rules as ONE background picture (SVG, drawn the same on every page
        and clipped to the block's height): a rule under every line, the vertical rules between
        the columns (a cell is 0.5em = 4.5pt), the header line's shade. All rules are one path:
        WeasyPrint draws an SVG node by node on every page (one node a rule cost ~0.2 s over a
        2,000-line ledger). Gradients would do the same but make every page carry shading
        functions that cost a second to merge."""
        cell, line = 4.5, LINE_HEIGHT * 72 / 25.4  # pt
        wide, high = self.grid.total * cell, (LINES_PER_PAGE + 1) * line
        strokes = [f"M0 {n * line - 0.25:.2f}H{wide:.2f}" for n in range(1, LINES_PER_PAGE + 2)]
        strokes += [f"M{x * cell:.2f} 0V{high:.2f}" for x in self.grid.rules()]
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{wide:.2f}pt" height="{high:.2f}pt" '
               f'viewBox="0 0 {wide:.2f} {high:.2f}"><rect width="{wide:.2f}" height="{line:.2f}" fill="#eee"/>'
               f'<path d="{" ".join(strokes)}" stroke="#555" stroke-width="0.5"/></svg>')
        data = base64.b64encode(svg.encode()).decode()
        return (f'background: url("data:image/svg+xml;base64,{data}") 0 0 / {wide:.2f}pt {high:.2f}pt no-repeat; '
                f"line-height: {LINE_HEIGHT:.2f}mm; width: {wide:.2f}pt;")

    def __call__(self, rows: list, first: bool) -> list[list[tuple[str, str]]]:
        """The pages of *rows* (a chunk; *first*: the chunk that starts with the title block);
        the same chunk asked again is not paginated again."""
        key = (id(rows[0]) if rows else 0, len(rows), first)
        if key not in self._pages:
            self._pages[key] = self._paginate(rows, first)
        return self._pages[key]

    def page_count(self, rows: list, first: bool) -> int:
        """How many pages *rows* print (the document's ``page_plan``)."""
        return len(self(rows, first))

    def _paginate(self, rows: list, first: bool) -> list[list[tuple[str, str]]]:
        blocks = []
        for r in rows:
            cells = self._cells.get(id(r)) or self.cells(r)
            kind = {"line": "line", "opening": "opening"}.get(r.kind, "total")
            blocks.append((kind, self.grid.row(cells)))
        return paginate(blocks, LINES_FIRST_PAGE if first else LINES_PER_PAGE, LINES_PER_PAGE)


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


def tax_worksheet(session: Session, client_id: int, period: str, author: str) -> Document:
    """The tax worksheet of *client_id* for *period* (``2026-03`` or ``2026-Q1``), as on screen."""
    from app.models.tax import TaxKind
    from app.services import tax_worksheet as worksheet_svc
    from app.views.labels import ENUM_LABELS

    sheet = worksheet_svc.worksheet(session, client_id, period)
    subtitle = f"{sheet.period.label} ({sheet.period.start.isoformat()} – {sheet.period.end.isoformat()})"
    return _base(session, "tax-worksheet", client_id, subtitle, author, rows=sheet.lines,
                 context={"sheet": sheet, "labels": {tax: str(label) for tax, label in ENUM_LABELS[TaxKind].items()},
                          "accountant": _preparers(session, client_id)},
                 filename=f"tax-worksheet-{client_id}-{sheet.period.label}.pdf")


BUILDERS: dict[str, Callable[..., Document]] = {
    "statement": statement, "vouchers": vouchers, "trial-balance": trial_balance, "general-ledger": general_ledger,
    "detail-ledger": detail_ledger, "balance-sheet": balance_sheet, "income-statement": income_statement,
}


def transcript(session: Session, conversation_id: int, author: str, internal: bool = False,
               visitor_copy: bool = False) -> Document:
    """The agency's copy of a conversation: internal notes marked when *internal* (a reader who may
    see them, ``chat_inbox.transcript_access``), whispers always left out. *visitor_copy*: the copy
    a visitor downloads from the widget, with what they saw only (never notes) and no word of
    internal matters."""
    conversation = chat.get_conversation(session, conversation_id)
    internal = internal and not visitor_copy
    lines = report_data.transcript_lines(session, conversation_id, internal=internal)
    visitor = conversation.visitor
    visitor_name = (visitor.name if visitor is not None and visitor.name else "") or f"#{conversation.visitor_id}"
    subtitle = to_display(conversation.queued_at)
    if conversation.status == ConversationStatus.closed and conversation.closed_at:
        subtitle += " – " + to_display(conversation.closed_at)
    return Document(kind="transcript", title=str(TITLES["transcript"]), template="transcript.html",
                    client_name=visitor_name, subtitle=subtitle, author=author,
                    filename=f"transcript-{conversation_id}.pdf", rows=lines, generated_at=_now(),
                    context={"conversation": conversation, "visitor_name": visitor_name, "senders": SENDERS,
                             "when": lambda at: to_display(at, "%Y-%m-%d %H:%M:%S"), "no_data": NO_DATA,
                             "visitor_copy": visitor_copy})


def chat_analytics(scope: str, subtitle: str, author: str, sections: list[dict], **context: object) -> Document:
    """The chat analytics (统计分析) as one landscape document: each section (``title``, pygal
    ``charts`` as inline SVG, and ``rows`` with ``columns``, a ``heat`` grid or a ``summary``) as
    the screen shows it (``app.views.chat_analytics``). Never cached: chats do not close."""
    return Document(kind="chat-analytics", title=str(TITLES["chat-analytics"]), template="chat_analytics.html",
                    client_name=scope, subtitle=subtitle, author=author, landscape=True,
                    filename=f"chat-analytics-{subtitle.replace(' ', '')}.pdf", generated_at=_now(),
                    context={"sections": sections, "scope": scope, "no_data": NO_DATA, **context})


def sync_limit() -> int:
    """Documents with more rows than this render as a background job (``REPORTS_SYNC_MAX_ROWS``)."""
    return int(current_app.config.get("REPORTS_SYNC_MAX_ROWS", 400))


def chunk_rows() -> int:
    """Rows per chunk of a background render (``REPORTS_CHUNK_ROWS``)."""
    return int(current_app.config.get("REPORTS_CHUNK_ROWS", 250))
