"""Small accounting helpers shared by the ledger services: periods (YYYYMM) and amounts.

Amounts are bounded by their column, ``NUMERIC(18, 2)``: at most 16 digits before the decimal
point (9,999,999,999,999,999.99). ``parse_amount`` refuses a bigger amount and ``check_total`` a
bigger derived total (a voucher's total, a bill, a carry-forward line) before anything is written.
``exact_sums`` turns a sum that SQLite cannot hold in 64 bits into a clear refusal.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import ParamSpec, TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, scoped_session

from app.models.types import CENT, MONEY_LIMIT, is_sum_overflow
from app.services.errors import ValidationFailed

ZERO = Decimal("0.00")
LARGEST_AMOUNT = MONEY_LIMIT - CENT  # 9,999,999,999,999,999.99
P = ParamSpec("P")
R = TypeVar("R")
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
    if abs(amount) >= MONEY_LIMIT:
        raise ValidationFailed({field: [str(_l("The amount is too large."))]})
    return amount.quantize(CENT)


def check_total(total: Decimal, field: str) -> Decimal:
    """Return *total* (a sum that will be stored: a voucher's total, a fee bill, a carry-forward
    line) if it fits an amount column; else raise ``ValidationFailed`` naming *field*."""
    if abs(total) >= MONEY_LIMIT:
        raise ValidationFailed({field: [str(_l(
            "The total %(total)s is too large: an amount has at most 16 digits before the decimal point "
            "(largest %(largest)s).", total=f"{total:,}", largest=f"{LARGEST_AMOUNT:,}"))]})
    return total


def exact_sums(work: Callable[P, R]) -> Callable[P, R]:
    """Decorate a service whose first argument is the session: a sum of amounts that SQLite cannot
    hold exactly (beyond 92,233,720,368,547,758.07, which it refuses as "integer overflow" rather than
    round) rolls the session back and raises ``ValidationFailed`` instead of a server error.
    PostgreSQL sums ``NUMERIC`` exactly at any size."""
    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return work(*args, **kwargs)
        except OperationalError as exc:
            if not is_sum_overflow(exc):
                raise
            session = args[0] if args else None
            if isinstance(session, Session | scoped_session):
                session.rollback()
            raise ValidationFailed({"_": [str(_l(
                "These amounts add up to more than this database can sum exactly; "
                "the report or total cannot be computed."))]}) from None
    return run


def money(value: Decimal | None) -> str:
    """A Decimal as the API writes it: ``"1234.50"``."""
    return str((value or ZERO).quantize(CENT))


def last_day_of(period: int) -> date:
    import calendar

    year, month = divmod(period, 100)
    return date(year, month, calendar.monthrange(year, month)[1])
