"""The balance sheet of a month not yet closed (结账) ties: the profit still on the profit-and-loss
accounts (未结转损益) counts in 未分配利润, with a note giving the amount and the open months.

The books are the hand-computed ones of tests/test_ledger_reports.py: January (profit 9,000)
and February (profit 5,800) closed, so 3103 本年利润 holds 14,800 and the sheet at the end of
February shows 资产总计 = 负债和所有者权益总计 = 86,250. A year-end case has books of its own.
"""

from __future__ import annotations

from decimal import Decimal

from app.services import books, periods
from app.services import ledger_reports as reports
from tests import test_ledger_reports as ledger_books
from tests.factories import line, make_books, make_client, make_voucher

book, checker, maker, en = ledger_books.book, ledger_books.checker, ledger_books.maker, ledger_books.en  # fixtures
_lines = ledger_books._lines
D = Decimal
OFFICE_RENT = [line("5602", debit="1234.50"), line("100201", credit="1234.50")]  # March: 300 - 1,234.50 = -934.50


def _post(book, maker, checker, **data) -> None:  # noqa: ANN001
    make_voucher(book, maker, state="posted", reviewer_id=checker, **data)


def _totals(sheet: reports.Statement) -> tuple:
    """(资产总计, 未分配利润, 负债和所有者权益总计) of the end column, then of the start-of-year column."""
    return tuple(str(sheet.value(n, column)) for column in (0, 1) for n in (30, 51, 53))


def test_an_open_month_shows_its_profit_in_retained_earnings_with_a_note(session, book, maker, checker):
    _post(book, maker, checker, day="2026-03-05", amount="300.00")  # D 1001 / C 5001 300
    sheet = reports.balance_sheet(session, book.client_id, "2026-03")
    assert _totals(sheet) == ("86550.00", "15100.00", "86550.00", "69000.00", "0.00", "69000.00")
    assert str(sheet.value(52)) == "84100.00"  # 所有者权益合计: 69,000 + 15,100
    end, start = sheet.unclosed
    assert (end.line, end.amount, end.from_period, end.to_period) == (51, D("300.00"), 202603, 202603)
    assert end.note == "含未结转损益 300.00（本月尚未结账）"
    assert start is None  # the year started with the books
    income = reports.income_statement(session, book.client_id, "2026-03")
    assert income.value(32, 0) == end.amount  # the month's net profit (净利润) on the income statement


def test_a_closed_month_is_unchanged_and_has_no_note(session, book, maker, checker):
    _post(book, maker, checker, day="2026-03-05", amount="300.00")  # March open, after February
    february = reports.balance_sheet(session, book.client_id, "2026-02")
    assert _totals(february) == ("86250.00", "14800.00", "86250.00", "69000.00", "0.00", "69000.00")
    assert february.unclosed == (None, None)
    january = _lines(reports.balance_sheet(session, book.client_id, "2026-01"))
    assert {n: january[n] for n in (30, 51, 53)} == {30: ("79800.00", "69000.00"), 51: ("9000.00", "0.00"),
                                                     53: ("79800.00", "69000.00")}


def test_closing_the_month_changes_no_figure_and_drops_the_note(session, book, maker, checker):
    _post(book, maker, checker, day="2026-03-05", amount="300.00")
    _post(book, maker, checker, day="2026-03-06", lines=OFFICE_RENT)
    open_sheet = reports.balance_sheet(session, book.client_id, "2026-03")
    assert _totals(open_sheet) == ("85315.50", "13865.50", "85315.50", "69000.00", "0.00", "69000.00")
    assert open_sheet.unclosed[0].note == "含未结转损益 -934.50（本月尚未结账）"  # a loss
    periods.close_period(session, book.client_id, "2026-03", maker)
    closed = reports.balance_sheet(session, book.client_id, "2026-03")
    assert _lines(closed) == _lines(open_sheet)
    assert closed.unclosed == (None, None)


def test_every_open_month_up_to_the_one_shown_counts_posted_lines_only(session, book, maker, checker):
    periods.reopen_period(session, book.client_id, "2026-02", maker)  # February's 5,800 back on 5001/5602
    _post(book, maker, checker, day="2026-03-05", amount="300.00")
    _post(book, maker, checker, day="2026-03-06", lines=OFFICE_RENT)
    make_voucher(book, maker, day="2026-02-25", amount="777.00")  # a draft in February
    make_voucher(book, maker, state="reviewed", reviewer_id=checker, day="2026-03-25", amount="888.00")  # not posted
    march = reports.balance_sheet(session, book.client_id, "2026-03")
    # 3103 holds January's 9,000; February's 5,800 and March's -934.50 are not carried yet.
    assert _totals(march) == ("85315.50", "13865.50", "85315.50", "69000.00", "0.00", "69000.00")
    end = march.unclosed[0]
    assert (end.amount, end.from_period, end.to_period) == (D("4865.50"), 202602, 202603)
    assert end.note == "含未结转损益 4,865.50（2026-02 至本月尚未结账）"
    february = reports.balance_sheet(session, book.client_id, "2026-02")
    assert _totals(february) == ("86250.00", "14800.00", "86250.00", "69000.00", "0.00", "69000.00")
    assert february.unclosed[0].note == "含未结转损益 5,800.00（本月尚未结账）"
    assert reports.balance_sheet(session, book.client_id, "2026-01").unclosed == (None, None)


def test_the_year_end_ties_before_and_after_december_moves_the_profit_to_distribution(app, session, maker,
                                                                                        checker):
    accountant = app.appbuilder.sm.find_user(username="accountant")
    december = make_books(make_client(accountant=accountant, name="年末测试有限公司"), start="2026-12")
    books.set_opening_balance(session, december.id, "1001", debit="10000")
    books.set_opening_balance(session, december.id, "3001", credit="10000")
    _post(december, maker, checker, day="2026-12-10", amount="1000.00")  # D 1001 / C 5001: profit 1,000
    _post(december, maker, checker, day="2027-01-15", lines=[line("5602", debit="200"), line("1001", credit="200")])

    def sheet(month: str) -> reports.Statement:
        return reports.balance_sheet(session, december.client_id, month)

    # December and January open: the start of 2027 holds December's profit, the end both months'.
    january = sheet("2027-01")
    assert _totals(january) == ("10800.00", "800.00", "10800.00", "11000.00", "1000.00", "11000.00")
    end, start = january.unclosed
    assert end.note == "含未结转损益 800.00（2026-12 至本月尚未结账）"
    assert (start.line, start.amount, start.from_period, start.to_period) == (51, D("1000.00"), 202612, 202612)
    assert start.note == "含未结转损益 1,000.00（2026-12 尚未结账）"
    open_december = sheet("2026-12")
    assert _totals(open_december) == ("11000.00", "1000.00", "11000.00", "10000.00", "0.00", "10000.00")
    assert open_december.unclosed[0].note == "含未结转损益 1,000.00（本月尚未结账）"
    assert open_december.unclosed[1] is None

    periods.close_period(session, december.client_id, "2026-12", maker)  # 5001 → 3103 → 3104
    trial = ledger_books._rows(reports.trial_balance(session, december.client_id, "2026-12", "2026-12"))
    assert trial["3104"][5] == "1000.00" and trial["3103"][4:] == ("0.00", "0.00")
    assert _lines(sheet("2026-12")) == _lines(open_december) and sheet("2026-12").unclosed == (None, None)
    after = sheet("2027-01")
    assert _lines(after) == _lines(january)
    assert after.unclosed[0].note == "含未结转损益 -200.00（本月尚未结账）" and after.unclosed[1] is None

    periods.close_period(session, december.client_id, "2027-01", maker)
    closed = sheet("2027-01")
    assert _lines(closed) == _lines(january) and closed.unclosed == (None, None)


# --- the faces: API, screen -------------------------------------------------------------------


def test_api_balance_sheet_carries_the_note_and_amount(app, book, maker, checker, api_token):
    _post(book, maker, checker, day="2026-03-05", amount="300.00")
    client, headers = app.test_client(), api_token("manager")
    sheet = client.get(f"/api/v1/reports/balance-sheet?client_id={book.client_id}&period=2026-03", headers=headers)
    assert sheet.status_code == 200
    assert sheet.json["unclosed_profit"] == {
        "end": {"line": 51, "amount": "300.00", "from": "2026-03", "to": "2026-03",
                "note": "含未结转损益 300.00（本月尚未结账）"},
        "year_start": None}
    lines = sheet.json["lines"]
    assert lines[50] == {"line": 51, "item": "未分配利润", "end": "15100.00", "year_start": "0.00"}
    assert lines[29]["end"] == lines[52]["end"] == "86550.00"
    closed = client.get(f"/api/v1/reports/balance-sheet?client_id={book.client_id}&period=2026-02", headers=headers)
    assert closed.json["unclosed_profit"] == {"end": None, "year_start": None}
    income = client.get(f"/api/v1/reports/income-statement?client_id={book.client_id}&period=2026-03",
                        headers=headers)
    assert "unclosed_profit" not in income.json


def test_api_note_follows_the_language(app, en, book, maker, checker, api_token):
    _post(book, maker, checker, day="2026-03-05", amount="12345.67")
    sheet = app.test_client().get(f"/api/v1/reports/balance-sheet?client_id={book.client_id}&period=2026-03",
                                  headers=api_token("manager"))
    assert sheet.json["unclosed_profit"]["end"]["note"] == (
        "Includes profit not yet carried forward of 12,345.67 (this month is not closed yet)")


def test_screen_marks_retained_earnings_and_shows_the_note(book, maker, checker, login_as):
    _post(book, maker, checker, day="2026-03-05", amount="300.00")
    browser = login_as("accountant")
    html = browser.get(f"/ledger/reports/balance-sheet?client_id={book.client_id}&period=2026-03").get_data(
        as_text=True)
    assert 'id="end-30">86550.00<' in html and 'id="end-53">86550.00<' in html
    assert 'id="end-51">15100.00<sup' in html
    assert 'id="unclosed-end"' in html and "含未结转损益 300.00（本月尚未结账）" in html
    assert 'id="unclosed-start"' not in html
    closed = browser.get(f"/ledger/reports/balance-sheet?client_id={book.client_id}&period=2026-02").get_data(
        as_text=True)
    assert 'id="end-51">14800.00<' in closed and "unclosed-end" not in closed and "含未结转损益" not in closed


def test_screen_in_english_names_the_column_of_each_note(app, en, session, maker, checker, login_as):
    accountant = app.appbuilder.sm.find_user(username="accountant")
    december = make_books(make_client(accountant=accountant), start="2026-12")
    _post(december, maker, checker, day="2026-12-10", amount="1000.00")
    html = login_as("accountant").get(
        f"/ledger/reports/balance-sheet?client_id={december.client_id}&period=2027-01").get_data(as_text=True)
    assert ("End of period: Includes profit not yet carried forward of 1,000.00 (2026-12 to this month are not "
            "closed yet)") in html
    assert "Start of year: Includes profit not yet carried forward of 1,000.00 (2026-12 is not closed yet)" in html
    assert 'id="start-51">1000.00<sup' in html and 'id="start-53">1000.00<' in html
