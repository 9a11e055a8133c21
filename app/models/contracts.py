"""Contracts (合同), their change history, fee bills and payments received."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Audited, Timestamps, utcnow
from app.models.crm import Client
from app.models.types import Money


class ServiceType(enum.Enum):
    bookkeeping = "bookkeeping"  # 代理记账
    tax_filing = "tax_filing"  # 纳税申报
    business_registration = "business_registration"  # 工商代办
    other = "other"


class BillingCycle(enum.Enum):
    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"

    @property
    def months(self) -> int:
        return {"monthly": 1, "quarterly": 3, "yearly": 12}[self.value]


class ContractStatus(enum.Enum):
    draft = "draft"
    active = "active"
    changed = "changed"
    terminated = "terminated"
    expired = "expired"


class Contract(Audited, Timestamps, Model):
    __tablename__ = "contract"
    __table_args__ = (
        CheckConstraint("monthly_fee >= 0", name="ck_contract_fee_nonnegative"),
        CheckConstraint("end_date >= start_date", name="ck_contract_dates"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("client.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    number: Mapped[str] = mapped_column(String(50), unique=True, nullable=False)
    service_type: Mapped[ServiceType] = mapped_column(
        Enum(ServiceType, name="service_type", native_enum=False, length=30), nullable=False
    )
    monthly_fee: Mapped[Decimal] = mapped_column(Money, nullable=False)
    billing_cycle: Mapped[BillingCycle] = mapped_column(
        Enum(BillingCycle, name="billing_cycle", native_enum=False, length=20),
        nullable=False,
        default=BillingCycle.monthly,
    )
    start_date: Mapped[date] = mapped_column(Date, nullable=False)
    end_date: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    status: Mapped[ContractStatus] = mapped_column(
        Enum(ContractStatus, name="contract_status", native_enum=False, length=20),
        nullable=False,
        default=ContractStatus.draft,
        index=True,
    )
    notes: Mapped[str | None] = mapped_column(Text)

    client: Mapped[Client] = relationship()
    changes: Mapped[list[ContractChange]] = relationship(
        back_populates="contract", order_by="ContractChange.id", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return self.number


class ContractChange(Model):
    """One entry of a contract's change history (status transitions and amendments)."""

    __tablename__ = "contract_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contract.id", ondelete="CASCADE"), nullable=False, index=True
    )
    changed_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)  # JSON: {"field": [old, new]}

    contract: Mapped[Contract] = relationship(back_populates="changes")
    changed_by: Mapped[User | None] = relationship(User)


class FeeBill(Audited, Timestamps, Model):
    """A fee billed on a contract for one billing period (应收服务费)."""

    __tablename__ = "fee_bill"
    __table_args__ = (
        UniqueConstraint("contract_id", "period_start", name="uq_fee_bill_contract_period"),
        CheckConstraint("amount >= 0", name="ck_fee_bill_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contract.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    period_end: Mapped[date] = mapped_column(Date, nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money, nullable=False)
    billed_on: Mapped[date] = mapped_column(Date, nullable=False)
    due_date: Mapped[date] = mapped_column(Date, nullable=False)
    note: Mapped[str | None] = mapped_column(String(300))

    contract: Mapped[Contract] = relationship()


class Payment(Audited, Timestamps, Model):
    """Money received from a client against a contract (收款)."""

    __tablename__ = "payment"
    __table_args__ = (CheckConstraint("amount > 0", name="ck_payment_amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contract.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    received_on: Mapped[date] = mapped_column(Date, nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money, nullable=False)
    method: Mapped[str | None] = mapped_column(String(50))
    reference: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(300))

    contract: Mapped[Contract] = relationship()
