"""The real server never stalls: ``run.py`` started as a user would (its default async mode, demo
data) keeps answering ``/health`` and carrying a chat while the largest PDF job and a large
voucher import run, and refuses hostile import files without growing.

The server runs on the run's kind of database (a SQLite file, or a ``<name>_hub`` PostgreSQL
database beside ``TEST_DATABASE_URL``). With ``TEST_REDIS_URL`` it gets ``REDIS_URL``: background
jobs then go to RQ, and this module starts two RQ workers (``python -m reports.worker rq``) beside
the server, as a deployment does; without, the server's own local workers render them.

Liveness limits are generous (``WAIT`` seconds per answer): they say "still answering", not how
fast; the latencies seen are printed (``pytest -s``).
"""

from __future__ import annotations

import csv
import io
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
import requests
import socketio
from pypdf import PdfReader
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.servers import Events, drop_database, events_client, own_database, server_env, server_redis_url, start
from tests.test_import_limits import zip_bomb

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Hub-Realserver-2026"
ORIGIN = "http://127.0.0.1:5001"  # the demo site always allows the demo host page
WAIT = 10.0
JOB_SECONDS = 900


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    engine: Engine
    site_key: str
    logs: Path
    helpers: list[subprocess.Popen] = field(default_factory=list)

    def scalar(self, sql: str, **params: object) -> object:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def first(self, sql: str, **params: object) -> tuple:
        with self.engine.connect() as conn:
            return tuple(conn.execute(text(sql), params).first())

    def memory_kb(self, name: str) -> int:
        """``VmRSS`` or ``VmHWM`` (peak) of the server process, in kB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(rf"^{name}:\s+(\d+) kB", status, re.M).group(1))


def _stop_all(procs: list[subprocess.Popen]) -> None:
    """Stop the RQ workers: a first SIGTERM asks for a warm shutdown (an idle worker may wait for
    its queue poll to end), a second one, a second later, for a cold one."""
    for signal_number in range(2):
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=1 if signal_number == 0 else 15)
            except subprocess.TimeoutExpired:
                if signal_number:
                    proc.kill()
                    proc.wait()


@pytest.fixture(autouse=True)
def _fresh_database() -> Iterator[None]:
    """These tests use the server's database, not the unit tests' one (overrides tests/conftest.py)."""
    yield


def _env(tmp: Path, database_url: str, **values: str) -> dict[str, str]:
    return server_env(INSTANCE_PATH=str(tmp / "instance"), DATABASE_URL=database_url, DEMO_PASSWORD=PASSWORD,
                      PYTHONUNBUFFERED="1", DEMO_HOST_PORT="0", MFA_REQUIRED_ROLES="",
                      AUTH_RATE_LIMIT="100 per minute", **values)  # sign-ins here are not what is tested


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hub")
    database_url, admin = own_database(tmp, "hub")
    env = _env(tmp, database_url)
    redis_url = server_redis_url("hub")
    if redis_url:
        env["REDIS_URL"] = redis_url
    engine = create_engine(database_url)
    helpers: list[subprocess.Popen] = []
    try:
        with start(env, tmp / "server.log") as started:
            site_key = re.search(r"demo chat site key: (\S+)", started.output()).group(1)
            if redis_url:
                from redis import Redis
                from rq import Queue

                Queue("reports", connection=Redis.from_url(redis_url)).empty()  # nothing left from earlier runs
                for n in range(2):
                    with (tmp / f"rq-{n}.log").open("w") as out:
                        helpers.append(subprocess.Popen([sys.executable, "-m", "reports.worker", "rq", "--url",
                                                         redis_url], cwd=ROOT, env=env, stdout=out,
                                                        stderr=subprocess.STDOUT))
            yield Server(started.url, started.process, engine, site_key, tmp, helpers)
    finally:
        _stop_all(helpers)
        engine.dispose()
        drop_database(database_url, admin)


# --- people -------------------------------------------------------------------------------------


def sign_in(url: str, username: str) -> requests.Session:
    http = requests.Session()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', http.get(f"{url}/login/", timeout=WAIT).text)
    assert token, "no sign-in form"
    answer = http.post(f"{url}/login/", data={"username": username, "password": PASSWORD,
                                              "csrf_token": token.group(1)}, timeout=WAIT)
    assert "/login" not in answer.url, f"{username} could not sign in"
    # API writes made with the browser session carry the page's CSRF token and the site's origin,
    # as the desk's own pages send them.
    page = http.get(f"{url}/voucherimport/", timeout=WAIT)  # the import page, for those who may import
    api_token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text) if page.ok else None
    if api_token:
        http.headers.update({"X-CSRFToken": api_token.group(1), "Origin": url})
    return http


def visitor(url: str, site_key: str) -> tuple[socketio.Client, Events]:
    events = Events()
    client = events_client("/visitor", events)
    client.connect(url, namespaces=["/visitor"], headers={"Origin": ORIGIN}, auth={"site_key": site_key},
                   transports=["polling"], wait_timeout=WAIT)
    return client, events


def agent(url: str, http: requests.Session) -> tuple[socketio.Client, Events]:
    events = Events()
    client = events_client("/agent", events)
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    client.connect(url, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"],
                   wait_timeout=WAIT)
    client.emit("status", {"status": "online"}, namespace="/agent")
    return client, events


def say(client: socketio.Client, words: str, namespace: str = "/visitor", **extra: object) -> dict:
    return client.call("message", {"client_msg_id": str(uuid.uuid4()), "text": words, **extra},
                       namespace=namespace, timeout=WAIT)


# --- the tests ------------------------------------------------------------------------------------


def _import_file(rows: int, day: date) -> bytes:
    """*rows* voucher lines (two a voucher: cash received as revenue) dated *day*."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["日期", "凭证字", "凭证号", "摘要", "科目编码", "借方金额", "贷方金额"])
    for n in range(rows // 2):
        amount = f"{100 + n % 900}.{n % 100:02d}"
        writer.writerow([day.isoformat(), "记", n + 1, f"批量导入 {n}", "1001", amount, ""])
        writer.writerow([day.isoformat(), "记", n + 1, f"批量导入 {n}", "5001", "", amount])
    return out.getvalue().encode("utf-8-sig")


def test_health_and_chat_keep_answering_while_the_largest_pdf_and_an_import_run(server: Server) -> None:
    today = date.today()
    manager = sign_in(server.url, "manager")
    desk, desk_events = agent(server.url, sign_in(server.url, "agent1"))
    guest, guest_events = visitor(server.url, server.site_key)
    guest_events.wait_for(("session",))
    conversation_id = say(guest, "你好，想问问代理记账")["conversation_id"]
    desk_events.wait_for(("chat_offer", "chat_request"), lambda p: p.get("conversation_id") == conversation_id)
    accepted = desk.call("accept", {"conversation_id": conversation_id}, namespace="/agent", timeout=WAIT)
    assert accepted.get("conversation_id") == conversation_id, accepted

    # The largest PDF: every voucher of this year of the client whose books have the most lines.
    largest, lines = server.first(
        "SELECT v.client_id, count(*) FROM ledger_voucher_line l JOIN ledger_voucher v ON v.id = l.voucher_id "
        "WHERE v.period >= :first GROUP BY v.client_id ORDER BY count(*) DESC", first=today.year * 100 + 1)
    assert lines > 200, "the demo books should hold a year of vouchers"
    started = manager.get(f"{server.url}/reports/vouchers.pdf?client_id={largest}&from={today.year}-01"
                          f"&to={today:%Y-%m}", headers={"Accept": "application/json"}, timeout=60)
    assert started.status_code == 202, started.text[:300]
    job_url = server.url + started.json()["job_url"]

    # A large import at the same time: the most rows a file may have, into this (open) month.
    other = server.scalar("SELECT client_id FROM ledger_book WHERE client_id <> :c ORDER BY client_id", c=largest)
    vouchers_before = server.scalar("SELECT count(*) FROM ledger_voucher WHERE client_id = :c", c=other)
    imported: dict = {}

    def run_import() -> None:
        answer = manager.post(f"{server.url}/api/v1/voucher/import", data={"client_id": str(other)},
                              files={"file": ("year.csv", _import_file(2000, today))}, timeout=600)
        imported.update(status=answer.status_code, body=answer.json(), at=time.monotonic())

    importer = threading.Thread(target=run_import)
    importer.start()

    health, chat, during_job, during_import = [], [], 0, 0
    deadline = time.monotonic() + JOB_SECONDS
    while True:
        state = manager.get(job_url, timeout=WAIT * 3).json()
        if state["status"] in ("done", "failed") and not importer.is_alive():
            break
        assert time.monotonic() < deadline, f"the job did not finish in {JOB_SECONDS} s: {state}"
        during_job += state["status"] in ("queued", "running")
        during_import += importer.is_alive()
        begin = time.monotonic()
        assert requests.get(f"{server.url}/health", timeout=WAIT).status_code == 200
        health.append(time.monotonic() - begin)
        begin = time.monotonic()
        sent = say(guest, f"还在吗？{len(chat)}")
        assert "id" in sent, sent  # stored and acknowledged, not refused
        desk_events.wait_for(("message",), lambda m, i=sent["id"]: m.get("id") == i)  # the agent got it
        chat.append(time.monotonic() - begin)
        time.sleep(0.3)
    importer.join()

    print(f"\n/health while busy: n={len(health)} median {statistics.median(health) * 1000:.0f} ms, "
          f"max {max(health) * 1000:.0f} ms; visitor message to agent: median {statistics.median(chat) * 1000:.0f} "
          f"ms, max {max(chat) * 1000:.0f} ms; rounds during the job {during_job}, during the import {during_import}")
    assert during_job >= 1 and during_import >= 1  # the checks ran while both were at work
    assert state["status"] == "done", state
    document = manager.get(server.url + state["download_url"], timeout=60)
    assert document.status_code == 200 and document.headers["Content-Type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(document.content)).pages) == state["pages"] > 20
    assert imported["status"] == 201, imported["body"]
    assert imported["body"]["imported"] == 1000
    assert server.scalar("SELECT count(*) FROM ledger_voucher WHERE client_id = :c", c=other) == vouchers_before + 1000
    guest.disconnect()
    desk.disconnect()


def test_hostile_imports_are_refused_and_the_server_stays_small(server: Server) -> None:
    manager = sign_in(server.url, "manager")
    client_id = server.scalar("SELECT min(client_id) FROM ledger_book")
    vouchers = server.scalar("SELECT count(*) FROM ledger_voucher")
    bomb = zip_bomb(300 * 1024 * 1024)  # about 300 KB that unpack to 300 MB
    wide = "日期,凭证号,摘要,科目编码,借方金额,贷方金额\n".encode() + b"," * 1_000_000 + b"x\n"
    peak_before = server.memory_kb("VmHWM")
    for name, data, status in (("bomb.xlsx", bomb, 413), ("wide.csv", wide, 422)):
        began = time.monotonic()
        answer = manager.post(f"{server.url}/api/v1/voucher/import", data={"client_id": str(client_id)},
                              files={"file": (name, data)}, timeout=120)
        assert answer.status_code == status, answer.text[:300]
        assert answer.json()["rows"][0]["row"] == 0
        assert requests.get(f"{server.url}/health", timeout=WAIT).status_code == 200
        print(f"\n{name}: {len(data) // 1024} KB refused with {status} in {time.monotonic() - began:.2f} s")
    grown_mb = (server.memory_kb("VmHWM") - peak_before) / 1024
    print(f"server peak memory grew by {grown_mb:.1f} MB")
    assert grown_mb < 64  # parsing in the server process itself would add hundreds of MB
    assert server.scalar("SELECT count(*) FROM ledger_voucher") == vouchers


@pytest.fixture(scope="module")
def eventlet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The same server in the other green mode, eventlet, on SQLite and without Redis (so that
    large PDFs go through its own local workers)."""
    tmp = tmp_path_factory.mktemp("hub-eventlet")
    database_url = f"sqlite:///{tmp / 'hub.db'}"
    engine = create_engine(database_url)
    try:
        with start(_env(tmp, database_url, ASYNC_MODE="eventlet"), tmp / "server.log") as started:
            yield Server(started.url, started.process, engine, "", tmp)
    finally:
        engine.dispose()


def test_under_eventlet_a_large_pdf_job_finishes_while_health_answers(eventlet_server: Server) -> None:
    today = date.today()
    manager = sign_in(eventlet_server.url, "manager")
    client_id = eventlet_server.scalar("SELECT min(client_id) FROM ledger_book")
    started = manager.get(f"{eventlet_server.url}/reports/vouchers.pdf?client_id={client_id}&from={today.year}-01"
                          f"&to={today:%Y-%m}", headers={"Accept": "application/json"}, timeout=60)
    assert started.status_code == 202, started.text[:300]
    job_url = eventlet_server.url + started.json()["job_url"]
    deadline = time.monotonic() + JOB_SECONDS
    while (state := manager.get(job_url, timeout=WAIT * 3).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, state
        assert requests.get(f"{eventlet_server.url}/health", timeout=WAIT).status_code == 200
        time.sleep(0.5)
    assert state["status"] == "done", state
    assert state["chunks_done"] == state["chunks_total"] > 1
    document = manager.get(eventlet_server.url + state["download_url"], timeout=60)
    assert len(PdfReader(io.BytesIO(document.content)).pages) == state["pages"]
    small = manager.get(f"{eventlet_server.url}/reports/trial-balance.pdf?client_id={client_id}&period={today:%Y-%m}",
                        timeout=60)
    assert small.status_code == 200 and small.content.startswith(b"%PDF")
