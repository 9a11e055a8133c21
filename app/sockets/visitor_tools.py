"""``/visitor`` events for invitations. Mixed into ``VisitorNamespace``."""

from __future__ import annotations


class VisitorToolEvents:
    """Handlers ``on_<event>`` (see docs/socket-protocol.md)."""
