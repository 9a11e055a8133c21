"""Socket.IO namespaces: ``/visitor`` (the widget) and ``/agent`` (the agent console)."""

from __future__ import annotations

from collections.abc import Iterable

from flask_socketio import SocketIO


def register_namespaces(socketio: SocketIO) -> None:
    """Attach the namespaces to the current Socket.IO server (``init_app`` makes a new server each
    time, so this runs after every ``init_app``); a server that has them already is left alone."""
    from app.sockets.agent import AgentNamespace
    from app.sockets.visitor import VisitorNamespace

    present = socketio.server.namespace_handlers if socketio.server is not None else {}
    for path, namespace in (("/visitor", VisitorNamespace), ("/agent", AgentNamespace)):
        if path not in present:
            socketio.on_namespace(namespace(path))


def deliver(emits: Iterable) -> None:
    """Send the events a service returned (``app.services.routing.Emit``: event, payload, room,
    namespace), in order; state updates (queue, presence, visitor list) are coalesced per tick
    (``app.sockets.fanout``). Works in a handler, a view or the background sweep alike."""
    from app.sockets.fanout import fanout

    fanout.send(emits)
