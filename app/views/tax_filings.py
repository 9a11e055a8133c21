"""The filing calendar and the filing records: screens and REST API.

* ``TaxCalendarView`` (税务 → 申报日历, ``/taxcalendar/``): a year's twelve deadlines, official or
  estimated; an Admin enters a year's official dates on it. ``TaxCalendarApi``:
  ``GET /api/v1/tax/calendar?year=2026`` and ``PUT /api/v1/tax/calendar/<year>`` (Admin).
* ``TaxFilingView`` (税务 → 申报记录, 逾期申报, 七日内到期, ``/taxfilings/``): the records with
  filters (client, tax, status, accountant, period), the overdue and due-in-7-days lists, each
  record's page with its steps (file, pay, reopen), and making a month's pending records.
  ``TaxFilingApi``: ``/api/v1/tax/filing…`` with the same steps.

The rules are app/services/tax_calendar.py's and app/services/tax_filings.py's. An Accountant
acts on the records of their own clients (any other record answers 404), a Manager on all; a
Reviewer reads.
"""

from __future__ import annotations

from datetime import date

from flask import Flask, Response, abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from marshmallow import Schema, fields
from sqlalchemy import func, select

from app.errors import api_safe as safe
from app.extensions import db
from app.models.crm import Client
from app.models.documents import Document
from app.models.tax import TaxKind
from app.models.tax_filing import FilingStatus, TaxFiling
from app.permissions import client_in_scope, current_user_id, scoped_accountant_id
from app.services import documents as documents_svc
from app.services import tax_calendar as calendar_svc
from app.services import tax_filings as svc
from app.services.accounting import parse_period, period_label
from app.services.errors import ValidationFailed
from app.services.inputs import parse_id
from app.services.timefmt import to_display
from app.views.labels import ENUM_LABELS, enum_label
from app.views.ledger_api import LedgerError, json_object_body

STATUS_LABELS = ENUM_LABELS[FilingStatus]
SOURCE_LABELS = {calendar_svc.OFFICIAL: _l("Official"), calendar_svc.ESTIMATED: _l("Estimated")}
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 25
MAX_DUE_DAYS = 31


def parse_as_of(value: object) -> date:
    """The day a list is computed for: ``YYYY-MM-DD`` in the calendar's years, today when absent.
    Raises ``ValidationFailed``."""
    if value in (None, ""):
        return date.today()
    try:
        if isinstance(value, str) and len(value.strip()) == 10:
            day = date.fromisoformat(value.strip())
            if calendar_svc.FIRST_YEAR <= day.year <= calendar_svc.LAST_YEAR:
                return day
    except ValueError:
        pass
    raise ValidationFailed({"as_of": [str(_l("A date is written YYYY-MM-DD, for example 2026-01-20."))]})


def _record_in_scope(filing_id: int) -> TaxFiling | None:
    filing = db.session.get(TaxFiling, filing_id) if 0 < filing_id < 2**31 else None  # larger: no row's id
    if filing is None or not client_in_scope(filing.client_id):
        return None
    return filing


# --- API ------------------------------------------------------------------------------------


class DeadlineOut(Schema):
    month = fields.String(metadata={"example": "2026-01"})
    due = fields.String(metadata={"example": "2026-01-20"})
    source = fields.String(metadata={"enum": [calendar_svc.OFFICIAL, calendar_svc.ESTIMATED]})
    note = fields.String()


class CalendarOut(Schema):
    year = fields.Integer()
    deadlines = fields.List(fields.Nested(DeadlineOut))


class CalendarIn(Schema):
    deadlines = fields.Dict(keys=fields.String(), values=fields.String(), required=True, metadata={
        "example": {"01": "2026-01-20", "02": "2026-02-24", "03": "2026-03-16", "04": "2026-04-20",
                    "05": "2026-05-22", "06": "2026-06-15", "07": "2026-07-15", "08": "2026-08-17",
                    "09": "2026-09-15", "10": "2026-10-26", "11": "2026-11-16", "12": "2026-12-15"}})
    note = fields.String(required=True, metadata={"example": "税总办征科函〔2025〕64号"})


class TaxApiBase(BaseApi):
    """Shared by the tax calendar and filing APIs: JSON body, refusals in the one error shape."""

    allow_browser_login = True
    route_base = "/api/v1/tax"

    def body(self) -> dict:
        return json_object_body()


class TaxCalendarApi(TaxApiBase):
    """The filing calendar: the twelve deadlines of a year, official or estimated."""
    permission_label = _l("Filing calendar")  # on the role screens

    resource_name = "tax_calendar"
    openapi_spec_tag = "Tax calendar"
    openapi_spec_component_schemas = (LedgerError, DeadlineOut, CalendarOut, CalendarIn)

    @expose("/calendar", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self) -> Response:
        """The deadlines of a year's monthly filings
        ---
        get:
          parameters:
          - {in: query, name: year, required: true, schema: {type: integer, minimum: 2000, maximum: 2100}}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/CalendarOut'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        return self.response(200, **calendar_svc.year_calendar(db.session, request.args.get("year")))

    @expose("/calendar/<int:pk>", methods=["PUT"])
    @protect()
    @safe
    @permission_name("put")
    def put(self, pk: int) -> Response:
        """Enter a year's official deadlines (all twelve months); they replace the estimate
        ---
        put:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}, description: the year}
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/CalendarIn'}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/CalendarOut'}
            404: {$ref: '#/components/responses/404'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        data = self.body()
        return self.response(200, **calendar_svc.set_official_year(db.session, pk, data.get("deadlines"),
                                                                   data.get("note")))


class FilingOut(Schema):
    id = fields.Integer()
    client_id = fields.Integer()
    client_name = fields.String()
    tax = fields.String(metadata={"enum": [t.value for t in TaxKind]})
    period = fields.String(metadata={"example": "2026-Q1"})
    period_kind = fields.String(metadata={"enum": ["monthly", "quarterly", "yearly"]})
    due = fields.String(metadata={"example": "2026-04-20"})
    status = fields.String(metadata={"enum": [s.value for s in FilingStatus]})
    zero_return = fields.Boolean()
    tax_amount = fields.String(allow_none=True, metadata={"example": "1234.50"})
    paid_amount = fields.String(allow_none=True)
    filed_at = fields.String(allow_none=True)
    filed_by = fields.String(allow_none=True)
    paid_at = fields.String(allow_none=True)
    paid_by = fields.String(allow_none=True)
    return_document_id = fields.Integer(allow_none=True)
    receipt_document_id = fields.Integer(allow_none=True)
    reopen_reason = fields.String(allow_none=True)


class FilingPage(Schema):
    count = fields.Integer()
    result = fields.List(fields.Nested(FilingOut))


class FilingList(Schema):
    as_of = fields.String()
    result = fields.List(fields.Nested(FilingOut))


class GenerateIn(Schema):
    month = fields.String(required=True, metadata={"example": "2026-04", "description": "the filing month"})


class GenerateOut(Schema):
    month = fields.String()
    created = fields.Integer()
    result = fields.List(fields.Nested(FilingOut))


class FileIn(Schema):
    zero_return = fields.Boolean(required=True)
    tax_amount = fields.String(allow_none=True, metadata={"example": "1234.50",
                                                          "description": "required unless zero_return"})
    return_document_id = fields.Integer(allow_none=True, metadata={"description": "the 申报表 in the archives"})


class PayIn(Schema):
    paid_amount = fields.String(required=True, metadata={"example": "1234.50"})
    receipt_document_id = fields.Integer(allow_none=True, metadata={"description": "the 缴款凭证 in the archives"})


class ReopenIn(Schema):
    reason = fields.String(required=True, metadata={"example": "申报表更正"})


_ONE = """
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
"""
_WRITE_RESPONSES = """
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/FilingOut'}
            404: {$ref: '#/components/responses/404'}
            409:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
"""


def _body_doc(schema: str) -> str:
    return f"""
          requestBody:
            required: true
            content:
              application/json:
                schema: {{$ref: '#/components/schemas/{schema}'}}
"""


class TaxFilingApi(TaxApiBase):
    """Filing records (申报记录): list, overdue, due soon, generate a month, file, pay, reopen."""
    permission_label = _l("Tax filings")  # on the role screens

    resource_name = "tax_filing"
    openapi_spec_tag = "Tax filings"
    openapi_spec_component_schemas = (LedgerError, FilingOut, FilingPage, FilingList, GenerateIn, GenerateOut,
                                      FileIn, PayIn, ReopenIn)

    def _page_args(self) -> tuple[int, int]:
        errors = {}
        values = {}
        for name, default, low, high in (("page", 0, 0, 1_000_000), ("page_size", DEFAULT_PAGE_SIZE, 1,
                                                                    MAX_PAGE_SIZE)):
            raw = request.args.get(name)
            value = default if raw in (None, "") else parse_id(raw) if raw != "0" else 0
            if value is None or not low <= value <= high:
                errors[name] = [str(_l("A whole number from %(low)d to %(high)d.", low=low, high=high))]
            values[name] = value
        if errors:
            raise ValidationFailed(errors)
        return values["page"], values["page_size"]

    @expose("/filing", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get_list(self) -> Response:
        """Filing records, filtered and paged, the latest due first
        ---
        get:
          parameters:
          - {in: query, name: client_id, schema: {type: integer}}
          - {in: query, name: tax, schema: {type: string, enum: [vat, urban_maintenance, education,
             local_education, corporate_income, individual_income, stamp]}}
          - {in: query, name: status, schema: {type: string, enum: [pending, filed, paid]}}
          - {in: query, name: accountant_id, schema: {type: integer}}
          - {in: query, name: period, schema: {type: string, example: "2026-Q1"}}
          - {in: query, name: page, description: "from 0", schema: {type: integer, default: 0}}
          - {in: query, name: page_size, schema: {type: integer, default: 25, maximum: 100}}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/FilingPage'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        filters = svc.parse_filters(request.args)
        page, size = self._page_args()
        stmt = svc.filings_query(filters, scoped_accountant_id())
        count = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
        rows = db.session.scalars(stmt.limit(size).offset(page * size))
        return self.response(200, count=count, result=[svc.filing_json(f) for f in rows])

    @expose("/filing/<int:pk>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self, pk: int) -> Response:
        """One filing record
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/FilingOut'}
            404: {$ref: '#/components/responses/404'}
        """
        filing = _record_in_scope(pk)
        if filing is None:
            return self.response_404()
        return self.response(200, **svc.filing_json(filing))

    def _dated_list(self, which) -> Response:  # noqa: ANN001
        as_of = parse_as_of(request.args.get("as_of"))
        rows = which(db.session, as_of, accountant_id=scoped_accountant_id())
        return self.response(200, as_of=as_of.isoformat(), result=[svc.filing_json(f) for f in rows])

    @expose("/filing/overdue", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def overdue(self) -> Response:
        """Open records (pending, or filed with tax unpaid) whose due date is before as_of
        ---
        get:
          parameters:
          - {in: query, name: as_of, schema: {type: string, format: date}, description: "default today"}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/FilingList'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        return self._dated_list(svc.overdue)

    @expose("/filing/due_soon", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def due_soon(self) -> Response:
        """Open records due from as_of to 7 days later
        ---
        get:
          parameters:
          - {in: query, name: as_of, schema: {type: string, format: date}, description: "default today"}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/FilingList'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        return self._dated_list(svc.due_soon)

    @expose("/filing/generate", methods=["POST"])
    @protect()
    @safe
    @permission_name("generate")
    def generate(self) -> Response:
        """Make the pending records due in a month from the clients' tax profiles (an Accountant's:
        their clients'); the existing ones are kept, so a second call makes none
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/GenerateIn'}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/GenerateOut'}
            409:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        month = period_label(parse_period(self.body().get("month"), "month"))
        made = svc.generate_month(db.session, month, accountant_id=scoped_accountant_id())
        return self.response(200, month=month, created=len(made), result=[svc.filing_json(f) for f in made])

    def _step(self, pk: int, run) -> Response:  # noqa: ANN001
        filing = _record_in_scope(pk)
        if filing is None:
            return self.response_404()
        return self.response(200, **svc.filing_json(run(self.body())))

    @expose("/filing/<int:pk>/file", methods=["POST"])
    @protect()
    @safe
    @permission_name("file")
    def file(self, pk: int) -> Response:
        return self._step(pk, lambda data: svc.file_return(
            db.session, pk, current_user_id(), data.get("zero_return"), data.get("tax_amount"),
            data.get("return_document_id")))

    file.__doc__ = "File the return (pending → filed); a zero return says so\n---\npost:" + _ONE + \
        _body_doc("FileIn") + _WRITE_RESPONSES

    @expose("/filing/<int:pk>/pay", methods=["POST"])
    @protect()
    @safe
    @permission_name("pay")
    def pay(self, pk: int) -> Response:
        return self._step(pk, lambda data: svc.record_payment(
            db.session, pk, current_user_id(), data.get("paid_amount"), data.get("receipt_document_id")))

    pay.__doc__ = "Record the payment (filed → paid)\n---\npost:" + _ONE + _body_doc("PayIn") + _WRITE_RESPONSES

    @expose("/filing/<int:pk>/reopen", methods=["POST"])
    @protect()
    @safe
    @permission_name("reopen")
    def reopen(self, pk: int) -> Response:
        return self._step(pk, lambda data: svc.reopen(db.session, pk, data.get("reason")))

    reopen.__doc__ = "One step back with a reason (paid → filed, filed → pending)\n---\npost:" + _ONE + \
        _body_doc("ReopenIn") + _WRITE_RESPONSES


# --- screens ----------------------------------------------------------------------------------


def _labels() -> dict:
    return {"enum_label": enum_label, "status_label": lambda s: str(STATUS_LABELS[s]),
            "source_label": lambda s: str(SOURCE_LABELS[s]), "to_display": to_display}


class TaxCalendarView(BaseView):
    """申报日历: a year's deadlines, official or estimated; an Admin enters the official ones."""

    route_base = "/taxcalendar"
    default_view = "show"

    @expose("/")
    @has_access
    @permission_name("list")
    def show(self):  # noqa: ANN201
        try:
            data = calendar_svc.year_calendar(db.session, request.args.get("year") or date.today().year)
        except ValidationFailed as exc:
            flash(exc.message, "danger")
            data = calendar_svc.year_calendar(db.session, date.today().year)
        can_edit = self.appbuilder.sm.has_access("can_edit", self.class_permission_name)
        return self.render_template("tax_calendar.html", data=data, can_edit=can_edit, title=_l("Filing calendar"),
                                    **_labels())

    @expose("/save", methods=["POST"])
    @has_access
    @permission_name("edit")
    def save(self):  # noqa: ANN201
        year = request.form.get("year", "")
        deadlines = {f"{m:02d}": request.form.get(f"due_{m:02d}", "") for m in range(1, 13)}
        calendar_svc.set_official_year(db.session, year, deadlines, request.form.get("note"))
        flash(str(_l("The official deadlines of %(year)s are saved.", year=year)), "success")
        return redirect(url_for("TaxCalendarView.show", year=year))


class TaxFilingView(BaseView):
    """申报记录: the records with filters, the overdue and due-in-7-days lists, a record's steps."""

    route_base = "/taxfilings"
    default_view = "list"

    def _choices(self) -> dict:
        scope = scoped_accountant_id()
        clients = select(Client.id, Client.name).order_by(Client.name)
        if scope is not None:
            clients = clients.where(Client.accountant_id == scope)
        from flask_appbuilder.security.sqla.models import User

        accountants = select(User.id, User.username).where(
            User.id.in_(select(Client.accountant_id).where(Client.accountant_id.is_not(None)))).order_by(User.username)
        if scope is not None:
            accountants = accountants.where(User.id == scope)
        return {"clients": db.session.execute(clients).all(), "accountants": db.session.execute(accountants).all(),
                "taxes": list(TaxKind), "statuses": list(FilingStatus)}

    def _page(self, rows: list, title, **extra):  # noqa: ANN001, ANN003, ANN202
        can = self.appbuilder.sm.has_access
        return self.render_template("tax_filings.html", rows=rows, title=title,
                                    can_generate=can("can_generate", self.class_permission_name),
                                    **self._choices(), **_labels(), **extra)

    @expose("/")
    @has_access
    @permission_name("list")
    def list(self):  # noqa: ANN201
        try:
            filters = svc.parse_filters(request.args)
        except ValidationFailed as exc:
            flash(exc.message, "danger")
            filters = {}
        rows = db.session.scalars(svc.filings_query(filters, scoped_accountant_id()).limit(500)).all()
        return self._page(rows, _l("Tax filings"), filters=filters, which="list")

    def _dated(self, which: str, title, **extra):  # noqa: ANN001, ANN003, ANN202
        """A dated list in the user's scope; one who sees every client may narrow it to an
        accountant's clients (``accountant_id``, as the desk's tiles do)."""
        try:
            as_of = parse_as_of(request.args.get("as_of"))
        except ValidationFailed as exc:
            flash(exc.message, "danger")
            as_of = date.today()
        scope = scoped_accountant_id()
        if scope is None:
            scope = parse_id(request.args.get("accountant_id") or "")
        rows = getattr(svc, which)(db.session, as_of, accountant_id=scope, **extra)
        return self._page(rows, title, filters={}, which=which, as_of=as_of, days=extra.get("days"))

    @expose("/overdue")
    @has_access
    @permission_name("list")
    def overdue(self):  # noqa: ANN201
        return self._dated("overdue", _l("Overdue filings"))

    @expose("/due_soon")
    @has_access
    @permission_name("list")
    def due_soon(self):  # noqa: ANN201
        """Due within 7 days, or ``days`` (1 to 31: the reminder's 3)."""
        days = parse_id(request.args.get("days") or "") or svc.DUE_SOON_DAYS
        if not 1 <= days <= MAX_DUE_DAYS:
            flash(str(_l("A whole number from %(low)d to %(high)d.", low=1, high=MAX_DUE_DAYS)), "danger")
            days = svc.DUE_SOON_DAYS
        if days == svc.DUE_SOON_DAYS:
            return self._dated("due_soon", _l("Filings due in 7 days"), days=days)
        return self._dated("due_soon", _l("Filings due in %(n)d days", n=days), days=days)

    @expose("/generate", methods=["POST"])
    @has_access
    @permission_name("generate")
    def generate(self):  # noqa: ANN201
        made = svc.generate_month(db.session, request.form.get("month", ""), accountant_id=scoped_accountant_id())
        flash(str(_l("%(n)d pending filings made.", n=len(made))), "success")
        return redirect(url_for("TaxFilingView.list"))

    def _filing(self, pk: int) -> TaxFiling:
        filing = _record_in_scope(pk)
        if filing is None:
            abort(404)
        return filing

    @expose("/show/<int:pk>")
    @has_access
    @permission_name("show")
    def show(self, pk: int):  # noqa: ANN201
        filing = self._filing(pk)
        documents = db.session.execute(select(Document.id, Document.title).where(
            Document.client_id == filing.client_id).order_by(Document.id.desc())).all()
        return self.render_template("tax_filing.html", filing=filing, documents=documents,
                                    accept=",".join(documents_svc.ALLOWED_EXTENSIONS),
                                    can_edit=self.appbuilder.sm.has_access("can_edit", self.class_permission_name),
                                    title=_l("Tax filing"), **_labels())

    def _document(self, name: str) -> int | None:
        raw = request.form.get(name, "")
        return parse_id(raw) if raw else None

    @staticmethod
    def _upload(name: str, title: str) -> svc.Evidence | None:
        """The file sent in the form field *name*, to be archived for the filing's client as *title*."""
        upload = request.files.get(name)
        if upload is None or not upload.filename:
            return None
        return svc.Evidence(current_app.config["UPLOAD_DIR"], current_app.config["UPLOAD_MAX_BYTES"],
                            upload.filename, upload.stream, title)

    @expose("/file/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("edit")
    def file(self, pk: int):  # noqa: ANN201
        filing = self._filing(pk)
        svc.file_return(db.session, pk, current_user_id(), request.form.get("zero_return") == "y",
                        request.form.get("tax_amount", ""), self._document("return_document_id"),
                        self._upload("return_file", str(_l("%(tax)s return %(period)s", tax=enum_label(filing.tax),
                                                           period=filing.period))))
        flash(str(_l("The return is filed.")), "success")
        return redirect(url_for("TaxFilingView.show", pk=pk))

    @expose("/pay/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("edit")
    def pay(self, pk: int):  # noqa: ANN201
        filing = self._filing(pk)
        svc.record_payment(db.session, pk, current_user_id(), request.form.get("paid_amount", ""),
                           self._document("receipt_document_id"),
                           self._upload("receipt_file", str(_l("%(tax)s payment receipt %(period)s",
                                                               tax=enum_label(filing.tax), period=filing.period))))
        flash(str(_l("The payment is recorded.")), "success")
        return redirect(url_for("TaxFilingView.show", pk=pk))

    @expose("/reopen/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("edit")
    def reopen(self, pk: int):  # noqa: ANN201
        self._filing(pk)
        svc.reopen(db.session, pk, request.form.get("reason", ""))
        flash(str(_l("The filing is reopened.")), "success")
        return redirect(url_for("TaxFilingView.show", pk=pk))


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the calendar and filing screens (menu 税务) and their APIs."""
    tax = dict(category="Tax", category_label=lazy_pgettext("menu", "Tax"), category_icon="fa-calculator")
    appbuilder.add_view(TaxCalendarView, "Filing calendar", label=_l("Filing calendar"), icon="fa-calendar", **tax)
    appbuilder.add_view(TaxFilingView, "Tax filings", label=_l("Tax filings"), icon="fa-list-alt", **tax)
    appbuilder.add_link("Overdue filings", href="/taxfilings/overdue", label=_l("Overdue filings"),
                        icon="fa-exclamation-triangle", **tax)
    appbuilder.add_link("Filings due in 7 days", href="/taxfilings/due_soon", label=_l("Filings due in 7 days"),
                        icon="fa-clock-o", **tax)
    appbuilder.add_api(TaxCalendarApi)
    appbuilder.add_api(TaxFilingApi)
