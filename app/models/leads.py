"""Leads (线索): prospective clients, most of them met in the live chat.

A lead is what Odoo's CRM calls one: a person (and perhaps their company) who may become a client.
It goes new → contacted → converted (it became a client: ``client_id``) or lost (with a reason); a
lost lead may be reopened. It remembers where it came from: the chat visitor, the conversation,
the site and the page. One lead per chat visitor (``uq_lead_visitor``).
"""

from __future__ import annotations

import enum

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Audited, Timestamps
from app.models.chat import ChatSite, Conversation, Visitor
from app.models.crm import Client


class LeadStatus(enum.Enum):
    new = "new"  # 新线索
    contacted = "contacted"  # 已联系
    converted = "converted"  # 已转为客户
    lost = "lost"  # 已流失


class Lead(Audited, Timestamps, Model):
    """线索: a prospective client, with where they came from and what became of them."""

    __tablename__ = "crm_lead"
    __table_args__ = (UniqueConstraint("visitor_id", name="uq_lead_visitor"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)  # the person
    company: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(254))
    question: Mapped[str | None] = mapped_column(Text)  # what they asked
    status: Mapped[LeadStatus] = mapped_column(
        Enum(LeadStatus, name="lead_status", native_enum=False, length=20), nullable=False,
        default=LeadStatus.new, index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("chat_site.id", ondelete="SET NULL"))
    source_url: Mapped[str | None] = mapped_column(String(2000))  # the page the chat started on
    visitor_id: Mapped[int | None] = mapped_column(ForeignKey("chat_visitor.id", ondelete="SET NULL"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("chat_conversation.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id", ondelete="SET NULL"), index=True)
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    notes: Mapped[str | None] = mapped_column(Text)

    site: Mapped[ChatSite | None] = relationship(ChatSite)
    visitor: Mapped[Visitor | None] = relationship(Visitor)
    conversation: Mapped[Conversation | None] = relationship(Conversation)
    owner: Mapped[User | None] = relationship(User)
    client: Mapped[Client | None] = relationship(Client)

    def __repr__(self) -> str:
        return f"{self.name} ({self.company})" if self.company else self.name
