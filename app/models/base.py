"""Shared model helpers: timestamps and the audit marker."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.orm import Mapped, mapped_column


def utcnow() -> datetime:
    """Naive UTC now; the database stores UTC and the UI converts to ``TZ_DISPLAY``."""
    return datetime.now(UTC).replace(tzinfo=None)


class Timestamps:
    """``created_at`` / ``updated_at`` in UTC."""

    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class Audited:
    """Marker: every insert, update and delete of this model writes an audit row.

    ``__audit_secret__`` lists columns whose values are never copied into the audit log
    (only the fact that they changed).
    """

    __audit_secret__: tuple[str, ...] = ()
    __audit_ignore__: tuple[str, ...] = ("created_at", "updated_at")
