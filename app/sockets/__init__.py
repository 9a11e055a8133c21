"""Socket.IO namespaces: ``/visitor`` (the widget) and ``/agent`` (the agent console)."""

from __future__ import annotations

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
