"""Period close (结账) and reopen (反结账).

Closing a month checks, each with its own message: the opening balances balance, the previous
month is closed (unless it is the first month of the books), every voucher is posted, and the
voucher numbers have no gaps. It then generates and posts the profit-and-loss carry-forward
voucher (结转损益, word 转): every profit-and-loss (5xxx) leaf account with activity is cleared to
3103 本年利润; in December 3103's year balance moves on to 3104 利润分配 in the same voucher.
Closed months refuse any new, edited or reversed voucher (``vouchers.ensure_open``).

Reopening is allowed for the latest closed month only; it deletes that month's carry-forward
voucher. Each close and reopen bumps the month's ``version`` (caches of closed months use it).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.ledger import (
    Account,
    AccountCategory,
    LedgerBook,
    OpeningBalance,
    Period,
    PeriodStatus,
    Voucher,
    VoucherKind,
    VoucherLine,
    VoucherState,
    VoucherWord,
)
from app.services import audit, books
from app.services.accounting import (
    ZERO,
    check_total,
    exact_sums,
    last_day_of,
    parse_period,
    period_label,
    previous_period,
)
from app.services.errors import Conflict, ValidationFailed
from app.services.vouchers import LineInput, is_closed, lock_book, next_number, number_gaps, retrying, write_lines

PROFIT_CODE = "3103"  # 本年利润
DISTRIBUTION_CODE = "3104"  # 利润分配
PL_CATEGORIES = (AccountCategory.income, AccountCategory.expense)


@dataclass(frozen=True)
class CloseResult:
    period: int
    carry_forward: Voucher | None


def closed_periods(session: Session, book_id: int) -> list[int]:
    return list(session.scalars(select(Period.period).where(
        Period.book_id == book_id, Period.status == PeriodStatus.closed).order_by(Period.period)))


def latest_closed(session: Session, book_id: int) -> int | None:
    return session.scalar(select(func.max(Period.period)).where(
        Period.book_id == book_id, Period.status == PeriodStatus.closed))


def period_version(session: Session, book_id: int, period: int) -> int:
    """Grows on every close and reopen of the month (0 for a month never closed)."""
    return session.scalar(select(Period.version).where(Period.book_id == book_id, Period.period == period)) or 0


def close_problems(session: Session, book: LedgerBook, period: int) -> list[str]:
    """Why *period* cannot be closed yet (empty when it can)."""
    problems: list[str] = []
    check = books.opening_check(session, book.id)
    if not check.balanced:
        problems.append(str(_l("The opening balances do not balance (debit %(debit)s, credit %(credit)s).",
                               debit=check.debit, credit=check.credit)))
    if period > book.start_period and not is_closed(session, book.id, previous_period(period)):
        problems.append(str(_l("Close the previous period %(period)s first.",
                               period=period_label(previous_period(period)))))
    unposted = session.scalar(select(func.count()).select_from(Voucher).where(
        Voucher.book_id == book.id, Voucher.period == period, Voucher.state != VoucherState.posted))
    if unposted:
        problems.append(str(_l("%(n)d voucher(s) of this period are not posted yet.", n=unposted)))
    gaps = number_gaps(session, book.id, period)
    if gaps:
        listed = "; ".join(f"{word.value}: {', '.join(str(n) for n in numbers)}" for word, numbers in gaps.items())
        problems.append(str(_l("Voucher numbers have gaps (%(gaps)s); renumber the period first.", gaps=listed)))
    return problems


def _leaf_for(session: Session, book_id: int, code: str, prefer: str | None = None) -> Account:
    """The account *code* if it is a leaf, else its leaf sub-account named *prefer* or the first one."""
    account = books.account_by_code(session, book_id, code)
    if account is None:
        raise ValidationFailed({"_": [str(_l("Account %(code)s is missing from the chart.", code=code))]})
    if account.is_leaf:
        return account
    leaves = list(session.scalars(select(Account).where(
        Account.book_id == book_id, Account.code.like(code + "%"), Account.is_leaf.is_(True)).order_by(Account.code)))
    preferred = [a for a in leaves if prefer and prefer in a.name]
    return (preferred or leaves)[0]


def _carry_forward_lines(session: Session, book_id: int, period: int) -> list[LineInput]:
    """Lines that clear the month's profit-and-loss activity to 3103 (and, in December, 3103 to 3104)."""
    rows = session.execute(
        select(Account, func.sum(VoucherLine.debit - VoucherLine.credit))
        .join(VoucherLine, VoucherLine.account_id == Account.id)
        .where(VoucherLine.book_id == book_id, VoucherLine.period == period, VoucherLine.posted.is_(True),
               Account.category.in_(PL_CATEGORIES))
        .group_by(Account.id).order_by(Account.code)).all()
    profit = _leaf_for(session, book_id, PROFIT_CODE)
    lines: list[LineInput] = []
    to_profit = ZERO  # debit-minus-credit that lands on 3103
    for account, net in rows:
        net = Decimal(net or 0)
        if not net:
            continue
        memo = str(_l("Carry forward %(name)s", name=account.name))
        # Clear the account: post the opposite of its debit-minus-credit activity.
        lines.append(LineInput(account, -net if net < 0 else ZERO, net if net > 0 else ZERO, memo))
        to_profit += net
    if to_profit:
        memo = str(_l("Profit and loss carried forward"))
        lines.append(LineInput(profit, to_profit if to_profit > 0 else ZERO, -to_profit if to_profit < 0 else ZERO,
                               memo))
    if period % 100 == 12:
        # 3103's balance for the year after this month's lines: opening + posted lines + the lines above.
        year_total = session.scalar(
            select(func.coalesce(func.sum(VoucherLine.debit - VoucherLine.credit), 0))
            .where(VoucherLine.book_id == book_id, VoucherLine.account_id == profit.id,
                   VoucherLine.posted.is_(True), VoucherLine.period <= period)) or ZERO
        opening = session.scalar(
            select(func.coalesce(func.sum(OpeningBalance.debit - OpeningBalance.credit), 0))
            .where(OpeningBalance.account_id == profit.id)) or ZERO
        this_month = sum((line.debit - line.credit for line in lines if line.account.id == profit.id), ZERO)
        balance = Decimal(year_total) + Decimal(opening) + this_month
        if balance:
            distribution = _leaf_for(session, book_id, DISTRIBUTION_CODE, prefer="未分配利润")
            memo = str(_l("Profit of the year carried to profit distribution"))
            # balance is debit-minus-credit of 3103: a profit is a credit balance (negative here).
            lines.append(LineInput(profit, -balance if balance < 0 else ZERO, balance if balance > 0 else ZERO, memo))
            lines.append(LineInput(distribution, balance if balance > 0 else ZERO, -balance if balance < 0 else ZERO,
                                   memo))
    return lines


@retrying
@exact_sums
def close_period(session: Session, client_id: int, period: object, user_id: int | None) -> CloseResult:
    """结账: check the preconditions, post the carry-forward voucher, mark *period* closed.

    The carry-forward voucher is made by the system (no maker) and reviewed and posted by
    *user_id*. Everything after the period's parsing runs under the books lock.

    Raises ``ValidationFailed`` (bad period, before the books start, a carry-forward line or total
    beyond the largest amount), ``Conflict`` (already closed, or preconditions unmet: the message
    lists each). Commits.
    """
    book = books.get_book(session, client_id)
    month = parse_period(period)
    if month < book.start_period:
        raise ValidationFailed({"period": [str(_l("The books start in %(start)s.",
                                                  start=period_label(book.start_period)))]})
    # The checks below run under the books lock: no voucher can be saved, edited or un-posted in
    # the month between "everything is posted" and the month being closed.
    lock_book(session, book.id)
    if is_closed(session, book.id, month):
        raise Conflict({"period": [str(_l("The period %(period)s is already closed.", period=period_label(month)))]})
    problems = close_problems(session, book, month)
    if problems:
        raise Conflict({"period": problems})
    lines = _carry_forward_lines(session, book.id, month)
    try:  # the carry-forward voucher stores these sums: each line and its total must be amounts
        for line in lines:
            check_total(line.debit or line.credit, "period")
        check_total(sum((line.debit for line in lines), ZERO), "period")
    except ValidationFailed:
        session.rollback()
        raise
    voucher = None
    if lines:
        last_day = session.scalar(select(func.max(Voucher.date)).where(
            Voucher.book_id == book.id, Voucher.period == month))
        voucher = Voucher(
            book_id=book.id, client_id=client_id, period=month, word=VoucherWord.zhuan,
            number=next_number(session, book.id, month, VoucherWord.zhuan),
            date=max(last_day_of(month), last_day) if last_day else last_day_of(month),
            summary=str(_l("Carry forward profit and loss of %(period)s", period=period_label(month))),
            attachments=0, state=VoucherState.posted, kind=VoucherKind.carry_forward, version=1, reviewed_version=1,
            # Made by the system; the person who closes the month reviews and posts it.
            maker_id=None, reviewer_id=user_id, reviewed_at=utcnow(), poster_id=user_id, posted_at=utcnow())
        session.add(voucher)
        write_lines(session, voucher, lines, carry_forward=True)
    row = session.scalar(select(Period).where(Period.book_id == book.id, Period.period == month))
    if row is None:
        row = Period(book_id=book.id, period=month, version=0)
        session.add(row)
    row.status, row.closed_at, row.closed_by_id = PeriodStatus.closed, utcnow(), user_id
    row.version = (row.version or 0) + 1
    audit.record_event(session, "period_close", object_type="ledger_period", object_id=f"{book.id}:{month}",
                       summary=f"{book.client.name} {period_label(month)}")
    session.commit()
    return CloseResult(month, voucher)


@retrying
def reopen_period(session: Session, client_id: int, period: object, user_id: int | None) -> int:  # noqa: ARG001
    """反结账: reopen the latest closed month and delete its carry-forward voucher.

    Raises ``ValidationFailed`` (bad period) and ``Conflict`` (not closed, or a later month is
    closed). Commits; the audit log records who reopened what.
    """
    book = books.get_book(session, client_id)
    month = parse_period(period)
    lock_book(session, book.id)
    if not is_closed(session, book.id, month):
        raise Conflict({"period": [str(_l("The period %(period)s is not closed.", period=period_label(month)))]})
    latest = latest_closed(session, book.id)
    if latest != month:
        raise Conflict({"period": [str(_l("Only the latest closed period (%(period)s) can be reopened.",
                                          period=period_label(latest)))]})
    for voucher in session.scalars(select(Voucher).where(
            Voucher.book_id == book.id, Voucher.period == month, Voucher.kind == VoucherKind.carry_forward)):
        session.delete(voucher)
    row = session.scalar(select(Period).where(Period.book_id == book.id, Period.period == month))
    row.status, row.closed_at, row.closed_by_id = PeriodStatus.open, None, None
    row.version += 1
    audit.record_event(session, "period_reopen", object_type="ledger_period", object_id=f"{book.id}:{month}",
                       summary=f"{book.client.name} {period_label(month)}")
    session.commit()
    return month


def has_vouchers(session: Session, book_id: int, period: int) -> bool:
    return bool(session.scalar(select(exists().where(Voucher.book_id == book_id, Voucher.period == period))))
