"""Demo books: opened for the bookkeeping clients, filled month by month, closed up to two months ago.

Seeded for fixed dates (late in the year, January, February, March, a year end) so the shape of the
books does not depend on the day the suite runs.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models.crm import Client
from app.models.ledger import (
    Account,
    AccountCategory,
    LedgerBook,
    OpeningBalance,
    Period,
    Voucher,
    VoucherKind,
    VoucherLine,
    VoucherState,
)
from app.models.security import AuditLog
from app.models.tax import TaxKind
from app.services import books, periods, tax_worksheet, vouchers
from app.services.accounting import period_of, previous_period
from app.services.demo import make_credit_code, seed_business_data, seed_demo
from app.services.demo_ledger import LEDGER_PROFILES, month_figures, seed_ledger_data

BOOKKEEPING_CLIENTS = ["上海明远商贸有限公司", "杭州青禾科技有限公司"]
DATES = [date(2026, 11, 23), date(2026, 2, 10), date(2026, 1, 5), date(2027, 3, 1), date(2026, 12, 31)]


def _months(start: int, end: int) -> list[int]:
    months, month = [], start
    while month <= end:
        months.append(month)
        month = month + 1 if month % 100 < 12 else (month // 100 + 1) * 100 + 1
    return months


def _expected_closed(today: date) -> list[int]:
    """January of today's year up to two months before today's month."""
    return _months(today.year * 100 + 1, previous_period(previous_period(period_of(today))))


def _books(session) -> dict[str, LedgerBook]:
    return {book.client.name: book for book in session.scalars(select(LedgerBook).join(Client))}


def _balance(session, book: LedgerBook, code_prefix: str, up_to: int, posted_only: bool = True) -> Decimal:
    """Debit-minus-credit of the accounts under *code_prefix*: opening balance plus lines up to *up_to*."""
    accounts = select(Account.id).where(Account.book_id == book.id, Account.code.like(code_prefix + "%"))
    query = select(func.coalesce(func.sum(VoucherLine.debit - VoucherLine.credit), 0)).where(
        VoucherLine.book_id == book.id, VoucherLine.period <= up_to, VoucherLine.account_id.in_(accounts))
    if posted_only:
        query = query.where(VoucherLine.posted.is_(True))
    opening = session.scalar(select(func.coalesce(func.sum(OpeningBalance.debit - OpeningBalance.credit), 0))
                             .where(OpeningBalance.account_id.in_(accounts)))
    return Decimal(session.scalar(query)) + Decimal(opening)


def _seed(app, session, today: date) -> date:
    seed_business_data(app, today=today)
    session.expire_all()
    return today


@pytest.fixture(params=DATES, ids=[d.isoformat() for d in DATES])
def seeded(request, app, session) -> date:
    """Seeded for each of the dates (the rules that depend on the date)."""
    return _seed(app, session, request.param)


@pytest.fixture
def november(app, session) -> date:
    """Seeded for one late date (the rules that do not depend on it)."""
    return _seed(app, session, DATES[0])


def _books_start_in_january_with_balanced_opening_balances(session, november):
    found = _books(session)
    assert sorted(found) == sorted(BOOKKEEPING_CLIENTS)
    for book in found.values():
        assert book.start_period == 202601
        check = books.opening_check(session, book.id)
        assert check.balanced and check.debit > 0
        for code, name in [("100201", "工商银行"), ("221101", "工资"), ("22210102", "销项税额"), ("560201", "工资"),
                           ("560301", "手续费")]:
            account = books.account_by_code(session, book.id, code)
            assert (account.name, account.is_leaf, account.parent.is_leaf) == (name, True, False)
        # 实收资本 is a credit balance, the bank a debit one.
        assert _balance(session, book, "3001", book.start_period - 1) < 0
        assert _balance(session, book, "1002", book.start_period - 1) > 0


def _months_up_to_two_before_today_are_closed_and_fully_posted(session, seeded):
    today_period = period_of(seeded)
    for book in _books(session).values():
        closed = periods.closed_periods(session, book.id)
        assert closed == _expected_closed(seeded)
        for month in _months(book.start_period, today_period):
            states = dict(session.execute(select(Voucher.state, func.count()).where(
                Voucher.book_id == book.id, Voucher.period == month).group_by(Voucher.state)).all())
            assert vouchers.number_gaps(session, book.id, month) == {}
            if month in closed:
                assert set(states) == {VoucherState.posted}
                assert session.scalar(select(func.count()).select_from(Voucher).where(
                    Voucher.book_id == book.id, Voucher.period == month,
                    Voucher.kind == VoucherKind.carry_forward)) == 1
            else:
                # Open months (last month and this one) show every state.
                assert states.get(VoucherState.draft) == 1
                assert states.get(VoucherState.reviewed, 0) == (1 if sum(states.values()) > 1 else 0)
                assert session.scalar(select(func.count()).select_from(Period).where(
                    Period.book_id == book.id, Period.period == month)) == 0
        assert session.scalar(select(func.max(Voucher.date)).where(Voucher.book_id == book.id)) <= seeded
        assert session.scalar(select(func.max(Voucher.period)).where(Voucher.book_id == book.id)) == today_period
        for code in ("1001", "1002", "1405"):  # cash, bank and stock never go negative
            for month in _months(book.start_period, today_period):
                assert _balance(session, book, code, month, posted_only=False) >= 0, (code, month)


def _vouchers_are_made_by_the_accountant_and_reviewed_by_the_reviewer(session, november, user_id):
    ordinary = list(session.scalars(select(Voucher).where(Voucher.kind == VoucherKind.normal)))
    assert {v.maker_id for v in ordinary} == {user_id("accountant")}
    assert {v.reviewer_id for v in ordinary if v.state != VoucherState.draft} == {user_id("reviewer")}
    assert {v.word.value for v in ordinary} == {"记", "收", "付", "转"}
    summaries = {v.summary for v in ordinary}
    assert {"支付银行手续费", "提取备用金", "计提10月工资", "缴纳10月增值税及附加税费"} <= summaries
    assert any(s.startswith("发放") and s.endswith("工资") for s in summaries)


def _small_scale_sales_carry_one_percent_vat_and_general_ones_thirteen(session, november):
    found = _books(session)
    for name, rate in [("杭州青禾科技有限公司", Decimal("0.01")), ("上海明远商贸有限公司", Decimal("0.13"))]:
        book = found[name]
        vat = books.account_by_code(session, book.id, "22210102")
        revenue = books.account_by_code(session, book.id, "5001")
        sales = list(session.scalars(select(Voucher).where(
            Voucher.book_id == book.id, Voucher.summary.contains("款项"), Voucher.kind == VoucherKind.normal)))
        for sale in sales:
            by_account = {ln.account_id: ln.credit for ln in sale.lines if ln.credit}
            assert by_account[vat.id] == (by_account[revenue.id] * rate).quantize(Decimal("0.01")), sale.summary
        assert len(sales) == 2 * 11  # a cash sale and a credit sale every month up to November 23


def _posted_books_balance_and_profit_and_loss_is_empty_after_each_closed_month(session, seeded):
    for book in _books(session).values():
        rows = session.execute(select(VoucherLine.period, func.sum(VoucherLine.debit), func.sum(VoucherLine.credit))
                               .where(VoucherLine.book_id == book.id, VoucherLine.posted.is_(True))
                               .group_by(VoucherLine.period)).all()
        assert rows and all(debit == credit and debit > 0 for _, debit, credit in rows)
        assert _balance(session, book, "", period_of(seeded)) == 0  # opening + all posted lines: 试算平衡

        pl_leaves = list(session.scalars(select(Account).where(
            Account.book_id == book.id, Account.category.in_([AccountCategory.income, AccountCategory.expense]))))
        assert any(a.code == "5001" for a in pl_leaves)
        profit_so_far = Decimal("0")
        for month in _expected_closed(seeded):
            for account in pl_leaves:
                assert _balance(session, book, account.code, month) == 0, (month, account.code)
            # What 3103 gained this month is the month's P&L activity outside the carry-forward.
            activity = session.scalar(select(func.sum(VoucherLine.credit - VoucherLine.debit)).where(
                VoucherLine.book_id == book.id, VoucherLine.period == month, VoucherLine.posted.is_(True),
                VoucherLine.carry_forward.is_(False), VoucherLine.account_id.in_([a.id for a in pl_leaves])))
            profit_so_far += activity
            assert activity != 0
            assert -_balance(session, book, "3103", month) == profit_so_far
        if previous_period(period_of(seeded)) >= book.start_period:
            # Last month is open: its revenue is still on 5001.
            assert _balance(session, book, "5001", previous_period(period_of(seeded))) < 0


# One seed serves several checks: seeding a year of books is the slow part of these tests.


def _the_tax_worksheet_of_a_closed_month_shows_its_taxes(session, november):
    """October is closed and posted: the general taxpayer owes output less input VAT and the
    surcharges the demo accrued; the small-scale one, a quarterly filer, 1 % of its third quarter's
    sales (over the exemption)."""
    found = _books(session)
    general, small = found["上海明远商贸有限公司"], found["杭州青禾科技有限公司"]
    october = month_figures(LEDGER_PROFILES[0], 202610)
    sheet = tax_worksheet.worksheet(session, general.client_id, "2026-10")
    assert (sheet.output_vat, sheet.input_vat) == (october.cash_sale_vat + october.credit_sale_vat,
                                                   october.input_vat)
    assert sheet.carried_credit_in == 0 and sheet.line(TaxKind.vat).amount == october.vat_due > 0
    assert [sheet.line(tax).amount for tax in tax_worksheet.SURCHARGES] == [amount for _, amount in october.surcharges]
    sheet = tax_worksheet.worksheet(session, small.client_id, "2026-Q3")  # the demo files its VAT quarterly
    quarter = [month_figures(LEDGER_PROFILES[1], month) for month in (202607, 202608, 202609)]
    assert sheet.sales == sum(m.cash_sale + m.credit_sale for m in quarter) > 300000
    assert sheet.line(TaxKind.vat).amount == (sheet.sales / 100).quantize(Decimal("0.01")) > 0
    assert all(sheet.line(tax).amount > 0 for tax in tax_worksheet.SURCHARGES)


def test_november_books_accounts_makers_and_vat(session, november, user_id):
    _books_start_in_january_with_balanced_opening_balances(session, november)
    _vouchers_are_made_by_the_accountant_and_reviewed_by_the_reviewer(session, november, user_id)
    _small_scale_sales_carry_one_percent_vat_and_general_ones_thirteen(session, november)
    _the_tax_worksheet_of_a_closed_month_shows_its_taxes(session, november)


def test_each_date_closes_the_right_months_and_the_books_balance(session, seeded):
    _months_up_to_two_before_today_are_closed_and_fully_posted(session, seeded)
    _posted_books_balance_and_profit_and_loss_is_empty_after_each_closed_month(session, seeded)


@pytest.mark.parametrize("today", [date(2026, 11, 23), date(2026, 2, 10)], ids=str)
def test_seeding_again_changes_nothing(app, session, today):
    seeded = _seed(app, session, today)

    def state() -> tuple:
        session.expire_all()
        return (
            session.execute(select(Voucher.id, Voucher.period, Voucher.word, Voucher.number, Voucher.state,
                                   Voucher.total).order_by(Voucher.id)).all(),
            session.execute(select(VoucherLine.id, VoucherLine.debit, VoucherLine.credit, VoucherLine.posted)
                            .order_by(VoucherLine.id)).all(),
            session.execute(select(Period.id, Period.status, Period.version).order_by(Period.id)).all(),
            session.scalar(select(func.count()).select_from(Account)),
            session.scalar(select(func.count()).select_from(OpeningBalance)),
            session.scalar(select(func.count()).select_from(AuditLog)),
        )

    before = state()
    assert seed_business_data(app, today=seeded) == 0
    assert seed_ledger_data(app, today=date(seeded.year, 12, 31)) == 0
    assert state() == before


def test_same_date_gives_the_same_books(app, session):
    def amounts() -> list:
        session.expire_all()
        return session.execute(select(Voucher.client_id, Voucher.period, Voucher.word, Voucher.number,
                                      Voucher.summary, Voucher.total)
                               .order_by(Voucher.client_id, Voucher.period, Voucher.word, Voucher.number)).all()

    seed_business_data(app, today=date(2026, 5, 20))
    first = amounts()
    for book in session.scalars(select(LedgerBook)):
        session.execute(VoucherLine.__table__.delete().where(VoucherLine.book_id == book.id))
        session.execute(Voucher.__table__.delete().where(Voucher.book_id == book.id))
        session.execute(OpeningBalance.__table__.delete().where(OpeningBalance.book_id == book.id))
        session.execute(Period.__table__.delete().where(Period.book_id == book.id))
        session.execute(Account.__table__.update().where(Account.book_id == book.id).values(parent_id=None))
        session.execute(Account.__table__.delete().where(Account.book_id == book.id))
        session.delete(book)
    session.commit()
    assert seed_ledger_data(app, today=date(2026, 5, 20)) == len(LEDGER_PROFILES)
    assert amounts() == first
    assert len({total for *_, total in first}) > len(first) // 2  # amounts vary from voucher to voucher


def test_a_seed_that_fails_half_way_leaves_no_books_and_can_run_again(app, session, monkeypatch):
    closed = []

    def close_twice_then_fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if len(closed) == 2:
            raise RuntimeError("disk full")
        closed.append(args[2])
        return real_close(*args, **kwargs)

    real_close = periods.close_period
    monkeypatch.setattr(periods, "close_period", close_twice_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        seed_business_data(app, today=date(2026, 6, 15))
    session.expire_all()
    assert closed == ["2026-01", "2026-02"]  # the books were well under way when the seed failed
    assert session.scalar(select(func.count()).select_from(Client)) == 4
    for model in (LedgerBook, Account, OpeningBalance, Voucher, VoucherLine, Period):
        assert session.scalar(select(func.count()).select_from(model)) == 0, model.__name__
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.object_type.like("ledger%"))) == 0

    monkeypatch.setattr(periods, "close_period", real_close)
    assert seed_ledger_data(app, today=date(2026, 6, 15)) == len(LEDGER_PROFILES)
    session.expire_all()
    assert [periods.closed_periods(session, book.id) for book in _books(session).values()] == [
        [202601, 202602, 202603, 202604]] * len(LEDGER_PROFILES)


def test_seed_without_the_reviewer_opens_no_books(app, session):
    reviewer = app.appbuilder.sm.find_user(username="reviewer")
    reviewer.username = "reviewer-renamed"
    session.commit()
    assert seed_business_data(app, today=date(2026, 6, 1)) == 4
    assert session.scalar(select(func.count()).select_from(LedgerBook)) == 0
    assert session.scalar(select(func.count()).select_from(Voucher)) == 0


def test_seed_demo_opens_the_books_up_to_today(app, session):
    seed_demo(app)
    session.expire_all()
    today = date.today()
    found = _books(session)
    assert sorted(found) == sorted(BOOKKEEPING_CLIENTS)
    for book in found.values():
        assert periods.closed_periods(session, book.id) == _expected_closed(today)
    client = session.scalar(select(Client).where(Client.credit_code == make_credit_code(
        LEDGER_PROFILES[0].credit_code17)))
    assert client.name in found and db.session.scalar(
        select(func.count()).select_from(Voucher).where(Voucher.client_id == client.id)) > 0
