"""Vouchers (记账凭证): numbering, validation, review, posting, reversal, deletion and renumbering.

Every refusal also asserts that nothing was written.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.ledger import Voucher, VoucherKind, VoucherLine, VoucherState, VoucherWord
from app.services import books, periods, vouchers
from app.services.errors import Conflict, NotFound, PeriodClosed, ValidationFailed
from app.services.vouchers import UnbalancedVoucher
from tests.factories import line, make_books, make_voucher, voucher_data


def _written(session) -> tuple[int, int]:
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(Voucher)),
            session.scalar(select(func.count()).select_from(VoucherLine)))


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"  # messages below are asserted in English


@pytest.fixture
def book(app):
    return make_books(name="凭证测试有限公司")


@pytest.fixture
def maker(user_id):
    return user_id("accountant")


@pytest.fixture
def checker(user_id):
    return user_id("reviewer")


# --- numbering ------------------------------------------------------------------------------


def test_numbers_run_per_period_and_word_from_one(session, book, maker):
    labels = [make_voucher(book, maker, **kw).label for kw in (
        {}, {}, {"word": "收"}, {"word": "ji"}, {"day": "2026-02-01"}, {"day": "2026-02-03", "word": "付"})]
    assert labels == ["记-1", "记-2", "收-1", "记-3", "记-1", "付-1"]
    saved = session.scalar(select(Voucher).where(Voucher.period == 202602, Voucher.word == VoucherWord.fu))
    assert (saved.number, saved.date.isoformat(), saved.total) == (1, "2026-02-03", Decimal("100.00"))
    assert [(ln.line_no, ln.account.code, ln.debit, ln.credit) for ln in saved.lines] == [
        (1, "1001", Decimal("100.00"), Decimal("0.00")), (2, "5001", Decimal("0.00"), Decimal("100.00"))]


def test_a_draft_moved_to_another_month_gets_a_new_number_and_leaves_a_gap(session, book, maker):
    first = make_voucher(book, maker)
    make_voucher(book, maker)
    moved = vouchers.save_voucher(session, book.client_id, voucher_data(day="2026-02-10"), maker, voucher_id=first.id)
    assert (moved.id, moved.period, moved.number) == (first.id, 202602, 1)
    assert vouchers.number_gaps(session, book.id, 202601) == {VoucherWord.ji: [1]}


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "field", "message"), [
    (voucher_data(lines=[line("1001", debit="100"), line("5001", credit="90")]), "lines",
     "Debits (100.00) and credits (90.00) do not balance; the difference is 10.00."),
    (voucher_data(lines=[line("1001", debit="100")]), "lines", "A voucher needs at least two lines."),
    (voucher_data(lines=[line("1001", debit="100", credit="100"), line("5001", credit="0")]), "lines[0].credit",
     "A line has a debit or a credit, not both."),
    (voucher_data(lines=[line("1001", debit="0"), line("5001")]), "lines[0].debit",
     "A line needs a debit or a credit amount."),
    (voucher_data(lines=[line("1001", debit="1.005"), line("5001", credit="1.005")]), "lines[0].debit",
     "At most two decimal places."),
    (voucher_data(lines=[line("1001", debit=100.5), line("5001", credit="100.5")]), "lines[0].debit",
     "Amounts must be given as strings, not numbers."),
    (voucher_data(lines=[line("1001", debit="-5"), line("5001", credit="-5")]), "lines[0].debit",
     "The amount cannot be negative."),
    (voucher_data(lines=[line("1001", debit="abc"), line("5001", credit="1")]), "lines[0].debit",
     "Not a valid amount."),
    (voucher_data(lines=[line("9999", debit="1"), line("5001", credit="1")]), "lines[0].account_code",
     "No account 9999 in these books."),
    (voucher_data(lines=[line("", debit="1"), line("5001", credit="1")]), "lines[0].account_code",
     "Choose an account."),
    (voucher_data(summary="  "), "summary", "A voucher needs a summary (摘要)."),
    (voucher_data(day="2026-13-01"), "date", "A date is written YYYY-MM-DD."),
    (voucher_data(day="2025-12-31"), "date", "The books start in 2026-01."),
    (voucher_data(word="甲"), "word", "The voucher word is one of 记, 收, 付, 转."),
    (voucher_data(attachments="-1"), "attachments", "The number of attachments is a whole number from 0 to 9999."),
])
def test_bad_voucher_is_refused_naming_the_field_and_nothing_is_written(app, session, book, maker, data, field,
                                                                         message):
    before = _written(session)
    with pytest.raises(ValidationFailed) as refused:
        vouchers.save_voucher(session, book.client_id, data, maker)
    assert message in refused.value.errors[field]
    assert _written(session) == before


def test_unbalanced_voucher_is_its_own_error(session, book, maker):
    with pytest.raises(UnbalancedVoucher):
        vouchers.save_voucher(session, book.client_id,
                              voucher_data(lines=[line("1001", debit="1"), line("5001", credit="2")]), maker)


def test_lines_need_an_active_leaf_account(app, session, book, maker):
    books.add_sub_account(session, book.id, "1002", "100201", "工商银行")
    with pytest.raises(ValidationFailed) as parent:
        vouchers.save_voucher(session, book.client_id, voucher_data(debit_code="1002"), maker)
    assert parent.value.errors["lines[0].account_code"] == ["1002 银行存款 has sub-accounts; choose one of them."]
    books.set_account_active(session, books.account_by_code(session, book.id, "100201").id, False)
    with pytest.raises(ValidationFailed) as disabled:
        vouchers.save_voucher(session, book.client_id, voucher_data(debit_code="100201"), maker)
    assert disabled.value.errors["lines[0].account_code"] == ["100201 工商银行 is disabled."]
    assert _written(session) == (0, 0)


def test_client_without_books_is_not_found(session, maker):
    from tests.factories import make_client

    with pytest.raises(NotFound):
        vouchers.save_voucher(session, make_client().id, voucher_data(), maker)


# --- review and posting ---------------------------------------------------------------------


def test_the_maker_cannot_review_their_own_voucher(session, book, maker):
    voucher = make_voucher(book, maker)
    with pytest.raises(Conflict, match="制单人"):
        vouchers.review_voucher(session, voucher.id, maker)
    session.expire_all()
    assert (voucher.state, voucher.reviewer_id) == (VoucherState.draft, None)


def test_whoever_last_changed_a_draft_is_its_maker_and_cannot_review_it(session, book, maker, checker, user_id):
    """Four eyes: a manager who rewrites an accountant's draft becomes its maker, so he cannot
    review (and then post) what he wrote himself; someone else can."""
    manager = user_id("manager")
    voucher = make_voucher(book, maker, amount="10.00")
    vouchers.save_voucher(session, book.client_id, voucher_data(amount="99999.00"), manager, voucher_id=voucher.id)
    session.expire_all()
    assert (voucher.maker_id, voucher.total) == (manager, Decimal("99999.00"))
    with pytest.raises(Conflict, match="制单人"):
        vouchers.review_voucher(session, voucher.id, manager)
    session.expire_all()
    assert (voucher.state, voucher.reviewer_id) == (VoucherState.draft, None)
    reviewed = vouchers.review_voucher(session, voucher.id, checker)
    assert (reviewed.state, reviewed.reviewer_id, reviewed.maker_id) == (VoucherState.reviewed, checker, manager)


def test_review_unreview_then_post(session, book, maker, checker):
    voucher = make_voucher(book, maker)
    vouchers.review_voucher(session, voucher.id, checker)
    assert (voucher.state, voucher.reviewer_id) == (VoucherState.reviewed, checker)
    with pytest.raises(Conflict):
        vouchers.save_voucher(session, book.client_id, voucher_data(amount="5"), maker, voucher_id=voucher.id)
    vouchers.unreview_voucher(session, voucher.id, checker)
    assert (voucher.state, voucher.reviewer_id) == (VoucherState.draft, None)
    with pytest.raises(Conflict, match="reviewed"):
        vouchers.post_voucher(session, voucher.id, checker)
    vouchers.review_voucher(session, voucher.id, checker)
    vouchers.post_voucher(session, voucher.id, checker)
    session.expire_all()
    assert (voucher.state, voucher.poster_id) == (VoucherState.posted, checker)
    assert all(ln.posted for ln in voucher.lines)
    for refused in (vouchers.unreview_voucher, vouchers.review_voucher, vouchers.post_voucher):
        with pytest.raises(Conflict):
            refused(session, voucher.id, checker)
    with pytest.raises(Conflict):
        vouchers.delete_voucher(session, voucher.id)
    with pytest.raises(Conflict):
        vouchers.save_voucher(session, book.client_id, voucher_data(amount="5"), maker, voucher_id=voucher.id)
    session.expire_all()
    assert voucher.total == Decimal("100.00") and voucher.state == VoucherState.posted


def test_posting_needs_balanced_opening_balances(session, book, maker, checker):
    books.set_opening_balance(session, book.id, "1001", debit="500")
    voucher = make_voucher(book, maker, state="reviewed", reviewer_id=checker)
    with pytest.raises(Conflict, match="opening balances"):
        vouchers.post_voucher(session, voucher.id, checker)
    session.expire_all()
    assert voucher.state == VoucherState.reviewed and not any(ln.posted for ln in voucher.lines)
    books.set_opening_balance(session, book.id, "3001", credit="500")
    assert vouchers.post_voucher(session, voucher.id, checker).state == VoucherState.posted
    with pytest.raises(Conflict, match="posted"):
        books.set_opening_balance(session, book.id, "1001", debit="600")


# --- reversal -------------------------------------------------------------------------------


def test_red_reversal_negates_the_original_and_refers_to_it(session, book, maker, checker):
    original = make_voucher(book, maker, state="posted", reviewer_id=checker, amount="250.50")
    reversal = vouchers.reverse_voucher(session, original.id, maker)
    assert (reversal.kind, reversal.reversal_of_id, reversal.state) == (VoucherKind.reversal, original.id,
                                                                      VoucherState.draft)
    assert reversal.label == "记-2" and "记-1" in reversal.summary
    assert [(ln.account.code, ln.debit, ln.credit) for ln in reversal.lines] == [
        ("1001", Decimal("-250.50"), Decimal("0.00")), ("5001", Decimal("0.00"), Decimal("-250.50"))]
    with pytest.raises(Conflict, match="already been reversed"):
        vouchers.reverse_voucher(session, original.id, maker)
    vouchers.review_voucher(session, reversal.id, checker)
    vouchers.post_voucher(session, reversal.id, checker)
    session.expire_all()
    net = session.scalar(select(func.sum(VoucherLine.debit - VoucherLine.credit)).where(
        VoucherLine.posted.is_(True), VoucherLine.account_id == books.account_by_code(session, book.id, "1001").id))
    assert net == 0


def test_only_posted_vouchers_are_reversed(session, book, maker):
    draft = make_voucher(book, maker)
    before = _written(session)
    with pytest.raises(Conflict):
        vouchers.reverse_voucher(session, draft.id, maker)
    assert _written(session) == before


# --- deletion and renumbering ---------------------------------------------------------------


def test_deleting_a_draft_leaves_a_gap_that_renumbering_closes(session, book, maker, checker):
    made = [make_voucher(book, maker, state="posted" if n == 3 else "draft", reviewer_id=checker) for n in range(5)]
    vouchers.delete_voucher(session, made[1].id)
    vouchers.delete_voucher(session, made[2].id)
    assert _written(session) == (3, 6)  # the lines went with their vouchers
    assert vouchers.number_gaps(session, book.id, 202601) == {VoucherWord.ji: [2, 3]}
    assert vouchers.renumber_vouchers(session, book.client_id, "2026-01") == 2
    session.expire_all()
    assert [(v.id, v.number) for v in (made[0], made[3], made[4])] == [(made[0].id, 1), (made[3].id, 2),
                                                                        (made[4].id, 3)]
    assert vouchers.number_gaps(session, book.id, 202601) == {}
    assert make_voucher(book, maker).number == 4


# --- closed periods -------------------------------------------------------------------------


def test_a_closed_period_refuses_new_edited_reversed_and_deleted_vouchers(session, book, maker, checker):
    posted = make_voucher(book, maker, state="posted", reviewer_id=checker)
    periods.close_period(session, book.client_id, "2026-01", checker)
    draft_feb = make_voucher(book, maker, day="2026-02-02")
    before = _written(session)
    with pytest.raises(PeriodClosed):
        vouchers.save_voucher(session, book.client_id, voucher_data(), maker)
    with pytest.raises(PeriodClosed):
        vouchers.save_voucher(session, book.client_id, voucher_data(), maker, voucher_id=draft_feb.id)
    with pytest.raises(PeriodClosed):
        vouchers.reverse_voucher(session, posted.id, maker)
    with pytest.raises(PeriodClosed):
        vouchers.renumber_vouchers(session, book.client_id, "2026-01")
    assert _written(session) == before
    reversal = vouchers.reverse_voucher(session, posted.id, maker, on_date="2026-02-05")  # in the open month
    assert (reversal.period, reversal.label) == (202602, "记-2")
