"""Default grants for the ledger screens."""

from __future__ import annotations

GRANTS: dict[str, list[tuple[str, str]]] = {"Manager": [], "Accountant": [], "Reviewer": [], "Agent": []}
