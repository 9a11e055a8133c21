"""Default grants for the agent console."""

from __future__ import annotations

GRANTS: dict[str, list[tuple[str, str]]] = {}
