"""The chat that an accepted invitation starts (主动邀请 → 对话).

Rules:
- When a visitor accepts an invitation, the invitation's text is the first message of their
  conversation: as the inviting agent's message (their name on it) for a manual invitation, as a
  system message for a rule's. It is stored once per invitation (the reserved client message id
  ``sys:invitation:<id>``), so answering twice, or from two tabs, stores it once.
- The conversation is the visitor's open one, else a new one. A new one goes to the inviting agent
  at once (active, theirs) when they are available: active, online, present and under their
  ``max_chats`` (counted under their row lock, as when they accept from the queue). Otherwise, and
  for a rule's invitation, it is queued with the inviting agent as the asked-for agent (指定客服)
  and routed as any new chat: offered to them when they become available, else to their group.
- The visitor's first message then lands in that conversation.
Every function commits its own transaction. Errors: none of its own (``chat_tools.respond`` checks
the answer).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import (
    AgentProfile,
    ChatInvitation,
    ChatMessage,
    Conversation,
    ConversationStatus,
    InvitationStatus,
    SenderType,
    Visitor,
)
from app.services import chat, routing
from app.services.routing import Emit
from app.sockets.rooms import site_agents_room, visitor_room

INVITATION_KEY = "invitation:"  # + the invitation's id, after chat.SYSTEM_PREFIX


def _inviter_available(session: Session, agent: AgentProfile | None, now: datetime) -> bool:
    """Whether *agent* can take one more chat now (locks their row first; see the module rules)."""
    if agent is None:
        return False
    chat._lock_agent(session, agent)  # noqa: SLF001 - the same lock as accepting from the queue
    session.refresh(agent)
    present = session.scalar(select(AgentProfile.id).where(AgentProfile.id == agent.id, routing.present(now)))
    return present is not None and chat.active_chats(session, agent.id) < agent.max_chats


def _store_invitation_text(session: Session, conversation: Conversation, invitation: ChatInvitation,
                           agent: AgentProfile | None, now: datetime) -> ChatMessage | None:
    """The invitation's text in *conversation* (no commit); None when it is there already."""
    key = chat.SYSTEM_PREFIX + INVITATION_KEY + str(invitation.id)
    if session.scalar(select(ChatMessage.id).where(ChatMessage.conversation_id == conversation.id,
                                                   ChatMessage.client_msg_id == key)) is not None:
        return None
    message = ChatMessage(conversation_id=conversation.id, client_msg_id=key, text=invitation.text, created_at=now,
                          sender_type=SenderType.agent if agent is not None else SenderType.system,
                          sender_user_id=agent.user_id if agent is not None else None,
                          sender_name=agent.display_name if agent is not None else None)
    session.add(message)
    session.flush()
    return message


def start_invited_chat(session: Session, invitation: ChatInvitation, now: datetime | None = None,
                       include_ip: bool = False) -> tuple[Conversation | None, list[Emit]]:
    """The conversation an accepted *invitation* starts (see the module rules), with the events to
    send: the invitation's message to both sides, ``agent_joined`` to the visitor and the queue
    updates when the inviting agent took it, else the offer, ``chat_request`` and the chat's queue
    events. Returns ``(None, [])`` for an invitation that is not accepted. Commits."""
    if invitation.status != InvitationStatus.accepted:
        return None, []
    now = now or utcnow()
    visitor = session.get(Visitor, invitation.visitor_id)
    agent = session.get(AgentProfile, invitation.agent_id) if invitation.agent_id else None
    agent = agent if agent is not None and agent.active else None
    conversation = chat.open_conversation(session, visitor)
    opened = conversation is None
    if opened:
        taken = _inviter_available(session, agent, now)
        conversation = Conversation(
            site_id=visitor.site_id, visitor_id=visitor.id, queued_at=now, entry_url=visitor.current_url,
            requested_agent_id=agent.id if agent is not None else None,
            status=ConversationStatus.active if taken else ConversationStatus.queued)
        if taken:
            conversation.agent_id, conversation.accepted_at = agent.id, now
            conversation.first_response_at = now  # the agent spoke first: no "all agents are busy" auto reply
        session.add(conversation)
        session.flush()
    message = _store_invitation_text(session, conversation, invitation, agent, now)
    if opened and conversation.status == ConversationStatus.active:
        session.execute(update(AgentProfile).where(AgentProfile.id == agent.id)
                        .values(last_assigned_at=now).execution_options(synchronize_session=False))
    session.commit()
    session.refresh(conversation)
    emits = routing.message_emits(conversation, message) if message is not None else []
    if not opened:
        return conversation, emits
    if conversation.status == ConversationStatus.active:
        emits.append(Emit("agent_joined", {"conversation_id": conversation.id, "name": agent.display_name},
                          visitor_room(visitor.id), "/visitor"))
        return conversation, emits + routing.joined_queue_emits(session, conversation, now)
    offered = routing.route(session, conversation.id, now, include_ip)
    session.refresh(conversation)
    emits += offered
    emits.append(Emit("chat_request", {"conversation_id": conversation.id}, site_agents_room(visitor.site_id),
                      "/agent"))
    return conversation, emits + routing.joined_queue_emits(session, conversation, now)
