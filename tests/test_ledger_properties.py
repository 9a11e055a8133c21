"""Properties of the books and statements over random balanced books.

For any balanced opening balances and any balanced, posted vouchers over leaf accounts (sub-accounts
and the credit-normal contra accounts included), once the months are closed (the December close
moves the year's profit to 3104): the trial balance balances, the balance sheet's line 30 (资产总计)
equals line 53 (负债和所有者权益总计) in both columns, and the change of 未分配利润 over the year is
the income statement's net profit for the year. Before each close the month's balance sheet
already ties, counting the profit not yet carried forward, and the close changes none of its
figures (also when the month before is still open).
Each example opens books for a new client, so examples never see each other's data; the test's
data is rolled back afterwards like every test's.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services import books, periods, vouchers
from app.services import ledger_reports as reports
from tests.factories import line, make_client

SUB_ACCOUNTS = (("1002", "100201", "工商银行"), ("1002", "100202", "建设银行"), ("1122", "112201", "客户A"),
                ("1122", "112202", "客户B"), ("1602", "160201", "房屋折旧"), ("2202", "220201", "供应商A"))
LEAVES = ("1001", "100201", "100202", "112201", "112202", "1123", "1403", "1405", "1407", "1601", "160201",
          "1622", "1702", "2001", "220201", "2203", "22210102", "2241", "3001", "4001", "4301", "5001", "5051",
          "5111", "5301", "5401", "5602", "5603", "5711", "5801")
OPENING_DEBITS = ("1001", "100201", "112202", "1405", "1407", "1601", "160201")

cents = st.integers(min_value=1, max_value=10_000_000)


def _money(value: int) -> str:
    return f"{Decimal(value) / 100:.2f}"


@st.composite
def voucher(draw) -> dict:  # noqa: ANN001
    debits = draw(st.lists(st.tuples(st.sampled_from(LEAVES), cents), min_size=1, max_size=3))
    total = sum(amount for _, amount in debits)
    credit_accounts = draw(st.lists(st.sampled_from(LEAVES), min_size=1, max_size=2))
    shares = [total] if total < 2 or len(credit_accounts) == 1 else [total // 2, total - total // 2]
    month = draw(st.sampled_from(["2026-11", "2026-12"]))
    day = draw(st.integers(min_value=1, max_value=28))
    return {"date": f"{month}-{day:02d}", "word": "记", "summary": "随机凭证",
            "lines": [line(code, debit=_money(amount)) for code, amount in debits]
            + [line(code, credit=_money(amount)) for code, amount in zip(credit_accounts, shares, strict=False)]}


openings = st.dictionaries(st.sampled_from(OPENING_DEBITS), cents, max_size=4)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opening=openings, entries=st.lists(voucher(), min_size=1, max_size=6))
def test_closed_books_always_balance(app, session, user_id, opening, entries):
    maker, checker = user_id("accountant"), user_id("reviewer")
    book = books.open_books(session, make_client().id, "2026-11")
    for parent, code, name in SUB_ACCOUNTS:
        books.add_sub_account(session, book.id, parent, code, name)
    for code, amount in opening.items():
        books.set_opening_balance(session, book.id, code, debit=_money(amount))
    if opening:
        books.set_opening_balance(session, book.id, "3001", credit=_money(sum(opening.values())))
    for data in entries:
        saved = vouchers.save_voucher(session, book.client_id, data, maker)
        vouchers.review_voucher(session, saved.id, checker)
        vouchers.post_voucher(session, saved.id, checker)
    both_open = reports.balance_sheet(session, book.client_id, "2026-12")
    for month in ("2026-11", "2026-12"):
        open_sheet = reports.balance_sheet(session, book.client_id, month)
        assert open_sheet.value(30, 0) == open_sheet.value(53, 0)
        assert open_sheet.value(30, 1) == open_sheet.value(53, 1)
        periods.close_period(session, book.client_id, month, maker)
        trial = reports.trial_balance(session, book.client_id, "2026-11", month)
        assert trial.balanced, trial.totals
        sheet = reports.balance_sheet(session, book.client_id, month)
        assert sheet.value(30, 0) == sheet.value(53, 0)
        assert sheet.value(30, 1) == sheet.value(53, 1)
        assert [(ln.first, ln.second) for ln in sheet.lines] == [(ln.first, ln.second) for ln in open_sheet.lines]
    assert [(ln.first, ln.second) for ln in sheet.lines] == [(ln.first, ln.second) for ln in both_open.lines]
    income = reports.income_statement(session, book.client_id, "2026-12")
    assert sheet.value(51, 0) - sheet.value(51, 1) == income.value(32, 1)
    assert reports.trial_balance(session, book.client_id, "2026-12", "2026-12", level=1).rows[0].code == "1001"
