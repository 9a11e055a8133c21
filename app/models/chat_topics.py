"""Conversation topics (对话主题) and quick links (常用链接): what a chat was about, set by its
agents and searched in the history, and the addresses agents put into their replies.

The lists are kept by managers; a conversation holds any number of topics (``chat_conversation_topic``).
"""

from __future__ import annotations

from flask_appbuilder import Model
from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Audited, Timestamps
from app.models.chat import ChatSite


class ChatTopic(Audited, Timestamps, Model):
    """A topic a conversation can be filed under, e.g. 代理记账咨询, 报税问题, 投诉."""

    __tablename__ = "chat_topic"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), nullable=False, unique=True)
    description: Mapped[str | None] = mapped_column(String(200))
    sort_order: Mapped[int] = mapped_column(Integer, nullable=False, default=100)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    def __repr__(self) -> str:
        return self.name


# A topic in use is not deleted (RESTRICT): it is deactivated, so the history keeps its topics.
conversation_topic = Table(
    "chat_conversation_topic",
    Model.metadata,
    Column("conversation_id", ForeignKey("chat_conversation.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", ForeignKey("chat_topic.id", ondelete="RESTRICT"), primary_key=True),
    Index("ix_conversation_topic_topic", "topic_id", "conversation_id"),
)


class QuickLink(Audited, Timestamps, Model):
    """常用链接: a titled http(s) address that agents insert into a reply, for one site or (blank
    site) every site."""

    __tablename__ = "chat_quick_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("chat_site.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(100), nullable=False)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    sort_order: Mapped[int] = mapped_column(Integer, nullable=False, default=100)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    site: Mapped[ChatSite | None] = relationship(ChatSite)

    def __repr__(self) -> str:
        return self.title
