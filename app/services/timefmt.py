"""Times are stored in UTC and shown in ``TZ_DISPLAY`` (Asia/Shanghai by default)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context


def to_display(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    zone = ZoneInfo(current_app.config.get("TZ_DISPLAY", "Asia/Shanghai")) if has_app_context() \
        else ZoneInfo("Asia/Shanghai")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).strftime(fmt)


def utc_iso(value: datetime | None) -> str | None:
    """A UTC datetime as the JSON and socket payloads carry it: ISO 8601 with ``Z`` (None stays None)."""
    return value.isoformat() + "Z" if value is not None else None
