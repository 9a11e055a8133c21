"""Default grants for canned replies, invitation rules, chat files."""

from __future__ import annotations

GRANTS: dict[str, list[tuple[str, str]]] = {}
