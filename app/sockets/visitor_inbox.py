"""``/visitor`` events for leaving a message and asking for a transcript. Mixed into
``VisitorNamespace``."""

from __future__ import annotations


class VisitorInboxEvents:
    """Handlers ``on_<event>`` (see docs/socket-protocol.md)."""
