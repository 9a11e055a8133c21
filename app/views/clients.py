"""Client screens: clients with their contacts, bank accounts, service records and tags."""

from __future__ import annotations

from flask import url_for
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.sqla.models import Role, User
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy.orm import joinedload, selectinload
from wtforms import StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from app.models.crm import BankAccount, Client, ClientContact, ClientStatus, ServiceRecord, Tag, TaxpayerType
from app.permissions import current_user_id, scoped_accountant_id
from app.services.clients import check_client_deletable, mask
from app.services.errors import DomainError
from app.services.tax_profile import check_taxpayer_type
from app.views.common import (
    ClientScopeFilter,
    CreditCodeValidator,
    DeskModelView,
    EagerInterface,
    IdNumberValidator,
    format_datetime,
    format_secret,
    scope_filters,
    target_id,
)
from app.views.contracts import ContractModelView
from app.views.documents import DocumentModelView
from app.views.labels import LabelledEnumField, enum_formatter
from app.views.pdf_links import statement_url


class SecretField(StringField):
    """Never renders the stored value: shows it masked as a placeholder; blank keeps it."""

    def _value(self) -> str:
        return ""

    def __call__(self, **kwargs):  # noqa: ANN003, ANN204
        if self.object_data:
            kwargs.setdefault("placeholder", mask(self.object_data) + "  " + str(_l("(leave blank to keep)")))
        kwargs.setdefault("autocomplete", "off")
        return super().__call__(**kwargs)

    def populate_obj(self, obj, name) -> None:  # noqa: ANN001
        if self.data:
            setattr(obj, name, self.data.strip())


class AccountantRoleFilter(BaseFilter):
    """Relation dropdowns: active users holding the Accountant role."""

    name = "accountant role"
    arg_name = "accountantrole"

    def apply(self, query, value):  # noqa: ANN001, ANN201, ARG002
        return query.filter(User.active.is_(True), User.roles.any(Role.name == "Accountant"))


CLIENT_LABELS = {
    "name": _l("Name"),
    "credit_code": _l("Unified social credit code"),
    "taxpayer_type": _l("Taxpayer type"),
    "legal_rep_name": _l("Legal representative"),
    "legal_rep_id_number": _l("Legal representative ID number"),
    "registered_address": _l("Registered address"),
    "office_address": _l("Office address"),
    "business_scope": _l("Business scope"),
    "accountant": _l("Accountant"),
    "status": _l("Status"),
    "tags": _l("Tags"),
    "notes": _l("Notes"),
    "created_at": _l("Created"),
    "updated_at": _l("Updated"),
    "client": _l("Client"),
}


def _scope_guard(view: DeskModelView, item) -> None:  # noqa: ANN001
    """Accountants keep their clients: they may not hand a client to someone else."""
    scope = scoped_accountant_id()
    if scope is not None and target_id(item, "accountant") != scope:
        raise DomainError({"accountant": [str(_l("You may not assign a client to someone else."))]})


class TagModelView(DeskModelView):
    datamodel = SQLAInterface(Tag)
    list_columns = ["name"]
    add_columns = edit_columns = show_columns = ["name"]
    label_columns = {"name": _l("Name")}
    list_title = _l("Tags")
    search_columns = ["name"]


class ContactModelView(DeskModelView):
    datamodel = EagerInterface(ClientContact, options=(joinedload(ClientContact.client),))
    base_filters = scope_filters()
    list_columns = ["client", "name", "position", "phone", "email", "wechat", "is_primary"]
    add_columns = edit_columns = ["client", "name", "position", "phone", "email", "wechat", "is_primary",
                                  "chat_user_id"]
    show_columns = add_columns
    search_columns = ["client", "name", "phone", "email", "wechat"]
    label_columns = {
        "client": _l("Client"), "name": _l("Name"), "position": _l("Position"), "phone": _l("Phone"),
        "email": _l("Email"), "wechat": _l("WeChat"), "is_primary": _l("Primary contact"),
        "chat_user_id": _l("Website user id"),
    }
    description_columns = {"chat_user_id": _l("The contact's user id on the agency's website: a chat visitor "
                                              "signed in with it is recognised as this contact.")}
    validators_columns = {"email": [Optional(), Email()], "phone": [Length(max=30)],
                          "chat_user_id": [Length(max=100)]}
    add_form_query_rel_fields = edit_form_query_rel_fields = {"client": scope_filters()}
    list_title = _l("Contacts")
    show_title = _l("Contact")
    add_title = _l("Add contact")
    edit_title = _l("Edit contact")

    def pre_add(self, item) -> None:  # noqa: ANN001
        self.require_scope(target_id(item, "client"))

    pre_update = pre_add


class BankAccountModelView(DeskModelView):
    datamodel = EagerInterface(BankAccount, options=(joinedload(BankAccount.client),))
    base_filters = scope_filters()
    list_columns = ["client", "bank_name", "account_number", "is_basic"]
    show_columns = list_columns
    add_columns = edit_columns = ["client", "bank_name", "account_number", "is_basic"]
    search_columns = ["client", "bank_name"]
    label_columns = {"client": _l("Client"), "bank_name": _l("Bank"),
                     "account_number": _l("Account number"), "is_basic": _l("Basic account")}
    formatters_columns = {"account_number": format_secret}
    add_form_extra_fields = {"account_number": StringField(_l("Account number"),
                                                           validators=[DataRequired(), Length(max=40)])}
    edit_form_extra_fields = {"account_number": SecretField(_l("Account number"),
                                                            validators=[Optional(), Length(max=40)])}
    add_form_query_rel_fields = edit_form_query_rel_fields = {"client": scope_filters()}
    list_title = _l("Bank accounts")
    show_title = _l("Bank account")
    add_title = _l("Add bank account")
    edit_title = _l("Edit bank account")

    def pre_add(self, item) -> None:  # noqa: ANN001
        self.require_scope(target_id(item, "client"))

    pre_update = pre_add


class ServiceRecordModelView(DeskModelView):
    datamodel = EagerInterface(ServiceRecord, options=(joinedload(ServiceRecord.client),
                                                        joinedload(ServiceRecord.performed_by)))
    base_filters = scope_filters()
    base_order = ("performed_at", "desc")
    list_columns = ["performed_at", "client", "subject", "performed_by", "result"]
    show_columns = ["client", "performed_at", "performed_by", "subject", "description", "result"]
    add_columns = edit_columns = ["client", "performed_at", "subject", "description", "result"]
    search_columns = ["client", "subject", "performed_by", "performed_at", "result"]
    label_columns = {"client": _l("Client"), "performed_at": _l("When"), "performed_by": _l("By"),
                     "subject": _l("What was done"), "description": _l("Details"), "result": _l("Result")}
    formatters_columns = {"performed_at": format_datetime}
    add_form_query_rel_fields = edit_form_query_rel_fields = {"client": scope_filters()}
    list_title = _l("Service records")
    show_title = _l("Service record")
    add_title = _l("Add service record")
    edit_title = _l("Edit service record")

    def pre_add(self, item) -> None:  # noqa: ANN001
        self.require_scope(target_id(item, "client"))
        item.performed_by_id = item.performed_by_id or current_user_id()

    def pre_update(self, item) -> None:  # noqa: ANN001
        self.require_scope(target_id(item, "client"))


class ClientModelView(DeskModelView):
    datamodel = EagerInterface(Client, options=(joinedload(Client.accountant), selectinload(Client.tags)))
    base_filters = scope_filters()
    base_order = ("name", "asc")
    show_template = "show_master_detail.html"
    edit_template = "appbuilder/general/model/edit_cascade.html"
    list_columns = ["name", "credit_code", "taxpayer_type", "accountant", "status", "tags"]
    csv_columns = ["name", "credit_code", "taxpayer_type", "legal_rep_name", "registered_address",
                   "office_address", "accountant", "status", "tags", "notes"]
    search_columns = ["name", "credit_code", "taxpayer_type", "accountant", "status", "tags",
                      "legal_rep_name", "office_address"]
    order_columns = ["name", "credit_code", "status", "taxpayer_type"]
    show_fieldsets = [
        (_l("Company"), {"fields": ["name", "credit_code", "taxpayer_type", "status", "tags",
                                    "accountant"]}),
        (_l("Legal representative"), {"fields": ["legal_rep_name", "legal_rep_id_number"]}),
        (_l("Addresses and scope"), {"fields": ["registered_address", "office_address",
                                                "business_scope"]}),
        (_l("Notes"), {"fields": ["notes", "created_at", "updated_at"], "expanded": False}),
    ]
    add_columns = ["name", "credit_code", "taxpayer_type", "status", "accountant", "tags",
                   "legal_rep_name", "legal_rep_id_number", "registered_address", "office_address",
                   "business_scope", "notes"]
    edit_columns = add_columns
    label_columns = CLIENT_LABELS
    formatters_columns = {
        "legal_rep_id_number": format_secret,
        "taxpayer_type": enum_formatter(TaxpayerType),
        "status": enum_formatter(ClientStatus),
        "created_at": format_datetime,
        "updated_at": format_datetime,
        "tags": lambda tags: Markup(", ").join(t.name for t in (tags or [])),
    }
    validators_columns = {
        "credit_code": [DataRequired(), CreditCodeValidator()],
        "name": [DataRequired(), Length(max=200)],
    }
    add_form_extra_fields = {
        "taxpayer_type": LabelledEnumField(TaxpayerType, label=_l("Taxpayer type"),
                                           validators=[DataRequired()]),
        "status": LabelledEnumField(ClientStatus, label=_l("Status"), validators=[DataRequired()]),
        "legal_rep_id_number": StringField(_l("Legal representative ID number"),
                                           validators=[Optional(), IdNumberValidator()]),
    }
    edit_form_extra_fields = {
        "taxpayer_type": LabelledEnumField(TaxpayerType, label=_l("Taxpayer type"),
                                           validators=[DataRequired()]),
        "status": LabelledEnumField(ClientStatus, label=_l("Status"), validators=[DataRequired()]),
        "legal_rep_id_number": SecretField(_l("Legal representative ID number"),
                                           validators=[Optional(), IdNumberValidator()]),
    }
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "accountant": [["id", AccountantRoleFilter, None]],
        "tags": [],
    }
    description_columns = {
        "credit_code": _l("18 characters; the last one is a check character."),
        "accountant": _l("The accountant who keeps this client's books."),
    }
    related_views = [ContactModelView, BankAccountModelView, ContractModelView, ServiceRecordModelView,
                     DocumentModelView]
    list_title = _l("Clients")
    show_title = _l("Client")
    add_title = _l("Add client")
    edit_title = _l("Edit client")

    def pre_add(self, item) -> None:  # noqa: ANN001
        _scope_guard(self, item)

    def pre_update(self, item) -> None:  # noqa: ANN001
        _scope_guard(self, item)
        check_taxpayer_type(self.datamodel.session, item)

    def delete_rule(self, item: Client) -> None:
        check_client_deletable(self.datamodel.session, item)

    def render_template(self, template, **kwargs):  # noqa: ANN001, ANN003, ANN201
        # The client's page links to its tax profile (税务档案) for whoever may see it.
        if template == self.show_template and "pk" in kwargs and self.appbuilder.sm.has_access(
                "can_show", "ClientTaxProfileView"):
            kwargs["tax_profile_url"] = url_for("ClientTaxProfileView.show", pk=int(kwargs["pk"]))
        if template == self.show_template and "pk" in kwargs:
            kwargs["statement_url"] = statement_url(int(kwargs["pk"]))
        return super().render_template(template, **kwargs)


def client_link(client: Client | None) -> Markup:
    if client is None:
        return Markup("")
    return Markup('<a href="/clientmodelview/show/{}">{}</a>').format(client.id, client.name)


__all__ = ["ClientModelView", "ContactModelView", "BankAccountModelView", "ServiceRecordModelView",
           "TagModelView", "ClientScopeFilter", "AccountantRoleFilter"]
