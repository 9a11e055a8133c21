"""Live chat conversations: visitors connecting, messages persisted before they are acknowledged,
idempotent resends, resuming after a disconnect, agents accepting, replying and closing.

Rules:
- A visitor connects with a site key from an allowed Origin and is not blocked; otherwise the
  connection is refused (``AccessDenied``). A genuine visitor token names a returning visitor; a
  missing or forged one gets a new visitor. A user id with a wrong identity hash is refused.
- A visitor has at most one open conversation per site; their first message opens it (queued).
- Every message is stored before it is acknowledged. A message is text of 1 to 2000 characters;
  ``client_msg_id`` (1 to 64 characters) makes a resend return the stored message instead of a
  second one.
- A visitor only ever reads and writes their own conversation; an agent writes only in
  conversations assigned to them (a supervisor may whisper and watch).
Every function commits its own transaction. Errors: ``ValidationFailed`` (bad payload),
``AccessDenied``, ``NotFound``, ``Conflict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import (
    AgentProfile,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationStatus,
    SenderType,
    Visitor,
)
from app.models.crm import ClientContact
from app.services import chat_sites
from app.services.errors import AccessDenied, Conflict, NotFound, ValidationFailed

MAX_TEXT = 2000
MAX_CLIENT_ID = 64
NEW_VISIT_AFTER = timedelta(minutes=30)
OPEN = (ConversationStatus.queued, ConversationStatus.offered, ConversationStatus.active)


@dataclass
class VisitorSession:
    site: ChatSite
    visitor: Visitor
    token: str
    returning: bool


def _clip(value: object, length: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:length] or None


def connect_visitor(session: Session, *, secret_key: str, site_key: object, origin: str | None,
                    token: object = None, ip: str | None = None, user_agent: str | None = None,
                    language: str | None = None, user_id: object = None, user_hash: object = None,
                    now: datetime | None = None) -> VisitorSession:
    """Admit a widget connection and return its visitor (created or recognised). Commits.

    Raises ``AccessDenied`` for an unknown or inactive site key, an Origin the site does not allow
    and a blocked visitor or address; ``ValidationFailed`` for a user id with a wrong hash.
    """
    now = now or utcnow()
    site = session.scalar(select(ChatSite).where(ChatSite.site_key == site_key)) \
        if isinstance(site_key, str) and 0 < len(site_key) <= 40 else None
    if site is None or not site.active:
        raise AccessDenied({"site_key": [str(_l("Unknown site key."))]})
    if not chat_sites.origin_allowed(site, origin):
        raise AccessDenied({"origin": [str(_l("This website may not use the chat."))]})
    uid = chat_sites.visitor_uid_from_token(secret_key, site.site_key, token if isinstance(token, str) else None)
    if chat_sites.is_blocked(session, site.id, uid, ip, now):
        raise AccessDenied({"_": [str(_l("You cannot use the chat."))]})
    verified = chat_sites.verify_identity(site, user_id, user_hash)
    visitor = session.scalar(select(Visitor).where(Visitor.site_id == site.id, Visitor.uid == uid)) if uid else None
    returning = visitor is not None
    if visitor is None:
        visitor = Visitor(site_id=site.id, uid=chat_sites.new_visitor_uid(), first_seen_at=now, last_seen_at=now,
                          visits=1, page_views=0)
        session.add(visitor)
    elif now - visitor.last_seen_at > NEW_VISIT_AFTER:
        visitor.visits += 1
    visitor.last_seen_at, visitor.online = now, True
    # The address is only checked against blocks here; what is stored of it (truncated or not),
    # with the browser and language, is recorded by ``tracking.record_connection``.
    if verified:
        visitor.external_user_id = verified
        visitor.contact_id = session.scalar(select(ClientContact.id).where(
            ClientContact.chat_user_id == verified).order_by(ClientContact.id)) or visitor.contact_id
    session.commit()
    return VisitorSession(site, visitor, chat_sites.visitor_token(secret_key, site.site_key, visitor.uid), returning)


def disconnect_visitor(session: Session, visitor_id: int) -> None:
    visitor = session.get(Visitor, visitor_id)
    if visitor is not None:
        visitor.online, visitor.last_seen_at = False, utcnow()
        session.commit()


def open_conversation(session: Session, visitor: Visitor) -> Conversation | None:
    return session.scalar(select(Conversation).where(
        Conversation.visitor_id == visitor.id, Conversation.status.in_(OPEN)).order_by(Conversation.id.desc()))


def _validate_message(client_msg_id: object, text: object) -> tuple[str, str]:
    errors: dict[str, list[str]] = {}
    if not isinstance(client_msg_id, str) or not 0 < len(client_msg_id.strip()) <= MAX_CLIENT_ID:
        errors["client_msg_id"] = [str(_l("client_msg_id is a string of 1 to %(n)d characters.", n=MAX_CLIENT_ID))]
    if not isinstance(text, str) or not text.strip():
        errors["text"] = [str(_l("A message needs some text."))]
    elif len(text) > MAX_TEXT:
        errors["text"] = [str(_l("A message has at most %(n)d characters.", n=MAX_TEXT))]
    if errors:
        raise ValidationFailed(errors)
    return client_msg_id.strip(), text.strip()


def _store(session: Session, conversation: Conversation, sender_type: SenderType, client_msg_id: str | None,
           text: str, sender_user_id: int | None = None, sender_name: str | None = None) -> tuple[ChatMessage, bool]:
    if client_msg_id is not None:
        existing = session.scalar(select(ChatMessage).where(
            ChatMessage.conversation_id == conversation.id, ChatMessage.client_msg_id == client_msg_id))
        if existing is not None:
            return existing, False
    message = ChatMessage(conversation_id=conversation.id, sender_type=sender_type, client_msg_id=client_msg_id,
                          text=text, sender_user_id=sender_user_id, sender_name=sender_name, created_at=utcnow())
    session.add(message)
    try:
        session.commit()
    except IntegrityError:  # the same resend arrived twice at once: the other one was stored
        session.rollback()
        existing = session.scalar(select(ChatMessage).where(
            ChatMessage.conversation_id == conversation.id, ChatMessage.client_msg_id == client_msg_id))
        if existing is None:
            raise
        return existing, False
    return message, True


def post_visitor_message(session: Session, visitor_id: int, client_msg_id: object,
                         text: object) -> tuple[ChatMessage, bool]:
    """Store a visitor's message in their open conversation (opening one when needed).

    Returns ``(message, created)``; a resend of a stored ``client_msg_id`` returns the stored
    message with ``created`` False. Raises ``ValidationFailed``, ``NotFound``.
    """
    client_msg_id, text = _validate_message(client_msg_id, text)
    visitor = session.get(Visitor, visitor_id)
    if visitor is None:
        raise NotFound({"visitor": [str(_l("No such visitor."))]})
    # A resend may arrive after the conversation was closed: look it up among all of theirs first.
    earlier = session.scalar(select(ChatMessage).join(Conversation).where(
        Conversation.visitor_id == visitor.id, ChatMessage.client_msg_id == client_msg_id,
        ChatMessage.sender_type == SenderType.visitor))
    if earlier is not None:
        return earlier, False
    conversation = open_conversation(session, visitor)
    if conversation is None:
        conversation = Conversation(site_id=visitor.site_id, visitor_id=visitor.id,
                                    status=ConversationStatus.queued, queued_at=utcnow())
        session.add(conversation)
        session.flush()
    return _store(session, conversation, SenderType.visitor, client_msg_id, text)


def visible_to_visitor(message: ChatMessage) -> bool:
    return message.sender_type in (SenderType.visitor, SenderType.agent, SenderType.system)


def visitor_messages_after(session: Session, visitor_id: int, last_message_id: object) -> list[ChatMessage]:
    """Every message of the visitor's conversations after *last_message_id* that the visitor may
    see (never notes or whispers), oldest first. Raises ``ValidationFailed`` for a bad id."""
    if isinstance(last_message_id, bool) or not isinstance(last_message_id, int | type(None)) \
            or (last_message_id or 0) < 0:
        raise ValidationFailed({"last_message_id": [str(_l("last_message_id is a whole number."))]})
    return list(session.scalars(select(ChatMessage).join(Conversation).where(
        Conversation.visitor_id == visitor_id, ChatMessage.id > (last_message_id or 0),
        ChatMessage.sender_type.in_((SenderType.visitor, SenderType.agent, SenderType.system)))
        .order_by(ChatMessage.id)))


def conversation_messages_after(session: Session, conversation_id: int, last_message_id: int = 0) -> list[ChatMessage]:
    """Every message of a conversation after *last_message_id*, for its agent (notes and whispers too)."""
    return list(session.scalars(select(ChatMessage).where(
        ChatMessage.conversation_id == conversation_id, ChatMessage.id > (last_message_id or 0))
        .order_by(ChatMessage.id)))


# --- agents ---------------------------------------------------------------------------------


def agent_for_user(session: Session, user_id: int) -> AgentProfile | None:
    profile = session.scalar(select(AgentProfile).where(AgentProfile.user_id == user_id))
    return profile if profile is not None and profile.active else None


def active_chats(session: Session, agent_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Conversation).where(
        Conversation.agent_id == agent_id, Conversation.status.in_(
            (ConversationStatus.offered, ConversationStatus.active)))) or 0


def _require_agent(agent: AgentProfile | None) -> None:
    if agent is None or not agent.active:
        raise AccessDenied({"_": [str(_l("You have no active agent profile."))]})


def _conversation(session: Session, conversation_id: object) -> Conversation:
    conversation = session.get(Conversation, conversation_id) \
        if isinstance(conversation_id, int) and not isinstance(conversation_id, bool) else None
    if conversation is None:
        raise NotFound({"conversation_id": [str(_l("No such conversation."))]})
    return conversation


def accept(session: Session, agent: AgentProfile, conversation_id: object) -> Conversation:
    """The agent takes a queued conversation (or one offered to them), within their chat limit.

    Raises ``NotFound``, ``Conflict`` (taken by someone else, closed, or the agent is at the limit).
    """
    _require_agent(agent)
    conversation = _conversation(session, conversation_id)
    if conversation.status == ConversationStatus.closed:
        raise Conflict({"conversation_id": [str(_l("This conversation is closed."))]})
    if conversation.status == ConversationStatus.active or (
            conversation.status == ConversationStatus.offered and conversation.agent_id != agent.id):
        if conversation.agent_id == agent.id:
            return conversation
        raise Conflict({"conversation_id": [str(_l("Another agent has this conversation."))]})
    if conversation.agent_id != agent.id and active_chats(session, agent.id) >= agent.max_chats:
        raise Conflict({"_": [str(_l("You are at your limit of %(n)d chats.", n=agent.max_chats))]})
    conversation.agent_id, conversation.status = agent.id, ConversationStatus.active
    conversation.accepted_at = utcnow()
    agent.last_assigned_at = conversation.accepted_at
    session.commit()
    return conversation


def post_agent_message(session: Session, agent: AgentProfile, conversation_id: object, client_msg_id: object,
                       text: object, note: bool = False) -> tuple[ChatMessage, bool]:
    """The assigned agent writes to the visitor (or an internal note). Raises ``ValidationFailed``,
    ``NotFound``, ``AccessDenied`` (not their conversation) and ``Conflict`` (closed)."""
    _require_agent(agent)
    client_msg_id, text = _validate_message(client_msg_id, text)
    conversation = _conversation(session, conversation_id)
    if conversation.agent_id != agent.id or conversation.status != ConversationStatus.active:
        if conversation.status == ConversationStatus.closed:
            raise Conflict({"conversation_id": [str(_l("This conversation is closed."))]})
        raise AccessDenied({"conversation_id": [str(_l("This is not your conversation."))]})
    message, created = _store(session, conversation, SenderType.note if note else SenderType.agent, client_msg_id,
                              text, agent.user_id, agent.display_name)
    if created and not note and conversation.first_response_at is None:
        conversation.first_response_at = message.created_at
        session.commit()
    return message, created


def close(session: Session, conversation_id: object, agent: AgentProfile | None = None,
          visitor_id: int | None = None) -> Conversation:
    """Close a conversation, by its agent or its visitor. Raises ``NotFound``/``AccessDenied``."""
    conversation = _conversation(session, conversation_id)
    if agent is not None and conversation.agent_id != agent.id:
        raise AccessDenied({"conversation_id": [str(_l("This is not your conversation."))]})
    if visitor_id is not None and conversation.visitor_id != visitor_id:
        raise NotFound({"conversation_id": [str(_l("No such conversation."))]})
    if conversation.status != ConversationStatus.closed:
        conversation.status, conversation.closed_at = ConversationStatus.closed, utcnow()
        session.commit()
    return conversation


def rate(session: Session, visitor_id: int, score: object, comment: object = None) -> Conversation:
    """The visitor rates their latest conversation 1–5 with an optional comment (once closed or not).

    Raises ``ValidationFailed`` for a bad score or comment and ``NotFound`` without a conversation."""
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ValidationFailed({"score": [str(_l("The score is a whole number from 1 to 5."))]})
    if comment is not None and (not isinstance(comment, str) or len(comment) > 1000):
        raise ValidationFailed({"comment": [str(_l("At most %(n)d characters.", n=1000))]})
    conversation = session.scalar(select(Conversation).where(Conversation.visitor_id == visitor_id)
                                  .order_by(Conversation.id.desc()))
    if conversation is None:
        raise NotFound({"conversation_id": [str(_l("No such conversation."))]})
    conversation.rating, conversation.rating_comment = score, (comment or "").strip() or None
    session.commit()
    return conversation


def message_payload(message: ChatMessage) -> dict:
    """A message as both sides receive it (the text as stored: clients insert it as text, never HTML)."""
    return {"id": message.id, "conversation_id": message.conversation_id, "sender_type": message.sender_type.value,
            "sender_name": message.sender_name, "text": message.text,
            "client_msg_id": message.client_msg_id, "created_at": message.created_at.isoformat() + "Z"}
