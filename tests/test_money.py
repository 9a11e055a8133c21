"""Money is exact to the cent on SQLite and PostgreSQL, and bounded by its column (NUMERIC(18, 2)).

Any amount from 0.01 to 9,999,999,999,999,999.99 (negative too, where a red reversal allows it)
saved through the services reads back equal to the cent, and the books sum it exactly. An amount,
or a total that would be stored (a voucher's total, a fee bill, a carry-forward line, a side of the
opening balances), beyond the bound is refused with a clear error naming the field, on screens and
in the API as well (422, never a 500), and nothing is written.
"""

from __future__ import annotations

import importlib.util
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import render_python_code
from alembic.migration import MigrationContext
from alembic.operations import Operations, ops
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, func, select, text

from app.extensions import db
from app.models.contracts import BillingCycle, Contract, FeeBill, Payment
from app.models.crm import ClientContact
from app.models.ledger import OpeningBalance, Period, Voucher, VoucherLine
from app.models.types import Money, render_stored_type
from app.services import books, chat_console, periods, vouchers
from app.services import contracts as contract_svc
from app.services import ledger_reports as reports
from app.services import voucher_import as importer
from app.services.errors import ValidationFailed
from app.services.voucher_import import ImportFailed
from tests.factories import line, make_books, make_client, make_contract, make_voucher, voucher_data
from tests.test_voucher_import import csv_bytes

LARGEST = Decimal("9999999999999999.99")
TOO_LARGE = "10000000000000000.00"
TOTAL_TOO_LARGE = ("The total 10,000,000,000,000,000.00 is too large: an amount has at most 16 digits before the "
                   "decimal point (largest 9,999,999,999,999,999.99).")

# Every amount a column holds, the smallest and the largest included.
amounts = st.integers(min_value=1, max_value=999_999_999_999_999_999).map(lambda cents: Decimal(cents).scaleb(-2))
settings_ = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


def _post(session, voucher_id: int, checker: int) -> None:
    vouchers.review_voucher(session, voucher_id, checker)
    vouchers.post_voucher(session, voucher_id, checker)


def _counts(session) -> tuple[int, ...]:
    session.expire_all()
    return tuple(session.scalar(select(func.count()).select_from(model))
                 for model in (Voucher, VoucherLine, OpeningBalance, Period, FeeBill, Payment, Contract))


# --- exact to the cent ------------------------------------------------------------------------


@settings_
@given(opening=amounts, entries=st.lists(amounts, min_size=1, max_size=3), reverse=st.booleans())
@example(opening=LARGEST, entries=[LARGEST, LARGEST, Decimal("0.01")], reverse=True)
def test_voucher_and_opening_amounts_read_back_to_the_cent_and_the_books_sum_them_exactly(
        app, session, user_id, opening, entries, reverse):
    maker, checker = user_id("accountant"), user_id("reviewer")
    book = make_books()
    books.set_opening_balance(session, book.id, "1001", debit=str(opening))
    books.set_opening_balance(session, book.id, "3001", credit=str(opening))
    saved = []
    for amount in entries:
        voucher = vouchers.save_voucher(session, book.client_id, voucher_data(
            amount=f"{amount:,}", debit_code="1002", credit_code="2001"), maker)
        _post(session, voucher.id, checker)
        saved.append(voucher.id)
    moved = sum(entries, Decimal(0))
    if reverse:  # a red reversal: the same amount, negative
        reversal = vouchers.reverse_voucher(session, saved[0], maker)
        _post(session, reversal.id, checker)
        saved.append(reversal.id)
        moved -= entries[0]

    session.expire_all()
    expected = [*entries, -entries[0]] if reverse else entries
    assert [session.get(Voucher, vid).total for vid in saved] == expected
    assert [[(ln.debit, ln.credit) for ln in session.get(Voucher, vid).lines] for vid in saved] == [
        [(amount, Decimal(0)), (Decimal(0), amount)] for amount in expected]
    assert [(ob.account.code, ob.debit, ob.credit) for ob in session.scalars(
        select(OpeningBalance).where(OpeningBalance.book_id == book.id).order_by(OpeningBalance.id))] == [
        ("1001", opening, Decimal(0)), ("3001", Decimal(0), opening)]
    assert books.opening_check(session, book.id).debit == opening

    trial = reports.trial_balance(session, book.client_id, "2026-01", "2026-01")
    rows = {row.code: row for row in trial.rows}
    assert (rows["1001"].opening, rows["3001"].opening) == (opening, -opening)
    assert (rows["1002"].debit, rows["2001"].credit, rows["1002"].closing) == (moved, moved, moved)
    assert trial.totals == (opening, opening, moved, moved, opening + moved, opening + moved)
    assert trial.balanced
    detail = reports.detail_ledger(session, book.client_id, "1002", "2026-01", "2026-01")
    assert [row.balance for row in detail.rows if row.kind == "line"][-1] == moved
    assert books.account_balance(session, books.account_by_code(session, book.id, "2001")) == -moved


@settings_
@given(fee=amounts, paid=amounts)
@example(fee=LARGEST, paid=LARGEST)
def test_contract_fees_bills_and_payments_read_back_to_the_cent_and_balances_sum_exactly(app, session, fee, paid):
    contract = make_contract(make_client(), monthly_fee=f"{fee}", start_date=date(2026, 1, 1),
                             end_date=date(2026, 12, 31))
    contract_svc.activate_contract(session, contract)
    bills = contract_svc.bill_contract(session, contract, date(2026, 3, 1))
    contract_svc.record_payment(session, contract, str(paid), date(2026, 3, 2))

    session.expire_all()
    assert session.get(Contract, contract.id).monthly_fee == fee
    assert [bill.amount for bill in session.scalars(select(FeeBill).where(FeeBill.contract_id == contract.id))] == [
        fee, fee, fee]
    assert len(bills) == 3
    assert session.scalar(select(Payment.amount).where(Payment.contract_id == contract.id)) == paid
    balance = contract_svc.contract_balance(session, contract.id)
    assert (balance.billed, balance.paid, balance.due) == (3 * fee, paid, 3 * fee - paid)
    assert contract_svc.client_balance(session, contract.client_id).due == 3 * fee - paid


def test_amounts_sent_to_the_api_come_back_as_sent(app, session, api_token):
    book = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant")))
    client = app.test_client()
    response = client.post("/api/v1/voucher/", json={"client_id": book.client_id, **voucher_data(
        amount="9999999999999999.99")}, headers=api_token("accountant"))
    assert response.status_code == 201, response.json
    shown = client.get(f"/api/v1/voucher/{response.json['id']}", headers=api_token("accountant")).json
    assert "9999999999999999.99" in str(shown) and "10000000000000000" not in str(shown)


# --- the bound --------------------------------------------------------------------------------


def test_an_amount_beyond_the_column_is_refused_and_writes_nothing(app, session, user_id):
    book = make_books()
    before = _counts(session)
    with pytest.raises(ValidationFailed) as refused:
        vouchers.save_voucher(session, book.client_id, voucher_data(amount=TOO_LARGE), user_id("accountant"))
    assert refused.value.errors == {"lines[0].debit": ["The amount is too large."],
                                    "lines[1].credit": ["The amount is too large."]}
    with pytest.raises(ValidationFailed) as refused:
        books.set_opening_balance(session, book.id, "1001", debit=TOO_LARGE)
    assert refused.value.errors == {"debit": ["The amount is too large."]}
    with pytest.raises(ValidationFailed) as refused:
        make_contract(make_client(), monthly_fee=TOO_LARGE)
    assert refused.value.errors == {"monthly_fee": ["The amount is too large."]}
    session.rollback()
    assert _counts(session) == before


def test_a_voucher_whose_total_is_beyond_the_column_is_refused_and_writes_nothing(app, session, user_id):
    book = make_books()
    before = _counts(session)
    half = "5000000000000000.00"  # each line is an amount, their total is not
    data = voucher_data(lines=[line("1001", debit=half), line("1002", debit=half), line("5001", credit=TOO_LARGE)])
    with pytest.raises(ValidationFailed) as refused:
        vouchers.save_voucher(session, book.client_id, data, user_id("accountant"))
    assert refused.value.errors["lines[2].credit"] == ["The amount is too large."]
    data["lines"][2:] = [line("5001", credit=half), line("5051", credit=half)]
    with pytest.raises(ValidationFailed) as refused:
        vouchers.save_voucher(session, book.client_id, data, user_id("accountant"))
    assert refused.value.errors == {"lines": [TOTAL_TOO_LARGE]}
    assert _counts(session) == before
    data["lines"][1]["debit"] = data["lines"][3]["credit"] = "4999999999999999.99"
    saved = vouchers.save_voucher(session, book.client_id, data, user_id("accountant"))
    session.expire_all()
    assert session.get(Voucher, saved.id).total == LARGEST


def test_the_api_refuses_an_over_large_total_with_422_naming_the_lines(app, session, api_token):
    book = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant")))
    before = _counts(session)
    half = "5000000000000000.00"
    response = app.test_client().post("/api/v1/voucher/", json={"client_id": book.client_id, **voucher_data(
        lines=[line("1001", debit=half), line("1002", debit=half), line("5001", credit=half),
               line("5051", credit=half)])}, headers=api_token("accountant"))
    assert response.status_code == 422
    assert response.json["errors"] == {"lines": [TOTAL_TOO_LARGE]}
    assert _counts(session) == before


def test_the_entry_form_shows_an_over_large_total_and_writes_nothing(app, session, login_as):
    book = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant")))
    before = _counts(session)
    half = "5,000,000,000,000,000.00"
    rows = [("", "1001", half, ""), ("", "1002", half, ""), ("", "5001", "", half), ("", "5051", "", half)]
    data = {"client_id": str(book.client_id), "date": "2026-01-15", "word": "记", "summary": "大额",
            "attachments": "0", "memo": [r[0] for r in rows], "account_code": [r[1] for r in rows],
            "debit": [r[2] for r in rows], "credit": [r[3] for r in rows]}
    response = login_as("accountant").post("/ledger/vouchers/add", data=data)
    assert response.status_code == 200
    assert "The total 10,000,000,000,000,000.00 is too large" in response.get_data(as_text=True)
    assert _counts(session) == before


def test_opening_balances_whose_total_is_beyond_the_column_are_refused(app, session, login_as):
    book = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant")))
    books.set_opening_balance(session, book.id, "1001", debit="9000000000000000.00")
    before = _counts(session)
    with pytest.raises(ValidationFailed) as refused:
        books.set_opening_balance(session, book.id, "1002", debit="1000000000000000.00")
    assert refused.value.errors == {"debit": [TOTAL_TOO_LARGE]}
    assert _counts(session) == before
    page = login_as("accountant").post(f"/ledger/opening/{book.client_id}/save",
                                       data={"debit_1002": "1000000000000000.00", "credit_3001": "1.00"})
    assert page.status_code == 200
    assert "The total 10,000,000,000,000,000.00 is too large" in page.get_data(as_text=True)
    assert _counts(session) == before
    books.set_opening_balance(session, book.id, "1002", debit="999999999999999.99")  # exactly the largest
    assert books.opening_check(session, book.id).debit == LARGEST


def test_an_opening_amount_too_large_to_quantize_is_a_form_error(app, session, login_as):
    book = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant")))
    page = login_as("accountant").post(f"/ledger/opening/{book.client_id}/save", data={"debit_1001": "1e30"})
    assert page.status_code == 200
    assert "The amount is too large." in page.get_data(as_text=True)
    assert _counts(session)[2] == 0


def test_a_fee_bill_beyond_the_column_is_refused_and_no_bill_is_written(app, session):
    contract = make_contract(make_client(), monthly_fee="900000000000000.00", billing_cycle=BillingCycle.yearly)
    contract_svc.activate_contract(session, contract)
    # a fee that is an amount, but not twelve times over: 12,000,000,000,000,000.00 a year
    contract_svc.change_contract(session, contract, "调价", monthly_fee="1000000000000000.00")
    before = _counts(session)
    with pytest.raises(ValidationFailed) as refused:
        contract_svc.bill_contract(session, contract, date(2026, 1, 1))
    assert list(refused.value.errors) == ["monthly_fee"]
    assert "12,000,000,000,000,000.00 is too large" in refused.value.message
    assert _counts(session) == before


def test_the_contract_api_refuses_a_fee_beyond_the_column_with_422(app, session, api_token):
    before = _counts(session)
    response = app.test_client().post("/api/v1/contract/", headers=api_token("manager"), json={
        "client": make_client().id, "number": "API-BIG", "service_type": "bookkeeping", "billing_cycle": "monthly",
        "start_date": "2026-01-01", "end_date": "2026-12-31", "monthly_fee": TOO_LARGE})
    assert response.status_code == 422
    assert "The amount is too large." in str(response.json)
    assert _counts(session) == before


def test_a_carry_forward_beyond_the_column_is_refused_and_the_month_stays_open(app, session, user_id):
    maker, checker = user_id("accountant"), user_id("reviewer")
    book = make_books()
    for _ in range(2):  # each voucher is an amount; the month's income, carried forward in one line, is not
        make_voucher(book, maker, "posted", checker, amount="6000000000000000.00")
    before = _counts(session)
    with pytest.raises(ValidationFailed) as refused:
        periods.close_period(session, book.client_id, "2026-01", maker)
    assert "12,000,000,000,000,000.00 is too large" in refused.value.message
    assert _counts(session) == before
    assert not vouchers.is_closed(session, book.id, 202601)


def test_sums_beyond_sixty_four_bits_are_exact_on_postgresql_and_refused_clearly_on_sqlite(app, session, user_id,
                                                                                          login_as):
    maker, checker = user_id("accountant"), user_id("reviewer")
    book = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant")))
    for _ in range(10):  # 99,999,999,999,999,999.90 on 1001: more than SQLite's 64-bit integers hold in cents
        make_voucher(book, maker, "posted", checker, amount=f"{LARGEST}")
    browser = login_as("accountant")
    response = browser.get(f"/api/v1/reports/trial-balance?client_id={book.client_id}&period=2026-01")
    screen = browser.get(f"/ledger/reports/trial-balance?client_id={book.client_id}&period=2026-01")
    if db.engine.dialect.name == "sqlite":
        assert response.status_code == 422
        assert "add up to more than this database can sum exactly" in str(response.json)
        assert screen.status_code == 422
        assert "add up to more than this database can sum exactly" in screen.get_data(as_text=True)
        with pytest.raises(ValidationFailed):
            reports.trial_balance(session, book.client_id, "2026-01", "2026-01")
    else:
        assert response.status_code == 200
        assert "99999999999999999.90" in str(response.json)
        assert screen.status_code == 200
        assert "99999999999999999.90" in screen.get_data(as_text=True)
        trial = reports.trial_balance(session, book.client_id, "2026-01", "2026-01", hide_zero=True)
        assert {row.code: row.debit for row in trial.rows}["1001"] == 10 * LARGEST


def test_an_imported_voucher_whose_total_is_beyond_the_column_is_refused_and_nothing_is_imported(
        app, session, user_id):
    book = make_books()
    half = "5000000000000000.00"
    rows = [["2026-01-05", "记", "1", "提现", "1001", "500.00", "", "0"],
            ["2026-01-05", "记", "1", "提现", "1002", "", "500.00", "0"],
            ["2026-01-06", "记", "2", "大额", "1001", half, "", "0"],
            ["2026-01-06", "记", "2", "大额", "1002", half, "", "0"],
            ["2026-01-06", "记", "2", "大额", "5001", "", half, "0"],
            ["2026-01-06", "记", "2", "大额", "5051", "", half, "0"]]
    before = _counts(session)
    with pytest.raises(ImportFailed) as refused:
        importer.import_vouchers(session, book.client_id, "凭证.csv", csv_bytes(rows), user_id("accountant"))
    assert {(e.field, e.message) for e in refused.value.rows} == {("lines", TOTAL_TOO_LARGE)}
    assert {e.row for e in refused.value.rows} <= {4, 5, 6, 7}
    assert _counts(session) == before


def test_contract_balances_beyond_sixty_four_bits_are_exact_on_postgresql_and_refused_clearly_on_sqlite(
        app, session, api_token, login_as):
    contract = make_contract(make_client(), monthly_fee=f"{LARGEST}")
    contract_svc.activate_contract(session, contract)
    assert len(contract_svc.bill_contract(session, contract, date(2026, 10, 1))) == 10
    contact = ClientContact(client_id=contract.client_id, name="张三", phone="13800000000")
    session.add(contact)
    session.commit()
    api = app.test_client()
    headers = api_token("manager")
    answers = [api.get(f"/api/v1/contract/{contract.id}/balance", headers=headers),
               api.get(f"/api/v1/client/{contract.client_id}/balance", headers=headers)]
    page = login_as("manager").get(f"/contractmodelview/show/{contract.id}")
    assert page.status_code == 200
    card = chat_console.client_card(session, contact.id)
    if db.engine.dialect.name == "sqlite":
        assert [answer.status_code for answer in answers] == [422, 422]
        assert all("add up to more than this database can sum exactly" in str(a.json) for a in answers)
        assert 'id="balance-error">These amounts add up to more' in page.get_data(as_text=True)
        assert "add up to more than this database can sum exactly" in card["balance"]["due"]
    else:
        assert [answer.status_code for answer in answers] == [200, 200]
        assert all(a.json["billed"] == "99999999999999999.90" for a in answers)
        assert 'id="balance-billed">99999999999999999.90<' in page.get_data(as_text=True)
        assert card["balance"]["due"] == "99999999999999999.90"


# --- the migration ----------------------------------------------------------------------------


def _migration():
    path = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "0006_exact_money.py"
    spec = importlib.util.spec_from_file_location("exact_money", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_turns_stored_yuan_into_cents_and_back(app, session):
    fees = [Decimal("0.07"), Decimal("1234.56"), Decimal("12345678901.23"), Decimal("0.00")]
    ids = [make_contract(make_client(), monthly_fee=str(fee)).id for fee in fees]
    migration = _migration()
    raw = text("SELECT monthly_fee FROM contract WHERE id = :id")
    with db.engine.connect() as connection:
        connection.begin()
        sqlite = connection.dialect.name == "sqlite"
        with Operations.context(MigrationContext.configure(connection)):
            migration.downgrade()
            stored = [connection.execute(raw, {"id": i}).scalar() for i in ids]
            # before: SQLite held yuan as binary floats; PostgreSQL held NUMERIC all along
            assert [Decimal(str(v)) for v in stored] == fees
            migration.upgrade()
        stored = [connection.execute(raw, {"id": i}).scalar() for i in ids]
        assert stored == ([int(fee * 100) for fee in fees] if sqlite else fees)
        read = [connection.execute(select(Contract.monthly_fee).where(Contract.id == i)).scalar() for i in ids]
        assert read == fees
        connection.rollback()


# --- list filters -----------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["abc", "1e30", "NaN", "-10000000000000000"])
def test_a_list_filtered_by_text_that_is_not_an_amount_shows_nothing(app, session, login_as, typed):
    contract = make_contract(make_client(), monthly_fee="500.00")
    browser = login_as("manager")
    for operator in range(4):  # equal, greater, smaller, not equal
        response = browser.get(f"/contractmodelview/list/?_flt_{operator}_monthly_fee={typed}")
        assert response.status_code == 200
        assert contract.number not in response.get_data(as_text=True)
    assert contract.number in browser.get("/contractmodelview/list/?_flt_0_monthly_fee=500").get_data(as_text=True)


def test_autogenerate_writes_money_columns_as_the_numeric_the_database_declares():
    new_column = ops.AddColumnOp("fee_bill", Column("discount", Money(), nullable=False))
    code = render_python_code(ops.UpgradeOps([ops.ModifyTableOps("fee_bill", [new_column])]),
                              render_item=render_stored_type)
    assert "sa.Column('discount', sa.Numeric(precision=18, scale=2), nullable=False)" in code
    assert "app.models" not in code
