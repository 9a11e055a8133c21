"""``python run.py`` on an empty database: migrates, seeds demo data, serves HTTP and Socket.IO."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.servers import server_env

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),  # noqa: S310 - loopback
                                    timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_first_start_seeds_demo_and_serves_http_and_socketio(tmp_path):
    port, demo_port = _free_port(), _free_port()
    env = server_env(INSTANCE_PATH=str(tmp_path / "instance"), DEMO_PASSWORD="Demo-Pass-2026xy", PYTHONUNBUFFERED="1",
                     DEMO_HOST_PORT=str(demo_port))
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "run.py", "--host", "127.0.0.1", "--port", str(port)],  # noqa: S603
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        status = None
        while time.time() < deadline:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                time.sleep(0.3)
        output = log.read_text()
        assert status == 200, output
        assert b'"db":"ok"' in body.replace(b" ", b"")
        assert f"http://127.0.0.1:{port}/login/" in output
        for user in ("admin", "manager", "accountant", "reviewer", "agent1", "agent2"):
            assert user in output
        assert "Demo-Pass-2026xy" in output
        credentials = (tmp_path / "instance" / "demo-credentials.txt").read_text()
        assert "accountant\tDemo-Pass-2026xy" in credentials
        status, body = _get(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling")
        assert status == 200 and b'"sid"' in body
        status, body = _get(f"http://127.0.0.1:{port}/login/")
        assert status == 200
        # The demo website on DEMO_HOST_PORT embeds the widget of the demo site, whose key is printed.
        [key] = re.findall(r"demo chat site key: (\S+)", output)
        assert f"http://127.0.0.1:{demo_port}/" in output
        status, body = _get(f"http://127.0.0.1:{demo_port}/")
        assert status == 200
        assert f'<script src="http://127.0.0.1:{port}/widget.js" data-site="{key}" async></script>' in body.decode()
        status, body = _get(f"http://127.0.0.1:{port}/widget.js")
        assert status == 200 and b"attachShadow" in body
        status, body = _get(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling",
                            {"Origin": f"http://127.0.0.1:{demo_port}"})
        assert status == 200 and b'"sid"' in body
        status, _ = _get(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling", {"Origin": "http://evil.test"})
        assert status == 400
    finally:
        proc.terminate()
        proc.wait(timeout=20)


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


def test_a_taken_demo_host_port_does_not_stop_the_desk():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = ("import run\nfrom app.demo_host import make_demo_host\n"
                f"print('served', run.serve_demo_host(make_demo_host('http://desk', 'k'), '127.0.0.1', {port}))\n")
        env = {**os.environ, "ASYNC_MODE": "threading"}
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,  # noqa: S603
                                check=True, timeout=60)
    assert "served False" in result.stdout
    assert f"port {port} is not free" in result.stdout
