"""A returning visitor's earlier conversations (历史对话) and the transcripts they may download.

Rules:
- A visitor's conversations are those of their visitor record (the widget's visitor token), and,
  when the connection or request carries a verified identity (``user_id`` with its hash), those of
  every visitor record of the same site verified as the same user, in another browser say. Nothing
  of another visitor, another site or another user is ever shown.
- Earlier conversations are the visitor's closed ones, newest first, ``PAGE`` at a time: the widget
  asks for them when the visitor opens the section, then for the page before the oldest it has
  (``before_id``). Nothing is sent on connecting but whether there are any (``has_earlier``).
- Each conversation comes with what the visitor saw (never internal notes or whispers), oldest
  first, at most ``MAX_MESSAGES`` (the first ones; ``truncated`` says more exist: the transcript
  download has them all), as the ``message`` event's payload.
- A visitor may download the transcript of any of their conversations (by default the latest):
  the visitor's copy, rendered in a worker like every PDF; at most ``MAX_DOWNLOADS`` an hour, each
  one an audit row (``download``, by ``visitor:<uid>``).
Errors: ``ValidationFailed``, ``NotFound``, ``AccessDenied`` (too many downloads).
"""

from __future__ import annotations

from datetime import timedelta

from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.models.base import utcnow
from app.models.chat import ChatMessage, Conversation, ConversationStatus, Visitor
from app.models.security import AuditLog
from app.services import audit, chat
from app.services.errors import AccessDenied, NotFound, ValidationFailed
from app.services.inputs import MAX_ID
from app.services.timefmt import utc_iso

PAGE = 3  # earlier conversations per request
MAX_MESSAGES = 200  # messages of one earlier conversation sent to the widget
MAX_DOWNLOADS = 10  # transcript downloads per visitor and hour
JOB_LINK_MAX_AGE = 24 * 3600  # a background transcript's link (the job's PDF is kept a day)
DOWNLOAD_ACTION = "download"


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def visitors_of(session: Session, visitor: Visitor, verified_user: str | None) -> list[int]:
    """The visitor records whose conversations are *visitor*'s: their own, and with a verified
    identity every record of the site verified as that user."""
    if not verified_user:
        return [visitor.id]
    same = session.scalars(select(Visitor.id).where(Visitor.site_id == visitor.site_id,
                                                    Visitor.external_user_id == verified_user))
    return sorted({visitor.id, *same})


def _owned(session: Session, visitor: Visitor, verified_user: str | None):  # noqa: ANN202 - a SQL expression
    ids = visitors_of(session, visitor, verified_user)
    return Conversation.visitor_id.in_(ids) if len(ids) > 1 else Conversation.visitor_id == visitor.id


def has_earlier(session: Session, visitor: Visitor, verified_user: str | None = None) -> bool:
    """Whether the visitor has a closed conversation to look back on."""
    return session.scalar(select(Conversation.id).where(
        _owned(session, visitor, verified_user), Conversation.status == ConversationStatus.closed).limit(1)) is not None


def earlier_conversations(session: Session, visitor_id: int | None, before_id: object = None,
                          verified_user: str | None = None) -> dict:
    """A page of the visitor's closed conversations, newest first (those with an id below
    *before_id* when given): ``{conversations: [{conversation_id, started_at, closed_at, agent_name,
    messages, truncated}], more}`` (see the module rules).

    Raises ``ValidationFailed`` (*before_id* not an id) and ``NotFound`` (no visitor)."""
    if before_id is not None and not _is_id(before_id):
        raise ValidationFailed({"before_id": [str(_l("No such item: an id is a whole number from 1 to %(n)d.",
                                                     n=MAX_ID))]})
    visitor = session.get(Visitor, visitor_id) if visitor_id else None
    if visitor is None:
        raise NotFound({"visitor": [str(_l("No such visitor."))]})
    query = (select(Conversation).options(selectinload(Conversation.agent))
             .where(_owned(session, visitor, verified_user), Conversation.status == ConversationStatus.closed))
    if before_id is not None:
        query = query.where(Conversation.id < before_id)
    rows = list(session.scalars(query.order_by(Conversation.id.desc()).limit(PAGE + 1)))
    page, more = rows[:PAGE], len(rows) > PAGE
    result = []
    for conversation in page:
        messages = list(session.scalars(
            select(ChatMessage).options(selectinload(ChatMessage.attachment))
            .where(ChatMessage.conversation_id == conversation.id, ChatMessage.sender_type.in_(chat.VISIBLE_TO_VISITOR))
            .order_by(ChatMessage.id).limit(MAX_MESSAGES + 1)))
        result.append({"conversation_id": conversation.id, "started_at": utc_iso(conversation.queued_at),
                       "closed_at": utc_iso(conversation.closed_at),
                       "agent_name": conversation.agent.display_name if conversation.agent else None,
                       "messages": [chat.message_payload(m) for m in messages[:MAX_MESSAGES]],
                       "truncated": len(messages) > MAX_MESSAGES})
    return {"conversations": result, "more": more}


def visitor_conversation(session: Session, visitor: Visitor, conversation_id: object = None,
                         verified_user: str | None = None) -> Conversation:
    """One of the visitor's conversations (see the module rules): *conversation_id*, or without it
    their latest. Raises ``ValidationFailed`` (not an id) and ``NotFound`` (none, or not theirs)."""
    if conversation_id is not None and not _is_id(conversation_id):
        raise ValidationFailed({"conversation_id": [str(_l("No such item: an id is a whole number from 1 to %(n)d.",
                                                           n=MAX_ID))]})
    query = select(Conversation).where(_owned(session, visitor, verified_user))
    if conversation_id is not None:
        query = query.where(Conversation.id == conversation_id)
    conversation = session.scalar(query.order_by(Conversation.id.desc()).limit(1))
    if conversation is None:
        raise NotFound({"conversation_id": [str(_l("No such conversation."))]})
    return conversation


def visitor_actor(visitor: Visitor, ip: str | None = None) -> audit.Actor:
    """How a visitor is named in the audit log."""
    return audit.Actor(None, f"visitor:{visitor.uid}", ip)


def check_download_allowed(session: Session, visitor: Visitor, now=None) -> None:  # noqa: ANN001
    """Refuse (``AccessDenied``) a visitor who downloaded ``MAX_DOWNLOADS`` transcripts in the past hour."""
    since = (now or utcnow()) - timedelta(hours=1)
    done = session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == DOWNLOAD_ACTION, AuditLog.username == f"visitor:{visitor.uid}",
        AuditLog.object_type == "chat_conversation", AuditLog.created_at >= since)) or 0
    if done >= MAX_DOWNLOADS:
        raise AccessDenied({"_": [str(_l("You have downloaded many transcripts just now. Please try again later."))]})


def record_download(session: Session, visitor: Visitor, conversation: Conversation, ip: str | None = None) -> None:
    """The audit row of a transcript the visitor downloaded. Commits."""
    audit.record_event(session, DOWNLOAD_ACTION, actor=visitor_actor(visitor, ip), object_type="chat_conversation",
                       object_id=conversation.id, summary=f"transcript of conversation {conversation.id} (visitor)")
    session.commit()


# --- a background transcript's link -------------------------------------------------------------


def _job_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="chat-transcript-job")


def job_link_token(secret_key: str, job_id: str, visitor_id: int) -> str:
    """A signed, expiring capability to follow and fetch one background transcript of one visitor
    (the widget's lasting visitor token never goes into an address)."""
    return _job_serializer(secret_key).dumps([job_id, visitor_id])


def job_from_link(secret_key: str, job_id: str, token: object) -> int | None:
    """The visitor id *token* grants *job_id* to, when genuine and young enough, else ``None``."""
    if not isinstance(token, str) or not token or len(token) > 300:
        return None
    try:
        value = _job_serializer(secret_key).loads(token, max_age=JOB_LINK_MAX_AGE)
    except BadSignature:  # SignatureExpired is one
        return None
    if not isinstance(value, list) or len(value) != 2 or value[0] != job_id or not _is_id(value[1]):
        return None
    return value[1]

