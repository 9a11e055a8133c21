"""Read-only audit log screen for Admin and Manager."""

from __future__ import annotations

import json

from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from app.models.security import AuditLog
from app.views.common import DeskModelView, format_datetime


def _changes(value: str | None) -> Markup:
    if not value:
        return Markup("")
    try:
        data = json.loads(value)
    except ValueError:
        return escape(value)
    rows = [Markup("<tr><td>{}</td><td>{}</td><td>→</td><td>{}</td></tr>").format(
        key, "" if pair[0] is None else pair[0], "" if pair[1] is None else pair[1])
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
    formatters_columns = {"created_at": lambda v: format_datetime(v) if v else "", "changes": _changes}
    list_title = _l("Audit log")
    show_title = _l("Audit entry")
