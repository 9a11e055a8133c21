"""Voucher screens (记账凭证): list with filters and bulk review/post, entry form, show, print.

Every change goes through ``app.services.vouchers``; a refusal re-renders the form with the
user's input and the service's messages by field, or is flashed, and nothing is written.
A voucher of a client outside the user's scope answers 404.
"""

from __future__ import annotations

from decimal import Decimal

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.actions import action as bulk_action
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import false, or_, select
from sqlalchemy.orm import joinedload, selectinload
from wtforms import SelectField, StringField

from app.extensions import db
from app.models.ledger import Account, LedgerBook, Voucher, VoucherKind, VoucherLine, VoucherState, VoucherWord
from app.permissions import client_in_scope, current_user_id
from app.services import vouchers as svc
from app.services.accounting import ZERO, parse_amount, parse_period, period_label
from app.services.errors import DomainError
from app.views.common import DeskModelView, EagerInterface, format_datetime, scope_filters
from app.views.current_client import current_client, forget, remember
from app.views.labels import ENUM_LABELS
from app.views.ledger_screens_common import (
    books_in_scope,
    field_errors,
    picked_client,
    row_id,
    scoped_book,
    scoped_voucher,
)
from app.views.ledger_screens_print import amount_in_words
from app.views.pdf_links import voucher_pdf_url

STATE_LABELS = ENUM_LABELS[VoucherState]
KIND_LABELS = {**ENUM_LABELS[VoucherKind], VoucherKind.normal: ""}  # only the special kinds are marked
MAX_FORM_ROWS = 500


def _enum_text(labels: dict):  # noqa: ANN202
    def _format(value) -> str:  # noqa: ANN001
        if value is None or value == "":
            return ""
        for member, label in labels.items():
            if value in (member, member.name, member.value, str(member)):
                return str(label)
        return str(getattr(value, "value", value))
    return _format


def person(user) -> str:  # noqa: ANN001
    """A user as shown on vouchers: full name, else the login name ("-" is the placeholder of an
    empty last name)."""
    if user is None:
        return ""
    last = "" if (user.last_name or "").strip() == "-" else (user.last_name or "")
    return f"{user.first_name or ''} {last}".strip() or user.username


class FilterCurrentClient(BaseFilter):
    """The current client's vouchers (当前账套), or every client's when none is chosen."""

    name = _l("Current books")
    arg_name = "cur"

    def apply(self, query, value):  # noqa: ANN001, ANN201, ARG002
        current = current_client()
        return query if current is None else query.filter(Voucher.client_id == current)


class FilterPeriod(BaseFilter):
    """The voucher's month, typed as ``YYYY-MM``; a malformed month matches nothing."""

    name = _l("Is (YYYY-MM)")
    arg_name = "prd"

    def apply(self, query, value):  # noqa: ANN001, ANN201
        try:
            month = parse_period(value)
        except DomainError:
            return query.filter(false())
        return query.filter(Voucher.period == month)


class FilterAccount(BaseFilter):
    """Vouchers with a line on an account whose code starts with, or whose name contains, the text."""

    name = _l("Has a line on (code or name)")
    arg_name = "acc"

    def apply(self, query, value):  # noqa: ANN001, ANN201
        text = str(value or "").strip()[:100]
        if not text:
            return query
        lines = (select(VoucherLine.voucher_id).join(Account, Account.id == VoucherLine.account_id)
                 .where(or_(Account.code.startswith(text, autoescape=True),
                            Account.name.contains(text, autoescape=True))))
        return query.filter(Voucher.id.in_(lines))


class _FilterAmount(BaseFilter):
    """The voucher total compared with an amount; text that is not an amount matches nothing
    (rather than reaching the database as a string compared with a number)."""

    compare = staticmethod(lambda column, amount: column == amount)

    def apply(self, query, value):  # noqa: ANN001, ANN201
        try:
            amount = parse_amount(value, "total", allow_negative=True)
        except DomainError:
            return query.filter(false())
        return query.filter(self.compare(Voucher.total, amount))


class FilterAmountEqual(_FilterAmount):
    name = _l("Equal to")
    arg_name = "eq"


class FilterAmountGreater(_FilterAmount):
    name = _l("Greater than")
    arg_name = "gt"
    compare = staticmethod(lambda column, amount: column > amount)


class FilterAmountSmaller(_FilterAmount):
    name = _l("Smaller than")
    arg_name = "lt"
    compare = staticmethod(lambda column, amount: column < amount)


def form_data() -> tuple[int | None, dict, list[str]]:
    """The entry form as ``save_voucher`` data, plus what the user typed in each account box.

    Rows left entirely blank are dropped; an account box holds ``"1002 银行存款"`` or a bare code.
    """
    form = request.form
    columns = [form.getlist(name)[:MAX_FORM_ROWS] for name in ("account_code", "debit", "credit", "memo")]
    lines, typed = [], []
    for index in range(max(len(c) for c in columns)):
        code, debit, credit, memo = (c[index].strip() if index < len(c) else "" for c in columns)
        if not (code or debit or credit or memo):
            continue
        lines.append({"account_code": code.split()[0] if code else "", "debit": debit, "credit": credit,
                      "memo": memo})
        typed.append(code)
    data = {"date": form.get("date", ""), "word": form.get("word", ""), "summary": form.get("summary", ""),
            "attachments": form.get("attachments", "0"), "lines": lines}
    return row_id(form.get("client_id")), data, typed


class VoucherModelView(DeskModelView):
    """记账凭证: scoped list with filters, CSV export and bulk review/post; entry and edit through
    the service; single-voucher review, un-review, post, reverse, delete and print."""

    route_base = "/ledger/vouchers"
    datamodel = EagerInterface(Voucher, options=(joinedload(Voucher.client), joinedload(Voucher.maker),
                                                   joinedload(Voucher.reviewer)))
    base_filters = [*scope_filters(), ["client_id", FilterCurrentClient, lambda: None]]
    base_order = ("date", "desc")
    list_title = _l("Vouchers")
    list_columns = ["client", "period", "label", "date", "summary", "total", "state", "maker", "reviewer"]
    csv_columns = ["client", "period", "label", "date", "summary", "attachments", "total", "state", "maker",
                   "reviewer", "poster"]
    search_columns = ["client", "period", "word", "state", "maker", "lines", "total", "date", "summary"]
    search_form_extra_fields = {
        "lines": StringField(lazy_pgettext("ledger", "Account")),
        "state": SelectField(_l("State"), choices=[(state.name, label) for state, label in STATE_LABELS.items()]),
        "word": SelectField(_l("Word"), choices=[(word.name, word.value) for word in VoucherWord]),
    }
    search_form_query_rel_fields = {"client": scope_filters()}
    label_columns = {"client": _l("Client"), "period": _l("Period"), "label": _l("Voucher"), "word": _l("Word"),
                     "date": _l("Date"), "summary": _l("Summary"), "total": _l("Amount"), "state": _l("State"),
                     "maker": _l("Maker"), "reviewer": _l("Reviewer"), "poster": _l("Poster"),
                     "attachments": _l("Attachments"), "lines": lazy_pgettext("ledger", "Account")}
    formatters_columns = {"period": period_label, "state": _enum_text(STATE_LABELS), "maker": person,
                          "reviewer": person, "poster": person, "posted_at": format_datetime}
    method_permission_name = {"bulk_review": "review", "bulk_post": "post"}
    form_template = "ledger/voucher_form.html"
    list_template = "ledger/voucher_list.html"

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        # The search form offers these filters and the query arguments are read against all
        # filters: both get the month typed as YYYY-MM, the account by code or name and amounts
        # parsed as Decimal.
        for filters in (self._filters.get_search_filters(), self._filters._all_filters):
            filters["period"] = [FilterPeriod("period", self.datamodel)]
            filters["lines"] = [FilterAccount("lines", self.datamodel)]
            filters["total"] = [flt("total", self.datamodel) for flt in (
                FilterAmountEqual, FilterAmountGreater, FilterAmountSmaller)]

    # --- the list, inside the current set of books ----------------------------------------

    @expose("/list/")
    @has_access
    def list(self):  # noqa: ANN201
        """The vouchers of the current client (当前账套) when one is chosen; a client filter in
        the query (``_flt_0_client=7``) makes that client the current one, ``books=all`` clears
        the choice (the desk's links); without a current client, every client's vouchers in the
        user's scope."""
        chosen = row_id(request.args.get("_flt_0_client"))
        if chosen is not None and client_in_scope(chosen):
            remember(chosen)
        elif request.args.get("books") == "all":
            forget()  # FilterCurrentClient, a base filter, then shows that client's vouchers
        return super().list()

    # --- bulk actions ---------------------------------------------------------------------

    def _bulk(self, items: list, operation, done: str):  # noqa: ANN001, ANN202
        user = current_user_id()
        count, refused = 0, []
        for item in items if isinstance(items, list) else [items]:
            if item is None or not client_in_scope(item.client_id):
                refused.append(str(_l("No such voucher.")))
                continue
            label = f"{period_label(item.period)} {item.label}"
            try:
                operation(db.session, item.id, user)
                count += 1
            except DomainError as exc:
                db.session.rollback()
                refused.append(f"{label}: {exc.message}")
        message = str(_l("%(n)d %(done)s, %(m)d refused", n=count, done=done, m=len(refused)))
        if refused:
            message += ": " + "; ".join(refused)
        flash(message, "warning" if refused else "success")
        return redirect(self.get_redirect())

    @expose("/action_post", methods=["POST"])
    def action_post(self):  # noqa: ANN201
        """FAB's bulk action, with the selected ids checked first: an id that cannot be a row
        would otherwise reach the database as an out-of-range integer."""
        if any(row_id(pk) is None for pk in request.form.getlist("rowid")):
            abort(404)
        return super().action_post()

    @expose("/action/<string:name>/<pk>", methods=["GET", "POST"])
    def action(self, name: str, pk: str):  # noqa: ANN201
        if row_id(pk) is None:
            abort(404)
        return super().action(name, pk)

    @bulk_action("bulk_review", _l("Review"), _l("Review the selected vouchers?"), "fa-check", single=False)
    def bulk_review(self, items):  # noqa: ANN001, ANN201
        return self._bulk(items, svc.review_voucher, str(_l("reviewed")))

    @bulk_action("bulk_post", _l("Post"), _l("Post the selected vouchers?"), "fa-book", single=False)
    def bulk_post(self, items):  # noqa: ANN001, ANN201
        return self._bulk(items, svc.post_voucher, str(_l("posted")))

    # --- entry and edit --------------------------------------------------------------------

    def _render_form(self, book: LedgerBook, data: dict, typed: list[str], errors: dict,
                     voucher: Voucher | None = None):  # noqa: ANN202
        accounts = list(db.session.scalars(select(Account).where(
            Account.book_id == book.id, Account.is_leaf.is_(True), Account.active.is_(True)).order_by(Account.code)))
        rows = [dict(line, typed=typed[i] if i < len(typed) else line["account_code"])
                for i, line in enumerate(data.get("lines") or [])]
        while len(rows) < 4:
            rows.append({"account_code": "", "typed": "", "debit": "", "credit": "", "memo": ""})
        return self.render_template(self.form_template, book=book, data=data, rows=rows, errors=errors,
                                    accounts=accounts, words=list(VoucherWord), voucher=voucher,
                                    title=_l("Edit voucher") if voucher else _l("New voucher"))

    def _save(self, book: LedgerBook, voucher: Voucher | None = None):  # noqa: ANN202
        _, data, typed = form_data()
        if voucher is not None:
            data["version"] = request.form.get("version", "")
        try:
            saved = svc.save_voucher(db.session, book.client_id, data, current_user_id(),
                                     voucher_id=voucher.id if voucher else None)
        except DomainError as exc:
            errors = field_errors(exc)
            flash(str(_l("The voucher was not saved.")), "danger")
            return self._render_form(book, data, typed, errors, voucher)
        flash(str(_l("Voucher %(period)s %(label)s saved.", period=period_label(saved.period), label=saved.label)),
              "success")
        if request.form.get("next") == "new":
            return redirect(url_for("VoucherModelView.add", client_id=book.client_id))
        return redirect(url_for("VoucherModelView.show", pk=saved.id))

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):  # noqa: ANN201
        """New voucher: pick a client (with books, in scope), then the entry form."""
        client_id = form_data()[0] if request.method == "POST" else picked_client()
        if client_id is None:
            return self.render_template("ledger/pick_client.html", clients=books_in_scope(),
                                        title=_l("New voucher"), endpoint="VoucherModelView.add")
        book = scoped_book(client_id)
        if request.method == "POST":
            return self._save(book)
        data = {"date": request.args.get("date", ""), "word": VoucherWord.ji.value, "summary": "",
                "attachments": "0", "lines": []}
        return self._render_form(book, data, [], {})

    @expose("/edit/<int:pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk: int):  # noqa: ANN201
        voucher = scoped_voucher(pk)
        book = scoped_book(voucher.client_id)
        if request.method == "POST":
            return self._save(book, voucher)
        if voucher.state != VoucherState.draft or voucher.kind != VoucherKind.normal:
            flash(str(_l("Only a draft can be edited; un-review it first. Posted vouchers are corrected "
                         "by a reversal.")), "warning")
            return redirect(url_for("VoucherModelView.show", pk=pk))
        data = {"date": voucher.date.isoformat(), "word": voucher.word.value, "summary": voucher.summary,
                "attachments": str(voucher.attachments), "version": str(voucher.version),
                "lines": [{"account_code": line.account.code, "debit": str(line.debit) if line.debit else "",
                           "credit": str(line.credit) if line.credit else "", "memo": line.memo or ""}
                          for line in voucher.lines]}
        typed = [f"{line.account.code} {line.account.name}" for line in voucher.lines]
        return self._render_form(book, data, typed, {}, voucher)

    # --- one voucher -----------------------------------------------------------------------

    @expose("/show/<int:pk>")
    @has_access
    def show(self, pk: int):  # noqa: ANN201
        voucher = scoped_voucher(pk)
        sm = self.appbuilder.sm
        can = {name: sm.has_access(f"can_{name}", "VoucherModelView")
               for name in ("edit", "delete", "review", "post", "reverse", "print")}
        reversal = db.session.scalar(select(Voucher).where(Voucher.reversal_of_id == voucher.id))
        return self.render_template("ledger/voucher_show.html", voucher=voucher, can=can, reversal=reversal,
                                    states=STATE_LABELS, kinds=KIND_LABELS, person=person,
                                    period_label=period_label, format_datetime=format_datetime,
                                    debit=voucher_totals(voucher)[0], credit=voucher_totals(voucher)[1],
                                    pdf_url=voucher_pdf_url(voucher))

    def _transition(self, pk: int, operation, done):  # noqa: ANN001, ANN202
        """``operation(session, pk, user, version)`` with the version the page showed."""
        scoped_voucher(pk)
        # A refusal goes back to the voucher's page with its message (app.errors).
        voucher = operation(db.session, pk, current_user_id(), svc.parse_version(request.form.get("version")))
        flash(str(done), "success")
        return redirect(url_for("VoucherModelView.show", pk=voucher.id))

    @expose("/review/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("review")
    def review(self, pk: int):  # noqa: ANN201
        return self._transition(pk, svc.review_voucher, _l("Voucher reviewed."))

    @expose("/unreview/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("review")
    def unreview(self, pk: int):  # noqa: ANN201
        return self._transition(pk, svc.unreview_voucher, _l("Review withdrawn."))

    @expose("/post/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("post")
    def post(self, pk: int):  # noqa: ANN201
        return self._transition(pk, svc.post_voucher, _l("Voucher posted."))

    @expose("/reverse/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("reverse")
    def reverse(self, pk: int):  # noqa: ANN201
        """红字冲销: a draft reversal dated the day given (blank: the original's date)."""
        day = request.form.get("date", "")
        return self._transition(pk, lambda session, voucher_id, user, _version: svc.reverse_voucher(
            session, voucher_id, user, on_date=day), _l("Reversal created as a draft."))

    @expose("/delete/<int:pk>", methods=["POST"])
    @has_access
    def delete(self, pk: int):  # noqa: ANN201
        voucher = scoped_voucher(pk)
        label = f"{period_label(voucher.period)} {voucher.label}"
        svc.delete_voucher(db.session, pk, svc.parse_version(request.form.get("version")))
        flash(str(_l("Voucher %(label)s deleted; renumber the period to close the gap.", label=label)), "success")
        return redirect(url_for("VoucherModelView.list"))

    # --- print -----------------------------------------------------------------------------

    def _print(self, items: list[Voucher], title: str):  # noqa: ANN202
        sheets = []
        for voucher in items:
            debit, credit = voucher_totals(voucher)
            sheets.append({"voucher": voucher, "debit": debit, "credit": credit, "words": amount_in_words(debit)})
        return self.render_template("ledger/voucher_print.html", sheets=sheets, title=title, person=person,
                                    period_label=period_label, states=STATE_LABELS)

    @expose("/print/<int:pk>")
    @has_access
    @permission_name("print")
    def print_voucher(self, pk: int):  # noqa: ANN201
        voucher = scoped_voucher(pk)
        return self._print([voucher], f"{voucher.client.name} {period_label(voucher.period)} {voucher.label}")

    @expose("/print")
    @has_access
    @permission_name("print")
    def print_period(self):  # noqa: ANN201
        """Every voucher of ``client_id`` in ``period`` (YYYY-MM), by word and number."""
        client_id = picked_client()
        if client_id is None:
            abort(404)
        book = scoped_book(client_id)
        try:
            month = parse_period(request.args.get("period", ""))
        except DomainError:
            abort(404)
        items = list(db.session.scalars(
            select(Voucher).where(Voucher.book_id == book.id, Voucher.period == month)
            .options(selectinload(Voucher.lines).selectinload(VoucherLine.account), selectinload(Voucher.maker),
                     selectinload(Voucher.reviewer), selectinload(Voucher.poster))
            .order_by(Voucher.word, Voucher.number)))
        return self._print(items, f"{book.client.name} {period_label(month)}")


def voucher_totals(voucher: Voucher) -> tuple[Decimal, Decimal]:
    """Total debit and credit of the voucher's lines."""
    return (sum((ln.debit for ln in voucher.lines), ZERO), sum((ln.credit for ln in voucher.lines), ZERO))
