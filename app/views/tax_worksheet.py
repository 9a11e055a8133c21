"""The tax worksheet (税费计算表) and the accrual voucher (计提税金): API, screen and PDF link.

* ``GET /api/v1/tax/worksheet?client_id=&period=`` (``YYYY-MM`` or ``YYYY-Qn``) → the worksheet
  as ``app.services.tax_worksheet.worksheet_json`` writes it (amounts as strings, the rate rows
  used); ``POST /api/v1/tax/accrual`` ``{client_id, period}`` → 201 with the draft voucher.
* The screen (menu 税务 → 税费计算表, ``/tax/worksheet``): pick a client and a period, see the
  worksheet, download its PDF, make the accrual voucher.

A client outside the user's scope (an Accountant reaches only their own clients) answers 404 as
an unknown one does; a bad parameter 422 naming it; an accrual already made 409. The rules are
the service's.
"""

from __future__ import annotations

from flask import Flask, Response, abort, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.api import protect
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from marshmallow import Schema, fields

from app.errors import api_safe as safe
from app.extensions import db
from app.models.ledger import Voucher
from app.models.tax import TaxKind
from app.permissions import current_user_id
from app.services import tax_worksheet as svc
from app.services.errors import DomainError, NotFound
from app.views.current_client import client_param, clients_with_books, open_on_current
from app.views.labels import ENUM_LABELS
from app.views.ledger_api import SCHEMAS, LedgerApiBase, voucher_json
from app.views.pdf_links import document_url


class WorksheetLineOut(Schema):
    tax = fields.String(metadata={"enum": [t.value for t in TaxKind]})
    base = fields.String(metadata={"example": "120000.00"})
    rate = fields.String(allow_none=True, metadata={"description": "percent; null where the books give the tax "
                                                                   "(a general taxpayer's VAT)", "example": "1.00"})
    exempt = fields.Boolean()
    reduction = fields.String(allow_none=True, metadata={"description": "share of the tax relieved, percent"})
    amount = fields.String(metadata={"example": "1200.00"})
    basis = fields.String(metadata={"description": "the legal basis of the rate rows used"})


class WorksheetRateOut(Schema):
    id = fields.Integer()
    tax = fields.String()
    item = fields.String()
    rate = fields.String()
    threshold = fields.String(allow_none=True)
    reduction = fields.String(allow_none=True)
    period = fields.String(allow_none=True)
    effective_from = fields.Date()
    effective_to = fields.Date(allow_none=True)
    basis = fields.String()


class WorksheetOut(Schema):
    client_id = fields.Integer()
    period = fields.String(metadata={"example": "2026-Q1"})
    taxpayer_type = fields.String()
    vat_period = fields.String()
    location_class = fields.String()
    period_start = fields.Date()
    period_end = fields.Date()
    sales = fields.String()
    output_vat = fields.String(allow_none=True)
    input_vat = fields.String(allow_none=True)
    carried_credit_in = fields.String(metadata={"description": "上期留抵 brought in"})
    carried_credit = fields.String(metadata={"description": "留抵 carried to the next period"})
    profit_to_date = fields.String(allow_none=True)
    income_tax_accrued = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(WorksheetLineOut))
    total = fields.String()
    rates = fields.List(fields.Nested(WorksheetRateOut))
    notes = fields.List(fields.String())


class AccrualIn(Schema):
    client_id = fields.Integer(required=True)
    period = fields.String(required=True, metadata={"example": "2026-03"})


class TaxWorksheetApi(LedgerApiBase):
    """The tax worksheet of a client and period, and its accrual voucher."""
    permission_label = _l("Tax worksheet")  # on the role screens

    resource_name = "tax"
    openapi_spec_tag = "Tax worksheet"
    openapi_spec_component_schemas = (*SCHEMAS, WorksheetLineOut, WorksheetRateOut, WorksheetOut, AccrualIn)

    @expose("/worksheet", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def worksheet(self) -> Response:
        """The tax worksheet (税费计算表) of a client and period
        ---
        get:
          parameters:
          - {in: query, name: client_id, required: true, schema: {type: integer}}
          - {in: query, name: period, required: true, schema: {type: string, example: "2026-Q1"},
             description: "YYYY-MM for a client filing VAT monthly, YYYY-Qn for one filing quarterly"}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/WorksheetOut'}
            404: {$ref: '#/components/responses/404'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        client_id = client_param(request.args.get("client_id", ""))
        sheet = svc.worksheet(db.session, client_id, request.args.get("period", ""))
        return self.response(200, **svc.worksheet_json(sheet))

    @expose("/accrual", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def accrual(self) -> Response:
        """Make the accrual voucher (计提税金) of a client and period as a draft
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/AccrualIn'}
          responses:
            201:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/VoucherOut'}
            404: {$ref: '#/components/responses/404'}
            409:
              description: "already accrued, or the period is closed"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        data = self.body()
        if data is None:
            return self.not_an_object()
        client_id = client_param(data.get("client_id", ""))
        voucher = svc.accrue(db.session, client_id, data.get("period"), current_user_id())
        return self.response(201, **voucher_json(voucher))


# --- the screen ------------------------------------------------------------------------------


def pdf_url(client_id: int, period: str) -> str | None:
    """The worksheet's PDF download, for users who may download PDFs; else None."""
    return document_url("tax-worksheet", client_id=client_id, period=period)


class TaxWorksheetView(BaseView):
    """税费计算表: choose a client and a period; the worksheet, its PDF and the accrual button."""

    route_base = "/tax/worksheet"
    default_view = "index"

    @expose("/")
    @has_access
    @permission_name("list")
    def index(self):  # noqa: ANN201
        on_current = open_on_current("TaxWorksheetView.index")  # inside the current set of books (当前账套)
        if on_current is not None:
            return on_current
        args = request.args
        context = {"clients": clients_with_books(), "client_id": None, "period": (args.get("period") or "").strip(),
                   "sheet": None, "error": None, "pdf_url": None, "accrual": None, "labels": ENUM_LABELS[TaxKind],
                   "can_accrue": self.appbuilder.sm.has_access("can_accrue", self.class_permission_name)}
        status = 200
        if args.get("client_id"):
            try:
                client_id = context["client_id"] = client_param(args.get("client_id"))
                context["period"] = context["period"] or svc.default_period(db.session, client_id)
                if context["period"]:
                    sheet = context["sheet"] = svc.worksheet(db.session, client_id, context["period"])
                    context["pdf_url"] = pdf_url(client_id, sheet.period.label)
                    accrual = svc.current_accrual(db.session, client_id, sheet.period.label)
                    context["accrual"] = db.session.get(Voucher, accrual.voucher_id) if accrual else None
            except NotFound:
                abort(404)
            except DomainError as exc:
                db.session.rollback()
                context["error"], status = exc.message, 422
        return self.render_template("tax_worksheet.html", title=_l("Tax worksheet"), **context), status

    @expose("/accrue", methods=["POST"])
    @has_access
    @permission_name("accrue")
    def accrue(self):  # noqa: ANN201
        period = (request.form.get("period") or "").strip()
        try:
            client_id = client_param(request.form.get("client_id", ""))
        except NotFound:
            abort(404)
        except DomainError as exc:
            flash(exc.message, "danger")
            return redirect(url_for("TaxWorksheetView.index"))
        back = url_for("TaxWorksheetView.index", client_id=client_id, period=period)
        try:
            voucher = svc.accrue(db.session, client_id, period, current_user_id())
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
            return redirect(back)
        flash(str(_l("Accrual voucher %(label)s was made as a draft; review and post it as any voucher.",
                     label=voucher.label)), "success")
        return redirect(back)


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the worksheet screen (menu 税务 → 税费计算表) and its API."""
    appbuilder.add_view(TaxWorksheetView, "Tax worksheet", label=_l("Tax worksheet"), icon="fa-calculator",
                        category="Tax", category_label=lazy_pgettext("menu", "Tax"), category_icon="fa-calculator")
    appbuilder.add_api(TaxWorksheetApi)
