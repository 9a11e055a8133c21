"""Left messages (留言), chat transcripts by email and chat history search (retention is in
``app.services.chat_retention``).

Rules:
- A visitor may leave a message only when the site offers the offline form. Name 1–100
  characters, a phone (mainland mobile or landline, or 5–30 digits with ``+``/``-``) or an email
  (at least one of the two), text 1–2000 characters; ``client_msg_id`` makes a resend return the
  stored message. The contact details given are also kept on the visitor.
- A left message is assigned to a user who may chat; its status moves new → assigned → replied →
  closed (any status may be set by hand). A reply is emailed when the message has an email, else it
  is recorded as a phone follow-up; either way it is stored with who replied and when. If the mail
  cannot be sent nothing changes.
- A visitor may have the transcript of their latest conversation emailed to them at most
  ``MAX_TRANSCRIPTS`` times per conversation; it holds only what the visitor saw (never internal
  notes or whispers).
- History search matches message text literally (``%`` and ``_`` are not wildcards).
Every function that writes commits its own transaction. Errors: ``ValidationFailed``,
``AccessDenied``, ``NotFound``, ``Conflict``, ``mailer.MailFailed``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_appbuilder.security.sqla.models import (
    Permission,
    PermissionView,
    Role,
    User,
    ViewMenu,
    assoc_permissionview_role,
    assoc_user_role,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import escape
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import (
    AgentGroup,
    AgentProfile,
    ChatMessage,
    ChatSite,
    Conversation,
    LeaveMessage,
    LeaveMessageStatus,
    SenderType,
    Visitor,
)
from app.models.chat_topics import conversation_topic
from app.models.security import AuditLog
from app.services import audit, chat, mailer, routing
from app.services.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from app.services.timefmt import to_display

MAX_NAME = 100
MAX_TEXT = chat.MAX_TEXT
MAX_CLIENT_ID = chat.MAX_CLIENT_ID
MAX_EMAIL = 254
MAX_TRANSCRIPTS = 3  # per conversation
TRANSCRIPT_ACTION = "chat_transcript"
VISIBLE_TO_VISITOR = chat.VISIBLE_TO_VISITOR

_EMAIL = re.compile(r"^[^@\s<>,;:\"()\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")
_CN_MOBILE = re.compile(r"^(?:\+?86-?)?1[3-9]\d{9}$")
_CN_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(?:-\d{1,6})?$")
_PHONE = re.compile(r"^\+?[0-9][0-9-]{3,28}[0-9]$")


# --- validation ---------------------------------------------------------------------------------


def valid_email(value: object) -> bool:
    """An address ``local@domain.tld`` of at most 254 characters, without spaces, brackets or commas
    (nothing that could add a second recipient or a header)."""
    return isinstance(value, str) and len(value) <= MAX_EMAIL and bool(_EMAIL.match(value))


def valid_phone(value: object) -> bool:
    """A mainland mobile (13800138000, +86 13800138000) or landline (010-12345678), or 5 to 30 digits
    with an optional leading ``+`` and ``-`` between digits (spaces are ignored)."""
    if not isinstance(value, str):
        return False
    phone = value.replace(" ", "")
    if not 5 <= len(phone) <= 30:
        return False
    return bool(_CN_MOBILE.match(phone) or _CN_LANDLINE.match(phone) or _PHONE.match(phone))


def _optional_text(value: object) -> str | None:
    if value is None:
        return None
    return value.strip() or None if isinstance(value, str) else value  # type: ignore[return-value]


@dataclass(frozen=True)
class LeaveMessageInput:
    client_msg_id: str
    name: str
    phone: str | None
    email: str | None
    text: str


def validate_leave_message(data: object) -> LeaveMessageInput:
    """Check a ``leave_message`` payload; every bad field is reported at once (``ValidationFailed``)."""
    data = data if isinstance(data, dict) else {}
    errors: dict[str, list[str]] = {}
    client_msg_id, name, text = data.get("client_msg_id"), data.get("name"), data.get("text")
    phone, email = _optional_text(data.get("phone")), _optional_text(data.get("email"))
    if not isinstance(client_msg_id, str) or not 0 < len(client_msg_id.strip()) <= MAX_CLIENT_ID:
        errors["client_msg_id"] = [str(_l("client_msg_id is a string of 1 to %(n)d characters.", n=MAX_CLIENT_ID))]
    if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_NAME:
        errors["name"] = [str(_l("Your name is 1 to %(n)d characters.", n=MAX_NAME))]
    if phone is not None and not valid_phone(phone):
        errors["phone"] = [str(_l("This is not a phone number."))]
    if email is not None and not valid_email(email):
        errors["email"] = [str(_l("This is not an email address."))]
    if phone is None and email is None:
        errors["phone"] = [str(_l("Leave a phone number or an email address."))]
    if text_problems := chat.text_errors(text):
        errors["text"] = text_problems
    if errors:
        raise ValidationFailed(errors)
    return LeaveMessageInput(client_msg_id.strip(), name.strip(), phone.replace(" ", "") if phone else None,
                             email, text.strip())


# --- leaving a message ------------------------------------------------------------------------


def _visitor(session: Session, visitor_id: int | None) -> Visitor:
    visitor = session.get(Visitor, visitor_id) if visitor_id else None
    if visitor is None:
        raise NotFound({"visitor": [str(_l("No such visitor."))]})
    return visitor


def leave_message(session: Session, visitor_id: int | None, data: object) -> tuple[LeaveMessage, bool]:
    """Store what a visitor left for the agency (留言) and keep their contact details on the visitor.

    Returns ``(message, created)``: a resend of a stored ``client_msg_id`` returns the stored one.
    Raises ``ValidationFailed`` (bad payload), ``NotFound`` (no visitor), ``AccessDenied`` (the site
    has the offline form off) and ``Conflict`` (the id belongs to another visitor's message).
    """
    given = validate_leave_message(data)
    visitor = _visitor(session, visitor_id)
    existing = session.scalar(select(LeaveMessage).where(LeaveMessage.client_msg_id == given.client_msg_id))
    if existing is not None:
        if existing.visitor_id != visitor.id:
            raise Conflict({"client_msg_id": [str(_l("Use a new client_msg_id."))]})
        return existing, False
    site = session.get(ChatSite, visitor.site_id)
    if site is None or not site.offline_form:
        raise AccessDenied({"_": [str(_l("This website does not take messages."))]})
    message = LeaveMessage(site_id=site.id, visitor_id=visitor.id, name=given.name, phone=given.phone,
                           email=given.email, text=given.text, page_url=visitor.current_url,
                           client_msg_id=given.client_msg_id, status=LeaveMessageStatus.new)
    session.add(message)
    visitor.name = given.name
    visitor.email = given.email or visitor.email
    visitor.phone = given.phone or visitor.phone
    try:
        session.commit()
    except IntegrityError:  # the same resend arrived twice at once: the other one was stored
        session.rollback()
        stored = session.scalar(select(LeaveMessage).where(LeaveMessage.client_msg_id == given.client_msg_id))
        if stored is None or stored.visitor_id != visitor_id:
            raise
        return stored, False
    return message, True


def leave_message_payload(message: LeaveMessage) -> dict:
    """What the site's agents hear of a new left message (``leave_message`` on ``/agent``)."""
    return {"id": message.id, "name": message.name, "site_id": message.site_id}


# --- handling left messages -------------------------------------------------------------------


def chat_users(session: Session, admin_role: str = "Admin") -> list[User]:
    """Active users who may chat (``can_chat`` on ``LiveChat``, or the Admin role): whom a left
    message may be assigned to."""
    with_chat = (select(assoc_user_role.c.user_id)
                 .join(Role, Role.id == assoc_user_role.c.role_id)
                 .outerjoin(assoc_permissionview_role, assoc_permissionview_role.c.role_id == Role.id)
                 .outerjoin(PermissionView, PermissionView.id == assoc_permissionview_role.c.permission_view_id)
                 .outerjoin(Permission, Permission.id == PermissionView.permission_id)
                 .outerjoin(ViewMenu, ViewMenu.id == PermissionView.view_menu_id)
                 .where(or_(Role.name == admin_role,
                            (Permission.name == "can_chat") & (ViewMenu.name == "LiveChat"))))
    return list(session.scalars(select(User).where(User.id.in_(with_chat), User.active.is_(True))
                                .order_by(User.username)))


def _left_message(session: Session, message_id: object) -> LeaveMessage:
    message = session.get(LeaveMessage, message_id) \
        if isinstance(message_id, int) and not isinstance(message_id, bool) else None
    if message is None:
        raise NotFound({"id": [str(_l("No such message."))]})
    return message


def assign_leave_message(session: Session, message_id: int, user_id: object, admin_role: str = "Admin") -> LeaveMessage:
    """Give a left message to a user who may chat; a new message becomes *assigned*.

    Raises ``NotFound`` and ``ValidationFailed`` (the user may not chat)."""
    message = _left_message(session, message_id)
    if user_id not in {user.id for user in chat_users(session, admin_role)}:
        raise ValidationFailed({"user": [str(_l("Choose a user who answers chats."))]})
    message.assigned_to_id = user_id  # type: ignore[assignment]
    if message.status == LeaveMessageStatus.new:
        message.status = LeaveMessageStatus.assigned
    session.commit()
    return message


def set_leave_message_status(session: Session, message_id: int, status: object) -> LeaveMessage:
    """Set a left message's status by hand. Raises ``NotFound`` and ``ValidationFailed``."""
    message = _left_message(session, message_id)
    try:
        message.status = LeaveMessageStatus(status)
    except ValueError:
        raise ValidationFailed({"status": [str(_l("Not a status."))]}) from None
    session.commit()
    return message


def reply_leave_message(session: Session, message_id: int, user_id: int | None, text: object,
                        mail_config: Mapping, site_name: str | None = None) -> tuple[LeaveMessage, bool]:
    """Answer a left message: emailed when it has an email address, else recorded as a phone
    follow-up. Stores the reply, who and when, and marks it replied. Returns ``(message, emailed)``.

    Raises ``NotFound``, ``ValidationFailed`` (no text / too long) and ``mailer.MailFailed`` (nothing
    changed)."""
    message = _left_message(session, message_id)
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed({"reply_text": [str(_l("Write a reply."))]})
    if len(text) > 10000:
        raise ValidationFailed({"reply_text": [str(_l("At most %(n)d characters.", n=10000))]})
    text = text.strip()
    emailed = False
    if message.email:
        site = site_name or message.site.name
        subject = _("Reply to your message to %(site)s", site=site)
        quoted = "\n".join("> " + line for line in message.text.splitlines())
        body = f"{_('Dear %(name)s,', name=message.name)}\n\n{text}\n\n{_('Your message:')}\n{quoted}\n\n{site}\n"
        html = (f"<p>{escape(_('Dear %(name)s,', name=message.name))}</p>"
                f"<p style=\"white-space:pre-wrap\">{escape(text)}</p>"
                f"<p>{escape(_('Your message:'))}</p>"
                f"<blockquote style=\"white-space:pre-wrap\">{escape(message.text)}</blockquote>"
                f"<p>{escape(site)}</p>")
        mailer.send_mail(mail_config, message.email, subject, body, html)
        emailed = True
    message.reply_text, message.replied_at, message.replied_by_id = text, utcnow(), user_id
    message.status = LeaveMessageStatus.replied
    session.commit()
    return message, emailed


# --- transcripts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptAccess:
    """A conversation the user may read, and whether with its internal notes and whispers."""

    conversation: Conversation
    internal: bool


def transcript_access(session: Session, conversation_id: object, user_id: int | None,
                      supervises: bool) -> TranscriptAccess:
    """Who may read a conversation, on the history screen and in its PDF transcript alike:

    - supervisors (*supervises*: ``can_supervise`` on ``LiveChat``, i.e. Admin and Manager) read
      every conversation with its internal notes and whispers;
    - the agent who owns it and agents ever invited into it (``chat.Part.invited``) read it with
      its internal notes and whispers;
    - agents who took part otherwise (watched it, wrote in it: ``chat.Part.ever``) and agents who
      serve its site (``agent_site_ids``) read what the visitor saw, without them;
    - nobody else: a user with no chat rights (a Reviewer, an Accountant) gets ``NotFound``, as for a
      conversation that does not exist.

    Raises ``NotFound``."""
    conversation = chat.get_conversation(session, conversation_id)
    if supervises:
        return TranscriptAccess(conversation, True)
    if chat.takes_part(session, conversation, user_id, chat.Part.invited):
        return TranscriptAccess(conversation, True)
    if (chat.takes_part(session, conversation, user_id, chat.Part.ever)
            or conversation.site_id in agent_site_ids(session, user_id)):
        return TranscriptAccess(conversation, False)
    raise NotFound({"conversation_id": [str(_l("No such conversation."))]})


def transcript_messages(session: Session, conversation_id: int, internal: bool = False) -> list[ChatMessage]:
    """A conversation's messages, oldest first: what the visitor saw, plus notes and whispers when
    *internal*."""
    stmt = select(ChatMessage).where(ChatMessage.conversation_id == conversation_id)
    if not internal:
        stmt = stmt.where(ChatMessage.sender_type.in_(VISIBLE_TO_VISITOR))
    return list(session.scalars(stmt.order_by(ChatMessage.id)))


def sender_label(message: ChatMessage) -> str:
    """Who wrote a message, as the visitor's transcript names them."""
    if message.sender_type == SenderType.visitor:
        return _("You")
    if message.sender_type == SenderType.system:
        return _("System")
    if message.sender_type == SenderType.bot:
        return _("Assistant (bot)")
    return message.sender_name or _("Agent")


def render_transcript(conversation: Conversation, messages: Iterable[ChatMessage]) -> tuple[str, str, str]:
    """``(subject, text, html)`` of a transcript mail; every message is escaped in the HTML part."""
    site = conversation.site.name
    subject = _("Transcript of your chat with %(site)s", site=site)
    lines, rows = [], []
    for message in messages:
        when, who = to_display(message.created_at), sender_label(message)
        text = message.text
        if message.attachment_id and message.attachment is not None:
            text = f"{text} [{message.attachment.filename}]" if text else f"[{message.attachment.filename}]"
        lines.append(f"[{when}] {who}: {text}")
        rows.append(f"<tr><td style=\"color:#888;white-space:nowrap;vertical-align:top\">{escape(when)}</td>"
                    f"<td style=\"vertical-align:top\"><strong>{escape(who)}</strong></td>"
                    f"<td style=\"white-space:pre-wrap\">{escape(text)}</td></tr>")
    header = _("Your chat with %(site)s on %(date)s", site=site, date=to_display(conversation.queued_at))
    text_body = header + "\n\n" + "\n".join(lines) + "\n"
    html = (f"<p>{escape(header)}</p><table cellpadding=\"4\">{''.join(rows)}</table>")
    return subject, text_body, html


def transcripts_sent(session: Session, conversation_id: int) -> int:
    return session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == TRANSCRIPT_ACTION, AuditLog.object_type == "chat_conversation",
        AuditLog.object_id == str(conversation_id))) or 0


def send_transcript(session: Session, visitor_id: int | None, email: object, mail_config: Mapping) -> Conversation:
    """Email the visitor the transcript of their latest conversation and remember the address.

    Raises ``ValidationFailed`` (bad address), ``NotFound`` (no conversation yet), ``Conflict``
    (already sent ``MAX_TRANSCRIPTS`` times) and ``mailer.MailFailed`` (nothing stored)."""
    if isinstance(email, str):
        email = email.strip()
    if not valid_email(email):
        raise ValidationFailed({"email": [str(_l("This is not an email address."))]})
    visitor = _visitor(session, visitor_id)
    conversation = session.scalar(select(Conversation).where(Conversation.visitor_id == visitor.id)
                                  .order_by(Conversation.id.desc()))
    if conversation is None:
        raise NotFound({"conversation_id": [str(_l("No such conversation."))]})
    if transcripts_sent(session, conversation.id) >= MAX_TRANSCRIPTS:
        raise Conflict({"email": [str(_l("The transcript was already sent %(n)d times.", n=MAX_TRANSCRIPTS))]})
    subject, text, html = render_transcript(conversation, transcript_messages(session, conversation.id))
    try:
        mailer.send_mail(mail_config, str(email), subject, text, html)
    except mailer.MailFailed:  # the visitor is told in words; the SMTP server's failure is not theirs to read
        raise mailer.MailFailed({"email": [str(_l("The transcript could not be sent just now. "
                                                  "Please try again later."))]}) from None
    conversation.transcript_email = str(email)
    audit.record_event(session, TRANSCRIPT_ACTION, actor=audit.Actor(None, f"visitor:{visitor.uid}"),
                       object_type="chat_conversation", object_id=conversation.id,
                       summary=f"transcript of conversation {conversation.id}")
    session.commit()
    return conversation


# --- who sees what in the history ---------------------------------------------------------------


def agent_site_ids(session: Session, user_id: int | None) -> set[int]:
    """The sites whose history an agent sees: the sites of their groups, every site when they are in
    no group (as on the console), none without an active agent profile."""
    agent = chat.agent_for_user(session, user_id) if user_id else None
    return routing.agent_site_ids(session, agent) if agent is not None else set()


# --- search -------------------------------------------------------------------------------------


def escape_like(text: str) -> str:
    """*text* for a LIKE pattern with ``\\`` as escape: ``%`` and ``_`` match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _day_start(day: date, tz: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz)).astimezone(UTC).replace(tzinfo=None)


@dataclass
class SearchResult:
    total: int
    conversations: list[Conversation]


def search_conversations(session: Session, q: str | None = None, site_id: int | None = None,
                         agent_id: int | None = None, date_from: date | None = None, date_to: date | None = None,
                         rating: int | None = None, *, site_ids: Iterable[int] | None = None,
                         include_internal: bool = False, page: int = 0, page_size: int = 25,
                         tz: str = "Asia/Shanghai", topic_id: int | None = None) -> SearchResult:
    """Conversations, newest first, whose messages contain *q* literally (case-insensitive), filtered by
    site, agent, start day (``date_from``..``date_to`` inclusive, days in *tz*), rating and topic
    (对话主题: conversations filed under *topic_id*).

    ``site_ids`` limits the result to those sites (an agent's); ``include_internal`` also searches
    notes and whispers (only for users who may read them everywhere). Each conversation once."""
    stmt = select(Conversation)
    if q and q.strip():
        pattern = f"%{escape_like(q.strip())}%"
        matching = select(ChatMessage.conversation_id).where(ChatMessage.text.ilike(pattern, escape="\\"))
        if not include_internal:
            matching = matching.where(ChatMessage.sender_type.in_(VISIBLE_TO_VISITOR))
        stmt = stmt.where(Conversation.id.in_(matching))
    if site_ids is not None:
        stmt = stmt.where(Conversation.site_id.in_(list(site_ids)))
    if site_id is not None:
        stmt = stmt.where(Conversation.site_id == site_id)
    if agent_id is not None:
        stmt = stmt.where(Conversation.agent_id == agent_id)
    if date_from is not None:
        stmt = stmt.where(Conversation.queued_at >= _day_start(date_from, tz))
    if date_to is not None:
        stmt = stmt.where(Conversation.queued_at < _day_start(date_to + timedelta(days=1), tz))
    if rating is not None:
        stmt = stmt.where(Conversation.rating == rating)
    if topic_id is not None:
        stmt = stmt.where(Conversation.id.in_(select(conversation_topic.c.conversation_id).where(
            conversation_topic.c.topic_id == topic_id)))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Conversation.queued_at.desc(), Conversation.id.desc())
                           .offset(max(page, 0) * page_size).limit(page_size))
    return SearchResult(total, list(rows))


def site_agents(session: Session, site_ids: Iterable[int] | None = None) -> list[AgentProfile]:
    """Agent profiles for the history's agent filter (those of *site_ids*, or all)."""
    stmt = select(AgentProfile).order_by(AgentProfile.display_name)
    if site_ids is not None:
        ids = list(site_ids)
        in_sites = select(AgentProfile.id).join(AgentProfile.groups).where(AgentGroup.site_id.in_(ids))
        stmt = stmt.where(or_(AgentProfile.id.in_(in_sites), ~AgentProfile.groups.any()))
    return list(session.scalars(stmt))
