"""Contract screens: contracts with lifecycle actions, history, bills, payments, renewals."""

from __future__ import annotations

import json
import logging
from datetime import date

from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_wtf import FlaskForm
from sqlalchemy import false, select
from sqlalchemy.orm import joinedload
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.extensions import db
from app.models.contracts import BillingCycle, Contract, ContractChange, FeeBill, Payment, ServiceType
from app.models.contracts import ContractStatus as S
from app.permissions import scoped_accountant_id
from app.services import contracts as svc
from app.services.errors import DomainError
from app.views.common import (
    DeskModelView,
    EagerInterface,
    MoneyValidator,
    NotBefore,
    format_datetime,
    get_or_404,
    scope_filters,
    target_id,
)
from app.views.labels import ENUM_LABELS, LabelledEnumField, enum_formatter, enum_label
from app.views.pdf_links import statement_url

MONEY_LABELS = {"monthly_fee": _l("Monthly fee"), "amount": _l("Amount")}


def format_changes(details: str | None) -> str:
    """``{"monthly_fee": ["500.00", "650.00"]}`` → ``Monthly fee: 500.00 → 650.00``."""
    if not details:
        return ""
    try:
        data = json.loads(details)
    except ValueError:
        return details
    labels = ContractModelView.label_columns
    return "; ".join(f"{labels.get(key, key)}: {old} → {new}" for key, (old, new) in data.items())


class ContractChangeModelView(DeskModelView):
    datamodel = EagerInterface(ContractChange, options=(joinedload(ContractChange.contract),
                                                          joinedload(ContractChange.changed_by)))
    base_filters = scope_filters()
    base_permissions = ["can_list", "can_show"]
    base_order = ("id", "desc")
    list_columns = ["changed_at", "contract", "from_status", "to_status", "reason", "details", "changed_by"]
    show_columns = list_columns
    search_columns = ["contract", "to_status", "changed_at"]
    label_columns = {"changed_at": _l("When"), "contract": _l("Contract"),
                     "from_status": lazy_pgettext("status change", "From"),
                     "to_status": lazy_pgettext("status change", "To"), "reason": _l("Reason"),
                     "details": _l("Changes"),
                     "changed_by": _l("By")}
    formatters_columns = {
        "changed_at": format_datetime,
        "details": lambda v: format_changes(v),
        "from_status": lambda v: enum_label(S(v)) if v else "",
        "to_status": lambda v: enum_label(S(v)) if v else "",
    }
    list_title = _l("Contract history")


class FilterBillClient(BaseFilter):
    """The bills of one client's contracts (``_flt_0_client=7``); text that is no id matches nothing."""

    name = _l("Client")
    arg_name = "cli"

    def apply(self, query, value):  # noqa: ANN001, ANN201
        from app.services.inputs import parse_id

        client_id = parse_id(value)
        if client_id is None:
            return query.filter(false())
        return query.filter(FeeBill.contract_id.in_(select(Contract.id).where(Contract.client_id == client_id)))


class FilterBillUnpaid(BaseFilter):
    """The bills due before a day (``YYYY-MM-DD``) and not paid, payments settling a contract's
    bills oldest first (``_flt_0_unpaid=2026-12-06``: the overdue fees on that day)."""

    name = _l("Overdue and unpaid on (YYYY-MM-DD)")
    arg_name = "unp"

    def apply(self, query, value):  # noqa: ANN001, ANN201
        from app.services.work_board import unpaid_bills

        try:
            day = date.fromisoformat(str(value).strip())
        except ValueError:
            return query.filter(false())
        return query.filter(FeeBill.id.in_(unpaid_bills(day)))


class _OurFilterColumns(logging.Filter):
    """Drops Flask-AppBuilder's "Filter type not supported" for the fee bills' own filters only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == "Filter type not supported for column: %s" and record.args in (("client",),
                                                                                                ("unpaid",)))


OUR_FILTER_COLUMNS = _OurFilterColumns()


class FeeBillModelView(DeskModelView):
    datamodel = EagerInterface(FeeBill, options=(joinedload(FeeBill.contract),))
    base_filters = scope_filters()
    base_order = ("period_start", "desc")
    list_columns = ["contract", "period_start", "period_end", "amount", "billed_on", "due_date", "note"]
    show_columns = list_columns
    add_columns = edit_columns = ["contract", "period_start", "period_end", "amount", "billed_on",
                                  "due_date", "note"]
    search_columns = ["contract", "period_start", "billed_on", "due_date", "client", "unpaid"]
    search_form_extra_fields = {"client": StringField(_l("Client")),
                                "unpaid": StringField(_l("Overdue and unpaid on (YYYY-MM-DD)"))}

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        # "client" and "unpaid" are filters of ours, not columns: Flask-AppBuilder, which takes
        # every search column for a column, would log that it has no filter for them at each start.
        logging.getLogger("flask_appbuilder.models.filters").addFilter(OUR_FILTER_COLUMNS)  # once: a set
        super().__init__(**kwargs)
        for filters in (self._filters.get_search_filters(), self._filters._all_filters):
            filters["client"] = [FilterBillClient("client", self.datamodel)]
            filters["unpaid"] = [FilterBillUnpaid("unpaid", self.datamodel)]
    label_columns = {"contract": _l("Contract"), "period_start": _l("Period start"),
                     "period_end": _l("Period end"), "amount": _l("Amount"), "billed_on": _l("Billed on"),
                     "due_date": _l("Due date"), "note": _l("Note")}
    validators_columns = {"amount": [DataRequired(), MoneyValidator()],
                          "period_end": [DataRequired(), NotBefore("period_start")]}
    add_form_query_rel_fields = edit_form_query_rel_fields = {"contract": scope_filters()}
    list_title = _l("Fee bills")
    show_title = _l("Fee bill")
    add_title = _l("Add fee bill")
    edit_title = _l("Edit fee bill")


class PaymentModelView(DeskModelView):
    datamodel = EagerInterface(Payment, options=(joinedload(Payment.contract),))
    base_filters = scope_filters()
    base_order = ("received_on", "desc")
    list_columns = ["contract", "received_on", "amount", "method", "reference", "note"]
    show_columns = list_columns
    add_columns = edit_columns = ["contract", "received_on", "amount", "method", "reference", "note"]
    search_columns = ["contract", "received_on", "method", "reference"]
    label_columns = {"contract": _l("Contract"), "received_on": _l("Received on"), "amount": _l("Amount"),
                     "method": _l("Method"), "reference": _l("Reference"), "note": _l("Note")}
    validators_columns = {"amount": [DataRequired(), MoneyValidator(allow_zero=False)],
                          "received_on": [DataRequired()]}
    add_form_query_rel_fields = edit_form_query_rel_fields = {"contract": scope_filters()}
    list_title = _l("Payments received")
    show_title = _l("Payment")
    add_title = _l("Record payment")
    edit_title = _l("Edit payment")

    def pre_add(self, item) -> None:  # noqa: ANN001
        svc.check_payment_allowed(db.session, item)

    pre_update = pre_add


class ChangeForm(FlaskForm):
    service_type = SelectField(_l("Service type"), validators=[Optional()])
    monthly_fee = StringField(_l("Monthly fee"), validators=[Optional(), Length(max=20)])
    billing_cycle = SelectField(_l("Billing cycle"), validators=[Optional()])
    end_date = DateField(_l("End date"), validators=[Optional()])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class ReasonForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class ContractModelView(DeskModelView):
    datamodel = EagerInterface(Contract, options=(joinedload(Contract.client),))
    base_filters = scope_filters()
    base_order = ("end_date", "asc")
    show_template = "contract_show.html"
    list_columns = ["number", "client", "service_type", "monthly_fee", "billing_cycle", "start_date",
                    "end_date", "status"]
    csv_columns = list_columns
    show_columns = ["number", "client", "service_type", "monthly_fee", "billing_cycle", "start_date",
                    "end_date", "status", "notes", "created_at"]
    add_columns = edit_columns = ["client", "number", "service_type", "monthly_fee", "billing_cycle",
                                  "start_date", "end_date", "notes"]
    search_columns = ["number", "client", "service_type", "billing_cycle", "status", "start_date",
                      "end_date", "monthly_fee"]
    label_columns = {"number": _l("Contract number"), "client": _l("Client"),
                     "service_type": _l("Service type"), "monthly_fee": _l("Monthly fee"),
                     "billing_cycle": _l("Billing cycle"), "start_date": _l("Start date"),
                     "end_date": _l("End date"), "status": _l("Status"), "notes": _l("Notes"),
                     "created_at": _l("Created")}
    formatters_columns = {"service_type": enum_formatter(ServiceType), "billing_cycle": enum_formatter(BillingCycle),
                          "status": enum_formatter(S),
                          "created_at": format_datetime}
    validators_columns = {"monthly_fee": [DataRequired(), MoneyValidator()],
                          "end_date": [DataRequired(), NotBefore("start_date")],
                          "start_date": [DataRequired()],
                          "number": [DataRequired(), Length(max=50)]}
    add_form_extra_fields = edit_form_extra_fields = {
        "service_type": LabelledEnumField(ServiceType, label=_l("Service type"), validators=[DataRequired()]),
        "billing_cycle": LabelledEnumField(BillingCycle, label=_l("Billing cycle"),
                                           validators=[DataRequired()]),
    }
    add_form_query_rel_fields = edit_form_query_rel_fields = {"client": scope_filters()}
    related_views = [ContractChangeModelView, FeeBillModelView, PaymentModelView]
    list_title = _l("Contracts")
    show_title = _l("Contract")
    add_title = _l("Add contract")
    edit_title = _l("Edit contract (draft)")

    def pre_add(self, item) -> None:  # noqa: ANN001
        self.require_scope(target_id(item, "client"))
        svc.prepare_new_contract(db.session, item)

    def pre_update(self, item) -> None:  # noqa: ANN001
        self.require_scope(target_id(item, "client"))
        svc.prepare_contract_edit(db.session, item)

    def pre_delete(self, item) -> None:  # noqa: ANN001
        svc.check_contract_deletable(item)

    def render_template(self, template, **kwargs):  # noqa: ANN001, ANN003, ANN201
        if template == self.show_template and "pk" in kwargs:
            contract = db.session.get(Contract, int(kwargs["pk"]))
            if contract is not None:
                kwargs["contract"] = contract
                try:
                    kwargs["balance"] = svc.contract_balance(db.session, contract.id)
                except DomainError as exc:  # sums beyond what SQLite adds up exactly
                    kwargs["balance"], kwargs["balance_error"] = None, exc.message
                kwargs["allowed"] = {t.value for t in svc.ALLOWED_TRANSITIONS[contract.status]}
                kwargs["can_transition"] = self.appbuilder.sm.has_access("can_transition", "ContractModelView")
                kwargs["can_bill"] = self.appbuilder.sm.has_access("can_bill", "ContractModelView")
                kwargs["status_label"] = enum_label(contract.status)
                kwargs["statement_url"] = statement_url(contract.client_id)
        return super().render_template(template, **kwargs)

    # --- lifecycle actions ------------------------------------------------------------------

    def _contract(self, pk: int) -> Contract:
        return get_or_404(Contract, pk)

    def _done(self, pk: int):  # noqa: ANN202
        """Back to the contract. (A refusal raised by the actions below goes back to the page the
        button was on, with its message: ``app.errors``.)"""
        return redirect(url_for("ContractModelView.show", pk=pk))

    @expose("/activate/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("transition")
    def activate(self, pk: int):  # noqa: ANN201
        svc.activate_contract(db.session, self._contract(pk))
        flash(str(_l("Contract activated.")), "success")
        return self._done(pk)

    @expose("/expire/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("transition")
    def expire(self, pk: int):  # noqa: ANN201
        svc.expire_contract(db.session, self._contract(pk))
        flash(str(_l("Contract marked as expired.")), "success")
        return self._done(pk)

    @expose("/terminate/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("transition")
    def terminate(self, pk: int):  # noqa: ANN201
        contract = self._contract(pk)
        form = ReasonForm()
        if form.validate_on_submit():
            try:
                svc.terminate_contract(db.session, contract, form.reason.data)
                flash(str(_l("Contract terminated.")), "success")
                return self._done(pk)
            except DomainError as exc:
                db.session.rollback()
                flash(exc.message, "danger")
        return self.render_template("contract_action.html", form=form, contract=contract,
                                    title=_l("Terminate contract"), appbuilder=self.appbuilder)

    @expose("/change/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("transition")
    def change(self, pk: int):  # noqa: ANN201
        contract = self._contract(pk)
        form = ChangeForm()
        form.service_type.choices = [("", "—")] + [(k.value, v) for k, v in ENUM_LABELS[ServiceType].items()]
        form.billing_cycle.choices = [("", "—")] + [(k.value, v) for k, v in ENUM_LABELS[BillingCycle].items()]
        if request.method == "GET":
            form.monthly_fee.data = str(contract.monthly_fee)
            form.end_date.data = contract.end_date
            form.service_type.data = contract.service_type.value
            form.billing_cycle.data = contract.billing_cycle.value
        if form.validate_on_submit():
            values = {"service_type": form.service_type.data or None,
                      "monthly_fee": form.monthly_fee.data or None,
                      "billing_cycle": form.billing_cycle.data or None,
                      "end_date": form.end_date.data}
            try:
                svc.change_contract(db.session, contract, form.reason.data, **values)
                flash(str(_l("Contract changed.")), "success")
                return self._done(pk)
            except DomainError as exc:
                db.session.rollback()
                for field, messages in exc.errors.items():
                    if field in form:
                        form[field].errors = list(form[field].errors) + messages
                    else:
                        flash("; ".join(messages), "danger")
        return self.render_template("contract_action.html", form=form, contract=contract,
                                    title=_l("Change contract"), appbuilder=self.appbuilder)

    @expose("/bill/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("bill")
    def bill(self, pk: int):  # noqa: ANN201
        created = svc.bill_contract(db.session, self._contract(pk), date.today())
        flash(str(_l("%(n)s bill(s) created.", n=len(created))), "success")
        return self._done(pk)


class RenewalView(BaseView):
    """Contracts ending within the renewal window (续约提醒)."""

    route_base = "/renewals"
    default_view = "list"

    @expose("/")
    @has_access
    def list(self):  # noqa: ANN201
        from flask import current_app

        days = current_app.config["RENEWAL_WINDOW_DAYS"]
        contracts = svc.renewals_due(db.session, date.today(), days, accountant_id=scoped_accountant_id())
        return self.render_template("renewals.html", contracts=contracts, days=days,
                                    enum_label=enum_label, today=date.today())

