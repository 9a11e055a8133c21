"""Leads (线索): the screen under 客户 (list, show, edit, and on a lead's page its steps: contacted,
lost, reopened, converted to a client) and the REST API ``/api/v1/lead/``.

The rules are app/services/leads.py's (the screen and the API check the same ones); leads are made
from the agent console (app/services/chat_crm.py), not on these screens. Agents and Managers read,
edit and move leads; converting makes or picks a client, which only Managers (and Admin) may.
Every change is in the audit log (the model is audited).
"""

from __future__ import annotations

from flask import Flask, Response, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.api import protect
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from markupsafe import Markup
from marshmallow import Schema, fields
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import TextAreaField

from app.errors import api_safe as safe
from app.extensions import db
from app.models.crm import Client, TaxpayerType
from app.models.leads import Lead, LeadStatus
from app.permissions import scoped_accountant_id
from app.services import leads as svc
from app.services.errors import DomainError
from app.services.inputs import parse_id
from app.views.api import DeskApi
from app.views.api_related import IdOnlyConverter
from app.views.common import DeskModelView, EagerInterface, format_datetime, get_or_404
from app.views.labels import enum_formatter, enum_label
from app.views.ledger_api import LedgerError, json_object_body

LABELS = {
    "name": _l("Name"), "company": _l("Company name"), "phone": _l("Phone"), "email": _l("Email"),
    "question": _l("Question"), "status": _l("Status"), "site": _l("Site"), "site_id": _l("Site"),
    "source_url": _l("Source page"), "visitor": _l("Visitor"), "visitor_id": _l("Visitor"),
    "conversation": _l("Conversation"), "conversation_id": _l("Conversation"),
    "owner": lazy_pgettext("lead", "Owner"), "owner_id": lazy_pgettext("lead", "Owner"),
    "client": _l("Client"), "client_id": _l("Client"), "lost_reason": _l("Reason lost"), "notes": _l("Notes"),
    "created_at": _l("Created"), "updated_at": _l("Updated"),
}


def _conversation_link(conversation) -> Markup:  # noqa: ANN001
    if conversation is None:
        return Markup("")
    return Markup('<a href="/chat/history/{}">#{}</a>').format(conversation.id, conversation.id)


def _client_link(client) -> Markup:  # noqa: ANN001
    if client is None:
        return Markup("")
    return Markup('<a href="/clientmodelview/show/{}">{}</a>').format(client.id, client.name)


class LeadModelView(DeskModelView):
    """线索: prospective clients with their source (site, page, chat) and their steps."""

    datamodel = EagerInterface(Lead, options=(joinedload(Lead.site), joinedload(Lead.owner),
                                              joinedload(Lead.client), joinedload(Lead.conversation)))
    base_permissions = ["can_list", "can_show", "can_edit", "can_delete", "can_transition", "can_convert"]
    base_order = ("created_at", "desc")
    show_template = "lead_show.html"
    list_columns = ["created_at", "name", "company", "phone", "status", "site", "owner", "client"]
    show_columns = ["name", "company", "phone", "email", "question", "status", "lost_reason", "site",
                    "source_url", "conversation", "owner", "client", "notes", "created_at", "updated_at"]
    edit_columns = ["name", "company", "phone", "email", "question", "notes"]
    search_columns = ["name", "company", "phone", "email", "status", "site", "created_at"]
    order_columns = ["created_at", "name", "company", "status"]
    label_columns = LABELS
    formatters_columns = {"status": enum_formatter(LeadStatus), "created_at": format_datetime,
                          "updated_at": format_datetime, "conversation": _conversation_link,
                          "client": _client_link}
    edit_form_extra_fields = {"question": TextAreaField(_l("Question"), render_kw={"rows": 4}),
                              "notes": TextAreaField(_l("Notes"), render_kw={"rows": 4})}
    list_title = _l("Leads")
    show_title = _l("Lead")
    edit_title = _l("Edit lead")

    def pre_update(self, item: Lead) -> None:
        svc.validate_lead(item)

    def render_template(self, template, **kwargs):  # noqa: ANN001, ANN003, ANN201
        if template == self.show_template and "pk" in kwargs:
            lead = db.session.get(Lead, int(kwargs["pk"]))
            if lead is not None:
                can = self.appbuilder.sm.has_access
                kwargs.update(lead=lead, status_label=enum_label(lead.status),
                              steps={status.value for status in svc.STEPS[lead.status]},
                              can_transition=can("can_transition", self.class_permission_name),
                              can_convert=can("can_convert", self.class_permission_name)
                              and lead.status in svc.OPEN)
        return super().render_template(template, **kwargs)

    def _lead(self, pk: int) -> Lead:
        return get_or_404(Lead, pk, scoped=False)

    @expose("/transition/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("transition")
    def transition(self, pk: int):  # noqa: ANN201
        """Mark the lead contacted, lost (with a reason) or, when lost, new again. A refusal goes
        back to the lead's page with its message (app.errors)."""
        self._lead(pk)
        lead = svc.transition(db.session, pk, request.form.get("status", ""), request.form.get("reason"))
        flash(str(_l("The lead is now: %(status)s.", status=enum_label(lead.status))), "success")
        return redirect(url_for("LeadModelView.show", pk=pk))

    @expose("/convert/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("convert")
    def convert(self, pk: int):  # noqa: ANN201
        """Convert the lead: into a contact of a client the user sees, or of a new client."""
        lead = self._lead(pk)
        scope = scoped_accountant_id()
        clients = select(Client.id, Client.name).order_by(Client.name)
        if scope is not None:
            clients = clients.where(Client.accountant_id == scope)
        form = {"client_id": "", "name": lead.company or "", "credit_code": "", "taxpayer_type": "small_scale"}
        errors: dict[str, list[str]] = {}
        if request.method == "POST":
            form = {key: request.form.get(key, "").strip() for key in form}
            try:
                client = svc.convert(db.session, pk, client_id=parse_id(form["client_id"]) if form["client_id"]
                                     else None, name=form["name"], credit_code=form["credit_code"],
                                     taxpayer_type=form["taxpayer_type"], accountant_scope=scope)
            except DomainError as exc:
                errors = exc.errors
                if set(errors) - set(form):  # not about a field of the form: said at the top
                    flash(exc.message, "danger")
            else:
                flash(str(_l("The lead is now a contact of %(client)s.", client=client.name)), "success")
                return redirect(url_for("ClientModelView.show", pk=client.id))
        return self.render_template("lead_convert.html", lead=lead, form=form, errors=errors,
                                    clients=db.session.execute(clients.limit(1000)).all(),
                                    taxpayer_types=[(t.value, enum_label(t)) for t in TaxpayerType],
                                    title=_l("Convert lead to client"), appbuilder=self.appbuilder)


# --- API ----------------------------------------------------------------------------------------

LEAD_COLUMNS = ["id", "name", "company", "phone", "email", "question", "status", "site_id", "source_url",
                "visitor_id", "conversation_id", "owner_id", "client_id", "lost_reason", "notes", "created_at",
                "updated_at"]
LEAD_WRITE = ["name", "company", "phone", "email", "question", "notes"]


class LeadConverter(IdOnlyConverter):
    """The project's converter, whose lead schemas also carry the ids of the visitor,
    conversation, site, owner and client (foreign keys marshmallow-sqlalchemy leaves out)."""

    def _meta_schema_factory(self, columns, model, class_mixin, parent_schema_name=None):  # noqa: ANN001, ANN202
        schema = super()._meta_schema_factory(columns, model, class_mixin, parent_schema_name=parent_schema_name)
        if not columns:
            return schema

        class LeadFields(schema):
            class Meta(schema.Meta):
                include_fk = True

        return LeadFields


class LeadOut(Schema):
    id = fields.Integer()
    name = fields.String()
    company = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    question = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": [s.value for s in LeadStatus]})
    status_label = fields.String()
    site_id = fields.Integer(allow_none=True)
    site_name = fields.String(allow_none=True)
    source_url = fields.String(allow_none=True)
    visitor_id = fields.Integer(allow_none=True)
    conversation_id = fields.Integer(allow_none=True)
    owner_id = fields.Integer(allow_none=True)
    owner = fields.String(allow_none=True)
    client_id = fields.Integer(allow_none=True)
    client_name = fields.String(allow_none=True)
    lost_reason = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()


class LeadTransitionIn(Schema):
    status = fields.String(required=True, metadata={"enum": ["contacted", "lost", "new"]})
    reason = fields.String(metadata={"description": "why the lead was lost (required for lost)"})


class LeadConvertIn(Schema):
    client_id = fields.Integer(metadata={"description": "an existing client; else a new client is made"})
    name = fields.String(metadata={"description": "the new client's name (default: the lead's company)"})
    credit_code = fields.String(metadata={"description": "the new client's unified social credit code"})
    taxpayer_type = fields.String(metadata={"enum": [t.value for t in TaxpayerType]})


class LeadConvertOut(Schema):
    client_id = fields.Integer()
    lead = fields.Nested(LeadOut)




class LeadApi(DeskApi):
    """``/api/v1/lead/``: the leads (read, edit, delete; their steps and conversion)."""

    resource_name = "lead"
    model2schemaconverter = LeadConverter
    datamodel = EagerInterface(Lead)
    base_filters = []
    include_route_methods = {"get", "get_list", "info", "put", "delete", "transition", "convert"}
    list_columns = LEAD_COLUMNS
    show_columns = LEAD_COLUMNS
    edit_columns = LEAD_WRITE
    search_columns = ["name", "company", "phone", "email", "status", "created_at"]
    order_columns = ["id", "name", "created_at", "status"]
    label_columns = LABELS
    openapi_spec_component_schemas = (LedgerError, LeadOut, LeadTransitionIn, LeadConvertIn, LeadConvertOut)

    def pre_update(self, item: Lead) -> None:
        svc.validate_lead(item)

    @expose("/<int:pk>/transition", methods=["POST"])
    @protect()
    @safe
    @permission_name("transition")
    def transition(self, pk: int) -> Response:
        """Mark a lead contacted, lost (with a reason) or, when lost, new again
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/LeadTransitionIn'}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LeadOut'}
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
        body = json_object_body()
        lead = svc.transition(db.session, pk, body.get("status"), body.get("reason"))
        return self.response(200, **svc.lead_json(lead))

    @expose("/<int:pk>/convert", methods=["POST"])
    @protect()
    @safe
    @permission_name("convert")
    def convert(self, pk: int) -> Response:
        """Convert a new or contacted lead into a contact of an existing client or of a new one
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/LeadConvertIn'}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LeadConvertOut'}
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
        body = json_object_body()
        client = svc.convert(db.session, pk, client_id=body.get("client_id"), name=body.get("name"),
                             credit_code=body.get("credit_code"), taxpayer_type=body.get("taxpayer_type"),
                             accountant_scope=scoped_accountant_id())
        return self.response(200, client_id=client.id, lead=svc.lead_json(db.session.get(Lead, pk)))


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the leads screen under 客户 and its API."""
    appbuilder.add_view(LeadModelView, "Leads", label=_l("Leads"), icon="fa-user-plus", category="Clients",
                        category_label=_l("Clients"), category_icon="fa-building")
    appbuilder.add_api(LeadApi)
