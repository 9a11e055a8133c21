"""Permission matrix entries for leads (merged by tests/test_permissions.py)."""

from __future__ import annotations

from app.extensions import db
from app.models.leads import Lead

A, M, G = "admin", "manager", "agent"
WORK = {A, M, G}
MANAGE = {A, M}

EXPECTED: dict[str, dict[str, set[str]]] = {
    "LeadModelView": {"list": set(WORK), "show": set(WORK), "edit": set(WORK), "delete": set(MANAGE),
                      "add": set(), "export_csv": set(), "download": set(), "transition": set(WORK),
                      "convert": set(MANAGE)},
    "LeadApi": {"get": set(WORK), "get_list": set(WORK), "info": set(WORK), "put": set(WORK), "delete": set(MANAGE),
                "transition": set(WORK), "convert": set(MANAGE)},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    lead = Lead(name="王先生", company="示范贸易", phone="13800138000")
    db.session.add(lead)
    db.session.commit()
    return {"LeadModelView": lead.id, "LeadApi": lead.id}
