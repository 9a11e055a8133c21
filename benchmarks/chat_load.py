"""Chat load benchmark: visitors and agents as Socket.IO clients against the desk and, in the same
run, against a bare python-socketio relay (``benchmarks/chat_relay.py``, no database).

Every client is a raw Engine.IO 4 / Socket.IO 5 websocket (asyncio, framing done here) in this one
process; everything is on the loopback interface, bounded in count and time, and stops by itself.

1. The script starts the server (the desk through ``benchmarks/chat_server.py``, which counts the
   SQL statements; or the relay) on a free port, in ``--async-mode``.
2. Setup (not measured): ``--agents`` agents sign in and connect; ``--visitors`` visitors connect
   and each opens a chat with one message; agents accept every offer (the relay maps visitor i to
   agent i mod n instead). The desk's database is made afresh for the run (SQLite file, or the
   PostgreSQL database of ``--database-url``, dropped and re-created — give it a scratch one).
3. For each offered rate (``--rates``), for ``--seconds``: open loop — message k is due at
   t0 + k/rate, sent by visitor k mod visitors whether or not earlier ones were answered; latency
   is counted from when it was due (no coordinated omission). A message refused with
   ``retry_after`` is sent again after it, as the widget's outbox does.
4. Reported per rate: the delivered rate (agent receipts over the time from the first due time to
   the last receipt), p50/p95/p99/max visitor→agent latency and ack latency, refused (retried),
   lost (acknowledged and never delivered, or never answered at all, 15 s after the phase; refused ones
   still retrying then are counted apart), duplicated
   deliveries, rows stored (the desk), SQL statements per message (the whole server, sweep
   included) and the server's CPU (percent of one core, user + system).

Pauses, per run (measures that hold on a shared machine: durations with the CPU time spent in
them, so a pause of the process's own making tells from one of waiting for a core):
- the generator's own: its event loop's lag and its collections (it collects only between runs,
  ``--generator-gc freeze``, the default, so that its pauses stay out of the figures);
- the server's, from ``benchmarks/chat_probe.py`` in the server process (the desk and the relay):
  the hub's lag, the garbage collector's collections, greenlets that held the hub for over 5 ms
  (with where they were), and the desk's SQLite commits over 5 ms;
- the refusals by their message.
``--profile FILE`` profiles the desk over the measured runs (cProfile, started and stopped by
signals) and prints the packets it sent, by event.

``--idle N`` instead connects N idle widget connections (no messages) and reports the server's
resident memory per connection, for the desk and the relay.

    .venv/bin/python benchmarks/chat_load.py --rates 100,250,500,1000 --seconds 10
    .venv/bin/python benchmarks/chat_load.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/<scratch>
    .venv/bin/python benchmarks/chat_load.py --idle 5000
    .venv/bin/python benchmarks/chat_load.py --processes 1,2 --redis-url redis://127.0.0.1:6379/9 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/<scratch> --rates 250,500,1000,1500

``--processes 1,2`` runs the desk with one server process, then with two (a fresh database each
time, both with Redis as the message queue); visitor and agent *n* connect to process *n* mod the
count, so most messages cross processes. The relay is not run then. It ends with each set-up's
capacity: the highest offered rate every run delivered (≥ 99 %, 0 lost) with a median p99 within
50 ms (the chat goal), and within 500 ms, and their ratio. ``--until-overloaded`` skips a set-up's
higher rates after two in a row were not held. ``--cpu-quota 0.5`` limits each desk process to half
a core (a cgroup of its own, root only) over the measured runs: on a machine whose cores the
desk's processes share with PostgreSQL, Redis and this generator, it gives every process a fixed
share, as a core or machine of its own would, so that the runs show how the desk scales rather
than how many cores are left over. Each run also reports the CPU that PostgreSQL's and Redis's
processes used.

    .venv/bin/python benchmarks/chat_load.py --processes 1,2 --cpu-quota 0.5 --until-overloaded \
        --redis-url redis://127.0.0.1:6379/9 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/<scratch> \
        --rates 30,40,50,60,70,80,90,100,110,120,130,140,150,160,170,180 --seconds 10 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import math
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORIGIN = "http://127.0.0.1:5001"
PASSWORD = "Bench-Pass-2026xy"  # noqa: S105 - throwaway users of a scratch database
START_SECONDS = 180
GRACE_SECONDS = 15
CONNECT_AT_ONCE = 20
MAX_CLIENTS = 20000


# --- a minimal Socket.IO client over one websocket ----------------------------------------------


class SocketClient:
    """One Engine.IO websocket with one Socket.IO namespace. The websocket framing is done here:
    client frames carry a zero masking key (the key is the client's choice; a zero key leaves the
    payload as is), which keeps the load generator's cost per frame far below the server's."""

    def __init__(self, namespace: str, on_event=None) -> None:  # noqa: ANN001
        self.namespace = namespace
        self.on_event = on_event or (lambda name, payload: None)
        self.acks: dict[int, asyncio.Future] = {}
        self.ack_callbacks: dict[int, object] = {}
        self.next_id = 0
        self.connected = asyncio.Event()
        self.refused: object = None
        self.writer: asyncio.StreamWriter | None = None
        self._partial = bytearray()

    async def connect(self, port: int, auth: dict, headers: list[tuple[bytes, bytes]], timeout: float = 60) -> None:
        reader, self.writer = await asyncio.open_connection("127.0.0.1", port, limit=2**22)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET /socket.io/?EIO=4&transport=websocket HTTP/1.1", f"Host: 127.0.0.1:{port}",
                 "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13", *[f"{k.decode()}: {v.decode()}" for k, v in headers]]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._auth = auth
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader))
        await asyncio.wait_for(self.connected.wait(), timeout)
        if self.refused is not None:
            raise ConnectionError(f"{self.namespace} refused: {self.refused}")

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        size = len(payload)
        if size < 126:
            head = bytes((0x80 | opcode, 0x80 | size))
        elif size < 65536:
            head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
        else:
            head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
        return head + b"\0\0\0\0" + payload

    def _send_text(self, text: str) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(self._frame(0x1, text.encode()))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            status = await reader.readuntil(b"\r\n\r\n")
            if b" 101 " not in status.split(b"\r\n", 1)[0]:
                self.refused = status.split(b"\r\n", 1)[0].decode(errors="replace")
                return
            while True:
                first, second = await reader.readexactly(2)
                size = second & 0x7F
                if size == 126:
                    size = int.from_bytes(await reader.readexactly(2), "big")
                elif size == 127:
                    size = int.from_bytes(await reader.readexactly(8), "big")
                payload = await reader.readexactly(size) if size else b""
                opcode = first & 0x0F
                if opcode in (0x0, 0x1):
                    self._partial += payload
                    if first & 0x80:
                        self._packet(self._partial.decode())
                        self._partial = bytearray()
                elif opcode == 0x9:  # ping
                    self.writer.write(self._frame(0xA, payload))
                elif opcode == 0x8:  # close
                    return
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if not self.connected.is_set():
                self.refused = self.refused or "closed"
                self.connected.set()

    def _packet(self, text: str) -> None:
        kind = text[:1]
        if kind == "0":  # engine.io open: join the namespace
            self._send_text(f"40{self.namespace},{json.dumps(self._auth)}")
        elif kind == "2":  # ping
            self._send_text("3")
        elif kind == "4":
            self._socketio(text[1:])

    def _socketio(self, text: str) -> None:
        kind, rest = text[:1], text[1:]
        if rest.startswith("/"):
            _, _, rest = rest.partition(",")
        match = re.match(r"\d+", rest)
        ack_id = int(match.group()) if match else None
        body = rest[match.end():] if match else rest
        if kind == "0":
            self.connected.set()
        elif kind == "4":
            self.refused = body
            self.connected.set()
        elif kind == "2":
            name, *args = json.loads(body)
            self.on_event(name, args[0] if args else None)
        elif kind == "3" and ack_id is not None:
            args = json.loads(body)
            callback = self.ack_callbacks.pop(ack_id, None)
            if callback is not None:
                callback(args[0] if args else None)
            future = self.acks.pop(ack_id, None)
            if future is not None and not future.done():
                future.set_result(args[0] if args else None)

    def emit(self, name: str, payload: object, callback=None) -> None:  # noqa: ANN001
        """Send an event; *callback(ack)* is called with the ack when one is asked for."""
        if callback is None:
            self._send_text(f"42{self.namespace},{json.dumps([name, payload])}")
            return
        self.next_id += 1
        self.ack_callbacks[self.next_id] = callback
        self._send_text(f"42{self.namespace},{self.next_id}{json.dumps([name, payload])}")

    async def call(self, name: str, payload: object, timeout: float = 60) -> object:
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.acks[self.next_id] = future
        self._send_text(f"42{self.namespace},{self.next_id}{json.dumps([name, payload])}")
        return await asyncio.wait_for(future, timeout)

    def close(self) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.close()
        if getattr(self, "_reader_task", None) is not None:
            self._reader_task.cancel()


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    kind: str
    proc: subprocess.Popen
    port: int
    stats: Path | None = None
    database_url: str | None = None
    site_key: str | None = None
    env: dict = field(default_factory=dict)
    probe: Path | None = None
    others: list[Server] = field(default_factory=list)  # more desk processes sharing the database and Redis

    @property
    def group(self) -> list[Server]:
        return [self, *self.others]

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.group]

    def cpu_seconds(self) -> float:
        """User + system CPU of every process of the group."""
        total = 0.0
        for server in self.group:
            fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def rss_mib(self) -> float:
        total = 0.0
        for server in self.group:
            for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        return total

    def statements(self) -> int:
        if self.stats is None:
            return 0
        time.sleep(0.6)  # the counter is written every 0.25 s
        total = 0
        for server in self.group:
            try:
                total += int(server.stats.read_text() or 0)
            except (OSError, ValueError, AttributeError):
                pass
        return total

    def stop(self) -> None:
        for server in self.group:
            server.proc.terminate()
        for server in self.group:
            try:
                server.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait()


def _wait_ready(proc: subprocess.Popen, port: int, path: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5):  # noqa: S310 - loopback
                return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP answer: the server is up
                return
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the server did not answer in {START_SECONDS} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def start_relay(mode: str, tmp: Path) -> Server:
    port = free_port()
    log = tmp / f"relay-{mode}.log"
    probe = tmp / f"probe-relay-{mode}"
    env = {**os.environ, "ASYNC_MODE": mode, "BENCH_PROBE": str(probe)}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "chat_relay.py"), "--port", str(port)],  # noqa: S603
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    _wait_ready(proc, port, "/socket.io/?EIO=4&transport=polling", log)
    return Server("relay", proc, port, probe=probe)


SEED = """
import sys
from app import create_app
from app.extensions import db
from app.models.chat import AgentProfile, AgentStatus, ChatSite
from app.services import chat_sites
from app.services.bootstrap import prepare_database
from app.services.users import create_user

agents, max_chats, password, origin = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
app = create_app()
with app.app_context():
    prepare_database(app)
    site = chat_sites.prepare_new_site(ChatSite(name="Load", allowed_origins=origin, auto_reply_seconds=0))
    db.session.add(site)
    db.session.commit()
    for n in range(agents):
        user = create_user(app, f"load-agent-{n}", password, ["Agent"], first_name=f"load{n}")
        db.session.add(AgentProfile(user_id=user.id, display_name=f"load{n}", max_chats=max_chats,
                                    status=AgentStatus.online))
    db.session.commit()
    print(site.site_key)
"""


def _fresh_database(url: str | None, tmp: Path) -> str:
    if not url:
        return f"sqlite:///{tmp / 'load.db'}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    assert re.fullmatch(r"[A-Za-z0-9_]+", parsed.database or ""), parsed.database
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    return url


def _flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def start_desk(mode: str, tmp: Path, database_url: str | None, agents: int, visitors: int,
               extra_env: dict, processes: int = 1, redis_url: str | None = None) -> Server:
    """The desk on a fresh database: *processes* servers (``chat_server.py``), sharing the
    database and, with *redis_url* (emptied first), one Socket.IO message queue and rate limits."""
    url = _fresh_database(database_url, tmp)
    instance = tmp / f"instance-{mode}-{processes}"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SOCKETIO_MESSAGE_QUEUE")}
    env.update({"DATABASE_URL": url, "INSTANCE_PATH": str(instance), "DEMO_HOST_PORT": "0", "ASYNC_MODE": mode,
                "AUTH_RATE_LIMITED": "false", "MFA_REQUIRED_ROLES": "", "REPORTS_WORKERS": "1",
                "PYTHONUNBUFFERED": "1", **extra_env})
    if redis_url:
        _flush_redis(redis_url)
        env["REDIS_URL"] = redis_url
    command = [sys.executable, "-c", SEED, str(agents), str(math.ceil(visitors / agents) + 5), PASSWORD, ORIGIN]
    seeded = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)  # noqa: S603
    if seeded.returncode != 0:
        raise SystemExit(f"seeding failed:\n{seeded.stderr[-3000:]}")
    site_key = seeded.stdout.strip().splitlines()[-1]
    started: list[Server] = []
    for n in range(processes):
        port = free_port()
        own = {**env, "BENCH_STATS": str(tmp / f"statements-{mode}-{processes}-{n}"),
               "BENCH_PROFILE": str(tmp / f"profile-desk-{mode}-{processes}-{n}"),
               "BENCH_PROBE": str(tmp / f"probe-desk-{mode}-{processes}-{n}")}
        log = tmp / f"desk-{mode}-{processes}-{n}.log"
        with log.open("w") as out:
            proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "chat_server.py"),  # noqa: S603
                                     "--port", str(port), "--no-demo"], cwd=ROOT, env=own, stdout=out,
                                    stderr=subprocess.STDOUT)
        _wait_ready(proc, port, "/health", log)
        started.append(Server("desk", proc, port, Path(own["BENCH_STATS"]), url, site_key, own,
                              Path(own["BENCH_PROBE"])))
    first = started[0]
    first.others = started[1:]
    return first


def sign_in(port: int, username: str) -> str:
    import requests

    http = requests.Session()
    page = http.get(f"http://127.0.0.1:{port}/login/", timeout=60)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    answer = http.post(f"http://127.0.0.1:{port}/login/", data={
        "username": username, "password": PASSWORD, "csrf_token": token.group(1) if token else ""}, timeout=60)
    if "/login" in answer.url:
        raise SystemExit(f"{username} could not sign in")
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


# --- the generator's own pauses -------------------------------------------------------------------


class GeneratorProbe:
    """The load generator's own pauses: its event loop's lag (a task that sleeps ``TICK`` seconds
    and notes how late it wakes) and its collections (``gc.callbacks``). A late wake-up delays the
    sends due then and the receipt timestamps of what arrived meanwhile: it shows in both the ack
    and the delivery latency, as a server pause does, so it is measured apart."""

    TICK = 0.002

    def __init__(self) -> None:
        self.lags: list[tuple[float, float]] = []  # (end time, ms late), over 2 ms only
        self.gcs: list[tuple[float, float, int]] = []  # (end time, ms, generation)
        self._gc_start = 0.0
        self._task: asyncio.Task | None = None

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.monotonic()
        else:
            now = time.monotonic()
            self.gcs.append((now, (now - self._gc_start) * 1000, info.get("generation", -1)))

    async def _lag(self) -> None:
        while True:
            began = time.monotonic()
            await asyncio.sleep(self.TICK)
            late = (time.monotonic() - began - self.TICK) * 1000
            if late > 2:
                self.lags.append((time.monotonic(), late))

    def start(self) -> None:
        gc.callbacks.append(self._gc)
        self._task = asyncio.get_running_loop().create_task(self._lag())

    def stop(self) -> None:
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        if self._task is not None:
            self._task.cancel()

    def summary(self, start: float, end: float) -> dict:
        lags = [ms for t, ms in self.lags if start <= t <= end]
        gcs = [ms for t, ms, _ in self.gcs if start <= t <= end]
        return {"gen_lag_max": max(lags, default=0.0), "gen_lag_over_10": sum(1 for x in lags if x > 10),
                "gen_gc_max": max(gcs, default=0.0), "gen_gc_count": len(gcs)}


def server_pauses(path: Path | None, start: float, end: float) -> dict:
    """The server's pauses in [start, end] from its probe file (``benchmarks/chat_probe.py``): for
    each kind (gc, lag, run) the count over ``LOG_MS``, the longest and the sum, in ms."""
    out: dict = {}
    if path is None or not path.exists():
        return out
    events = []
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if start <= event["t"] <= end:
            events.append(event)
    for kind in ("gc", "lag", "run", "commit"):
        mine = [e for e in events if e["kind"] == kind]
        out[kind] = {"count": len(mine), "max": max((e["ms"] for e in mine), default=0.0),
                     "sum": round(sum(e["ms"] for e in mine), 1),
                     "max_cpu": max((e.get("cpu", 0.0) for e in mine), default=0.0),
                     "sum_cpu": round(sum(e.get("cpu", 0.0) for e in mine), 1)}
        if kind == "run" and mine:
            worst = max(mine, key=lambda e: e["ms"])
            out[kind]["worst"] = f"{worst.get('greenlet')} {worst['ms']} ms at\n{worst.get('where', '')}"
        if kind == "gc" and mine:
            out[kind]["gens"] = sorted({e.get("gen") for e in mine})
    return out


# --- the load -----------------------------------------------------------------------------------


@dataclass
class Phase:
    rate: int
    due: dict[str, float] = field(default_factory=dict)
    acked: dict[str, float] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    refused: int = 0
    failed: int = 0
    waiting: set[str] = field(default_factory=set)  # sent (or resent), not answered yet
    reasons: dict[str, int] = field(default_factory=dict)  # refusals by their message
    sent_until: float = 0.0


class Load:
    def __init__(self, server: Server, visitors: int, agents: int) -> None:
        self.server = server
        self.n_visitors, self.n_agents = visitors, agents
        self.visitors: list[SocketClient] = []
        self.agents: list[SocketClient] = []
        self.phase: Phase | None = None
        self.accepted = 0
        self.offers = 0

    def _agent_event(self, agent: SocketClient):  # noqa: ANN202
        def on_event(name: str, payload: object) -> None:
            if name == "message" and isinstance(payload, dict) and self.phase is not None:
                cid = payload.get("client_msg_id") or ""
                if cid in self.phase.due:
                    if cid in self.phase.delivered:
                        self.phase.duplicates += 1
                    else:
                        self.phase.delivered[cid] = time.monotonic()
            elif name == "chat_offer" and isinstance(payload, dict):
                self.offers += 1
                self._accept(agent, payload["conversation_id"])
        return on_event

    def _accept(self, agent: SocketClient, conversation_id: int) -> None:
        # as an agent at the console: an accept refused as busy is clicked again after the wait
        def accepted(ack: object) -> None:
            if isinstance(ack, dict) and ack.get("conversation_id"):
                self.accepted += 1
            elif isinstance(ack, dict) and isinstance(ack.get("retry_after"), int | float):
                asyncio.get_running_loop().call_later(
                    max(1, ack["retry_after"]) + random.random(), self._accept, agent, conversation_id)

        agent.emit("accept", {"conversation_id": conversation_id}, accepted)

    async def connect(self) -> None:
        # agent n and visitor n connect to process n mod the number of processes: with two, most
        # chats have their visitor on one process and their agent on the other (through Redis)
        ports = self.server.ports
        port = ports[0]
        desk = self.server.kind == "desk"
        if desk:
            loop = asyncio.get_running_loop()
            cookies = await asyncio.gather(*[loop.run_in_executor(None, sign_in, port, f"load-agent-{n}")
                                             for n in range(self.n_agents)])
        for n in range(self.n_agents):
            agent = SocketClient("/agent")
            agent.on_event = self._agent_event(agent)
            headers = [(b"cookie", cookies[n].encode())] if desk else []
            auth = {} if desk else {"bench_agent": n, "agents": self.n_agents, "visitors": self.n_visitors}
            await agent.connect(ports[n % len(ports)], auth, headers)
            self.agents.append(agent)
        if desk:  # the console pings every 30 s: an agent not heard from for 90 s is no longer present
            for agent in self.agents:
                await agent.call("status", {"status": "online"})
            self._pinger = asyncio.get_running_loop().create_task(self._ping_agents())
        gate = asyncio.Semaphore(CONNECT_AT_ONCE)

        async def one(n: int) -> SocketClient:
            async with gate:
                auth = {"site_key": self.server.site_key} if desk else {"bench": n}
                for _ in range(20):  # a refusal with retry_after is tried again, as the widget reconnects
                    client = SocketClient("/visitor")
                    try:
                        await client.connect(ports[n % len(ports)], auth, [(b"origin", ORIGIN.encode())])
                        return client
                    except ConnectionError as exc:
                        client.close()
                        if "retry_after" not in str(exc):
                            raise
                        await asyncio.sleep(2)
                raise ConnectionError("a visitor was refused 20 times")

        self.visitors = list(await asyncio.gather(*[one(n) for n in range(self.n_visitors)]))

    async def _ping_agents(self) -> None:
        # each console pings on its own timer, started when it opened: spread over the interval,
        # not all at once (fifty at once made a burst of presence writes no real team makes)
        spacing = 20 / max(1, len(self.agents))
        while True:
            for agent in self.agents:
                await asyncio.sleep(spacing)
                agent.emit("ping", {})

    async def open_chats(self) -> None:
        """Each visitor opens a chat; the desk's agents accept their offers (not measured)."""
        if self.server.kind != "desk":
            return
        gate = asyncio.Semaphore(CONNECT_AT_ONCE)

        async def one(n: int, client: SocketClient) -> None:
            async with gate:
                for _ in range(30):  # a refusal with retry_after is sent again, as the widget's outbox does
                    ack = await client.call("message", {"client_msg_id": f"open-{n}", "text": "你好"}, timeout=120)
                    if isinstance(ack, dict) and isinstance(ack.get("id"), int):
                        return
                    await asyncio.sleep(float((ack or {}).get("retry_after") or 2) + random.random())
                raise SystemExit(f"visitor {n} could not open a chat: {ack}")

        await asyncio.gather(*[one(n, c) for n, c in enumerate(self.visitors)])
        deadline = time.monotonic() + 300
        while self.accepted < self.n_visitors and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if self.accepted < self.n_visitors:
            raise SystemExit(f"only {self.accepted} of {self.n_visitors} chats were accepted in 300 s")

    async def run_phase(self, rate: int, seconds: float, tag: str) -> Phase:
        phase = Phase(rate)
        self.phase = phase
        total = int(rate * seconds)
        loop = asyncio.get_running_loop()

        def send(k: int, due: float) -> None:
            cid = f"{tag}-{k}"
            visitor = self.visitors[k % len(self.visitors)]

            def acked(ack: object) -> None:
                phase.waiting.discard(cid)
                if isinstance(ack, dict) and isinstance(ack.get("id"), int):
                    phase.acked.setdefault(cid, time.monotonic())
                elif isinstance(ack, dict) and isinstance(ack.get("retry_after"), int | float):
                    phase.refused += 1
                    reason = str(ack.get("error"))[:60]
                    phase.reasons[reason] = phase.reasons.get(reason, 0) + 1
                    tries[0] += 1  # as the widget: the wait doubles with each refusal, plus a random second
                    wait = min(30, max(1, ack["retry_after"]) * 2 ** (tries[0] - 1))
                    loop.call_later(wait + random.random(), resend)
                else:
                    phase.failed += 1

            def resend() -> None:
                phase.waiting.add(cid)
                visitor.emit("message", payload, acked)

            payload = {"client_msg_id": cid, "text": f"load {k}"}
            tries = [0]
            phase.due[cid] = due
            resend()

        start = time.monotonic() + 0.05
        for k in range(total):
            due = start + k / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            send(k, due)
        phase.sent_until = time.monotonic()
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline and (len(phase.delivered) < total or len(phase.acked) < total):
            await asyncio.sleep(0.1)
        self.phase = None
        return phase

    def close(self) -> None:
        if getattr(self, "_pinger", None) is not None:
            self._pinger.cancel()
        for client in self.visitors + self.agents:
            client.close()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def summarise(phase: Phase, seconds: float, cpu: float, statements: int, stored: int | None) -> dict:
    start = min(phase.due.values())
    latencies = [(phase.delivered[c] - phase.due[c]) * 1000 for c in phase.delivered]
    acks = [(phase.acked[c] - phase.due[c]) * 1000 for c in phase.acked]
    last = max(phase.delivered.values(), default=start)
    # lost: stored (acked) but never delivered, or never answered at all (no ack, no error);
    # retrying: refused with retry_after and not stored yet when the grace period ended
    lost = sum(1 for c in phase.acked if c not in phase.delivered) + len(phase.waiting)
    retrying = sum(1 for c in phase.due if c not in phase.acked and c not in phase.waiting)
    return {"offered": phase.rate, "sent": len(phase.due),
            "delivered_rate": len(phase.delivered) / max(seconds, last - start),
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99),
            "max": max(latencies, default=math.nan), "ack_p50": percentile(acks, 50),
            "ack_p99": percentile(acks, 99), "refused": phase.refused, "failed": phase.failed, "lost": lost,
            "retrying": retrying,
            "duplicates": phase.duplicates, "stored": stored, "reasons": phase.reasons,
            "sql_per_message": statements / len(phase.due) if phase.due else 0, "cpu": cpu}


def chat_states(server: Server) -> str:
    """The desk's conversations by status and its agents by status, e.g. ``active 1000; online 50``."""
    if server.kind != "desk":
        return ""
    from sqlalchemy import create_engine, text

    engine = create_engine(server.database_url)
    with engine.connect() as conn:
        chats = conn.execute(text("SELECT status, count(*) FROM chat_conversation GROUP BY status")).all()
        agents = conn.execute(text("SELECT status, count(*) FROM chat_agent GROUP BY status")).all()
    engine.dispose()
    return "; ".join(", ".join(f"{status} {count}" for status, count in sorted(rows)) for rows in (chats, agents))


def count_stored(server: Server, tag: str) -> int | None:
    if server.kind != "desk":
        return None
    from sqlalchemy import create_engine, text

    engine = create_engine(server.database_url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM chat_message WHERE client_msg_id LIKE :p"),
                             {"p": f"{tag}-%"}).scalar()
    engine.dispose()
    return int(count or 0)


class CpuQuota:
    """Each desk process in a cgroup of its own limited to *fraction* of one core (cgroup v1's
    ``cpu`` controller or v2's ``cpu.max``; needs root), over a 10 ms period so that a process out
    of its share waits at most a few milliseconds. With ``--processes 1,2`` on a small machine it
    gives each desk process a fixed share, as a machine of its own would, and leaves the rest of
    the cores to PostgreSQL, Redis and the load generator."""

    PERIOD_US = 10_000

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self.groups: list[Path] = []
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        if v2.exists() and "cpu" in v2.read_text().split():
            self.root, self.v2 = Path("/sys/fs/cgroup"), True
            (self.root / "cgroup.subtree_control").write_text("+cpu")
        elif Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists():
            self.root, self.v2 = Path("/sys/fs/cgroup/cpu"), False
        else:
            raise SystemExit("--cpu-quota needs the cgroup cpu controller (v1 or v2) and root")

    def apply(self, server: Server) -> None:
        quota = int(self.fraction * self.PERIOD_US)
        for server_process in server.group:
            group = self.root / f"chat-load-{os.getpid()}-{server_process.proc.pid}"
            group.mkdir(exist_ok=True)
            if self.v2:
                (group / "cpu.max").write_text(f"{quota} {self.PERIOD_US}")
            else:
                (group / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
            (group / "cgroup.procs").write_text(str(server_process.proc.pid))
            self.groups.append(group)

    def release(self) -> None:
        for group in self.groups:
            for pid in (group / "cgroup.procs").read_text().split():
                try:
                    (self.root / "cgroup.procs").write_text(pid)
                except OSError:
                    pass  # the process ended
            try:
                group.rmdir()
            except OSError:
                pass
        self.groups.clear()


async def settle(server: Server, quiet: float = 0.25, longest: float = 120) -> None:
    """Wait until the servers have finished the set-up's work (the notices of a thousand new
    chats, deferred routing): until they used under *quiet* of a core over a second, or
    *longest* seconds. A run started on that backlog measured the set-up, not the rate."""
    began = time.monotonic()
    while time.monotonic() - began < longest:
        cpu = server.cpu_seconds()
        await asyncio.sleep(1)
        if server.cpu_seconds() - cpu < quiet * len(server.group):
            break
    print(f"  {server.kind}: quiet after {time.monotonic() - began:.1f} s", flush=True)


async def measure(server: Server, args: argparse.Namespace) -> list[dict]:
    load = Load(server, args.visitors, args.agents)
    began = time.monotonic()
    await load.connect()
    await load.open_chats()
    print(f"  {server.kind}: {args.visitors} visitors and {args.agents} agents ready in "
          f"{time.monotonic() - began:.1f} s (server RSS {server.rss_mib():.0f} MiB)", flush=True)
    await settle(server)
    quota = None
    if args.cpu_quota and server.kind == "desk":
        quota = CpuQuota(args.cpu_quota)
        quota.apply(server)
        print(f"  {server.kind}: each server process limited to {args.cpu_quota:.2f} of a core", flush=True)
    rows = []
    probe = GeneratorProbe()
    probe.start()
    if args.generator_gc == "freeze":  # the generator's own collections out of the measured phases
        gc.collect()
        gc.freeze()
        gc.disable()
    if args.profile and server.kind == "desk":
        server.proc.send_signal(signal.SIGUSR1)
    try:
        for rate in args.rates:
            runs = []
            for run in range(args.repeat):
                tag = f"r{rate}-{run}"
                if run == 0 and server.kind == "desk":  # a chat back in the queue would measure routing instead
                    print(f"  {server.kind} chats; agents: {chat_states(server)}", flush=True)
                statements, cpu = server.statements(), server.cpu_seconds()
                clock, mine, services = time.monotonic(), _own_cpu(), services_cpu()
                phase = await load.run_phase(rate, args.seconds, tag)
                wall = time.monotonic() - clock
                cpu_seconds = server.cpu_seconds() - cpu
                row = summarise(phase, args.seconds, cpu_seconds / wall * 100, server.statements() - statements,
                                count_stored(server, tag))
                # server CPU per message: less sensitive than rates to what else the machine runs
                row["cpu_ms_per_message"] = cpu_seconds * 1000 / max(1, len(phase.due))
                row["generator_cpu"] = (_own_cpu() - mine) / wall * 100
                used = services_used(services)
                row["postgres_cpu"] = used["postgres"] / wall * 100
                row["redis_cpu"] = used["redis-server"] / wall * 100
                began = min(phase.due.values())
                ended = max([*phase.delivered.values(), *phase.acked.values(), phase.sent_until])
                row.update(probe.summary(began, ended))
                time.sleep(0.5)  # the server's probe file is written every 0.25 s
                row["pauses"] = server_pauses(server.probe, began, ended)
                runs.append(row)
                print(f"  {server.kind} {rate:>5}/s run {run + 1}: " + format_row(row), flush=True)
                print("      " + format_pauses(row), flush=True)
                if args.generator_gc == "freeze":
                    gc.collect()
            rows.append(spread(runs))
            if args.repeat > 1:
                print(f"  {server.kind} {rate:>5}/s over {args.repeat} runs (min / median / max): "
                      + format_spread(rows[-1]), flush=True)
            if args.until_overloaded and len(rows) >= 2 and not any(held(row, max(HELD_P99_MS)) for row in rows[-2:]):
                print(f"  {server.kind}: two rates in a row not held, the higher rates are skipped", flush=True)
                break
    finally:
        probe.stop()
        if quota is not None:
            quota.release()
        if args.profile and server.kind == "desk":
            server.proc.send_signal(signal.SIGUSR2)
            time.sleep(3)
            print_profile(Path(server.env["BENCH_PROFILE"]), args.profile)
        load.close()
        gc.enable()
    return rows


def print_profile(path: Path, copy_to: str) -> None:
    """The desk's profile over the measured runs: the functions with the most own time."""
    import pstats
    import shutil

    if not path.exists():
        print("  (no profile written)")
        return
    shutil.copy(path, copy_to)
    sent = Path(str(path) + ".sent")
    if sent.exists():
        print(f"  packets the desk sent over the runs, by event: {sent.read_text()}")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(40)


SPREAD = ("delivered_rate", "p50", "p95", "p99", "max", "ack_p50", "ack_p99", "cpu", "sql_per_message",
          "cpu_ms_per_message", "generator_cpu", "postgres_cpu", "redis_cpu")
SUMS = ("sent", "refused", "failed", "lost", "retrying", "duplicates")


HELD_SHARE = 0.99  # a rate is held when every run delivered this share of it, nothing was lost,
HELD_P99_MS = (50, 500)  # and the runs' median p99 was within the chat goal's 50 ms (or, looser, 500 ms)


def highest_held(rows: list[dict], p99_ms: float) -> int | None:
    """The highest offered rate of *rows* (``spread`` rows) held with a median p99 within *p99_ms*:
    the capacity of a set-up at that latency. Delivered rates past overload say less: refused
    messages wait out a doubling back-off, so what gets through over a run falls as the offer rises."""
    return max((row["offered"] for row in rows if held(row, p99_ms)), default=None)


def held(row: dict, p99_ms: float) -> bool:
    """Whether the runs of a ``spread`` row held its offered rate with a median p99 within *p99_ms*."""
    return (row["delivered_rate"][0] >= HELD_SHARE * row["offered"] and row["p99"][1] <= p99_ms
            and row["lost"] == 0)


def spread(runs: list[dict]) -> dict:
    """Runs of one rate: min, median and max of each figure; counts summed over the runs."""
    row = {"offered": runs[0]["offered"], "runs": len(runs)}
    for key in SPREAD:
        values = [r[key] for r in runs]
        row[key] = (min(values), statistics.median(values), max(values))
    for key in SUMS:
        row[key] = sum(r[key] for r in runs)
    stored = [r["stored"] for r in runs]
    row["stored"] = None if None in stored else sum(stored)
    return row


def format_spread(row: dict) -> str:
    def three(key: str, digits: int = 0) -> str:
        return " / ".join(f"{v:.{digits}f}" for v in row[key])

    stored = "" if row["stored"] is None else f", stored {row['stored']} of {row['sent']}"
    return (f"delivered {three('delivered_rate')}/s; p50 {three('p50', 1)}, p99 {three('p99', 1)},"
            f" max {three('max', 1)} ms; ack p99 {three('ack_p99', 1)} ms; CPU {three('cpu')} %"
            f" ({three('cpu_ms_per_message', 2)} ms a message); load generator {three('generator_cpu')} %,"
            f" PostgreSQL {three('postgres_cpu')} %, Redis {three('redis_cpu')} %;"
            f" SQL/msg {three('sql_per_message', 2)}; refused {row['refused']}, lost {row['lost']},"
            f" still retrying {row['retrying']}, duplicated {row['duplicates']}{stored}")


def format_pauses(row: dict) -> str:
    """The run's pauses: the generator's (loop lag, collections) and the server's (probe)."""
    parts = [f"generator: loop lag max {row['gen_lag_max']:.1f} ms ({row['gen_lag_over_10']} over 10 ms),"
             f" {row['gen_gc_count']} collections, longest {row['gen_gc_max']:.1f} ms"]
    pauses = row.get("pauses") or {}
    for kind, label in (("lag", "hub lag"), ("gc", "collections"), ("run", "long greenlet runs"),
                        ("commit", "SQLite commits")):
        if kind in pauses:
            p = pauses[kind]
            parts.append(f"server {label} >5 ms: {p['count']}, max {p['max']:.1f}, sum {p['sum']:.0f} ms"
                         f" (CPU max {p['max_cpu']:.1f}, sum {p['sum_cpu']:.0f})"
                         + (f" (gen {p['gens']})" if p.get("gens") else ""))
    text = "; ".join(parts)
    if row.get("reasons"):
        text += f"; refusals: {row['reasons']}"
    worst = (pauses.get("run") or {}).get("worst")
    if worst and (pauses["run"]["max"] > 20):
        text += "\n      longest run: " + worst.replace("\n", "\n        ")
    return text


def services_cpu() -> dict[int, tuple[str, float]]:
    """User + system CPU seconds of each PostgreSQL and Redis server process, by pid (what the
    desk's database and message queue cost, on the same cores)."""
    found: dict[int, tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        name = head.split("(", 1)[1]
        for service in ("postgres", "redis-server"):
            if name.startswith(service):
                fields = rest.split()
                found[int(stat.parent.name)] = (service, (int(fields[11]) + int(fields[12])) / tick)
    return found


def services_used(before: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds each service used since *before* (a process started since counts whole; one
    that ended since is not counted: the desk's pooled connections live through a run)."""
    used = {"postgres": 0.0, "redis-server": 0.0}
    for pid, (service, seconds) in services_cpu().items():
        used[service] += seconds - (before[pid][1] if pid in before else 0.0)
    return used


def _own_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def format_row(row: dict) -> str:
    stored = "" if row["stored"] is None else f" stored {row['stored']}"
    return (f"delivered {row['delivered_rate']:.0f}/s, p50 {row['p50']:.1f} p95 {row['p95']:.1f} "
            f"p99 {row['p99']:.1f} max {row['max']:.1f} ms, ack p50 {row['ack_p50']:.1f} p99 {row['ack_p99']:.1f} ms,"
            f" refused {row['refused']} (still retrying {row['retrying']}) failed {row['failed']} lost {row['lost']}"
            f" dup {row['duplicates']}{stored},"
            f" SQL/msg {row['sql_per_message']:.2f}, CPU {row['cpu']:.0f} %"
            f" = {row['cpu_ms_per_message']:.2f} ms a message"
            f" (load generator {row['generator_cpu']:.0f} %, PostgreSQL {row.get('postgres_cpu', 0):.0f} %,"
            f" Redis {row.get('redis_cpu', 0):.0f} %)")


async def idle_connections(server: Server, count: int) -> dict:
    before = server.rss_mib()
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    clients: list[SocketClient] = []
    failures: list[str] = []

    async def one(n: int) -> None:
        async with gate:
            client = SocketClient("/visitor")
            auth = {"site_key": server.site_key} if server.kind == "desk" else {"bench": n}
            try:
                await client.connect(server.port, auth, [(b"origin", ORIGIN.encode())], timeout=120)
                clients.append(client)
            except (TimeoutError, ConnectionError, OSError) as exc:
                failures.append(str(exc))
                client.close()

    began = time.monotonic()
    await asyncio.gather(*[one(n) for n in range(count)])
    took = time.monotonic() - began
    await asyncio.sleep(2)
    after = server.rss_mib()
    for client in clients:
        client.close()
    return {"connected": len(clients), "failed": len(failures), "first_failure": failures[:1], "seconds": took,
            "rss_before": before, "rss_after": after,
            "kib_per_connection": (after - before) * 1024 / max(1, len(clients))}


def main() -> None:
    parser = argparse.ArgumentParser(description="Chat load benchmark (see the module docstring).")
    parser.add_argument("--target", choices=["both", "desk", "relay"], default="both")
    parser.add_argument("--async-mode", default=os.environ.get("ASYNC_MODE", "gevent"),
                        choices=["gevent", "eventlet", "threading"])
    parser.add_argument("--database-url", default=None, help="PostgreSQL scratch database (dropped and re-created)")
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rates", default="100,250,500,1000")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=5, help="runs per rate (min / median / max reported)")
    parser.add_argument("--idle", type=int, default=0, help="only connect this many idle widgets and report memory")
    parser.add_argument("--keep-logs", default=None, help="copy the servers' logs into this folder")
    parser.add_argument("--generator-gc", choices=["freeze", "on"], default="freeze",
                        help="freeze: the generator collects only between runs (its own pauses out of the figures)")
    parser.add_argument("--profile", default=None, help="profile the desk over the runs, save the profile here")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the desk server (repeatable)")
    parser.add_argument("--processes", default=None,
                        help="e.g. 1,2: the desk with that many server processes, each in turn, sharing the database "
                             "and --redis-url (the relay is not run)")
    parser.add_argument("--redis-url", default=None,
                        help="Redis for --processes (a scratch database number: it is emptied before each start)")
    parser.add_argument("--until-overloaded", action="store_true",
                        help="skip a set-up's higher rates once two rates in a row were not held")
    parser.add_argument("--cpu-quota", type=float, default=0,
                        help="limit each desk server process to this share of one core over the measured runs "
                             "(e.g. 0.5; cgroups, root): with --processes, a share of its own for each")
    args = parser.parse_args()
    if not 0 <= args.cpu_quota <= 1:
        raise SystemExit("--cpu-quota is a share of one core, between 0 and 1")
    args.rates = [int(r) for r in args.rates.split(",") if r]
    args.processes = [int(n) for n in args.processes.split(",") if n] if args.processes else []
    if args.processes and (not args.redis_url or not all(0 < n <= 8 for n in args.processes)):
        raise SystemExit("--processes takes 1 to 8 processes per step and needs --redis-url")
    if not (0 < args.visitors <= MAX_CLIENTS and 0 < args.agents <= 500 and args.idle <= MAX_CLIENTS
            and all(0 < r <= 5000 for r in args.rates) and 0 < args.seconds <= 60 and 0 < args.repeat <= 10):
        raise SystemExit("out of bounds: at most 20,000 clients, 5,000 msg/s and 60 s per rate")
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    extra_env = dict(item.split("=", 1) for item in args.env)
    print(f"chat load: {args.async_mode}, database {'PostgreSQL' if args.database_url else 'SQLite'}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    results: dict[str, list[dict] | dict] = {}
    with tempfile.TemporaryDirectory(prefix="chat-load-") as folder:
        tmp = Path(folder)
        if args.processes:
            targets = [f"desk x{n}" for n in args.processes]
        else:
            targets = ["relay", "desk"] if args.target == "both" else [args.target]
        for target in targets:
            if target.startswith("desk x"):
                server = start_desk(args.async_mode, tmp, args.database_url, args.agents, args.visitors, extra_env,
                                    processes=int(target[6:]), redis_url=args.redis_url)
                print(f"  {target}: {len(server.group)} process(es) on ports {server.ports}", flush=True)
            elif target == "relay":
                server = start_relay(args.async_mode, tmp)
            else:
                server = start_desk(args.async_mode, tmp, args.database_url, args.agents, args.visitors, extra_env)
            try:
                if args.idle:
                    results[target] = asyncio.run(idle_connections(server, args.idle))
                    print(f"  {target}: {results[target]}", flush=True)
                else:
                    results[target] = asyncio.run(measure(server, args))
            finally:
                server.stop()
                if args.keep_logs:
                    import shutil

                    Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
                    for log in tmp.glob("*.log"):
                        shutil.copy(log, Path(args.keep_logs) / log.name)
    if not args.idle and len(args.processes) > 1:
        one, *more = args.processes
        print(f"delivered throughput against {one} process(es) (medians):")
        for n in more:
            for base, other in zip(results[f"desk x{one}"], results[f"desk x{n}"], strict=False):
                ratio = other["delivered_rate"][1] / base["delivered_rate"][1]
                print(f"  {base['offered']:>5}/s offered: {n} processes {other['delivered_rate'][1]:.0f} / "
                      f"{one} {base['delivered_rate'][1]:.0f} = {ratio:.2f}x;"
                      f" p99 {other['p99'][1]:.1f} / {base['p99'][1]:.1f} ms")
        for p99_ms in HELD_P99_MS:
            capacity = {n: highest_held(results[f"desk x{n}"], p99_ms) for n in args.processes}
            print(f"highest offered rate held (every run delivered >= {HELD_SHARE:.0%} of it, 0 lost, median p99 <="
                  f" {p99_ms} ms): " + ", ".join(f"{n} process(es) {capacity[n] or 'none'}/s" for n in args.processes))
            for n in more:
                if capacity[one] and capacity[n]:
                    print(f"  {n} / {one}: {capacity[n] / capacity[one]:.2f}x")
    elif not args.idle and len(results) == 2:
        print("desk / relay delivered throughput:")
        for desk, relay in zip(results["desk"], results["relay"], strict=True):
            ratio = desk["delivered_rate"][1] / relay["delivered_rate"][1] * 100
            print(f"  {desk['offered']:>5}/s offered (medians): {desk['delivered_rate'][1]:.0f} / "
                  f"{relay['delivered_rate'][1]:.0f} = {ratio:.0f} %;"
                  f" p99 {desk['p99'][1]:.1f} / {relay['p99'][1]:.1f} ms")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(json.dumps({"async_mode": args.async_mode, "results": results}, default=str))


if __name__ == "__main__":
    main()
