"""Books and statements over small, hand-computed books.

The books (start 2026-01), opening balances: 1001 库存现金 D 1,000; 100201 工商银行 D 50,000;
1601 固定资产 D 20,000; 1602 累计折旧 C 2,000; 3001 实收资本 C 69,000.
January (closed): 记-1 sale on credit to customer A (D 112201 11,300 / C 5001 10,000, C 22210102 销项税额 1,300);
记-2 advance from customer B (D 100201 500 / C 112202 500); 记-3 office expense paid in cash
(D 5602 800 / C 1001 800); 记-4 depreciation (D 5602 200 / C 1602 200); the close carries
5001 10,000 and 5602 1,000 to 3103 (profit 9,000).
February (closed): 记-1 sale into 100202 建设银行 (D 100202 5,650 / C 5001 5,000, C 22210102 650);
记-2 red reversal of January's 记-3 (D 5602 -800 / C 1001 -800); profit 5,800.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.ledger import VoucherLine
from app.services import books, periods, vouchers
from app.services import ledger_reports as reports
from app.services.errors import NotFound, ValidationFailed
from tests.factories import line, make_books, make_client, make_voucher

D = Decimal


@pytest.fixture
def en(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


@pytest.fixture
def maker(user_id):
    return user_id("accountant")


@pytest.fixture
def checker(user_id):
    return user_id("reviewer")


@pytest.fixture
def book(app, session, maker, checker):
    accountant = app.appbuilder.sm.find_user(username="accountant")
    book = make_books(make_client(accountant=accountant, name="报表测试有限公司"), start="2026-01")
    for parent, code, name in (("1002", "100201", "工商银行"), ("1002", "100202", "建设银行"),
                               ("1122", "112201", "客户A"), ("1122", "112202", "客户B")):
        books.add_sub_account(session, book.id, parent, code, name)
    for code, debit, credit in (("1001", "1000", None), ("100201", "50000", None), ("1601", "20000", None),
                                ("1602", None, "2000"), ("3001", None, "69000")):
        books.set_opening_balance(session, book.id, code, debit, credit)
    post = dict(maker_id=maker, state="posted", reviewer_id=checker)
    make_voucher(book, day="2026-01-05", summary="销售商品", lines=[
        line("112201", debit="11300"), line("5001", credit="10000"), line("22210102", credit="1300")], **post)
    make_voucher(book, day="2026-01-10", summary="预收货款", lines=[
        line("100201", debit="500"), line("112202", credit="500")], **post)
    expense = make_voucher(book, day="2026-01-20", summary="办公用品", lines=[
        line("5602", debit="800", memo="购买办公用品"), line("1001", credit="800")], **post)
    make_voucher(book, day="2026-01-31", summary="计提折旧", lines=[
        line("5602", debit="200"), line("1602", credit="200")], **post)
    periods.close_period(session, book.client_id, "2026-01", maker)
    make_voucher(book, day="2026-02-15", summary="销售商品", lines=[
        line("100202", debit="5650"), line("5001", credit="5000"), line("22210102", credit="650")], **post)
    reversal = vouchers.reverse_voucher(session, expense.id, maker, on_date="2026-02-20")
    vouchers.review_voucher(session, reversal.id, checker)
    vouchers.post_voucher(session, reversal.id, checker)
    periods.close_period(session, book.client_id, "2026-02", maker)
    return book


def _rows(report: reports.TrialBalance) -> dict[str, tuple]:
    return {row.code: tuple(str(v) for v in row.columns) for row in report.rows}


def _lines(statement: reports.Statement) -> dict[int, tuple]:
    return {ln.line: (None if ln.first is None else str(ln.first), None if ln.second is None else str(ln.second))
            for ln in statement.lines}


# --- trial balance --------------------------------------------------------------------------


def test_trial_balance_of_a_closed_january(session, book):
    report = reports.trial_balance(session, book.client_id, "2026-01", "2026-01", hide_zero=True)
    rows = _rows(report)
    z = "0.00"
    assert rows == {
        "1001": ("1000.00", z, z, "800.00", "200.00", z),
        "1002": ("50000.00", z, "500.00", z, "50500.00", z),
        "100201": ("50000.00", z, "500.00", z, "50500.00", z),
        "1122": (z, z, "11300.00", "500.00", "10800.00", z),
        "112201": (z, z, "11300.00", z, "11300.00", z),
        "112202": (z, z, z, "500.00", z, "500.00"),
        "1601": ("20000.00", z, z, z, "20000.00", z),
        "1602": (z, "2000.00", z, "200.00", z, "2200.00"),
        "2221": (z, z, z, "1300.00", z, "1300.00"),
        "222101": (z, z, z, "1300.00", z, "1300.00"),
        "22210102": (z, z, z, "1300.00", z, "1300.00"),
        "3001": (z, "69000.00", z, z, z, "69000.00"),
        "3103": (z, z, z, "9000.00", z, "9000.00"),
        "5001": (z, z, "10000.00", "10000.00", z, z),
        "5602": (z, z, "1000.00", "1000.00", z, z),
    }
    assert [str(v) for v in report.totals] == ["71000.00", "71000.00", "22800.00", "22800.00",
                                               "81500.00", "81500.00"]
    assert report.balanced
    assert [r.code for r in report.rows][:4] == ["1001", "1002", "100201", "1122"]  # parents before children


def test_trial_balance_level_filter_and_zero_rows(session, book):
    everything = reports.trial_balance(session, book.client_id, "2026-01", "2026-01")
    assert len(everything.rows) == 66 + 20 + 4  # the standard chart, its tax sub-accounts, our own
    assert _rows(everything)["100202"] == ("0.00",) * 6
    first_level = reports.trial_balance(session, book.client_id, "2026-01", "2026-01", level=1, hide_zero=True)
    assert [r.code for r in first_level.rows] == ["1001", "1002", "1122", "1601", "1602", "2221", "3001", "3103",
                                                  "5001", "5602"]
    assert first_level.totals == everything.totals


def test_trial_balance_over_two_months_counts_the_red_reversal_in_its_column(session, book):
    report = reports.trial_balance(session, book.client_id, "2026-01", "2026-02", hide_zero=True)
    rows = _rows(report)
    z = "0.00"
    assert rows["1001"] == ("1000.00", z, z, "0.00", "1000.00", z)  # credit 800 then red credit -800
    assert rows["5602"] == (z, z, "1000.00", "1000.00", z, z)  # D 800 + 200 - 800 + 800 (carry-forward)
    assert rows["1002"] == ("50000.00", z, "6150.00", z, "56150.00", z)
    assert rows["3103"] == (z, z, z, "14800.00", z, "14800.00")
    assert report.balanced
    february = _rows(reports.trial_balance(session, book.client_id, "2026-02", "2026-02"))
    assert february["1001"] == ("200.00", z, z, "-800.00", "1000.00", z)
    assert february["3103"] == (z, "9000.00", z, "5800.00", z, "14800.00")


def test_unposted_vouchers_are_left_out_of_every_report(session, book, maker, checker):
    before = (_rows(reports.trial_balance(session, book.client_id, "2026-03", "2026-03")),
              _lines(reports.balance_sheet(session, book.client_id, "2026-03")),
              _lines(reports.income_statement(session, book.client_id, "2026-03")))
    make_voucher(book, maker, day="2026-03-02", amount="999.00")  # draft
    make_voucher(book, maker, state="reviewed", reviewer_id=checker, day="2026-03-03", amount="111.00")
    after = (_rows(reports.trial_balance(session, book.client_id, "2026-03", "2026-03")),
             _lines(reports.balance_sheet(session, book.client_id, "2026-03")),
             _lines(reports.income_statement(session, book.client_id, "2026-03")))
    assert after == before
    ledger = reports.detail_ledger(session, book.client_id, "1001", "2026-03", "2026-03")
    assert [r.kind for r in ledger.rows] == ["opening", "month_total", "year_total"]
    make_voucher(book, maker, state="posted", reviewer_id=checker, day="2026-03-04", amount="50.00")
    assert _rows(reports.trial_balance(session, book.client_id, "2026-03", "2026-03"))["1001"][2] == "50.00"


# --- general and detail ledgers -------------------------------------------------------------


def test_general_ledger_months_and_year_to_date(session, book):
    accounts = {a.code: a for a in reports.general_ledger(session, book.client_id, "2026-02", "2026-03")}
    assert "1012" not in accounts  # nothing on it
    bank = accounts["1002"]
    assert bank.opening == D("50500.00")
    assert [(m.period, str(m.debit), str(m.credit), str(m.ytd_debit), str(m.ytd_credit), str(m.balance))
            for m in bank.months] == [(202602, "5650.00", "0.00", "6150.00", "0.00", "56150.00"),
                                      (202603, "0.00", "0.00", "6150.00", "0.00", "56150.00")]
    sales = accounts["5001"]
    assert [(str(m.ytd_debit), str(m.ytd_credit), str(m.balance)) for m in sales.months] == [
        ("15000.00", "15000.00", "0.00"), ("15000.00", "15000.00", "0.00")]
    assert accounts["1602"].months[0].balance == D("-2200.00")  # a credit balance


def test_detail_ledger_running_balance_month_and_year_totals(session, book):
    report = reports.detail_ledger(session, book.client_id, "1001", "2026-01", "2026-02")
    assert (report.account_code, report.account_name) == ("1001", "库存现金")
    assert [(r.kind, r.period, r.date and r.date.isoformat(), r.voucher, r.summary, str(r.debit), str(r.credit),
             str(r.balance)) for r in report.rows] == [
        ("opening", 202601, None, None, None, "0.00", "0.00", "1000.00"),
        ("line", 202601, "2026-01-20", "记-3", "办公用品", "0.00", "800.00", "200.00"),
        ("month_total", 202601, None, None, None, "0.00", "800.00", "200.00"),
        ("year_total", 202601, None, None, None, "0.00", "800.00", "200.00"),
        ("line", 202602, "2026-02-20", "记-2", "冲销 2026-01 记-3 号凭证：办公用品", "0.00", "-800.00", "1000.00"),
        ("month_total", 202602, None, None, None, "0.00", "-800.00", "1000.00"),
        ("year_total", 202602, None, None, None, "0.00", "0.00", "1000.00"),
    ]
    assert [reports.direction_of(r.balance) for r in report.rows][:2] == ["debit", "debit"]
    expense = reports.detail_ledger(session, book.client_id, "5602", "2026-01", "2026-01")
    memos = [r.summary for r in expense.rows if r.kind == "line"]
    assert memos == ["购买办公用品", "计提折旧", "结转管理费用"]  # the line's memo, else the voucher's summary


def test_detail_ledger_of_a_parent_lists_its_sub_accounts_lines(session, book):
    report = reports.detail_ledger(session, book.client_id, "1122", "2026-01", "2026-01")
    lines = [(r.account_code, str(r.debit), str(r.credit), str(r.balance)) for r in report.rows if r.kind == "line"]
    assert lines == [("112201", "11300.00", "0.00", "11300.00"), ("112202", "0.00", "500.00", "10800.00")]
    customer_b = reports.detail_ledger(session, book.client_id, "112202", "2026-02", "2026-02")
    assert customer_b.rows[0].balance == D("-500.00")
    assert reports.direction_of(customer_b.rows[0].balance) == "credit"
    month, year = customer_b.rows[-2:]
    assert (month.kind, month.debit, month.credit) == ("month_total", D("0.00"), D("0.00"))  # nothing in February
    assert (year.kind, year.debit, year.credit, year.balance) == ("year_total", D("0.00"), D("500.00"), D("-500.00"))


# --- statements -----------------------------------------------------------------------------


def test_balance_sheet_of_january(session, book):
    sheet = _lines(reports.balance_sheet(session, book.client_id, "2026-01"))
    assert len(sheet) == 53
    expected = {1: ("50700.00", "51000.00"), 4: ("11300.00", "0.00"), 14: (None, None),
                15: ("62000.00", "51000.00"), 18: ("20000.00", "20000.00"), 19: ("2200.00", "2000.00"),
                20: ("17800.00", "18000.00"), 29: ("17800.00", "18000.00"), 30: ("79800.00", "69000.00"),
                33: ("0.00", "0.00"), 34: ("500.00", "0.00"), 36: ("1300.00", "0.00"), 41: ("1800.00", "0.00"),
                47: ("1800.00", "0.00"), 48: ("69000.00", "69000.00"), 51: ("9000.00", "0.00"),
                52: ("78000.00", "69000.00"), 53: ("79800.00", "69000.00")}
    assert {n: sheet[n] for n in expected} == expected


def test_balance_sheet_of_an_open_month_ties_and_the_close_changes_no_figure(session, book, maker, checker):
    make_voucher(book, maker, state="posted", reviewer_id=checker, day="2026-03-05", amount="300.00")
    sheet = reports.balance_sheet(session, book.client_id, "2026-03")
    # March's sale of 300 is still on 5001, not yet carried to 3103: 未分配利润 counts it anyway.
    assert (sheet.value(30), sheet.value(51), sheet.value(53)) == (D("86550.00"), D("15100.00"), D("86550.00"))
    assert sheet.unclosed[0].amount == D("300.00") and sheet.unclosed[1] is None
    periods.close_period(session, book.client_id, "2026-03", maker)
    closed = reports.balance_sheet(session, book.client_id, "2026-03")
    assert _lines(closed) == _lines(sheet)
    assert closed.unclosed == (None, None)


def test_income_statement_leaves_out_the_carry_forward(session, book):
    january = _lines(reports.income_statement(session, book.client_id, "2026-01"))
    assert len(january) == 32
    assert {n: january[n] for n in (1, 2, 4, 14, 21, 30, 32)} == {
        1: ("10000.00", "10000.00"), 2: ("0.00", "0.00"), 4: ("0.00", "0.00"), 14: ("1000.00", "1000.00"),
        21: ("9000.00", "9000.00"), 30: ("9000.00", "9000.00"), 32: ("9000.00", "9000.00")}
    february = _lines(reports.income_statement(session, book.client_id, "2026-02"))
    assert {n: february[n] for n in (1, 14, 21, 32)} == {
        1: ("5000.00", "15000.00"), 14: ("-800.00", "200.00"), 21: ("5800.00", "14800.00"),
        32: ("5800.00", "14800.00")}


def test_december_close_carries_the_profit_to_distribution(session, book, maker, checker):
    for month in range(3, 12):
        periods.close_period(session, book.client_id, f"2026-{month:02d}", maker)
    make_voucher(book, maker, state="posted", reviewer_id=checker, day="2026-12-10", summary="付办公费",
                 lines=[line("5602", debit="100"), line("1001", credit="100")])
    periods.close_period(session, book.client_id, "2026-12", maker)
    sheet = _lines(reports.balance_sheet(session, book.client_id, "2026-12"))
    assert {n: sheet[n] for n in (1, 30, 36, 41, 51, 52, 53)} == {
        1: ("57050.00", "51000.00"), 30: ("86150.00", "69000.00"), 36: ("1950.00", "0.00"),
        41: ("2450.00", "0.00"), 51: ("14700.00", "0.00"), 52: ("83700.00", "69000.00"),
        53: ("86150.00", "69000.00")}
    trial = _rows(reports.trial_balance(session, book.client_id, "2026-12", "2026-12"))
    assert trial["3103"] == ("0.00", "14800.00", "14800.00", "0.00", "0.00", "0.00")  # D 100 loss, D 14,700 out
    assert trial["3104"] == ("0.00", "0.00", "0.00", "14700.00", "0.00", "14700.00")
    income = _lines(reports.income_statement(session, book.client_id, "2026-12"))
    assert {n: income[n] for n in (1, 14, 32)} == {1: ("0.00", "15000.00"), 14: ("100.00", "300.00"),
                                                   32: ("-100.00", "14700.00")}
    # The next year starts from December's closing balances; its year to date starts again.
    next_year = _lines(reports.balance_sheet(session, book.client_id, "2027-01"))
    assert {n: next_year[n] for n in (30, 51, 53)} == {30: ("86150.00", "86150.00"), 51: ("14700.00", "14700.00"),
                                                       53: ("86150.00", "86150.00")}
    assert _lines(reports.income_statement(session, book.client_id, "2027-01"))[1] == ("0.00", "0.00")


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "field", "message"), [
    (lambda s, c: reports.trial_balance(s, c, "2026-13", "2026-12"), "from",
     "A period is written YYYY-MM, for example 2026-03."),
    (lambda s, c: reports.trial_balance(s, c, "2026-03", "2026-02"), "to", "The end of the range is before its start."),
    (lambda s, c: reports.general_ledger(s, c, "2025-12", "2026-02"), "from", "The books start in 2026-01."),
    (lambda s, c: reports.balance_sheet(s, c, "2025-12"), "period", "The books start in 2026-01."),
    (lambda s, c: reports.income_statement(s, c, "march"), "period",
     "A period is written YYYY-MM, for example 2026-03."),
    (lambda s, c: reports.detail_ledger(s, c, "9999", "2026-01", "2026-01"), "account_code",
     "No account 9999 in these books."),
    (lambda s, c: reports.trial_balance(s, c, "2026-01", "2026-01", level=0), "level",
     "The level is a whole number from 1."),
])
def test_bad_parameters_are_refused_naming_them(en, session, book, call, field, message):
    with pytest.raises(ValidationFailed) as caught:
        call(session, book.client_id)
    assert caught.value.errors == {field: [message]}


def test_unknown_client_and_client_without_books_are_not_found(en, session):
    with pytest.raises(NotFound) as caught:
        reports.balance_sheet(session, 987654, "2026-01")
    assert caught.value.errors == {"client_id": ["No such client."]}
    bare = make_client()
    with pytest.raises(NotFound) as caught:
        reports.trial_balance(session, bare.id, "2026-01", "2026-01")
    assert caught.value.errors == {"client_id": ["This client has no books yet."]}


def test_reports_write_nothing(session, book):
    count = session.scalar(select(func.count()).select_from(VoucherLine))
    reports.trial_balance(session, book.client_id, "2026-01", "2026-02")
    reports.balance_sheet(session, book.client_id, "2026-02")
    assert session.scalar(select(func.count()).select_from(VoucherLine)) == count
    assert not session.dirty and not session.new


def test_formula_parser_reads_every_word_and_refuses_anything_else():
    assert reports.parse_formula("bal(1001)-debit_balances(1122)+L3") == (
        reports.Term(1, "bal", "1001"), reports.Term(-1, "debit_balances", "1122"), reports.Term(1, "line", "3"))
    assert reports.parse_formula("detail") is None and reports.parse_formula("0") is None
    for bad in ("bal(1001)L3", "sum(1001)", "bal(1001)+", ""):
        with pytest.raises(ValueError):
            reports.parse_formula(bad)


# --- REST API -------------------------------------------------------------------------------


def test_api_balance_sheet_and_income_statement_have_the_documented_shape(app, book, api_token):
    client = app.test_client()
    headers = api_token("manager")
    sheet = client.get(f"/api/v1/reports/balance-sheet?client_id={book.client_id}&period=2026-01", headers=headers)
    assert sheet.status_code == 200
    assert set(sheet.json) == {"client_id", "period", "lines", "unclosed_profit"}
    assert sheet.json["unclosed_profit"] == {"end": None, "year_start": None}  # January is closed
    assert (sheet.json["client_id"], sheet.json["period"], len(sheet.json["lines"])) == (book.client_id, "2026-01", 53)
    assert sheet.json["lines"][0] == {"line": 1, "item": "货币资金", "end": "50700.00", "year_start": "51000.00"}
    assert sheet.json["lines"][13] == {"line": 14, "item": "其他流动资产", "end": None, "year_start": None}
    assert sheet.json["lines"][29]["end"] == sheet.json["lines"][52]["end"] == "79800.00"
    income = client.get(f"/api/v1/reports/income-statement?client_id={book.client_id}&period=2026-02",
                        headers=headers)
    assert income.status_code == 200
    assert set(income.json) == {"client_id", "period", "lines"}
    assert income.json["lines"][0] == {"line": 1, "item": "一、营业收入", "period": "5000.00", "ytd": "15000.00"}
    assert income.json["lines"][3] == {"line": 4, "item": "其中：消费税", "period": "0.00", "ytd": "0.00"}
    assert income.json["lines"][4] == {"line": 5, "item": "营业税", "period": None, "ytd": None}
    assert income.json["lines"][31]["ytd"] == "14800.00"


def test_api_trial_balance_and_ledgers_send_amounts_as_strings(app, book, api_token):
    client, headers = app.test_client(), api_token("reviewer")
    trial = client.get(f"/api/v1/reports/trial-balance?client_id={book.client_id}&from=2026-01&to=2026-01"
                       "&level=1&hide_zero=1", headers=headers)
    assert trial.status_code == 200
    assert (trial.json["from"], trial.json["to"], trial.json["balanced"]) == ("2026-01", "2026-01", True)
    assert trial.json["rows"][0] == {"code": "1001", "name": "库存现金", "level": 1, "is_leaf": True,
                                     "opening_debit": "1000.00", "opening_credit": "0.00", "debit": "0.00",
                                     "credit": "800.00", "closing_debit": "200.00", "closing_credit": "0.00"}
    assert trial.json["totals"]["closing_credit"] == "81500.00"
    ledger = client.get(f"/api/v1/reports/ledger?client_id={book.client_id}&account_code=1001&period=2026-01",
                        headers=headers)
    assert ledger.status_code == 200
    assert ledger.json["rows"][1] == {
        "kind": "line", "period": "2026-01", "date": "2026-01-20", "voucher_id": ledger.json["rows"][1]["voucher_id"],
        "voucher": "记-3", "account_code": "1001", "summary": "办公用品", "debit": "0.00", "credit": "800.00",
        "direction": "debit", "balance": "200.00"}
    general = client.get(f"/api/v1/reports/general-ledger?client_id={book.client_id}&period=2026-01",
                         headers=headers)
    assert general.status_code == 200
    depreciation = next(a for a in general.json["accounts"] if a["code"] == "1602")
    assert depreciation["opening"] == {"direction": "credit", "balance": "2000.00"}
    assert depreciation["months"] == [{"period": "2026-01", "debit": "0.00", "credit": "200.00", "ytd_debit": "0.00",
                                       "ytd_credit": "200.00", "direction": "credit", "balance": "2200.00"}]


def test_api_accountant_sees_only_their_clients_reports(app, book, api_token):
    client = app.test_client()
    url = f"/api/v1/reports/balance-sheet?client_id={book.client_id}&period=2026-01"
    assert client.get(url, headers=api_token("accountant")).status_code == 200
    other = client.get(url, headers=api_token("accountant2"))
    assert other.status_code == 404
    assert "lines" not in other.json
    assert client.get(url, headers=api_token("agent")).status_code in (401, 403)


@pytest.mark.parametrize(("query", "status", "field"), [
    ("", 422, "client_id"),
    ("client_id=abc&period=2026-01", 422, "client_id"),
    ("client_id={id}", 422, "period"),
    ("client_id={id}&period=2026-13", 422, "period"),
    ("client_id={id}&period=2025-12", 422, "period"),
    ("client_id=987654&period=2026-01", 404, "client_id"),
])
def test_api_bad_query_parameters_answer_with_the_parameter_named(app, en, book, api_token, query, status, field):
    response = app.test_client().get("/api/v1/reports/balance-sheet?" + query.format(id=book.client_id),
                                     headers=api_token("manager"))
    assert response.status_code == status
    assert list(response.json["errors"]) == [field]


@pytest.mark.parametrize(("path", "query", "field", "message"), [
    ("trial-balance", "from=2026-03&to=2026-01", "to", "The end of the range is before its start."),
    ("trial-balance", "from=2026-01", "to", "Give the last month of the range (YYYY-MM)."),
    ("trial-balance", "period=2026-01&level=x", "level", "The level is a whole number from 1 to 9."),
    ("general-ledger", "to=2026-01", "from", "Give the first month of the range (YYYY-MM)."),
    ("ledger", "period=2026-01", "account_code", "Give an account code."),
    ("ledger", "period=2026-01&account_code=8888", "account_code", "No account 8888 in these books."),
    ("income-statement", "from=2026-01&to=2026-02", "period", "Give a period (YYYY-MM)."),
])
def test_api_range_and_account_errors(app, en, book, api_token, path, query, field, message):
    response = app.test_client().get(f"/api/v1/reports/{path}?client_id={book.client_id}&{query}",
                                     headers=api_token("manager"))
    assert (response.status_code, response.json["errors"]) == (422, {field: [message]})


def test_api_client_without_books_is_404(app, en, api_token):
    bare = make_client()
    response = app.test_client().get(f"/api/v1/reports/trial-balance?client_id={bare.id}&period=2026-01",
                                     headers=api_token("manager"))
    assert (response.status_code, response.json["errors"]) == (404, {"client_id": ["This client has no books yet."]})


# --- screens --------------------------------------------------------------------------------


def test_trial_balance_screen_links_accounts_to_their_detail_ledger(book, login_as):
    page = login_as("accountant").get(f"/ledger/reports/trial-balance?client_id={book.client_id}"
                                      "&from=2026-01&to=2026-01&hide_zero=1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "报表测试有限公司" in html and 'id="trial-balance"' in html
    assert f"/ledger/reports/detail-ledger?client_id={book.client_id}&amp;account_code=1602&amp;from=2026-01" \
           "&amp;to=2026-01" in html
    assert "81500.00" in html and 'id="balanced"' in html
    assert "1012" not in html  # zero rows hidden
    unticked = login_as("accountant").get(f"/ledger/reports/trial-balance?client_id={book.client_id}"
                                          "&from=2026-01&to=2026-01&hide_zero=0").get_data(as_text=True)
    assert "其他货币资金" in unticked and "81500.00" in unticked


def test_screens_show_each_report_for_the_latest_month_by_default(en, book, login_as):
    browser = login_as("reviewer")
    sheet = browser.get(f"/ledger/reports/balance-sheet?client_id={book.client_id}")
    assert sheet.status_code == 200
    html = sheet.get_data(as_text=True)
    assert 'value="2026-02"' in html and 'id="end-30">86250.00<' in html and 'id="end-53">86250.00<' in html
    income = browser.get(f"/ledger/reports/income-statement?client_id={book.client_id}&period=2026-02")
    assert 'id="ytd-32">14800.00<' in income.get_data(as_text=True)
    general = browser.get(f"/ledger/reports/general-ledger?client_id={book.client_id}&from=2026-01&to=2026-02")
    assert "56150.00" in general.get_data(as_text=True)
    detail = browser.get(f"/ledger/reports/detail-ledger?client_id={book.client_id}&account_code=1001"
                         "&from=2026-01&to=2026-02")
    html = detail.get_data(as_text=True)
    assert "记-3" in html and "Total for the month" in html and "Total for the year to date" in html


def test_screens_refuse_other_clients_and_show_bad_periods(app, en, book, login_as):
    assert login_as("accountant2").get(
        f"/ledger/reports/trial-balance?client_id={book.client_id}&period=2026-01").status_code == 404
    choice = login_as("accountant2").get("/ledger/reports/trial-balance").get_data(as_text=True)
    assert "报表测试有限公司" not in choice
    bad = login_as("manager").get(f"/ledger/reports/trial-balance?client_id={book.client_id}&from=2026-05&to=2026-01")
    assert bad.status_code == 422
    assert "The end of the range is before its start." in bad.get_data(as_text=True)
    assert login_as("agent").get("/ledger/reports/trial-balance").status_code == 403
    not_a_number = login_as("manager").get("/ledger/reports/balance-sheet?client_id=abc&period=2026-01")
    assert not_a_number.status_code == 422
    assert "The client id is a whole number." in not_a_number.get_data(as_text=True)
    assert login_as("manager").get(f"/ledger/reports/income-statement?client_id={make_client().id}").status_code == 404


def test_each_screen_links_to_its_pdf_with_the_same_client_and_months(book, login_as):
    import html as html_lib
    import re

    browser = login_as("accountant")
    expected = {
        f"/ledger/reports/balance-sheet?client_id={book.client_id}&period=2026-02":
            f"/reports/balance-sheet.pdf?client_id={book.client_id}&period=2026-02",
        f"/ledger/reports/detail-ledger?client_id={book.client_id}&account_code=1001&from=2026-01&to=2026-02":
            f"/reports/detail-ledger.pdf?client_id={book.client_id}&from=2026-01&to=2026-02&account_code=1001",
    }
    for screen, pdf in expected.items():
        page = browser.get(screen).get_data(as_text=True)
        link = html_lib.unescape(re.search(r'id="report-pdf" href="([^"]+)"', page).group(1))
        assert link == pdf
        download = browser.get(link)
        assert download.status_code == 200 and download.mimetype == "application/pdf"
        assert download.data.startswith(b"%PDF")
