"""The chat knowledge base (机器人知识库): questions and answers the bot gives and agents search, the
search terms of each entry, and the questions the bot could not answer."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Audited, Timestamps, utcnow
from app.models.chat import ChatSite


class FaqEntry(Audited, Timestamps, Model):
    """A question with its answer, for one site or (blank site) every site."""

    __tablename__ = "chat_faq"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("chat_site.id", ondelete="CASCADE"), index=True)
    category: Mapped[str | None] = mapped_column(String(50))
    question: Mapped[str] = mapped_column(String(200), nullable=False)
    answer: Mapped[str] = mapped_column(Text, nullable=False)
    keywords: Mapped[str | None] = mapped_column(String(200))  # separated by blanks or commas
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    site: Mapped[ChatSite | None] = relationship(ChatSite)
    terms: Mapped[list[FaqTerm]] = relationship(back_populates="entry", cascade="all, delete-orphan",
                                                passive_deletes=True)

    def __repr__(self) -> str:
        return self.question


class FaqTerm(Model):
    """One search term of an entry (a Chinese character pair or a whole latin word) with its weight:
    kept by ``app.services.chat_faq`` whenever the entry is saved."""

    __tablename__ = "chat_faq_term"
    __table_args__ = (Index("ix_faq_term_term", "term", "faq_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    faq_id: Mapped[int] = mapped_column(ForeignKey("chat_faq.id", ondelete="CASCADE"), nullable=False, index=True)
    term: Mapped[str] = mapped_column(String(40), nullable=False)
    weight: Mapped[int] = mapped_column(Integer, nullable=False)

    entry: Mapped[FaqEntry] = relationship(back_populates="terms")


class FaqUnanswered(Model):
    """A visitor's question the bot found no good answer for."""

    __tablename__ = "chat_faq_unanswered"
    __table_args__ = (Index("ix_faq_unanswered_question", "question_key", "site_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("chat_site.id", ondelete="CASCADE"), nullable=False)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("chat_conversation.id", ondelete="SET NULL"))
    question: Mapped[str] = mapped_column(String(500), nullable=False)
    question_key: Mapped[str] = mapped_column(String(500), nullable=False)  # lower case, blanks squeezed
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    site: Mapped[ChatSite] = relationship(ChatSite)
