"""Clients (客户) and what hangs off them: contacts, bank accounts, tags, service records."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Audited, Timestamps, utcnow
from app.models.types import EncryptedText


class TaxpayerType(enum.Enum):
    """纳税人类型."""

    small_scale = "small_scale"  # 小规模纳税人
    general = "general"  # 一般纳税人


class ClientStatus(enum.Enum):
    active = "active"
    suspended = "suspended"
    ended = "ended"


client_tag = Table(
    "client_tag",
    Model.metadata,
    Column("client_id", Integer, ForeignKey("client.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", Integer, ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True),
)


class Tag(Audited, Model):
    __tablename__ = "tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True, nullable=False)

    def __repr__(self) -> str:
        return self.name


class Client(Audited, Timestamps, Model):
    """A client company whose books the agency keeps."""

    __tablename__ = "client"
    __audit_secret__ = ("legal_rep_id_number",)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True, nullable=False)
    taxpayer_type: Mapped[TaxpayerType] = mapped_column(
        Enum(TaxpayerType, name="taxpayer_type", native_enum=False, length=20),
        nullable=False,
        default=TaxpayerType.small_scale,
    )
    legal_rep_name: Mapped[str | None] = mapped_column(String(100))
    legal_rep_id_number: Mapped[str | None] = mapped_column(EncryptedText)
    registered_address: Mapped[str | None] = mapped_column(String(300))
    office_address: Mapped[str | None] = mapped_column(String(300))
    business_scope: Mapped[str | None] = mapped_column(Text)
    accountant_id: Mapped[int | None] = mapped_column(
        ForeignKey("ab_user.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[ClientStatus] = mapped_column(
        Enum(ClientStatus, name="client_status", native_enum=False, length=20),
        nullable=False,
        default=ClientStatus.active,
        index=True,
    )
    notes: Mapped[str | None] = mapped_column(Text)

    accountant: Mapped[User | None] = relationship(User, foreign_keys=[accountant_id])
    tags: Mapped[list[Tag]] = relationship(Tag, secondary=client_tag, order_by=Tag.name)
    contacts: Mapped[list[ClientContact]] = relationship(
        back_populates="client", cascade="all, delete-orphan"
    )
    bank_accounts: Mapped[list[BankAccount]] = relationship(
        back_populates="client", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return self.name


class ClientContact(Audited, Timestamps, Model):
    """联系人: who the agency talks to at the client."""

    __tablename__ = "client_contact"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    position: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(200))
    wechat: Mapped[str | None] = mapped_column(String(100))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # The contact's user id on the agency's website: a chat visitor verified with it is this contact.
    chat_user_id: Mapped[str | None] = mapped_column(String(100), index=True)

    client: Mapped[Client] = relationship(back_populates="contacts")

    def __repr__(self) -> str:
        return self.name


class BankAccount(Audited, Timestamps, Model):
    """银行账户; the account number is encrypted at rest."""

    __tablename__ = "bank_account"
    __audit_secret__ = ("account_number",)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False, index=True
    )
    bank_name: Mapped[str] = mapped_column(String(200), nullable=False)
    account_number: Mapped[str] = mapped_column(EncryptedText, nullable=False)
    is_basic: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    client: Mapped[Client] = relationship(back_populates="bank_accounts")

    def __repr__(self) -> str:
        return self.bank_name


class ServiceRecord(Audited, Timestamps, Model):
    """服务记录: what was done for a client, by whom, when, and the result."""

    __tablename__ = "service_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False, index=True
    )
    performed_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    performed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("ab_user.id", ondelete="SET NULL"), index=True
    )
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(String(300))

    client: Mapped[Client] = relationship()
    performed_by: Mapped[User | None] = relationship(User)

    def __repr__(self) -> str:
        return self.subject
