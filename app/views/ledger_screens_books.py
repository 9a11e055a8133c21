"""Screens for setting up and closing a client's books: 账套, 科目, 期初余额, 结账.

Views stay thin: every change goes through ``app.services.books`` / ``app.services.periods`` and a
refusal is shown with the service's own message, nothing written. Pages take the client id as
``pk``; a client outside the user's scope (an Accountant's colleague's client) answers 404.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, select

from app.extensions import db
from app.models.crm import Client
from app.models.ledger import (
    Account,
    AccountCategory,
    Direction,
    LedgerBook,
    OpeningBalance,
    Period,
    PeriodStatus,
    Voucher,
)
from app.permissions import client_in_scope, scoped_accountant_id
from app.services import books, periods, vouchers
from app.services.accounting import next_period, period_label, period_of
from app.services.errors import DomainError, NotFound
from app.views.labels import ENUM_LABELS
from app.views.ledger_screens_common import (
    books_in_scope,
    field_errors,
    picked_client,
    row_id,
    scoped_book,
)

CATEGORY_LABELS = {category.value: label for category, label in ENUM_LABELS[AccountCategory].items()}
DIRECTION_LABELS = {direction.value: label for direction, label in ENUM_LABELS[Direction].items()}


class _PerBookView(BaseView):
    """A page per set of books: ``/`` shows a client picker, ``/<pk>`` the books of client *pk*."""

    template = ""

    def _picker(self):  # noqa: ANN202
        picked = picked_client()
        if picked is not None:
            return redirect(url_for(f"{self.endpoint}.list", pk=picked))
        return self.render_template("ledger/pick_client.html", clients=books_in_scope(), title=self.title,
                                    endpoint=f"{self.endpoint}.list")

    def _can(self, permission: str) -> bool:
        return self.appbuilder.sm.has_access(permission, self.class_permission_name)


# --- 账套 ----------------------------------------------------------------------------------


def book_rows(name: str = "") -> list[dict]:
    """Every set of books in the user's scope with its latest closed month and whether the
    opening balances balance; two GROUP BY subqueries, not a query per row."""
    opening = (select(OpeningBalance.book_id, func.sum(OpeningBalance.debit).label("debit"),
                      func.sum(OpeningBalance.credit).label("credit"))
               .group_by(OpeningBalance.book_id).subquery())
    closed = (select(Period.book_id, func.max(Period.period).label("latest"))
              .where(Period.status == PeriodStatus.closed).group_by(Period.book_id).subquery())
    stmt = (select(LedgerBook, Client.name, opening.c.debit, opening.c.credit, closed.c.latest)
            .join(Client, Client.id == LedgerBook.client_id)
            .outerjoin(opening, opening.c.book_id == LedgerBook.id)
            .outerjoin(closed, closed.c.book_id == LedgerBook.id)
            .order_by(Client.name))
    scope = scoped_accountant_id()
    if scope is not None:
        stmt = stmt.where(Client.accountant_id == scope)
    if name:
        stmt = stmt.where(Client.name.contains(name, autoescape=True))
    rows = []
    for book, client_name, debit, credit, latest in db.session.execute(stmt):
        debit, credit = Decimal(debit or 0), Decimal(credit or 0)
        rows.append({"client_id": book.client_id, "client": client_name, "start": period_label(book.start_period),
                     "latest_closed": period_label(latest) if latest else "", "balanced": debit == credit,
                     "debit": debit, "credit": credit})
    return rows


def clients_without_books() -> list[tuple[int, str]]:
    stmt = (select(Client.id, Client.name)
            .where(~exists().where(LedgerBook.client_id == Client.id)).order_by(Client.name))
    scope = scoped_accountant_id()
    if scope is not None:
        stmt = stmt.where(Client.accountant_id == scope)
    return [(row.id, row.name) for row in db.session.execute(stmt)]


class LedgerBookView(BaseView):
    """账套: the clients' books and opening new ones."""

    route_base = "/ledger/books"
    default_view = "list"

    @expose("/")
    @has_access
    def list(self):  # noqa: ANN201
        name = request.args.get("q", "").strip()[:100]
        return self.render_template("ledger/books.html", rows=book_rows(name), q=name,
                                    can_open=self.appbuilder.sm.has_access("can_open", "LedgerBookView"))

    @expose("/open", methods=["GET", "POST"])
    @has_access
    @permission_name("open")
    def open_books(self):  # noqa: ANN201
        """Open the books of a client in scope from a start month (``books.open_books``)."""
        errors: dict[str, list[str]] = {}
        form = {"client_id": request.values.get("client_id", ""), "start_period": request.form.get("start_period", "")}
        if request.method == "POST":
            client_id = row_id(form["client_id"])
            if client_id is None or not client_in_scope(client_id):
                errors["client_id"] = [str(_l("Choose a client."))]
            else:
                try:
                    books.open_books(db.session, client_id, form["start_period"])
                    flash(str(_l("Books opened.")), "success")
                    return redirect(url_for("LedgerBookView.list"))
                except DomainError as exc:
                    errors = field_errors(exc)
        return self.render_template("ledger/open_books.html", clients=clients_without_books(), form=form,
                                    errors=errors)


# --- 科目 ----------------------------------------------------------------------------------


class LedgerAccountView(_PerBookView):
    """The chart of accounts of one set of books: add sub-accounts, rename, disable, delete."""

    route_base = "/ledger/accounts"
    default_view = "list"
    title = _l("Chart of accounts")

    @expose("/")
    @expose("/<int:pk>")
    @has_access
    def list(self, pk: int | None = None):  # noqa: ANN201
        if pk is None:
            return self._picker()
        book = scoped_book(pk)
        accounts = list(db.session.scalars(select(Account).where(Account.book_id == book.id).order_by(Account.code)))
        return self.render_template("ledger/accounts.html", book=book, accounts=accounts, pk=pk,
                                    categories=CATEGORY_LABELS, directions=DIRECTION_LABELS,
                                    can_edit=self._can("can_edit"), form=request.args)

    def _account(self, book: LedgerBook) -> Account:
        account_id = row_id(request.form.get("account_id"))
        account = db.session.get(Account, account_id) if account_id is not None else None
        if account is None or account.book_id != book.id:
            raise NotFound({"account": [str(_l("No such account."))]})
        return account

    def _back(self, pk: int):  # noqa: ANN202
        return redirect(url_for("LedgerAccountView.list", pk=pk))

    @expose("/<int:pk>/add", methods=["POST"])
    @has_access
    @permission_name("edit")
    def add(self, pk: int):  # noqa: ANN201
        book = scoped_book(pk)
        # A refusal goes back to the page with its message (app.errors).
        account = books.add_sub_account(db.session, book.id, request.form.get("parent_code", ""),
                                        request.form.get("code", ""), request.form.get("name", ""))
        flash(str(_l("Account %(code)s %(name)s added.", code=account.code, name=account.name)), "success")
        return self._back(pk)

    @expose("/<int:pk>/rename", methods=["POST"])
    @has_access
    @permission_name("edit")
    def rename(self, pk: int):  # noqa: ANN201
        book = scoped_book(pk)
        # A refusal goes back to the page with its message (app.errors).
        account = books.rename_account(db.session, self._account(book).id, request.form.get("name", ""))
        flash(str(_l("Account %(code)s renamed.", code=account.code)), "success")
        return self._back(pk)

    @expose("/<int:pk>/active", methods=["POST"])
    @has_access
    @permission_name("edit")
    def set_active(self, pk: int):  # noqa: ANN201
        book = scoped_book(pk)
        active = request.form.get("active") == "1"
        # A refusal goes back to the page with its message (app.errors).
        account = books.set_account_active(db.session, self._account(book).id, active)
        message = _l("Account %(code)s enabled.", code=account.code) if active \
            else _l("Account %(code)s disabled.", code=account.code)
        flash(str(message), "success")
        return self._back(pk)

    @expose("/<int:pk>/delete", methods=["POST"])
    @has_access
    @permission_name("edit")
    def delete(self, pk: int):  # noqa: ANN201
        book = scoped_book(pk)
        # A refusal goes back to the page with its message (app.errors).
        account = self._account(book)
        code = account.code
        books.delete_account(db.session, account.id)
        flash(str(_l("Account %(code)s deleted.", code=code)), "success")
        return self._back(pk)


# --- 期初余额 -------------------------------------------------------------------------------


class OpeningBalanceView(_PerBookView):
    """期初余额: one page of leaf accounts with debit and credit inputs and the trial balance."""

    route_base = "/ledger/opening"
    default_view = "list"
    title = _l("Opening balances")

    def _render(self, book: LedgerBook, pk: int, values: dict | None = None, errors: dict | None = None):  # noqa: ANN202
        leaves = list(db.session.scalars(select(Account).where(
            Account.book_id == book.id, Account.is_leaf.is_(True)).order_by(Account.code)))
        saved = {row.account_id: row for row in db.session.scalars(
            select(OpeningBalance).where(OpeningBalance.book_id == book.id))}
        rows = []
        for account in leaves:
            row = saved.get(account.id)
            debit = (values or {}).get(f"debit_{account.code}", str(row.debit) if row and row.debit else "")
            credit = (values or {}).get(f"credit_{account.code}", str(row.credit) if row and row.credit else "")
            rows.append({"account": account, "debit": debit, "credit": credit})
        locked = books.opening_locked(db.session, book.id)
        return self.render_template("ledger/opening.html", book=book, pk=pk, rows=rows, errors=errors or {},
                                    check=books.opening_check(db.session, book.id), locked=locked,
                                    can_edit=self._can("can_edit") and not locked,
                                    categories=CATEGORY_LABELS, directions=DIRECTION_LABELS)

    @expose("/")
    @expose("/<int:pk>")
    @has_access
    def list(self, pk: int | None = None):  # noqa: ANN201
        if pk is None:
            return self._picker()
        return self._render(scoped_book(pk), pk)

    @expose("/<int:pk>/save", methods=["POST"])
    @has_access
    @permission_name("edit")
    def save(self, pk: int):  # noqa: ANN201
        """Save the page's rows through ``books.set_opening_balances``: all or nothing; a refused
        row is shown with its message and the typed values are kept."""
        book = scoped_book(pk)
        leaves = db.session.scalars(select(Account.code).where(
            Account.book_id == book.id, Account.is_leaf.is_(True)).order_by(Account.code))
        amounts = {code: (request.form.get(f"debit_{code}") or "", request.form.get(f"credit_{code}") or "")
                   for code in leaves if f"debit_{code}" in request.form or f"credit_{code}" in request.form}
        try:
            changed = books.set_opening_balances(db.session, book.id, amounts)
        except DomainError as exc:
            errors: dict[str, list[str]] = {}
            for field, messages in field_errors(exc).items():
                code, _, name = field.partition(".")
                key = "_" if field == "_" or code == "total" else f"{name}_{code}" if name in ("debit", "credit") \
                    else f"row_{code}"
                errors.setdefault(key, []).extend(messages)
            flash(str(_l("The opening balances were not saved; see the marked rows.")), "danger")
            return self._render(book, pk, values=request.form, errors=errors)
        flash(str(_l("%(n)d opening balance(s) saved.", n=changed)), "success")
        return redirect(url_for("OpeningBalanceView.list", pk=pk))


# --- 结账 ----------------------------------------------------------------------------------


class LedgerPeriodView(_PerBookView):
    """结账: the months of one set of books with their status; close, reopen, renumber."""

    route_base = "/ledger/periods"
    default_view = "list"
    title = _l("Periods")

    @expose("/")
    @expose("/<int:pk>")
    @has_access
    def list(self, pk: int | None = None):  # noqa: ANN201
        if pk is None:
            return self._picker()
        book = scoped_book(pk)
        closed = set(periods.closed_periods(db.session, book.id))
        latest = max(closed) if closed else None
        last_voucher = db.session.scalar(select(func.max(Voucher.period)).where(Voucher.book_id == book.id))
        end = max(period_of(today()), last_voucher or 0, book.start_period)
        counts = dict(db.session.execute(select(Voucher.period, func.count()).where(
            Voucher.book_id == book.id).group_by(Voucher.period)).all())
        months, month = [], book.start_period
        while month <= end:
            months.append({"period": month, "label": period_label(month), "closed": month in closed,
                           "vouchers": counts.get(month, 0)})
            month = next_period(month)
        closable = next_period(latest) if latest else book.start_period
        problems = periods.close_problems(db.session, book, closable) if closable <= end else []
        return self.render_template(
            "ledger/periods.html", book=book, pk=pk, months=list(reversed(months)), latest=latest,
            closable=closable, problems=problems, can_close=self._can("can_close"),
            can_reopen=self._can("can_reopen"), can_renumber=self._can("can_renumber"),
            can_print=self.appbuilder.sm.has_access("can_print", "VoucherModelView"))

    def _period(self) -> str:
        return request.form.get("period", "")

    def _back(self, pk: int):  # noqa: ANN202
        return redirect(url_for("LedgerPeriodView.list", pk=pk))

    @expose("/<int:pk>/close", methods=["POST"])
    @has_access
    @permission_name("close")
    def close(self, pk: int):  # noqa: ANN201
        scoped_book(pk)
        # A refusal goes back to the page with its message (app.errors).
        result = periods.close_period(db.session, pk, self._period(), self.appbuilder.sm.current_user.id)
        flash(str(_l("Period %(period)s closed.", period=period_label(result.period))), "success")
        return self._back(pk)

    @expose("/<int:pk>/reopen", methods=["POST"])
    @has_access
    @permission_name("reopen")
    def reopen(self, pk: int):  # noqa: ANN201
        scoped_book(pk)
        # A refusal goes back to the page with its message (app.errors).
        month = periods.reopen_period(db.session, pk, self._period(), self.appbuilder.sm.current_user.id)
        flash(str(_l("Period %(period)s reopened.", period=period_label(month))), "success")
        return self._back(pk)

    @expose("/<int:pk>/renumber", methods=["POST"])
    @has_access
    @permission_name("renumber")
    def renumber(self, pk: int):  # noqa: ANN201
        """整理凭证 of one month (``vouchers.renumber_vouchers``)."""
        scoped_book(pk)
        # A refusal goes back to the page with its message (app.errors).
        changed = vouchers.renumber_vouchers(db.session, pk, self._period())
        flash(str(_l("%(n)d voucher(s) renumbered.", n=changed)), "success")
        return self._back(pk)


def today() -> date:
    """Today in the display time zone (the agency's month, not the server's UTC date)."""
    return datetime.now(ZoneInfo(current_app.config.get("TZ_DISPLAY", "Asia/Shanghai"))).date()
