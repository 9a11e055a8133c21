"""Period close (结账) and reopen (反结账): preconditions, the carry-forward voucher, versions, audit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.ledger import Period, PeriodStatus, Voucher, VoucherKind, VoucherLine, VoucherState, VoucherWord
from app.models.security import AuditLog
from app.services import books, periods, vouchers
from app.services.errors import Conflict, ValidationFailed
from tests.factories import line, make_books, make_voucher


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


@pytest.fixture
def book(app):
    return make_books(name="结账测试有限公司", start="2026-11")


@pytest.fixture
def people(user_id):
    return user_id("accountant"), user_id("reviewer")


def _post(book, people, **kw):
    return make_voucher(book, people[0], state="posted", reviewer_id=people[1], **kw)


def _state(session, book) -> tuple:
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(Voucher).where(Voucher.book_id == book.id)),
            session.scalar(select(func.count()).select_from(VoucherLine).where(VoucherLine.book_id == book.id)),
            list(session.execute(select(Period.period, Period.status, Period.version).where(
                Period.book_id == book.id).order_by(Period.period))))


def _balance(session, book, code: str) -> Decimal:
    return books.account_balance(session, books.account_by_code(session, book.id, code))


def test_close_lists_every_unmet_precondition_and_writes_nothing(session, book, people):
    books.set_opening_balance(session, book.id, "1001", debit="10")
    make_voucher(book, people[0], day="2026-12-01")
    gone = make_voucher(book, people[0], day="2026-12-02")
    make_voucher(book, people[0], day="2026-12-03")
    vouchers.delete_voucher(session, gone.id)
    before = _state(session, book)
    with pytest.raises(Conflict) as refused:
        periods.close_period(session, book.client_id, "2026-12", people[1])
    assert refused.value.errors["period"] == [
        "The opening balances do not balance (debit 10.00, credit 0.00).",
        "Close the previous period 2026-11 first.",
        "2 voucher(s) of this period are not posted yet.",
        "Voucher numbers have gaps (记: 2); renumber the period first.",
    ]
    assert _state(session, book) == before


def test_close_refuses_bad_early_and_closed_periods(session, book, people):
    with pytest.raises(ValidationFailed, match="YYYY-MM"):
        periods.close_period(session, book.client_id, "2026-1", people[1])
    with pytest.raises(ValidationFailed, match="start in 2026-11"):
        periods.close_period(session, book.client_id, "2026-10", people[1])
    periods.close_period(session, book.client_id, "2026-11", people[1])
    with pytest.raises(Conflict, match="already closed"):
        periods.close_period(session, book.client_id, "2026-11", people[1])


def test_carry_forward_clears_profit_and_loss_to_3103(session, book, people):
    _post(book, people, day="2026-11-05", amount="1000.00", debit_code="1002", credit_code="5001")
    _post(book, people, day="2026-11-06", amount="600.00", debit_code="5401", credit_code="1405")
    _post(book, people, day="2026-11-07", amount="50.00", debit_code="5603", credit_code="1002")
    result = periods.close_period(session, book.client_id, "2026-11", people[1])
    carry = result.carry_forward
    assert (carry.word, carry.number, carry.kind, carry.state) == (VoucherWord.zhuan, 1, VoucherKind.carry_forward,
                                                                   VoucherState.posted)
    assert carry.date.isoformat() == "2026-11-30"
    assert sorted((ln.account.code, ln.debit, ln.credit) for ln in carry.lines) == [
        ("3103", Decimal("0.00"), Decimal("350.00")),
        ("5001", Decimal("1000.00"), Decimal("0.00")),
        ("5401", Decimal("0.00"), Decimal("600.00")),
        ("5603", Decimal("0.00"), Decimal("50.00")),
    ]
    assert all(ln.carry_forward and ln.posted for ln in carry.lines)
    for code in ("5001", "5401", "5603"):
        assert _balance(session, book, code) == 0
    assert _balance(session, book, "3103") == Decimal("-350.00")  # a credit balance: profit
    assert _state(session, book)[2] == [(202611, PeriodStatus.closed, 1)]
    [row] = session.scalars(select(AuditLog).where(AuditLog.action == "period_close"))
    assert row.summary == "结账测试有限公司 2026-11"


def test_the_carry_forward_is_made_by_the_system_and_reviewed_by_the_person_who_closed(session, book, people):
    _post(book, people, day="2026-11-05", amount="1000.00", debit_code="1002", credit_code="5001")
    carry = periods.close_period(session, book.client_id, "2026-11", people[0]).carry_forward
    session.expire_all()
    carry = session.get(Voucher, carry.id)
    assert carry.made_by_system
    assert (carry.maker_id, carry.reviewer_id, carry.poster_id) == (None, people[0], people[0])
    assert carry.reviewed_version == carry.version == 1


def test_a_month_without_profit_and_loss_closes_without_a_voucher(session, book, people):
    _post(book, people, day="2026-11-05", debit_code="1002", credit_code="1001")
    assert periods.close_period(session, book.client_id, "2026-11", people[1]).carry_forward is None


def test_december_also_moves_the_years_profit_to_3104(session, people):
    book = make_books(start="2026-11")
    books.add_sub_account(session, book.id, "3104", "310401", "提取盈余公积")
    books.add_sub_account(session, book.id, "3104", "310402", "未分配利润")
    _post(book, people, day="2026-11-10", amount="300.00", debit_code="1002", credit_code="5001")
    periods.close_period(session, book.client_id, "2026-11", people[1])
    _post(book, people, day="2026-12-10", amount="200.00", debit_code="1002", credit_code="5001")
    _post(book, people, day="2026-12-11", amount="80.00", debit_code="5602", credit_code="1002")
    carry = periods.close_period(session, book.client_id, "2026-12", people[1]).carry_forward
    assert [(ln.account.code, ln.debit, ln.credit) for ln in carry.lines] == [
        ("5001", Decimal("200.00"), Decimal("0.00")),
        ("5602", Decimal("0.00"), Decimal("80.00")),
        ("3103", Decimal("0.00"), Decimal("120.00")),
        ("3103", Decimal("420.00"), Decimal("0.00")),
        ("310402", Decimal("0.00"), Decimal("420.00")),
    ]
    assert _balance(session, book, "3103") == 0
    assert _balance(session, book, "3104") == Decimal("-420.00")


def test_reopen_only_the_latest_closed_month_and_it_removes_the_carry_forward(session, book, people):
    _post(book, people, day="2026-11-05", debit_code="1002", credit_code="5001")
    periods.close_period(session, book.client_id, "2026-11", people[1])
    _post(book, people, day="2026-12-05", debit_code="1002", credit_code="5001")
    december = periods.close_period(session, book.client_id, "2026-12", people[1]).carry_forward
    with pytest.raises(Conflict, match=r"latest closed period \(2026-12\)"):
        periods.reopen_period(session, book.client_id, "2026-11", people[1])
    with pytest.raises(Conflict, match="not closed"):
        periods.reopen_period(session, book.client_id, "2027-01", people[1])

    periods.reopen_period(session, book.client_id, "2026-12", people[1])
    assert session.get(Voucher, december.id) is None
    assert _state(session, book)[2] == [(202611, PeriodStatus.closed, 1), (202612, PeriodStatus.open, 2)]
    assert _balance(session, book, "5001") == Decimal("-100.00")  # December's income is back on 5001
    assert [r.summary for r in session.scalars(select(AuditLog).where(AuditLog.action == "period_reopen"))] == [
        "结账测试有限公司 2026-12"]
    assert periods.period_version(session, book.id, 202612) == 2

    # the month is open again: a voucher can be added and the month closed once more
    added = vouchers.save_voucher(session, book.client_id, {"date": "2026-12-20", "word": "转", "summary": "补录",
                                                            "lines": [line("1001", debit="1"),
                                                                      line("1002", credit="1")]}, people[0])
    assert added.label == "转-1"  # the number of the deleted carry-forward is free again
    vouchers.review_voucher(session, added.id, people[1])
    vouchers.post_voucher(session, added.id, people[1])
    again = periods.close_period(session, book.client_id, "2026-12", people[1]).carry_forward
    assert again.label == "转-2" and periods.period_version(session, book.id, 202612) == 3
