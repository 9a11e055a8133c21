"""Default grants for the ledger reports."""

from __future__ import annotations

GRANTS: dict[str, list[tuple[str, str]]] = {"Manager": [], "Accountant": [], "Reviewer": [], "Agent": []}
