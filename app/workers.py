"""The local worker pool: CPU-heavy work (PDF rendering, spreadsheet reading) runs in worker
processes, and the server only waits for it, cooperatively.

Why: under gevent or eventlet every request and every chat socket of a server process shares
one hub; WeasyPrint or openpyxl running in it for a second freezes everyone for that second. And
``multiprocessing`` (``ProcessPoolExecutor``, its queues and pipes) deadlocks there: its feeder
and management threads become greenlets. So the pool is built only from what the async modes
make cooperative: a Unix-domain socket and plain subprocesses.

- ``start()`` (``run.py`` calls it through ``reports.jobs.warm_pool()`` at server start; elsewhere
  the first ``call`` does it) makes a private 0700 folder with a listening socket and starts
  ``REPORTS_WORKERS`` processes of ``reports.worker``, unpatched, which warm up and then all
  ``accept()`` on it (the protocol is described there). A worker that dies is replaced at the
  next call; workers exit when the server process is gone.
- ``call(task, *args)`` connects and waits: first for a worker to take the call (at most
  *queue_wait* seconds, else ``WorkersBusy``; at once ``WorkersUnavailable`` when every worker
  process has died and none can be started), then for the result (the task's time limit
  ``REPORTS_TASK_SECONDS`` plus a grace, else ``WorkerFailed``). The task's own exception is
  raised again in the caller. All waiting is socket I/O (a greenlet under gevent or eventlet, a
  thread under threading), so the rest of the server keeps running.
- ``background_slot()``: background work (the chunks of a large PDF) takes at most all workers
  but one, so a small PDF or an import never waits behind a large job.

A request that waits here must not hold a database transaction: end it first
(``db.session.rollback()`` once the data it needs are read).

State: the pool is per server process (its worker processes and socket die with it); nothing in
it needs to be shared with other processes.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reports.worker import ACCEPTED, FrameRejected, recv_message, send_message

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 20  # beyond the worker-side limit: the worker's own watchdog ends a stuck task at +15 s
SLICE = 1.0  # seconds between checks that the workers are alive while waiting
RESPAWN_PAUSE = 5.0  # a worker slot that died is started again at most this often


class WorkerError(Exception):
    """The work could not be done by a worker (not an error of the task itself)."""


class WorkersBusy(WorkerError):
    """No worker took the call in time: they are all busy."""


class WorkersUnavailable(WorkerError):
    """No worker process is running and none could be started."""


class WorkerFailed(WorkerError):
    """The worker that had the call died or did not answer within the time limit."""


class Pool:
    """Worker processes accepting calls on one private Unix socket (see the module doc)."""

    def __init__(self, size: int, task_seconds: float) -> None:
        self.size = max(1, size)
        self.task_seconds = task_seconds
        self.owner = os.getpid()
        self._key = secrets.token_bytes(32)
        self._folder = tempfile.mkdtemp(prefix="desk-workers-")  # mode 0700: only this user gets in
        self.address = os.path.join(self._folder, "socket")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.address)
        self._listener.listen(1024)
        self._procs: list[subprocess.Popen | None] = [None] * self.size
        self._started = [0.0] * self.size
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, self.size - 1))
        self.closed = False
        self.revive()

    # --- processes ---------------------------------------------------------------------------

    def _spawn(self, slot: int) -> None:
        fd = self._listener.fileno()
        proc = subprocess.Popen(  # noqa: S603 - our own module, with this interpreter
            [sys.executable, "-m", "reports.worker", "serve", "--fd", str(fd), "--parent", str(os.getpid())],
            pass_fds=(fd,), stdin=subprocess.PIPE, cwd=ROOT, close_fds=True)
        proc.stdin.write(self._key.hex().encode() + b"\n")  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
        self._procs[slot] = proc
        self._started[slot] = time.monotonic()

    def revive(self) -> None:
        """Start the workers that are not running (a slot that died is retried every
        ``RESPAWN_PAUSE`` seconds at most, so a worker that cannot start does not loop)."""
        with self._lock:
            if self.closed:
                return
            for slot, proc in enumerate(self._procs):
                if proc is not None and proc.poll() is None:
                    continue
                if proc is not None:
                    if time.monotonic() - self._started[slot] < RESPAWN_PAUSE:
                        continue
                    log.warning("PDF worker %s ended (exit %s); starting another", proc.pid, proc.returncode)
                try:
                    self._spawn(slot)
                except OSError as exc:
                    log.error("cannot start a PDF worker: %s", exc)

    def alive(self) -> int:
        """How many worker processes are running."""
        return sum(1 for proc in self._procs if proc is not None and proc.poll() is None)

    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs if proc is not None and proc.poll() is None]

    def close(self) -> None:
        """Stop the workers and remove the socket (tests, process exit)."""
        with self._lock:
            self.closed = True
            procs = [p for p in self._procs if p is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._listener.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    # --- calls ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def background_slot(self) -> Iterator[None]:
        """Hold one of the ``size - 1`` places for background work while calling."""
        with self._slots:
            yield

    def call(self, task: str, *args: Any, queue_wait: float = 60.0, limit: float | None = None,
             **kwargs: Any) -> Any:
        """Run *task* (a name of ``reports.worker.TASKS``) in a worker and return its result.

        Raises ``WorkersBusy`` (no worker took it within *queue_wait* seconds),
        ``WorkersUnavailable`` (no worker process runs), ``WorkerFailed`` (the worker died or
        ran over *limit*, default ``task_seconds``, plus a grace), or the task's own exception.
        """
        if self.closed:
            raise WorkersUnavailable("the worker pool is closed")
        limit = float(limit if limit is not None else self.task_seconds)
        self.revive()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(SLICE)
            self._connect(sock, time.monotonic() + queue_wait)
            self._wait_accepted(sock, time.monotonic() + queue_wait)
            sock.settimeout(limit + GRACE_SECONDS)
            try:
                send_message(sock, self._key, (task, args, kwargs, limit))
                outcome, value = recv_message(sock, self._key)
            except TimeoutError:
                raise WorkerFailed(f"the worker did not answer within {limit + GRACE_SECONDS:.0f} s") from None
            except (OSError, FrameRejected) as exc:
                self.revive()
                raise WorkerFailed(f"the worker stopped: {exc}") from None
        if outcome == "ok":
            return value
        raise value

    def _connect(self, sock: socket.socket, deadline: float) -> None:
        while True:
            try:
                sock.connect(self.address)
                return
            except (BlockingIOError, TimeoutError, InterruptedError):  # backlog full: wait for room
                pass
            except OSError as exc:
                raise WorkersUnavailable(f"cannot reach the workers: {exc}") from None
            self._still_waiting(deadline)

    def _wait_accepted(self, sock: socket.socket, deadline: float) -> None:
        while True:
            try:
                if sock.recv(1) == ACCEPTED:
                    return
                raise WorkerFailed("a worker closed the call before taking it")
            except TimeoutError:
                self._still_waiting(deadline)
            except OSError as exc:
                raise WorkerFailed(f"a worker closed the call before taking it: {exc}") from None

    def _still_waiting(self, deadline: float) -> None:
        self.revive()
        if not self.alive():
            raise WorkersUnavailable("no worker process is running")
        if time.monotonic() > deadline:
            raise WorkersBusy("every worker is busy")


_POOL: Pool | None = None
_POOL_LOCK = threading.Lock()


def start(size: int | None = None, task_seconds: float | None = None) -> Pool:
    """This process's pool, started now if it is not running. Without arguments the sizes come
    from the application's config (``REPORTS_WORKERS``, ``REPORTS_TASK_SECONDS``), which needs
    an application context."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None and (_POOL.owner != os.getpid() or _POOL.closed):
            _POOL = None  # a forked child, or closed: never share another process's workers
        if _POOL is None:
            if size is None or task_seconds is None:
                from flask import current_app

                size = int(current_app.config.get("REPORTS_WORKERS", 3)) if size is None else size
                task_seconds = float(current_app.config.get("REPORTS_TASK_SECONDS", 300)) \
                    if task_seconds is None else task_seconds
            _POOL = Pool(size, task_seconds)
        return _POOL


def call(task: str, *args: Any, **kwargs: Any) -> Any:
    """``start().call(...)``: see ``Pool.call``."""
    return start().call(task, *args, **kwargs)


def shutdown() -> None:
    """Stop this process's workers (they start again on the next call)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None and pool.owner == os.getpid():
        pool.close()


atexit.register(shutdown)
