"""Tax rates (税率) as effective-dated data an Admin edits; nothing here is a constant rate.

A rate row's key is (tax, taxpayer type or any, location class or any, item, period or any). Rules:

* ``rates_in_force(session, on_date, ...)`` returns the rows whose ``effective_from <= on_date``
  and whose ``effective_to`` is empty or ``>= on_date`` (both ends inclusive). A computation for
  a period asks for the period's last day. A row for "any" taxpayer type or location class
  applies to every type or class asked for.
* ``check_rate`` (called before every save, from the screen and the API): rate and reduction are
  percentages from 0 to 100, the threshold is not negative, ``effective_to`` is not before
  ``effective_from``, the item and the legal basis are not empty, and no other row of the same key
  is in force on any day of this row's span. Each failure is a ``ValidationFailed`` naming the
  field; nothing is written.
"""

from __future__ import annotations

import zlib
from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from app.models.crm import TaxpayerType
from app.models.tax import LocationClass, TaxKind, TaxRate
from app.services.errors import ValidationFailed

HUNDRED = Decimal(100)


def rates_in_force(session: Session, on_date: date, tax: TaxKind | None = None,
                   taxpayer_type: TaxpayerType | None = None,
                   location_class: LocationClass | None = None) -> list[TaxRate]:
    """The rate rows in force on *on_date* (inclusive ends), optionally of one tax and applying to
    one taxpayer type and one location class (rows for "any" included), ordered by tax and item."""
    query = select(TaxRate).where(TaxRate.effective_from <= on_date,
                                  or_(TaxRate.effective_to.is_(None), TaxRate.effective_to >= on_date))
    if tax is not None:
        query = query.where(TaxRate.tax == tax)
    if taxpayer_type is not None:
        query = query.where(or_(TaxRate.taxpayer_type.is_(None), TaxRate.taxpayer_type == taxpayer_type))
    if location_class is not None:
        query = query.where(or_(TaxRate.location_class.is_(None), TaxRate.location_class == location_class))
    return list(session.scalars(query.order_by(TaxRate.tax, TaxRate.item, TaxRate.period, TaxRate.id)))


def _same_key(column, value):  # noqa: ANN001, ANN202
    return column.is_(None) if value is None else column == value


def _lock_key(session: Session, rate: TaxRate) -> None:
    # Two saves of the same key could each see no overlap; on PostgreSQL they queue on one lock.
    if session.get_bind().dialect.name == "postgresql":
        key = f"tax_rate:{rate.tax}:{rate.taxpayer_type}:{rate.location_class}:{rate.item}:{rate.period}"
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(key.encode())})


def overlapping(session: Session, rate: TaxRate) -> list[TaxRate]:
    """Other rows of *rate*'s key whose span shares at least one day with *rate*'s."""
    query = select(TaxRate).where(
        TaxRate.tax == rate.tax,
        _same_key(TaxRate.taxpayer_type, rate.taxpayer_type),
        _same_key(TaxRate.location_class, rate.location_class),
        TaxRate.item == rate.item,
        _same_key(TaxRate.period, rate.period),
        or_(TaxRate.effective_to.is_(None), TaxRate.effective_to >= rate.effective_from),
    )
    if rate.effective_to is not None:
        query = query.where(TaxRate.effective_from <= rate.effective_to)
    if rate.id is not None:
        query = query.where(TaxRate.id != rate.id)
    with session.no_autoflush:
        rows = list(session.scalars(query.order_by(TaxRate.effective_from)))
    # A row edited but not yet flushed is judged by its new dates, not the stored ones.
    return [r for r in rows if (r.effective_to is None or r.effective_to >= rate.effective_from)
            and (rate.effective_to is None or r.effective_from <= rate.effective_to)]


def _percent_error(value: Decimal | None, required: bool) -> str | None:
    if value is None:
        return str(_l("This field is required.")) if required else None
    if not isinstance(value, Decimal) or not value.is_finite():
        return str(_l("Enter a percentage from 0 to 100."))
    if value < 0 or value > HUNDRED or value != value.quantize(Decimal("0.01")):
        return str(_l("Enter a percentage from 0 to 100."))
    return None


def check_rate(session: Session, rate: TaxRate) -> None:
    """Validate *rate* before it is saved (rules in the module docstring).

    Raises ``ValidationFailed`` with ``{field: [message]}``; an overlap names the overlapping row's
    dates under ``effective_from``."""
    errors: dict[str, list[str]] = {}
    rate.item = (rate.item or "").strip()
    rate.basis = (rate.basis or "").strip()
    if rate.tax is None:
        errors["tax"] = [str(_l("This field is required."))]
    if not rate.item:
        errors["item"] = [str(_l("This field is required."))]
    if not rate.basis:
        errors["basis"] = [str(_l("State the legal basis of the rate."))]
    for field, required in (("rate", True), ("reduction", False)):
        error = _percent_error(getattr(rate, field), required)
        if error:
            errors[field] = [error]
    if rate.threshold is not None and (not isinstance(rate.threshold, Decimal) or rate.threshold < 0):
        errors["threshold"] = [str(_l("The threshold must not be negative."))]
    if rate.effective_from is None:
        errors["effective_from"] = [str(_l("This field is required."))]
    elif rate.effective_to is not None and rate.effective_to < rate.effective_from:
        errors["effective_to"] = [str(_l("The end date must not be before the start date."))]
    if errors:
        raise ValidationFailed(errors)
    _lock_key(session, rate)
    clash = overlapping(session, rate)
    if clash:
        other = clash[0]
        raise ValidationFailed({"effective_from": [str(_l(
            "Another rate of the same tax, taxpayer type, location, item and period is in force "
            "from %(start)s to %(end)s; end it before this one starts.",
            start=other.effective_from.isoformat(),
            end=other.effective_to.isoformat() if other.effective_to else str(_l("open-ended"))))]})
