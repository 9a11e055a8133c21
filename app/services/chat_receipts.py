"""Read receipts (已读): how far a conversation's visitor and its agents have read it.

Rules:
- A conversation keeps two read positions: ``visitor_read_up_to``, the id of the last message its
  visitor has seen (the widget open on a visible page), and ``agent_read_up_to``, the id of the
  last message its agents have seen (the chat's tab open in a visible console). Every message up
  to a position counts as read by that side; the other side shows 已读 under its own messages.
- A position names a message of that conversation: for the visitor, a message they may see
  (never an internal note or a whisper) in one of their own conversations; for the agents, any
  message of the conversation named. Anything else is ``NotFound``.
- The visitor's position is moved by the visitor's own connection only; the agents' one by the
  agents who write in the chat: its owner (once accepted, also after it closed) or an invited
  agent who has not left. A watching supervisor, another agent and a user without an active agent
  profile are refused (``AccessDenied``).
- A position only grows. Naming an earlier message than the stored position is refused
  (``Conflict``); naming the same one changes nothing (no write, ``changed`` is False). The
  write is conditional (``... WHERE position IS NULL OR position < id``), so two tabs racing
  never move it back.
- Clients coalesce: they send one read event for a burst of messages (the newest id seen), so a
  burst costs one write, not one per message.
Each entry point validates, then writes, and commits once; a refusal writes nothing. Errors:
``ValidationFailed`` (no message id, or not a whole number from 1 to ``MAX_ID``), ``NotFound``,
``AccessDenied``, ``Conflict``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.models.chat import (
    AgentProfile,
    ChatMessage,
    Conversation,
    ConversationParticipant,
    ConversationStatus,
    ParticipantRole,
)
from app.services import chat
from app.services.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from app.services.inputs import MAX_ID

VISITOR = "visitor"  # who read: the ``reader`` of a receipt
AGENT = "agent"
_COLUMNS = {VISITOR: Conversation.visitor_read_up_to, AGENT: Conversation.agent_read_up_to}
# The owner agent reads a chat once it has accepted it, and after it closed.
_OWNER_READS = (ConversationStatus.active, ConversationStatus.closed)


@dataclass(frozen=True)
class Receipt:
    """A read position as it was stored: *reader* (``visitor`` or ``agent``) has read
    *conversation_id* up to message *up_to*; *changed* says whether this call moved it."""

    conversation_id: int
    visitor_id: int
    reader: str
    up_to: int
    changed: bool = False

    def payload(self) -> dict:
        """The ``read`` event (and ack) both sides receive: ``{conversation_id, reader, up_to}``."""
        return {"conversation_id": self.conversation_id, "reader": self.reader, "up_to": self.up_to}


def _message_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ValidationFailed({"message_id": [
            str(_l("No such item: an id is a whole number from 1 to %(n)d.", n=MAX_ID))]})
    return value


def _no_such_message() -> NotFound:
    return NotFound({"message_id": [str(_l("No such message in this conversation."))]})


def reads_for_agents(session: Session, agent: AgentProfile | None, conversation: Conversation) -> bool:
    """Whether *agent* marks *conversation* read for its agents: its owner once accepted (also
    after it closed), or an invited agent who has not left. Watchers never do."""
    if agent is None or not agent.active:
        return False
    if conversation.agent_id == agent.id and conversation.status in _OWNER_READS:
        return True
    return session.scalar(select(ConversationParticipant.id).where(
        ConversationParticipant.conversation_id == conversation.id,
        ConversationParticipant.user_id == agent.user_id,
        ConversationParticipant.role == ParticipantRole.invited,
        ConversationParticipant.left_at.is_(None)).limit(1)) is not None


def mark_read_by_visitor(session: Session, visitor_id: int | None, message_id: object) -> Receipt:
    """The visitor has seen their conversation up to *message_id* (a message of one of their
    conversations that they may see). Commits when the position moved.

    Raises ``ValidationFailed`` (no whole-number id), ``NotFound`` (another visitor's message, a
    note or whisper, no such message) and ``Conflict`` (the position is past it already)."""
    message_id = _message_id(message_id)
    message = session.get(ChatMessage, message_id)
    conversation = session.get(Conversation, message.conversation_id) if message is not None else None
    if conversation is None or visitor_id is None or conversation.visitor_id != visitor_id \
            or not chat.visible_to_visitor(message):
        raise _no_such_message()
    return _advance(session, conversation, VISITOR, message_id)


def mark_read_by_agent(session: Session, agent: AgentProfile | None, conversation_id: object,
                       message_id: object) -> Receipt:
    """The agents of *conversation_id* have seen it up to *message_id* (a message of that
    conversation), as *agent* (who must be one of them, ``reads_for_agents``) says. Commits when
    the position moved.

    Raises ``ValidationFailed`` (no whole-number id), ``NotFound`` (no such conversation, or the
    message is not in it), ``AccessDenied`` (not an agent of the chat) and ``Conflict`` (the
    position is past it already)."""
    message_id = _message_id(message_id)
    conversation = chat.get_conversation(session, conversation_id)
    if not reads_for_agents(session, agent, conversation):
        raise AccessDenied({"conversation_id": [str(_l("This is not your conversation."))]})
    message = session.get(ChatMessage, message_id)
    if message is None or message.conversation_id != conversation.id:
        raise _no_such_message()
    return _advance(session, conversation, AGENT, message_id)


def _advance(session: Session, conversation: Conversation, reader: str, message_id: int) -> Receipt:
    column = _COLUMNS[reader]
    current = getattr(conversation, column.key)
    if current is None or current < message_id:
        moved = session.execute(
            update(Conversation).where(Conversation.id == conversation.id, or_(column.is_(None), column < message_id))
            .values({column.key: message_id}).execution_options(synchronize_session=False)).rowcount == 1
        if moved:
            session.commit()
            return Receipt(conversation.id, conversation.visitor_id, reader, message_id, changed=True)
        session.rollback()  # another tab moved it meanwhile: judge against what is stored now
        session.refresh(conversation)
        current = getattr(conversation, column.key)
    if current is not None and current > message_id:
        raise Conflict({"message_id": [str(_l("Later messages are marked as read already."))]})
    return Receipt(conversation.id, conversation.visitor_id, reader, message_id)


def positions(conversation: Conversation | None) -> list[dict]:
    """The stored read positions of *conversation* as ``read`` payloads (none while nothing was
    read): sent on ``resume``, so that a reloaded widget or console shows its 已读 marks again
    and counts as unread only what was not read."""
    if conversation is None:
        return []
    return [Receipt(conversation.id, conversation.visitor_id, reader, value).payload()
            for reader, column in _COLUMNS.items() if (value := getattr(conversation, column.key)) is not None]


def latest_conversation(session: Session, visitor_id: int | None) -> Conversation | None:
    """The visitor's newest conversation (open or closed): the one their widget shows."""
    if visitor_id is None:
        return None
    return session.scalar(select(Conversation).where(Conversation.visitor_id == visitor_id)
                          .order_by(Conversation.id.desc()).limit(1))
