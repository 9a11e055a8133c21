"""Small accounting helpers shared by the ledger services: periods (YYYYMM) and amounts."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l

from app.services.errors import ValidationFailed

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
_PERIOD = re.compile(r"^(\d{4})-?(\d{2})$")


def parse_period(value: object, field: str = "period") -> int:
    """``"2026-03"`` (or ``"202603"`` or the int 202603) → 202603.

    Raises ``ValidationFailed`` naming *field* for anything else (month 13, "2026-3", None ...).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    match = _PERIOD.match(str(value).strip()) if isinstance(value, str) else None
    if not match or not 1 <= int(match.group(2)) <= 12 or not 1900 <= int(match.group(1)) <= 9999:
        raise ValidationFailed({field: [str(_l("A period is written YYYY-MM, for example 2026-03."))]})
    return int(match.group(1)) * 100 + int(match.group(2))


def period_label(period: int) -> str:
    """202603 → ``"2026-03"``."""
    return f"{period // 100:04d}-{period % 100:02d}"


def period_of(day: date) -> int:
    return day.year * 100 + day.month


def next_period(period: int) -> int:
    year, month = divmod(period, 100)
    return (year + 1) * 100 + 1 if month == 12 else period + 1


def previous_period(period: int) -> int:
    year, month = divmod(period, 100)
    return (year - 1) * 100 + 12 if month == 1 else period - 1


def year_start(period: int) -> int:
    return (period // 100) * 100 + 1


def parse_amount(value: object, field: str, allow_negative: bool = False) -> Decimal:
    """A line amount: a string (or Decimal or int) with at most two decimals; blank is zero.

    Floats are refused (money is never binary floating point). Raises ``ValidationFailed``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return ZERO
    if isinstance(value, float) or isinstance(value, bool):
        raise ValidationFailed({field: [str(_l("Amounts must be given as strings, not numbers."))]})
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        raise ValidationFailed({field: [str(_l("Not a valid amount."))]}) from None
    if not amount.is_finite():
        raise ValidationFailed({field: [str(_l("Not a valid amount."))]})
    if amount.as_tuple().exponent < -2:
        raise ValidationFailed({field: [str(_l("At most two decimal places."))]})
    if amount < 0 and not allow_negative:
        raise ValidationFailed({field: [str(_l("The amount cannot be negative."))]})
    if abs(amount) >= Decimal("1e16"):
        raise ValidationFailed({field: [str(_l("The amount is too large."))]})
    return amount.quantize(CENT)


def money(value: Decimal | None) -> str:
    """A Decimal as the API writes it: ``"1234.50"``."""
    return str((value or ZERO).quantize(CENT))


def last_day_of(period: int) -> date:
    import calendar

    year, month = divmod(period, 100)
    return date(year, month, calendar.monthrange(year, month)[1])
