"""The filing calendar (申报纳税期限) and the filing records (申报记录).

``TaxDeadline`` holds the official deadline of each month's filings, one row per year and month,
as the State Taxation Administration publishes them; a month without a row has a computed
estimate (app/services/tax_calendar.py), which is never stored.

``TaxFiling`` is one client's filing of one tax for one period (``2026-03``, ``2026-Q1``, ``2026``):
pending → filed → paid, with who and when, the amounts, 零申报 and the evidence in the archives.
It is distinct from ``ClientTaxFiling`` (app/models/tax.py), which says which taxes a client files.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Boolean, Date, DateTime, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Audited, Timestamps
from app.models.crm import Client
from app.models.documents import Document
from app.models.tax import FilingPeriod, TaxKind
from app.models.types import Money


class TaxDeadline(Audited, Timestamps, Model):
    """The official last day of the filings of one month (申报纳税期限), with its source."""

    __tablename__ = "tax_deadline"
    __table_args__ = (UniqueConstraint("year", "month", name="uq_tax_deadline_month"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    month: Mapped[int] = mapped_column(Integer, nullable=False)
    due: Mapped[date] = mapped_column(Date, nullable=False)
    source_note: Mapped[str] = mapped_column(String(200), nullable=False)

    def __repr__(self) -> str:
        return f"{self.year:04d}-{self.month:02d} {self.due.isoformat()}"


class FilingStatus(enum.Enum):
    pending = "pending"  # 待申报
    filed = "filed"  # 已申报
    paid = "paid"  # 已缴款


class TaxFiling(Audited, Timestamps, Model):
    """One filing of one tax, for one client and period."""

    __tablename__ = "tax_filing"
    __table_args__ = (UniqueConstraint("client_id", "tax", "period", name="uq_tax_filing"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="RESTRICT"), nullable=False, index=True)
    tax: Mapped[TaxKind] = mapped_column(Enum(TaxKind, name="tax_kind", native_enum=False, length=30),
                                         nullable=False)
    period_kind: Mapped[FilingPeriod] = mapped_column(
        Enum(FilingPeriod, name="filing_period", native_enum=False, length=30), nullable=False)
    period: Mapped[str] = mapped_column(String(7), nullable=False)  # 2026-03, 2026-Q1 or 2026
    due: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    status: Mapped[FilingStatus] = mapped_column(
        Enum(FilingStatus, name="filing_status", native_enum=False, length=20), nullable=False,
        default=FilingStatus.pending, index=True)
    zero_return: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    tax_amount: Mapped[Decimal | None] = mapped_column(Money)
    paid_amount: Mapped[Decimal | None] = mapped_column(Money)
    filed_at: Mapped[datetime | None] = mapped_column(DateTime)
    filed_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    return_document_id: Mapped[int | None] = mapped_column(ForeignKey("document.id", ondelete="SET NULL"))
    receipt_document_id: Mapped[int | None] = mapped_column(ForeignKey("document.id", ondelete="SET NULL"))
    reopen_reason: Mapped[str | None] = mapped_column(Text)

    client: Mapped[Client] = relationship(Client)
    filed_by: Mapped[User | None] = relationship(User, foreign_keys=[filed_by_id])
    paid_by: Mapped[User | None] = relationship(User, foreign_keys=[paid_by_id])
    return_document: Mapped[Document | None] = relationship(Document, foreign_keys=[return_document_id])
    receipt_document: Mapped[Document | None] = relationship(Document, foreign_keys=[receipt_document_id])

    def __repr__(self) -> str:
        return f"{self.client} {self.tax.value} {self.period}"
