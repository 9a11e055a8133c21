"""The pre-chat form (售前表单): what a site's widget asks a visitor before a new chat starts.

Rules:
- A site asks for the visitor's name, phone, email and question, each *off*, *optional* or
  *required* (``ChatSite.prechat_*``, set by an Admin or Manager on the site's page). The form
  lists the fields that are not off, always in that order.
- The form is shown to a visitor (``prechat_pending``) when it asks anything and they have not
  sent it yet, or a required name, phone or email is not on the visitor (erased by retention,
  or made required after they sent it). A visitor with an open conversation is never asked.
- Sending it (``submit_prechat``): a required field empty, a phone or an email that is not one
  (``chat_inbox.valid_phone`` / ``valid_email``), a text too long is refused naming every bad
  field, and nothing is written. Fields the site has off are ignored (never stored). The name,
  phone and email given are kept on the visitor (a field left empty keeps what was there), the
  time it was sent in ``Visitor.prechat_at``; the question becomes the visitor's first message in
  their conversation (opening it, with its ``client_msg_id``: a resend stores nothing new), in the
  same transaction.
- While a site's form has a required field the visitor has not given, a visitor's message that
  would open a new conversation is refused (``missing_before_chat``): the form cannot be skipped
  by a client that never shows it.
Errors: ``ValidationFailed``, ``NotFound``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import Engine
from sqlalchemy.orm import Session, scoped_session

from app.models.base import utcnow
from app.models.chat import ChatSite, PrechatMode, Visitor
from app.services import chat
from app.services.chat_inbox import MAX_EMAIL, MAX_NAME, valid_email, valid_phone
from app.services.errors import NotFound, ValidationFailed

FIELDS = ("name", "phone", "email", "question")
DETAILS = ("name", "phone", "email")  # kept on the visitor
MAX_PHONE = 30
MAX_LENGTHS = {"name": MAX_NAME, "phone": MAX_PHONE, "email": MAX_EMAIL, "question": chat.MAX_TEXT}

_REQUIRED = {
    "name": _l("Please enter your name."),
    "phone": _l("Please enter your phone number."),
    "email": _l("Please enter your email address."),
    "question": _l("Please enter your question."),
}


def field_modes(site: ChatSite) -> dict[str, PrechatMode]:
    """Each field of the form and how the site asks for it."""
    return {name: getattr(site, f"prechat_{name}") or PrechatMode.off for name in FIELDS}


def prechat_form(site: ChatSite) -> list[dict]:
    """The form as the widget gets it (``site.prechat_form`` of the ``session`` event): the fields
    that are not off, in order, ``[{"name": "name", "required": true}, …]``; empty when off."""
    return [{"name": name, "required": mode == PrechatMode.required}
            for name, mode in field_modes(site).items() if mode != PrechatMode.off]


def _missing_details(site: ChatSite, visitor: Visitor) -> list[str]:
    return [name for name in DETAILS
            if field_modes(site)[name] == PrechatMode.required and not getattr(visitor, name)]


def prechat_pending(site: ChatSite, visitor: Visitor) -> bool:
    """Whether the widget shows *visitor* the form before their next new chat: the site's form
    asks anything, and they never sent it or a required name, phone or email is not on them."""
    if not prechat_form(site):
        return False
    return visitor.prechat_at is None or bool(_missing_details(site, visitor))


def missing_before_chat(site: ChatSite, visitor: Visitor) -> dict[str, list[str]]:
    """Why *visitor* may not open a new conversation with a plain message yet: the required fields
    of the site's form they have not given, each with its sentence; empty when they may. A form
    with only optional fields never holds a chat back."""
    modes = field_modes(site)
    if PrechatMode.required not in modes.values():
        return {}
    missing = _missing_details(site, visitor)
    if visitor.prechat_at is None and modes["question"] == PrechatMode.required:
        missing.append("question")
    return {name: [str(_REQUIRED[name])] for name in missing}


@dataclass(frozen=True)
class PrechatInput:
    """A checked form: the details to keep (only fields the site asks for, not empty) and the question."""

    details: dict[str, str]
    question: str | None
    client_msg_id: str | None


def validate_prechat(site: ChatSite, data: object) -> PrechatInput:
    """Check a ``prechat`` payload against *site*'s form; every bad field is reported at once
    (``ValidationFailed``): a required field empty, a value that is not text or too long, a phone or
    an email that is not one, a question without a ``client_msg_id``."""
    data = data if isinstance(data, dict) else {}
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    for name, mode in field_modes(site).items():
        if mode == PrechatMode.off:
            continue
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            errors[name] = [str(_l("Must be text."))]
            continue
        value = (value or "").strip()
        if name == "phone":
            value = value.replace(" ", "")
        if not value:
            if mode == PrechatMode.required:
                errors[name] = [str(_REQUIRED[name])]
            continue
        if len(value) > MAX_LENGTHS[name]:
            errors[name] = [str(_l("At most %(n)d characters.", n=MAX_LENGTHS[name]))]
        elif name == "phone" and not valid_phone(value):
            errors[name] = [str(_l("This is not a phone number."))]
        elif name == "email" and not valid_email(value):
            errors[name] = [str(_l("This is not an email address."))]
        else:
            values[name] = value
    question = values.pop("question", None)
    client_msg_id = data.get("client_msg_id")
    if question is not None and (not isinstance(client_msg_id, str) or not client_msg_id.strip()
                                 or len(client_msg_id.strip()) > chat.MAX_CLIENT_ID):
        errors["client_msg_id"] = [str(_l("client_msg_id is a string of 1 to %(n)d characters.",
                                          n=chat.MAX_CLIENT_ID))]
    if errors:
        raise ValidationFailed(errors)
    return PrechatInput(values, question, client_msg_id.strip() if question is not None else None)


@dataclass
class PrechatResult:
    """What sending the form gave: the visitor (details stored) and the question's message, if any."""

    visitor: Visitor
    posted: object | None  # chat_post.PostedMessage


def submit_prechat(session: Session | scoped_session, visitor_id: int | None, data: object, *,
                   entry_url: object = None, requested_agent_id: object = None,
                   engine: Engine | None = None) -> PrechatResult:
    """Store a visitor's pre-chat form: their details on the visitor, ``prechat_at``, and the
    question as their first message (``chat_post.post_visitor_message``: opens their conversation,
    routed as any new chat). Commits once. Raises ``ValidationFailed`` (see ``validate_prechat``),
    ``NotFound`` (no such visitor)."""
    from app.services import chat_post  # (chat_post asks this module whether a chat may open)

    visitor = session.get(Visitor, visitor_id) if visitor_id else None
    if visitor is None:
        raise NotFound({"visitor": [str(_l("No such visitor."))]})
    given = validate_prechat(visitor.site, data)
    for name, value in given.details.items():
        setattr(visitor, name, value)
    visitor.prechat_at = utcnow()
    if given.question is None:
        session.commit()
        return PrechatResult(visitor, None)
    session.flush()  # the message is posted in this transaction: the details are committed with it
    posted = chat_post.post_visitor_message(session, visitor.id, given.client_msg_id, given.question,
                                            entry_url=entry_url, requested_agent_id=requested_agent_id,
                                            engine=engine)
    return PrechatResult(visitor, posted)
