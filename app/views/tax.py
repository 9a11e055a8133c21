"""Tax screens and API: the rate table (税率, Admin edits, staff read) and each client's tax
profile (税务档案).

* ``TaxRateModelView`` (menu 税务 → 税率) and ``TaxRateApi`` (``/api/v1/tax_rate/``): every save
  goes through ``app.services.tax_rates.check_rate`` (range, dates, no overlap of one key); rates,
  thresholds and reductions travel as strings.
* ``ClientTaxProfileView`` (``/clienttaxprofile/<client_id>``, linked from the client's page) and
  ``ClientTaxProfileApi`` (``GET``/``PUT /api/v1/client_tax_profile/<client_id>``): the rules are
  ``app.services.tax_profile``'s; a client outside the user's scope is a 404.
"""

from __future__ import annotations

import enum

from flask import Flask, Response, abort, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.api import protect
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_wtf import FlaskForm
from marshmallow import Schema, fields
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.errors import api_safe as safe
from app.extensions import db
from app.models.crm import TaxpayerType
from app.models.tax import FilingPeriod, LocationClass, TaxKind, TaxRate
from app.permissions import client_in_scope
from app.services import tax_profile as profile_svc
from app.services.errors import DomainError, NotFound
from app.services.tax_rates import check_rate
from app.views.api import DeskApi
from app.views.common import DeskModelView, MoneyValidator, NotBefore
from app.views.labels import ENUM_LABELS, LabelledEnumField, enum_formatter
from app.views.ledger_api import SCHEMAS, LedgerApiBase

RATE_LABELS = {
    "tax": _l("Tax kind"), "taxpayer_type": _l("Taxpayer type"), "location_class": _l("Location class"),
    "item": _l("Item"), "period": _l("Tax period"), "rate": _l("Rate (percent)"),
    "threshold": _l("Threshold (yuan)"), "reduction": _l("Reduction (percent)"), "input_credit": _l("Input VAT credit"),
    "effective_from": _l("Effective from"), "effective_to": _l("Effective to"), "basis": _l("Legal basis"),
}
RATE_COLUMNS = ["tax", "taxpayer_type", "location_class", "item", "period", "rate", "threshold", "reduction",
                "input_credit", "effective_from", "effective_to", "basis"]


class OptionalEnumField(LabelledEnumField):
    """An enum select whose first choice, "any", stores nothing (the row applies to every value)."""

    def __init__(self, enum_class: type[enum.Enum], label=None, **kwargs) -> None:  # noqa: ANN001, ANN003
        super().__init__(enum_class, label=label, validators=[Optional()], **kwargs)
        self.choices = [("", str(_l("Any")))] + list(self.choices)
        coerce = self.coerce
        self.coerce = lambda value: None if value in (None, "", "None") else coerce(value)

    def pre_validate(self, form) -> None:  # noqa: ANN001
        if self.data is not None:
            super().pre_validate(form)


def _none_if_blank(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _rate_form_fields() -> dict:
    return {
        "tax": LabelledEnumField(TaxKind, label=RATE_LABELS["tax"], validators=[DataRequired()]),
        "taxpayer_type": OptionalEnumField(TaxpayerType, label=RATE_LABELS["taxpayer_type"]),
        "location_class": OptionalEnumField(LocationClass, label=RATE_LABELS["location_class"]),
        "period": OptionalEnumField(FilingPeriod, label=RATE_LABELS["period"]),
        "rate": StringField(RATE_LABELS["rate"], validators=[DataRequired(), MoneyValidator()]),
        "threshold": StringField(RATE_LABELS["threshold"], validators=[Optional(), MoneyValidator()],
                                 filters=[_none_if_blank]),
        "reduction": StringField(RATE_LABELS["reduction"], validators=[Optional(), MoneyValidator()],
                                 filters=[_none_if_blank]),
        "input_credit": BooleanField(RATE_LABELS["input_credit"], default=False),
        "item": StringField(RATE_LABELS["item"], validators=[DataRequired(), Length(max=40)]),
        "basis": TextAreaField(RATE_LABELS["basis"], validators=[DataRequired(), Length(max=2000)]),
    }


class TaxRateModelView(DeskModelView):
    """税率: effective-dated rates, thresholds and reductions (Admin edits; staff read)."""

    datamodel = SQLAInterface(TaxRate)
    base_order = ("tax", "asc")
    list_columns = ["tax", "taxpayer_type", "location_class", "item", "period", "rate", "threshold", "reduction",
                    "effective_from", "effective_to"]
    show_columns = RATE_COLUMNS
    add_columns = edit_columns = RATE_COLUMNS
    search_columns = ["tax", "taxpayer_type", "location_class", "item", "effective_from", "effective_to"]
    order_columns = ["tax", "item", "effective_from", "effective_to"]
    label_columns = RATE_LABELS
    formatters_columns = {"tax": enum_formatter(TaxKind), "taxpayer_type": enum_formatter(TaxpayerType),
                          "location_class": enum_formatter(LocationClass), "period": enum_formatter(FilingPeriod)}
    validators_columns = {"effective_from": [DataRequired()],
                          "effective_to": [Optional(), NotBefore("effective_from")]}
    description_columns = {
        "taxpayer_type": _l("Empty: the row applies to every taxpayer type."),
        "item": _l("What the row is within its tax: statutory, reduced, exemption, reduction, goods, services ..."),
        "rate": _l("A percentage: 3 means three per cent."),
        "reduction": _l("The share of the tax relieved, in percent: 50 halves it."),
        "effective_to": _l("Empty: in force until a later row replaces it."),
    }
    add_form_extra_fields = _rate_form_fields()
    edit_form_extra_fields = _rate_form_fields()
    list_title = _l("Tax rates")
    show_title = _l("Tax rate")
    add_title = _l("Add tax rate")
    edit_title = _l("Edit tax rate")

    def pre_add(self, item: TaxRate) -> None:
        check_rate(db.session, item)

    pre_update = pre_add


class TaxRateApi(DeskApi):
    """``/api/v1/tax_rate/``: the rate table; rates, thresholds and reductions as strings."""

    resource_name = "tax_rate"
    datamodel = SQLAInterface(TaxRate)
    base_filters: list = []
    money_fields = ("rate", "threshold", "reduction")
    list_columns = show_columns = ["id", *RATE_COLUMNS]
    add_columns = edit_columns = RATE_COLUMNS
    search_columns = ["tax", "taxpayer_type", "location_class", "item", "period", "effective_from", "effective_to"]
    order_columns = ["tax", "item", "effective_from", "effective_to"]

    def _init_model_schemas(self) -> None:
        super()._init_model_schemas()
        for schema in (self.add_model_schema, self.edit_model_schema, self.list_model_schema,
                       self.show_model_schema):
            for name in ("taxpayer_type", "location_class", "period", "threshold", "reduction", "effective_to"):
                schema.fields[name].allow_none = True  # null: any type / class / period, none, open-ended

    def pre_add(self, item: TaxRate) -> None:
        check_rate(db.session, item)

    pre_update = pre_add


# --- the client's tax profile ----------------------------------------------------------------


class TaxProfileIn(Schema):
    vat_period = fields.String(required=True, metadata={"enum": ["monthly", "quarterly"]})
    location_class = fields.String(required=True, metadata={"enum": [c.value for c in LocationClass]})
    filings = fields.Dict(keys=fields.String(metadata={"enum": [t.value for t in TaxKind]}),
                          values=fields.String(metadata={"enum": [p.value for p in FilingPeriod]}),
                          required=True, metadata={"example": {"vat": "quarterly", "corporate_income": "quarterly"}})


class TaxProfileOut(TaxProfileIn):
    client_id = fields.Integer()
    taxpayer_type = fields.String(metadata={"enum": [t.value for t in TaxpayerType]})


class ClientTaxProfileApi(LedgerApiBase):
    """A client's tax profile: VAT period, location class, the taxes filed and their periods."""
    permission_label = _l("Client tax profile")  # on the role screens

    resource_name = "client_tax_profile"
    openapi_spec_tag = "Client tax profile"
    openapi_spec_component_schemas = (*SCHEMAS, TaxProfileIn, TaxProfileOut)

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self, pk: int) -> Response:
        """A client's tax profile
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}, description: the client's id}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/TaxProfileOut'}
            404: {$ref: '#/components/responses/404'}
        """
        client_id = pk
        if not client_in_scope(client_id):
            return self.response_404()
        try:  # any other refusal is answered by the API's error contract (api_safe)
            return self.response(200, **profile_svc.tax_profile(db.session, client_id))
        except NotFound:
            return self.response_404()

    @expose("/<int:pk>", methods=["PUT"])
    @protect()
    @safe
    @permission_name("put")
    def put(self, pk: int) -> Response:
        """Replace a client's tax profile
        ---
        put:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}, description: the client's id}
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/TaxProfileIn'}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/TaxProfileOut'}
            404: {$ref: '#/components/responses/404'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        client_id = pk
        if not client_in_scope(client_id):
            return self.response_404()
        data = self.body()
        if data is None:
            return self.not_an_object()
        try:
            saved = profile_svc.set_tax_profile(db.session, client_id, data.get("vat_period"),
                                                data.get("location_class"), data.get("filings"))
        except NotFound:
            return self.response_404()
        return self.response(200, **saved)


def _choices(enum_class: type[enum.Enum], members: list) -> list[tuple[str, str]]:
    return [(m.value, str(ENUM_LABELS[enum_class][m])) for m in members]


def profile_form(taxpayer_type: TaxpayerType, data: dict) -> FlaskForm:
    """The profile form: VAT period, location class and one period select per tax."""

    class ProfileForm(FlaskForm):
        vat_period = SelectField(_l("VAT period"), choices=_choices(
            FilingPeriod, [FilingPeriod.monthly] if taxpayer_type is TaxpayerType.general
            else [FilingPeriod.monthly, FilingPeriod.quarterly]), validate_choice=False)
        location_class = SelectField(_l("Location class"), choices=_choices(LocationClass, list(LocationClass)),
                                     validate_choice=False)

    for tax in TaxKind:
        setattr(ProfileForm, f"filing_{tax.value}", SelectField(
            ENUM_LABELS[TaxKind][tax], validate_choice=False,
            choices=[("", str(_l("Not filed")))] + _choices(FilingPeriod, list(FilingPeriod))))
    initial = {"vat_period": data["vat_period"], "location_class": data["location_class"]}
    initial.update({f"filing_{tax}": period for tax, period in data["filings"].items()})
    return ProfileForm(data=initial)


class ClientTaxProfileView(BaseView):
    """税务档案: a client's tax profile, shown to whoever may see the client, edited by whoever may
    edit its profile (Admin, Manager, the client's Accountant)."""
    permission_label = _l("Client tax profile")  # on the role screens

    route_base = "/clienttaxprofile"
    default_view = "show"

    def _profile(self, client_id: int) -> dict:
        if not client_in_scope(client_id):
            abort(404)
        try:
            return profile_svc.tax_profile(db.session, client_id)
        except DomainError:
            abort(404)

    def _page(self, client_id: int, data: dict, form: FlaskForm, status: int = 200):  # noqa: ANN202
        from app.models.crm import Client

        client = db.session.get(Client, client_id)
        can_edit = self.appbuilder.sm.has_access("can_edit", self.class_permission_name)
        return self.render_template("tax_profile.html", client=client, profile=data, form=form,
                                    can_edit=can_edit, labels=ENUM_LABELS, TaxKind=TaxKind,
                                    FilingPeriod=FilingPeriod, LocationClass=LocationClass,
                                    title=_l("Tax profile")), status

    @expose("/<int:pk>")
    @has_access
    @permission_name("show")
    def show(self, pk: int):  # noqa: ANN201
        client_id = pk
        data = self._profile(client_id)
        return self._page(client_id, data, profile_form(TaxpayerType(data["taxpayer_type"]), data))

    @expose("/<int:pk>/save", methods=["POST"])
    @has_access
    @permission_name("edit")
    def save(self, pk: int):  # noqa: ANN201
        client_id = pk
        data = self._profile(client_id)
        form = profile_form(TaxpayerType(data["taxpayer_type"]), data)
        form.process(request.form)
        if not form.validate():
            return self._page(client_id, data, form, 422)
        filings = {tax.value: form[f"filing_{tax.value}"].data for tax in TaxKind
                   if form[f"filing_{tax.value}"].data}
        try:
            profile_svc.set_tax_profile(db.session, client_id, form.vat_period.data, form.location_class.data,
                                        filings)
        except DomainError as exc:
            db.session.rollback()
            for field, messages in exc.errors.items():
                name = field.replace("filings.", "filing_")
                target = form[name] if name in form else None
                if target is not None:
                    target.errors = list(messages)
                else:
                    flash("; ".join(messages), "danger")
            return self._page(client_id, data, form, 422)
        flash(str(_l("Tax profile saved.")), "success")
        return redirect(url_for("ClientTaxProfileView.show", pk=client_id))


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the rate screen (menu 税务), the rate and profile APIs and the profile page."""
    appbuilder.add_view(TaxRateModelView, "Tax rates", label=_l("Tax rates"), icon="fa-percent",
                        category="Tax", category_label=lazy_pgettext("menu", "Tax"), category_icon="fa-calculator")
    appbuilder.add_view_no_menu(ClientTaxProfileView)
    appbuilder.add_api(TaxRateApi)
    appbuilder.add_api(ClientTaxProfileApi)
