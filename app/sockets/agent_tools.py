"""``/agent`` events for an agent's tools: proactive invitations of browsing visitors. Mixed into
``AgentNamespace``."""

from __future__ import annotations


class ToolEvents:
    """Handlers ``on_<event>`` for the agent's tools (see docs/socket-protocol.md)."""
