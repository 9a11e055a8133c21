"""Setting up a client's books (建账): the chart of accounts and opening balances (期初余额).

Rules:
- One set of books per client, starting at a chosen month; the chart of accounts is seeded from
  the standard chart of 小企业会计准则 (``app/data/accounting/chart_of_accounts_small_business.csv``)
  and the standard tax sub-accounts (``tax_sub_accounts_small_business.csv``): 2221 应交税费 →
  应交增值税 (进项税额 / 销项税额 / 转出未交增值税), 未交增值税, 应交城市维护建设税 … and 5403
  税金及附加 by tax, which the income statement's lines 4–10 read and the tax worksheet uses.
- A sub-account's code is its parent's code plus two digits (1002 → 100201); only leaf accounts
  take voucher lines and opening balances. Giving an account with entries its first sub-account
  moves those entries to the sub-account, so balances never sit on a non-leaf account.
- An account with entries (lines or an opening balance) or with sub-accounts cannot be deleted;
  first-level accounts of the standard chart cannot be deleted at all (disable them instead).
  An account with a balance or with active sub-accounts cannot be disabled.
- Opening balances belong to the start month and can be changed until the first voucher is
  posted; posting needs them balanced (total debit = total credit). Each side's total is an
  amount too (at most 9,999,999,999,999,999.99).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from app.models.crm import Client
from app.models.ledger import (
    Account,
    AccountCategory,
    Direction,
    LedgerBook,
    OpeningBalance,
    Voucher,
    VoucherLine,
    VoucherState,
)
from app.services.accounting import ZERO, check_total, exact_sums, parse_amount, parse_period
from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.inputs import ascii_digits
from app.services.locking import write_lock

DATA = Path(__file__).resolve().parent.parent / "data" / "accounting"
CHART_CSV = DATA / "chart_of_accounts_small_business.csv"
TAX_SUB_ACCOUNTS_CSV = DATA / "tax_sub_accounts_small_business.csv"
MAX_CODE_LENGTH = 20


@dataclass(frozen=True)
class StandardAccount:
    code: str
    name: str
    category: AccountCategory
    normal_balance: Direction


@lru_cache(maxsize=1)
def standard_chart() -> tuple[StandardAccount, ...]:
    """The first-level accounts of 小企业会计准则, read from the reference CSV."""
    with CHART_CSV.open(encoding="utf-8") as handle:
        return tuple(
            StandardAccount(row["code"], row["name"], AccountCategory(row["category"]),
                            Direction(row["normal_balance"]))
            for row in csv.DictReader(handle)
        )


@dataclass(frozen=True)
class StandardSubAccount:
    """A sub-account every set of books opens with; *role* names what it holds for the tax
    worksheet and the accrual voucher (``vat_input``, ``urban_maintenance_payable``,
    ``urban_maintenance_expense`` ...: see the CSV; each role is one account)."""

    code: str
    name: str
    role: str

    @property
    def parent_code(self) -> str:
        return self.code[:-2]


@lru_cache(maxsize=1)
def standard_sub_accounts() -> tuple[StandardSubAccount, ...]:
    """The standard tax sub-accounts under 2221 and 5403, parents before children."""
    with TAX_SUB_ACCOUNTS_CSV.open(encoding="utf-8") as handle:
        rows = tuple(StandardSubAccount(row["code"], row["name"], row["role"]) for row in csv.DictReader(handle))
    return tuple(sorted(rows, key=lambda row: (len(row.code), row.code)))


def _add_standard_sub_accounts(session: Session, book_id: int) -> None:
    """Give new books the standard sub-accounts (their parents have no entries yet). Does not commit."""
    accounts = {a.code: a for a in session.scalars(select(Account).where(Account.book_id == book_id))}
    for sub in standard_sub_accounts():
        parent = accounts[sub.parent_code]
        child = Account(book_id=book_id, code=sub.code, name=sub.name, category=parent.category,
                        normal_balance=parent.normal_balance, parent=parent, level=parent.level + 1,
                        is_leaf=True, active=True)
        parent.is_leaf = False
        session.add(child)
        accounts[sub.code] = child
    session.flush()


# --- books ----------------------------------------------------------------------------------


def get_book(session: Session, client_id: int) -> LedgerBook:
    """The books of *client_id*; raises ``NotFound`` when the client has none yet."""
    book = session.scalar(select(LedgerBook).where(LedgerBook.client_id == client_id))
    if book is None:
        raise NotFound({"client_id": [str(_l("This client has no books yet."))]})
    return book


def open_books(session: Session, client_id: int, start_period: object) -> LedgerBook:
    """Open the books of *client_id* from *start_period* (``"YYYY-MM"``) with the standard chart
    and the standard tax sub-accounts.

    Raises ``NotFound`` for an unknown client, ``ValidationFailed`` for a bad period and
    ``Conflict`` when the client already has books. Commits.
    """
    period = parse_period(start_period, "start_period")
    if session.get(Client, client_id) is None:
        raise NotFound({"client_id": [str(_l("No such client."))]})
    if session.scalar(select(LedgerBook.id).where(LedgerBook.client_id == client_id)) is not None:
        raise Conflict({"client_id": [str(_l("This client already has books."))]})
    book = LedgerBook(client_id=client_id, start_period=period)
    session.add(book)
    session.flush()
    session.add_all(
        Account(book_id=book.id, code=a.code, name=a.name, category=a.category, normal_balance=a.normal_balance,
                level=1, is_leaf=True, active=True)
        for a in standard_chart()
    )
    session.flush()
    _add_standard_sub_accounts(session, book.id)
    session.commit()
    return book


# --- accounts -------------------------------------------------------------------------------


def account_by_code(session: Session, book_id: int, code: str) -> Account | None:
    return session.scalar(select(Account).where(Account.book_id == book_id, Account.code == str(code).strip()))


def _has_entries(session: Session, account_id: int) -> bool:
    return bool(session.scalar(select(
        exists().where(VoucherLine.account_id == account_id)
        | exists().where(OpeningBalance.account_id == account_id,
                         (OpeningBalance.debit != 0) | (OpeningBalance.credit != 0)))))


def opening_locked(session: Session, book_id: int) -> bool:
    """Opening balances are fixed once a voucher of the books is posted."""
    return bool(session.scalar(select(exists().where(
        Voucher.book_id == book_id, Voucher.state == VoucherState.posted))))


def add_sub_account(session: Session, book_id: int, parent_code: str, code: str, name: str) -> Account:
    """Add sub-account *code* (parent's code + 2 digits) named *name* under *parent_code*.

    When the parent has entries and no sub-account yet, its voucher lines and opening balance
    move to the new account. Raises ``ValidationFailed`` (bad code or name, disabled parent),
    ``NotFound`` (no such parent) or ``Conflict`` (code taken). Commits.
    """
    code, name = str(code or "").strip(), str(name or "").strip()
    parent = account_by_code(session, book_id, parent_code)
    if parent is None:
        raise NotFound({"parent_code": [str(_l("No account with this code."))]})
    errors: dict[str, list[str]] = {}
    if not (ascii_digits(code) and len(code) == len(parent.code) + 2 and code.startswith(parent.code)):
        errors["code"] = [str(_l("A sub-account's code is its parent's code followed by two digits (e.g. "
                                 "%(example)s).", example=parent.code + "01"))]
    elif code.endswith("00"):
        errors["code"] = [str(_l("The two digits of a sub-account run from 01 to 99."))]
    elif len(code) > MAX_CODE_LENGTH:
        errors["code"] = [str(_l("Account codes have at most %(n)d digits.", n=MAX_CODE_LENGTH))]
    if not name:
        errors["name"] = [str(_l("The account needs a name."))]
    elif len(name) > 100:
        errors["name"] = [str(_l("At most %(n)d characters.", n=100))]
    if not parent.active:
        errors["parent_code"] = [str(_l("The parent account is disabled."))]
    if errors:
        raise ValidationFailed(errors)
    if account_by_code(session, book_id, code) is not None:
        raise Conflict({"code": [str(_l("An account with this code already exists."))]})
    child = Account(book_id=book_id, code=code, name=name, category=parent.category,
                    normal_balance=parent.normal_balance, parent_id=parent.id, level=parent.level + 1,
                    is_leaf=True, active=True)
    session.add(child)
    session.flush()
    if parent.is_leaf:
        # The parent's entries move to its first sub-account: balances stay on leaves.
        session.execute(update(VoucherLine).where(VoucherLine.account_id == parent.id)
                        .values(account_id=child.id).execution_options(synchronize_session=False))
        session.execute(update(OpeningBalance).where(OpeningBalance.account_id == parent.id)
                        .values(account_id=child.id).execution_options(synchronize_session=False))
        parent.is_leaf = False
    session.commit()
    return child


def rename_account(session: Session, account_id: int, name: str) -> Account:
    """Rename a sub-account (standard first-level names stay). Raises ``ValidationFailed``."""
    account = _account(session, account_id)
    name = str(name or "").strip()
    if account.level == 1:
        raise ValidationFailed({"name": [str(_l("First-level account names are set by the standard."))]})
    if not name or len(name) > 100:
        raise ValidationFailed({"name": [str(_l("The account needs a name of at most 100 characters."))]})
    account.name = name
    session.commit()
    return account


def _account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound({"account": [str(_l("No such account."))]})
    return account


@exact_sums
def account_balance(session: Session, account: Account) -> Decimal:
    """Debit-minus-credit of the account and its sub-accounts: opening plus all posted lines."""
    like = account.code + "%"
    ids = select(Account.id).where(Account.book_id == account.book_id, Account.code.like(like))
    opening = session.scalar(select(func.coalesce(func.sum(OpeningBalance.debit - OpeningBalance.credit), 0))
                             .where(OpeningBalance.account_id.in_(ids))) or ZERO
    moved = session.scalar(select(func.coalesce(func.sum(VoucherLine.debit - VoucherLine.credit), 0))
                           .where(VoucherLine.account_id.in_(ids))) or ZERO
    return Decimal(opening) + Decimal(moved)


def set_account_active(session: Session, account_id: int, active: bool) -> Account:
    """Enable or disable an account. Disabling is refused (``Conflict``) while the account has a
    balance (including unposted lines) or an active sub-account; enabling a sub-account of a
    disabled parent is refused too. Commits."""
    account = _account(session, account_id)
    if not active:
        if session.scalar(select(exists().where(Account.parent_id == account.id, Account.active.is_(True)))):
            raise Conflict({"active": [str(_l("Disable its sub-accounts first."))]})
        if account_balance(session, account) != 0:
            raise Conflict({"active": [str(_l("An account with a balance cannot be disabled."))]})
    elif account.parent is not None and not account.parent.active:
        raise Conflict({"active": [str(_l("The parent account is disabled."))]})
    account.active = bool(active)
    session.commit()
    return account


def delete_account(session: Session, account_id: int) -> None:
    """Delete a sub-account without entries or sub-accounts; its parent becomes a leaf again
    when it was the last one. Raises ``Conflict`` otherwise. Commits."""
    account = _account(session, account_id)
    if account.level == 1:
        raise Conflict({"account": [str(_l(
            "Accounts of the standard chart cannot be deleted; disable them instead."))]})
    if session.scalar(select(exists().where(Account.parent_id == account.id))):
        raise Conflict({"account": [str(_l("Delete its sub-accounts first."))]})
    if _has_entries(session, account.id):
        raise Conflict({"account": [str(_l("An account with postings or an opening balance cannot be deleted."))]})
    parent = account.parent
    session.query(OpeningBalance).filter(OpeningBalance.account_id == account.id).delete()
    session.delete(account)
    session.flush()
    if parent is not None and not session.scalar(select(exists().where(Account.parent_id == parent.id))):
        parent.is_leaf = True
    session.commit()


# --- opening balances -----------------------------------------------------------------------


def lock_book(session: Session, book_id: int) -> None:
    """Serialise the writers of one set of books (voucher numbers, voucher states, closes, opening
    balances): a row lock on PostgreSQL, the write lock on SQLite (taken by the first write of the
    transaction). Reads made after it see what every other writer committed."""
    write_lock(session, LedgerBook, LedgerBook.id, book_id, LedgerBook.updated_at)


def set_opening_balance(session: Session, book_id: int, account_code: str, debit: object = None,
                        credit: object = None) -> OpeningBalance | None:
    """Set the opening balance of leaf account *account_code*: a debit or a credit (or neither,
    which clears it). Refused once a voucher of the book is posted (``Conflict``), for an unknown
    account (``NotFound``), a non-leaf or disabled account, both sides, or a bad amount
    (``ValidationFailed``, by field). Commits."""
    if account_by_code(session, book_id, account_code) is None:
        raise NotFound({"account_code": [str(_l("No account with this code."))]})
    try:
        set_opening_balances(session, book_id, {account_code: (debit, credit)})
    except ValidationFailed as exc:
        raise type(exc)({field.partition(".")[2]: messages for field, messages in exc.errors.items()}) from None
    return session.scalar(select(OpeningBalance).join(Account).where(
        OpeningBalance.book_id == book_id, Account.code == str(account_code).strip()))


def set_opening_balances(session: Session, book_id: int, amounts: dict[str, tuple[object, object]]) -> int:
    """Set several opening balances at once, all or nothing: *amounts* maps a leaf account's code
    to its (debit, credit), one of them blank or zero (both blank clears the balance). Rows equal
    to what is stored are left alone.

    Every refused row is reported in one ``ValidationFailed`` under ``"<code>.<field>"``
    (``1001.debit``, ``1122.account_code``), and a side whose total would pass the largest amount
    under ``"total.debit"`` / ``"total.credit"``; a change once a voucher of the book is posted raises
    ``Conflict`` (``"_"``). Either way nothing is written. The check runs under the books lock, so
    no voucher is posted in between. Returns how many balances changed. Commits once.
    """
    errors: dict[str, list[str]] = {}
    codes = [str(code).strip() for code in amounts]
    accounts = {a.code: a for a in session.scalars(select(Account).where(
        Account.book_id == book_id, Account.code.in_(codes)))}
    lock_book(session, book_id)
    stored = {row.account_id: row for row in session.scalars(
        select(OpeningBalance).where(OpeningBalance.book_id == book_id))}
    changes: list[tuple[Account, Decimal, Decimal]] = []
    for code, (debit, credit) in amounts.items():
        code = str(code).strip()
        account = accounts.get(code)
        if account is None:
            errors[f"{code}.account_code"] = [str(_l("No account with this code."))]
            continue
        if not account.is_leaf:
            errors[f"{code}.account_code"] = [str(_l("Only accounts without sub-accounts take amounts."))]
            continue
        parsed = {}
        for side, value in (("debit", debit), ("credit", credit)):
            try:
                parsed[side] = parse_amount(value, f"{code}.{side}")
            except ValidationFailed as exc:
                errors.update(exc.errors)
        if len(parsed) < 2:
            continue
        if parsed["debit"] and parsed["credit"]:
            errors[f"{code}.credit"] = [str(_l("Enter a debit or a credit, not both."))]
            continue
        row = stored.get(account.id)
        if (row.debit if row else ZERO, row.credit if row else ZERO) == (parsed["debit"], parsed["credit"]):
            continue
        if not account.active:
            errors[f"{code}.account_code"] = [str(_l("This account is disabled."))]
            continue
        changes.append((account, parsed["debit"], parsed["credit"]))
    if changes and not errors:  # each side's total stays an amount (the trial balance's opening totals)
        changed = {account.id: (debit, credit) for account, debit, credit in changes}
        for index, side in enumerate(("debit", "credit")):
            total = sum((getattr(row, side) for account_id, row in stored.items() if account_id not in changed), ZERO)
            try:
                check_total(total + sum((amounts[index] for amounts in changed.values()), ZERO), f"total.{side}")
            except ValidationFailed as exc:
                errors.update(exc.errors)
    if (changes or errors) and opening_locked(session, book_id):
        session.rollback()
        raise Conflict({"_": [str(_l("Opening balances cannot change once a voucher has been posted."))]})
    if errors:
        session.rollback()
        raise ValidationFailed(errors)
    for account, debit_amount, credit_amount in changes:
        row = stored.get(account.id)
        if not debit_amount and not credit_amount:
            session.delete(row)
            continue
        if row is None:
            row = OpeningBalance(book_id=book_id, account_id=account.id)
            session.add(row)
        row.debit, row.credit = debit_amount, credit_amount
    session.commit()
    return len(changes)


@dataclass(frozen=True)
class OpeningCheck:
    debit: Decimal
    credit: Decimal

    @property
    def balanced(self) -> bool:
        return self.debit == self.credit

    @property
    def difference(self) -> Decimal:
        return self.debit - self.credit


def opening_check(session: Session, book_id: int) -> OpeningCheck:
    """Total debit and credit of the opening balances (试算平衡)."""
    debit, credit = session.execute(
        select(func.coalesce(func.sum(OpeningBalance.debit), 0), func.coalesce(func.sum(OpeningBalance.credit), 0))
        .where(OpeningBalance.book_id == book_id)).one()
    return OpeningCheck(Decimal(debit).quantize(Decimal("0.01")), Decimal(credit).quantize(Decimal("0.01")))
