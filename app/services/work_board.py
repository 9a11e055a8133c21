"""The month's work board (月度工作台): each client's steps of one month, derived from the data.

The board of a month ``P`` (``YYYY-MM``, the month of the books) has a row for every active client
in scope and a cell for each step, in order:

``documents`` 资料收齐
    Cannot be derived: **done** when ticked by hand (:func:`tick`), with who and when; else
    **todo**. Unticking (:func:`untick`) is allowed; both are in the audit log.
``bookkeeping`` 记账
    **done** when the month has vouchers, else **todo** (not started); *at*: the last voucher made.
``review`` 审核
    **done** when the month has vouchers and none is left in draft, else **todo**; *at*: the last
    review.
``close`` 结账
    **done** when the month is closed in the client's books, with who and when; else **todo**.
``filing`` 报税
    The month's filing records are those of the period ending with ``P`` (the month ``P``, its
    quarter when ``P`` ends one, its year in December) that are due in the month after ``P`` (so
    the annual 企业所得税 settlement, due on 31 May, is not December's). **na** when there is
    none; **done** when every one is filed or paid (who and when: the last filed); else **todo**.
``payment`` 缴款
    **na** when there is no record or every record is a filed zero return (nothing to pay);
    **done** when every record but the filed zero returns is paid (the last paid); else **todo**.
``fee`` 收费
    The month's fee bills are the bills whose billing period contains a day of ``P``; payments
    on a contract settle its bills oldest first, so a bill is paid when the contract's payments
    reach the sum of its bills up to that one. **na** when no bill covers the month; **done**
    when every one is paid; else **todo**.

The month's filing deadline is the calendar's deadline of the month after ``P``
(app/services/tax_calendar.py). A step still **todo** on a day after the deadline is **late**;
from ``DUE_SOON_DAYS`` days before it to the deadline itself it is **due_soon**.

The whole board is a constant number of statements however many clients it has (one per kind
of data). Only ``documents`` can be ticked by hand (``MANUAL_STEPS``); the other cells say what the
data says and are read-only.

Errors: ``ValidationFailed`` naming ``period``, ``step`` or ``accountant_id``; ``NotFound`` for a
client that does not exist or is outside the user's scope.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from app.models.contracts import Contract, FeeBill, Payment
from app.models.crm import Client, ClientStatus
from app.models.ledger import LedgerBook, Period, PeriodStatus, Voucher, VoucherState
from app.models.tax_filing import FilingStatus, TaxFiling
from app.models.work_board import WorkBoardTick
from app.services.accounting import next_period, parse_period, period_label
from app.services.errors import NotFound, ValidationFailed
from app.services.tax_calendar import deadline

STEPS = ("documents", "bookkeeping", "review", "close", "filing", "payment", "fee")
MANUAL_STEPS = ("documents",)
DONE, TODO, NA = "done", "todo", "na"
LATE, DUE_SOON = "late", "due_soon"
DUE_SOON_DAYS = 3
FIRST_YEAR, LAST_YEAR = 2000, 2099


@dataclass
class Cell:
    """One step of one client's month: ``state`` (done / todo / na), who and when where the data
    has it, and ``late`` (``late``, ``due_soon`` or ``None``)."""

    state: str
    by: str | None = None
    at: datetime | date | None = None
    late: str | None = None


@dataclass
class Row:
    client_id: int
    client_name: str
    accountant: str | None
    accountant_id: int | None
    cells: dict[str, Cell] = field(default_factory=dict)

    def open_steps(self) -> list[str]:
        return [step for step in STEPS if self.cells[step].state == TODO]


@dataclass
class Board:
    period: int
    deadline: date
    deadline_source: str
    rows: list[Row]

    @property
    def label(self) -> str:
        return period_label(self.period)


def parse_board_period(value: object) -> int:
    """``YYYY-MM`` from 2000 to 2099 → ``YYYYMM``. Raises ``ValidationFailed`` naming ``period``."""
    month = parse_period(value, "period")
    if not FIRST_YEAR <= month // 100 <= LAST_YEAR:
        raise ValidationFailed({"period": [str(_l("A month from %(first)d to %(last)d.", first=FIRST_YEAR,
                                                     last=LAST_YEAR))]})
    return month


def parse_step(value: object) -> str:
    """A step that may be ticked by hand. Raises ``ValidationFailed`` naming ``step``."""
    if value not in MANUAL_STEPS:
        raise ValidationFailed({"step": [str(_l("Only the documents received are ticked by hand; the other "
                                                "steps follow the data."))]})
    return str(value)


def filing_periods(period: int) -> list[str]:
    """The filing periods that end with the month *period*: ``2026-03`` → ``["2026-03", "2026-Q1"]``;
    ``2026-12`` → ``["2026-12", "2026-Q4", "2026"]``."""
    year, month = divmod(period, 100)
    found = [period_label(period)]
    if month % 3 == 0:
        found.append(f"{year:04d}-Q{month // 3}")
    if month == 12:
        found.append(f"{year:04d}")
    return found


def month_bounds(period: int) -> tuple[date, date]:
    year, month = divmod(period, 100)
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def lateness(due: date, today: date) -> str | None:
    """``late`` after *due*, ``due_soon`` from ``DUE_SOON_DAYS`` days before it to *due*, else ``None``."""
    if today > due:
        return LATE
    if (due - today).days <= DUE_SOON_DAYS:
        return DUE_SOON
    return None


def _clients(session: Session, scope: int | None, accountant_id: int | None, name: str | None,
             client_ids: list[int] | None) -> list[Any]:
    from flask_appbuilder.security.sqla.models import User

    stmt = (select(Client.id, Client.name, Client.accountant_id, User.username)
            .outerjoin(User, User.id == Client.accountant_id)
            .where(Client.status == ClientStatus.active).order_by(Client.name, Client.id))
    if scope is not None:
        stmt = stmt.where(Client.accountant_id == scope)
    if accountant_id is not None:
        stmt = stmt.where(Client.accountant_id == accountant_id)
    if name:
        stmt = stmt.where(Client.name.contains(name, autoescape=True))
    if client_ids is not None:
        stmt = stmt.where(Client.id.in_(client_ids))
    return list(session.execute(stmt))


def compute(session: Session, period: object, today: date, *, scope: int | None = None,
            accountant_id: int | None = None, name: str | None = None,
            client_ids: list[int] | None = None) -> Board:
    """The board of *period* (``YYYY-MM``) on *today*: the active clients of *scope* (an accountant's
    id, ``None``: every client), narrowed to *accountant_id*, a part of the *name* and *client_ids*
    when given; rules in the module docstring. Raises ``ValidationFailed`` naming ``period``."""
    from flask_appbuilder.security.sqla.models import User

    month = parse_board_period(period)
    due = deadline(session, *divmod(next_period(month), 100))
    clients = _clients(session, scope, accountant_id, (name or "").strip()[:100] or None, client_ids)
    ids = [c.id for c in clients]
    rows = [Row(c.id, c.name, c.username, c.accountant_id) for c in clients]
    if not ids:
        return Board(month, due.due, due.source, rows)

    ticks = {(t.client_id, t.step): t for t in session.execute(
        select(WorkBoardTick.client_id, WorkBoardTick.step, WorkBoardTick.ticked_at, User.username)
        .outerjoin(User, User.id == WorkBoardTick.ticked_by_id)
        .where(WorkBoardTick.client_id.in_(ids), WorkBoardTick.period == month))}
    vouchers = {v.client_id: v for v in session.execute(
        select(Voucher.client_id, func.count(Voucher.id).label("made"),
               func.sum(case((Voucher.state == VoucherState.draft, 1), else_=0)).label("drafts"),
               func.max(Voucher.created_at).label("last_made"), func.max(Voucher.reviewed_at).label("last_reviewed"))
        .where(Voucher.client_id.in_(ids), Voucher.period == month).group_by(Voucher.client_id))}
    closed = {p.client_id: p for p in session.execute(
        select(LedgerBook.client_id, Period.closed_at, User.username)
        .join(Period, Period.book_id == LedgerBook.id).outerjoin(User, User.id == Period.closed_by_id)
        .where(LedgerBook.client_id.in_(ids), Period.period == month, Period.status == PeriodStatus.closed))}
    filer, payer = aliased(User), aliased(User)
    filing_month = month_bounds(next_period(month))
    filings: dict[int, list[Any]] = {}
    for f in session.execute(
            select(TaxFiling.client_id, TaxFiling.status, TaxFiling.zero_return, TaxFiling.filed_at,
                   TaxFiling.paid_at, filer.username.label("filed_by"), payer.username.label("paid_by"))
            .outerjoin(filer, filer.id == TaxFiling.filed_by_id).outerjoin(payer, payer.id == TaxFiling.paid_by_id)
            .where(TaxFiling.client_id.in_(ids), TaxFiling.period.in_(filing_periods(month)),
                   TaxFiling.due >= filing_month[0], TaxFiling.due <= filing_month[1])):
        filings.setdefault(f.client_id, []).append(f)
    fees: dict[int, list[bool]] = {}
    for client_id, paid in session.execute(_month_bills(ids, month)):
        fees.setdefault(client_id, []).append(bool(paid))

    for row in rows:
        cid = row.client_id
        tick = ticks.get((cid, "documents"))
        row.cells["documents"] = Cell(DONE, tick.username, tick.ticked_at) if tick else Cell(TODO)
        made = vouchers.get(cid)
        if made is None:
            row.cells["bookkeeping"] = Cell(TODO)
            row.cells["review"] = Cell(TODO)
        else:
            row.cells["bookkeeping"] = Cell(DONE, at=made.last_made)
            row.cells["review"] = Cell(DONE, at=made.last_reviewed) if not made.drafts else Cell(TODO)
        close = closed.get(cid)
        row.cells["close"] = Cell(DONE, close.username, close.closed_at) if close else Cell(TODO)
        row.cells["filing"], row.cells["payment"] = _filing_cells(filings.get(cid, []))
        bills = fees.get(cid, [])
        row.cells["fee"] = Cell(NA) if not bills else Cell(DONE) if all(bills) else Cell(TODO)
        for cell in row.cells.values():
            if cell.state == TODO:
                cell.late = lateness(due.due, today)
    return Board(month, due.due, due.source, rows)


def _filing_cells(records: list[Any]) -> tuple[Cell, Cell]:
    if not records:
        return Cell(NA), Cell(NA)
    filed = [r for r in records if r.status in (FilingStatus.filed, FilingStatus.paid)]
    if len(filed) == len(records):
        last = max(filed, key=lambda r: r.filed_at or datetime.min)
        filing = Cell(DONE, last.filed_by, last.filed_at)
    else:
        filing = Cell(TODO)
    to_pay = [r for r in records if not (r.zero_return and r.status is not FilingStatus.pending)]
    if not to_pay:
        return filing, Cell(NA)
    if all(r.status is FilingStatus.paid for r in to_pay):
        last = max(to_pay, key=lambda r: r.paid_at or datetime.min)
        return filing, Cell(DONE, last.paid_by, last.paid_at)
    return filing, Cell(TODO)


def bill_settled():  # noqa: ANN201
    """Whether a fee bill (``FeeBill`` in the enclosing query) is paid: its contract's payments
    reach the sum of the contract's bills up to this one (payments settle the oldest bills first)."""
    earlier = aliased(FeeBill)
    billed_through = (select(func.coalesce(func.sum(earlier.amount), 0))
                      .where(earlier.contract_id == FeeBill.contract_id, earlier.period_start <= FeeBill.period_start)
                      .scalar_subquery())
    received = (select(func.coalesce(func.sum(Payment.amount), 0)).where(Payment.contract_id == FeeBill.contract_id)
                .scalar_subquery())
    return billed_through <= received


def _month_bills(client_ids: list[int], month: int):  # noqa: ANN202
    """``(client_id, paid)`` of every bill whose billing period has a day of *month*: paid when the
    contract's payments reach the sum of its bills up to this one (oldest first)."""
    first, last = month_bounds(month)
    return (select(Contract.client_id, bill_settled().label("paid")).select_from(FeeBill)
            .join(Contract, Contract.id == FeeBill.contract_id)
            .where(Contract.client_id.in_(client_ids), FeeBill.period_start <= last, FeeBill.period_end >= first))


def unpaid_bills(as_of: date, scope: int | None = None):  # noqa: ANN201
    """A select of the ids of the bills due before *as_of* and not paid (payments settle a
    contract's bills oldest first), of *scope*'s clients when given: the overdue fees."""
    stmt = select(FeeBill.id).where(FeeBill.due_date < as_of, ~bill_settled())
    if scope is not None:
        stmt = stmt.where(FeeBill.contract_id.in_(select(Contract.id).join(Client, Client.id == Contract.client_id)
                                                  .where(Client.accountant_id == scope)))
    return stmt


def _client_in_scope(session: Session, client_id: object, scope: int | None) -> int:
    from app.services.inputs import parse_id

    cid = parse_id(client_id)
    if cid is None:
        raise ValidationFailed({"client_id": [str(_l("A whole number from %(n)d.", n=1))]})
    stmt = select(Client.id).where(Client.id == cid)
    if scope is not None:
        stmt = stmt.where(Client.accountant_id == scope)
    if session.scalar(stmt) is None:
        raise NotFound(str(_l("No such client.")))
    return cid


def tick(session: Session, client_id: object, period: object, step: object, user_id: int | None,
         scope: int | None = None) -> WorkBoardTick:
    """Tick *step* (a ``MANUAL_STEPS`` one) of *client_id*'s *period* by *user_id*, now; ticking
    a ticked step keeps the first tick. *scope* is the user's (an accountant's id, ``None``: every
    client). Commit and return the tick. Raises ``ValidationFailed`` (``client_id``, ``period``,
    ``step``) or ``NotFound`` (no such client in scope)."""
    month = parse_board_period(period)
    name = parse_step(step)
    cid = _client_in_scope(session, client_id, scope)
    found = session.scalar(select(WorkBoardTick).where(WorkBoardTick.client_id == cid, WorkBoardTick.period == month,
                                                       WorkBoardTick.step == name))
    if found is not None:
        return found
    made = WorkBoardTick(client_id=cid, period=month, step=name, ticked_by_id=user_id)
    session.add(made)
    try:
        session.commit()
    except IntegrityError:  # ticked at the same time by another request: theirs stands
        session.rollback()
        return session.scalars(select(WorkBoardTick).where(
            WorkBoardTick.client_id == cid, WorkBoardTick.period == month, WorkBoardTick.step == name)).one()
    return made


def untick(session: Session, client_id: object, period: object, step: object, scope: int | None = None) -> bool:
    """Clear the tick of *step*; commit and return whether there was one. Errors as :func:`tick`."""
    month = parse_board_period(period)
    name = parse_step(step)
    cid = _client_in_scope(session, client_id, scope)
    found = session.scalar(select(WorkBoardTick).where(WorkBoardTick.client_id == cid, WorkBoardTick.period == month,
                                                       WorkBoardTick.step == name))
    if found is None:
        return False
    session.delete(found)
    session.commit()
    return True


def _utc(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return f"{value.isoformat(timespec='seconds')}Z"
    return value.isoformat()


def board_json(board: Board) -> dict:
    """The board as the API writes it (times in UTC)."""
    return {
        "period": board.label, "deadline": board.deadline.isoformat(), "deadline_source": board.deadline_source,
        "rows": [{"client_id": r.client_id, "client_name": r.client_name, "accountant": r.accountant,
                  "cells": {step: {"state": c.state, "by": c.by, "at": _utc(c.at), "late": c.late}
                            for step, c in r.cells.items()}} for r in board.rows],
    }

