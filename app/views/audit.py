"""Read-only audit log screen for Admin and Manager: actions, record types, fields and enum values
shown by their labels."""

from __future__ import annotations

import json

from flask import current_app
from flask_appbuilder import Model
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from markupsafe import Markup, escape

from app.models.security import AuditLog
from app.views.common import DeskModelView, format_datetime
from app.views.labels import ENUM_LABELS, enum_label

# A label for every action in app.services.audit.ACTIONS (tests/test_zh_raw_values.py checks).
ACTION_LABELS = {
    "create": lazy_pgettext("audit action", "Created"),
    "update": lazy_pgettext("audit action", "Changed"),
    "delete": lazy_pgettext("audit action", "Deleted"),
    "login_success": lazy_pgettext("audit action", "Signed in"),
    "login_failure": lazy_pgettext("audit action", "Sign-in failed"),
    "password_ok": lazy_pgettext("audit action", "Password accepted, second factor pending"),
    "logout": lazy_pgettext("audit action", "Signed out"),
    "password_changed": lazy_pgettext("audit action", "Password changed"),
    "account_locked": lazy_pgettext("audit action", "Account locked"),
    "account_unlocked": lazy_pgettext("audit action", "Account unlocked"),
    "mfa_success": lazy_pgettext("audit action", "Second factor accepted"),
    "mfa_failure": lazy_pgettext("audit action", "Second factor refused"),
    "mfa_enrolled": lazy_pgettext("audit action", "Two-factor authentication turned on"),
    "mfa_recovery_codes": lazy_pgettext("audit action", "New recovery codes"),
    "mfa_disabled": lazy_pgettext("audit action", "Two-factor authentication turned off"),
    "mfa_reset": lazy_pgettext("audit action", "Two-factor authentication reset"),
    "period_close": lazy_pgettext("audit action", "Period closed"),
    "period_reopen": lazy_pgettext("audit action", "Period reopened"),
    "download": lazy_pgettext("audit action", "Downloaded"),
    "chat_transfer": lazy_pgettext("audit action", "Chat transferred"),
    "chat_transcript": lazy_pgettext("audit action", "Transcript mailed to the visitor"),
    "chat_retention": lazy_pgettext("audit action", "Old chats erased"),
    "chat_topics": lazy_pgettext("audit action", "Conversation topics set"),
    "chat_contact_linked": lazy_pgettext("audit action", "Visitor added as a client contact"),
    "chat_statement_sent": lazy_pgettext("audit action", "Statement sent into the chat"),
}

# A label for every record type in app.services.audit.record_types().
RECORD_TYPE_LABELS = {
    "ab_user": lazy_pgettext("record type", "User"),
    "bank_account": lazy_pgettext("record type", "Bank account"),
    "chat_agent": lazy_pgettext("record type", "Agent"),
    "chat_block": lazy_pgettext("record type", "Visitor block"),
    "chat_canned_reply": lazy_pgettext("record type", "Canned reply"),
    "chat_conversation": lazy_pgettext("record type", "Conversation"),
    "chat_faq": lazy_pgettext("record type", "Knowledge base entry"),
    "chat_group": lazy_pgettext("record type", "Agent group"),
    "chat_invitation_rule": lazy_pgettext("record type", "Invitation rule"),
    "chat_leave_message": lazy_pgettext("record type", "Left message"),
    "chat_quick_link": lazy_pgettext("record type", "Quick link"),
    "chat_site": lazy_pgettext("record type", "Chat site"),
    "chat_topic": lazy_pgettext("record type", "Conversation topic"),
    "chat_visitor": lazy_pgettext("record type", "Chat visitor"),
    "client": lazy_pgettext("record type", "Client"),
    "client_contact": lazy_pgettext("record type", "Contact"),
    "client_tax_filing": lazy_pgettext("record type", "Tax filed"),
    "client_tax_profile": lazy_pgettext("record type", "Tax profile"),
    "contract": lazy_pgettext("record type", "Contract"),
    "crm_lead": lazy_pgettext("record type", "Lead"),
    "document": lazy_pgettext("record type", "Archive document"),
    "fee_bill": lazy_pgettext("record type", "Fee bill"),
    "ledger_account": lazy_pgettext("record type", "Account"),
    "ledger_book": lazy_pgettext("record type", "Set of books"),
    "ledger_opening_balance": lazy_pgettext("record type", "Opening balance"),
    "ledger_period": lazy_pgettext("record type", "Accounting period"),
    "ledger_voucher": lazy_pgettext("record type", "Voucher"),
    "payment": lazy_pgettext("record type", "Payment"),
    "service_record": lazy_pgettext("record type", "Service record"),
    "tag": lazy_pgettext("record type", "Tag"),
    "tax_accrual": lazy_pgettext("record type", "Tax accrual"),
    "tax_deadline": lazy_pgettext("record type", "Filing deadline"),
    "tax_filing": lazy_pgettext("record type", "Tax filing record"),
    "tax_rate": lazy_pgettext("record type", "Tax rate"),
    "work_board_tick": lazy_pgettext("record type", "Work board tick"),
}


def _label(labels: dict, value: str | None) -> str:
    return "" if value is None else str(labels.get(value, value))


def _model_of(table: str | None) -> type | None:
    for mapper in Model.registry.mappers:
        if getattr(mapper.local_table, "name", None) == table:
            return mapper.class_
    return None


def _column_labels(table: str | None) -> dict:
    """The column labels of the screen that shows records of *table* (none: no labels)."""
    for view in current_app.appbuilder.baseviews:
        model = getattr(getattr(view, "datamodel", None), "obj", None)
        if isinstance(view, DeskModelView) and getattr(model, "__tablename__", None) == table:
            return view.label_columns
    return {}


def _value_label(model: type | None, key: str, value):  # noqa: ANN001, ANN202
    """An enum column's stored value by its label; any other value as it is."""
    if value is None:
        return ""
    table = getattr(model, "__table__", None)
    column = table.c.get(key) if table is not None else None
    enum_class = getattr(getattr(column, "type", None), "enum_class", None)
    if enum_class in ENUM_LABELS:
        member = enum_class.__members__.get(str(value)) or next((m for m in enum_class if m.value == value), None)
        if member is not None:
            return enum_label(member)
    return value


def _changes(value: str | None, table: str | None = None) -> Markup:
    """The changes of an audit row as a table of field, old value and new value; with the record
    type *table*, fields by their screen labels and enum values by their labels."""
    if not value:
        return Markup("")
    try:
        data = json.loads(value)
    except ValueError:
        return escape(value)
    model, labels = _model_of(table), _column_labels(table) if table else {}
    rows = [Markup("<tr><td>{}</td><td>{}</td><td>→</td><td>{}</td></tr>").format(
        labels.get(key, key), _value_label(model, key, pair[0]), _value_label(model, key, pair[1]))
        for key, pair in data.items() if isinstance(pair, list) and len(pair) == 2]
    return Markup('<table class="table table-condensed audit-changes">{}</table>').format(
        Markup("").join(rows))


class AuditLogModelView(DeskModelView):
    datamodel = SQLAInterface(AuditLog)
    base_permissions = ["can_list", "can_show"]
    base_order = ("id", "desc")
    list_columns = ["created_at", "username", "ip", "action", "object_type", "object_id", "summary"]
    show_columns = ["created_at", "user_id", "username", "ip", "action", "object_type", "object_id",
                    "summary", "changes"]
    search_columns = ["created_at", "username", "ip", "action", "object_type", "object_id"]
    label_columns = {"created_at": _l("When"), "user_id": _l("User ID"), "username": _l("User"),
                     "ip": _l("IP address"), "action": _l("Action"), "object_type": _l("Record type"),
                     "object_id": _l("Record"), "summary": _l("Summary"), "changes": _l("Old → new")}
    formatters_columns = {"created_at": lambda v: format_datetime(v) if v else "", "changes": _changes,
                          "action": lambda v: _label(ACTION_LABELS, v),
                          "object_type": lambda v: _label(RECORD_TYPE_LABELS, v)}
    list_title = _l("Audit log")
    show_title = _l("Audit entry")

    def _get_show_widget(self, pk, item, widgets=None, actions=None, show_fieldsets=None):  # noqa: ANN001, ANN202
        """The entry's changes with the labels of its record type's fields and values."""
        widgets = super()._get_show_widget(pk, item, widgets, actions, show_fieldsets)
        widgets["show"].template_args["formatters_columns"] = {
            **self.formatters_columns, "changes": lambda v: _changes(v, item.object_type)}
        return widgets
