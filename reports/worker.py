"""Worker processes: PDF rendering and spreadsheet reading away from the web server's hub.

The web server (``app.workers``) listens on a Unix socket in a private 0700 folder and starts a
few processes of this module (``python -m reports.worker serve``) that inherit the listening
socket and all ``accept()`` on it: the kernel hands each connection to an idle worker and the
backlog queues the rest. A call is one connection:

1. the worker accepts and answers one byte (``ACCEPTED``): the caller now knows a worker has its
   call (until then it was queued, which the caller may give up on);
2. the caller sends the call, the worker runs it under a time limit and sends the result (or the
   exception) back; then the connection closes.

Messages are pickles framed as ``length (8 bytes) | HMAC-SHA256 (32 bytes) | pickle``. The key
is made by the server and handed to each worker on its standard input; a frame whose HMAC does
not match is dropped unread, so nothing is unpickled unless it came from the server or one of
its workers. Connections from another user are refused (``SO_PEERCRED``). Only the tasks named
in ``TASKS`` run.

The workers are started without monkey patching, import WeasyPrint, load the fonts and lay out a
line before they accept anything (``warm``), exit when the server process is gone, and exit
(to be replaced) after a task that took them over ``MAX_RSS_MB`` of memory.

This module imports neither Flask nor the application. ``python -m reports.worker rq`` runs a
warmed RQ worker for the background jobs of a server with ``REDIS_URL`` (the RQ task functions
are ``rq_render_chunk`` and ``rq_merge`` below).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import importlib
import os
import pickle
import resource
import select
import signal
import socket
import struct
import sys
import threading
import time
from typing import Any

ACCEPTED = b"A"
HEADER = struct.Struct(">Q")
DIGEST = 32
MAX_FRAME = 1 << 30  # 1 GiB: far above any PDF or upload, below anything that would exhaust memory
MAX_RSS_MB = 1024
GRACE_SECONDS = 15  # after its time limit, a task stuck in C code ends with its process

# task name → (module, function); nothing else can be called
TASKS: dict[str, tuple[str, str]] = {
    "pdf.render": ("reports.pdf", "html_to_pdf"),
    "pdf.merge": ("reports.pdf", "merge_counted"),
    "sheet.read": ("reports.sheets", "read_sheet"),
    "password.check": ("werkzeug.security", "check_password_hash"),  # scrypt: ~70 ms of CPU a sign-in
    "ping": ("os", "getpid"),
}


class TaskTimeout(Exception):
    """A task ran over its time limit (raised inside the worker, sent back to the caller)."""


class TaskFailed(Exception):
    """A task raised an exception that could not be sent back as it was (its text is kept)."""


class FrameRejected(Exception):
    """A frame was too large, cut short or not signed with the pool's key."""


# --- framing (used by both sides) --------------------------------------------------------------


def _sign(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def send_message(sock: socket.socket, key: bytes, value: object) -> None:
    """Pickle *value* and send it as one signed frame."""
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(HEADER.pack(len(payload)) + _sign(key, payload))
    sock.sendall(payload)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Exactly *size* bytes; ``FrameRejected`` when the peer closes first."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = sock.recv_into(view[got:], size - got)
        if count == 0:
            raise FrameRejected("the connection closed in the middle of a message")
        got += count
    return bytes(buffer)


def recv_message(sock: socket.socket, key: bytes) -> Any:
    """Receive one frame, check its signature, then unpickle it (never before)."""
    (size,) = HEADER.unpack(recv_exact(sock, HEADER.size))
    if size > MAX_FRAME:
        raise FrameRejected(f"a message of {size} bytes is over the limit")
    digest = recv_exact(sock, DIGEST)
    payload = recv_exact(sock, size)
    if not hmac.compare_digest(digest, _sign(key, payload)):
        raise FrameRejected("a message was not signed with the pool's key")
    return pickle.loads(payload)  # noqa: S301 - signed by this pool: it came from the server or a worker


# --- the worker side ------------------------------------------------------------------------------


def warm() -> None:
    """Import WeasyPrint, load the fonts and lay out a line, so that the first real task does
    not pay ~1 s for it."""
    from reports import pdf

    pdf.html_to_pdf("<!DOCTYPE html><html><body><p>0 汉 <b>汉</b></p></body></html>", pdf.PageStyle())


def _task(name: str):  # noqa: ANN202
    module, function = TASKS[name]
    return getattr(importlib.import_module(module), function)


def _on_alarm(signum: int, frame: object) -> None:  # noqa: ARG001
    raise TaskTimeout("the task ran over its time limit")


class _Watchdog:
    """Ends the process when a task overstays its limit by ``GRACE_SECONDS`` (stuck in C code,
    where the alarm cannot interrupt it), and when the server process is gone."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        self.deadline: float | None = None
        threading.Thread(target=self._watch, name="watchdog", daemon=True).start()

    def _watch(self) -> None:
        while True:
            if os.getppid() != self.parent:
                os._exit(0)
            deadline = self.deadline
            if deadline is not None and time.monotonic() > deadline:
                os._exit(3)
            time.sleep(0.5)


def run_task(name: str, args: tuple, kwargs: dict, limit: float) -> tuple[str, object]:
    """Run task *name* under a time limit: ``("ok", result)`` or ``("error", exception)``."""
    if name not in TASKS:
        return "error", TaskFailed(f"no such task: {name!r}")
    try:
        signal.setitimer(signal.ITIMER_REAL, max(0.001, limit))
        try:
            return "ok", _task(name)(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException as exc:  # noqa: BLE001 - every failure (the time limit too) goes back to the caller
        return "error", exc


def _answer(conn: socket.socket, key: bytes, watchdog: _Watchdog) -> None:
    conn.sendall(ACCEPTED)
    name, args, kwargs, limit = recv_message(conn, key)
    watchdog.deadline = time.monotonic() + limit + GRACE_SECONDS
    try:
        outcome, value = run_task(name, args, kwargs, limit)
    finally:
        watchdog.deadline = None
    try:
        send_message(conn, key, (outcome, value))
    except (pickle.PicklingError, TypeError, AttributeError):
        send_message(conn, key, ("error", TaskFailed(f"{type(value).__name__}: {value}"[:2000])))


def _peer_is_us(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def serve(listener: socket.socket, key: bytes, parent: int) -> None:
    """Accept calls for ever (until the server is gone or this process grew too large)."""
    watchdog = _Watchdog(parent)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the server's terminal is the server's
    while True:
        # The listening socket may be non-blocking (the flag belongs to the socket, shared with a
        # server under gevent or eventlet): wait until it is readable, and lose races calmly.
        select.select([listener], [], [])
        try:
            conn, _address = listener.accept()
        except (BlockingIOError, InterruptedError):
            continue  # another worker took that connection
        conn.setblocking(True)
        with conn:
            if not _peer_is_us(conn):
                continue
            try:
                _answer(conn, key, watchdog)
            except (OSError, FrameRejected, EOFError) as exc:  # the caller went away or sent garbage
                print(f"reports.worker {os.getpid()}: call dropped: {exc}", file=sys.stderr, flush=True)
        if resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > MAX_RSS_MB * 1024:
            return  # the server starts a fresh worker in its place


# --- RQ (background jobs with REDIS_URL) -------------------------------------------------------


def rq_render_chunk(job_id: str, index: int, html: str, style: Any, numbering: Any = None) -> int:
    """RQ: render chunk *index* of *job_id*, keep it in Redis and count the progress."""
    from rq import get_current_job

    from reports import pdf
    from reports.store import RedisStore

    store = RedisStore(get_current_job().connection)
    store.job_update(job_id, status="running")
    try:
        data, pages = pdf.html_to_pdf(html, style, numbered=numbering is not None, numbering=numbering)
    except Exception as exc:  # the merge job will not run: say so now rather than go stale
        store.job_update(job_id, status="failed", error=str(exc)[:300])
        raise
    store.chunk_put(job_id, index, data)
    store.job_progress(job_id, 1, pages)
    return pages


def rq_merge(job_id: str, count: int, style: Any, cache_key: str | None, plan: list[int] | None = None,
             htmls: list[str] | None = None) -> int:
    """RQ: merge the chunks of *job_id* (``pdf.merge_counted``), store (and cache) the PDF."""
    from rq import get_current_job

    from reports import pdf
    from reports.store import RedisStore, finish_job

    store = RedisStore(get_current_job().connection)
    try:
        chunks = [store.chunk_get(job_id, i) for i in range(count)]
        if any(c is None for c in chunks):
            raise RuntimeError("a chunk is missing")
        result, pages = pdf.merge_counted(chunks, style, plan, htmls)  # type: ignore[arg-type]
    except Exception as exc:
        store.job_update(job_id, status="failed", error=str(exc)[:300])
        raise
    finish_job(store, job_id, result, cache_key, pages)
    store.chunks_drop(job_id, count)
    return len(result)


def run_rq(url: str, queues: list[str], burst: bool) -> None:
    """An RQ worker whose work horses fork from a warmed process (WeasyPrint and the fonts
    already loaded), so that a chunk does not pay for the import."""
    from redis import Redis
    from rq import Queue, Worker

    warm()
    connection = Redis.from_url(url)
    Worker([Queue(name, connection=connection) for name in queues], connection=connection).work(burst=burst)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m reports.worker", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="a local worker (started by the server, not by hand)")
    serving.add_argument("--fd", type=int, required=True, help="the inherited listening socket")
    serving.add_argument("--parent", type=int, required=True, help="exit when this process is gone")
    rq = commands.add_parser("rq", help="an RQ worker for background PDF jobs (with REDIS_URL)")
    rq.add_argument("--url", default=os.environ.get("REDIS_URL"), help="Redis URL (default: REDIS_URL)")
    rq.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    rq.add_argument("queues", nargs="*", default=["reports"])
    args = parser.parse_args(argv)
    if args.command == "rq":
        if not args.url:
            parser.error("give --url or set REDIS_URL")
        run_rq(args.url, args.queues, args.burst)
        return
    key = bytes.fromhex(sys.stdin.readline().strip())
    sys.stdin.close()
    listener = socket.socket(fileno=args.fd)
    warm()
    serve(listener, key, args.parent)


if __name__ == "__main__":
    # run the copy imported under its own name, so that its exceptions pickle as reports.worker.*
    from reports import worker

    worker.main()
