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
- A visitor only ever reads and writes their own conversation. An agent writes in the
  conversations they own (``Conversation.agent_id``, once accepted) and in those they were invited
  into (``ConversationParticipant`` role ``invited``, not left); watchers only read (and whisper).
- Accepting is a conditional update (``... WHERE status = 'offered' AND agent_id = me`` or
  ``WHERE status = 'queued'``), so two agents (or two processes) never both get a conversation;
  a queued conversation is taken within the agent's ``max_chats``.
- Client message ids starting with ``sys:`` are reserved for the server's own system messages
  (welcome, greeting, auto reply), which are idempotent on them.
Every function commits its own transaction. Errors: ``ValidationFailed`` (bad payload),
``AccessDenied``, ``NotFound``, ``Conflict``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import (
    AgentProfile,
    ChatMessage,
    ChatOffer,
    ChatSite,
    Conversation,
    ConversationParticipant,
    ConversationStatus,
    OfferOutcome,
    ParticipantRole,
    SenderType,
    Visitor,
)
from app.models.crm import ClientContact
from app.services import chat_sites
from app.services.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from app.services.timefmt import utc_iso

MAX_TEXT = 2000
MAX_CLIENT_ID = 64
NEW_VISIT_AFTER = timedelta(minutes=30)
# What the visitor sees of a conversation (never notes or whispers).
VISIBLE_TO_VISITOR = (SenderType.visitor, SenderType.agent, SenderType.system, SenderType.bot)
OPEN = (ConversationStatus.queued, ConversationStatus.offered, ConversationStatus.active)
BUSY = (ConversationStatus.offered, ConversationStatus.active)  # count against an agent's max_chats
WELCOME_KEY = "welcome"
SYSTEM_PREFIX = "sys:"
MAX_URL = 2000


@dataclass
class VisitorSession:
    site: ChatSite
    visitor: Visitor
    token: str
    returning: bool
    verified: str | None = None  # the user id verified by its identity hash on this connection


def admit_visitor(session: Session, *, secret_key: str, site_key: object, origin: str | None, token: object,
                  ip: str | None, now: datetime | None = None) -> tuple[ChatSite, str | None]:
    """The rule for every request a visitor makes (socket connection, file upload): the site key
    names an active site, the page's Origin is one the site allows, and neither the visitor (by
    the uid its signed token carries) nor the address is blocked. Returns the site and the uid
    (``None`` for a new visitor or a token that does not verify). Raises ``AccessDenied``."""
    site = session.scalar(select(ChatSite).where(ChatSite.site_key == site_key)) \
        if isinstance(site_key, str) and 0 < len(site_key) <= 40 else None
    if site is None or not site.active:
        raise AccessDenied({"site_key": [str(_l("Unknown site key."))]})
    if not chat_sites.origin_allowed(site, origin):
        raise AccessDenied({"origin": [str(_l("This website may not use the chat."))]})
    uid = chat_sites.visitor_uid_from_token(secret_key, site.site_key, token if isinstance(token, str) else None)
    if chat_sites.is_blocked(session, site.id, uid, ip, now or utcnow()):
        raise AccessDenied({"_": [str(_l("You cannot use the chat."))]})
    return site, uid


def known_visitor(session: Session, *, secret_key: str, site_key: object, origin: str | None, token: object,
                  ip: str | None) -> Visitor:
    """The visitor a request with a widget token comes from, admitted by ``admit_visitor``; the
    visitor must already exist (a connection creates it). Raises ``AccessDenied``."""
    site, uid = admit_visitor(session, secret_key=secret_key, site_key=site_key, origin=origin, token=token, ip=ip)
    visitor = session.scalar(select(Visitor).where(Visitor.site_id == site.id, Visitor.uid == uid)) if uid else None
    if visitor is None:
        raise AccessDenied({"visitor_token": [str(_l("You cannot use the chat."))]})
    return visitor


def connect_visitor(session: Session, *, secret_key: str, site_key: object, origin: str | None,
                    token: object = None, ip: str | None = None, user_id: object = None, user_hash: object = None,
                    now: datetime | None = None) -> VisitorSession:
    """Admit a widget connection and return its visitor (created or recognised). Commits.

    *ip* is only checked against blocks (``tracking.record_connection`` stores what is kept of it,
    with the browser and language). Raises ``AccessDenied`` for an unknown or inactive site key,
    an Origin the site does not allow and a blocked visitor or address; ``ValidationFailed`` for
    a user id with a wrong hash.
    """
    now = now or utcnow()
    site, uid = admit_visitor(session, secret_key=secret_key, site_key=site_key, origin=origin, token=token, ip=ip,
                              now=now)
    verified = chat_sites.verify_identity(site, user_id, user_hash)
    visitor = session.scalar(select(Visitor).where(Visitor.site_id == site.id, Visitor.uid == uid)) if uid else None
    returning = visitor is not None
    if visitor is None:
        visitor = Visitor(site_id=site.id, uid=chat_sites.new_visitor_uid(), first_seen_at=now, last_seen_at=now,
                          visits=1, page_views=0)
        session.add(visitor)
    elif now - visitor.last_seen_at > NEW_VISIT_AFTER:
        visitor.visits += 1
    visitor.last_seen_at = now  # online once the connection is recorded (chat_visitors.visitor_connected)
    # The address is only checked against blocks here; what is stored of it (truncated or not),
    # with the browser and language, is recorded by ``tracking.record_connection``.
    if verified:
        visitor.external_user_id = verified
        visitor.contact_id = session.scalar(select(ClientContact.id).where(
            ClientContact.chat_user_id == verified).order_by(ClientContact.id)) or visitor.contact_id
    session.commit()
    return VisitorSession(site, visitor, chat_sites.visitor_token(secret_key, site.site_key, visitor.uid), returning,
                          verified)


def open_conversation(session: Session, visitor: Visitor) -> Conversation | None:
    return session.scalar(select(Conversation).where(
        Conversation.visitor_id == visitor.id, Conversation.status.in_(OPEN)).order_by(Conversation.id.desc()))


def text_errors(text: object) -> list[str]:
    """Why *text* is not a message text (1 to ``MAX_TEXT`` characters, not blank); empty when it is."""
    if not isinstance(text, str) or not text.strip():
        return [str(_l("A message needs some text."))]
    if len(text) > MAX_TEXT:
        return [str(_l("A message has at most %(n)d characters.", n=MAX_TEXT))]
    return []


def validate_message(client_msg_id: object, text: object, system_ids: bool = True) -> tuple[str, str]:
    """A message's ``client_msg_id`` (1 to ``MAX_CLIENT_ID`` characters) and text, stripped.

    Ids with the reserved ``SYSTEM_PREFIX`` are refused unless *system_ids* is False (where system
    messages cannot occur, e.g. the team room). Raises ``ValidationFailed`` naming each bad field.
    """
    errors: dict[str, list[str]] = {}
    if not isinstance(client_msg_id, str) or not 0 < len(client_msg_id.strip()) <= MAX_CLIENT_ID:
        errors["client_msg_id"] = [str(_l("client_msg_id is a string of 1 to %(n)d characters.", n=MAX_CLIENT_ID))]
    elif system_ids and client_msg_id.strip().startswith(SYSTEM_PREFIX):
        errors["client_msg_id"] = [str(_l("client_msg_id may not start with \"%(p)s\".", p=SYSTEM_PREFIX))]
    if text_problems := text_errors(text):
        errors["text"] = text_problems
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


def welcome_message(session: Session, conversation_id: int) -> ChatMessage | None:
    """The conversation's stored welcome (the site's welcome text when it opened), if any."""
    return session.scalar(select(ChatMessage).where(
        ChatMessage.conversation_id == conversation_id, ChatMessage.client_msg_id == SYSTEM_PREFIX + WELCOME_KEY))


def store_system_message(session: Session, conversation: Conversation, key: str,
                         text: str) -> ChatMessage | None:
    """Store a system message (shown to the visitor and the agents) once per *key* in the
    conversation; returns it, or None when it was stored before. Commits."""
    message, created = _store(session, conversation, SenderType.system, SYSTEM_PREFIX + key, text)
    return message if created else None


def visible_to_visitor(message: ChatMessage) -> bool:
    return message.sender_type in VISIBLE_TO_VISITOR


def visitor_messages_after(session: Session, visitor_id: int, last_message_id: object) -> list[ChatMessage]:
    """Every message of the visitor's conversations after *last_message_id* that the visitor may
    see (never notes or whispers), oldest first. Raises ``ValidationFailed`` for a bad id."""
    if isinstance(last_message_id, bool) or not isinstance(last_message_id, int | type(None)) \
            or (last_message_id or 0) < 0:
        raise ValidationFailed({"last_message_id": [str(_l("last_message_id is a whole number."))]})
    return list(session.scalars(select(ChatMessage).join(Conversation).where(
        Conversation.visitor_id == visitor_id, ChatMessage.id > (last_message_id or 0),
        ChatMessage.sender_type.in_(VISIBLE_TO_VISITOR))
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


def get_conversation(session: Session, conversation_id: object) -> Conversation:
    """The conversation with this id; ``NotFound`` for a bad or unknown id."""
    conversation = session.get(Conversation, conversation_id) \
        if isinstance(conversation_id, int) and not isinstance(conversation_id, bool) else None
    if conversation is None:
        raise NotFound({"conversation_id": [str(_l("No such conversation."))]})
    return conversation


def is_writer(session: Session, agent: AgentProfile | None, conversation: Conversation) -> bool:
    """Whether *agent* may write in *conversation*: its owner once active, or an invited participant."""
    if agent is None or not agent.active:
        return False
    if conversation.agent_id == agent.id and conversation.status == ConversationStatus.active:
        return True
    return session.scalar(select(func.count()).select_from(ConversationParticipant).where(
        ConversationParticipant.conversation_id == conversation.id,
        ConversationParticipant.user_id == agent.user_id,
        ConversationParticipant.role == ParticipantRole.invited,
        ConversationParticipant.left_at.is_(None))) > 0


class Part(enum.Enum):
    """How far "takes part in a conversation" reaches (``takes_part``)."""

    now = "now"  # owns it, or is in it (invited or watching) and has not left: sees it live in the console
    invited = "invited"  # owns it, or was ever invited into it (left or not): reads its internal notes
    ever = "ever"  # owns it, was ever in it (any role) or wrote in it: may print its transcript


def takes_part(session: Session, conversation: Conversation, user_id: int | None, scope: Part = Part.now) -> bool:
    """Whether the user takes part in *conversation*, as far as *scope* says (see ``Part``)."""
    if user_id is None:
        return False
    owner = session.get(AgentProfile, conversation.agent_id) if conversation.agent_id else None
    if owner is not None and owner.user_id == user_id:
        return True
    query = select(ConversationParticipant.id).where(
        ConversationParticipant.conversation_id == conversation.id, ConversationParticipant.user_id == user_id)
    if scope is Part.now:
        query = query.where(ConversationParticipant.left_at.is_(None))
    elif scope is Part.invited:
        query = query.where(ConversationParticipant.role == ParticipantRole.invited)
    if session.scalar(query.limit(1)) is not None:
        return True
    return scope is Part.ever and session.scalar(select(ChatMessage.id).where(
        ChatMessage.conversation_id == conversation.id, ChatMessage.sender_user_id == user_id).limit(1)) is not None


def conversations_of_user(session: Session, user_id: int) -> list[int]:
    """Ids of the open conversations a user owns (as an agent) or takes part in: the rooms their
    console joins on connecting."""
    owned = select(Conversation.id).join(AgentProfile, AgentProfile.id == Conversation.agent_id).where(
        AgentProfile.user_id == user_id, Conversation.status.in_(BUSY))
    joined = select(Conversation.id).join(
        ConversationParticipant, ConversationParticipant.conversation_id == Conversation.id).where(
        ConversationParticipant.user_id == user_id, ConversationParticipant.left_at.is_(None),
        Conversation.status.in_(OPEN))
    return sorted(set(session.scalars(owned)) | set(session.scalars(joined)))


def settle_offers(session: Session, conversation_id: int, outcome: OfferOutcome, now: datetime,
                  agent_id: int | None = None) -> None:
    """Decide the conversation's pending offers (of *agent_id* only, when given); no commit."""
    query = update(ChatOffer).where(ChatOffer.conversation_id == conversation_id,
                                    ChatOffer.outcome == OfferOutcome.pending)
    if agent_id is not None:
        query = query.where(ChatOffer.agent_id == agent_id)
    session.execute(query.values(outcome=outcome, decided_at=now).execution_options(synchronize_session=False))


def _lock_agent(session: Session, agent: AgentProfile) -> None:
    """Serialise capacity checks of one agent across processes (a row lock on PostgreSQL; SQLite
    serialises writers anyway)."""
    session.execute(select(AgentProfile.id).where(AgentProfile.id == agent.id).with_for_update())


def accept(session: Session, agent: AgentProfile, conversation_id: object) -> Conversation:
    """The agent takes a conversation offered to them, or a queued one (from the queue list) within
    their chat limit. Accepting one's own active conversation again returns it. A chat that moved
    on between the read and the write (offered to this very agent by the routing just then) is
    looked at once more, so the agent is not told that someone else has it.

    Raises ``AccessDenied`` (no active agent profile), ``NotFound``, ``Conflict`` (taken by someone
    else, closed, or the agent is at the limit).
    """
    _require_agent(agent)
    now = utcnow()
    for _look in range(2):  # a chat routed to this agent between the read and the write: look again once
        conversation = get_conversation(session, conversation_id)
        if conversation.status == ConversationStatus.closed:
            raise Conflict({"conversation_id": [str(_l("This conversation is closed."))]})
        if conversation.agent_id == agent.id and conversation.status == ConversationStatus.active:
            return conversation
        if conversation.status == ConversationStatus.offered and conversation.agent_id == agent.id:
            taken = session.execute(update(Conversation).where(
                Conversation.id == conversation.id, Conversation.status == ConversationStatus.offered,
                Conversation.agent_id == agent.id).values(
                status=ConversationStatus.active, accepted_at=now, offer_expires_at=None)
                .execution_options(synchronize_session=False)).rowcount == 1
        elif conversation.status == ConversationStatus.queued:
            _lock_agent(session, agent)
            if active_chats(session, agent.id) >= agent.max_chats:
                session.rollback()
                raise Conflict({"_": [str(_l("You are at your limit of %(n)d chats.", n=agent.max_chats))]})
            taken = session.execute(update(Conversation).where(
                Conversation.id == conversation.id, Conversation.status == ConversationStatus.queued).values(
                status=ConversationStatus.active, agent_id=agent.id, accepted_at=now, offer_expires_at=None)
                .execution_options(synchronize_session=False)).rowcount == 1
        else:
            taken = False
        if taken:
            break
        session.rollback()
        session.expire(conversation)
    else:
        raise Conflict({"conversation_id": [str(_l("Another agent has this conversation."))]})
    settle_offers(session, conversation.id, OfferOutcome.accepted, now, agent.id)
    settle_offers(session, conversation.id, OfferOutcome.withdrawn, now)
    session.execute(update(AgentProfile).where(AgentProfile.id == agent.id).values(last_assigned_at=now)
                    .execution_options(synchronize_session=False))
    session.commit()
    session.refresh(conversation)
    return conversation


def post_agent_message(session: Session, agent: AgentProfile, conversation_id: object, client_msg_id: object,
                       text: object, note: bool = False) -> tuple[ChatMessage, bool]:
    """The owner agent or an invited participant writes to the visitor (or an internal note).

    Raises ``ValidationFailed``, ``NotFound``, ``AccessDenied`` (not their conversation, or not
    accepted yet) and ``Conflict`` (closed)."""
    _require_agent(agent)
    client_msg_id, text = validate_message(client_msg_id, text)
    conversation = get_conversation(session, conversation_id)
    if conversation.status == ConversationStatus.closed:
        raise Conflict({"conversation_id": [str(_l("This conversation is closed."))]})
    if not is_writer(session, agent, conversation):
        raise AccessDenied({"conversation_id": [str(_l("This is not your conversation."))]})
    message, created = _store(session, conversation, SenderType.note if note else SenderType.agent, client_msg_id,
                              text, agent.user_id, agent.display_name)
    if created and not note and conversation.first_response_at is None:
        conversation.first_response_at = message.created_at
        session.commit()
    return message, created


def close(session: Session, conversation_id: object, agent: AgentProfile | None = None,
          visitor_id: int | None = None) -> Conversation:
    """Close a conversation, by its owner agent or its visitor; pending offers are withdrawn.

    Raises ``NotFound`` (no such conversation, or not this visitor's) and ``AccessDenied`` (not the
    agent's conversation)."""
    conversation = get_conversation(session, conversation_id)
    if agent is not None and conversation.agent_id != agent.id:
        raise AccessDenied({"conversation_id": [str(_l("This is not your conversation."))]})
    if visitor_id is not None and conversation.visitor_id != visitor_id:
        raise NotFound({"conversation_id": [str(_l("No such conversation."))]})
    if conversation.status != ConversationStatus.closed:
        now = utcnow()
        conversation.status, conversation.closed_at = ConversationStatus.closed, now
        conversation.offer_expires_at = None
        conversation.closed_by = "agent" if agent is not None else "visitor" if visitor_id is not None else "system"
        settle_offers(session, conversation.id, OfferOutcome.withdrawn, now)
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
    """A message as both sides receive it (the text as stored: clients insert it as text, never HTML).

    With a file, ``attachment {id, filename, content_type, size, url}``: ``url`` is
    ``/chat/files/<id>?k=<link token>``, a link to that file alone that expires after
    ``chat_sites.FILE_LINK_MAX_AGE`` (signed afresh whenever the payload is built, history
    included). Needs the application context (the secret key)."""
    payload = {"id": message.id, "conversation_id": message.conversation_id,
               "sender_type": message.sender_type.value, "sender_name": message.sender_name, "text": message.text,
               "client_msg_id": message.client_msg_id, "created_at": utc_iso(message.created_at)}
    if message.attachment_id is not None and message.attachment is not None:
        attachment = message.attachment
        token = chat_sites.file_link_token(current_app.config["SECRET_KEY"], attachment.id)
        payload["attachment"] = {"id": attachment.id, "filename": attachment.filename,
                                 "content_type": attachment.content_type, "size": attachment.size,
                                 "url": f"/chat/files/{attachment.id}?k={token}"}
    return payload
