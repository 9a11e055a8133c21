"""Helpers for tests that drive the Socket.IO namespaces through Flask-SocketIO's test client."""

from __future__ import annotations

import time

import pytest
from flask_socketio.test_client import SocketIOTestClient


@pytest.fixture(scope="module", autouse=True)
def _without_message_queue(app):
    """Flask-SocketIO's test client cannot work through a message queue: these tests use the
    server in-process (the queue is exercised with a real server process elsewhere)."""
    from app import _init_socketio

    queue = app.config.get("SOCKETIO_MESSAGE_QUEUE")
    if queue:
        app.config["SOCKETIO_MESSAGE_QUEUE"] = None
        _init_socketio(app)
    yield
    if queue:
        app.config["SOCKETIO_MESSAGE_QUEUE"] = queue
        _init_socketio(app)


@pytest.fixture(autouse=True)
def _fanout_settled(_fresh_database):
    """Work deferred after an ack (routing a new chat) and held updates finish before the
    database is reset for the next test, so that none of it writes into the next test."""
    from app.sockets.fanout import fanout

    yield
    assert fanout.idle(10), "deferred chat work still running 10 s after the test"


class FreshSocketClient(SocketIOTestClient):
    """Each socket event runs in its own application context, as on a server (pytest-flask keeps
    one pushed for the whole test; sharing its ``g`` would leak the signed-in user between calls)."""

    def connect(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        with self.app.app_context():
            return super().connect(*args, **kwargs)

    def emit(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        with self.app.app_context():
            return super().emit(*args, **kwargs)

    def disconnect(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        with self.app.app_context():
            return super().disconnect(*args, **kwargs)


def received(client: SocketIOTestClient, name: str, namespace: str, wait: float) -> list:
    """The payloads of the *name* events received so far, waiting up to *wait* seconds for one."""
    deadline = time.monotonic() + wait
    seen: list = []
    while True:
        seen.extend(client.get_received(namespace))
        # (the test client keeps a "message" event's payload as is, other events' as a list)
        found = [e["args"] if name == "message" else e["args"][0] for e in seen if e["name"] == name]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)
