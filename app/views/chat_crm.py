"""The agent console's visitor card, from visitor to client: what ``GET /chat/console/visitor/<id>``
adds for the actions (app/services/chat_crm.py) and the texts console.js shows for them.

Added to the details: ``crm {lead, prefill, can: {create_lead, link_contact}}`` and, on the client
card of an identified client contact, ``filings`` (overdue and this month's filing records),
``filings_url`` (the filing list of the client, for a user who may open it) and
``can_send_statement`` (the user may download this client's statement). The permissions only
decide which buttons show; every action checks them again on the socket.
"""

from __future__ import annotations

from datetime import date

from flask import current_app
from flask_babel import lazy_gettext as _l

from app.extensions import db
from app.models.chat import Visitor
from app.permissions import may_download_statement
from app.security import CONTACTS_FROM_CHAT, LEADS_FROM_CHAT
from app.services import chat_crm

# Every text console.js shows for these actions (merged into the console's strings).
STRINGS = {
    "create_lead": _l("Create lead"), "add_contact": _l("Add as client contact"),
    "lead_exists": _l("Lead #%(id)s (%(status)s)"),
    "lead_created": _l("Lead #%(id)s created."),
    "lead_already": _l("This visitor already has lead #%(id)s (%(status)s): no second lead was made."),
    "contact_added": _l("%(name)s is now a contact of %(client)s."),
    "company": _l("Company name"), "question": _l("Question"), "contact_position": _l("Position"),
    "source_page": _l("Source page"), "search_client": _l("Search clients by name or credit code"),
    "no_clients": _l("No client found."), "choose_client": _l("Choose the client"),
    "filings": _l("Filing status"), "no_filings": _l("Nothing overdue or due this month."),
    "overdue": _l("Overdue"), "due": _l("due %(date)s"), "all_filings": _l("All filings of this client"),
    "send_statement": _l("Send latest statement"), "statement_rendering": _l("Making the statement…"),
    "statement_sent": _l("The statement was sent into the chat."),
    "statement_queued": _l("The statement is long: it is sent into the chat as soon as it is made."),
}


def _lead_link(lead: dict | None) -> None:
    if lead is not None:
        lead["url"] = f"/leadmodelview/show/{lead['id']}" \
            if current_app.appbuilder.sm.has_access("can_show", "LeadModelView") else None


def add_to_visitor_details(data: dict, visitor_id: int) -> dict:
    """*data* (``chat_console.visitor_details``) with the card's parts for the actions (module doc)."""
    sm = current_app.appbuilder.sm
    visitor = db.session.get(Visitor, visitor_id)
    crm = chat_crm.visitor_crm(db.session, visitor)
    _lead_link(crm["lead"])
    crm["can"] = {"create_lead": bool(sm.can(LEADS_FROM_CHAT)), "link_contact": bool(sm.can(CONTACTS_FROM_CHAT))}
    data["crm"] = crm
    client = data.get("client")
    if client:
        client["filings"] = chat_crm.filing_status(db.session, client["id"], date.today())
        client["filings_url"] = f"/taxfilings/?client_id={client['id']}" \
            if sm.has_access("can_list", "TaxFilingView") else None
        client["can_send_statement"] = may_download_statement(client["id"])
    return data
