"""Socket.IO namespaces. The live chat (``/visitor``, ``/agent``) is registered here."""

from __future__ import annotations

from flask_socketio import SocketIO


def register_namespaces(socketio: SocketIO) -> None:
    """Attach the namespaces; idempotent so that several app instances can share ``socketio``."""
    # The chat namespaces arrive with the live-chat feature; the server already serves
    # Socket.IO so that run.py, the message queue and the health check are in place.
    return None
