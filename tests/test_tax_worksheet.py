"""The tax worksheet (税费计算表), the standard tax sub-accounts, the income statement's lines 4–10
and the accrual voucher (计提税金), with hand-computed figures.

Rates are the seeded ones (migration 0009): small-scale VAT 3 %, reduced 1 % to 2027-12-31,
exempt up to 100,000 a month / 300,000 a quarter; surcharges 7 % (urban) / 3 % / 2 %, halved for
small-scale taxpayers to 2027-12-31; 小型微利企业 income tax prepaid at 5 %.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from app.extensions import db
from app.models.crm import TaxpayerType
from app.models.ledger import Account, Voucher, VoucherState
from app.models.tax import TaxAccrual, TaxKind, TaxRate
from app.services import books, vouchers
from app.services import ledger_reports as reports
from app.services import tax_profile as profile_svc
from app.services import tax_worksheet as svc
from app.services.errors import Conflict, ValidationFailed
from app.services.tax_rates import check_rate
from tests.factories import line, make_books, make_client, make_voucher

SMALL, GENERAL = TaxpayerType.small_scale, TaxpayerType.general


@pytest.fixture
def maker(user_id):
    return user_id("accountant")


@pytest.fixture
def checker(user_id):
    return user_id("reviewer")


@pytest.fixture
def en(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


def _client(app, taxpayer_type=SMALL, vat_period="monthly", location="urban", filings=None, start="2026-01"):
    accountant = app.appbuilder.sm.find_user(username="accountant")
    client = make_client(accountant=accountant, taxpayer_type=taxpayer_type)
    if vat_period != "monthly" or location != "urban" or filings:
        profile_svc.set_tax_profile(db.session, client.id, vat_period, location, filings or {})
    return make_books(client, start=start)


def _post(book, maker, checker, day, *lines):
    return make_voucher(book, maker, state="posted", reviewer_id=checker, day=day, summary="业务", lines=list(lines))


def _sale(book, maker, checker, day, amount, vat=None):
    lines = [line("1002", debit=str(Decimal(amount) + Decimal(vat or 0))), line("5001", credit=amount)]
    if vat:
        lines.append(line("22210102", credit=vat))
    return _post(book, maker, checker, day, *lines)


def _amounts(sheet) -> dict[str, tuple]:
    return {ln.tax.value: (str(ln.base), None if ln.rate is None else str(ln.rate), ln.exempt,
                           None if ln.reduction is None else str(ln.reduction), str(ln.amount)) for ln in sheet.lines}


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


# --- the standard sub-accounts ---------------------------------------------------------------


def test_new_books_open_with_the_standard_tax_sub_accounts(app, session):
    book = _client(app)
    accounts = {a.code: a for a in session.scalars(select(Account).where(Account.book_id == book.id))}
    assert [(code, accounts[code].name) for code in ("222101", "22210101", "22210102", "22210103", "222102",
                                                     "222103", "222104", "222105", "222106", "222107")] == [
        ("222101", "应交增值税"), ("22210101", "进项税额"), ("22210102", "销项税额"), ("22210103", "转出未交增值税"),
        ("222102", "未交增值税"), ("222103", "应交城市维护建设税"), ("222104", "应交教育费附加"),
        ("222105", "应交地方教育附加"), ("222106", "应交企业所得税"), ("222107", "应交个人所得税")]
    assert [accounts[f"5403{n:02d}"].name for n in range(1, 11)] == [
        "消费税", "城市维护建设税", "教育费附加", "地方教育附加", "印花税", "房产税", "城镇土地使用税", "车船税",
        "资源税", "土地增值税"]
    assert not accounts["2221"].is_leaf and not accounts["222101"].is_leaf and not accounts["5403"].is_leaf
    assert (accounts["22210101"].level, accounts["22210101"].parent.code, accounts["22210101"].is_leaf) == \
        (3, "222101", True)
    assert accounts["540302"].category == accounts["5403"].category


def _migration():
    path = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "0010_tax_worksheet.py"
    spec = importlib.util.spec_from_file_location("tax_worksheet_migration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _strip_standard_sub_accounts(session, book_id):
    """Books as they were opened before the standard sub-accounts existed."""
    codes = [sub.code for sub in books.standard_sub_accounts()]
    for length in (8, 6):
        session.execute(delete(Account).where(Account.book_id == book_id, Account.code.in_(
            [c for c in codes if len(c) == length])))
    session.execute(update(Account).where(Account.book_id == book_id, Account.code.in_(["2221", "5403"]))
                    .values(is_leaf=True))
    session.commit()


def test_the_migration_adds_the_missing_sub_accounts_and_skips_codes_names_and_parents_with_entries(
        app, session, maker, checker):
    book = _client(app)
    _strip_standard_sub_accounts(session, book.id)
    books.add_sub_account(session, book.id, "2221", "222102", "应交城市维护建设税")  # the books' own numbering
    _post(book, maker, checker, "2026-01-31", line("5403", debit="10"), line("222102", credit="10"))
    with db.engine.connect() as connection:
        added = _migration().add_sub_accounts(connection)
        connection.commit()
    session.expire_all()
    names = dict(session.execute(select(Account.code, Account.name).where(Account.book_id == book.id)).all())
    # 2221: 222102 kept its name; 应交城市维护建设税 exists, so 222103 is not added; the rest are.
    assert names["222102"] == "应交城市维护建设税"
    assert "222103" not in names
    added_codes = ("222101", "22210101", "22210102", "22210103", "222104", "222105", "222106", "222107")
    assert [names.get(c) for c in added_codes] == [
        "应交增值税", "进项税额", "销项税额", "转出未交增值税", "应交教育费附加", "应交地方教育附加", "应交企业所得税",
        "应交个人所得税"]
    # 5403 holds its own entry: no sub-account moves it away.
    assert not [code for code in names if code.startswith("5403") and code != "5403"]
    assert added == 8
    assert books.account_by_code(session, book.id, "5403").is_leaf
    assert books.account_balance(session, books.account_by_code(session, book.id, "5403")) == Decimal("10.00")
    # The worksheet finds 应交城市维护建设税 under the books' own code.
    assert svc.role_accounts(session, book.id)["urban_maintenance_payable"].code == "222102"
    with db.engine.connect() as connection:  # run again: nothing left to add
        assert _migration().add_sub_accounts(connection) == 0
        connection.rollback()


# --- the income statement's lines 4–10 -------------------------------------------------------


def test_income_statement_fills_lines_4_to_10_from_the_5403_sub_accounts(app, session, maker, checker, login_as,
                                                                        api_token):
    book = _client(app)
    _post(book, maker, checker, "2026-02-28", line("540302", debit="7"), line("222103", credit="7"))
    _post(book, maker, checker, "2026-03-31",
          line("540301", debit="100"), line("540302", debit="70"), line("540303", debit="30"),
          line("540304", debit="20"), line("540305", debit="5"), line("540306", debit="6"),
          line("540307", debit="7"), line("540308", debit="8"), line("540309", debit="9"),
          line("540310", debit="10"), line("222103", credit="70"), line("222104", credit="30"),
          line("222105", credit="20"), line("1002", credit="145"))
    statement = reports.income_statement(session, book.client_id, "2026-03")
    month = {ln.line: None if ln.first is None else str(ln.first) for ln in statement.lines}
    ytd = {ln.line: None if ln.second is None else str(ln.second) for ln in statement.lines}
    assert {n: month[n] for n in range(3, 11)} == {
        3: "265.00", 4: "100.00", 5: None, 6: "70.00", 7: "9.00", 8: "10.00", 9: "26.00", 10: "50.00"}
    assert (ytd[3], ytd[6]) == ("272.00", "77.00")
    api = app.test_client().get(f"/api/v1/reports/income-statement?client_id={book.client_id}&period=2026-03",
                                headers=api_token("manager")).json
    assert api["lines"][5] == {"line": 6, "item": "城市维护建设税", "period": "70.00", "ytd": "77.00"}
    assert api["lines"][9] == {"line": 10, "item": "教育费附加、矿产资源补偿费、排污费", "period": "50.00",
                               "ytd": "50.00"}
    page = login_as("manager").get(f"/ledger/reports/income-statement?client_id={book.client_id}&period=2026-03")
    assert 'id="period-9">26.00<' in page.get_data(as_text=True)


# --- small-scale VAT, exemption and surcharges -----------------------------------------------


@pytest.mark.parametrize(("sales", "exempt", "vat", "surcharges", "total"), [
    ("99999.99", True, "0.00", ("0.00", "0.00", "0.00"), "0.00"),
    ("100000.00", True, "0.00", ("0.00", "0.00", "0.00"), "0.00"),
    # 1 % of 100,000.01 is 1,000.0001 → 1,000.00; 7 % of it 70.00 halved 35.00; 30.00 → 15.00; 20.00 → 10.00
    ("100000.01", False, "1000.00", ("35.00", "15.00", "10.00"), "1060.00"),
])
def test_small_scale_monthly_exemption_at_and_around_100000(app, session, maker, checker, sales, exempt, vat,
                                                           surcharges, total):
    book = _client(app)
    _sale(book, maker, checker, "2026-03-10", sales)
    sheet = svc.worksheet(session, book.client_id, "2026-03")
    assert str(sheet.sales) == sales
    assert _amounts(sheet)["vat"] == (sales, "1.00", exempt, None, vat)
    assert [_amounts(sheet)[t][4] for t in ("urban_maintenance", "education", "local_education")] == list(surcharges)
    assert str(sheet.total) == total
    basis = sheet.line(TaxKind.vat).basis
    assert ("月销售额10万元以下（含本数）免征增值税" in basis) == exempt
    assert ("减按1%征收" in basis) == (not exempt)


def test_sales_are_net_of_returns_and_other_months_and_5051_counts(app, session, maker, checker):
    book = _client(app)
    _sale(book, maker, checker, "2026-02-27", "50000")  # another month
    _sale(book, maker, checker, "2026-03-02", "90000")
    _post(book, maker, checker, "2026-03-05", line("1002", debit="15000"), line("5051", credit="15000"))
    _post(book, maker, checker, "2026-03-20", line("5001", debit="4999.99"), line("1002", credit="4999.99"))  # return
    make_voucher(book, maker, day="2026-03-21", summary="未过账", lines=[line("1002", debit="1"),
                                                                       line("5001", credit="1")])  # a draft
    sheet = svc.worksheet(session, book.client_id, "2026-03")
    assert str(sheet.sales) == "100000.01"  # 90,000 + 15,000 − 4,999.99
    assert _amounts(sheet)["vat"][2:] == (False, None, "1000.00")


@pytest.mark.parametrize(("months", "exempt", "vat", "total"), [
    # 299,999.99 in the quarter: exempt
    (("100000.00", "100000.00", "99999.99"), True, "0.00", "0.00"),
    # 150,000 in each of two months: over the monthly line, but the quarter's 300,000 is exempt
    (("150000.00", "150000.00", "0.00"), True, "0.00", "0.00"),
    # 300,000.01: 3,000.00 at 1 %; surcharges 210 / 90 / 60 halved → 105 + 45 + 30
    (("100000.00", "100000.00", "100000.01"), False, "3000.00", "3180.00"),
])
def test_small_scale_quarterly_exemption_at_300000(app, session, maker, checker, months, exempt, vat, total):
    book = _client(app, vat_period="quarterly", filings={"vat": "quarterly"})
    for month, amount in zip((1, 2, 3), months, strict=True):
        if Decimal(amount):
            _sale(book, maker, checker, f"2026-{month:02d}-15", amount)
    sheet = svc.worksheet(session, book.client_id, "2026-Q1")
    assert (sheet.period.first, sheet.period.last, sheet.period.end) == (202601, 202603, date(2026, 3, 31))
    assert _amounts(sheet)["vat"][2:] == (exempt, None, vat)
    assert str(sheet.total) == total
    assert ("季度销售额30万元以下（含本数）免征增值税" in sheet.line(TaxKind.vat).basis) == exempt


def test_a_quarter_the_books_start_within_counts_from_their_first_month(app, session, maker, checker):
    book = _client(app, vat_period="quarterly", filings={"vat": "quarterly"}, start="2026-02")
    _sale(book, maker, checker, "2026-02-10", "300000.01")
    assert _amounts(svc.worksheet(session, book.client_id, "2026-Q1"))["vat"][2:] == (False, None, "3000.00")
    with pytest.raises(ValidationFailed) as caught:
        svc.worksheet(session, book.client_id, "2025-Q4")
    assert list(caught.value.errors) == ["period"]


def test_surcharges_by_location_and_halved_for_small_scale_while_the_reduction_is_in_force(app, session, maker,
                                                                                          checker):
    book = _client(app, location="county_town", start="2027-12")
    _sale(book, maker, checker, "2027-12-10", "200000")
    _sale(book, maker, checker, "2028-01-10", "200000")
    december = svc.worksheet(session, book.client_id, "2027-12")
    # VAT 1 % = 2,000.00; 城建 5 % (county town) = 100.00 halved 50.00; 3 % 60.00 → 30.00; 2 % 40.00 → 20.00
    assert _amounts(december) == {
        "vat": ("200000.00", "1.00", False, None, "2000.00"),
        "urban_maintenance": ("2000.00", "5.00", False, "50.00", "50.00"),
        "education": ("2000.00", "3.00", False, "50.00", "30.00"),
        "local_education": ("2000.00", "2.00", False, "50.00", "20.00")}
    assert str(december.total) == "2100.00"
    assert "减半征收城市维护建设税" in december.line(TaxKind.urban_maintenance).basis
    # From 2028 the reduced rate, the exemption and the halving have ended: 3 % and full surcharges.
    january = svc.worksheet(session, book.client_id, "2028-01")
    assert _amounts(january) == {
        "vat": ("200000.00", "3.00", False, None, "6000.00"),
        "urban_maintenance": ("6000.00", "5.00", False, None, "300.00"),
        "education": ("6000.00", "3.00", False, None, "180.00"),
        "local_education": ("6000.00", "2.00", False, None, "120.00")}
    assert str(january.total) == "6600.00"
    assert "减半" not in january.line(TaxKind.education).basis


def test_a_rate_changed_within_a_quarter_applies_from_the_quarters_last_day(app, session, maker, checker):
    reduced = session.scalar(select(TaxRate).where(TaxRate.tax == TaxKind.vat, TaxRate.item == "reduced"))
    reduced.effective_to = date(2026, 5, 31)
    check_rate(session, reduced)
    newer = TaxRate(tax=TaxKind.vat, taxpayer_type=SMALL, item="reduced", rate=Decimal("2.00"),
                    effective_from=date(2026, 6, 1), effective_to=date(2027, 12, 31), basis="新公告：减按2%征收")
    check_rate(session, newer)
    session.add(newer)
    session.commit()
    book = _client(app, vat_period="quarterly", filings={"vat": "quarterly"})
    _sale(book, maker, checker, "2026-04-10", "400000")
    # 2 % of 400,000 = 8,000.00; surcharges 560 / 240 / 160 halved → 280 + 120 + 80
    sheet = svc.worksheet(session, book.client_id, "2026-Q2")
    assert _amounts(sheet)["vat"] == ("400000.00", "2.00", False, None, "8000.00")
    assert sheet.line(TaxKind.vat).basis == "新公告：减按2%征收"
    assert str(sheet.total) == "8480.00"
    assert newer.id in {r.id for r in sheet.rates} and reduced.id not in {r.id for r in sheet.rates}
    # The first quarter still ends while the 1 % row is in force.
    _sale(book, maker, checker, "2026-03-10", "400000")
    assert _amounts(svc.worksheet(session, book.client_id, "2026-Q1"))["vat"][1:] == ("1.00", False, None, "4000.00")


# --- general taxpayer ------------------------------------------------------------------------


def test_general_taxpayer_pays_output_less_input_and_carries_a_negative_as_credit(app, session, maker, checker):
    book = _client(app, taxpayer_type=GENERAL)
    _sale(book, maker, checker, "2026-01-10", "100000", vat="13000")
    _post(book, maker, checker, "2026-01-12", line("1405", debit="100000"), line("22210101", debit="20000"),
          line("1002", credit="120000"))
    january = svc.worksheet(session, book.client_id, "2026-01")
    assert (str(january.output_vat), str(january.input_vat), str(january.carried_credit_in),
            str(january.carried_credit)) == ("13000.00", "20000.00", "0.00", "7000.00")
    assert _amounts(january)["vat"] == ("100000.00", None, False, None, "0.00")
    assert str(january.total) == "0.00"
    _sale(book, maker, checker, "2026-02-10", "200000", vat="26000")
    _post(book, maker, checker, "2026-02-12", line("1405", debit="50000"), line("22210101", debit="6500"),
          line("1002", credit="56500"))
    february = svc.worksheet(session, book.client_id, "2026-02")
    # 26,000 − 6,500 − 7,000 brought in = 12,500; surcharges in full: 875 + 375 + 250
    assert (str(february.carried_credit_in), str(february.carried_credit)) == ("7000.00", "0.00")
    assert _amounts(february) == {
        "vat": ("200000.00", None, False, None, "12500.00"),
        "urban_maintenance": ("12500.00", "7.00", False, None, "875.00"),
        "education": ("12500.00", "3.00", False, None, "375.00"),
        "local_education": ("12500.00", "2.00", False, None, "250.00")}
    assert str(february.total) == "14000.00"
    assert "税率13%" in february.line(TaxKind.vat).basis


# --- 企业所得税 ---------------------------------------------------------------------------------


def test_quarterly_income_tax_prepayment_of_a_small_low_profit_enterprise(app, session, maker, checker):
    book = _client(app, filings={"vat": "monthly", "corporate_income": "quarterly"})
    _sale(book, maker, checker, "2026-01-10", "100000")
    _post(book, maker, checker, "2026-01-20", line("5602", debit="40000"), line("1002", credit="40000"))
    _sale(book, maker, checker, "2026-03-10", "50000")
    assert svc.worksheet(session, book.client_id, "2026-02").line(TaxKind.corporate_income) is None
    march = svc.worksheet(session, book.client_id, "2026-03")
    # profit to date 150,000 − 40,000 = 110,000 × 5 %; March's VAT is exempt (50,000)
    assert _amounts(march)["corporate_income"] == ("110000.00", "5.00", False, None, "5500.00")
    assert str(march.total) == "5500.00"
    voucher = svc.accrue(session, book.client_id, "2026-03", maker)
    assert [(ln.account.code, str(ln.debit), str(ln.credit)) for ln in voucher.lines] == [
        ("5801", "5500.00", "0.00"), ("222106", "0.00", "5500.00")]
    vouchers.review_voucher(session, voucher.id, checker)
    vouchers.post_voucher(session, voucher.id, checker)
    _sale(book, maker, checker, "2026-04-10", "20000")
    june = svc.worksheet(session, book.client_id, "2026-06")
    # 130,000 × 5 % = 6,500 less the 5,500 accrued for the first quarter
    assert (str(june.profit_to_date), str(june.income_tax_accrued)) == ("130000.00", "5500.00")
    assert _amounts(june)["corporate_income"][4] == "1000.00"


# --- the accrual voucher ---------------------------------------------------------------------


def test_accrual_voucher_from_the_worksheet_is_a_draft_reviewed_and_posted_as_any(app, session, maker, checker,
                                                                                  api_token):
    book = _client(app)
    _sale(book, maker, checker, "2026-03-10", "200000")
    api = app.test_client()
    response = api.post("/api/v1/tax/accrual", headers=api_token("accountant"),
                        json={"client_id": book.client_id, "period": "2026-03"})
    assert response.status_code == 201, response.json
    made = response.json
    assert (made["state"], made["date"], made["word"], made["total"], made["maker"]) == (
        "draft", "2026-03-31", "转", "120.00", "accountant")
    assert [(ln["account_code"], ln["debit"], ln["credit"]) for ln in made["lines"]] == [
        ("540302", "70.00", "0.00"), ("540303", "30.00", "0.00"), ("540304", "20.00", "0.00"),
        ("222103", "0.00", "70.00"), ("222104", "0.00", "30.00"), ("222105", "0.00", "20.00")]
    kept = session.scalar(select(TaxAccrual))
    recorded = json.loads(kept.worksheet)
    assert (kept.voucher_id, kept.period, str(kept.total), recorded["total"]) == (made["id"], "2026-03",
                                                                                 "2120.00", "2120.00")
    assert {r["id"] for r in recorded["rates"]} >= {
        session.scalar(select(TaxRate.id).where(TaxRate.tax == TaxKind.vat, TaxRate.item == "reduced"))}
    assert all(r["basis"] for r in recorded["rates"])
    # Twice for one period is refused, and writes nothing.
    again = api.post("/api/v1/tax/accrual", headers=api_token("manager"),
                     json={"client_id": book.client_id, "period": "2026-03"})
    assert again.status_code == 409
    assert set(again.json) == {"message", "errors"} and "period" in again.json["errors"]
    assert _count(session, Voucher) == 2 and _count(session, TaxAccrual) == 1
    # Reviewed and posted as any voucher: the income statement shows it on lines 6 and 10.
    vouchers.review_voucher(session, made["id"], checker)
    vouchers.post_voucher(session, made["id"], checker)
    lines = {ln.line: ln.first for ln in reports.income_statement(session, book.client_id, "2026-03").lines}
    assert (lines[3], lines[6], lines[10]) == (Decimal("120.00"), Decimal("70.00"), Decimal("50.00"))
    with pytest.raises(Conflict):
        svc.accrue(session, book.client_id, "2026-03", maker)


def test_the_accrual_keeps_the_rate_rows_and_legal_basis_it_used_after_a_rate_is_corrected(app, session, maker,
                                                                                            checker):
    book = _client(app, location="county_town")
    _sale(book, maker, checker, "2026-03-10", "200000")
    svc.accrue(session, book.client_id, "2026-03", maker)
    used = {(r.tax.value, r.item): r for r in svc.worksheet(session, book.client_id, "2026-03").rates}
    # An Admin later corrects the county-town 城建税 rate row in place (5 % → 6 %, new basis).
    corrected = used[("urban_maintenance", "statutory")]
    corrected.rate, corrected.basis = Decimal("6.00"), "更正后的依据"
    check_rate(session, corrected)
    session.commit()
    kept = json.loads(session.scalar(select(TaxAccrual.worksheet)))
    assert {(r["tax"], r["item"]): (r["id"], r["rate"], r["reduction"], r["period"], r["effective_from"],
                                    r["effective_to"]) for r in kept["rates"]} == {
        ("vat", "statutory"): (used[("vat", "statutory")].id, "3.00", None, None, "2026-01-01", None),
        ("vat", "reduced"): (used[("vat", "reduced")].id, "1.00", None, None, "2023-01-01", "2027-12-31"),
        ("urban_maintenance", "statutory"): (corrected.id, "5.00", None, None, "2021-09-01", None),
        ("urban_maintenance", "reduction"): (used[("urban_maintenance", "reduction")].id, "0.00", "50.00", None,
                                             "2023-01-01", "2027-12-31"),
        ("education", "statutory"): (used[("education", "statutory")].id, "3.00", None, None, "2005-10-01", None),
        ("education", "reduction"): (used[("education", "reduction")].id, "0.00", "50.00", None, "2023-01-01",
                                     "2027-12-31"),
        ("local_education", "statutory"): (used[("local_education", "statutory")].id, "2.00", None, None,
                                           "2011-01-01", None),
        ("local_education", "reduction"): (used[("local_education", "reduction")].id, "0.00", "50.00", None,
                                           "2023-01-01", "2027-12-31")}
    basis = {(r["tax"], r["item"]): r["basis"] for r in kept["rates"]}
    assert "县城、镇的，税率为5%" in basis[("urban_maintenance", "statutory")]
    assert "减按1%征收" in basis[("vat", "reduced")]
    # 1 % of 200,000 = 2,000; 城建 5 % = 100 halved 50; 3 % 60 → 30; 2 % 40 → 20: as computed then
    assert [(ln["tax"], ln["rate"], ln["amount"]) for ln in kept["lines"]] == [
        ("vat", "1.00", "2000.00"), ("urban_maintenance", "5.00", "50.00"), ("education", "3.00", "30.00"),
        ("local_education", "2.00", "20.00")]
    assert "县城、镇的，税率为5%" in kept["lines"][1]["basis"]
    # The worksheet computed now uses the corrected row: 6 % of 2,000 = 120 halved 60.
    assert svc.worksheet(session, book.client_id, "2026-03").line(TaxKind.urban_maintenance).amount == \
        Decimal("60.00")


def test_a_period_with_no_rate_in_force_is_refused_naming_the_tax_in_words(app, session, login_as):
    book = _client(app, start="2025-12")  # the seeded VAT rates start with the VAT Law on 2026-01-01
    with pytest.raises(ValidationFailed) as caught:
        svc.worksheet(session, book.client_id, "2025-12")
    assert caught.value.errors["period"] == ["2025-12-31 没有有效的增值税税率，请管理员在税率页面添加。"]
    page = login_as("accountant").get(f"/tax/worksheet/?client_id={book.client_id}&period=2025-12")
    assert page.status_code == 422
    assert "没有有效的增值税税率" in page.get_data(as_text=True) and " vat " not in page.get_data(as_text=True)


def test_a_deleted_accrual_draft_may_be_made_again(app, session, maker, checker):
    book = _client(app)
    _sale(book, maker, checker, "2026-03-10", "200000")
    first = svc.accrue(session, book.client_id, "2026-03", maker)
    vouchers.delete_voucher(session, first.id)
    session.expire_all()
    assert session.scalar(select(TaxAccrual.voucher_id)) is None  # the record stays, without its voucher
    second = svc.accrue(session, book.client_id, "2026-03", maker)
    assert second.state is VoucherState.draft and _count(session, Voucher) == 2  # the sale and the new accrual
    records = session.execute(select(TaxAccrual.voucher_id).order_by(TaxAccrual.id)).scalars().all()
    assert records == [None, second.id]


def test_nothing_to_accrue_when_every_tax_is_zero(app, session, maker, checker):
    book = _client(app)
    _sale(book, maker, checker, "2026-03-10", "100000")  # exempt
    with pytest.raises(ValidationFailed) as caught:
        svc.accrue(session, book.client_id, "2026-03", maker)
    assert list(caught.value.errors) == ["period"]
    assert _count(session, TaxAccrual) == 0


# --- API refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(("period", "message"), [
    ("2026-13", "A tax period is written YYYY-MM (a month) or YYYY-Qn (a quarter)"),
    ("2026-Q5", "A tax period is written"),
    ("march", "A tax period is written"),
    ("", "A tax period is written"),
    ("2026-Q1", "This client files VAT monthly: give a month"),
    ("2025-12", "The books start in 2026-01."),
])
def test_api_refuses_a_bad_or_mismatched_period_with_422(app, en, api_token, period, message):
    book = _client(app)
    response = app.test_client().get(f"/api/v1/tax/worksheet?client_id={book.client_id}&period={period}",
                                     headers=api_token("manager"))
    assert response.status_code == 422
    assert set(response.json) == {"message", "errors"}
    assert response.json["errors"]["period"][0].startswith(message)


def test_api_quarterly_client_needs_a_quarter(app, en, api_token):
    book = _client(app, vat_period="quarterly", filings={"vat": "quarterly"})
    api = app.test_client()
    headers = api_token("accountant")
    assert "give a quarter" in api.get(f"/api/v1/tax/worksheet?client_id={book.client_id}&period=2026-03",
                                       headers=headers).json["errors"]["period"][0]
    answer = api.get(f"/api/v1/tax/worksheet?client_id={book.client_id}&period=2026-q1", headers=headers)
    assert answer.status_code == 200
    assert set(answer.json) >= {"client_id", "period", "taxpayer_type", "sales", "lines", "total", "rates"}
    assert answer.json["period"] == "2026-Q1"
    assert answer.json["lines"][0] == {
        "tax": "vat", "base": "0.00", "rate": "1.00", "exempt": True, "reduction": None, "amount": "0.00",
        "basis": answer.json["lines"][0]["basis"]}
    assert answer.json["total"] == "0.00"


def test_api_worksheet_amounts_are_strings_with_the_rate_rows_used(app, api_token, maker, checker):
    book = _client(app)
    _sale(book, maker, checker, "2026-03-10", "200000")
    answer = app.test_client().get(f"/api/v1/tax/worksheet?client_id={book.client_id}&period=2026-03",
                                   headers=api_token("reviewer")).json
    assert (answer["sales"], answer["total"], answer["taxpayer_type"]) == ("200000.00", "2120.00", "small_scale")
    assert [(ln["tax"], ln["base"], ln["rate"], ln["reduction"], ln["amount"]) for ln in answer["lines"]] == [
        ("vat", "200000.00", "1.00", None, "2000.00"), ("urban_maintenance", "2000.00", "7.00", "50.00", "70.00"),
        ("education", "2000.00", "3.00", "50.00", "30.00"), ("local_education", "2000.00", "2.00", "50.00", "20.00")]
    assert {(r["tax"], r["item"]) for r in answer["rates"]} == {
        ("vat", "statutory"), ("vat", "reduced"), ("urban_maintenance", "statutory"),
        ("urban_maintenance", "reduction"), ("education", "statutory"), ("education", "reduction"),
        ("local_education", "statutory"), ("local_education", "reduction")}


def test_api_refuses_clients_out_of_reach(app, en, api_token, session):
    own = _client(app)
    other = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant2")))
    no_books = make_client(accountant=app.appbuilder.sm.find_user(username="accountant"))
    api = app.test_client()
    accountant = api_token("accountant")
    for client_id, status in ((other.client_id, 404), (987654, 404), (no_books.id, 404)):
        response = api.get(f"/api/v1/tax/worksheet?client_id={client_id}&period=2026-03", headers=accountant)
        assert response.status_code == status
        assert set(response.json) == {"message", "errors"}
    assert api.get("/api/v1/tax/worksheet?client_id=abc&period=2026-03", headers=accountant).status_code == 422
    assert api.get("/api/v1/tax/worksheet?period=2026-03", headers=accountant).json["errors"]["client_id"]
    assert api.post("/api/v1/tax/accrual", headers=accountant,
                    json={"client_id": other.client_id, "period": "2026-03"}).status_code == 404
    assert api.get(f"/api/v1/tax/worksheet?client_id={own.client_id}&period=2026-03",
                   headers=api_token("agent")).status_code == 403
    assert api.post("/api/v1/tax/accrual", headers=api_token("reviewer"),
                    json={"client_id": own.client_id, "period": "2026-03"}).status_code == 403
    assert api.post("/api/v1/tax/accrual", headers=accountant, data="[]",
                    content_type="application/json").status_code == 422
    assert _count(session, Voucher) == 0


# --- the screen ------------------------------------------------------------------------------


def test_worksheet_screen_shows_the_lines_and_makes_the_accrual_voucher(app, session, login_as, maker, checker):
    book = _client(app)
    _sale(book, maker, checker, "2026-03-10", "200000")
    browser = login_as("accountant")
    page = browser.get(f"/tax/worksheet/?client_id={book.client_id}&period=2026-03").get_data(as_text=True)
    assert 'id="total">2,120.00<' in page
    assert "/reports/tax-worksheet.pdf?client_id=" in page
    assert 'id="accrue-form"' in page
    response = browser.post("/tax/worksheet/accrue", data={"client_id": book.client_id, "period": "2026-03"})
    assert response.status_code == 302
    voucher = session.scalar(select(Voucher).where(Voucher.summary.contains("2026-03")))
    assert voucher.state is VoucherState.draft and str(voucher.total) == "120.00"
    page = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="accrued"' in page and 'id="accrue-form"' not in page
    browser.post("/tax/worksheet/accrue", data={"client_id": book.client_id, "period": "2026-03"})
    assert _count(session, Voucher) == 2  # the sale and one accrual
    reviewer_page = login_as("reviewer").get(f"/tax/worksheet/?client_id={book.client_id}&period=2026-03")
    assert reviewer_page.status_code == 200


def test_worksheet_screen_opens_on_the_latest_posted_month_or_its_quarter(app, login_as, maker, checker):
    monthly = _client(app)
    quarterly = _client(app, vat_period="quarterly", filings={"vat": "quarterly"})
    for book in (monthly, quarterly):
        _sale(book, maker, checker, "2026-05-10", "1000")
    browser = login_as("accountant")
    page = browser.get(f"/tax/worksheet/?client_id={monthly.client_id}").get_data(as_text=True)
    assert 'value="2026-05"' in page and 'id="line-vat"' in page
    page = browser.get(f"/tax/worksheet/?client_id={quarterly.client_id}").get_data(as_text=True)
    assert 'value="2026-Q2"' in page and 'id="line-vat"' in page


def test_worksheet_screen_shows_a_bad_period_and_hides_other_accountants_clients(app, login_as):
    book = _client(app)
    other = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant2")))
    browser = login_as("accountant")
    bad = browser.get(f"/tax/worksheet/?client_id={book.client_id}&period=2026-3")
    assert bad.status_code == 422 and 'id="worksheet-error"' in bad.get_data(as_text=True)
    assert browser.get(f"/tax/worksheet/?client_id={other.client_id}&period=2026-03").status_code == 404
    assert login_as("agent").get("/tax/worksheet/").status_code in (302, 403)
