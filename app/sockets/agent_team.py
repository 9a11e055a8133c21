"""``/agent`` events for working together: transfer, inviting a second agent, the team room,
a supervisor's watch and whisper. Mixed into ``AgentNamespace``."""

from __future__ import annotations


class TeamEvents:
    """Handlers ``on_<event>`` for the team events (see docs/socket-protocol.md)."""
