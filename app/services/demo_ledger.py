"""Demo books (账套) for the bookkeeping clients of the demo data.

The books start in January of the current year. Every month up to *today* gets the vouchers of a
small company (sales with VAT, purchases, cost of sales, salaries, taxes paid, bank fees), made by
the demo accountant and reviewed by the demo reviewer. Months up to two before today's are posted
and closed (with their carry-forward vouchers); last month and this month stay open with some
vouchers posted, some reviewed and some drafts. Amounts vary by month by a fixed formula, so the
same *today* always gives the same books.

The books, their accounts and opening balances are made by the ledger services, and each month is
closed by ``periods.close_period`` with all its checks. The ordinary vouchers of a month are
written in bulk (two INSERT statements) because saving, reviewing and posting some 300 vouchers one
by one took most of a first start; they pass the same rules first: each is parsed and validated
against the book's accounts by ``vouchers.parse_voucher`` (balanced, leaf accounts, amounts), is
dated in an open month of the books, numbered from 1 per month and word, reviewed by someone other
than its maker and posted only with balanced opening balances. Bulk-written vouchers have no rows
of their own in the audit log (their books, accounts and period closes do).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from flask import Flask
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.extensions import db
from app.models.base import utcnow
from app.models.crm import Client
from app.models.ledger import LedgerBook, VoucherKind, VoucherState, VoucherWord
from app.services import books as book_svc
from app.services import periods as period_svc
from app.services import vouchers as voucher_svc
from app.services.accounting import CENT, ZERO, last_day_of, next_period, period_label, period_of, previous_period
from app.services.audit import Actor, acting_as
from app.services.demo import make_credit_code
from app.services.errors import Conflict, ValidationFailed
from app.services.vouchers import LineInput

LEDGER_SUB_ACCOUNTS = [
    ("1002", "100201", "工商银行"),
    ("2211", "221101", "工资"),
    ("3104", "310401", "未分配利润"),
    ("5602", "560201", "工资"),
    ("5602", "560202", "办公费"),
    ("5603", "560301", "手续费"),
]
# Surcharges on the VAT of the month: 城市维护建设税 (urban), 教育费附加, 地方教育附加, each owed on
# its 2221 sub-account and expensed on its 5403 one (the books' standard tax sub-accounts).
SURCHARGES = (("222103", Decimal("0.07")), ("222104", Decimal("0.03")), ("222105", Decimal("0.02")))
SURCHARGE_EXPENSE = {"222103": "540302", "222104": "540303", "222105": "540304"}
OUTPUT_VAT, INPUT_VAT, VAT_TRANSFERRED, VAT_UNPAID = "22210102", "22210101", "22210103", "222102"


@dataclass(frozen=True)
class LedgerProfile:
    """How one demo company trades: monthly scale, VAT and the words of its vouchers.

    The rates are facts about these two invented companies (a general taxpayer at 13%, a small-scale
    one at the reduced 1% with monthly sales above the 100,000 exemption), frozen into their demo
    vouchers; they are not tax rules for the application to apply.
    """

    credit_code17: str
    capital: Decimal  # 实收资本
    sales: Decimal  # a month's sales before VAT, before the monthly variation
    salary: Decimal
    vat_rate: Decimal
    input_vat: bool  # a general taxpayer deducts the VAT on purchases; a small-scale one cannot
    surcharge_share: Decimal  # small-scale taxpayers pay half the surcharges until 2027-12-31
    sale_summary: str
    purchase_summary: str
    cost_summary: str


LEDGER_PROFILES = [
    LedgerProfile("91310000MA1K00001", Decimal("1000000.00"), Decimal("260000.00"), Decimal("38000.00"),
                  Decimal("0.13"), True, Decimal("1"), "销售商品", "采购商品", "结转已销商品成本"),
    LedgerProfile("91330100MA2H00002", Decimal("500000.00"), Decimal("118000.00"), Decimal("26000.00"),
                  Decimal("0.01"), False, Decimal("0.5"), "技术服务收入", "采购服务器配件", "结转技术服务成本"),
]


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _vary(base: Decimal, period: int, salt: int) -> Decimal:
    """*base* scaled by 88%..112% and given some cents, by a fixed function of the month."""
    factor = Decimal(88 + (period * 7 + salt * 13) % 25) / 100
    return _cents(base * factor + Decimal((period * 31 + salt * 17) % 100) / 100)


@dataclass(frozen=True)
class MonthFigures:
    cash_sale: Decimal
    credit_sale: Decimal
    purchase: Decimal
    stock_in: Decimal  # what the purchase adds to 1405: with its VAT when that cannot be deducted
    cost: Decimal
    salary: Decimal
    withdrawal: Decimal
    office: Decimal
    bank_fee: Decimal
    cash_sale_vat: Decimal
    credit_sale_vat: Decimal
    input_vat: Decimal
    surcharges: tuple[tuple[str, Decimal], ...]

    @property
    def vat_due(self) -> Decimal:
        return self.cash_sale_vat + self.credit_sale_vat - self.input_vat

    @property
    def receivable(self) -> Decimal:
        """What the customers of the credit sale owe, VAT included (collected next month)."""
        return self.credit_sale + self.credit_sale_vat


def month_figures(profile: LedgerProfile, period: int) -> MonthFigures:
    """The amounts of one month of *profile*'s trade (also for the month before the books start,
    whose salary, VAT and credit sales are the opening balances)."""
    sales = _vary(profile.sales, period, 1)
    cash_sale = _cents(sales * Decimal("0.6"))
    credit_sale = sales - cash_sale
    purchase = _vary(profile.sales * Decimal("0.68"), period, 2)
    cash_sale_vat, credit_sale_vat = _cents(cash_sale * profile.vat_rate), _cents(credit_sale * profile.vat_rate)
    input_vat = _cents(purchase * profile.vat_rate) if profile.input_vat else Decimal("0.00")
    vat_due = cash_sale_vat + credit_sale_vat - input_vat
    stock_in = purchase if profile.input_vat else purchase + _cents(purchase * profile.vat_rate)
    return MonthFigures(
        cash_sale=cash_sale, credit_sale=credit_sale, purchase=purchase, stock_in=stock_in,
        cost=_cents(stock_in * Decimal("0.97")),
        salary=_vary(profile.salary, period, 3), withdrawal=_vary(Decimal("1500.00"), period, 4),
        office=_vary(Decimal("1200.00"), period, 5), bank_fee=_vary(Decimal("25.00"), period, 6),
        cash_sale_vat=cash_sale_vat, credit_sale_vat=credit_sale_vat, input_vat=input_vat,
        surcharges=tuple((code, _cents(vat_due * rate * profile.surcharge_share)) for code, rate in SURCHARGES))


def _line(code: str, debit: Decimal | None = None, credit: Decimal | None = None) -> dict:
    return {"account_code": code, "debit": str(debit) if debit else None, "credit": str(credit) if credit else None}


def month_vouchers(profile: LedgerProfile, period: int) -> list[dict]:
    """The vouchers of one month, in date order, as ``save_voucher`` takes them."""
    now, before = month_figures(profile, period), month_figures(profile, previous_period(period))
    last = previous_period(period) % 100
    year, month = divmod(period, 100)
    end = last_day_of(period).day
    prior_taxes = before.vat_due + sum((amount for _, amount in before.surcharges), Decimal("0.00"))
    purchase_total = now.stock_in + now.input_vat
    specs = [
        (5, "付", f"缴纳{last}月增值税及附加税费",
         [_line(VAT_UNPAID, debit=before.vat_due),
          *(_line(code, debit=amount) for code, amount in before.surcharges if amount),
          _line("100201", credit=prior_taxes)]),
        (8, "收", f"收到客户{last}月货款", [_line("100201", debit=before.receivable),
                                          _line("1122", credit=before.receivable)]),
        (10, "付", f"发放{last}月工资", [_line("221101", debit=before.salary), _line("100201", credit=before.salary)]),
        (12, "收", f"{profile.sale_summary}，款项已收", [
            _line("100201", debit=now.cash_sale + now.cash_sale_vat), _line("5001", credit=now.cash_sale),
            _line(OUTPUT_VAT, credit=now.cash_sale_vat)]),
        (15, "付", profile.purchase_summary, [_line("1405", debit=now.stock_in), _line(INPUT_VAT, debit=now.input_vat),
                                              _line("100201", credit=purchase_total)]),
        (18, "记", f"{profile.sale_summary}，款项未收", [
            _line("1122", debit=now.receivable), _line("5001", credit=now.credit_sale),
            _line(OUTPUT_VAT, credit=now.credit_sale_vat)]),
        (20, "付", "提取备用金", [_line("1001", debit=now.withdrawal), _line("100201", credit=now.withdrawal)]),
        (22, "付", "购买办公用品", [_line("560202", debit=now.office), _line("1001", credit=now.office)]),
        (25, "付", "支付银行手续费", [_line("560301", debit=now.bank_fee), _line("100201", credit=now.bank_fee)]),
        (end, "转", profile.cost_summary, [_line("5401", debit=now.cost), _line("1405", credit=now.cost)]),
        (end, "记", f"计提{month}月工资", [_line("560201", debit=now.salary), _line("221101", credit=now.salary)]),
        (end, "转", f"结转{month}月未交增值税并计提附加税费", [
            _line(VAT_TRANSFERRED, debit=now.vat_due),
            *(_line(SURCHARGE_EXPENSE[code], debit=amount) for code, amount in now.surcharges if amount),
            _line(VAT_UNPAID, credit=now.vat_due),
            *(_line(code, credit=amount) for code, amount in now.surcharges if amount)]),
    ]
    return [{"date": date(year, month, day).isoformat(), "word": word, "summary": summary, "attachments": 1,
             "lines": [ln for ln in lines if ln["debit"] or ln["credit"]]}
            for day, word, summary, lines in specs
            if sum((Decimal(ln["debit"] or 0) for ln in lines), Decimal(0))]


def opening_balances(profile: LedgerProfile, start: int) -> list[tuple[str, Decimal, Decimal]]:
    """Balanced opening balances (code, debit, credit) at *start*: what December left unpaid and
    uncollected, some stock and cash, the paid-in capital, and the bank balance that balances them."""
    before = month_figures(profile, previous_period(start))
    credits = [("221101", before.salary), (VAT_UNPAID, before.vat_due),
               *((code, amount) for code, amount in before.surcharges if amount), ("3001", profile.capital)]
    debits = [("1001", _vary(Decimal("5000.00"), start, 7)),
              ("1122", before.receivable),
              ("1405", _cents(profile.sales * Decimal("0.3")))]
    bank = sum((amount for _, amount in credits), Decimal(0)) - sum((amount for _, amount in debits), Decimal(0))
    zero = Decimal("0.00")
    return ([(code, amount, zero) for code, amount in [*debits, ("100201", bank)]]
            + [(code, zero, amount) for code, amount in credits])


def _voucher_states(count: int, period: int, today_period: int) -> list[VoucherState]:
    """All posted before last month; last month and this month end with one reviewed voucher and one
    draft (last month's month-end accruals), the others posted."""
    if period < previous_period(today_period):
        return [VoucherState.posted] * count
    states = [VoucherState.posted] * max(count - 2, 0) + [VoucherState.reviewed, VoucherState.draft]
    return states[-count:] if count else []


@contextlib.contextmanager
def one_transaction() -> Iterator[Session]:
    """A session whose commits are savepoints of one database transaction, committed at the end.

    Every service still opens and commits its own unit of work with all its rules, but a set of
    books is written whole or not at all (a failed seed leaves nothing to skip next time), with one
    disk sync instead of a thousand.
    """
    with db.engine.connect() as connection:
        connection.begin()  # begun before the session joins it, so the session's commits become savepoints
        if connection.dialect.name == "sqlite":
            # pysqlite starts no transaction before the first savepoint, whose release would then commit.
            connection.exec_driver_sql("BEGIN")
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        except BaseException:
            session.close()
            connection.rollback()
            raise
        session.close()
        connection.commit()


def _month_rows(session: Session, book: LedgerBook, data: list[dict], states: list[VoucherState], maker: Actor,
                checker: Actor) -> list[tuple[dict, list[LineInput]]]:
    """The voucher rows of one month with their parsed lines, after the rules of ``vouchers``: raises
    ``ValidationFailed`` / ``UnbalancedVoucher`` for a bad voucher, ``PeriodClosed`` for a closed month."""
    now = utcnow()
    numbers: dict[tuple[int, VoucherWord], int] = {}
    rows = []
    for voucher_data, state in zip(data, states, strict=True):
        errors: dict[str, list[str]] = {}
        parsed = voucher_svc.parse_voucher(session, book.id, voucher_data, errors)
        if errors:
            raise ValidationFailed(errors)
        assert parsed.day is not None and parsed.word is not None  # no errors: both parsed
        period, word = period_of(parsed.day), parsed.word
        if (period, word) not in numbers:
            voucher_svc.ensure_open(session, book, period)
            numbers[(period, word)] = voucher_svc.next_number(session, book.id, period, word) - 1
        numbers[(period, word)] += 1
        reviewed, posted = state != VoucherState.draft, state == VoucherState.posted
        rows.append(({
            "book_id": book.id, "client_id": book.client_id, "period": period, "word": word,
            "number": numbers[(period, word)], "date": parsed.day, "summary": parsed.summary,
            "attachments": parsed.attachments, "total": sum((line.debit for line in parsed.lines), ZERO),
            "state": state, "kind": VoucherKind.normal, "maker_id": maker.user_id,
            "reviewer_id": checker.user_id if reviewed else None, "reviewed_at": now if reviewed else None,
            "poster_id": maker.user_id if posted else None, "posted_at": now if posted else None,
        }, parsed.lines))
    return rows


def _seed_book(session: Session, profile: LedgerProfile, client: Client, maker: Actor, checker: Actor,
               today: date) -> LedgerBook:
    start = today.year * 100 + 1
    today_period = period_of(today)
    if maker.user_id == checker.user_id:
        raise Conflict({"_": [str(_l("The maker of a voucher cannot review it (制单人 ≠ 审核人)."))]})
    with acting_as(maker):
        book = book_svc.open_books(session, client.id, period_label(start))
        for parent, code, name in LEDGER_SUB_ACCOUNTS:
            book_svc.add_sub_account(session, book.id, parent, code, name)
        for code, debit, credit in opening_balances(profile, start):
            book_svc.set_opening_balance(session, book.id, code, debit=str(debit), credit=str(credit))
    check = book_svc.opening_check(session, book.id)
    if not check.balanced:  # posting needs balanced opening balances
        raise Conflict({"_": [str(_l("The opening balances do not balance (debit %(debit)s, credit %(credit)s); "
                                     "fix them before posting.", debit=check.debit, credit=check.credit))]})
    period = start
    while period <= today_period:
        data = month_vouchers(profile, period)
        if period == today_period:
            # This month: the vouchers dated up to today, and at least three (the first ones, dated today).
            data = [{**v, "date": min(v["date"], today.isoformat())} for i, v in enumerate(data)
                    if i < 3 or v["date"] <= today.isoformat()]
        with acting_as(maker):
            states = _voucher_states(len(data), period, today_period)
            voucher_svc.insert_vouchers(session, _month_rows(session, book, data, states, maker, checker))
            session.commit()
            if period < previous_period(today_period):
                period_svc.close_period(session, client.id, period_label(period), maker.user_id)
        period = next_period(period)
    return book


def seed_ledger_data(app: Flask, today: date | None = None) -> int:
    """Open and fill the books of the demo bookkeeping clients that have none yet (see the module
    docstring). Needs the demo clients and the ``accountant`` and ``reviewer`` users; without them
    it does nothing. Returns the number of books opened."""
    today = today or date.today()
    sm = app.appbuilder.sm
    accountant, reviewer = sm.find_user(username="accountant"), sm.find_user(username="reviewer")
    if accountant is None or reviewer is None:
        return 0
    maker, checker = Actor(accountant.id, accountant.username), Actor(reviewer.id, reviewer.username)
    opened = 0
    for profile in LEDGER_PROFILES:
        client = db.session.scalar(select(Client).where(Client.credit_code == make_credit_code(profile.credit_code17)))
        if client is None or db.session.scalar(select(LedgerBook.id).where(LedgerBook.client_id == client.id)):
            continue
        with one_transaction() as session:
            _seed_book(session, profile, client, maker, checker, today)
        opened += 1
    return opened

