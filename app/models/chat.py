"""Live chat (在线客服): sites and their widget settings, agent groups and profiles, visitors and
their page views, conversations and messages, blocks.

All chat state lives here (never only in process memory), so several processes can serve the
sockets and a restart loses nothing.
"""

from __future__ import annotations

import enum
from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Audited, Timestamps, utcnow
from app.models.crm import ClientContact
from app.models.types import EncryptedText


class ButtonPosition(enum.Enum):
    right = "right"
    left = "left"


class RoutingMode(enum.Enum):
    least_busy = "least_busy"
    round_robin = "round_robin"


class AgentStatus(enum.Enum):
    online = "online"
    away = "away"
    offline = "offline"
    invisible = "invisible"


class ConversationStatus(enum.Enum):
    queued = "queued"  # waiting for an agent
    offered = "offered"  # offered to an agent who has not accepted yet
    active = "active"
    closed = "closed"


class PrechatMode(enum.Enum):
    """How the pre-chat form (售前表单) asks for one field."""

    off = "off"
    optional = "optional"
    required = "required"


class SendKey(enum.Enum):
    """Which key sends an agent's reply in the console (the other one makes a new line)."""

    enter = "enter"  # Enter sends, Shift+Enter: new line
    ctrl_enter = "ctrl_enter"  # Ctrl+Enter (⌘+Enter) sends, Enter: new line


class SenderType(enum.Enum):
    visitor = "visitor"
    agent = "agent"
    system = "system"
    note = "note"  # internal note: agents only
    whisper = "whisper"  # supervisor to agent: never shown to the visitor
    bot = "bot"  # the knowledge base's answer (机器人) while no agent serves the visitor


class ChatSite(Audited, Timestamps, Model):
    """A website that embeds the chat widget."""

    __tablename__ = "chat_site"
    __audit_secret__ = ("identity_secret",)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    site_key: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    identity_secret: Mapped[str] = mapped_column(EncryptedText, nullable=False)
    allowed_origins: Mapped[str] = mapped_column(Text, nullable=False, default="")  # one per line
    welcome_text: Mapped[str | None] = mapped_column(String(500))
    warning_banner: Mapped[str | None] = mapped_column(String(500))  # 警示语
    theme_color: Mapped[str] = mapped_column(String(7), nullable=False, default="#1677ff")
    button_position: Mapped[ButtonPosition] = mapped_column(
        Enum(ButtonPosition, name="button_position", native_enum=False, length=10), nullable=False,
        default=ButtonPosition.right)
    business_hours: Mapped[str | None] = mapped_column(Text)  # "mon-fri 09:00-18:00" lines; blank: always
    offline_form: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    auto_reply_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=60)  # 0: never
    auto_reply_text: Mapped[str | None] = mapped_column(String(500))  # no agent has answered yet
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # The pre-chat form (售前表单): what the widget asks before a new chat's first message.
    prechat_name: Mapped[PrechatMode] = mapped_column(
        Enum(PrechatMode, name="prechat_mode", native_enum=False, length=10), nullable=False,
        default=PrechatMode.off)
    prechat_phone: Mapped[PrechatMode] = mapped_column(
        Enum(PrechatMode, name="prechat_mode", native_enum=False, length=10), nullable=False,
        default=PrechatMode.off)
    prechat_email: Mapped[PrechatMode] = mapped_column(
        Enum(PrechatMode, name="prechat_mode", native_enum=False, length=10), nullable=False,
        default=PrechatMode.off)
    prechat_question: Mapped[PrechatMode] = mapped_column(
        Enum(PrechatMode, name="prechat_mode", native_enum=False, length=10), nullable=False,
        default=PrechatMode.off)

    groups: Mapped[list[AgentGroup]] = relationship(back_populates="site", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return self.name


agent_group_member = Table(
    "chat_agent_group_member",
    Model.metadata,
    Column("agent_id", ForeignKey("chat_agent.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("chat_group.id", ondelete="CASCADE"), primary_key=True),
)


class AgentGroup(Audited, Timestamps, Model):
    """A department of agents on a site, chosen for a visitor by URL rules (区域分流)."""

    __tablename__ = "chat_group"
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_group_site_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("chat_site.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    url_patterns: Mapped[str | None] = mapped_column(Text)  # one glob per line, e.g. */tax/*
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=100)
    routing: Mapped[RoutingMode] = mapped_column(
        Enum(RoutingMode, name="routing_mode", native_enum=False, length=20), nullable=False,
        default=RoutingMode.least_busy)
    accept_timeout_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=30)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    site: Mapped[ChatSite] = relationship(back_populates="groups")
    agents: Mapped[list[AgentProfile]] = relationship(secondary=agent_group_member, back_populates="groups")

    def __repr__(self) -> str:
        return f"{self.site.name if self.site else ''} / {self.name}"


class AgentProfile(Audited, Timestamps, Model):
    """客服: a user who answers chats, with their limits and presence."""

    __tablename__ = "chat_agent"
    __table_args__ = (CheckConstraint("max_chats >= 1", name="ck_agent_max_chats"),)
    # (the send key is the agent's own preference, set from the console: not an admin change)
    __audit_ignore__ = ("created_at", "updated_at", "status", "last_seen_at", "last_assigned_at", "send_key")

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(100), nullable=False)
    avatar_url: Mapped[str | None] = mapped_column(String(500))
    languages: Mapped[str | None] = mapped_column(String(100))  # "zh_CN,en"
    max_chats: Mapped[int] = mapped_column(Integer, nullable=False, default=5)
    greeting: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    status: Mapped[AgentStatus] = mapped_column(
        Enum(AgentStatus, name="agent_status", native_enum=False, length=10), nullable=False,
        default=AgentStatus.offline)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_assigned_at: Mapped[datetime | None] = mapped_column(DateTime)
    send_key: Mapped[SendKey] = mapped_column(
        Enum(SendKey, name="send_key", native_enum=False, length=10), nullable=False, default=SendKey.enter)

    user: Mapped[User] = relationship(User)
    groups: Mapped[list[AgentGroup]] = relationship(secondary=agent_group_member, back_populates="agents")

    def __repr__(self) -> str:
        return self.display_name



class AgentPresence(Model):
    """One stretch of an agent's status (online, away or invisible) from ``started_at`` until
    ``ended_at`` (blank: still so). Offline keeps no stretch. Written by ``presence.record_status``
    whenever the status changes, read by the analytics' time online and away."""

    __tablename__ = "chat_agent_presence"
    __table_args__ = (Index("ix_agent_presence_agent_open", "agent_id", "ended_at"),
                      Index("ix_agent_presence_started_at", "started_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("chat_agent.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[AgentStatus] = mapped_column(
        Enum(AgentStatus, name="agent_presence_status", native_enum=False, length=10), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)

class Visitor(Model):
    """A browser that loaded the widget, recognised again by its signed visitor token."""

    __tablename__ = "chat_visitor"
    __table_args__ = (UniqueConstraint("site_id", "uid", name="uq_visitor_site_uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("chat_site.id", ondelete="CASCADE"), nullable=False)
    uid: Mapped[str] = mapped_column(String(40), nullable=False)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    visits: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    page_views: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    online: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    current_url: Mapped[str | None] = mapped_column(String(2000))
    current_title: Mapped[str | None] = mapped_column(String(500))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    browser: Mapped[str | None] = mapped_column(String(100))
    os: Mapped[str | None] = mapped_column(String(100))
    device: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str | None] = mapped_column(String(35))
    screen: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    external_user_id: Mapped[str | None] = mapped_column(String(100))  # verified by the identity hash
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("client_contact.id", ondelete="SET NULL"))
    name: Mapped[str | None] = mapped_column(String(100))  # given by the visitor (leave-a-message, pre-chat)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(30))
    anonymised_at: Mapped[datetime | None] = mapped_column(DateTime)  # retention ran over this visitor
    prechat_at: Mapped[datetime | None] = mapped_column(DateTime)  # when the visitor last sent the pre-chat form

    site: Mapped[ChatSite] = relationship(ChatSite)
    contact: Mapped[ClientContact | None] = relationship(ClientContact)


class VisitorConnection(Model):
    """One open widget connection of a visitor, in whichever server process holds it: a visitor is
    online while they have one. ``process`` names the holding process, which refreshes
    ``seen_at`` from its sweep; rows of a process that stopped refreshing (it died) are dropped."""

    __tablename__ = "chat_visitor_connection"

    id: Mapped[int] = mapped_column(primary_key=True)
    visitor_id: Mapped[int] = mapped_column(ForeignKey("chat_visitor.id", ondelete="CASCADE"), nullable=False,
                                            index=True)
    sid: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    process: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class PageView(Model):
    """访问轨迹: one page a visitor opened, with where they came from and how long they stayed."""

    __tablename__ = "chat_page_view"
    __table_args__ = (Index("ix_page_view_visitor_started", "visitor_id", "started_at"),
                      Index("ix_page_view_started_at", "started_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    visitor_id: Mapped[int] = mapped_column(ForeignKey("chat_visitor.id", ondelete="CASCADE"), nullable=False)
    visit_no: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    title: Mapped[str | None] = mapped_column(String(500))
    referrer: Mapped[str | None] = mapped_column(String(2000))
    search_engine: Mapped[str | None] = mapped_column(String(50))
    keyword: Mapped[str | None] = mapped_column(String(200))
    utm_source: Mapped[str | None] = mapped_column(String(200))
    utm_medium: Mapped[str | None] = mapped_column(String(200))
    utm_campaign: Mapped[str | None] = mapped_column(String(200))
    utm_term: Mapped[str | None] = mapped_column(String(200))
    utm_content: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Conversation(Model):
    """A chat between a visitor and the agency: queued → offered → active → closed."""

    __tablename__ = "chat_conversation"
    __table_args__ = (
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="ck_conversation_rating"),
        Index("ix_conversation_status_queued", "status", "queued_at"),
        Index("ix_conversation_queued_at", "queued_at"),  # the analytics' range of days
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("chat_site.id", ondelete="CASCADE"), nullable=False)
    visitor_id: Mapped[int] = mapped_column(ForeignKey("chat_visitor.id", ondelete="CASCADE"), nullable=False,
                                            index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("chat_group.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("chat_agent.id", ondelete="SET NULL"), index=True)
    status: Mapped[ConversationStatus] = mapped_column(
        Enum(ConversationStatus, name="conversation_status", native_enum=False, length=10), nullable=False,
        default=ConversationStatus.queued)
    queued_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    offered_at: Mapped[datetime | None] = mapped_column(DateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(String(1000))
    entry_url: Mapped[str | None] = mapped_column(String(2000))  # the page the chat started on (routing)
    requested_agent_id: Mapped[int | None] = mapped_column(  # 指定客服: the agent the visitor asked for
        ForeignKey("chat_agent.id", ondelete="SET NULL"))
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime)  # offered: moves on after this
    last_visitor_message_at: Mapped[datetime | None] = mapped_column(DateTime)
    auto_replied_at: Mapped[datetime | None] = mapped_column(DateTime)  # the no-answer auto reply went out
    closed_by: Mapped[str | None] = mapped_column(String(10))  # visitor | agent | system
    transcript_email: Mapped[str | None] = mapped_column(String(254))  # the visitor asked for a transcript
    # Read receipts (已读): the id of the last message the visitor / the agents have seen; only grows.
    visitor_read_up_to: Mapped[int | None] = mapped_column(Integer)
    agent_read_up_to: Mapped[int | None] = mapped_column(Integer)

    site: Mapped[ChatSite] = relationship(ChatSite)
    visitor: Mapped[Visitor] = relationship(Visitor)
    group: Mapped[AgentGroup | None] = relationship(AgentGroup)
    agent: Mapped[AgentProfile | None] = relationship(AgentProfile, foreign_keys=[agent_id])
    requested_agent: Mapped[AgentProfile | None] = relationship(AgentProfile, foreign_keys=[requested_agent_id])


class ChatMessage(Model):
    """A message, stored before it is acknowledged; ``client_msg_id`` makes a resend idempotent."""

    __tablename__ = "chat_message"
    __table_args__ = (
        UniqueConstraint("conversation_id", "client_msg_id", name="uq_message_client_id"),
        Index("ix_message_conversation_id", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("chat_conversation.id", ondelete="CASCADE"), nullable=False)
    sender_type: Mapped[SenderType] = mapped_column(
        Enum(SenderType, name="sender_type", native_enum=False, length=10), nullable=False)
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    sender_name: Mapped[str | None] = mapped_column(String(100))
    client_msg_id: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    # whisper: the agent it is for (the visitor never sees it); file/image: the attachment
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("chat_attachment.id", ondelete="SET NULL"))

    attachment: Mapped[ChatAttachment | None] = relationship("ChatAttachment", foreign_keys=[attachment_id])


class ChatBlock(Audited, Timestamps, Model):
    """A blocked visitor id, IP address or CIDR range, until it expires (blank: for good)."""

    __tablename__ = "chat_block"
    __table_args__ = (CheckConstraint("visitor_uid IS NOT NULL OR ip_range IS NOT NULL", name="ck_block_target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("chat_site.id", ondelete="CASCADE"))  # blank: all
    visitor_uid: Mapped[str | None] = mapped_column(String(40))
    ip_range: Mapped[str | None] = mapped_column(String(50))  # 203.0.113.7 or 203.0.113.0/24
    reason: Mapped[str | None] = mapped_column(String(500))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))

    site: Mapped[ChatSite | None] = relationship(ChatSite)


class ParticipantRole(enum.Enum):
    invited = "invited"  # a second agent invited into the chat: reads and writes
    watcher = "watcher"  # a supervisor watching read-only; may whisper to the agent


class ConversationParticipant(Model):
    """An agent in a conversation besides its owner (``Conversation.agent_id``)."""

    __tablename__ = "chat_participant"
    __table_args__ = (UniqueConstraint("conversation_id", "user_id", name="uq_participant_conversation_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("chat_conversation.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False)
    role: Mapped[ParticipantRole] = mapped_column(
        Enum(ParticipantRole, name="participant_role", native_enum=False, length=10), nullable=False)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    joined_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(DateTime)

    conversation: Mapped[Conversation] = relationship(Conversation)
    user: Mapped[User] = relationship(User, foreign_keys=[user_id])


class ChatTransfer(Model):
    """A conversation handed from one agent to another agent or to a group, with a note."""

    __tablename__ = "chat_transfer"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("chat_conversation.id", ondelete="CASCADE"), nullable=False, index=True)
    from_agent_id: Mapped[int | None] = mapped_column(ForeignKey("chat_agent.id", ondelete="SET NULL"))
    to_agent_id: Mapped[int | None] = mapped_column(ForeignKey("chat_agent.id", ondelete="SET NULL"))
    to_group_id: Mapped[int | None] = mapped_column(ForeignKey("chat_group.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class OfferOutcome(enum.Enum):
    pending = "pending"
    accepted = "accepted"
    timed_out = "timed_out"
    declined = "declined"
    withdrawn = "withdrawn"  # taken by someone else, closed, transferred


class ChatOffer(Model):
    """One routing attempt: the conversation offered to an agent until ``expires_at``."""

    __tablename__ = "chat_offer"
    __table_args__ = (Index("ix_offer_conversation", "conversation_id", "id"),
                      Index("ix_offer_offered_at", "offered_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("chat_conversation.id", ondelete="CASCADE"), nullable=False)
    agent_id: Mapped[int] = mapped_column(ForeignKey("chat_agent.id", ondelete="CASCADE"), nullable=False)
    offered_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    outcome: Mapped[OfferOutcome] = mapped_column(
        Enum(OfferOutcome, name="offer_outcome", native_enum=False, length=10), nullable=False,
        default=OfferOutcome.pending)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)


class CannedReply(Audited, Timestamps, Model):
    """快捷回复: a prepared answer, personal (``owner_id``) or shared (blank owner), typed as ``/shortcut``."""

    __tablename__ = "chat_canned_reply"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("chat_site.id", ondelete="CASCADE"))  # blank: all
    category: Mapped[str | None] = mapped_column(String(50))
    shortcut: Mapped[str] = mapped_column(String(30), nullable=False)  # without the slash
    title: Mapped[str | None] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text, nullable=False)

    owner: Mapped[User | None] = relationship(User)
    site: Mapped[ChatSite | None] = relationship(ChatSite)


class InvitationRule(Audited, Timestamps, Model):
    """An automatic invitation: when a browsing visitor meets every condition set, the widget pops up
    ``message`` (at most once per visit)."""

    __tablename__ = "chat_invitation_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("chat_site.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    message: Mapped[str] = mapped_column(String(500), nullable=False)
    min_seconds_on_page: Mapped[int | None] = mapped_column(Integer)
    url_pattern: Mapped[str | None] = mapped_column(String(500))  # glob, e.g. */pricing*
    referrer_pattern: Mapped[str | None] = mapped_column(String(500))  # glob over the referrer
    keyword_pattern: Mapped[str | None] = mapped_column(String(200))  # search keyword contains
    returning_only: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    min_page_views: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=100)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    site: Mapped[ChatSite] = relationship(ChatSite)


class InvitationStatus(enum.Enum):
    sent = "sent"
    accepted = "accepted"  # the visitor started chatting
    declined = "declined"  # the visitor closed it


class ChatInvitation(Model):
    """An invitation shown to a visitor, by an agent (manual) or a rule; one per rule per visit."""

    __tablename__ = "chat_invitation"
    __table_args__ = (UniqueConstraint("visitor_id", "rule_id", "visit_no", name="uq_invitation_rule_visit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visitor_id: Mapped[int] = mapped_column(ForeignKey("chat_visitor.id", ondelete="CASCADE"), nullable=False,
                                            index=True)
    visit_no: Mapped[int] = mapped_column(Integer, nullable=False)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("chat_invitation_rule.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("chat_agent.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(String(500), nullable=False)
    status: Mapped[InvitationStatus] = mapped_column(
        Enum(InvitationStatus, name="invitation_status", native_enum=False, length=10), nullable=False,
        default=InvitationStatus.sent)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    responded_at: Mapped[datetime | None] = mapped_column(DateTime)


class ChatAttachment(Model):
    """A file or image sent in a chat: checked type and size, stored on disk under a random name,
    downloadable only by the conversation's visitor and agents."""

    __tablename__ = "chat_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("chat_conversation.id", ondelete="CASCADE"), nullable=False, index=True)
    uploaded_by: Mapped[SenderType] = mapped_column(
        Enum(SenderType, name="sender_type", native_enum=False, length=10), nullable=False)
    uploader_user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    storage_name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class LeaveMessageStatus(enum.Enum):
    new = "new"
    assigned = "assigned"
    replied = "replied"
    closed = "closed"


class LeaveMessage(Audited, Timestamps, Model):
    """留言: what a visitor left when nobody was online or outside business hours."""

    __tablename__ = "chat_leave_message"
    # What the visitor wrote stays out of the audit log, so that retention can erase it for good.
    __audit_secret__ = ("name", "phone", "email", "text", "reply_text")
    __table_args__ = (
        CheckConstraint("phone IS NOT NULL OR email IS NOT NULL", name="ck_leave_message_contact"),
        Index("ix_leave_message_status", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("chat_site.id", ondelete="CASCADE"), nullable=False)
    visitor_id: Mapped[int | None] = mapped_column(ForeignKey("chat_visitor.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(254))
    text: Mapped[str] = mapped_column(Text, nullable=False)
    page_url: Mapped[str | None] = mapped_column(String(2000))
    client_msg_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # idempotent resend
    status: Mapped[LeaveMessageStatus] = mapped_column(
        Enum(LeaveMessageStatus, name="leave_message_status", native_enum=False, length=10), nullable=False,
        default=LeaveMessageStatus.new)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    reply_text: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[datetime | None] = mapped_column(DateTime)
    replied_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))

    site: Mapped[ChatSite] = relationship(ChatSite)
    visitor: Mapped[Visitor | None] = relationship(Visitor)
    assigned_to: Mapped[User | None] = relationship(User, foreign_keys=[assigned_to_id])
    replied_by: Mapped[User | None] = relationship(User, foreign_keys=[replied_by_id])


class TeamMessage(Model):
    """群组沟通: a message in the agents' team room (agents and managers only)."""

    __tablename__ = "chat_team_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    sender_name: Mapped[str] = mapped_column(String(100), nullable=False)
    client_msg_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
