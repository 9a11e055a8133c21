"""Concurrent writers on one set of books: voucher numbers stay 1..n without gaps or duplicates, a
posted voucher is reversed once however many requests race for it, a month closed while vouchers
are entered holds no draft, and a review racing an edit never approves content it did not see.

Each thread works as a request would: its own application context, hence its own session and
connection. The threads start together behind a barrier. Runs on SQLite and, with
``TEST_DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from app.extensions import db
from app.models.ledger import Voucher, VoucherKind, VoucherLine, VoucherState, VoucherWord
from app.services import periods, vouchers
from app.services.errors import Conflict, PeriodClosed
from tests.factories import make_books, make_voucher, voucher_data

WRITERS = 50


def _race(app, count: int, work: Callable[[int], object]) -> tuple[list, list[BaseException]]:
    """Run ``work(i)`` for i in 0..count-1 in *count* threads released at once; return results and errors."""
    barrier = threading.Barrier(count)
    results: list = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=60)
                outcome = work(index)
                with lock:
                    results.append(outcome)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                db.session.rollback()
                with lock:
                    errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a writer never finished"
    return results, errors


@pytest.fixture
def book(app, session):
    book = make_books(name="并发测试有限公司")
    session.commit()
    return book


def test_fifty_vouchers_saved_at_once_are_numbered_1_to_50(app, session, book, user_id):
    maker = user_id("accountant")

    def save(index: int) -> tuple[int, str]:
        voucher = vouchers.save_voucher(db.session, book.client_id, voucher_data(
            day=f"2026-03-{index % 28 + 1:02d}", amount=f"{index + 1}.00", summary=f"并发凭证{index}"), maker)
        return voucher.number, voucher.summary

    results, errors = _race(app, WRITERS, save)

    assert errors == []
    assert sorted(number for number, _ in results) == list(range(1, WRITERS + 1))
    session.expire_all()
    stored = session.execute(select(Voucher.number, Voucher.summary, Voucher.total).where(
        Voucher.book_id == book.id, Voucher.period == 202603, Voucher.word == VoucherWord.ji)
        .order_by(Voucher.number)).all()
    assert [number for number, *_ in stored] == list(range(1, WRITERS + 1))
    assert sorted((n, s) for n, s, _ in stored) == sorted(results)  # each thread got the number it stored
    assert {summary for _, summary, _ in stored} == {f"并发凭证{i}" for i in range(WRITERS)}
    assert sum(total for *_, total in stored) == sum(range(1, WRITERS + 1))
    assert session.scalar(select(func.count()).select_from(VoucherLine)) == 2 * WRITERS
    assert vouchers.number_gaps(session, book.id, 202603) == {}


def test_concurrent_saves_in_different_words_number_each_word_from_one(app, session, book, user_id):
    maker = user_id("accountant")
    words = ["记", "收", "付", "转"]

    def save(index: int) -> tuple[str, int]:
        voucher = vouchers.save_voucher(db.session, book.client_id, voucher_data(
            day="2026-04-15", word=words[index % 4], summary=f"并发凭证{index}"), maker)
        return voucher.word.value, voucher.number

    results, errors = _race(app, 20, save)

    assert errors == []
    for word in words:
        assert sorted(n for w, n in results if w == word) == [1, 2, 3, 4, 5]


def test_two_concurrent_reversals_of_one_posted_voucher_make_one_reversal(app, session, book, user_id):
    original = make_voucher(book, user_id("accountant"), state="posted", reviewer_id=user_id("reviewer"),
                            day="2026-03-10", amount="880.00")
    original_id = original.id

    def reverse(_: int) -> int:
        with force_locale("en"):
            return vouchers.reverse_voucher(db.session, original_id, user_id("accountant")).id

    results, errors = _race(app, 2, reverse)

    assert len(results) == 1
    assert len(errors) == 1 and isinstance(errors[0], Conflict)
    assert errors[0].errors == {"_": ["Voucher 记-1 has already been reversed."]}
    session.expire_all()
    reversals = list(session.scalars(select(Voucher).where(Voucher.reversal_of_id == original_id)))
    assert [r.id for r in reversals] == results
    assert reversals[0].kind == VoucherKind.reversal and reversals[0].total == -880
    assert session.scalar(select(func.count()).select_from(Voucher).where(Voucher.book_id == book.id)) == 2


def test_a_month_closed_while_vouchers_are_entered_holds_no_draft(app, session, book, user_id):
    """Each round closes one month while four accountants save vouchers into it. Whichever comes
    first, a closed month holds only posted vouchers, and a save that lost the race is refused."""
    maker, checker = user_id("accountant"), user_id("reviewer")
    client_id, book_id = book.client_id, book.id  # the threads must not load anything through this session
    outcomes = []
    for month in range(1, 9):
        label = f"2026-{month:02d}"

        def work(index: int, label: str = label) -> str:
            with force_locale("en"):
                if index == 0:
                    periods.close_period(db.session, client_id, label, checker)
                    return "closed"
                vouchers.save_voucher(db.session, client_id, voucher_data(
                    day=f"{label}-{index + 1:02d}", summary=f"结账时录入{index}"), maker)
                return "saved"

        results, errors = _race(app, 5, work)

        session.expire_all()
        closed = vouchers.is_closed(session, book_id, 202600 + month)
        unposted = list(session.scalars(select(Voucher).where(
            Voucher.book_id == book_id, Voucher.period == 202600 + month, Voucher.state != VoucherState.posted)))
        if closed:
            assert unposted == [], f"{label} was closed with drafts in it"
            assert results.count("saved") + len(errors) == 4
            assert all(isinstance(e, PeriodClosed) for e in errors)
        else:
            assert len(errors) == 1 and isinstance(errors[0], Conflict)
            assert "not posted yet" in str(errors[0].errors)
            for draft in unposted:  # let the next round start from a closed month
                vouchers.review_voucher(session, draft.id, checker)
                vouchers.post_voucher(session, draft.id, checker)
            periods.close_period(session, client_id, label, checker)
        outcomes.append((closed, results.count("saved")))
    assert len(outcomes) == 8, outcomes


def test_a_review_racing_an_edit_never_approves_content_it_did_not_see(app, session, book, user_id):
    """The reviewer approves the 10.00 voucher he sees while its maker rewrites it to 99,999.00:
    either the review wins (and the edit is refused) or the edit wins (and the review is refused)."""
    maker, checker = user_id("accountant"), user_id("reviewer")
    client_id = book.client_id
    for round_no in range(12):
        draft = make_voucher(book, maker, day="2026-02-10", amount="10.00", summary=f"审核竞争{round_no}")
        draft_id, seen = draft.id, draft.version

        def work(index: int, draft_id: int = draft_id, seen: int = seen) -> str:
            with force_locale("en"):
                if index == 0:
                    vouchers.review_voucher(db.session, draft_id, checker, seen)
                    return "reviewed"
                vouchers.save_voucher(db.session, client_id, voucher_data(
                    day="2026-02-10", amount="99999.00", summary="改过的"), maker, voucher_id=draft_id)
                return "edited"

        results, errors = _race(app, 2, work)

        assert len(results) == 1 and len(errors) == 1 and isinstance(errors[0], Conflict), (results, errors)
        session.expire_all()
        voucher = session.get(Voucher, draft_id)
        if results == ["reviewed"]:
            assert (voucher.state, voucher.total, voucher.version) == (VoucherState.reviewed, 10, seen)
            assert voucher.reviewed_version == voucher.version
        else:
            assert (voucher.state, voucher.total, voucher.version) == (VoucherState.draft, 99999, seen + 1)
            assert voucher.reviewer_id is None
