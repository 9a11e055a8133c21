"""Vouchers (记账凭证): entry, numbering, review (审核), posting (记账), red reversal (红字冲销).

Rules:
- A voucher has a date inside an open period of its client's books (not before they start), a
  word (记/收/付/转), a summary, an attachment count and at least two lines. Each line names an
  active leaf account and carries a debit or a credit: not both, not zero, at most two decimals
  and 16 digits before the point, given as a string (never a float). Total debit equals total
  credit (借贷平衡), and the total fits an amount too (at most 9,999,999,999,999,999.99). Any failure
  raises ``ValidationFailed`` with every problem by field (``lines[2].debit``) and writes nothing.
- The number is sequential per books, period and word, from 1, assigned on save under a lock on
  the books row (and a unique constraint as the last line of defence), so concurrent saves never
  share a number. Deleting a draft leaves a gap; ``renumber_vouchers`` (整理凭证) closes gaps.
- States: draft → reviewed → posted. The reviewer must not be the maker (制单人 ≠ 审核人), and
  whoever last changed a draft is its maker; un-review is allowed until posted; posting needs
  balanced opening balances. Posted vouchers are immutable: ``reverse_voucher`` creates a draft
  with negated amounts referring to the original, which is then reviewed and posted like any other.
- Every change of a draft's content raises its ``version``; a review approves one version
  (``reviewed_version``) and only that version is posted. A caller that names the version it
  showed (``expected_version``) is refused with ``Conflict`` when the voucher changed since.
- Nothing changes in a closed period (``PeriodClosed``).
- Every write takes the books lock first and only then reads the voucher and the period it
  checks, so a check cannot be overtaken by a concurrent edit, review or close (``lock_book``).
Every function commits its own transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.ledger import (
    Account,
    LedgerBook,
    Period,
    PeriodStatus,
    Voucher,
    VoucherKind,
    VoucherLine,
    VoucherState,
    VoucherWord,
    voucher_title,
)
from app.services import audit, books
from app.services.accounting import ZERO, check_total, parse_amount, parse_period, period_label, period_of
from app.services.books import lock_book
from app.services.errors import Conflict, NotFound, PeriodClosed, ValidationFailed
from app.services.inputs import parse_count

MAX_LINES = 200
MAX_ATTACHMENTS = 9999
SAVE_ATTEMPTS = 8


class UnbalancedVoucher(ValidationFailed):
    """Total debit differs from total credit (借贷不平衡)."""


@dataclass
class LineInput:
    account: Account
    debit: Decimal
    credit: Decimal
    memo: str | None


@dataclass
class VoucherInput:
    """A voucher's fields as parsed from its input (``parse_voucher``)."""

    day: date | None
    word: VoucherWord | None
    summary: str
    attachments: int
    lines: list[LineInput]


# --- parsing --------------------------------------------------------------------------------


def parse_word(value: object) -> VoucherWord:
    """``"记"`` or ``"ji"`` → ``VoucherWord.ji``; raises ``ValidationFailed`` on anything else."""
    if isinstance(value, VoucherWord):
        return value
    text = str(value or "").strip()
    for word in VoucherWord:
        if text in (word.value, word.name):
            return word
    raise ValidationFailed({"word": [str(_l("The voucher word is one of 记, 收, 付, 转."))]})


def parse_date(value: object, field: str = "date") -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        raise ValidationFailed({field: [str(_l("A date is written YYYY-MM-DD."))]}) from None


def _parse_header(data: dict, errors: dict[str, list[str]]) -> tuple[date | None, VoucherWord | None, str, int]:
    day = word = None
    try:
        day = parse_date(data.get("date"))
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        word = parse_word(data.get("word", VoucherWord.ji))
    except ValidationFailed as exc:
        errors.update(exc.errors)
    summary = str(data.get("summary") or "").strip()
    if not summary:
        errors["summary"] = [str(_l("A voucher needs a summary (摘要)."))]
    elif len(summary) > 200:
        errors["summary"] = [str(_l("At most %(n)d characters.", n=200))]
    attachments = parse_count(data.get("attachments"), 0, MAX_ATTACHMENTS)
    if attachments is None:
        errors["attachments"] = [str(_l("The number of attachments is a whole number from 0 to %(n)d.",
                                        n=MAX_ATTACHMENTS))]
        attachments = 0
    return day, word, summary, attachments


def parse_voucher(session: Session, book_id: int, data: dict, errors: dict[str, list[str]]) -> VoucherInput:
    """Parse a voucher's header and lines against the accounts of *book_id*.

    Every problem is added to *errors* under its field (``date``, ``lines[2].debit``...): the
    result is only usable when *errors* stayed empty. Raises ``UnbalancedVoucher`` when every
    field is valid but debits and credits differ."""
    day, word, summary, attachments = _parse_header(data, errors)
    lines = _parse_lines(session, book_id, data.get("lines"), errors)
    return VoucherInput(day, word, summary, attachments, lines)


def _parse_lines(session: Session, book_id: int, raw_lines: object, errors: dict[str, list[str]],
                 allow_negative: bool = False) -> list[LineInput]:
    if not isinstance(raw_lines, list | tuple) or len(raw_lines) < 2:
        errors["lines"] = [str(_l("A voucher needs at least two lines."))]
        return []
    if len(raw_lines) > MAX_LINES:
        errors["lines"] = [str(_l("A voucher has at most %(n)d lines.", n=MAX_LINES))]
        return []
    codes = {str(raw.get("account_code") or "").strip() for raw in raw_lines if isinstance(raw, dict)}
    accounts = {a.code: a for a in session.scalars(
        select(Account).where(Account.book_id == book_id, Account.code.in_(codes)))}
    parsed: list[LineInput] = []
    for index, raw in enumerate(raw_lines):
        prefix = f"lines[{index}]"
        if not isinstance(raw, dict):
            errors[prefix] = [str(_l("Each line is an object with account_code, debit, credit and memo."))]
            continue
        code = str(raw.get("account_code") or "").strip()
        account = accounts.get(code)
        line_errors = len(errors)
        if not code:
            errors[f"{prefix}.account_code"] = [str(_l("Choose an account."))]
        elif account is None:
            errors[f"{prefix}.account_code"] = [str(_l("No account %(code)s in these books.", code=code))]
        elif not account.is_leaf:
            errors[f"{prefix}.account_code"] = [str(_l(
                "%(code)s %(name)s has sub-accounts; choose one of them.", code=account.code, name=account.name))]
        elif not account.active:
            errors[f"{prefix}.account_code"] = [str(_l("%(code)s %(name)s is disabled.", code=account.code,
                                                       name=account.name))]
        amounts = {}
        for side in ("debit", "credit"):
            try:
                amounts[side] = parse_amount(raw.get(side), f"{prefix}.{side}", allow_negative=allow_negative)
            except ValidationFailed as exc:
                errors.update(exc.errors)
                amounts[side] = ZERO
        if f"{prefix}.debit" not in errors and f"{prefix}.credit" not in errors:
            if amounts["debit"] and amounts["credit"]:
                errors[f"{prefix}.credit"] = [str(_l("A line has a debit or a credit, not both."))]
            elif not amounts["debit"] and not amounts["credit"]:
                errors[f"{prefix}.debit"] = [str(_l("A line needs a debit or a credit amount."))]
        memo = str(raw.get("memo") or "").strip() or None
        if memo and len(memo) > 200:
            errors[f"{prefix}.memo"] = [str(_l("At most %(n)d characters.", n=200))]
        if len(errors) == line_errors and account is not None:
            parsed.append(LineInput(account, amounts["debit"], amounts["credit"], memo))
    if not errors:
        debit = sum((line.debit for line in parsed), ZERO)
        credit = sum((line.credit for line in parsed), ZERO)
        try:  # the total is stored (``Voucher.total``): it must fit an amount like each line
            check_total(debit, "lines")
            check_total(credit, "lines")
        except ValidationFailed as exc:
            errors.update(exc.errors)
            return []
        if debit != credit:
            raise UnbalancedVoucher({"lines": [str(_l(
                "Debits (%(debit)s) and credits (%(credit)s) do not balance; the difference is %(diff)s.",
                debit=debit, credit=credit, diff=debit - credit))]})
    return parsed


# --- periods --------------------------------------------------------------------------------


def is_closed(session: Session, book_id: int, period: int) -> bool:
    return bool(session.scalar(select(exists().where(
        Period.book_id == book_id, Period.period == period, Period.status == PeriodStatus.closed))))


def ensure_open(session: Session, book: LedgerBook, period: int, field: str = "date") -> None:
    """Raise unless *period* is an open month of *book* (not before its start, not closed)."""
    if period < book.start_period:
        raise ValidationFailed({field: [str(_l("The books start in %(start)s.",
                                               start=period_label(book.start_period)))]})
    if is_closed(session, book.id, period):
        raise PeriodClosed({field: [str(_l("The period %(period)s is closed.", period=period_label(period)))]})


# --- saving ---------------------------------------------------------------------------------


def insert_vouchers(session: Session, rows: list[tuple[dict, list[LineInput]]]) -> list[int]:
    """Insert many checked vouchers with their lines in three statements (vouchers, lines, audit
    rows) instead of an ORM flush each, and return their ids in order. Each row is the voucher's
    column values (``total`` included, numbers already taken under ``lock_book``) and its parsed
    lines. The rules (``parse_voucher``, ``ensure_open``) are the caller's to apply first. Does
    not commit."""
    if not rows:
        return []
    for row, _ in rows:  # the first version, approved as it is when inserted reviewed or posted
        row.setdefault("version", 1)
        row.setdefault("reviewed_version", row["version"] if row["state"] != VoucherState.draft else None)
    ids = list(session.scalars(insert(Voucher).returning(Voucher.id, sort_by_parameter_order=True),
                               [row for row, _ in rows]))
    session.execute(insert(VoucherLine), [
        {"voucher_id": voucher_id, "line_no": number, "book_id": row["book_id"], "period": row["period"],
         "posted": row["state"] == VoucherState.posted, "carry_forward": False, "account_id": line.account.id,
         "memo": line.memo, "debit": line.debit, "credit": line.credit}
        for voucher_id, (row, lines) in zip(ids, rows, strict=True) for number, line in enumerate(lines, start=1)])
    written = [{"id": voucher_id, **row} for voucher_id, (row, _) in zip(ids, rows, strict=True)]
    audit.record_created(session, Voucher, written,
                         [voucher_title(row["period"], row["word"], row["number"]) for row in written])
    return ids


def next_number(session: Session, book_id: int, period: int, word: VoucherWord) -> int:
    """The next free number of *word* in *period* of *book_id* (numbers deleted in between stay
    gaps until 整理凭证)."""
    return (session.scalar(select(func.max(Voucher.number)).where(
        Voucher.book_id == book_id, Voucher.period == period, Voucher.word == word)) or 0) + 1


def retrying(work):  # noqa: ANN001, ANN202
    """An entry point that writes the books: run *work* (which commits) again when a concurrent
    save took the number or held the lock; any other error is raised at once. Whatever *work*
    raises, its transaction is rolled back first, so a refusal writes nothing and releases the
    books lock it took."""
    def run(session: Session, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        for attempt in range(SAVE_ATTEMPTS):
            try:
                return work(session, *args, **kwargs)
            except (IntegrityError, OperationalError) as exc:
                session.rollback()
                transient = isinstance(exc, IntegrityError) and "uq_voucher_number" in str(exc.orig) \
                    or "locked" in str(exc.orig).lower() or "deadlock" in str(exc.orig).lower()
                if not transient or attempt == SAVE_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
            except BaseException:
                session.rollback()
                raise
        raise AssertionError("unreachable")
    run.__name__ = work.__name__
    run.__doc__ = work.__doc__
    return run


def write_lines(session: Session, voucher: Voucher, lines: list[LineInput], carry_forward: bool = False) -> None:
    """Replace the lines of *voucher* (posted when it is) and set its total. Does not commit."""
    voucher.lines.clear()
    session.flush()
    for number, line in enumerate(lines, start=1):
        voucher.lines.append(VoucherLine(
            line_no=number, book_id=voucher.book_id, period=voucher.period, account_id=line.account.id,
            memo=line.memo, debit=line.debit, credit=line.credit,
            posted=voucher.state == VoucherState.posted, carry_forward=carry_forward))
    voucher.total = sum((line.debit for line in lines), ZERO)


@retrying
def save_voucher(session: Session, client_id: int, data: dict, user_id: int | None,
                 voucher_id: int | None = None, before_commit: Callable[[Voucher], None] | None = None) -> Voucher:
    """Create a voucher, or replace draft *voucher_id* (whoever last changed a draft is its maker:
    *user_id* becomes it, for the four-eyes rule of ``review_voucher``), from *data*:
    ``{"date", "word", "summary", "attachments", "lines": [{"account_code", "debit", "credit", "memo"}]}``.

    An edit may name the version it started from (``"version"``); it is refused with ``Conflict``
    when the voucher changed since. *before_commit* runs with the saved voucher inside its
    transaction (to store the answer of an idempotent request). Raises ``NotFound`` (client
    without books, unknown voucher), ``ValidationFailed`` / ``UnbalancedVoucher`` (bad input),
    ``PeriodClosed`` and ``Conflict`` (the voucher is no longer a draft, or changed).
    Returns the saved voucher with its number.
    """
    if not isinstance(data, dict):
        raise ValidationFailed({"_": [str(_l("The voucher must be a JSON object."))]})
    book = books.get_book(session, client_id)
    errors: dict[str, list[str]] = {}
    parsed = parse_voucher(session, book.id, data, errors)
    if errors:
        raise ValidationFailed(errors)
    day, word, summary, attachments, lines = (parsed.day, parsed.word, parsed.summary, parsed.attachments,
                                              parsed.lines)
    assert day is not None and word is not None  # no errors: both parsed
    period = period_of(day)
    expected = parse_version(data.get("version")) if voucher_id is not None else None
    lock_book(session, book.id)
    # Under the lock: the period and the voucher are read as the last writer left them.
    ensure_open(session, book, period)
    voucher = None
    if voucher_id is not None:
        voucher = _fresh_voucher(session, voucher_id, client_id)
        if voucher.state != VoucherState.draft:
            raise Conflict({"_": [str(_l("Only a draft can be edited; un-review it first. Posted vouchers are "
                                         "corrected by a reversal."))]})
        if voucher.kind != VoucherKind.normal:
            raise Conflict({"_": [str(_l("A generated voucher cannot be edited."))]})
        _check_version(voucher, expected)
        ensure_open(session, book, voucher.period)
    if voucher is None:
        voucher = Voucher(book_id=book.id, client_id=client_id, maker_id=user_id, state=VoucherState.draft,
                          kind=VoucherKind.normal, number=next_number(session, book.id, period, word), version=1)
        session.add(voucher)
    else:
        # Four eyes: whoever last changed a draft is its maker, so the one who rewrote it cannot
        # also review (and post) it.
        voucher.maker_id = user_id
        voucher.version += 1
        if (voucher.period, voucher.word) != (period, word):
            voucher.number = next_number(session, book.id, period, word)  # the old number becomes a gap
    voucher.period, voucher.word, voucher.date = period, word, day
    voucher.summary, voucher.attachments = summary, attachments
    write_lines(session, voucher, lines)
    session.flush()
    if before_commit is not None:
        before_commit(voucher)
    session.commit()
    return voucher


def _voucher(session: Session, voucher_id: int, client_id: int | None = None) -> Voucher:
    voucher = session.get(Voucher, voucher_id)
    if voucher is None or (client_id is not None and voucher.client_id != client_id):
        raise NotFound({"voucher": [str(_l("No such voucher."))]})
    return voucher


def _fresh_voucher(session: Session, voucher_id: int, client_id: int | None = None) -> Voucher:
    """The voucher as committed now (its lines too), not as this session saw it earlier: call
    under the books lock."""
    voucher = session.get(Voucher, voucher_id, populate_existing=True)
    if voucher is None or (client_id is not None and voucher.client_id != client_id):
        raise NotFound({"voucher": [str(_l("No such voucher."))]})
    return voucher


def _locked_voucher(session: Session, voucher_id: int) -> Voucher:
    """Take the lock of the voucher's books, then read the voucher afresh. Raises ``NotFound``."""
    book_id = session.scalar(select(Voucher.book_id).where(Voucher.id == voucher_id))
    if book_id is None:
        raise NotFound({"voucher": [str(_l("No such voucher."))]})
    lock_book(session, book_id)
    return _fresh_voucher(session, voucher_id)


def parse_version(value: object) -> int | None:
    """The version a caller says it saw: absent (``None`` or ``""``) or a whole number from 1.
    Raises ``ValidationFailed``."""
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif text is not None and text.isascii() and text.isdigit() and len(text) <= 9:
        number = int(text)
    else:
        number = 0
    if not 1 <= number <= 2**31 - 1:
        raise ValidationFailed({"version": [str(_l("The version is a whole number from 1."))]})
    return number


def _check_version(voucher: Voucher, expected: int | None) -> None:
    if expected is not None and expected != voucher.version:
        raise Conflict({"version": [str(_l(
            "Voucher %(label)s was changed by someone else since you opened it (version %(seen)d, now "
            "%(now)d); reload it and check again.", label=voucher.label, seen=expected, now=voucher.version))]})


def get_voucher(session: Session, voucher_id: int) -> Voucher:
    """The voucher with its lines; raises ``NotFound``."""
    return _voucher(session, voucher_id)


# --- review and posting ---------------------------------------------------------------------


def _open_voucher(session: Session, voucher_id: int, expected_version: int | None = None) -> Voucher:
    """The voucher read under its books' lock, in an open period, at the version the caller saw."""
    voucher = _locked_voucher(session, voucher_id)
    ensure_open(session, voucher.book, voucher.period, field="_")
    _check_version(voucher, expected_version)
    return voucher


@retrying
def review_voucher(session: Session, voucher_id: int, user_id: int, expected_version: int | None = None) -> Voucher:
    """审核: draft → reviewed by *user_id*, who must not be the maker; the review approves the
    voucher's current version (or *expected_version*, which must still be it). Raises
    ``Conflict``."""
    voucher = _open_voucher(session, voucher_id, expected_version)
    if voucher.state != VoucherState.draft:
        raise Conflict({"_": [str(_l("Voucher %(label)s is not a draft.", label=voucher.label))]})
    if voucher.maker_id == user_id:
        raise Conflict({"_": [str(_l("The maker of a voucher cannot review it (制单人 ≠ 审核人)."))]})
    voucher.state, voucher.reviewer_id, voucher.reviewed_at = VoucherState.reviewed, user_id, utcnow()
    voucher.reviewed_version = voucher.version
    session.commit()
    return voucher


@retrying
def unreview_voucher(session: Session, voucher_id: int, user_id: int,  # noqa: ARG001
                     expected_version: int | None = None) -> Voucher:
    """反审核: reviewed → draft, until the voucher is posted. Raises ``Conflict``."""
    voucher = _open_voucher(session, voucher_id, expected_version)
    if voucher.state != VoucherState.reviewed:
        raise Conflict({"_": [str(_l("Only a reviewed voucher that is not posted can be un-reviewed."))]})
    voucher.state, voucher.reviewer_id, voucher.reviewed_at = VoucherState.draft, None, None
    voucher.reviewed_version = None
    session.commit()
    return voucher


@retrying
def post_voucher(session: Session, voucher_id: int, user_id: int, expected_version: int | None = None) -> Voucher:
    """记账: reviewed → posted, only at the version its review approved; the opening balances
    must balance. Raises ``Conflict``."""
    voucher = _open_voucher(session, voucher_id, expected_version)
    if voucher.state != VoucherState.reviewed:
        raise Conflict({"_": [str(_l("Only a reviewed voucher can be posted."))]})
    if voucher.reviewed_version != voucher.version:
        raise Conflict({"_": [str(_l("Voucher %(label)s changed after its review; it needs a new review.",
                                     label=voucher.label))]})
    check = books.opening_check(session, voucher.book_id)
    if not check.balanced:
        raise Conflict({"_": [str(_l("The opening balances do not balance (debit %(debit)s, credit %(credit)s); "
                                     "fix them before posting.", debit=check.debit, credit=check.credit))]})
    voucher.state, voucher.poster_id, voucher.posted_at = VoucherState.posted, user_id, utcnow()
    session.execute(update(VoucherLine).where(VoucherLine.voucher_id == voucher.id).values(posted=True)
                    .execution_options(synchronize_session=False))
    session.commit()
    session.expire(voucher, ["lines"])
    return voucher


@retrying
def reverse_voucher(session: Session, voucher_id: int, user_id: int | None, on_date: object = None) -> Voucher:
    """红字冲销: a new draft voucher with the original's lines negated, dated *on_date* (default:
    the original's date, which must then be in an open period). Only a posted, ordinary voucher that
    has not been reversed yet can be reversed. Raises ``Conflict``, ``PeriodClosed``."""
    day = parse_date(on_date) if on_date not in (None, "") else None
    original = _locked_voucher(session, voucher_id)
    if original.state != VoucherState.posted:
        raise Conflict({"_": [str(_l("Only a posted voucher is reversed; a draft is edited or deleted."))]})
    if original.kind != VoucherKind.normal:
        raise Conflict({"_": [str(_l("This voucher cannot be reversed."))]})
    if session.scalar(select(exists().where(Voucher.reversal_of_id == original.id))):
        raise Conflict({"_": [str(_l("Voucher %(label)s has already been reversed.", label=original.label))]})
    day = day or original.date
    period = period_of(day)
    ensure_open(session, original.book, period)
    lines = [LineInput(line.account, -line.debit, -line.credit, line.memo) for line in original.lines]
    reversal = Voucher(
        book_id=original.book_id, client_id=original.client_id, period=period, word=original.word, date=day,
        number=next_number(session, original.book_id, period, original.word),
        summary=str(_l("Reversal of %(period)s %(label)s: %(summary)s", period=period_label(original.period),
                       label=original.label, summary=original.summary))[:200],
        attachments=0, state=VoucherState.draft, kind=VoucherKind.reversal, reversal_of_id=original.id,
        maker_id=user_id, version=1)
    session.add(reversal)
    write_lines(session, reversal, lines)
    session.flush()
    session.commit()
    return reversal


# --- deleting and renumbering ---------------------------------------------------------------


@retrying
def delete_voucher(session: Session, voucher_id: int, expected_version: int | None = None) -> None:
    """Delete a draft; its number becomes a gap. Raises ``Conflict`` for reviewed or posted ones
    (or when it changed since *expected_version*)."""
    voucher = _open_voucher(session, voucher_id, expected_version)
    if voucher.state != VoucherState.draft:
        raise Conflict({"_": [str(_l("Only a draft can be deleted."))]})
    session.delete(voucher)
    session.commit()


def number_gaps(session: Session, book_id: int, period: int) -> dict[VoucherWord, list[int]]:
    """The missing numbers of each word in a period (断号)."""
    gaps: dict[VoucherWord, list[int]] = {}
    rows = session.execute(select(Voucher.word, Voucher.number).where(
        Voucher.book_id == book_id, Voucher.period == period).order_by(Voucher.word, Voucher.number)).all()
    seen: dict[VoucherWord, set[int]] = {}
    for word, number in rows:
        seen.setdefault(word, set()).add(number)
    for word, numbers in seen.items():
        missing = sorted(set(range(1, max(numbers) + 1)) - numbers)
        if missing:
            gaps[word] = missing
    return gaps


@retrying
def renumber_vouchers(session: Session, client_id: int, period: object) -> int:
    """整理凭证: close the number gaps of an open period, keeping the order; returns how many
    vouchers got a new number. Raises ``PeriodClosed``."""
    book = books.get_book(session, client_id)
    month = parse_period(period)
    lock_book(session, book.id)
    ensure_open(session, book, month, field="period")
    changed = 0
    offset = 1_000_000
    for word in VoucherWord:
        vouchers = list(session.scalars(select(Voucher).where(
            Voucher.book_id == book.id, Voucher.period == month, Voucher.word == word).order_by(Voucher.number)))
        moves = [(v, n) for n, v in enumerate(vouchers, start=1) if v.number != n]
        if not moves:
            continue
        for voucher, _ in moves:  # step aside first so the unique constraint holds after every row
            voucher.number += offset
        session.flush()
        for voucher, number in moves:
            voucher.number = number
        session.flush()
        changed += len(moves)
    session.commit()
    return changed
