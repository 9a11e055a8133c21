"""Books and statements: trial balance (科目余额表), general ledger (总账), detail ledger (明细账),
balance sheet (资产负债表, 会小企01表) and income statement (利润表, 会小企02表).

Rules:
- Every amount comes from posted voucher lines and the opening balances, summed in SQL (GROUP BY
  account, or account and month); Python only adds the per-account sums into parent accounts (by
  code prefix) and evaluates the statement formulas over them.
- A balance is debit minus credit; it is shown on the side where it lies (借 debit, 贷 credit,
  平 zero), whatever the account's normal side.
- The statements' formulas are read from ``app/data/accounting/*_small_business.csv``; their words
  are ``bal``, ``debit_balances``, ``credit_balances``, ``net_credit``, ``net_debit``, ``Ln``,
  ``detail`` (blank) and ``0`` (blank). The income statement leaves out the carry-forward voucher
  lines (结转损益).
- The balance sheet counts the profit not yet carried forward (未结转损益) where the close would
  put it: the posted profit-and-loss lines of every month not yet closed, up to the month shown
  (and up to the December before its year for the start-of-year column), are added to 3103 本年利润,
  so they appear in the line whose formula reads 3103 (未分配利润) with a note giving the amount.
  Closed months are a run from the first month of the books (a month closes only after the one
  before it), so a closed month has nothing left to count: its carry-forward is already posted.
  Nothing else is adjusted; the sheet is never forced to balance.
- Errors: ``NotFound`` for an unknown client or a client without books; ``ValidationFailed`` (naming
  the parameter) for a bad period, a range whose end is before its start, a period before the books
  start, or an unknown account code, and (``"_"``) for sums beyond what SQLite adds up exactly
  (``accounting.exact_sums``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.models.crm import Client
from app.models.ledger import Account, Direction, LedgerBook, OpeningBalance, Voucher, VoucherLine, VoucherState
from app.services import books, periods
from app.services.accounting import (
    ZERO,
    exact_sums,
    next_period,
    parse_period,
    period_label,
    previous_period,
    year_start,
)
from app.services.errors import NotFound, ValidationFailed

BALANCE_SHEET_CSV = books.DATA / "balance_sheet_small_business.csv"
INCOME_STATEMENT_CSV = books.DATA / "income_statement_small_business.csv"
_TERM = re.compile(r"\s*([+-]?)\s*(?:(bal|debit_balances|credit_balances|net_credit|net_debit)\((\d+)\)|L(\d+)|(0))")


# --- common ---------------------------------------------------------------------------------


def direction_of(balance: Decimal) -> str:
    """``"debit"`` (借), ``"credit"`` (贷) or ``"zero"`` (平) for a debit-minus-credit balance."""
    return "debit" if balance > 0 else "credit" if balance < 0 else "zero"


def split(balance: Decimal) -> tuple[Decimal, Decimal]:
    """A debit-minus-credit balance as (debit column, credit column)."""
    return (balance, ZERO) if balance > 0 else (ZERO, -balance)


def _dec(value: object) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


def get_books(session: Session, client_id: object) -> LedgerBook:
    """The books of *client_id*. Raises ``NotFound`` for an unknown client or one without books."""
    if isinstance(client_id, bool) or not isinstance(client_id, int) or session.get(Client, client_id) is None:
        raise NotFound({"client_id": [str(_l("No such client."))]})
    return books.get_book(session, client_id)


def _period(book: LedgerBook, value: object, name: str) -> int:
    period = parse_period(value, name)
    if period < book.start_period:
        raise ValidationFailed({name: [str(_l("The books start in %(start)s.",
                                              start=period_label(book.start_period)))]})
    return period


def _range(book: LedgerBook, from_period: object, to_period: object) -> tuple[int, int]:
    start, end = _period(book, from_period, "from"), _period(book, to_period, "to")
    if start > end:
        raise ValidationFailed({"to": [str(_l("The end of the range is before its start."))]})
    return start, end


def months(start: int, end: int) -> list[int]:
    """The months from *start* to *end*, both included."""
    result = []
    while start <= end:
        result.append(start)
        start = next_period(start)
    return result


def _accounts(session: Session, book_id: int) -> list[Account]:
    return list(session.scalars(select(Account).where(Account.book_id == book_id).order_by(Account.code)))


def _ancestors(codes: Iterable[str], code: str) -> list[str]:
    """*code* and every account code in *codes* that is a prefix of it (its parents)."""
    known = set(codes)
    return [code[:n] for n in range(1, len(code) + 1) if code[:n] in known]


def _openings(session: Session, book_id: int) -> dict[int, Decimal]:
    rows = session.execute(select(OpeningBalance.account_id, func.sum(OpeningBalance.debit - OpeningBalance.credit))
                           .where(OpeningBalance.book_id == book_id).group_by(OpeningBalance.account_id))
    return {account_id: _dec(net) for account_id, net in rows}


def _posted(book_id: int):  # noqa: ANN202
    return (VoucherLine.book_id == book_id, VoucherLine.posted.is_(True))


def _sum_if(condition, amount):  # noqa: ANN001, ANN202
    return func.coalesce(func.sum(case((condition, amount), else_=0)), 0)


def latest_period(session: Session, client_id: int) -> int:
    """The latest month with a posted line, or the first month of the books."""
    book = get_books(session, client_id)
    latest = session.scalar(select(func.max(Voucher.period)).where(
        Voucher.book_id == book.id, Voucher.state == VoucherState.posted))
    return latest or book.start_period


# --- trial balance (科目余额表) ----------------------------------------------------------------


@dataclass
class TrialBalanceRow:
    code: str
    name: str
    level: int
    is_leaf: bool
    opening: Decimal = ZERO  # debit minus credit at the start of the range
    debit: Decimal = ZERO
    credit: Decimal = ZERO

    @property
    def closing(self) -> Decimal:
        return self.opening + self.debit - self.credit

    @property
    def columns(self) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]:
        """Opening debit, opening credit, period debit, period credit, closing debit, closing credit."""
        return (*split(self.opening), self.debit, self.credit, *split(self.closing))

    @property
    def is_zero(self) -> bool:
        return not (self.opening or self.debit or self.credit)


@dataclass
class TrialBalance:
    client_id: int
    from_period: int
    to_period: int
    rows: list[TrialBalanceRow]
    totals: tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]

    @property
    def balanced(self) -> bool:
        t = self.totals
        return t[0] == t[1] and t[2] == t[3] and t[4] == t[5]


@exact_sums
def trial_balance(session: Session, client_id: int, from_period: object, to_period: object,
                  level: int | None = None, hide_zero: bool = False) -> TrialBalance:
    """科目余额表 for the months *from_period* to *to_period*: every account (parents sum their
    sub-accounts) with its opening balance, the range's debit and credit, and its closing balance,
    each balance in a debit or a credit column. *level* 1 keeps the first-level accounts only (n:
    levels up to n); *hide_zero* drops rows whose amounts are all zero. The totals row sums the
    first-level accounts. Raises ``NotFound`` and ``ValidationFailed``."""
    book = get_books(session, client_id)
    start, end = _range(book, from_period, to_period)
    if level is not None and (isinstance(level, bool) or not isinstance(level, int) or level < 1):
        raise ValidationFailed({"level": [str(_l("The level is a whole number from 1."))]})
    amount = VoucherLine.debit - VoucherLine.credit
    in_range = VoucherLine.period >= start
    sums = session.execute(
        select(VoucherLine.account_id, _sum_if(VoucherLine.period < start, amount),
               _sum_if(in_range, VoucherLine.debit), _sum_if(in_range, VoucherLine.credit))
        .where(*_posted(book.id), VoucherLine.period <= end).group_by(VoucherLine.account_id)).all()
    accounts = _accounts(session, book.id)
    rows = {a.code: TrialBalanceRow(a.code, a.name, a.level, a.is_leaf) for a in accounts}
    code_of = {a.id: a.code for a in accounts}
    own: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
    for account_id, net in _openings(session, book.id).items():
        own[code_of[account_id]] = (net, ZERO, ZERO)
    for account_id, before, debit, credit in sums:
        opening, _, _ = own.get(code_of[account_id], (ZERO, ZERO, ZERO))
        own[code_of[account_id]] = (opening + _dec(before), _dec(debit), _dec(credit))
    for code, (opening, debit, credit) in own.items():
        for parent in _ancestors(rows, code):
            row = rows[parent]
            row.opening, row.debit, row.credit = row.opening + opening, row.debit + debit, row.credit + credit
    first_level = [row for row in rows.values() if row.level == 1]
    totals = tuple(sum((row.columns[i] for row in first_level), ZERO) for i in range(6))
    shown = [row for row in rows.values() if (level is None or row.level <= level)
             and not (hide_zero and row.is_zero)]
    return TrialBalance(client_id, start, end, shown, totals)  # type: ignore[arg-type]


# --- general ledger (总账) ---------------------------------------------------------------------


@dataclass
class LedgerMonth:
    period: int
    debit: Decimal
    credit: Decimal
    ytd_debit: Decimal
    ytd_credit: Decimal
    balance: Decimal  # debit minus credit at the end of the month


@dataclass
class GeneralLedgerAccount:
    code: str
    name: str
    opening: Decimal
    months: list[LedgerMonth] = field(default_factory=list)


def _first_level(accounts: list[Account]) -> dict[int, Account]:
    """account id → its first-level account."""
    tops = {a.code: a for a in accounts if a.level == 1}
    result = {}
    for account in accounts:
        top = next((tops[p] for p in _ancestors(tops, account.code)), None)
        if top is not None:
            result[account.id] = top
    return result


@exact_sums
def general_ledger(session: Session, client_id: int, from_period: object, to_period: object,
                   hide_zero: bool = True) -> list[GeneralLedgerAccount]:
    """总账: per first-level account, the balance at the start of the range, then per month the
    month's debit and credit, the year-to-date debit and credit (本年累计, from January or the
    first month of the books) and the balance. *hide_zero* drops accounts with no balance and no
    activity. Raises ``NotFound`` and ``ValidationFailed``."""
    book = get_books(session, client_id)
    start, end = _range(book, from_period, to_period)
    first = max(year_start(start), book.start_period)
    amount = VoucherLine.debit - VoucherLine.credit
    before = session.execute(
        select(VoucherLine.account_id, func.sum(amount))
        .where(*_posted(book.id), VoucherLine.period < start).group_by(VoucherLine.account_id)).all()
    monthly = session.execute(
        select(VoucherLine.account_id, VoucherLine.period, func.sum(VoucherLine.debit), func.sum(VoucherLine.credit))
        .where(*_posted(book.id), VoucherLine.period >= first, VoucherLine.period <= end)
        .group_by(VoucherLine.account_id, VoucherLine.period)).all()
    accounts = _accounts(session, book.id)
    top_of = _first_level(accounts)
    opening: dict[str, Decimal] = {}
    for account_id, net in [*_openings(session, book.id).items(), *before]:
        code = top_of[account_id].code
        opening[code] = opening.get(code, ZERO) + _dec(net)
    moves: dict[tuple[str, int], tuple[Decimal, Decimal]] = {}
    for account_id, period, debit, credit in monthly:
        key = (top_of[account_id].code, period)
        d, c = moves.get(key, (ZERO, ZERO))
        moves[key] = (d + _dec(debit), c + _dec(credit))
    result = []
    for top in (a for a in accounts if a.level == 1):
        entry = GeneralLedgerAccount(top.code, top.name, opening.get(top.code, ZERO))
        balance, ytd_debit, ytd_credit = entry.opening, ZERO, ZERO
        for month in months(first, end):
            if month % 100 == 1:
                ytd_debit = ytd_credit = ZERO
            debit, credit = moves.get((top.code, month), (ZERO, ZERO))
            ytd_debit, ytd_credit = ytd_debit + debit, ytd_credit + credit
            if month >= start:
                balance += debit - credit
                entry.months.append(LedgerMonth(month, debit, credit, ytd_debit, ytd_credit, balance))
        if not hide_zero or entry.opening or any(m.ytd_debit or m.ytd_credit or m.balance for m in entry.months):
            result.append(entry)
    return result


# --- detail ledger (明细账) --------------------------------------------------------------------


@dataclass
class DetailRow:
    kind: str  # opening, line, month_total, year_total
    period: int
    balance: Decimal
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    date: object = None
    voucher_id: int | None = None
    voucher: str | None = None
    summary: str | None = None
    account_code: str | None = None


@dataclass
class DetailLedger:
    client_id: int
    account_code: str
    account_name: str
    from_period: int
    to_period: int
    rows: list[DetailRow]


@exact_sums
def detail_ledger(session: Session, client_id: int, account_code: object, from_period: object,
                  to_period: object) -> DetailLedger:
    """明细账 of *account_code* (with its sub-accounts): the opening balance, each posted line in
    date and voucher order with the running balance, and per month the month's total (本月合计)
    and the year-to-date total (本年累计). Raises ``NotFound`` and ``ValidationFailed``."""
    book = get_books(session, client_id)
    code = str(account_code or "").strip()
    if not code:
        raise ValidationFailed({"account_code": [str(_l("Give an account code."))]})
    account = books.account_by_code(session, book.id, code)
    if account is None:
        raise ValidationFailed({"account_code": [str(_l("No account %(code)s in these books.", code=code))]})
    start, end = _range(book, from_period, to_period)
    first = max(year_start(start), book.start_period)
    ids = select(Account.id).where(Account.book_id == book.id, Account.code.like(code + "%")).scalar_subquery()
    ours = (*_posted(book.id), VoucherLine.account_id.in_(ids))
    amount = VoucherLine.debit - VoucherLine.credit
    opening = _dec(session.scalar(select(func.sum(OpeningBalance.debit - OpeningBalance.credit))
                                  .where(OpeningBalance.book_id == book.id, OpeningBalance.account_id.in_(ids))))
    opening += _dec(session.scalar(select(func.sum(amount)).where(*ours, VoucherLine.period < start)))
    totals = {period: (_dec(d), _dec(c)) for period, d, c in session.execute(
        select(VoucherLine.period, func.sum(VoucherLine.debit), func.sum(VoucherLine.credit))
        .where(*ours, VoucherLine.period >= first, VoucherLine.period <= end).group_by(VoucherLine.period))}
    order = (Voucher.date, Voucher.word, Voucher.number, VoucherLine.line_no, VoucherLine.id)
    lines = session.execute(
        select(VoucherLine.period, Voucher.date, Voucher.id, Voucher.word, Voucher.number, Voucher.summary,
               VoucherLine.memo, VoucherLine.debit, VoucherLine.credit, Account.code,
               func.sum(amount).over(order_by=order, rows=(None, 0)))
        .join(Voucher, Voucher.id == VoucherLine.voucher_id).join(Account, Account.id == VoucherLine.account_id)
        .where(*ours, VoucherLine.period >= start, VoucherLine.period <= end).order_by(*order))
    by_month: dict[int, list[DetailRow]] = {}
    for period, day, voucher_id, word, number, summary, memo, debit, credit, line_code, running in lines:
        by_month.setdefault(period, []).append(DetailRow(
            "line", period, opening + _dec(running), _dec(debit), _dec(credit), day, voucher_id,
            f"{word.value}-{number}", memo or summary, line_code))
    rows = [DetailRow("opening", start, opening)]
    balance, ytd_debit, ytd_credit = opening, ZERO, ZERO
    for month in months(first, end):
        if month % 100 == 1:
            ytd_debit = ytd_credit = ZERO
        debit, credit = totals.get(month, (ZERO, ZERO))
        ytd_debit, ytd_credit = ytd_debit + debit, ytd_credit + credit
        if month < start:
            continue
        balance += debit - credit
        rows.extend(by_month.get(month, []))
        rows.append(DetailRow("month_total", month, balance, debit, credit))
        rows.append(DetailRow("year_total", month, balance, ytd_debit, ytd_credit))
    return DetailLedger(client_id, account.code, account.name, start, end, rows)


# --- statements (会小企01表, 会小企02表) --------------------------------------------------------


@dataclass(frozen=True)
class Term:
    sign: int
    word: str  # bal, debit_balances, credit_balances, net_credit, net_debit, line, zero
    arg: str


@dataclass(frozen=True)
class FormulaLine:
    line: int
    item: str
    terms: tuple[Term, ...] | None  # None: a blank line (detail, 0)


def parse_formula(text: str) -> tuple[Term, ...] | None:
    """``"bal(1001)+L2-debit_balances(1122)"`` → its terms; ``detail`` and ``0`` → ``None`` (blank).
    Raises ``ValueError`` on anything else."""
    text = text.strip()
    if text in ("detail", "0"):
        return None
    terms, pos = [], 0
    while pos < len(text):
        match = _TERM.match(text, pos)
        if not match or (terms and not match.group(1)):
            raise ValueError(f"cannot read formula {text!r} at {pos}")
        sign = -1 if match.group(1) == "-" else 1
        if match.group(2):
            terms.append(Term(sign, match.group(2), match.group(3)))
        elif match.group(4):
            terms.append(Term(sign, "line", match.group(4)))
        else:
            terms.append(Term(sign, "zero", "0"))
        pos = match.end()
    if not terms:
        raise ValueError(f"empty formula {text!r}")
    return tuple(terms)


@lru_cache(maxsize=4)
def statement_lines(path: str) -> tuple[FormulaLine, ...]:
    """The lines of a statement CSV (line, item, formula) with their parsed formulas."""
    with open(path, encoding="utf-8") as handle:
        return tuple(FormulaLine(int(row["line"]), row["item"], parse_formula(row["formula"]))
                     for row in csv.DictReader(handle))


def _evaluate(lines: tuple[FormulaLine, ...], word_value) -> dict[int, Decimal | None]:  # noqa: ANN001
    """Each line's value; *word_value(word, code)* gives the value of one account word."""
    formulas = {ln.line: ln.terms for ln in lines}
    values: dict[int, Decimal | None] = {}

    def value(number: int) -> Decimal | None:
        if number not in values:
            terms = formulas[number]
            if terms is None:
                values[number] = None
            else:
                total = ZERO
                for term in terms:
                    part = value(int(term.arg)) if term.word == "line" else (
                        ZERO if term.word == "zero" else word_value(term.word, term.arg))
                    total += term.sign * (part or ZERO)
                values[number] = total
        return values[number]

    for ln in lines:
        value(ln.line)
    return values


@dataclass(frozen=True)
class StatementLine:
    line: int
    item: str
    first: Decimal | None  # balance sheet: end of period; income statement: the month
    second: Decimal | None  # balance sheet: start of the year; income statement: year to date


@dataclass(frozen=True)
class UnclosedProfit:
    """The profit not yet carried forward (未结转损益) that one balance-sheet column counts in
    *line* (未分配利润): the posted profit-and-loss lines of the months *from_period* to
    *to_period*, none of them closed. *amount* is a profit, a loss is negative; *shown* is the
    statement's month."""

    line: int
    amount: Decimal
    from_period: int
    to_period: int
    shown: int

    @property
    def note(self) -> str:
        """``含未结转损益 12,345.67（本月尚未结账）`` in the current language."""
        amount = f"{self.amount:,}"
        start, end = period_label(self.from_period), period_label(self.to_period)
        if self.to_period == self.shown:
            if self.from_period == self.to_period:
                return str(_l("Includes profit not yet carried forward of %(amount)s (this month is not closed yet)",
                              amount=amount))
            return str(_l("Includes profit not yet carried forward of %(amount)s (%(start)s to this month are not "
                          "closed yet)", amount=amount, start=start))
        if self.from_period == self.to_period:
            return str(_l("Includes profit not yet carried forward of %(amount)s (%(period)s is not closed yet)",
                          amount=amount, period=start))
        return str(_l("Includes profit not yet carried forward of %(amount)s (%(start)s to %(end)s are not closed "
                      "yet)", amount=amount, start=start, end=end))


@dataclass
class Statement:
    client_id: int
    period: int
    lines: list[StatementLine]
    # Balance sheet: the profit not yet carried forward in the end-of-period and start-of-year
    # columns (None where every month counted is closed).
    unclosed: tuple[UnclosedProfit | None, UnclosedProfit | None] = (None, None)

    def value(self, line: int, column: int = 0) -> Decimal | None:
        row = next(r for r in self.lines if r.line == line)
        return row.first if column == 0 else row.second


def _balance_words(accounts: list[Account], nets: dict[int, Decimal]):  # noqa: ANN202
    """``word_value`` for the balance-sheet words over per-account debit-minus-credit balances."""
    normal = {a.code: a.normal_balance for a in accounts}
    code_of = {a.id: a.code for a in accounts}
    own = [(code_of[account_id], net) for account_id, net in nets.items() if net]

    def word_value(word: str, code: str) -> Decimal:
        under = [net for c, net in own if c.startswith(code)]
        if word == "bal":
            total = sum(under, ZERO)
            return total if normal.get(code, Direction.debit) == Direction.debit else -total
        if word == "debit_balances":
            return sum((net for net in under if net > 0), ZERO)
        if word == "credit_balances":
            return sum((-net for net in under if net < 0), ZERO)
        raise ValueError(f"{word} is not a balance-sheet word")

    return word_value


def _profit_line(lines: tuple[FormulaLine, ...]) -> int | None:
    """The statement line whose formula reads the profit account 3103 (本年利润): 未分配利润."""
    return next((ln.line for ln in lines for term in ln.terms or ()
                 if term.word in ("bal", "debit_balances", "credit_balances")
                 and periods.PROFIT_CODE.startswith(term.arg)), None)


def _unclosed_profit(session: Session, book: LedgerBook, month: int) -> tuple[int, Decimal, Decimal]:
    """The first month not closed, and the debit-minus-credit of the posted profit-and-loss lines
    of the months not closed: before the year of *month*, and up to *month* (one SQL sum)."""
    latest = periods.latest_closed(session, book.id)
    first_open = next_period(latest) if latest else book.start_period
    if first_open > month:
        return first_open, ZERO, ZERO
    amount = VoucherLine.debit - VoucherLine.credit
    pl_accounts = select(Account.id).where(
        Account.book_id == book.id, Account.category.in_(periods.PL_CATEGORIES)).scalar_subquery()
    before, total = session.execute(
        select(_sum_if(VoucherLine.period < year_start(month), amount), func.coalesce(func.sum(amount), 0))
        .where(*_posted(book.id), VoucherLine.account_id.in_(pl_accounts),
               VoucherLine.period >= first_open, VoucherLine.period <= month)).one()
    return first_open, _dec(before), _dec(total)


@exact_sums
def balance_sheet(session: Session, client_id: int, period: object) -> Statement:
    """资产负债表 (会小企01表) at the end of *period*, with the balances at the start of its year
    (the books' opening balances when they start that year).

    The profit of the months not yet closed (未结转损益), up to *period* for the end column and up
    to the December before for the start-of-year column, counts in 未分配利润 as the close would
    carry it to 3103, and the statement's ``unclosed`` says how much and for which months; a
    closed month has none. Raises ``NotFound`` and ``ValidationFailed``."""
    book = get_books(session, client_id)
    month = _period(book, period, "period")
    amount = VoucherLine.debit - VoucherLine.credit
    sums = session.execute(
        select(VoucherLine.account_id, _sum_if(VoucherLine.period < year_start(month), amount), func.sum(amount))
        .where(*_posted(book.id), VoucherLine.period <= month).group_by(VoucherLine.account_id)).all()
    end = _openings(session, book.id)
    begin = dict(end)
    for account_id, before, net in sums:
        begin[account_id] = begin.get(account_id, ZERO) + _dec(before)
        end[account_id] = end.get(account_id, ZERO) + _dec(net)
    accounts = _accounts(session, book.id)
    lines = statement_lines(str(BALANCE_SHEET_CSV))
    unclosed: list[UnclosedProfit | None] = [None, None]
    first_open, open_before, open_total = _unclosed_profit(session, book, month)
    profit = next((a for a in accounts if a.code == periods.PROFIT_CODE), None)
    line = _profit_line(lines)
    if first_open <= month and profit is not None and line is not None:
        # Move the open months' profit-and-loss balance onto 3103, as their closes will.
        end[profit.id] = end.get(profit.id, ZERO) + open_total
        unclosed[0] = UnclosedProfit(line, ZERO - open_total, first_open, month, month)
        if first_open < year_start(month):
            begin[profit.id] = begin.get(profit.id, ZERO) + open_before
            last_year = previous_period(year_start(month))
            unclosed[1] = UnclosedProfit(line, ZERO - open_before, first_open, last_year, month)
    at_end = _evaluate(lines, _balance_words(accounts, end))
    at_start = _evaluate(lines, _balance_words(accounts, begin))
    return Statement(client_id, month, [StatementLine(ln.line, ln.item, at_end[ln.line], at_start[ln.line])
                                        for ln in lines], (unclosed[0], unclosed[1]))


@exact_sums
def income_statement(session: Session, client_id: int, period: object) -> Statement:
    """利润表 (会小企02表) for *period* and the year to date, from posted lines other than the
    carry-forward voucher's (结转损益). Raises ``NotFound`` and ``ValidationFailed``."""
    book = get_books(session, client_id)
    month = _period(book, period, "period")
    amount = VoucherLine.debit - VoucherLine.credit
    sums = session.execute(
        select(VoucherLine.account_id, _sum_if(VoucherLine.period == month, amount), func.sum(amount))
        .where(*_posted(book.id), VoucherLine.carry_forward.is_(False),
               VoucherLine.period >= year_start(month), VoucherLine.period <= month)
        .group_by(VoucherLine.account_id)).all()
    accounts = _accounts(session, book.id)
    code_of = {a.id: a.code for a in accounts}

    def words(column: int):  # noqa: ANN202
        own = [(code_of[row[0]], _dec(row[1 + column])) for row in sums]

        def word_value(word: str, code: str) -> Decimal:
            net_debit = sum((net for c, net in own if c.startswith(code)), ZERO)
            if word == "net_debit":
                return net_debit
            if word == "net_credit":
                return -net_debit
            raise ValueError(f"{word} is not an income-statement word")

        return word_value

    lines = statement_lines(str(INCOME_STATEMENT_CSV))
    this_month, to_date = _evaluate(lines, words(0)), _evaluate(lines, words(1))
    return Statement(client_id, month, [StatementLine(ln.line, ln.item, this_month[ln.line], to_date[ln.line])
                                        for ln in lines])
