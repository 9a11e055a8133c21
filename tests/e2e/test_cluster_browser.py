"""The cluster as an operator starts it (``scripts/cluster.sh``: two servers, an RQ worker and nginx
in front, on PostgreSQL and a Redis of the test's own), used through the proxy.

- A visitor connects through nginx as the widget does (long-polling, then the upgrade to a
  WebSocket): the proxy keeps the connection on one server and passes the upgrade; an agent
  connected straight to the *other* server talks with that visitor through Redis.
- In Chromium: the widget on the demo website talks to the desk through the proxy, and the agent
  console runs on the other process; a message goes each way.

The cluster needs PostgreSQL: on the suite's SQLite run the module is skipped with a message.
nginx comes from ``scripts/setup.sh --test``; under ``CI`` its absence is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from tests.servers import (
    Events,
    RedisServer,
    drop_database,
    events_client,
    free_port,
    own_database,
    server_env,
    sign_in,
)

from .conftest import ROOT, _ci

PASSWORD = "Cluster-Pass-2026"
START_SECONDS = 400  # set-up check, migrations, demo data and a second server on a loaded machine
WIDGET = "#bookkeeping-desk-chat"

if not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"):
    pytest.skip("the cluster runs on PostgreSQL: these tests run with a PostgreSQL TEST_DATABASE_URL",
                allow_module_level=True)


def _consecutive_free_ports() -> int:
    """A port *p* with *p* and *p + 1* free (the two servers' ports)."""
    for _ in range(50):
        port = free_port()
        if port < 65535:
            try:
                with __import__("socket").socket() as probe:
                    probe.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise AssertionError("no two consecutive free ports")


@dataclass
class Cluster:
    proxy: str
    servers: list[str]
    demo: str
    folder: Path
    engine: Any

    def upstream_of(self, path_part: str) -> set[str]:
        """The servers (``http://127.0.0.1:<port>``) nginx sent the requests whose line has *path_part* to."""
        log = (self.folder / "logs" / "nginx-access.log").read_text()
        return {f"http://{m}" for m in re.findall(rf"{re.escape(path_part)}.* upstream=(\S+)", log)}


@pytest.fixture(autouse=True)
def _fresh_database() -> Iterator[None]:
    yield


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        message = "nginx is missing (scripts/setup.sh --test installs it)"
        if _ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("cluster")
    database_url, admin = own_database(tmp, "cl")
    redis = RedisServer(free_port(), tmp / "redis.log")
    redis.start()
    base, proxy, demo = _consecutive_free_ports(), free_port(), free_port()
    env = server_env(N="2", BASE_PORT=str(base), PROXY_PORT=str(proxy), DEMO_HOST_PORT=str(demo),
                     DATABASE_URL=database_url, REDIS_URL=redis.url, CLUSTER_DIR=str(tmp / "cluster"),
                     DEMO_PASSWORD=PASSWORD, START_SECONDS=str(START_SECONDS), PYTHONUNBUFFERED="1")
    log = tmp / "cluster.log"
    with log.open("w") as out:
        process = subprocess.Popen(["bash", "scripts/cluster.sh"], cwd=ROOT, env=env, stdout=out,  # noqa: S607
                                   stderr=subprocess.STDOUT, start_new_session=True)
    proxy_url = f"http://127.0.0.1:{proxy}"
    try:
        deadline = time.monotonic() + START_SECONDS + 60
        while "Bookkeeping Desk cluster:" not in log.read_text():
            if process.poll() is not None:
                pytest.fail(f"scripts/cluster.sh exited with {process.returncode}:\n{log.read_text()[-4000:]}",
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"the cluster did not start in time:\n{log.read_text()[-4000:]}", pytrace=False)
            time.sleep(0.5)
        from sqlalchemy import create_engine

        engine = create_engine(database_url)
        yield Cluster(proxy_url, [f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}"],
                      f"http://127.0.0.1:{demo}", tmp / "cluster", engine)
        engine.dispose()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the script stops every part it started
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        redis.stop()
        drop_database(database_url, admin)


def _site_key(cluster: Cluster) -> str:
    page = requests.get(f"{cluster.demo}/", timeout=10).text
    found = re.search(r"data-site=(?:&#34;|\")([A-Za-z0-9_-]+)", page)
    assert found, page[:1000]
    return found.group(1)


def test_the_proxy_is_sticky_passes_the_upgrade_and_the_chat_crosses_processes(cluster: Cluster) -> None:
    health = requests.get(f"{cluster.proxy}/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text
    assert health.json()["message_queue"] == "ok"

    # Engine.IO as a browser speaks it: a long-polling handshake, then the upgrade of that session
    # to a WebSocket (the probe) on the same server, found through the proxy by its sid.
    origin = {"Origin": cluster.demo}
    opened = requests.get(f"{cluster.proxy}/socket.io/", params={"EIO": "4", "transport": "polling"}, headers=origin,
                          timeout=10)
    sid = json.loads(opened.text[1:])["sid"]
    ws = websocket.create_connection(
        f"ws{cluster.proxy[4:]}/socket.io/?EIO=4&transport=websocket&sid={sid}", header=[f"Origin: {cluster.demo}"],
        suppress_origin=True, timeout=10)
    try:
        ws.send("2probe")
        assert ws.recv() == "3probe"
        ws.send("5")  # upgraded: the WebSocket reached the server that holds the session
    finally:
        ws.close()

    events = Events()
    visitor = events_client("/visitor", events)
    visitor.connect(cluster.proxy, namespaces=["/visitor"], headers=origin, auth={"site_key": _site_key(cluster)},
                    transports=["polling"], wait_timeout=10)
    try:
        events.wait_for("session")
        served_by = cluster.upstream_of("/socket.io/")
        assert len(served_by) == 1, f"one client's requests went to {served_by}"  # sticky
        other = next(url for url in cluster.servers if url not in served_by)

        agent_events = Events()
        agent = events_client("/agent", agent_events)
        agent.connect(other, namespaces=["/agent"], headers={"Cookie": sign_in(other, "agent1", PASSWORD)},
                      transports=["websocket"], wait_timeout=10)
        try:
            agent.call("status", {"status": "online"}, namespace="/agent", timeout=10)
            words = f"经过代理的问题 {uuid.uuid4().hex[:6]}"
            sent = visitor.call("message", {"client_msg_id": str(uuid.uuid4()), "text": words},
                                namespace="/visitor", timeout=10)
            conversation_id = sent["conversation_id"]
            agent_events.wait_for(("chat_offer", "chat_request"), lambda p: p.get("conversation_id") == conversation_id)
            accepted = agent.call("accept", {"conversation_id": conversation_id}, namespace="/agent", timeout=10)
            assert [m["text"] for m in accepted["messages"] if m["sender_type"] == "visitor"] == [words]
            reply = agent.call("message", {"conversation_id": conversation_id, "client_msg_id": str(uuid.uuid4()),
                                           "text": "另一个进程的客服"}, namespace="/agent", timeout=10)
            got = events.wait_for("message", lambda m: m["id"] == reply["id"])
            assert got["text"] == "另一个进程的客服"
            agent.call("close", {"conversation_id": conversation_id}, namespace="/agent", timeout=10)
        finally:
            agent.disconnect()
    finally:
        visitor.disconnect()


def test_the_widget_behind_the_proxy_and_the_console_on_another_process(cluster: Cluster, browser: Any) -> None:
    from playwright.sync_api import expect

    site = browser.new_context(locale="zh-CN")
    desk = browser.new_context(locale="zh-CN", base_url=cluster.servers[1], viewport={"width": 1280, "height": 800})
    try:
        tab = site.new_page()
        tab.set_default_timeout(20_000)
        tab.goto(f"{cluster.demo}/")
        tab.locator(f"{WIDGET} .launcher").click()
        expect(tab.locator(f"{WIDGET} .compose textarea")).to_be_visible()
        served_by = cluster.upstream_of("/socket.io/")
        assert len(served_by) >= 1
        console_on = next((url for url in cluster.servers if url not in served_by), None)
        assert console_on, f"the proxy sent the widget to {served_by}"  # (one client address: one server)

        console = desk.new_page()
        console.set_default_timeout(20_000)
        console.goto(f"{console_on}/login/")
        console.fill("input[name=username]", "agent1")
        console.fill("input[name=password]", PASSWORD)
        with console.expect_navigation():
            console.click("form [type=submit]")
        console.goto(f"{console_on}/chat/console/")
        console.wait_for_selector("#console-connection.label-success")
        console.select_option("#console-status", "online")

        words = f"浏览器经过代理 {uuid.uuid4().hex[:6]}"
        tab.locator(f"{WIDGET} .compose textarea").fill(words)
        tab.locator(f"{WIDGET} .compose textarea").press("Enter")
        expect(tab.locator(f"{WIDGET} .msg[data-id]:not(.pending) .bubble", has_text=words)).to_have_count(1)

        take = console.locator(".offer-row .offer-accept, .queue-row .queue-accept")
        take.first.click()
        pane = console.locator(".chat-pane").filter(has_text=words)
        pane.locator(".chat-visitor .chat-text", has_text=words).wait_for()
        pane.locator(".chat-input").fill("您好，这里是另一个进程")
        pane.locator(".chat-input").press("Enter")
        expect(tab.locator(f"{WIDGET} .msg:not(.mine) .bubble", has_text="您好，这里是另一个进程")).to_have_count(1)
    finally:
        site.close()
        desk.close()
