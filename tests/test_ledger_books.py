"""Setting up books (建账): the seeded chart, sub-accounts, disabling and deleting, opening balances."""

from __future__ import annotations

import csv
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.ledger import Account, AccountCategory, Direction, LedgerBook, OpeningBalance, VoucherLine
from app.models.security import AuditLog
from app.services import books
from app.services.books import CHART_CSV
from app.services.errors import Conflict, NotFound, ValidationFailed
from tests.factories import make_books, make_client, make_voucher


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


def _accounts(session, book) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Account).where(Account.book_id == book.id))


def test_new_books_get_the_whole_standard_chart(session):
    book = make_books(start="2026-04")
    with CHART_CSV.open(encoding="utf-8") as handle:
        expected = [(r["code"], r["name"], r["category"], r["normal_balance"]) for r in csv.DictReader(handle)]
    got = [(a.code, a.name, a.category.value, a.normal_balance.value) for a in session.scalars(
        select(Account).where(Account.book_id == book.id, Account.level == 1).order_by(Account.code))]
    assert got == sorted(expected) and len(got) == 66
    # and the standard tax sub-accounts under 2221 应交税费 and 5403 税金及附加 (tests/test_tax_worksheet.py)
    assert _accounts(session, book) == 66 + 20
    assert book.start_period == 202604
    assert ("3103", "本年利润", "equity", "credit") in got and ("1602", "累计折旧", "asset", "credit") in got
    first = books.account_by_code(session, book.id, "1001")
    assert (first.level, first.is_leaf, first.active, first.parent_id) == (1, True, True, None)


def test_books_refuse_a_second_set_a_bad_month_and_an_unknown_client(session):
    client = make_client()
    books.open_books(session, client.id, "2026-01")
    with pytest.raises(Conflict, match="already has books"):
        books.open_books(session, client.id, "2026-02")
    other = make_client()
    for bad in ("2026-13", "2026/01", "", None, "26-01"):
        with pytest.raises(ValidationFailed) as refused:
            books.open_books(session, other.id, bad)
        assert "start_period" in refused.value.errors
    with pytest.raises(NotFound):
        books.open_books(session, 999999, "2026-01")
    assert session.scalar(select(func.count()).select_from(LedgerBook)) == 1


def test_sub_account_extends_the_parent_code_by_two_digits(session):
    book = make_books()
    bank = books.add_sub_account(session, book.id, "1002", "100201", "工商银行")
    assert (bank.level, bank.category, bank.normal_balance, bank.parent.code) == (2, AccountCategory.asset,
                                                                                  Direction.debit, "1002")
    assert not books.account_by_code(session, book.id, "1002").is_leaf
    deeper = books.add_sub_account(session, book.id, "100201", "10020101", "基本户")
    assert deeper.level == 3
    before = _accounts(session, book)
    for code, name, field in (("10021", "x", "code"), ("1003", "x", "code"), ("100200", "x", "code"),
                              ("1002ab", "x", "code"), ("100202", " ", "name")):
        with pytest.raises(ValidationFailed) as refused:
            books.add_sub_account(session, book.id, "1002", code, name)
        assert field in refused.value.errors
    with pytest.raises(Conflict, match="already exists"):
        books.add_sub_account(session, book.id, "1002", "100201", "重复")
    with pytest.raises(NotFound):
        books.add_sub_account(session, book.id, "9999", "999901", "无")
    assert _accounts(session, book) == before


def test_first_sub_account_takes_over_the_parents_entries(session, user_id):
    book = make_books()
    books.set_opening_balance(session, book.id, "1002", debit="800")
    books.set_opening_balance(session, book.id, "3001", credit="800")
    voucher = make_voucher(book, user_id("accountant"), debit_code="1002", credit_code="5001")
    bank = books.add_sub_account(session, book.id, "1002", "100201", "工商银行")
    session.expire_all()
    assert [ln.account_id for ln in voucher.lines][0] == bank.id
    assert session.scalar(select(OpeningBalance.account_id).where(OpeningBalance.debit == Decimal("800"))) == bank.id
    second = books.add_sub_account(session, book.id, "1002", "100202", "建设银行")
    assert books.account_balance(session, second) == 0


def test_accounts_with_entries_or_children_are_not_deleted(session, user_id):
    book = make_books()
    with pytest.raises(Conflict, match="standard chart"):
        books.delete_account(session, books.account_by_code(session, book.id, "1001").id)
    used = books.add_sub_account(session, book.id, "1002", "100201", "工商银行")
    spare = books.add_sub_account(session, book.id, "1002", "100202", "建设银行")
    make_voucher(book, user_id("accountant"), debit_code="100201")
    with pytest.raises(Conflict, match="postings"):
        books.delete_account(session, used.id)
    books.add_sub_account(session, book.id, "100202", "10020201", "基本户")
    with pytest.raises(Conflict, match="sub-accounts"):
        books.delete_account(session, spare.id)
    books.delete_account(session, books.account_by_code(session, book.id, "10020201").id)
    assert books.account_by_code(session, book.id, "100202").is_leaf  # a leaf again
    books.delete_account(session, spare.id)
    assert books.account_by_code(session, book.id, "100202") is None
    assert session.scalar(select(func.count()).select_from(VoucherLine)) == 2


def test_disable_only_without_balance_or_active_children(session, user_id):
    book = make_books()
    cash = books.account_by_code(session, book.id, "1001")
    make_voucher(book, user_id("accountant"), debit_code="1001")  # a draft still counts as a balance
    with pytest.raises(Conflict, match="balance"):
        books.set_account_active(session, cash.id, False)
    sub = books.add_sub_account(session, book.id, "1012", "101201", "外埠存款")
    with pytest.raises(Conflict, match="sub-accounts"):
        books.set_account_active(session, sub.parent_id, False)
    books.set_account_active(session, sub.id, False)
    books.set_account_active(session, sub.parent_id, False)
    with pytest.raises(Conflict, match="parent"):
        books.set_account_active(session, sub.id, True)
    session.expire_all()
    assert (cash.active, sub.active, sub.parent.active) == (True, False, False)


def test_a_page_of_opening_balances_is_saved_all_or_nothing(session, user_id):
    book = make_books()
    books.set_opening_balance(session, book.id, "1001", debit="10.00")
    books.set_account_active(session, books.account_by_code(session, book.id, "1012").id, False)
    audit_rows = session.scalar(select(func.count()).select_from(AuditLog))

    with pytest.raises(ValidationFailed) as refused:
        books.set_opening_balances(session, book.id, {
            "1001": ("500.00", ""), "3001": ("", "500.00"), "1002": ("1.005", ""), "1012": ("5", ""),
            "9999": ("1", ""), "1122": ("1", "1")})

    assert refused.value.errors == {
        "1002.debit": ["At most two decimal places."], "1012.account_code": ["This account is disabled."],
        "9999.account_code": ["No account with this code."],
        "1122.credit": ["Enter a debit or a credit, not both."]}
    session.expire_all()
    assert books.opening_check(session, book.id).debit == Decimal("10.00")  # not even the good rows
    assert session.scalar(select(func.count()).select_from(AuditLog)) == audit_rows

    assert books.set_opening_balances(session, book.id, {
        "1001": ("500.00", ""), "3001": ("", "500.00"), "1012": ("", "")}) == 2  # 1012 unchanged
    assert books.opening_check(session, book.id).balanced


def test_unchanged_opening_rows_pass_once_a_voucher_is_posted_but_a_change_is_refused(session, user_id):
    book = make_books()
    books.set_opening_balances(session, book.id, {"1001": ("100", ""), "3001": ("", "100")})
    make_voucher(book, user_id("accountant"), state="posted", reviewer_id=user_id("reviewer"))
    assert books.set_opening_balances(session, book.id, {"1001": ("100.00", ""), "3001": ("", "100")}) == 0
    with pytest.raises(Conflict, match="once a voucher has been posted"):
        books.set_opening_balances(session, book.id, {"1001": ("200", ""), "3001": ("", "200")})
    assert books.opening_check(session, book.id).debit == Decimal("100.00")


def test_opening_balances_one_side_on_leaves_and_the_balance_check(session):
    book = make_books()
    books.add_sub_account(session, book.id, "1002", "100201", "工商银行")
    books.set_opening_balance(session, book.id, "100201", debit="1,000.50")
    books.set_opening_balance(session, book.id, "1001", debit="200")
    assert books.opening_check(session, book.id).difference == Decimal("1200.50")
    books.set_opening_balance(session, book.id, "3001", credit="1200.50")
    check = books.opening_check(session, book.id)
    assert (check.debit, check.credit, check.balanced) == (Decimal("1200.50"), Decimal("1200.50"), True)
    for code, debit, credit, field in (("1002", "1", None, "account_code"), ("1001", "1", "1", "credit"),
                                       ("1001", "1.001", None, "debit"), ("1001", "-1", None, "debit"),
                                       ("1001", 1.5, None, "debit")):
        with pytest.raises(ValidationFailed) as refused:
            books.set_opening_balance(session, book.id, code, debit=debit, credit=credit)
        assert field in refused.value.errors
    assert books.opening_check(session, book.id) == check
    books.set_opening_balance(session, book.id, "1001")  # cleared
    assert books.opening_check(session, book.id).debit == Decimal("1000.50")
