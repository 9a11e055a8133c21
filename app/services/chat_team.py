"""Agents working together on live chats (协同接待): transferring a conversation to another agent or
to a group, inviting a second agent, a supervisor watching a chat and whispering to its agent, and
the agents' team room (群组沟通).

Rules:
- Transfer (转接): the owner of an active conversation (or a supervisor) hands it to another active
  agent who serves the site, is not offline and is under their ``max_chats`` (the agent becomes the
  owner at once), or to a group of the same site (the conversation goes back to ``queued`` for that
  group, keeping its ``queued_at`` so it is not sent to the back of the line, and routing offers it
  again; the agent who handed it over counts as having declined it). A ``ChatTransfer`` row, a
  system message the visitor sees, the note as an internal note and an audit row are written in one
  transaction; the ownership change is a conditional update, so two transfers at once cannot both win.
- Second agent (邀请协助): the owner (or a supervisor) invites an active agent of the site who is not
  offline; the invitation is a ``ConversationParticipant`` (role ``invited``) at once, so the invited
  agent may read and write as soon as they open it (``accept_invite``); ``leave`` ends it.
- Watch and whisper (监听与密语): a user with the supervise permission watches any open
  conversation read-only (participant role ``watcher``) and whispers to its owner; a whisper is a
  ``ChatMessage`` of type ``whisper`` addressed to the owner's user, never shown to the visitor.
- Team room: a message of 1 to 2000 characters from any agent or manager, idempotent on its
  ``client_msg_id``; the history gives the latest 50 messages or those after a known id.
Every function commits its own transaction. Errors: ``ValidationFailed`` (bad payload),
``AccessDenied``, ``NotFound``, ``Conflict``; nothing is written when one is raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask_appbuilder.security.sqla.models import User
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import (
    AgentGroup,
    AgentProfile,
    AgentStatus,
    ChatMessage,
    ChatOffer,
    ChatTransfer,
    Conversation,
    ConversationParticipant,
    ConversationStatus,
    OfferOutcome,
    ParticipantRole,
    SenderType,
    TeamMessage,
)
from app.services import audit, chat
from app.services.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from app.services.timefmt import utc_iso

MAX_NOTE = 1000
HISTORY_SIZE = 50


@dataclass
class Member:
    """Who acts: a signed-in console user, their active agent profile (if any) and whether they hold
    the supervise permission (decided by the caller, which knows the request)."""

    user_id: int
    username: str
    name: str
    agent: AgentProfile | None = None
    supervisor: bool = False


@dataclass
class TransferResult:
    conversation: Conversation
    transfer: ChatTransfer
    from_agent: AgentProfile | None
    to_agent: AgentProfile | None
    to_group: AgentGroup | None
    name: str  # the new agent's display name or the group's name
    system_message: ChatMessage
    note_message: ChatMessage | None = None
    messages: list[ChatMessage] = field(default_factory=list)


def member(session: Session, user_id: int, supervisor: bool = False) -> Member:
    """The acting console user. Raises ``AccessDenied`` for an unknown or inactive user."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise AccessDenied({"_": [str(_l("You cannot use the chat."))]})
    agent = chat.agent_for_user(session, user.id)
    name = agent.display_name if agent is not None else (
        " ".join(p.strip() for p in (user.first_name, user.last_name) if p and p.strip() not in ("", "-"))
        or user.username)
    return Member(user.id, user.username, name, agent, supervisor)


# --- validation -----------------------------------------------------------------------------


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _require_open(conversation: Conversation, active: bool = True) -> None:
    if conversation.status == ConversationStatus.closed:
        raise Conflict({"conversation_id": [str(_l("This conversation is closed."))]})
    if active and conversation.status != ConversationStatus.active:
        raise Conflict({"conversation_id": [str(_l("Nobody is serving this conversation yet."))]})


def _require_owner_or_supervisor(who: Member, conversation: Conversation) -> None:
    owner = who.agent is not None and conversation.agent_id == who.agent.id
    if not owner and not who.supervisor:
        raise AccessDenied({"conversation_id": [str(_l("This is not your conversation."))]})


def serves_site(agent: AgentProfile, site_id: int) -> bool:
    """An agent serves the sites of their groups, or every site when they have no group."""
    return not agent.groups or any(group.site_id == site_id for group in agent.groups)


def _colleague(session: Session, agent_id: object, conversation: Conversation, field_name: str) -> AgentProfile:
    """An active agent of the conversation's site who is signed in to the console (not offline)."""
    agent = session.get(AgentProfile, agent_id) if _is_id(agent_id) else None
    if agent is None or not agent.active:
        raise NotFound({field_name: [str(_l("No such agent."))]})
    if not serves_site(agent, conversation.site_id):
        raise ValidationFailed({field_name: [str(_l("%(name)s does not serve this website.",
                                                    name=agent.display_name))]})
    if agent.status == AgentStatus.offline:
        raise Conflict({field_name: [str(_l("%(name)s is offline.", name=agent.display_name))]})
    return agent


def _participant(session: Session, conversation_id: int, user_id: int) -> ConversationParticipant | None:
    return session.scalar(select(ConversationParticipant).where(
        ConversationParticipant.conversation_id == conversation_id, ConversationParticipant.user_id == user_id))


def _visitor_locale(conversation: Conversation) -> str:
    language = (conversation.visitor.language or "").lower() if conversation.visitor else ""
    return "en" if language.startswith("en") else "zh_CN"


# --- transfer -------------------------------------------------------------------------------


def transfer(session: Session, who: Member, conversation_id: object, to_agent_id: object = None,
             to_group_id: object = None, note: object = None, now: datetime | None = None) -> TransferResult:
    """Hand an active conversation to another agent (who owns it at once) or to a group of its site
    (back in that group's queue). Only its owner or a supervisor may.

    Raises ``ValidationFailed`` (not exactly one target, a bad note, an agent or group of another
    site, the owner themselves), ``NotFound`` (no such conversation, agent or group),
    ``AccessDenied`` (not the owner nor a supervisor), ``Conflict`` (closed or not being served,
    the agent offline or at their limit, or the conversation changed meanwhile).
    """
    errors: dict[str, list[str]] = {}
    if (to_agent_id is None) == (to_group_id is None):
        errors["_"] = [str(_l("Choose either an agent or a group."))]
    for name, value in (("to_agent_id", to_agent_id), ("to_group_id", to_group_id)):
        if value is not None and not _is_id(value):
            errors[name] = [str(_l("Not a valid id."))]
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        errors["note"] = [str(_l("At most %(n)d characters.", n=MAX_NOTE))]
    if errors:
        raise ValidationFailed(errors)
    note = (note or "").strip() or None
    now = now or utcnow()
    conversation = chat.get_conversation(session, conversation_id)
    _require_owner_or_supervisor(who, conversation)
    _require_open(conversation)
    from_agent = conversation.agent
    to_agent = to_group = None
    if to_agent_id is not None:
        to_agent = _colleague(session, to_agent_id, conversation, "to_agent_id")
        if to_agent.id == conversation.agent_id:
            raise ValidationFailed({"to_agent_id": [str(_l("This agent already has the conversation."))]})
        # The agent's row stays locked until the commit, so concurrent hand-overs respect the cap.
        session.execute(select(AgentProfile.id).where(AgentProfile.id == to_agent.id).with_for_update())
        if chat.active_chats(session, to_agent.id) >= to_agent.max_chats:
            raise Conflict({"to_agent_id": [str(_l("%(name)s is at their limit of %(n)d chats.",
                                                   name=to_agent.display_name, n=to_agent.max_chats))]})
        values = {"agent_id": to_agent.id, "status": ConversationStatus.active}
        target_name = to_agent.display_name
    else:
        to_group = session.get(AgentGroup, to_group_id)
        if to_group is None:
            raise NotFound({"to_group_id": [str(_l("No such group."))]})
        if to_group.site_id != conversation.site_id:
            raise ValidationFailed({"to_group_id": [str(_l("This group is not on this website."))]})
        # queued_at is kept: a visitor handed on is not sent to the back of the queue.
        values = {"agent_id": None, "group_id": to_group.id, "status": ConversationStatus.queued,
                  "offered_at": None, "offer_expires_at": None}
        target_name = to_group.name
    old = {"agent_id": conversation.agent_id, "group_id": conversation.group_id, "status": conversation.status.value}
    # Conditional: a concurrent transfer or close makes this one change nothing.
    changed = session.execute(update(Conversation).where(
        Conversation.id == conversation.id, Conversation.status == ConversationStatus.active,
        Conversation.agent_id == conversation.agent_id).values(**values).execution_options(synchronize_session=False))
    if changed.rowcount != 1:
        session.rollback()
        raise Conflict({"conversation_id": [str(_l("The conversation changed meanwhile; please try again."))]})
    if to_agent is not None:
        to_agent.last_assigned_at = now
        own = _participant(session, conversation.id, to_agent.user_id)
        if own is not None and own.left_at is None:
            own.left_at = now  # an invited agent who takes the chat over is its owner now
    elif from_agent is not None:
        # Routing does not offer the conversation straight back to the agent who handed it on.
        session.add(ChatOffer(conversation_id=conversation.id, agent_id=from_agent.id, offered_at=now,
                              expires_at=now, outcome=OfferOutcome.declined, decided_at=now))
    session.execute(update(ChatOffer).where(
        ChatOffer.conversation_id == conversation.id, ChatOffer.outcome == OfferOutcome.pending)
        .values(outcome=OfferOutcome.withdrawn, decided_at=now))
    record = ChatTransfer(conversation_id=conversation.id, from_agent_id=from_agent.id if from_agent else None,
                          to_agent_id=to_agent.id if to_agent else None, to_group_id=to_group.id if to_group else None,
                          note=note, created_at=now)
    session.add(record)
    with force_locale(_visitor_locale(conversation)):
        announcement = str(_l("Your chat has been transferred to %(name)s.", name=target_name))
    system = ChatMessage(conversation_id=conversation.id, sender_type=SenderType.system, text=announcement,
                         created_at=now)
    session.add(system)
    note_message = None
    if note:
        note_message = ChatMessage(conversation_id=conversation.id, sender_type=SenderType.note, text=note,
                                   sender_user_id=who.user_id, sender_name=who.name, created_at=now)
        session.add(note_message)
    new = {"agent_id": values["agent_id"], "group_id": values.get("group_id", conversation.group_id),
           "status": values["status"].value}
    audit.record_event(session, "chat_transfer", actor=audit.Actor(who.user_id, who.username),
                       object_type="chat_conversation", object_id=conversation.id,
                       summary=f"{from_agent.display_name if from_agent else ''} -> {target_name}",
                       changes={k: [old[k], new[k]] for k in old if old[k] != new[k]} | (
                           {"note": [None, note]} if note else {}))
    session.commit()
    session.refresh(conversation)
    return TransferResult(conversation, record, from_agent, to_agent, to_group, target_name, system, note_message,
                          [m for m in (system, note_message) if m is not None])


# --- a second agent -------------------------------------------------------------------------


def invite_agent(session: Session, who: Member, conversation_id: object, agent_id: object,
                 now: datetime | None = None) -> tuple[ConversationParticipant, AgentProfile]:
    """The owner (or a supervisor) invites another agent of the site into an active conversation;
    the invited agent may read and write in it until they leave.

    Raises ``NotFound``, ``AccessDenied`` (not the owner nor a supervisor), ``ValidationFailed``
    (a bad id, an agent of another site, the owner), ``Conflict`` (closed or not served, the agent
    offline or already in the conversation).
    """
    if not _is_id(agent_id):
        raise ValidationFailed({"agent_id": [str(_l("Not a valid id."))]})
    now = now or utcnow()
    conversation = chat.get_conversation(session, conversation_id)
    _require_owner_or_supervisor(who, conversation)
    _require_open(conversation)
    agent = _colleague(session, agent_id, conversation, "agent_id")
    if agent.id == conversation.agent_id:
        raise ValidationFailed({"agent_id": [str(_l("This agent already has the conversation."))]})
    participant = _participant(session, conversation.id, agent.user_id)
    if participant is not None and participant.left_at is None and participant.role == ParticipantRole.invited:
        raise Conflict({"agent_id": [str(_l("%(name)s is already in this conversation.", name=agent.display_name))]})
    if participant is None:
        participant = ConversationParticipant(conversation_id=conversation.id, user_id=agent.user_id)
        session.add(participant)
    participant.role, participant.invited_by_id = ParticipantRole.invited, who.user_id
    participant.joined_at, participant.left_at = now, None
    try:
        session.commit()
    except IntegrityError:  # invited twice at once: the other invitation stands
        session.rollback()
        raise Conflict({"agent_id": [str(_l("%(name)s is already in this conversation.",
                                            name=agent.display_name))]}) from None
    return participant, agent


def accept_invite(session: Session, who: Member, conversation_id: object,
                  now: datetime | None = None) -> Conversation:
    """The invited agent opens the conversation they were invited into.

    Raises ``NotFound`` (no such conversation, or no standing invitation for this user) and
    ``Conflict`` (closed).
    """
    conversation = chat.get_conversation(session, conversation_id)
    participant = _participant(session, conversation.id, who.user_id)
    if participant is None or participant.left_at is not None or participant.role != ParticipantRole.invited:
        raise NotFound({"conversation_id": [str(_l("You have not been invited into this conversation."))]})
    _require_open(conversation, active=False)
    participant.joined_at = now or utcnow()
    session.commit()
    return conversation


def leave(session: Session, who: Member, conversation_id: object,
          now: datetime | None = None) -> ConversationParticipant | None:
    """End the user's part in a conversation (invited or watching); returns the participation ended,
    or None when there was none (e.g. an agent who handed the chat on). The owner cannot leave.

    Raises ``NotFound`` and ``Conflict`` (the owner: transfer or close it instead).
    """
    conversation = chat.get_conversation(session, conversation_id)
    if who.agent is not None and conversation.agent_id == who.agent.id \
            and conversation.status != ConversationStatus.closed:
        raise Conflict({"conversation_id": [str(_l("You own this conversation: transfer or close it instead."))]})
    participant = _participant(session, conversation.id, who.user_id)
    if participant is None or participant.left_at is not None:
        return None
    participant.left_at = now or utcnow()
    session.commit()
    return participant


def takes_part(session: Session, who: Member, conversation_id: int) -> bool:
    """True while the user owns the conversation or is in it (invited or watching)."""
    conversation = session.get(Conversation, conversation_id)
    return conversation is not None and chat.takes_part(session, conversation, who.user_id)


# --- supervisors ----------------------------------------------------------------------------


def _require_supervisor(who: Member) -> None:
    if not who.supervisor:
        raise AccessDenied({"_": [str(_l("Only supervisors may watch chats and whisper."))]})


def watch(session: Session, who: Member, conversation_id: object, now: datetime | None = None) -> Conversation:
    """A supervisor starts watching an open conversation read-only (participant role ``watcher``;
    an agent already in it keeps their part).

    Raises ``AccessDenied`` (no supervise permission), ``NotFound``, ``Conflict`` (closed).
    """
    _require_supervisor(who)
    conversation = chat.get_conversation(session, conversation_id)
    _require_open(conversation, active=False)
    if who.agent is not None and conversation.agent_id == who.agent.id:
        return conversation
    participant = _participant(session, conversation.id, who.user_id)
    if participant is not None and participant.left_at is None:
        return conversation
    if participant is None:
        participant = ConversationParticipant(conversation_id=conversation.id, user_id=who.user_id)
        session.add(participant)
    participant.role, participant.invited_by_id = ParticipantRole.watcher, None
    participant.joined_at, participant.left_at = now or utcnow(), None
    try:
        session.commit()
    except IntegrityError:  # the same supervisor from two tabs at once: one row is enough
        session.rollback()
    return conversation


def unwatch(session: Session, who: Member, conversation_id: object,
            now: datetime | None = None) -> ConversationParticipant | None:
    """Stop watching; returns the watch ended, or None when the user was not watching.

    Raises ``NotFound``.
    """
    conversation = chat.get_conversation(session, conversation_id)
    participant = _participant(session, conversation.id, who.user_id)
    if participant is None or participant.left_at is not None or participant.role != ParticipantRole.watcher:
        return None
    participant.left_at = now or utcnow()
    session.commit()
    return participant


def whisper(session: Session, who: Member, conversation_id: object, client_msg_id: object,
            text: object) -> tuple[ChatMessage, bool]:
    """A supervisor whispers to the owner of an active conversation: stored as a ``whisper`` message
    for the owner's user, never shown to the visitor. Idempotent on ``client_msg_id``.

    Returns ``(message, created)``. Raises ``AccessDenied`` (no supervise permission),
    ``ValidationFailed``, ``NotFound``, ``Conflict`` (closed, not served yet, or the
    ``client_msg_id`` already names another message).
    """
    _require_supervisor(who)
    client_msg_id, text = chat.validate_message(client_msg_id, text)  # (system ids share the table)
    conversation = chat.get_conversation(session, conversation_id)

    def stored() -> ChatMessage | None:
        existing = session.scalar(select(ChatMessage).where(
            ChatMessage.conversation_id == conversation.id, ChatMessage.client_msg_id == client_msg_id))
        if existing is not None and (existing.sender_type != SenderType.whisper
                                     or existing.sender_user_id != who.user_id):
            raise Conflict({"client_msg_id": [str(_l("This client_msg_id is already used."))]})
        return existing

    existing = stored()
    if existing is not None:
        return existing, False
    _require_open(conversation)
    owner = conversation.agent
    message = ChatMessage(conversation_id=conversation.id, sender_type=SenderType.whisper,
                          client_msg_id=client_msg_id, text=text, sender_user_id=who.user_id, sender_name=who.name,
                          recipient_user_id=owner.user_id if owner else None, created_at=utcnow())
    session.add(message)
    try:
        session.commit()
    except IntegrityError:  # the same resend arrived twice at once
        session.rollback()
        existing = stored()
        if existing is None:
            raise
        return existing, False
    return message, True


def whisper_payload(message: ChatMessage) -> dict:
    """A whisper as the agents in the conversation receive it (a ``message`` with its recipient)."""
    return chat.message_payload(message) | {"recipient_user_id": message.recipient_user_id}


# --- team room ------------------------------------------------------------------------------


def post_team_message(session: Session, who: Member, client_msg_id: object,
                      text: object) -> tuple[TeamMessage, bool]:
    """Store a message in the team room; resending the same ``client_msg_id`` returns the stored one.

    Returns ``(message, created)``. Raises ``ValidationFailed`` (bad id or text) and ``Conflict``
    (the ``client_msg_id`` is another user's).
    """
    client_msg_id, text = chat.validate_message(client_msg_id, text, system_ids=False)

    def stored() -> TeamMessage | None:
        existing = session.scalar(select(TeamMessage).where(TeamMessage.client_msg_id == client_msg_id))
        if existing is not None and existing.sender_user_id != who.user_id:
            raise Conflict({"client_msg_id": [str(_l("This client_msg_id is already used."))]})
        return existing

    existing = stored()
    if existing is not None:
        return existing, False
    message = TeamMessage(sender_user_id=who.user_id, sender_name=who.name, client_msg_id=client_msg_id, text=text,
                          created_at=utcnow())
    session.add(message)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = stored()
        if existing is None:
            raise
        return existing, False
    return message, True


def team_history(session: Session, last_id: object = None, limit: int = HISTORY_SIZE) -> list[TeamMessage]:
    """The latest *limit* team messages, or the first *limit* after *last_id*, oldest first.

    Raises ``ValidationFailed`` for a bad ``last_id``.
    """
    if last_id is not None and (isinstance(last_id, bool) or not isinstance(last_id, int) or last_id < 0):
        raise ValidationFailed({"last_id": [str(_l("last_id is a whole number."))]})
    if last_id:
        return list(session.scalars(select(TeamMessage).where(TeamMessage.id > last_id)
                                    .order_by(TeamMessage.id).limit(limit)))
    latest = list(session.scalars(select(TeamMessage).order_by(TeamMessage.id.desc()).limit(limit)))
    return latest[::-1]


def team_message_payload(message: TeamMessage) -> dict:
    """A team message as the console receives it (text as stored: insert it as text, never HTML)."""
    return {"id": message.id, "sender_user_id": message.sender_user_id, "sender_name": message.sender_name,
            "text": message.text, "client_msg_id": message.client_msg_id,
            "created_at": utc_iso(message.created_at)}

