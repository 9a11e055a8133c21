"""The chat survives a failure: a server process killed mid-conversation, Redis restarted, the
database's connections dropped.

Two real servers (``run.py``, the default async mode) share the run's kind of database (a SQLite
file, or a ``<name>_fo`` PostgreSQL database beside ``TEST_DATABASE_URL``) and a Redis server of
their own that these tests start, stop and start again on a fixed port (``redis-server`` from the
machine; nothing kept on disk). A visitor and an agent talk through python-socketio clients that
behave as the widget and the console do: a message whose acknowledgement did not come is kept and
sent again with the same ``client_msg_id``; after a reconnect the visitor asks for what it missed
(``resume`` from the last message it received).

Without ``TEST_REDIS_URL`` (a run without Redis) the module is skipped with a message; under
``CI`` the suite's PostgreSQL run has Redis (scripts/test.sh), so there it always runs, and a
missing ``redis-server`` fails it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import socketio
from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import Engine

from tests.servers import (
    Events,
    RedisServer,
    Server,
    drop_database,
    events_client,
    free_port,
    own_database,
    server_env,
    sign_in,
    start,
)
from tests.test_chat_realserver import ORIGIN, PASSWORD, SEED

ROOT = Path(__file__).resolve().parents[1]
WAIT = 10.0

if not os.environ.get("TEST_REDIS_URL"):
    pytest.skip("two server processes need a shared message queue: these fault tests run with TEST_REDIS_URL",
                allow_module_level=True)
if shutil.which("redis-server") is None:
    if os.environ.get("CI"):
        pytest.fail("redis-server is not installed: the fault tests start a Redis of their own", pytrace=False)
    pytest.skip("redis-server is not installed: the fault tests start a Redis of their own",
                allow_module_level=True)


@dataclass
class Cluster:
    servers: list[Server]
    redis: RedisServer
    engine: Engine
    site_key: str
    env: dict = field(repr=False)
    tmp: Path = field(repr=False)

    def count(self, sql: str, **params: object) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar() or 0

    def restart(self, index: int) -> Server:
        """Start server *index* again (after a kill) on a new port."""
        self.servers[index] = start(self.env, self.tmp / f"server-{index}-again.log")
        return self.servers[index]


@pytest.fixture(autouse=True)
def _fresh_database() -> Iterator[None]:
    """These tests use the servers' database, not the unit tests' one (overrides tests/conftest.py)."""
    yield


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("failover")
    database_url, admin = own_database(tmp, "fo")
    redis = RedisServer(free_port(), tmp / "redis.log")
    redis.start()
    # Visitors here send faster than a person types: the visitor limit is not what is tested.
    env = server_env(INSTANCE_PATH=str(tmp / "instance"), DATABASE_URL=database_url, DEMO_PASSWORD=PASSWORD,
                     DEMO_HOST_PORT="0", REDIS_URL=redis.url, CHAT_VISITOR_RATE="1000 per 10 second")
    started: list[Server] = []
    engine = create_engine(database_url)
    try:
        started.append(start(env, tmp / "server-0.log"))
        seeded = subprocess.run([sys.executable, "-c", SEED, f"{ORIGIN}\nhttp://localhost:5001"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=300)
        assert seeded.returncode == 0, seeded.stderr
        site_key = seeded.stdout.strip().splitlines()[-1]
        started.append(start(env, tmp / "server-1.log"))
        yield Cluster(started, redis, engine, site_key, env, tmp)
    finally:
        for server in started:
            server.stop()
        redis.stop()
        engine.dispose()
        drop_database(database_url, admin)


class Side:
    """One side of a chat as the widget or the console keeps it: every message received (by id),
    every message sent (by ``client_msg_id``) with its acknowledgement, and an outbox of those not
    acknowledged yet, sent again with the same ``client_msg_id``."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.client: socketio.Client | None = None
        self.events = Events()  # every event but "message", which goes to received
        self.received: dict[int, str] = {}  # message id -> text (what the user sees, once per id)
        self.deliveries = 0  # message events received, repeats included
        self.acked: dict[str, int] = {}  # client_msg_id -> stored id
        self.last_ack: dict = {}
        self.outbox: list[tuple[str, str, dict]] = []  # (client_msg_id, text, extra) not acknowledged
        self.lock = threading.Lock()

    def attach(self, client: socketio.Client) -> None:
        self.client = client

        @client.on("message", namespace=self.namespace)
        def _message(payload: dict) -> None:
            with self.lock:
                self.deliveries += 1
                self.received[payload["id"]] = payload["text"]

    def send(self, body: str, **extra: object) -> bool:
        """Send (or queue) a message; True when it was acknowledged now."""
        item = (str(uuid.uuid4()), body, extra)
        self.outbox.append(item)
        return self.flush()

    def flush(self) -> bool:
        """Send the outbox in order, stopping at the first message not acknowledged."""
        while self.outbox:
            client_msg_id, body, extra = self.outbox[0]
            try:
                ack = self.client.call("message", {"client_msg_id": client_msg_id, "text": body, **extra},
                                       namespace=self.namespace, timeout=3)
            except (socketio.exceptions.SocketIOError, AttributeError):
                return False
            if not isinstance(ack, dict) or "id" not in ack:  # refused for now (busy, retry_after): try later
                time.sleep(min(float((ack or {}).get("retry_after") or 0.5), 2))
                return False
            self.acked[client_msg_id] = ack["id"]
            self.last_ack = ack
            self.outbox.pop(0)
        return True

    def last_received(self) -> int:
        with self.lock:
            return max(self.received, default=0)

    def texts(self) -> list[str]:
        with self.lock:
            return list(self.received.values())


def connect_visitor(side: Side, url: str, site_key: str, token: str | None = None) -> dict:
    """Connect *side* to the server at *url* as the widget does (long-polling first); the session."""
    events = Events()
    client = events_client("/visitor", events)
    side.events = events
    side.attach(client)
    auth = {"site_key": site_key, **({"visitor_token": token} if token else {})}
    client.connect(url, namespaces=["/visitor"], headers={"Origin": ORIGIN}, auth=auth, transports=["polling"],
                   wait_timeout=WAIT)
    return events.wait_for("session")


def connect_agent(side: Side, url: str, cookie: str) -> None:
    events = Events()
    client = events_client("/agent", events)
    side.events = events
    side.attach(client)
    client.connect(url, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"],
                   wait_timeout=WAIT)
    client.call("status", {"status": "online"}, namespace="/agent", timeout=WAIT)


def open_chat(cluster: Cluster, visitor_url: str, agent_url: str, first: str) -> tuple[Side, Side, dict, int]:
    """A visitor on *visitor_url* writes *first*; agent1 on *agent_url* takes the chat."""
    agent = Side("/agent")
    connect_agent(agent, agent_url, sign_in(agent_url, "agent1", PASSWORD))
    visitor = Side("/visitor")
    session = connect_visitor(visitor, visitor_url, cluster.site_key)
    assert visitor.send(first)
    conversation_id = visitor.last_ack["conversation_id"]
    agent.events.wait_for(("chat_offer", "chat_request"), lambda p: p.get("conversation_id") == conversation_id)
    accepted = agent.client.call("accept", {"conversation_id": conversation_id}, namespace="/agent", timeout=WAIT)
    assert accepted.get("conversation_id") == conversation_id, accepted
    agent.received.update({m["id"]: m["text"] for m in accepted["messages"]})  # the chat so far comes with it
    visitor.events.wait_for("agent_joined", lambda p: p["conversation_id"] == conversation_id)
    return visitor, agent, session, conversation_id


def wait_until(condition, timeout: float = 30.0, what: object = "") -> None:  # noqa: ANN001
    """Poll *condition* until true; fail after *timeout* s saying *what* (a callable: its result)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what() if callable(what) else what}"
        time.sleep(0.1)


def stored_once(cluster: Cluster, texts: list[str]) -> dict[str, int]:
    """How many rows hold each of *texts* (each test message's text is unique)."""
    query = text("SELECT text, count(*) FROM chat_message WHERE text IN :texts GROUP BY text").bindparams(
        bindparam("texts", expanding=True))
    with cluster.engine.connect() as conn:
        counts = dict(conn.execute(query, {"texts": texts}).all())
    return {t: counts.get(t, 0) for t in texts}


def test_a_server_killed_mid_conversation_loses_and_repeats_nothing(cluster: Cluster) -> None:
    """The visitor talks through server 0, the agent through server 1; server 0 is killed (SIGKILL)
    while both keep sending. The visitor reconnects to server 1, asks for what it missed and sends
    again what was not acknowledged: every message of either side reaches the other exactly once."""
    tag = uuid.uuid4().hex[:6]
    visitor, agent, session, conversation_id = open_chat(cluster, cluster.servers[0].url, cluster.servers[1].url,
                                                         f"{tag} 访客 0")
    count = 30
    agent_texts = [f"{tag} 客服 {n}" for n in range(1, count + 1)]
    visitor_texts = [f"{tag} 访客 {n}" for n in range(0, count + 1)]

    def agent_talks() -> None:
        for body in agent_texts:
            agent.send(body, conversation_id=conversation_id)
            time.sleep(0.05)

    talking = threading.Thread(target=agent_talks)
    talking.start()
    killed_after = count // 3
    for n, body in enumerate(visitor_texts[1:], start=1):
        if n == killed_after:
            cluster.servers[0].process.kill()  # SIGKILL: no goodbye to anyone
            cluster.servers[0].process.wait(timeout=10)
        if not visitor.send(body):
            # as the widget does: reconnect (here straight to the other server, as the proxy
            # would send it), resume from the last message received, then send the outbox
            visitor.client.disconnect()
            seen_before = visitor.last_received()  # (messages arriving once reconnected must not move it on)
            back = connect_visitor(visitor, cluster.servers[1].url, cluster.site_key, session["visitor_token"])
            assert back["conversation_id"] == conversation_id
            visitor.client.call("resume", {"last_message_id": seen_before}, namespace="/visitor", timeout=WAIT)
            wait_until(visitor.flush, WAIT, "the visitor's outbox sent on server 1")
        time.sleep(0.05)
    talking.join(timeout=120)
    assert not talking.is_alive()
    assert agent.flush() and visitor.flush()

    wait_until(lambda: set(visitor_texts) <= set(agent.texts()), 30,
               lambda: f"visitor messages missing at the agent: {sorted(set(visitor_texts) - set(agent.texts()))}")
    wait_until(lambda: set(agent_texts) <= set(visitor.texts()), 30,
               lambda: f"agent messages missing at the visitor: {sorted(set(agent_texts) - set(visitor.texts()))}")
    to_agent = [t for t in agent.texts() if t in visitor_texts]
    to_visitor = [t for t in visitor.texts() if t in agent_texts]
    rows = stored_once(cluster, visitor_texts + agent_texts)
    report = (f"visitor sent {len(visitor_texts)}, agent got {len(set(to_agent))} ({len(to_agent)} ids); "
              f"agent sent {len(agent_texts)}, visitor got {len(set(to_visitor))} ({len(to_visitor)} ids); "
              f"rows {sorted(set(rows.values()))}; events {agent.deliveries} / {visitor.deliveries}")
    assert sorted(to_agent) == sorted(visitor_texts), report  # each text under one id: no duplicate
    assert sorted(to_visitor) == sorted(agent_texts), report
    assert set(rows.values()) == {1}, report  # stored exactly once, resends included
    assert len(visitor.acked) == len(visitor_texts) and len(agent.acked) == len(agent_texts), report
    agent.client.disconnect()
    visitor.client.disconnect()
    cluster.restart(0)


def _health(url: str) -> dict:
    return requests.get(f"{url}/health", timeout=5).json()


def test_redis_restarted_mid_chat_the_servers_recover_without_a_restart(cluster: Cluster) -> None:
    """Redis stops while a visitor on server 0 and an agent on server 1 talk: messages are still
    stored and acknowledged (each process serves its own clients), ``/health`` says degraded, and
    once Redis is back the messages cross processes again without restarting a server; what the
    agent did not hear during the outage comes with ``resume``."""
    tag = uuid.uuid4().hex[:6]
    visitor, agent, _session, conversation_id = open_chat(cluster, cluster.servers[0].url, cluster.servers[1].url,
                                                          f"{tag} 开始")
    cluster.redis.stop()
    try:
        wait_until(lambda: all(_health(s.url)["message_queue"] == "error" for s in cluster.servers), 20,
                   "both servers see Redis down")
        assert all(_health(s.url)["status"] == "degraded" for s in cluster.servers)
        during = f"{tag} Redis 停了"
        assert visitor.send(during), "a message is stored and acknowledged while Redis is down"
        assert cluster.count("SELECT count(*) FROM chat_message WHERE text = :t", t=during) == 1
    finally:
        cluster.redis.start()
    wait_until(lambda: all(_health(s.url)["status"] == "ok" for s in cluster.servers), 30,
               "both servers see Redis back")

    after = f"{tag} Redis 回来了"
    reply = f"{tag} 收到"

    def crossed() -> bool:  # the pub/sub listener of each server reconnects with a back-off
        visitor.send(f"{tag} 探测 {uuid.uuid4().hex[:4]}")
        time.sleep(0.5)
        return any(t.startswith(f"{tag} 探测") for t in agent.texts())

    wait_until(crossed, 90, "a visitor message reaches the agent on the other process again")
    assert visitor.send(after)
    wait_until(lambda: after in agent.texts(), WAIT, "the visitor's message at the agent")
    assert agent.send(reply, conversation_id=conversation_id)
    wait_until(lambda: reply in visitor.texts(), WAIT, "the agent's reply at the visitor")
    # The one message sent during the outage: stored, acknowledged, and given to the agent on resume.
    agent.client.call("resume", {"conversation_id": conversation_id, "last_message_id": 0}, namespace="/agent",
                      timeout=WAIT)
    assert during in agent.texts()
    agent.client.disconnect()
    visitor.client.disconnect()


def test_dropped_database_connections_lose_no_acknowledged_message(cluster: Cluster) -> None:
    """PostgreSQL ends every connection of the servers (as a failover or a restart of the database
    does) while a visitor keeps writing and an accountant posts vouchers: the servers reconnect by
    themselves, every message and voucher is acknowledged (a refusal carries ``retry_after``, and
    the client sends it again with the same ``client_msg_id`` or ``Idempotency-Key``) and stored once."""
    if cluster.engine.dialect.name != "postgresql":
        pytest.skip("dropping the servers' connections is a PostgreSQL test")
    tag = uuid.uuid4().hex[:6]
    visitor, agent, _session, conversation_id = open_chat(cluster, cluster.servers[0].url, cluster.servers[1].url,
                                                          f"{tag} 开始")
    terminate = text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    texts = [f"{tag} 第 {n} 条" for n in range(20)]
    dropped = 0
    for n, body in enumerate(texts):
        if n % 5 == 2:
            with cluster.engine.connect() as conn:
                dropped += conn.execute(terminate).scalar() or 0
        visitor.send(body)
        wait_until(visitor.flush, 30, f"message {n} acknowledged after the connections dropped")
    assert dropped > 0
    wait_until(lambda: set(texts) <= set(agent.texts()), 30, "every message at the agent")
    assert set(stored_once(cluster, texts).values()) == {1}
    assert all(_health(s.url)["db"] == "ok" for s in cluster.servers)
    assert agent.send(f"{tag} 回复", conversation_id=conversation_id)
    agent.client.disconnect()
    visitor.client.disconnect()

    # The back office too: an accountant's vouchers, each POST retried with its Idempotency-Key
    # until it is acknowledged (201), are all there, once each.
    url = cluster.servers[0].url
    http = _accountant(url)
    with cluster.engine.connect() as conn:
        book_id, client_id = conn.execute(text(
            "SELECT b.id, b.client_id FROM ledger_book b JOIN client c ON c.id = b.client_id "
            "JOIN ab_user u ON u.id = c.accountant_id WHERE u.username = 'accountant' ORDER BY b.id")).first()
        closed = conn.execute(text("SELECT max(period) FROM ledger_period WHERE book_id = :b AND status = 'closed'"),
                              {"b": book_id}).scalar()
    year, month = divmod(closed or 202611, 100)
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    summary = f"{tag} 断线重试"
    for n in range(6):
        if n % 3 == 1:
            with cluster.engine.connect() as conn:
                dropped += conn.execute(terminate).scalar() or 0
        body = {"client_id": client_id, "date": f"{year}-{month:02d}-10", "word": "记", "summary": summary,
                "attachments": 0, "lines": [{"account_code": "1001", "debit": f"{n + 1}00.00"},
                                            {"account_code": "5001", "credit": f"{n + 1}00.00"}]}
        key = {"Idempotency-Key": f"{tag}-{n}"}
        answers = []
        for _ in range(10):
            answer = http.post(f"{url}/api/v1/voucher/", json=body, headers=key, timeout=WAIT)
            answers.append(answer.status_code)
            if answer.status_code == 201:
                break
            assert answer.status_code == 503, answer.text  # the database is reconnecting: try again
            time.sleep(float(answer.headers.get("Retry-After") or 1))
        assert answers[-1] == 201, answers
    assert cluster.count("SELECT count(*) FROM ledger_voucher WHERE summary = :s", s=summary) == 6


def _accountant(url: str) -> requests.Session:
    """The demo accountant's browser session, with the CSRF token and origin its pages send on API writes."""
    import re

    http = requests.Session()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', http.get(f"{url}/login/", timeout=WAIT).text)
    answer = http.post(f"{url}/login/", data={"username": "accountant", "password": PASSWORD,
                                              "csrf_token": token.group(1)}, timeout=WAIT)
    assert "/login" not in answer.url, "the accountant could not sign in"
    page = http.get(f"{url}/voucherimport/", timeout=WAIT)
    api_token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    http.headers.update({"X-CSRFToken": api_token.group(1), "Origin": url})
    return http
