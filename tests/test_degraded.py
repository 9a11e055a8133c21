"""Redis down: the desk degrades instead of failing.

- Sign-in works: the login limiter counts in this process's memory (and still limits), with a
  warning in the log.
- The chat's message queue delivers to this process's own clients, logs one warning for the
  outage (not one per event) and goes back to Redis when it answers again.

"Redis down" is a Redis URL on a closed port, or a port in front of the test Redis that is closed
and then opened (``Outage``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

import pytest
import redis
import socketio
from sqlalchemy.engine import make_url

from app.sockets.queue import DeskRedisManager
from app.sockets.ratelimit import VisitorRate
from tests.conftest import PASSWORD

REDIS_URL = os.environ.get("TEST_REDIS_URL")
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"
WAIT = 10.0


def _until(condition: Callable[[], object], timeout: float = WAIT) -> object:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.05)


# --- the sign-in limiter ----------------------------------------------------------------------


@pytest.fixture
def limited(second_app):
    """The application with sign-ins rate limited in a Redis that is down (same database)."""
    return second_app(AUTH_RATE_LIMITED=True, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=CLOSED_PORT_REDIS,
                      REDIS_URL=None, SOCKETIO_MESSAGE_QUEUE=None)


def test_sign_in_works_while_the_limiter_storage_is_down_and_still_limits(limited, caplog):
    client = limited.test_client()

    signed_in = client.post("/login/", data={"username": "accountant", "password": PASSWORD})
    client.get("/logout/")
    attempts = [client.post("/login/", data={"username": "accountant", "password": "wrong"}).status_code
                for _ in range(6)]

    assert signed_in.status_code == 302 and "/login" not in signed_in.headers["Location"]
    assert attempts[:5] == [302] * 5  # wrong passwords go back to the form (the sign-in did not count) ...
    assert attempts[5] == 429  # ... until the limit (5 failures per minute) counted in memory is reached
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "in-memory" in r.getMessage()]
    assert len(warnings) == 1


def test_the_visitor_rate_limit_counts_in_memory_while_its_storage_is_down(caplog):
    now = [0.0]
    rate = VisitorRate("3 per 10 second", CLOSED_PORT_REDIS, clock=lambda: now[0])

    with caplog.at_level(logging.WARNING, logger="app.sockets.ratelimit"):
        first = [rate.hit("1", "visitor-a") for _ in range(4)]
        other = rate.hit("1", "visitor-b")
        now[0] = 30.0  # later windows: the storage is tried again, and still counted here
        later = [rate.hit("1", "visitor-a") for _ in range(4)]

    assert first == [True, True, True, False] and other is True  # still limited, per visitor
    assert later == [True, True, True, False]
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].exc_info is None  # one line per outage, no traceback


# --- the message queue -------------------------------------------------------------------------


class Outage:
    """A local port in front of the test Redis: closed (Redis is down) until ``open``."""

    def __init__(self, target: str) -> None:
        url = make_url(target.replace("redis://", "redis+x://", 1))
        self.target = (url.host or "127.0.0.1", url.port or 6379)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/{url.database or 0}"
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def open(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def close(self) -> None:
        for sock in [self._listener, *self._sockets]:
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
        self._listener, self._sockets = None, []

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.target)
            self._sockets += [near, far]
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass


def _server_with(manager: DeskRedisManager) -> tuple[socketio.Server, list[str]]:
    """A Socket.IO server on *manager* with one connected client, whose received events are listed."""
    server = socketio.Server(async_mode="threading", client_manager=manager)
    received: list[str] = []
    server._send_eio_packet = lambda eio_sid, pkt: received.append(pkt.data)  # what the client would get
    server.manager_initialized = True
    manager.initialize()  # starts the listener
    return server, received


def _queue_warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "app.sockets.queue" and text in r.getMessage()]


def test_events_reach_this_processes_clients_while_the_queue_is_down(caplog):
    manager = DeskRedisManager(CLOSED_PORT_REDIS, channel=f"test-{uuid.uuid4().hex}", retry_seconds=0.2)
    server, received = _server_with(manager)
    try:
        sid = manager.connect("eio-visitor", "/visitor")
        for n in range(30):
            server.emit("message", {"n": n}, to=sid, namespace="/visitor")
            if n == 15:
                time.sleep(0.3)  # past the retry pause: the queue is tried again, and fails again

        assert [json.loads(p.split(",", 1)[1])[1]["n"] for p in received] == list(range(30))
        assert manager.down
        assert len(_queue_warnings(caplog, "unreachable")) == 1  # one warning for the outage, not per event
    finally:
        manager.close()


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL")
def test_the_queue_goes_back_to_redis_when_it_answers_again(caplog):
    outage = Outage(REDIS_URL)
    channel = f"test-{uuid.uuid4().hex}"
    manager = DeskRedisManager(outage.url, channel=channel, retry_seconds=0.2)
    server, received = _server_with(manager)
    other_process = redis.Redis.from_url(REDIS_URL)
    heard = other_process.pubsub(ignore_subscribe_messages=True)
    heard.subscribe(channel)
    try:
        sid = manager.connect("eio-agent", "/agent")
        server.emit("note", {"n": 1}, to=sid, namespace="/agent")
        _until(lambda: manager.down)
        assert received and heard.get_message(timeout=0.5) is None  # delivered here, not published

        outage.open()  # Redis answers again
        # Another process's event reaches this process's client once the listener is back ...
        from_other = {"method": "emit", "event": "from-other", "data": [{"n": 2}], "binary": False,
                      "namespace": "/agent", "room": sid, "skip_sid": None, "callback": None, "host_id": "other"}
        _until(lambda: other_process.publish(channel, json.dumps(from_other))
               and any("from-other" in p for p in received))
        # ... and this process's events are published for the others again.
        time.sleep(0.3)  # past the retry pause of the last failed publish
        server.emit("note", {"n": 3}, to=sid, namespace="/agent")
        published = _until(lambda: (m := heard.get_message(timeout=0.5)) and json.loads(m["data"])["event"] == "note"
                           and json.loads(m["data"]))
        assert published["data"] == [{"n": 3}]
        assert not manager.down
        assert len(_queue_warnings(caplog, "unreachable")) == 1
        assert len(_queue_warnings(caplog, "reachable again")) == 1
    finally:
        manager.close()
        outage.close()
        heard.close()
        other_process.close()
