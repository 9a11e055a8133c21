"""Concurrent writers on one set of books: voucher numbers stay 1..n without gaps or duplicates, and a
posted voucher is reversed once however many requests race for it.

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
from app.models.ledger import Voucher, VoucherKind, VoucherLine, VoucherWord
from app.services import vouchers
from app.services.errors import Conflict
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
