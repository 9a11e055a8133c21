"""The local worker pool (``app.workers``, ``reports.worker``): calls, their failures, and the
private channel. Each test here runs its own small pool."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app import workers
from reports import pdf
from reports.sheets import SheetRefused
from reports.worker import ACCEPTED, DIGEST, HEADER, TaskFailed, TaskTimeout


@pytest.fixture(scope="module")
def pool():
    running = workers.Pool(2, task_seconds=60)
    yield running
    running.close()


@pytest.fixture
def lone():
    """A pool of one worker (its own, so that a test may tie it up or kill it)."""
    running = workers.Pool(1, task_seconds=60)
    running.call("ping", queue_wait=120)  # started and warm
    yield running
    running.close()


def _wait_for(check, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.1)


def _gone(pid: int) -> bool:
    """The process has ended (reaped, or a zombie waiting for its parent to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_pdf_is_rendered_by_a_worker_process(pool):
    data, pages = pool.call("pdf.render", "<html><body><p>工作进程 渲染</p></body></html>",
                            pdf.PageStyle(page_label="第 {page} 页 / 共 {pages} 页"), queue_wait=120)
    assert data.startswith(b"%PDF") and pages == 1
    assert pool.call("ping") in pool.pids()
    assert os.getpid() not in pool.pids()


def test_the_tasks_own_error_comes_back_as_itself(pool):
    with pytest.raises(SheetRefused) as refused:
        pool.call("sheet.read", "csv", b"a,b,c,d\n1,2,3,4\n", 10, 3, 1000, queue_wait=120)
    assert (refused.value.reason, refused.value.limit) == ("too_many_columns", 3)
    with pytest.raises(TaskFailed, match="no such task"):
        pool.call("os.system", "true")


def test_a_task_over_its_time_limit_is_stopped_and_the_worker_serves_on(lone):
    pid = lone.call("ping")
    long_html = "<html><body>" + "<p>长文档</p>" * 20000 + "</body></html>"
    with pytest.raises(TaskTimeout):
        lone.call("pdf.render", long_html, pdf.PageStyle(), limit=0.2)
    assert lone.call("ping") == pid  # the same process, free again


def test_a_worker_that_dies_during_a_call_fails_that_call_and_is_replaced(lone):
    pid = lone.call("ping")
    long_html = "<html><body>" + "<p>长文档</p>" * 20000 + "</body></html>"
    failure: list[BaseException] = []

    def render() -> None:
        try:
            lone.call("pdf.render", long_html, pdf.PageStyle())
        except BaseException as exc:  # noqa: BLE001
            failure.append(exc)

    caller = threading.Thread(target=render)
    caller.start()
    time.sleep(1.0)  # the call is in the worker (or queued for it: then the kill fails it all the same)
    os.kill(pid, signal.SIGKILL)
    caller.join(timeout=120)
    assert failure and isinstance(failure[0], workers.WorkerError), failure
    time.sleep(workers.RESPAWN_PAUSE)
    new_pid = lone.call("ping", queue_wait=120)
    assert new_pid != pid and lone.alive() == 1


def test_no_free_worker_means_busy_after_the_queue_wait(lone):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stuck:
        stuck.connect(lone.address)
        assert stuck.recv(1) == ACCEPTED  # the only worker now waits for this call's request
        started = time.monotonic()
        with pytest.raises(workers.WorkersBusy):
            lone.call("ping", queue_wait=1.0)
        assert time.monotonic() - started < 30
    assert lone.call("ping", queue_wait=120)  # the caller went away: the worker is free again


def test_no_running_worker_is_a_clear_error(lone, monkeypatch):
    def cannot_start(slot: int) -> None:
        raise OSError("no such interpreter")

    monkeypatch.setattr(lone, "_spawn", cannot_start)
    monkeypatch.setattr(workers, "RESPAWN_PAUSE", 0.0)
    pid = lone.call("ping")
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: lone.alive() == 0)
    with pytest.raises(workers.WorkersUnavailable):
        lone.call("ping", queue_wait=60)


def test_a_frame_without_the_pools_signature_is_never_unpickled(lone, tmp_path):
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):  # noqa: ANN204
            return (Path.touch, (marker,))

    payload = pickle.dumps(("ping", (), {}, 5.0, Trap()))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as intruder:
        intruder.connect(lone.address)
        assert intruder.recv(1) == ACCEPTED
        intruder.sendall(HEADER.pack(len(payload)) + b"\0" * DIGEST + payload)
        intruder.settimeout(30)
        assert intruder.recv(1) == b""  # dropped without an answer
    assert not marker.exists()
    assert lone.call("ping", queue_wait=60)


def test_the_socket_lives_in_a_folder_only_its_user_may_enter(pool):
    folder = Path(pool.address).parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert folder.stat().st_uid == os.getuid()
    assert struct.calcsize(">Q") == HEADER.size


def test_closing_the_pool_ends_its_workers():
    running = workers.Pool(1, task_seconds=60)
    pid = running.call("ping", queue_wait=120)
    running.close()
    _wait_for(lambda: _gone(pid))
    with pytest.raises(workers.WorkersUnavailable):
        running.call("ping")


def test_a_password_is_checked_in_a_worker(pool):
    from werkzeug.security import generate_password_hash

    stored = generate_password_hash("Right-Pass-2026", method="scrypt")
    assert pool.call("password.check", stored, "Right-Pass-2026", queue_wait=120) is True
    assert pool.call("password.check", stored, "wrong") is False


def test_workers_end_when_the_server_process_is_killed(tmp_path):
    """A server killed outright (no clean-up) leaves no worker behind."""
    script = ("import time\nfrom app import workers\npool = workers.Pool(2, 60)\n"
              "pool.call('ping', queue_wait=120)\nprint(*pool.pids(), flush=True)\ntime.sleep(600)\n")
    server = subprocess.Popen([sys.executable, "-c", script], cwd=Path(workers.__file__).parents[1],
                              stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in server.stdout.readline().split()]
        assert len(pids) == 2 and all(Path(f"/proc/{p}").exists() for p in pids)
    finally:
        server.kill()
        server.wait()
    _wait_for(lambda: all(_gone(p) for p in pids), timeout=30)
