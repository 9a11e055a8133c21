"""Tax data: rates as effective-dated rows (税率) and each client's tax profile (税务档案).

A rate row is keyed by (tax, taxpayer type or any, location class or any, item, period or any);
rows of one key must not overlap in time (app/services/tax_rates.py refuses it). Rates and
reductions are percentages with two places (``Decimal("3.00")`` is 3 %), thresholds are yuan.
"""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal

from flask_appbuilder import Model
from sqlalchemy import Boolean, Date, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Audited, Timestamps
from app.models.crm import Client, TaxpayerType
from app.models.types import Money


class TaxKind(enum.Enum):
    """The taxes a client may file."""

    vat = "vat"  # 增值税
    urban_maintenance = "urban_maintenance"  # 城市维护建设税
    education = "education"  # 教育费附加
    local_education = "local_education"  # 地方教育附加
    corporate_income = "corporate_income"  # 企业所得税
    individual_income = "individual_income"  # 个人所得税（代扣代缴）
    stamp = "stamp"  # 印花税


class LocationClass(enum.Enum):
    """Where the taxpayer is (城市维护建设税 rate by location)."""

    urban = "urban"  # 市区
    county_town = "county_town"  # 县城、镇
    other = "other"  # 其他地区


class FilingPeriod(enum.Enum):
    """纳税期限."""

    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=30)


class TaxRate(Audited, Timestamps, Model):
    """One rate (or threshold, or reduction) of one tax, in force from ``effective_from`` to
    ``effective_to`` (inclusive; open-ended when empty)."""

    __tablename__ = "tax_rate"

    id: Mapped[int] = mapped_column(primary_key=True)
    tax: Mapped[TaxKind] = mapped_column(_enum(TaxKind, "tax_kind"), nullable=False, index=True)
    taxpayer_type: Mapped[TaxpayerType | None] = mapped_column(
        Enum(TaxpayerType, name="taxpayer_type", native_enum=False, length=20))
    location_class: Mapped[LocationClass | None] = mapped_column(_enum(LocationClass, "location_class"))
    # What the row is for within its tax: "statutory", "reduced", "exemption", "reduction", "goods" ...
    item: Mapped[str] = mapped_column(String(40), nullable=False, default="statutory")
    period: Mapped[FilingPeriod | None] = mapped_column(_enum(FilingPeriod, "filing_period"))
    rate: Mapped[Decimal] = mapped_column(Money, nullable=False)
    threshold: Mapped[Decimal | None] = mapped_column(Money)
    reduction: Mapped[Decimal | None] = mapped_column(Money)
    input_credit: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    effective_from: Mapped[date] = mapped_column(Date, nullable=False)
    effective_to: Mapped[date | None] = mapped_column(Date)
    basis: Mapped[str] = mapped_column(Text, nullable=False)

    def __repr__(self) -> str:
        return f"{self.tax.value} {self.item} {self.rate}%"


class ClientTaxProfile(Audited, Timestamps, Model):
    """A client's tax profile: VAT period and location class (the taxpayer type is the client's)."""

    __tablename__ = "client_tax_profile"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False, unique=True)
    vat_period: Mapped[FilingPeriod] = mapped_column(
        _enum(FilingPeriod, "filing_period"), nullable=False, default=FilingPeriod.monthly)
    location_class: Mapped[LocationClass] = mapped_column(
        _enum(LocationClass, "location_class"), nullable=False, default=LocationClass.urban)

    client: Mapped[Client] = relationship(Client)

    def __repr__(self) -> str:
        return f"{self.client}"


class ClientTaxFiling(Audited, Model):
    """A tax the client files, and how often (one row per client and tax)."""

    __tablename__ = "client_tax_filing"
    __table_args__ = (UniqueConstraint("client_id", "tax", name="uq_client_tax_filing"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False, index=True)
    tax: Mapped[TaxKind] = mapped_column(_enum(TaxKind, "tax_kind"), nullable=False)
    period: Mapped[FilingPeriod] = mapped_column(_enum(FilingPeriod, "filing_period"), nullable=False)

    client: Mapped[Client] = relationship(Client)

    def __repr__(self) -> str:
        return f"{self.tax.value} {self.period.value}"


class TaxAccrual(Audited, Timestamps, Model):
    """The worksheet an accrual voucher (计提税金) was made from: client, tax period, the voucher,
    and the worksheet itself as JSON (amounts, the rate rows' ids and legal basis).

    While its voucher exists it is the period's accrual: one per client and period (a partial
    unique index). Deleting the voucher (a draft) leaves the record with no voucher, and a new
    accrual may then be made."""

    __tablename__ = "tax_accrual"
    __table_args__ = (
        Index("uq_tax_accrual_period", "client_id", "period", unique=True,
              sqlite_where=text("voucher_id IS NOT NULL"), postgresql_where=text("voucher_id IS NOT NULL")),
    )
    __audit_ignore__ = ("created_at", "updated_at", "worksheet")

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="RESTRICT"), nullable=False, index=True)
    period: Mapped[str] = mapped_column(String(7), nullable=False)  # 2026-03 or 2026-Q1
    period_end: Mapped[date] = mapped_column(Date, nullable=False)
    voucher_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_voucher.id", ondelete="SET NULL"))
    total: Mapped[Decimal] = mapped_column(Money, nullable=False)
    worksheet: Mapped[str] = mapped_column(Text, nullable=False)  # JSON, as the worksheet API answers
    made_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))

    def __repr__(self) -> str:
        return f"{self.client_id} {self.period}"
