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


class SenderType(enum.Enum):
    visitor = "visitor"
    agent = "agent"
    system = "system"
    note = "note"  # internal note: agents only
    whisper = "whisper"  # supervisor to agent: never shown to the visitor


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
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

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
    __audit_ignore__ = ("created_at", "updated_at", "status", "last_seen_at", "last_assigned_at")

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

    user: Mapped[User] = relationship(User)
    groups: Mapped[list[AgentGroup]] = relationship(secondary=agent_group_member, back_populates="agents")

    def __repr__(self) -> str:
        return self.display_name


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

    site: Mapped[ChatSite] = relationship(ChatSite)
    contact: Mapped[ClientContact | None] = relationship(ClientContact)


class PageView(Model):
    """访问轨迹: one page a visitor opened, with where they came from and how long they stayed."""

    __tablename__ = "chat_page_view"
    __table_args__ = (Index("ix_page_view_visitor_started", "visitor_id", "started_at"),)

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

    site: Mapped[ChatSite] = relationship(ChatSite)
    visitor: Mapped[Visitor] = relationship(Visitor)
    group: Mapped[AgentGroup | None] = relationship(AgentGroup)
    agent: Mapped[AgentProfile | None] = relationship(AgentProfile)


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
