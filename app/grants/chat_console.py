"""Default grants for the agent console: Agent and Manager open it (it also needs the chat
permission ``can_chat`` on ``LiveChat``, which both roles hold)."""

from __future__ import annotations

CONSOLE = [("can_list", "AgentConsoleView")]

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": list(CONSOLE),
    "Agent": list(CONSOLE),
}
