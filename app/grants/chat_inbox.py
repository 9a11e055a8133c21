"""Default grants for chat history and left messages."""

from __future__ import annotations

GRANTS: dict[str, list[tuple[str, str]]] = {}
