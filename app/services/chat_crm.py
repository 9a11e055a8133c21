"""From visitor to client (访客转客户): the agent console's actions on a visitor's card.

Rules:
- **Prefill.** A visitor's details for a lead or a contact: the name, phone and email they gave
  (pre-chat form, left message; the visitor's own fields first, else their latest left message),
  the question (the first thing they wrote in their latest conversation, else their latest left
  message), the site and the page the chat started on (else their current page).
- **Create a lead** (创建线索, :func:`create_lead`): for a visitor of a site the user serves
  (``chat_console`` rules; else ``NotFound``), from the details the agent confirmed (the rules of
  ``leads.clean_details``); the conversation, when named, must be the visitor's and one the user
  reads. The site and page come from the visitor, never from the request. **One lead per visitor:
  asking again returns the visitor's existing lead unchanged** (``created`` false), also when two
  agents ask at the same moment. A visitor who is already a client's contact gets no lead
  (``Conflict``: they are a client already).
- **Add as a client contact** (添加为客户联系人, :func:`attach_contact`): a new contact of a client
  the user sees (``accountant_scope``: ``None`` every client, else the clients of that accountant;
  any other is ``NotFound``), with the details the agent confirmed; the visitor is linked to it and
  becomes an identified client contact (``leads.add_contact``). A visitor who is already someone's
  contact is refused (``Conflict``). :func:`search_clients` finds the clients to choose from, by
  part of the name or credit code, in the same scope.
- **Filing status** (:func:`filing_status`): the client's filing records that are overdue (open —
  pending, or filed with tax to pay — and due before today) and those due this month, the
  earliest first.
- **The latest statement** (:func:`statement_conversation`, :func:`post_statement`): the client
  statement of account (客户对账单) from January to this month, sent as a PDF into a conversation
  the agent may write in (open, theirs or invited into) whose visitor is a client's contact; a
  visitor who is no client's contact is refused (``Conflict``). Whether the user may download
  that client's statement is the caller's check (``app.permissions.may_download_statement``). The
  PDF becomes a file message (``chat_files``) and an audit event (``chat_statement_sent``).
Entry points commit once; nothing here reads Flask's request. Errors: ``ValidationFailed``,
``NotFound``, ``AccessDenied``, ``Conflict``.
"""

from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.chat import AgentProfile, ChatMessage, Conversation, LeaveMessage, SenderType, Visitor
from app.models.crm import Client, ClientContact
from app.models.leads import Lead, LeadStatus
from app.models.tax_filing import FilingStatus, TaxFiling
from app.services import audit, chat, chat_console, chat_files, leads
from app.services.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from app.services.inputs import MAX_ID

MAX_QUERY = 100
MAX_RESULTS = 20
MAX_FILINGS = 20
STATEMENT_ACTION = "chat_statement_sent"


def _id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID else None


def served_visitor(session: Session, who: chat_console.Viewer, visitor_id: object) -> Visitor:
    """The visitor, when they are on a site *who* serves. Raises ``NotFound``."""
    visitor = session.get(Visitor, _id(visitor_id)) if _id(visitor_id) else None
    if visitor is None or visitor.site_id not in chat_console.served_site_ids(session, who):
        raise NotFound({"visitor_id": [str(_l("No such visitor."))]})
    return visitor


def _latest_conversation(session: Session, visitor_id: int) -> Conversation | None:
    return session.scalar(select(Conversation).where(Conversation.visitor_id == visitor_id)
                          .order_by(Conversation.id.desc()).limit(1))


def prefill(session: Session, visitor: Visitor) -> dict:
    """What a lead or contact made from *visitor* starts with (see the module): ``name``,
    ``phone``, ``email``, ``question``, ``site_name``, ``source_url`` and ``conversation_id``
    (their latest conversation)."""
    left = session.scalar(select(LeaveMessage).where(LeaveMessage.visitor_id == visitor.id)
                          .order_by(LeaveMessage.id.desc()).limit(1))
    conversation = _latest_conversation(session, visitor.id)
    question = None
    if conversation is not None:
        question = session.scalar(select(ChatMessage.text).where(
            ChatMessage.conversation_id == conversation.id, ChatMessage.sender_type == SenderType.visitor,
            ChatMessage.attachment_id.is_(None)).order_by(ChatMessage.id).limit(1))
    if question is None and left is not None:
        question = left.text
    return {
        "name": visitor.name or (left.name if left else None), "phone": visitor.phone or (left.phone if left else None),
        "email": visitor.email or (left.email if left else None), "question": question,
        "site_name": visitor.site.name if visitor.site else None,
        "source_url": (conversation.entry_url if conversation else None) or visitor.current_url,
        "conversation_id": conversation.id if conversation else None,
    }


def lead_summary(lead: Lead | None) -> dict | None:
    if lead is None:
        return None
    return {"id": lead.id, "name": lead.name, "status": lead.status.value,
            "status_label": leads.status_label(lead.status)}


def visitor_crm(session: Session, visitor: Visitor) -> dict:
    """The visitor card's part for the actions: their ``lead`` (if any) and the ``prefill``."""
    lead = session.scalar(select(Lead).where(Lead.visitor_id == visitor.id))
    return {"lead": lead_summary(lead), "prefill": prefill(session, visitor)}


# --- leads --------------------------------------------------------------------------------------


def create_lead(session: Session, who: chat_console.Viewer, visitor_id: object, details: dict,
                conversation_id: object = None) -> tuple[Lead, bool]:
    """A lead from a visitor (see the module); returns it and whether it was made now (``False``:
    the visitor's existing lead, unchanged). Commits once. Raises ``NotFound`` (visitor,
    conversation), ``ValidationFailed`` naming the bad fields, ``Conflict`` (already a client's
    contact) and then writes nothing."""
    visitor = served_visitor(session, who, visitor_id)
    existing = session.scalar(select(Lead).where(Lead.visitor_id == visitor.id))
    if existing is not None:
        return existing, False
    if visitor.contact_id is not None:
        client = session.scalar(select(Client.name).join(ClientContact, ClientContact.client_id == Client.id)
                                .where(ClientContact.id == visitor.contact_id))
        raise Conflict({"visitor_id": [str(_l("This visitor is already a contact of %(client)s: no lead is needed.",
                                              client=client or ""))]})
    conversation = None
    if conversation_id is not None:
        conversation = chat_console.readable_conversation(session, who, _id(conversation_id) or 0)
        if conversation.visitor_id != visitor.id:
            raise NotFound({"conversation_id": [str(_l("No such conversation of this visitor."))]})
    found = details if isinstance(details, dict) else {}
    clean = leads.clean_details(found, ("name", "company", "phone", "email", "question"))
    start = prefill(session, visitor)
    lead = Lead(**clean, status=LeadStatus.new, site_id=visitor.site_id, visitor_id=visitor.id,
                source_url=start["source_url"], conversation_id=conversation.id if conversation else None,
                owner_id=who.user_id)
    session.add(lead)
    try:
        session.commit()
    except IntegrityError:  # another agent made this visitor's lead a moment ago
        session.rollback()
        existing = session.scalar(select(Lead).where(Lead.visitor_id == visitor.id))
        if existing is None:
            raise
        return existing, False
    return lead, True


# --- client contacts -------------------------------------------------------------------------------


def search_clients(session: Session, q: object, accountant_scope: int | None) -> list[dict]:
    """Clients whose name or credit code contains *q* (1–100 characters, case-insensitive, taken
    literally), in the scope (``None``: every client), by name, at most ``MAX_RESULTS``:
    ``[{id, name, credit_code}]``. Raises ``ValidationFailed`` naming ``q``."""
    text = q.strip() if isinstance(q, str) else ""
    if not text or len(text) > MAX_QUERY:
        raise ValidationFailed({"q": [str(_l("Type 1 to %(n)d characters of the client's name or credit code.",
                                             n=MAX_QUERY))]})
    needle = text.lower()
    stmt = select(Client.id, Client.name, Client.credit_code).where(or_(
        func.lower(Client.name).contains(needle, autoescape=True),
        func.lower(Client.credit_code).contains(needle, autoescape=True)))
    if accountant_scope is not None:
        stmt = stmt.where(Client.accountant_id == accountant_scope)
    rows = session.execute(stmt.order_by(Client.name, Client.id).limit(MAX_RESULTS)).all()
    return [{"id": row.id, "name": row.name, "credit_code": row.credit_code} for row in rows]


def attach_contact(session: Session, who: chat_console.Viewer, visitor_id: object, client_id: object,
                   details: dict, accountant_scope: int | None) -> ClientContact:
    """Make the visitor a new contact of the client (see the module). Commits once and returns
    the contact. Raises ``NotFound`` (visitor, client), ``ValidationFailed`` naming the bad fields
    or ``Conflict`` (already a contact) and then writes nothing."""
    visitor = served_visitor(session, who, visitor_id)
    client = session.get(Client, _id(client_id)) if _id(client_id) else None
    if client is None or (accountant_scope is not None and client.accountant_id != accountant_scope):
        raise NotFound({"client_id": [str(_l("No such client."))]})
    if visitor.contact_id is not None:
        linked = session.get(ClientContact, visitor.contact_id)
        raise Conflict({"visitor_id": [str(_l("This visitor is already a contact of %(client)s.",
                                              client=linked.client.name if linked else ""))]})
    clean = leads.clean_details(details if isinstance(details, dict) else {}, ("name", "position", "phone", "email"))
    contact = leads.add_contact(session, client, clean, visitor)
    session.commit()
    return contact


# --- filing status ---------------------------------------------------------------------------------


def filing_status(session: Session, client_id: int, today: date) -> list[dict]:
    """The client's filing records overdue or due this month (see the module), the earliest due
    first, at most ``MAX_FILINGS``: ``{id, tax, period, due, status, overdue}`` with the tax and
    status as labels."""
    from app.views.labels import enum_label

    first = today.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    still_open = or_(TaxFiling.status == FilingStatus.pending,
                     and_(TaxFiling.status == FilingStatus.filed, TaxFiling.zero_return.is_(False)))
    rows = session.scalars(select(TaxFiling).where(
        TaxFiling.client_id == client_id,
        or_(and_(still_open, TaxFiling.due < today), and_(TaxFiling.due >= first, TaxFiling.due < following)))
        .order_by(TaxFiling.due, TaxFiling.tax, TaxFiling.id).limit(MAX_FILINGS)).all()
    return [{"id": f.id, "tax": enum_label(f.tax), "period": f.period, "due": f.due.isoformat(),
             "status": enum_label(f.status),
             "overdue": f.due < today and (f.status is FilingStatus.pending
                                           or (f.status is FilingStatus.filed and not f.zero_return))}
            for f in rows]


# --- the latest statement ---------------------------------------------------------------------------


def statement_months(today: date) -> tuple[int, int]:
    """The months of the latest statement, as ``YYYYMM``: January to *today*'s month (as the
    client's page links it)."""
    return today.year * 100 + 1, today.year * 100 + today.month


def statement_conversation(session: Session, agent: AgentProfile | None, conversation_id: object) -> tuple[
        Conversation, Client]:
    """The conversation a statement goes into and the client it is of: one *agent* may write in
    (open; theirs, or invited into) whose visitor is a client's contact. Reads only. Raises
    ``AccessDenied`` (no active agent profile, not their conversation), ``NotFound``, ``Conflict``
    (closed; a visitor who is no client's contact)."""
    if agent is None or not agent.active:
        raise AccessDenied({"_": [str(_l("You have no active agent profile."))]})
    conversation = chat.get_conversation(session, _id(conversation_id))
    if conversation.status not in chat.OPEN:
        raise Conflict({"conversation_id": [str(_l("This conversation is closed."))]})
    if not chat.is_writer(session, agent, conversation):
        raise AccessDenied({"conversation_id": [str(_l("This is not your conversation."))]})
    visitor = session.get(Visitor, conversation.visitor_id)
    contact = session.get(ClientContact, visitor.contact_id) if visitor.contact_id else None
    if contact is None:
        raise Conflict({"conversation_id": [str(_l(
            "This visitor is not a client's contact, so there is no statement to send. Add them as a client "
            "contact first."))]})
    return conversation, session.get(Client, contact.client_id)


def post_statement(session: Session, upload_dir: str, agent: AgentProfile | None, conversation_id: int,
                   client_id: int, filename: str, data: bytes) -> ChatMessage:
    """Store the rendered statement *data* as the agent's file message in the conversation,
    checked again now that it is rendered (the chat may have closed or changed hands meanwhile),
    with the audit event. Commits once. Raises as :func:`statement_conversation`, and
    ``ValidationFailed`` when *data* is not a PDF."""
    conversation, client = statement_conversation(session, agent, conversation_id)
    if client.id != client_id:
        raise Conflict({"conversation_id": [str(_l("The visitor's client changed meanwhile; send it again."))]})
    audit.record_event(session, STATEMENT_ACTION, object_type="chat_conversation", object_id=conversation.id,
                       summary=f"{client.name} — {filename}"[:300], changes={"client_id": [None, client.id]})
    return chat_files.post_agent_document(session, upload_dir, agent, conversation, filename, data)
