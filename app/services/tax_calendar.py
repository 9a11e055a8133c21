"""The filing calendar (申报纳税期限): the last day of each month's filings.

Deadlines are data. An official row (``TaxDeadline``) holds the date the State Taxation
Administration published for a month (2026 is seeded from 税总办征科函〔2025〕64号); an Admin enters
a year's twelve dates when its notice appears (:func:`set_official_year`). A month without an
official row gets an **estimate**, computed and never stored, by 《税收征收管理法实施细则》第一百零九条
as the administration applies it:

* the last day is the 15th of the month;
* when days 1–15 hold a run of 3 or more consecutive 放假 days (a statutory holiday with the rest
  days joined to it), the deadline moves on by that many **working** days after the 15th;
* otherwise, when the 15th is not a working day, the deadline is the next working day.

Working days, 放假 days and the 调休 working Saturdays and Sundays come from the
``chinese-calendar`` package. Read literally, art. 109 extends by calendar days (15 + 3 = the 18th,
then the next working day); that gives 2026-01-19, 2026-05-20 and 2026-10-22 where the notice says
01-20, 05-22 and 10-26, because the administration counts the extension in working days. The rule
above reproduces all twelve 2026 dates (tests/test_tax_calendar.py). For a year the package does
not know yet, holidays are unknown: the estimate skips weekends only and says so in its note.

Errors: ``ValidationFailed`` naming ``year`` or ``deadlines`` / ``deadlines.<MM>`` or ``note``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import chinese_calendar
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.tax_filing import TaxDeadline
from app.services.errors import Conflict, ValidationFailed
from app.services.inputs import ascii_digits

FIRST_YEAR, LAST_YEAR = 2000, 2100
DEADLINE_DAY = 15
LONG_HOLIDAY = 3  # consecutive 放假 days from which the deadline is extended
OFFICIAL, ESTIMATED = "official", "estimated"


@dataclass(frozen=True)
class Deadline:
    """The deadline of the filings of one month; ``source`` is ``official`` or ``estimated``."""

    year: int
    month: int
    due: date
    source: str
    note: str

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def as_json(self) -> dict:
        return {"month": self.label, "due": self.due.isoformat(), "source": self.source, "note": self.note}


def parse_year(value: object, field: str = "year") -> int:
    """A calendar year from ``"2026"`` or 2026, between 2000 and 2100. Raises ``ValidationFailed``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = value.strip() if isinstance(value, str) else ""
    if not (len(text) == 4 and ascii_digits(text)) or not FIRST_YEAR <= int(text) <= LAST_YEAR:
        raise ValidationFailed({field: [str(_l("Give a year from %(first)d to %(last)d, for example 2026.",
                                               first=FIRST_YEAR, last=LAST_YEAR))]})
    return int(text)


def holidays_known(year: int) -> bool:
    """Whether ``chinese-calendar`` knows the holidays of *year*."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def _working(day: date, known: bool) -> bool:
    if known:
        return chinese_calendar.is_workday(day)
    return day.weekday() < 5


def _long_holiday_days(year: int, month: int) -> int:
    """放假 days in days 1–15 that belong to a run of at least ``LONG_HOLIDAY`` consecutive ones."""
    days, run = 0, 0
    for day in range(1, DEADLINE_DAY + 1):
        if date(year, month, day) in chinese_calendar.holidays:
            run += 1
            continue
        days += run if run >= LONG_HOLIDAY else 0
        run = 0
    return days + (run if run >= LONG_HOLIDAY else 0)


def estimate_deadline(year: int, month: int) -> Deadline:
    """The deadline of *month* by the rule in the module docstring, marked ``estimated``."""
    known = holidays_known(year)
    day = date(year, month, DEADLINE_DAY)
    extension = _long_holiday_days(year, month) if known else 0
    if extension:
        while extension:
            day += timedelta(days=1)
            extension -= _working(day, known)
    else:
        while not _working(day, known):
            day += timedelta(days=1)
    note = str(_l("Estimated by art. 109 of the Tax Collection Rules from the statutory holidays.")) if known \
        else str(_l("Estimated from weekends only: the holidays of this year are not known yet."))
    return Deadline(year, month, day, ESTIMATED, note)


def deadline(session: Session, year: int, month: int) -> Deadline:
    """The deadline of the filings of *month*: the official date when entered, else the estimate."""
    row = session.scalar(select(TaxDeadline).where(TaxDeadline.year == year, TaxDeadline.month == month))
    if row is not None:
        return Deadline(year, month, row.due, OFFICIAL, row.source_note)
    return estimate_deadline(year, month)


def year_calendar(session: Session, year: object) -> dict:
    """``{"year", "deadlines": [{"month", "due", "source", "note"} × 12]}`` for *year* (parsed by
    :func:`parse_year`). Raises ``ValidationFailed`` naming ``year``."""
    number = parse_year(year)
    rows = {row.month: row for row in session.scalars(select(TaxDeadline).where(TaxDeadline.year == number))}
    deadlines = [Deadline(number, m, rows[m].due, OFFICIAL, rows[m].source_note) if m in rows
                 else estimate_deadline(number, m) for m in range(1, 13)]
    return {"year": number, "deadlines": [d.as_json() for d in deadlines]}


def _due_date(value: object, year: int, month: int, field: str, errors: dict[str, list[str]]) -> date | None:
    if isinstance(value, date):
        due = value
    else:
        try:
            due = date.fromisoformat(value.strip()) if isinstance(value, str) and len(value.strip()) == 10 else None
        except ValueError:
            due = None
    if due is None:
        errors[field] = [str(_l("A date is written YYYY-MM-DD, for example 2026-01-20."))]
    elif (due.year, due.month) != (year, month) or due.day < DEADLINE_DAY:
        errors[field] = [str(_l("The deadline of %(month)s is a day from the 15th to the end of that month.",
                                month=f"{year:04d}-{month:02d}"))]
        due = None
    return due


def set_official_year(session: Session, year: object, deadlines: object, note: object) -> dict:
    """Store the official deadlines of *year*: *deadlines* maps each month ``"01"``…``"12"`` (or
    ``"2026-01"``…) to its date ``YYYY-MM-DD``, all twelve; each falls from the 15th to the end of
    its month; *note* names the notice (up to 200 characters). Existing official rows of the year
    are replaced (each change is audited). Commits and returns :func:`year_calendar`. Raises
    ``ValidationFailed`` and then writes nothing; ``Conflict`` (and writes nothing) when another
    user entered the year's dates between this read and this write."""
    number = parse_year(year)
    errors: dict[str, list[str]] = {}
    text = note.strip() if isinstance(note, str) else ""
    if not text or len(text) > 200:
        errors["note"] = [str(_l("Name the notice the dates come from (up to 200 characters)."))]
    dues: dict[int, date] = {}
    if not isinstance(deadlines, dict):
        errors["deadlines"] = [str(_l("Give the twelve deadlines as an object of month and date."))]
        deadlines = {}
    for key, value in deadlines.items():
        raw = str(key).strip()
        raw = raw[5:] if raw.startswith(f"{number:04d}-") else raw
        month = int(raw) if len(raw) in (1, 2) and ascii_digits(raw) else 0
        field = f"deadlines.{key}"
        if not 1 <= month <= 12 or month in dues:
            errors[field] = [str(_l("Not a month of this year."))]
            continue
        due = _due_date(value, number, month, field, errors)
        if due is not None:
            dues[month] = due
    missing = [f"{m:02d}" for m in range(1, 13) if m not in dues]
    if missing and not any(k.startswith("deadlines") for k in errors):
        errors["deadlines"] = [str(_l("Give the deadline of every month; missing: %(months)s.",
                                      months=", ".join(missing)))]
    if errors:
        raise ValidationFailed(errors)
    rows = {row.month: row for row in session.scalars(select(TaxDeadline).where(TaxDeadline.year == number))}
    for month, due in dues.items():
        row = rows.get(month)
        if row is None:
            session.add(TaxDeadline(year=number, month=month, due=due, source_note=text))
        else:
            if row.due != due:
                row.due = due
            if row.source_note != text:
                row.source_note = text
    try:
        session.commit()
    except IntegrityError:  # two users entering the same year at once: the other's dates stand
        session.rollback()
        raise Conflict({"deadlines": [str(_l(
            "Someone else entered the deadlines of %(year)s at the same moment. "
            "Look at the dates now stored and save again if they differ.", year=number))]}) from None
    return year_calendar(session, number)
