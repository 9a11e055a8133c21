"""Data retention for the chat (个人信息保护法), run by ``flask --app app chat-retention`` from cron.

Rule: after ``days`` the stored address of a visitor not seen since is truncated; closed
conversations of visitors who were never identified (no verified user id, no client contact) lose
the visitor's words (replaced by ``ANONYMISED``), rating comment and transcript address; such
visitors not seen since lose their name, email and phone, and their left messages their contact
details; the questions the knowledge base bot could not answer are deleted (they are visitors'
words). Errors: ``ValidationFailed`` (a negative number of days).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import ChatMessage, Conversation, ConversationStatus, LeaveMessage, SenderType, Visitor
from app.models.chat_faq import FaqUnanswered
from app.services import audit
from app.services.errors import ValidationFailed
from app.services.tracking import truncate_ip

RETENTION_ACTION = "chat_retention"
ANONYMISED = "[已匿名]"


@dataclass
class RetentionResult:
    cutoff: datetime
    ips_truncated: int = 0
    conversations_anonymised: int = 0
    messages_anonymised: int = 0
    visitors_anonymised: int = 0
    leave_messages_anonymised: int = 0
    unanswered_deleted: int = 0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["cutoff"] = self.cutoff.isoformat()
        return data


def _unidentified():  # noqa: ANN202
    return Visitor.external_user_id.is_(None) & Visitor.contact_id.is_(None)


def apply_retention(session: Session, days: int, now: datetime | None = None, dry_run: bool = False,
                    marker: str = ANONYMISED) -> RetentionResult:
    """Apply the retention rule (see the module docstring) to everything older than *days* days and
    return the counts of what changed (or, with *dry_run*, would change; nothing is written).

    Idempotent: a second run changes nothing. Identified visitors keep their conversations and
    details (their addresses are still truncated). One audit row sums up a real run. Bulk updates
    are used so the audit log does not copy the personal data being erased. Raises
    ``ValidationFailed`` for a negative number of days."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValidationFailed({"days": [str(_l("The number of days is a whole number, 0 or more."))]})
    now = now or utcnow()
    result = RetentionResult(cutoff=now - timedelta(days=days))
    cutoff = result.cutoff

    for visitor_id, ip in session.execute(select(Visitor.id, Visitor.ip).where(
            Visitor.last_seen_at < cutoff, Visitor.ip.is_not(None))).all():
        short = truncate_ip(ip)
        if short != ip:
            result.ips_truncated += 1
            if not dry_run:
                session.execute(update(Visitor).where(Visitor.id == visitor_id).values(ip=short))

    old_conversations = (select(Conversation.id).join(Visitor, Visitor.id == Conversation.visitor_id)
                         .where(Conversation.status == ConversationStatus.closed, Conversation.closed_at < cutoff,
                                _unidentified()))
    words = (ChatMessage.conversation_id.in_(old_conversations) & (ChatMessage.sender_type == SenderType.visitor)
             & (ChatMessage.text != marker))
    details = (Conversation.id.in_(old_conversations)
               & (Conversation.rating_comment.is_not(None) | Conversation.transcript_email.is_not(None)))
    touched = set(session.scalars(select(ChatMessage.conversation_id).where(words).distinct()))
    touched |= set(session.scalars(select(Conversation.id).where(details)))
    result.conversations_anonymised = len(touched)
    result.messages_anonymised = session.scalar(select(func.count()).select_from(ChatMessage).where(words)) or 0

    stale = _unidentified() & (Visitor.last_seen_at < cutoff)
    personal = (Visitor.name.is_not(None) | Visitor.email.is_not(None) | Visitor.phone.is_not(None)
                | Visitor.anonymised_at.is_(None))
    result.visitors_anonymised = session.scalar(select(func.count()).select_from(Visitor).where(
        stale & personal)) or 0
    left = (LeaveMessage.visitor_id.in_(select(Visitor.id).where(stale)) & (LeaveMessage.created_at < cutoff)
            & ((LeaveMessage.name != marker) | LeaveMessage.email.is_not(None) | (LeaveMessage.phone != marker)
               | LeaveMessage.phone.is_(None)))
    result.leave_messages_anonymised = session.scalar(select(func.count()).select_from(LeaveMessage)
                                                      .where(left)) or 0

    unanswered = FaqUnanswered.created_at < cutoff
    result.unanswered_deleted = session.scalar(select(func.count()).select_from(FaqUnanswered)
                                               .where(unanswered)) or 0

    if dry_run:
        session.rollback()
        return result
    session.execute(delete(FaqUnanswered).where(unanswered).execution_options(synchronize_session=False))
    session.execute(update(ChatMessage).where(words).values(text=marker).execution_options(synchronize_session=False))
    session.execute(update(Conversation).where(details).values(rating_comment=None, transcript_email=None)
                    .execution_options(synchronize_session=False))
    session.execute(update(Visitor).where(stale & personal).values(
        name=None, email=None, phone=None, anonymised_at=now).execution_options(synchronize_session=False))
    # A left message must keep a phone or an email (check constraint): the marker stands in for both.
    session.execute(update(LeaveMessage).where(left).values(name=marker, phone=marker, email=None)
                    .execution_options(synchronize_session=False))
    counts = result.as_dict()
    if any(value for key, value in counts.items() if key != "cutoff"):
        audit.record_event(session, RETENTION_ACTION, summary=f"chat retention, {days} days", changes=counts)
    session.commit()
    return result
