"""``python run.py`` as a user starts it.

- On an empty database it migrates, seeds demo data and serves HTTP, Socket.IO and the demo
  host page (the shared ``demo_server``, started once for the run).
- Every documented async mode is installed and serves; no deprecation noise from unused code.
- A start that cannot work says so in one line and exits non-zero: the port is taken, the
  database is unreachable, the async mode is unknown.
- Redis down: the desk starts and serves, degraded (sign-in, the chat within the process).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import socketio

from tests.servers import DemoServer, free_port, server_env, sign_in, start

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),  # noqa: S310 - loopback
                                    timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_first_start_seeds_demo_and_serves_http_and_socketio(demo_server: DemoServer):
    base, demo_port = demo_server.url, demo_server.demo_port
    output = demo_server.output()
    status, body = _get(f"{base}/health")
    assert status == 200, output
    assert b'"db":"ok"' in body.replace(b" ", b"")
    assert f"{base}/login/" in output
    assert "(async mode: gevent)" in output  # the default mode, as `make run` starts it
    for user in ("admin", "manager", "accountant", "reviewer", "agent1", "agent2"):
        assert user in output
    assert demo_server.password in output
    assert "two-factor authentication is required at first sign-in for: Admin, Manager" in output
    credentials = (Path(demo_server.env["INSTANCE_PATH"]) / "demo-credentials.txt").read_text()
    assert f"accountant\t{demo_server.password}" in credentials
    status, body = _get(f"{base}/socket.io/?EIO=4&transport=polling")
    assert status == 200 and b'"sid"' in body
    status, body = _get(f"{base}/login/")
    assert status == 200
    # The demo website on DEMO_HOST_PORT embeds the widget of the demo site, whose key is printed.
    [key] = re.findall(r"demo chat site key: (\S+)", output)
    assert f"http://127.0.0.1:{demo_port}/" in output
    status, body = _get(f"http://127.0.0.1:{demo_port}/")
    assert status == 200
    assert f'<script src="{base}/widget.js" data-site="{key}" async></script>' in body.decode()
    status, body = _get(f"{base}/widget.js")
    assert status == 200 and b"attachShadow" in body
    status, body = _get(f"{base}/socket.io/?EIO=4&transport=polling", {"Origin": f"http://127.0.0.1:{demo_port}"})
    assert status == 200 and b'"sid"' in body
    status, _ = _get(f"{base}/socket.io/?EIO=4&transport=polling", {"Origin": "http://evil.test"})
    assert status == 400
    assert "Traceback" not in output
    assert "CryptographyDeprecationWarning" not in output


def _websocket_round_trips(url: str, times: int = 3) -> None:
    """Open Engine.IO websockets and close them again; then let the server finish
    with them (a few more requests) before its log is read."""
    import engineio

    for _ in range(times):
        client = engineio.Client()
        client.connect(url, transports=["websocket"], engineio_path="socket.io")
        assert client.transport() == "websocket" and client.sid
        client.disconnect()
    for _ in range(5):
        assert _get(f"{url}/health")[0] == 200


LEFTOVER_FRAME_ERRORS = ("Invalid HTTP method", "Bad request", "Bad HTTP/0.9 request")


def test_a_closed_websocket_leaves_no_error_in_the_log(demo_server: DemoServer):
    _websocket_round_trips(demo_server.url)

    output = demo_server.output()
    assert not [line for line in output.splitlines() if any(e in line for e in LEFTOVER_FRAME_ERRORS)]


def test_second_start_keeps_data_and_does_not_reseed(tmp_path):
    env = server_env(INSTANCE_PATH=str(tmp_path / "instance"), ASYNC_MODE="threading")
    code = ("from app import create_app\nfrom app.services.bootstrap import prepare_database\n"
            "from app.services.demo import seed_demo\napp = create_app()\n"
            "with app.app_context():\n    prepare_database(app)\n    print(seed_demo(app))\n")
    first = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,  # noqa: S603
                           check=True)
    second = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,  # noqa: S603
                            check=True)
    assert "'clients': 4" in first.stdout
    assert "'users': [], 'clients': 0, 'password': None" in second.stdout


def test_the_server_process_starts_without_the_pdf_and_spreadsheet_libraries(tmp_path):
    """WeasyPrint and openpyxl take seconds to import and run in worker processes: a server start
    that imported them would pay for them (and hold them in memory) for nothing."""
    code = ("import sys\nimport run\nfrom app import create_app\napp = create_app()\n"
            "print(sorted(m for m in ('weasyprint', 'openpyxl', 'pypdf') if m in sys.modules))\n")
    env = server_env(INSTANCE_PATH=str(tmp_path / "instance"), ASYNC_MODE="threading")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,  # noqa: S603
                            check=True, timeout=300)
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("mode", ["eventlet", "threading"])
def test_every_async_mode_serves_without_deprecation_noise(demo_server: DemoServer, tmp_path, mode):
    """gevent (the default) is the shared server's mode; the others restart on its database. Not
    eventlet's own deprecation notice: that one is news for whoever picks eventlet."""
    env = {**demo_server.env, "ASYNC_MODE": mode, "DEMO_HOST_PORT": "0"}
    env.pop("REDIS_URL", None)  # one process of its own, not in the shared server's chat
    with start(env, tmp_path / f"{mode}.log") as server:
        status, body = _get(f"{server.url}/socket.io/?EIO=4&transport=polling")
        assert status == 200 and b'"sid"' in body
        status, _ = _get(f"{server.url}/login/")
        assert status == 200
        _websocket_round_trips(server.url)
    output = server.output()
    assert f"(async mode: {mode})" in output
    assert not [line for line in output.splitlines() if any(e in line for e in LEFTOVER_FRAME_ERRORS)]
    assert "CryptographyDeprecationWarning" not in output
    assert "Traceback" not in output


def _fails_to_start(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "run.py", "--host", "127.0.0.1", *args], cwd=ROOT, env=env,  # noqa: S603
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cannot start: "), result.stderr
    return result


def test_a_port_in_use_is_a_one_line_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _fails_to_start(server_env(INSTANCE_PATH=str(tmp_path / "instance"), DEMO_HOST_PORT="0"),
                                 "--port", str(port))
    assert f"127.0.0.1:{port} is already in use" in result.stderr


def test_a_second_server_on_the_same_port_refuses_to_start(demo_server: DemoServer):
    result = _fails_to_start(demo_server.env, "--port", str(demo_server.server.port))
    assert "already in use" in result.stderr
    assert _get(f"{demo_server.url}/health")[0] == 200  # the first one goes on serving alone


def test_an_unreachable_database_is_a_one_line_error(tmp_path):
    env = server_env(INSTANCE_PATH=str(tmp_path / "instance"), DEMO_HOST_PORT="0",
                     DATABASE_URL="postgresql+psycopg://desk:secret@127.0.0.1:1/desk?connect_timeout=2")
    result = _fails_to_start(env, "--port", str(free_port()))
    assert "the database postgresql+psycopg://desk:***@127.0.0.1:1/desk" in result.stderr
    assert "secret" not in result.stderr


def test_an_unknown_async_mode_is_a_one_line_error(tmp_path):
    env = server_env(INSTANCE_PATH=str(tmp_path / "instance"), ASYNC_MODE="asyncio")
    result = _fails_to_start(env, "--port", str(free_port()))
    assert "ASYNC_MODE is 'asyncio'" in result.stderr


def test_a_taken_demo_host_port_does_not_stop_the_desk():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = ("import run\nfrom app.demo_host import make_demo_host\n"
                f"print('served', run.serve_demo_host(make_demo_host('http://desk', 'k'), '127.0.0.1', {port}))\n")
        env = server_env(ASYNC_MODE="threading")
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,  # noqa: S603
                                check=True, timeout=60)
    assert "served False" in result.stdout
    assert f"port {port} is not free" in result.stdout


# --- Redis down ------------------------------------------------------------------------------------


def _client(namespace: str, received: list) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.on("*", lambda event, *args: received.append((event, args[0] if args else None)), namespace=namespace)
    return client


def _wait_for(received: list, events: str | tuple[str, ...], match=lambda payload: True) -> object:  # noqa: ANN001
    import time

    events = (events,) if isinstance(events, str) else events
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for name, payload in list(received):
            if name in events and match(payload):
                return payload
        time.sleep(0.05)
    raise AssertionError(f"no {events} within {WAIT} s; got {[name for name, _ in received]}")


def test_with_redis_down_the_desk_serves_sign_in_and_the_chat_degraded(tmp_path):
    """REDIS_URL set, Redis not answering (a closed port): the server starts, /health says what is
    degraded, agents sign in, and a visitor and an agent on this process talk to each other."""
    demo_port = free_port()
    env = server_env(INSTANCE_PATH=str(tmp_path / "instance"), DATABASE_URL=f"sqlite:///{tmp_path / 'desk.db'}",
                     REDIS_URL="redis://127.0.0.1:1/0", DEMO_PASSWORD="Demo-Pass-2026xy",
                     DEMO_HOST_PORT=str(demo_port))
    with start(env, tmp_path / "server.log") as server:
        status, body = _get(f"{server.url}/health")
        assert status == 200
        assert b'"status":"degraded"' in body.replace(b" ", b"")
        assert b'"message_queue":"error"' in body.replace(b" ", b"")

        cookie = sign_in(server.url, "agent1", "Demo-Pass-2026xy")
        [site_key] = re.findall(r"demo chat site key: (\S+)", server.output())
        desk_events: list = []
        desk = _client("/agent", desk_events)
        desk.connect(server.url, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"],
                     wait_timeout=WAIT)
        desk.emit("status", {"status": "online"}, namespace="/agent")
        visitor_events: list = []
        visitor = _client("/visitor", visitor_events)
        visitor.connect(server.url, namespaces=["/visitor"], headers={"Origin": f"http://127.0.0.1:{demo_port}"},
                        auth={"site_key": site_key}, transports=["polling"], wait_timeout=WAIT)
        try:
            _wait_for(visitor_events, "session")
            sent = visitor.call("message", {"client_msg_id": str(uuid.uuid4()), "text": "Redis 停了还能聊吗"},
                                namespace="/visitor", timeout=WAIT)
            conversation_id = sent["conversation_id"]
            # the new chat reaches the agent: offered to them, or announced to the site's agents
            _wait_for(desk_events, ("chat_offer", "chat_request"),
                      lambda p: p.get("conversation_id") == conversation_id)
            accepted = desk.call("accept", {"conversation_id": conversation_id}, namespace="/agent", timeout=WAIT)
            assert accepted.get("conversation_id") == conversation_id, accepted
            reply = desk.call("message", {"client_msg_id": str(uuid.uuid4()), "text": "可以，您好",
                                          "conversation_id": conversation_id}, namespace="/agent", timeout=WAIT)
            heard = _wait_for(visitor_events, "message", lambda m: m.get("id") == reply["id"])
            assert heard["text"] == "可以，您好"
        finally:
            visitor.disconnect()
            desk.disconnect()
    output = server.output()
    assert output.count("message queue redis://127.0.0.1:1/0 unreachable") == 1  # once, not per event
    assert "Rate limit storage unreachable - falling back to in-memory storage" in output
