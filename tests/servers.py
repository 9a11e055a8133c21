"""Helpers for tests that start real server processes (``run.py``) as a user would.

- ``server_env(**values)``: the test run's environment without the settings a server must not
  inherit (its database, Redis and async mode are the test's choice; the async mode is left at
  the default, which is what ``make run`` uses), plus *values*.
- ``start(env, log_path, port)``: start ``run.py`` on 127.0.0.1:*port* and wait until ``/health``
  answers 200 (``ok`` or ``degraded``); returns a ``Server`` whose ``stop()`` ends it. The wait
  polls (no fixed sleep) for up to ``START_SECONDS``, enough for a loaded 2-core machine; a
  server that exits or does not answer fails the test with its log.
- ``free_port()``, ``sign_in(url, username, password)`` (the cookie header of a browser session).
- ``RedisServer(port, log)``: a ``redis-server`` of a test's own, which the test may stop and start again.
- ``demo_server``: a session fixture (registered in tests/conftest.py) with one server started
  on demo data for the whole run, shared by every test that only needs "the desk, as a user
  starts it" (tests/test_run.py, the browser tests): see ``DemoServer``.

Every server gets its own temporary instance folder; on PostgreSQL the shared server has a
database of its own beside the test database (``<name>_e2e``), because the unit tests' fixture
resets every table of the test database after each test.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parent.parent
# Settings a test server must not inherit from the test run: its database, Redis and async mode
# are the test's choice (the async mode is left at the default, which is what ``make run`` uses).
SERVER_OWN = ("DATABASE_URL", "REDIS_URL", "SOCKETIO_MESSAGE_QUEUE", "ASYNC_MODE")
START_SECONDS = 300  # a fresh start takes seconds on a quiet machine, a minute or more on a loaded one
DEMO_PASSWORD = "Demo-Pass-2026xy"


def server_env(**values: str) -> dict[str, str]:
    """The test run's environment without ``SERVER_OWN``, plus *values*."""
    env = {k: v for k, v in os.environ.items() if k not in SERVER_OWN}
    env.update(values)
    return env


class Events:
    """Every event a python-socketio client received, by name, with waiting."""

    def __init__(self) -> None:
        self._seen: list[tuple[str, object]] = []
        self._lock = threading.Condition()

    def add(self, name: str, payload: object) -> None:
        with self._lock:
            self._seen.append((name, payload))
            self._lock.notify_all()

    def wait_for(self, names: str | tuple[str, ...], match=lambda payload: True,  # noqa: ANN001
                 timeout: float = 10.0) -> object:
        """The first event received of *names* (one name or several) whose payload *match*es,
        waiting up to *timeout* seconds for it; ``AssertionError`` naming the latest events if none."""
        names = (names,) if isinstance(names, str) else names
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for seen, payload in self._seen:
                    if seen in names and match(payload):
                        return payload
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {names} event in {timeout} s; got {[n for n, _ in self._seen][-20:]}")
                self._lock.wait(left)

    def all(self, name: str) -> list:
        with self._lock:
            return [payload for seen, payload in self._seen if seen == name]


def events_client(namespace: str, events: Events) -> Any:
    """A python-socketio client (no reconnection) whose events on *namespace*, a refusal
    (``connect_error``) included, go to *events*."""
    import socketio

    client = socketio.Client(reconnection=False)

    @client.on("*", namespace=namespace)
    def _any(name, *args):  # noqa: ANN001, ANN202
        events.add(name, args[0] if args else None)

    @client.on("connect_error", namespace=namespace)  # not a "*" event: a refused connection's reason
    def _refused(data=None):  # noqa: ANN001, ANN202
        events.add("connect_error", data)

    return client


def empty_postgres(url: str) -> None:
    """Empty a PostgreSQL scratch database: drop and re-create its ``public`` schema."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


SERVER_REDIS_SLOTS = {"e2e": 1, "rs": 2, "hub": 3}


def server_redis_url(tag: str) -> str | None:
    """The Redis a group of test servers (*tag*: ``e2e``, ``rs``, ``hub``) shares among itself:
    ``TEST_REDIS_URL`` with another database number for each group (counting down from the test
    run's, modulo 16), so that neither the unit tests' application nor another group hears its
    Socket.IO messages, takes its background jobs or counts against its rate limits. ``None``
    without ``TEST_REDIS_URL``."""
    base = os.environ.get("TEST_REDIS_URL")
    if not base:
        return None
    return redis_number_below(base, SERVER_REDIS_SLOTS[tag])


def redis_number_below(redis_url: str, steps: int) -> str:
    """*redis_url* with the database number *steps* below its own (modulo 16; no number: 0)."""
    url = urlsplit(redis_url)
    return url._replace(path=f"/{(int(url.path.strip('/') or 0) - steps) % 16}").geturl()


class RedisServer:
    """A ``redis-server`` on a fixed port that a test can stop and start again."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(  # noqa: S603
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",  # noqa: S607
                 "--appendonly", "no"], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,  # noqa: S607
                             text=True).stdout.strip() != "PONG":
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "redis-server did not answer in 30 s"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A started ``run.py``: its process, address and log file."""

    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int | None:
        """End the server (SIGTERM, then SIGKILL after *timeout* s); its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _health(url: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:  # noqa: S310 - loopback
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def start(env: dict[str, str], log_path: Path, port: int | None = None, args: Sequence[str] = (),
          timeout: float = START_SECONDS) -> Server:
    """Start ``run.py --host 127.0.0.1 --port <port> *args`` with *env* (see ``server_env``),
    stdout and stderr going to *log_path*, and wait until ``/health`` answers 200."""
    port = port or free_port()
    with log_path.open("w") as out:
        process = subprocess.Popen([sys.executable, "run.py", "--host", "127.0.0.1", "--port", str(port), *args],  # noqa: S603
                                   cwd=ROOT, env={"PYTHONUNBUFFERED": "1", **env}, stdout=out,
                                   stderr=subprocess.STDOUT)
    server = Server(process, port, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{server.output()}", pytrace=False)
        if _health(server.url) == 200:
            return server
        if time.monotonic() > deadline:
            server.stop(timeout=5)
            pytest.fail(f"the server did not answer in {timeout:.0f} s:\n{server.output()}", pytrace=False)
        time.sleep(0.2)


def sign_in(url: str, username: str, password: str) -> str:
    """Sign in through the login form; the session's ``Cookie`` header. (Sign-ins are rate limited
    per address: sign each user in once and keep the cookie.)"""
    import requests

    http = requests.Session()
    form = http.get(f"{url}/login/", timeout=10)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.text)
    assert token, form.text[:500]
    answer = http.post(f"{url}/login/", data={"username": username, "password": password,
                                              "csrf_token": token.group(1)}, timeout=10)
    assert "/login" not in answer.url, f"{username} could not sign in: {answer.status_code} {answer.url}"
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


# --- the shared demo server ---------------------------------------------------------------------


def own_database(tmp: Path, suffix: str) -> tuple[str, Engine | None]:
    """A database for servers started by a test: a SQLite file in *tmp*, or, when
    ``TEST_DATABASE_URL`` names PostgreSQL, a fresh ``<name>_<suffix>`` beside it (dropped and
    created here); its URL and, on PostgreSQL, an admin engine to drop it later."""
    test_url = os.environ.get("TEST_DATABASE_URL", "")
    if not test_url.startswith("postgresql"):
        return f"sqlite:///{tmp / f'{suffix}.db'}", None
    url = make_url(test_url)
    name = f"{url.database}_{suffix}"
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        pytest.fail(f"cannot derive a database name from {url.database!r}", pytrace=False)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return url.set(database=name).render_as_string(hide_password=False), admin


def drop_database(database_url: str, admin: Engine | None) -> None:
    """Drop a database made by ``own_database`` (nothing to do for SQLite)."""
    if admin is None:
        return
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(database_url).database}" WITH (FORCE)'))
    admin.dispose()


@dataclass
class DemoServer:
    """The shared server: ``run.py`` in the default async mode, first started on an empty database
    (so it migrated and seeded the demo data), the demo users' password ``password``, the demo
    host page on ``demo_port``, Redis (``server_redis_url("e2e")``) when the run has ``TEST_REDIS_URL``."""

    server: Server
    password: str
    database_url: str
    demo_port: int
    env: dict = field(repr=False)
    engine: Engine = field(repr=False)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def log(self) -> Path:
        return self.server.log

    def output(self) -> str:
        return self.server.output()

    def scalar(self, statement: Any, **params: Any) -> Any:
        """One value read straight from the server's database."""
        with self.engine.connect() as conn:
            return conn.execute(statement, params).scalar()


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """One ``run.py`` on demo data for the whole test run (see ``DemoServer``); stopped at the end."""
    tmp = tmp_path_factory.mktemp("demo-server")
    database_url, admin = own_database(tmp, "e2e")
    demo_port = free_port()
    env = server_env(INSTANCE_PATH=str(tmp / "instance"), DATABASE_URL=database_url, DEMO_PASSWORD=DEMO_PASSWORD,
                     DEMO_HOST_PORT=str(demo_port))
    if server_redis_url("e2e"):
        env["REDIS_URL"] = server_redis_url("e2e")
    engine = create_engine(database_url)
    try:
        with start(env, tmp / "server.log") as server:
            yield DemoServer(server, DEMO_PASSWORD, database_url, demo_port, env, engine)
    finally:
        engine.dispose()
        drop_database(database_url, admin)
