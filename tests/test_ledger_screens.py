"""The ledger screens, driven through the test client as the real roles.

Each refusal also asserts that nothing was written.
"""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.ledger import (
    Account,
    LedgerBook,
    OpeningBalance,
    Period,
    PeriodStatus,
    Voucher,
    VoucherKind,
    VoucherLine,
    VoucherState,
)
from app.models.security import AuditLog
from app.services import books, periods
from app.services import vouchers as svc
from app.views.ledger_screens_print import amount_in_words
from tests.conftest import PASSWORD
from tests.factories import make_books, make_client, make_voucher


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


@pytest.fixture
def accountant(app):
    return app.appbuilder.sm.find_user(username="accountant")


@pytest.fixture
def book(accountant):
    return make_books(make_client(accountant=accountant, name="屏幕测试有限公司"))


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def denied(response) -> bool:
    """Refused by permission: 403, or the login page for a user without the permission."""
    return response.status_code == 403 or (
        response.status_code == 302 and "/login/" in response.headers.get("Location", ""))


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def balanced_opening(session, book) -> None:
    books.set_opening_balance(session, book.id, "1001", debit="1000.00")
    books.set_opening_balance(session, book.id, "3001", credit="1000.00")


def entry(client_id: int, rows: list[tuple[str, str, str, str]], day: str = "2026-01-15", summary: str = "收到货款",
          **extra) -> dict:
    """The entry form as a browser posts it: one list per column, a blank row left in."""
    rows = rows + [("", "", "", "")]
    data = {"client_id": str(client_id), "date": day, "word": "记", "summary": summary, "attachments": "1",
            "memo": [r[0] for r in rows], "account_code": [r[1] for r in rows], "debit": [r[2] for r in rows],
            "credit": [r[3] for r in rows]}
    data.update(extra)
    return data


# --- books ----------------------------------------------------------------------------------


def test_accountant_opens_books_and_sees_them_listed(session, login_as, accountant):
    client = make_client(accountant=accountant, name="新建账有限公司")
    browser = login_as("accountant")
    form = browser.get("/ledger/books/open")
    assert "新建账有限公司" in text(form)
    response = browser.post("/ledger/books/open", data={"client_id": client.id, "start_period": "2026-03"},
                            follow_redirects=True)
    page = text(response)
    assert "Books opened." in page
    book = session.scalar(select(LedgerBook).where(LedgerBook.client_id == client.id))
    assert book.start_period == 202603
    assert "新建账有限公司" in page and "2026-03" in page
    assert count(session, Account) == len(books.standard_chart()) + len(books.standard_sub_accounts())


def test_opening_books_with_a_bad_month_names_the_field_and_writes_nothing(session, login_as, accountant):
    client = make_client(accountant=accountant)
    response = login_as("accountant").post("/ledger/books/open", data={"client_id": client.id,
                                                                       "start_period": "2026-13"})
    assert response.status_code == 200
    assert "A period is written YYYY-MM, for example 2026-03." in text(response)
    assert 'class="form-group has-error"' in text(response).replace("  ", " ")
    assert count(session, LedgerBook) == 0


def test_accountant_cannot_open_books_of_another_accountants_client(session, login_as, app):
    other = make_client(accountant=app.appbuilder.sm.find_user(username="accountant2"))
    response = login_as("accountant").post("/ledger/books/open", data={"client_id": other.id,
                                                                       "start_period": "2026-01"})
    assert "Choose a client." in text(response)
    assert count(session, LedgerBook) == 0


def test_books_list_shows_unbalanced_opening_and_latest_closed(session, login_as, book):
    books.set_opening_balance(session, book.id, "1001", debit="5.00")
    page = text(login_as("reviewer").get("/ledger/books/"))
    row = page.split(f'data-client="{book.client_id}"')[1].split("</tr>")[0]
    assert "2026-01" in row and "label-danger" in row and ">No<" in row


# --- chart of accounts ----------------------------------------------------------------------


def test_add_rename_disable_enable_and_delete_a_sub_account(session, login_as, book):
    browser = login_as("accountant")
    url = f"/ledger/accounts/{book.client_id}"
    page = text(browser.post(f"{url}/add", data={"parent_code": "1002", "code": "100201", "name": "工商银行"},
                             follow_redirects=True))
    assert "Account 100201 工商银行 added." in page and 'data-code="100201"' in page
    account = books.account_by_code(session, book.id, "100201")
    assert (account.level, account.parent.code, account.parent.is_leaf) == (2, "1002", False)

    page = text(browser.post(f"{url}/rename", data={"account_id": account.id, "name": "工行基本户"},
                             follow_redirects=True))
    assert "Account 100201 renamed." in page
    page = text(browser.post(f"{url}/active", data={"account_id": account.id, "active": "0"}, follow_redirects=True))
    assert "Account 100201 disabled." in page
    session.expire_all()
    assert (account.name, account.active) == ("工行基本户", False)
    browser.post(f"{url}/active", data={"account_id": account.id, "active": "1"})
    page = text(browser.post(f"{url}/delete", data={"account_id": account.id}, follow_redirects=True))
    assert "Account 100201 deleted." in page
    session.expire_all()
    assert books.account_by_code(session, book.id, "100201") is None
    assert books.account_by_code(session, book.id, "1002").is_leaf is True


def test_chart_refusals_show_the_service_message_and_change_nothing(session, login_as, book):
    browser = login_as("accountant")
    url = f"/ledger/accounts/{book.client_id}"
    before = count(session, Account)
    page = text(browser.post(f"{url}/add", data={"parent_code": "1002", "code": "1002001", "name": "x"},
                             follow_redirects=True))
    assert "A sub-account's code is its parent's code followed by two digits (e.g. 100201)." in page
    cash = books.account_by_code(session, book.id, "1001")
    page = text(browser.post(f"{url}/delete", data={"account_id": cash.id}, follow_redirects=True))
    assert "Accounts of the standard chart cannot be deleted; disable them instead." in page
    page = text(browser.post(f"{url}/rename", data={"account_id": cash.id, "name": "现金"}, follow_redirects=True))
    assert "First-level account names are set by the standard." in page
    assert count(session, Account) == before
    session.expire_all()
    assert books.account_by_code(session, book.id, "1001").name == "库存现金"


def test_an_account_of_other_books_is_not_found_through_these_books(session, login_as, book, accountant):
    other = make_books(make_client(accountant=accountant))
    foreign = books.account_by_code(session, other.id, "1001")
    page = text(login_as("accountant").post(f"/ledger/accounts/{book.client_id}/active",
                                            data={"account_id": foreign.id, "active": "0"}, follow_redirects=True))
    assert "No such account." in page
    session.expire_all()
    assert foreign.active is True


def test_reviewer_reads_the_chart_without_edit_forms_and_cannot_add(session, login_as, book):
    browser = login_as("reviewer")
    page = text(browser.get(f"/ledger/accounts/{book.client_id}"))
    assert 'data-code="1001"' in page and 'id="add-account"' not in page
    response = browser.post(f"/ledger/accounts/{book.client_id}/add",
                            data={"parent_code": "1002", "code": "100201", "name": "工商银行"})
    assert denied(response)
    assert books.account_by_code(session, book.id, "100201") is None


# --- opening balances -----------------------------------------------------------------------


def test_opening_balances_saved_from_the_page_with_the_trial_balance(session, login_as, book):
    browser = login_as("accountant")
    url = f"/ledger/opening/{book.client_id}"
    page = text(browser.post(f"{url}/save", data={"debit_1001": "1,000.00", "credit_3001": "600"},
                             follow_redirects=True))
    assert "2 opening balance(s) saved." in page
    assert 'id="total-debit">1000.00<' in page and 'id="total-credit">600.00<' in page
    assert "Unbalanced: difference 400.00" in page
    page = text(browser.post(f"{url}/save", data={"credit_3001": "1000"}, follow_redirects=True))
    assert 'id="balance-state">Balanced<' in page
    assert books.opening_check(session, book.id).balanced


def test_a_refused_opening_row_keeps_nothing_of_the_page(session, login_as, book):
    browser = login_as("accountant")
    audit = count(session, AuditLog)
    response = browser.post(f"/ledger/opening/{book.client_id}/save",
                            data={"debit_1001": "500.00", "debit_1002": "1.005", "credit_3001": "500.00"})
    page = text(response)
    assert response.status_code == 200
    assert "The opening balances were not saved; see the marked rows." in page
    assert "At most two decimal places." in page
    assert 'value="1.005"' in page  # the user's input is kept
    assert (count(session, OpeningBalance), count(session, AuditLog)) == (0, audit)


def test_a_row_with_both_sides_is_refused_on_its_row(session, login_as, book):
    books.set_opening_balance(session, book.id, "1001", debit="10.00")
    browser = login_as("accountant")
    audit = count(session, AuditLog)
    page = text(browser.post(f"/ledger/opening/{book.client_id}/save",
                                            data={"debit_1001": "20.00", "debit_1122": "5.00", "credit_1122": "5.00"}))
    assert "Enter a debit or a credit, not both." in page
    assert 'class="help-block error-credit_1122"' in page
    assert books.opening_check(session, book.id).debit == Decimal("10.00")
    assert count(session, AuditLog) == audit


def test_opening_balances_are_read_only_once_a_voucher_is_posted(session, login_as, book, user_id):
    balanced_opening(session, book)
    make_voucher(book, user_id("accountant"), state="posted", reviewer_id=user_id("reviewer"))
    browser = login_as("accountant")
    page = text(browser.get(f"/ledger/opening/{book.client_id}"))
    assert 'id="opening-locked"' in page and 'name="debit_1001"' not in page
    page = text(browser.post(f"/ledger/opening/{book.client_id}/save", data={"debit_1001": "2000.00"},
                             follow_redirects=True))
    assert "Opening balances cannot change once a voucher has been posted." in page
    assert books.opening_check(session, book.id).debit == Decimal("1000.00")


# --- voucher entry --------------------------------------------------------------------------


def test_voucher_entered_through_the_form(session, login_as, book, user_id):
    browser = login_as("accountant")
    form = text(browser.get(f"/ledger/vouchers/add?client_id={book.client_id}"))
    assert '<option value="1001 库存现金">' in form and "voucher_entry.js" in form
    response = browser.post("/ledger/vouchers/add", data=entry(book.client_id, [
        ("收到货款", "1001 库存现金", "100.00", ""), ("", "5001", "", "100.00")]), follow_redirects=True)
    page = text(response)
    voucher = session.scalar(select(Voucher))
    assert "Voucher 2026-01 记-1 saved." in page
    assert (voucher.label, voucher.total, voucher.maker_id, voucher.attachments) == (
        "记-1", Decimal("100.00"), user_id("accountant"), 1)
    assert [(ln.account.code, ln.debit, ln.credit, ln.memo) for ln in voucher.lines] == [
        ("1001", Decimal("100.00"), Decimal("0.00"), "收到货款"), ("5001", Decimal("0.00"), Decimal("100.00"), None)]
    assert "1001 库存现金" in page and 'id="voucher-state">Draft<' in page


def test_an_unbalanced_voucher_is_refused_with_the_input_kept_and_nothing_written(session, login_as, book):
    response = login_as("accountant").post("/ledger/vouchers/add", data=entry(book.client_id, [
        ("收到货款", "1001 库存现金", "100.00", ""), ("", "5001", "", "90.00")]))
    page = text(response)
    assert response.status_code == 200
    assert "Debits (100.00) and credits (90.00) do not balance; the difference is 10.00." in page
    assert 'value="1001 库存现金"' in page and 'value="90.00"' in page and 'value="收到货款"' in page
    assert (count(session, Voucher), count(session, VoucherLine)) == (0, 0)


def test_a_bad_line_is_marked_on_its_row(session, login_as, book):
    page = text(login_as("accountant").post("/ledger/vouchers/add", data=entry(book.client_id, [
        ("", "1001", "100.00", ""), ("", "9999 不存在", "", "100.00")])))
    assert "No account 9999 in these books." in page
    assert 'class="help-block error-lines-1-account_code"' in page
    assert count(session, Voucher) == 0


def test_a_draft_is_edited_through_the_form(session, login_as, book, user_id):
    voucher = make_voucher(book, user_id("accountant"))
    browser = login_as("accountant")
    form = text(browser.get(f"/ledger/vouchers/edit/{voucher.id}"))
    assert 'value="1001 库存现金"' in form and 'value="100.00"' in form
    browser.post(f"/ledger/vouchers/edit/{voucher.id}", data=entry(book.client_id, [
        ("", "1001", "250.00", ""), ("", "5001", "", "250.00")], summary="改过"))
    session.expire_all()
    assert (voucher.summary, voucher.total, voucher.number) == ("改过", Decimal("250.00"), 1)
    assert count(session, Voucher) == 1


def test_an_edit_form_opened_before_someone_else_saved_is_refused(session, login_as, book, user_id):
    voucher = make_voucher(book, user_id("accountant"), amount="10.00")
    browser = login_as("accountant")
    form = text(browser.get(f"/ledger/vouchers/edit/{voucher.id}"))
    assert 'name="version" value="1"' in form
    svc.save_voucher(session, book.client_id, {
        "date": "2026-01-15", "summary": "经理改过", "lines": [
            {"account_code": "1001", "debit": "20.00"}, {"account_code": "5001", "credit": "20.00"}]},
        user_id("manager"), voucher_id=voucher.id)

    page = text(browser.post(f"/ledger/vouchers/edit/{voucher.id}", data=entry(book.client_id, [
        ("", "1001", "250.00", ""), ("", "5001", "", "250.00")], summary="会计改过", version="1")))

    assert "was changed by someone else since you opened it (version 1, now 2)" in page
    session.expire_all()
    assert (voucher.summary, voucher.total, voucher.version) == ("经理改过", Decimal("20.00"), 2)


def test_a_review_from_a_page_showing_an_older_version_is_refused(session, login_as, book, user_id):
    voucher = make_voucher(book, user_id("accountant"), amount="10.00")
    reviewer = login_as("reviewer")
    assert 'name="version" value="1"' in text(reviewer.get(f"/ledger/vouchers/show/{voucher.id}"))
    svc.save_voucher(session, book.client_id, {
        "date": "2026-01-15", "summary": "改成大额", "lines": [
            {"account_code": "1001", "debit": "99999.00"}, {"account_code": "5001", "credit": "99999.00"}]},
        user_id("accountant"), voucher_id=voucher.id)

    page = text(reviewer.post(f"/ledger/vouchers/review/{voucher.id}", data={"version": "1"}, follow_redirects=True))

    assert "was changed by someone else" in page
    session.expire_all()
    assert voucher.state == VoucherState.draft


def test_the_carry_forward_shows_the_system_as_its_maker(session, login_as, book, user_id):
    balanced_opening(session, book)
    make_voucher(book, user_id("accountant"), state="posted", reviewer_id=user_id("reviewer"))
    carry = periods.close_period(session, book.client_id, "2026-01", user_id("manager")).carry_forward
    page = text(login_as("manager").get(f"/ledger/vouchers/show/{carry.id}"))
    assert "Maker:</strong> System (generated)" in page


# --- review, post, reverse ------------------------------------------------------------------


def test_reviewer_reviews_and_the_maker_is_refused(session, login_as, book, user_id):
    own = make_voucher(book, user_id("manager"))
    manager = login_as("manager")
    page = text(manager.post(f"/ledger/vouchers/review/{own.id}", follow_redirects=True))
    assert "The maker of a voucher cannot review it (制单人 ≠ 审核人)." in page
    session.expire_all()
    assert (own.state, own.reviewer_id) == (VoucherState.draft, None)

    page = text(login_as("reviewer").post(f"/ledger/vouchers/review/{own.id}", follow_redirects=True))
    assert "Voucher reviewed." in page and 'id="voucher-state">Reviewed<' in page
    session.expire_all()
    assert (own.state, own.reviewer_id) == (VoucherState.reviewed, user_id("reviewer"))


def test_accountant_may_not_review(session, login_as, book, user_id):
    voucher = make_voucher(book, user_id("manager"))
    response = login_as("accountant").post(f"/ledger/vouchers/review/{voucher.id}")
    assert denied(response)
    session.expire_all()
    assert voucher.state == VoucherState.draft


def test_bulk_post_reports_posted_and_refused(session, login_as, book, user_id):
    balanced_opening(session, book)
    first = make_voucher(book, user_id("accountant"), state="reviewed", reviewer_id=user_id("reviewer"))
    second = make_voucher(book, user_id("accountant"), state="reviewed", reviewer_id=user_id("reviewer"))
    draft = make_voucher(book, user_id("accountant"))
    response = login_as("accountant").post("/ledger/vouchers/action_post", data={
        "action": "bulk_post", "rowid": [first.id, second.id, draft.id]}, follow_redirects=True)
    page = text(response)
    assert "2 posted, 1 refused: 2026-01 记-3: Only a reviewed voucher can be posted." in page
    session.expire_all()
    assert [v.state for v in (first, second, draft)] == [VoucherState.posted, VoucherState.posted,
                                                         VoucherState.draft]
    assert session.scalar(select(func.count()).select_from(VoucherLine).where(VoucherLine.posted.is_(True))) == 4


def test_bulk_review_by_reviewer_and_scope_of_bulk_actions(session, login_as, book, user_id, app):
    other = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant2")))
    mine = make_voucher(book, user_id("accountant"))
    theirs = make_voucher(other, user_id("accountant2"))
    page = text(login_as("reviewer").post("/ledger/vouchers/action_post", data={
        "action": "bulk_review", "rowid": [mine.id]}, follow_redirects=True))
    assert "1 reviewed, 0 refused" in page
    balanced_opening(session, other)
    svc.review_voucher(session, theirs.id, user_id("reviewer"))
    page = text(login_as("accountant").post("/ledger/vouchers/action_post", data={
        "action": "bulk_post", "rowid": [theirs.id]}, follow_redirects=True))
    assert "0 posted, 1 refused: No such voucher." in page
    session.expire_all()
    assert (mine.state, theirs.state) == (VoucherState.reviewed, VoucherState.reviewed)


def test_reverse_a_posted_voucher_from_its_page(session, login_as, book, user_id):
    balanced_opening(session, book)
    original = make_voucher(book, user_id("accountant"), state="posted", reviewer_id=user_id("reviewer"))
    browser = login_as("accountant")
    page = text(browser.post(f"/ledger/vouchers/reverse/{original.id}", data={"date": ""}, follow_redirects=True))
    reversal = session.scalar(select(Voucher).where(Voucher.reversal_of_id == original.id))
    assert "Reversal created as a draft." in page and 'id="reversal-of"' in page
    assert (reversal.kind, reversal.state, reversal.label) == (VoucherKind.reversal, VoucherState.draft, "记-2")
    assert [ln.debit for ln in reversal.lines] == [Decimal("-100.00"), Decimal("0.00")]
    page = text(browser.get(f"/ledger/vouchers/show/{original.id}"))
    assert 'id="reversed-by"' in page and "记-2" in page
    page = text(browser.post(f"/ledger/vouchers/reverse/{original.id}", follow_redirects=True))
    assert "Voucher 记-1 has already been reversed." in page
    assert count(session, Voucher) == 2


def test_show_page_offers_only_the_allowed_buttons(session, login_as, book, user_id):
    voucher = make_voucher(book, user_id("accountant"))
    accountant_page = text(login_as("accountant").get(f"/ledger/vouchers/show/{voucher.id}"))
    reviewer_page = text(login_as("reviewer").get(f"/ledger/vouchers/show/{voucher.id}"))
    assert f"/ledger/vouchers/delete/{voucher.id}" in accountant_page
    assert f"/ledger/vouchers/review/{voucher.id}" not in accountant_page
    assert f"/ledger/vouchers/review/{voucher.id}" in reviewer_page
    assert f"/ledger/vouchers/delete/{voucher.id}" not in reviewer_page
    assert f"/ledger/vouchers/edit/{voucher.id}" not in reviewer_page


# --- delete, renumber, periods --------------------------------------------------------------


def test_delete_a_draft_then_renumber_the_period(session, login_as, book, user_id):
    first, second, third = (make_voucher(book, user_id("accountant")) for _ in range(3))
    browser = login_as("accountant")
    page = text(browser.post(f"/ledger/vouchers/delete/{second.id}", follow_redirects=True))
    assert "Voucher 2026-01 记-2 deleted; renumber the period to close the gap." in page
    assert count(session, Voucher) == 2
    page = text(browser.post(f"/ledger/periods/{book.client_id}/renumber", data={"period": "2026-01"},
                             follow_redirects=True))
    assert "1 voucher(s) renumbered." in page
    session.expire_all()
    assert (first.number, third.number) == (1, 2)


def test_a_reviewed_voucher_cannot_be_deleted(session, login_as, book, user_id):
    voucher = make_voucher(book, user_id("accountant"), state="reviewed", reviewer_id=user_id("reviewer"))
    page = text(login_as("accountant").post(f"/ledger/vouchers/delete/{voucher.id}", follow_redirects=True))
    assert "Only a draft can be deleted." in page
    assert count(session, Voucher) == 1


def test_a_refused_button_goes_back_to_its_page_with_the_reason_and_never_off_site(session, login_as, book,
                                                                                   user_id):
    make_voucher(book, user_id("accountant"))
    browser = login_as("accountant")
    page_url = f"http://localhost/ledger/periods/{book.client_id}"
    refused = browser.post(f"/ledger/periods/{book.client_id}/close", data={"period": "2026-01"},
                           headers={"Referer": page_url})
    assert (refused.status_code, refused.headers["Location"]) == (303, page_url)
    assert "1 voucher(s) of this period are not posted yet." in text(browser.get(page_url))
    elsewhere = browser.post(f"/ledger/periods/{book.client_id}/close", data={"period": "2026-01"},
                             headers={"Referer": "https://evil.example/ledger"})
    assert elsewhere.status_code == 303 and not elsewhere.headers["Location"].startswith("https://evil.example")
    assert count(session, Period) == 0


def test_close_refused_with_problems_then_closed_and_reopened_by_manager_only(session, login_as, book, user_id):
    make_voucher(book, user_id("accountant"))
    browser = login_as("accountant")
    url = f"/ledger/periods/{book.client_id}"
    page = text(browser.get(url))
    assert 'id="close-problems"' in page and "1 voucher(s) of this period are not posted yet." in page
    page = text(browser.post(f"{url}/close", data={"period": "2026-01"}, follow_redirects=True))
    assert "1 voucher(s) of this period are not posted yet." in page
    assert count(session, Period) == 0

    voucher = session.scalar(select(Voucher))
    svc.review_voucher(session, voucher.id, user_id("reviewer"))
    svc.post_voucher(session, voucher.id, user_id("reviewer"))
    page = text(browser.post(f"{url}/close", data={"period": "2026-01"}, follow_redirects=True))
    assert "Period 2026-01 closed." in page
    row = session.scalar(select(Period))
    assert row.status == PeriodStatus.closed
    assert 'id="reopen-period"' not in page  # the accountant is not offered reopen

    response = browser.post(f"{url}/reopen", data={"period": "2026-01"})
    assert denied(response)
    session.expire_all()
    assert row.status == PeriodStatus.closed

    manager = login_as("manager")
    assert 'id="reopen-period"' in text(manager.get(url))
    page = text(manager.post(f"{url}/reopen", data={"period": "2026-01"}, follow_redirects=True))
    assert "Period 2026-01 reopened." in page
    reopened = session.scalar(select(AuditLog).where(AuditLog.action == "period_reopen"))
    assert (reopened.user_id, reopened.object_id) == (user_id("manager"), f"{book.id}:202601")
    session.expire_all()
    assert row.status == PeriodStatus.open
    assert session.scalar(select(func.count()).select_from(Voucher).where(
        Voucher.kind == VoucherKind.carry_forward)) == 0


# --- scope ----------------------------------------------------------------------------------


def test_another_accountant_gets_404_on_every_page_of_the_client(session, login_as, book, user_id):
    balanced_opening(session, book)
    voucher = make_voucher(book, user_id("accountant"))
    browser = login_as("accountant2")
    pk = book.client_id
    for url in (f"/ledger/accounts/{pk}", f"/ledger/opening/{pk}", f"/ledger/periods/{pk}",
                f"/ledger/vouchers/show/{voucher.id}", f"/ledger/vouchers/edit/{voucher.id}",
                f"/ledger/vouchers/print/{voucher.id}", f"/ledger/vouchers/print?client_id={pk}&period=2026-01",
                f"/ledger/vouchers/add?client_id={pk}", f"/ledger/accounts/?client_id={pk}"):
        response = browser.get(url, follow_redirects=True)
        assert response.status_code == 404, url
    posts = {f"/ledger/accounts/{pk}/add": {"parent_code": "1002", "code": "100201", "name": "x"},
             f"/ledger/opening/{pk}/save": {"debit_1001": "1.00"},
             f"/ledger/periods/{pk}/renumber": {"period": "2026-01"},
             f"/ledger/vouchers/delete/{voucher.id}": {},
             f"/ledger/vouchers/edit/{voucher.id}": {"summary": "x"},
             f"/ledger/vouchers/reverse/{voucher.id}": {},
             f"/ledger/periods/{pk}/close": {"period": "2026-01"},
             "/ledger/vouchers/add": entry(pk, [("", "1001", "1.00", ""), ("", "5001", "", "1.00")])}
    for url, data in posts.items():
        assert browser.post(url, data=data).status_code == 404, url
    assert "屏幕测试有限公司" not in text(browser.get("/ledger/books/"))
    listing = browser.get("/ledger/vouchers/list/").get_data(as_text=True)
    # neither in the rows nor among the choices of the search form's client filter (JSON in a script)
    assert "屏幕测试有限公司" not in listing and json.dumps("屏幕测试有限公司")[1:-1] not in listing
    assert count(session, Period) == 0
    assert count(session, Voucher) == 1
    assert count(session, Account) == len(books.standard_chart()) + len(books.standard_sub_accounts())
    assert books.opening_check(session, book.id).debit == Decimal("1000.00")


def test_ids_that_cannot_be_rows_answer_404_not_a_server_error(session, login_as, book, user_id):
    voucher = make_voucher(book, user_id("accountant"))
    browser = login_as("accountant")
    huge = "99999999999"
    # a client id that cannot be a row just shows the client picker again
    assert 'id="pick-client"' in text(browser.get(f"/ledger/accounts/?client_id={huge}"))
    assert 'id="pick-client"' in text(browser.get(f"/ledger/vouchers/add?client_id={huge}"))
    assert 'id="pick-client"' in text(browser.post("/ledger/vouchers/add", data={"client_id": huge}))
    for url in (f"/ledger/accounts/{huge}", f"/ledger/vouchers/show/{huge}",
                f"/ledger/vouchers/print?client_id={huge}&period=2026-01"):
        assert browser.get(url).status_code == 404, url
    posts = {"/ledger/vouchers/action_post": {"action": "bulk_post", "rowid": [str(voucher.id), "abc"]},
             "/ledger/vouchers/action/bulk_post/abc": {}, f"/ledger/vouchers/action/bulk_post/{huge}": {}}
    for url, data in posts.items():
        assert browser.post(url, data=data).status_code == 404, url
    page = text(browser.post(f"/ledger/accounts/{book.client_id}/rename", data={"account_id": huge, "name": "x"},
                             follow_redirects=True))
    assert "No such account." in page
    assert "Choose a client." in text(browser.post("/ledger/books/open", data={"client_id": huge,
                                                                               "start_period": "2026-01"}))
    session.expire_all()
    assert voucher.state == VoucherState.draft


def test_agent_sees_nothing_of_the_ledger(login_as, book):
    browser = login_as("agent")
    for url in ("/ledger/books/", "/ledger/vouchers/list/", f"/ledger/periods/{book.client_id}"):
        response = browser.get(url)
        assert denied(response), url


# --- list, filters, export ------------------------------------------------------------------


def test_voucher_list_filters_by_period_and_account(session, login_as, book, user_id):
    make_voucher(book, user_id("accountant"), summary="一月现金")
    make_voucher(book, user_id("accountant"), day="2026-02-03", summary="二月现金")
    make_voucher(book, user_id("accountant"), debit_code="1002", summary="一月银行")
    browser = login_as("reviewer")
    page = text(browser.get("/ledger/vouchers/list/?_flt_0_period=2026-01"))
    assert "一月现金" in page and "一月银行" in page and "二月现金" not in page
    page = text(browser.get("/ledger/vouchers/list/?_flt_0_lines=1002"))
    assert "一月银行" in page and "一月现金" not in page
    page = text(browser.get("/ledger/vouchers/list/?_flt_0_lines=银行存款"))
    assert "一月银行" in page and "一月现金" not in page
    make_voucher(book, user_id("accountant"), word="收", summary="收款凭证", state="reviewed",
                 reviewer_id=user_id("reviewer"))
    page = text(browser.get("/ledger/vouchers/list/?_flt_0_word=shou"))
    assert "收款凭证" in page and "一月现金" not in page
    page = text(browser.get("/ledger/vouchers/list/?_flt_0_state=reviewed"))
    assert "收款凭证" in page and "一月银行" not in page
    make_voucher(book, user_id("accountant"), amount="500.00", summary="大额")
    page = text(browser.get("/ledger/vouchers/list/?_flt_1_total=200"))
    assert "大额" in page and "一月现金" not in page
    page = text(browser.get("/ledger/vouchers/list/?_flt_2_total=200"))
    assert "大额" not in page and "一月现金" in page
    page = text(browser.get("/ledger/vouchers/list/?_flt_1_total=abc"))  # not an amount: nothing, no error
    assert "大额" not in page and "一月现金" not in page
    page = text(browser.get("/ledger/vouchers/list/?_flt_0_period=2026-99"))
    assert "一月" not in page and "二月" not in page
    csv = browser.get("/ledger/vouchers/export.csv?_flt_0_period=2026-02").get_data(as_text=True)
    assert "二月现金" in csv and "一月现金" not in csv and "2026-02" in csv


# --- print ----------------------------------------------------------------------------------


def test_print_view_of_one_voucher_and_of_a_period(session, login_as, book, user_id):
    balanced_opening(session, book)
    posted = make_voucher(book, user_id("accountant"), state="posted", reviewer_id=user_id("reviewer"),
                          amount="1005.07")
    make_voucher(book, user_id("accountant"), amount="20.00", summary="第二张")
    browser = login_as("reviewer")
    page = text(browser.get(f"/ledger/vouchers/print/{posted.id}"))
    assert "屏幕测试有限公司" in page and "2026-01 记-1" in page
    assert "壹仟零伍元零柒分" in page and "1005.07" in page
    assert '<span class="maker">accountant</span>' in page and '<span class="reviewer">reviewer</span>' in page
    assert '<span class="poster">reviewer</span>' in page
    page = text(browser.get(f"/ledger/vouchers/print?client_id={book.client_id}&period=2026-01"))
    assert page.count('class="voucher-sheet"') == 2 and "贰拾元整" in page and "第二张" in page
    assert browser.get(f"/ledger/vouchers/print?client_id={book.client_id}&period=2026-1").status_code == 404


@pytest.mark.parametrize(("amount", "words"), [
    ("0", "零元整"), ("0.05", "伍分"), ("0.50", "伍角整"), ("1.05", "壹元零伍分"), ("10.05", "壹拾元零伍分"),
    ("1005.07", "壹仟零伍元零柒分"), ("1680.32", "壹仟陆佰捌拾元叁角贰分"), ("107000.53", "壹拾万柒仟元伍角叁分"),
    ("1409.50", "壹仟肆佰零玖元伍角整"), ("100050", "壹拾万零伍拾元整"), ("10001", "壹万零壹元整"),
    ("100000001", "壹亿零壹元整"), ("110", "壹佰壹拾元整"), ("-35.00", "负叁拾伍元整"),
    ("12345678901234.56", "壹拾贰万亿叁仟肆佰伍拾陆亿柒仟捌佰玖拾万壹仟贰佰叁拾肆元伍角陆分"),
])
def test_amount_in_chinese_capitals(amount, words):
    assert amount_in_words(Decimal(amount)) == words


@pytest.mark.parametrize("bad", [1.5, "1.005", "1e16", "NaN"])
def test_amount_in_words_refuses_non_amounts(bad):
    with pytest.raises(ValueError):
        amount_in_words(bad)


# --- CSRF and CSP ---------------------------------------------------------------------------


@pytest.fixture
def csrf_app(second_app):
    """A second application on the same database with CSRF protection switched on."""
    return second_app(WTF_CSRF_ENABLED=True, BABEL_DEFAULT_LOCALE="en")


def _token(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "the form has no csrf_token"
    return match.group(1)


def test_ledger_forms_refuse_a_post_without_csrf_token(csrf_app, session, book, user_id):
    balanced_opening(session, book)
    make_voucher(book, user_id("accountant"), state="posted", reviewer_id=user_id("reviewer"))
    browser = csrf_app.test_client()
    login_token = _token(browser.get("/login/").get_data(as_text=True))
    browser.post("/login/", data={"username": "accountant", "password": PASSWORD, "csrf_token": login_token})
    url = f"/ledger/periods/{book.client_id}"
    assert browser.post(f"{url}/close", data={"period": "2026-01"}).status_code == 400
    assert browser.post("/ledger/vouchers/add", data=entry(book.client_id, [
        ("", "1001", "1.00", ""), ("", "5001", "", "1.00")])).status_code == 400
    assert (count(session, Period), count(session, Voucher)) == (0, 1)

    token = _token(browser.get(url).get_data(as_text=True))
    response = browser.post(f"{url}/close", data={"period": "2026-01", "csrf_token": token}, follow_redirects=True)
    assert "Period 2026-01 closed." in text(response)
    assert count(session, Period) == 1


def test_entry_form_script_is_a_static_file_with_the_page_nonce(login_as, book):
    browser = login_as("accountant")
    response = browser.get(f"/ledger/vouchers/add?client_id={book.client_id}")
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    assert f'<script src="/static/ledger/voucher_entry.js" nonce="{nonce}"></script>' in text(response)
    assert "onclick=" not in text(response)
    script = browser.get("/static/ledger/voucher_entry.js")
    assert script.status_code == 200 and b"balance-indicator" in script.data
