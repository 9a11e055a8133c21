"""Leads (线索): prospective clients, from the live chat to a client of the agency.

Rules:
- A lead has a name (1–100 characters), and may have a company (≤ 200), a phone (a phone number
  by the rules of a left message), an email (an address), the question asked (≤ 2000) and notes
  (≤ 2000). Texts are trimmed; an empty one is no value.
- Its life: **new** → **contacted** → **converted** (it became a client) or **lost** (with a
  reason of 1–500 characters); new → lost directly; a lost lead may be **reopened** (back to new,
  the reason cleared). A converted lead stays converted. Steps are made by :func:`transition`
  (contacted, lost, new) and :func:`convert`, each on the locked row, so that two steps at once
  cannot both pass.
- **Convert** (:func:`convert`, from new or contacted): the lead becomes a contact of a client —
  an existing one the user sees (``client_id``), or a new client made from the lead (its name,
  unified social credit code and taxpayer type, checked as the client screens check them). The
  contact carries the lead's name, phone and email; the lead's chat visitor, when it is not yet
  anyone's contact, is linked to it (:func:`add_contact`), so that the console shows them as the
  client's contact from then on. One transaction.
- One lead per chat visitor (the database's ``uq_lead_visitor``; app/services/chat_crm.py makes
  leads from the console).
- Every change of a lead is in the audit log (the model is audited); the helpers here never
  commit, the entry points commit once.
Errors: ``ValidationFailed`` naming the field, ``NotFound``, ``TransitionNotAllowed``, ``Conflict``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.chat import Visitor
from app.models.crm import Client, ClientContact, TaxpayerType
from app.models.leads import Lead, LeadStatus
from app.services import audit
from app.services.chat_inbox import MAX_EMAIL, MAX_NAME, valid_email, valid_phone
from app.services.clients import credit_code_error
from app.services.errors import Conflict, DomainError, NotFound, TransitionNotAllowed, ValidationFailed
from app.services.inputs import MAX_ID
from app.services.timefmt import utc_iso

MAX_COMPANY = 200
MAX_PHONE = 30
MAX_TEXT = 2000
MAX_REASON = 500
MAX_POSITION = 100
MAX_CLIENT_NAME = 200
OPEN = (LeadStatus.new, LeadStatus.contacted)
# The steps :func:`transition` makes (converting is :func:`convert`'s).
STEPS = {LeadStatus.new: {LeadStatus.contacted, LeadStatus.lost}, LeadStatus.contacted: {LeadStatus.lost},
         LeadStatus.lost: {LeadStatus.new}, LeadStatus.converted: set()}
LINK_ACTION = "chat_contact_linked"

_LIMITS = {"name": MAX_NAME, "company": MAX_COMPANY, "phone": MAX_PHONE, "email": MAX_EMAIL,
           "question": MAX_TEXT, "notes": MAX_TEXT, "position": MAX_POSITION}


def _text(value: object, field: str, errors: dict[str, list[str]]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors[field] = [str(_l("Must be text."))]
        return None
    text = value.strip()
    if len(text) > _LIMITS[field]:
        errors[field] = [str(_l("At most %(n)d characters.", n=_LIMITS[field]))]
        return None
    return text or None


def clean_details(values: dict, fields: tuple[str, ...] = ("name", "company", "phone", "email", "question",
                                                           "notes")) -> dict[str, str | None]:
    """The person's details among *fields* of *values*, trimmed (an empty text is ``None``), when
    every one keeps the module's rules: a name is required, a phone is a phone number, an email an
    address. Raises ``ValidationFailed`` naming every bad field."""
    errors: dict[str, list[str]] = {}
    found = {field: _text(values.get(field), field, errors) for field in fields}
    if "name" in fields and "name" not in errors and not found["name"]:
        errors["name"] = [str(_l("Give the person's name."))]
    phone = found.get("phone")
    if phone is not None and not valid_phone(phone):
        errors["phone"] = [str(_l("This is not a valid phone number."))]
    email = found.get("email")
    if email is not None and not valid_email(email):
        errors["email"] = [str(_l("This is not a valid email address."))]
    if errors:
        raise ValidationFailed(errors)
    if phone is not None:
        found["phone"] = phone.replace(" ", "")
    return found


def validate_lead(lead: Lead) -> None:
    """Check an edited lead (screens and API) and write its details back trimmed. Raises
    ``ValidationFailed`` naming every bad field."""
    details = clean_details({field: getattr(lead, field) for field in
                             ("name", "company", "phone", "email", "question", "notes")})
    for field, value in details.items():
        if getattr(lead, field) != value:
            setattr(lead, field, value)


@contextlib.contextmanager
def _step(session: Session) -> Iterator[None]:
    """A step refused after its lead was locked rolls back, which also releases the lock."""
    try:
        yield
    except DomainError:
        session.rollback()
        raise


def _locked(session: Session, lead_id: object) -> Lead:
    valid = isinstance(lead_id, int) and not isinstance(lead_id, bool) and 0 < lead_id <= MAX_ID
    lead = session.scalar(select(Lead).where(Lead.id == lead_id).with_for_update()) if valid else None
    if lead is None:
        raise NotFound(str(_l("No such lead.")), "id")
    return lead


def _status(value: object) -> LeadStatus:
    choices = {status.value: status for status in LeadStatus}
    if not isinstance(value, str) or value not in choices:
        raise ValidationFailed({"status": [str(_l("Not a valid choice."))]})
    return choices[value]


def transition(session: Session, lead_id: object, status: object, reason: object = None) -> Lead:
    """Move a lead to *status*: ``contacted``, ``lost`` (with *reason*) or ``new`` (reopening a lost
    lead), as ``STEPS`` allows. Commits once and returns the lead. Raises ``NotFound``,
    ``ValidationFailed`` (``status``, ``reason``) or ``TransitionNotAllowed`` and then writes nothing."""
    with _step(session):
        target = _status(status)
        lead = _locked(session, lead_id)
        if target is LeadStatus.converted:
            raise TransitionNotAllowed(str(_l("A lead is converted by choosing or making its client.")), "status")
        if target not in STEPS[lead.status]:
            raise TransitionNotAllowed(str(_l("A lead that is %(now)s cannot become %(then)s.",
                                              now=status_label(lead.status), then=status_label(target))), "status")
        if target is LeadStatus.lost:
            text = reason.strip() if isinstance(reason, str) else ""
            if not text or len(text) > MAX_REASON:
                raise ValidationFailed({"reason": [str(_l("Give the reason the lead was lost (up to %(n)d "
                                                          "characters).", n=MAX_REASON))]})
            lead.lost_reason = text
        elif target is LeadStatus.new:
            lead.lost_reason = None
        lead.status = target
        session.commit()
    return lead


def status_label(status: LeadStatus) -> str:
    from app.views.labels import enum_label

    return enum_label(status)


def add_contact(session: Session, client: Client, details: dict, visitor: Visitor | None) -> ClientContact:
    """A new contact of *client* with *details* (``name``, ``phone``, ``email``, ``position``,
    already checked), and *visitor* linked to it when given and not anyone's contact yet: a
    visitor whose website user id was verified also gives the contact that id (unless another
    contact has it), so that their next visit is recognised. The link is an audit event
    (``chat_contact_linked``). Joins the caller's transaction; never commits."""
    contact = ClientContact(client_id=client.id, name=details["name"], phone=details.get("phone"),
                            email=details.get("email"), position=details.get("position"), is_primary=False)
    if visitor is not None and visitor.contact_id is None and visitor.external_user_id:
        taken = session.scalar(select(ClientContact.id).where(ClientContact.chat_user_id == visitor.external_user_id))
        if taken is None:
            contact.chat_user_id = visitor.external_user_id
    session.add(contact)
    session.flush()
    if visitor is not None and visitor.contact_id is None:
        visitor.contact_id = contact.id
        audit.record_event(session, LINK_ACTION, object_type="chat_visitor", object_id=visitor.id,
                           summary=f"{contact.name} — {client.name}"[:300],
                           changes={"contact_id": [None, contact.id], "client_id": [None, client.id]})
    return contact


def _client_scope(session: Session, client_id: object, accountant_scope: int | None) -> Client:
    valid = isinstance(client_id, int) and not isinstance(client_id, bool) and 0 < client_id <= MAX_ID
    client = session.get(Client, client_id) if valid else None
    if client is None or (accountant_scope is not None and client.accountant_id != accountant_scope):
        raise NotFound({"client_id": [str(_l("No such client."))]})
    return client


def _new_client(session: Session, lead: Lead, name: object, credit_code: object, taxpayer_type: object) -> Client:
    errors: dict[str, list[str]] = {}
    name_text = (name if isinstance(name, str) else lead.company or "").strip()
    if not name_text or len(name_text) > MAX_CLIENT_NAME:
        errors["name"] = [str(_l("Give the company's name (up to %(n)d characters).", n=MAX_CLIENT_NAME))]
    code = credit_code.strip().upper() if isinstance(credit_code, str) else ""
    problem = credit_code_error(code)
    if problem:
        errors["credit_code"] = [problem]
    elif session.scalar(select(Client.id).where(Client.credit_code == code)) is not None:
        errors["credit_code"] = [str(_l("A client with this unified social credit code already exists."))]
    kind = TaxpayerType.small_scale
    if taxpayer_type not in (None, ""):
        choices = {t.value: t for t in TaxpayerType}
        if not isinstance(taxpayer_type, str) or taxpayer_type not in choices:
            errors["taxpayer_type"] = [str(_l("Not a valid choice."))]
        else:
            kind = choices[taxpayer_type]
    if errors:
        raise ValidationFailed(errors)
    client = Client(name=name_text, credit_code=code, taxpayer_type=kind)
    session.add(client)
    session.flush()
    return client


def convert(session: Session, lead_id: object, *, client_id: object = None, name: object = None,
            credit_code: object = None, taxpayer_type: object = None, accountant_scope: int | None = None) -> Client:
    """Convert a new or contacted lead (see the module): into a contact of the existing client
    *client_id* (one *accountant_scope* sees; ``None``: every client), or of a new client named
    *name* (default: the lead's company) with *credit_code* and *taxpayer_type* (default
    small-scale). Commits once and returns the client. Raises ``NotFound`` (lead, client),
    ``TransitionNotAllowed``, ``ValidationFailed`` (``name``, ``credit_code``, ``taxpayer_type``) or
    ``Conflict`` (the same credit code saved at the same moment) and then writes nothing."""
    with _step(session):
        lead = _locked(session, lead_id)
        if lead.status not in OPEN:
            raise TransitionNotAllowed(str(_l("Only a new or contacted lead can be converted.")), "status")
        if client_id not in (None, ""):
            client = _client_scope(session, client_id, accountant_scope)
        else:
            client = _new_client(session, lead, name, credit_code, taxpayer_type)
        visitor = session.get(Visitor, lead.visitor_id) if lead.visitor_id else None
        known = visitor is not None and visitor.contact_id is not None and \
            session.scalar(select(ClientContact.client_id).where(ClientContact.id == visitor.contact_id)) == client.id
        if not known:
            add_contact(session, client, {"name": lead.name, "phone": lead.phone, "email": lead.email}, visitor)
        lead.status, lead.client_id = LeadStatus.converted, client.id
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise Conflict({"credit_code": [str(_l(
                "A client with this unified social credit code was saved at the same moment."))]}) from None
    return client


def lead_json(lead: Lead) -> dict:
    """A lead as the API and the console show it (times in UTC)."""
    return {
        "id": lead.id, "name": lead.name, "company": lead.company, "phone": lead.phone, "email": lead.email,
        "question": lead.question, "status": lead.status.value, "status_label": status_label(lead.status),
        "site_id": lead.site_id, "site_name": lead.site.name if lead.site else None, "source_url": lead.source_url,
        "visitor_id": lead.visitor_id, "conversation_id": lead.conversation_id, "owner_id": lead.owner_id,
        "owner": lead.owner.username if lead.owner else None, "client_id": lead.client_id,
        "client_name": lead.client.name if lead.client else None, "lost_reason": lead.lost_reason,
        "notes": lead.notes, "created_at": utc_iso(lead.created_at), "updated_at": utc_iso(lead.updated_at),
    }
