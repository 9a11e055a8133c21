"""Pause probes for a chat server under load (``benchmarks/chat_server.py`` with ``BENCH_PROBE``;
``benchmarks/chat_relay.py`` too). Measures that do not depend on how busy the machine is:

- ``gc``: every collection of the interpreter's cyclic collector (``gc.callbacks``), its
  generation and duration;
- ``lag``: how late a green task that sleeps ``TICK`` seconds wakes up (the hub's, or the event
  loop's, lag: everything that held it);
- ``run``: every stretch longer than ``LONG_RUN`` seconds in which one greenlet held the hub
  without switching (``greenlet.settrace``), with the function it runs and where it was when it
  let go.

Each event longer than ``LOG_MS`` is appended to the file ``BENCH_PROBE`` as a JSON line with its
``CLOCK_MONOTONIC`` end time (the same clock as the load generator's ``time.monotonic()``), so the
generator can tell which pauses fell into a phase and which late messages they explain.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
import traceback

TICK = 0.005
LONG_RUN = 0.005
LOG_MS = 5.0


class Probe:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._gc_start = 0.0

    def record(self, kind: str, ms: float, **extra: object) -> None:
        if ms < LOG_MS:
            return
        line = json.dumps({"t": time.monotonic(), "kind": kind, "ms": round(ms, 2), **extra})
        with self._lock:
            self._lines.append(line)

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            with open(self.path, "a") as out:
                out.write("\n".join(lines) + "\n")

    # --- the interpreter's collector ----------------------------------------------------------

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
            self._gc_cpu = time.thread_time()
        else:
            self.record("gc", (time.perf_counter() - self._gc_start) * 1000, gen=info.get("generation"),
                        collected=info.get("collected"), cpu=round((time.thread_time() - self._gc_cpu) * 1000, 2))

    # --- the hub -------------------------------------------------------------------------------

    def _lag(self, sleep) -> None:  # noqa: ANN001
        while True:
            began, cpu = time.perf_counter(), time.thread_time()
            sleep(TICK)
            # cpu: this thread's CPU time meanwhile (the hub's work); the rest of a lag is the
            # process waiting for a core (the machine's load)
            self.record("lag", (time.perf_counter() - began - TICK) * 1000,
                        cpu=round((time.thread_time() - cpu) * 1000, 2))

    def _trace(self) -> None:
        import gevent
        import greenlet

        hub = gevent.get_hub()  # its time between switches is mostly waiting for events

        state = {"since": time.perf_counter(), "cpu": time.thread_time()}

        def trace(event: str, args: tuple) -> None:
            if event not in ("switch", "throw"):
                return
            origin, _target = args
            now, cpu = time.perf_counter(), time.thread_time()
            ran, ran_cpu = now - state["since"], cpu - state["cpu"]
            state["since"], state["cpu"] = now, cpu
            if ran >= LONG_RUN and origin is not None and origin is not hub and origin.parent is not None:
                frame = getattr(origin, "gr_frame", None)
                where = "".join(traceback.format_list(traceback.extract_stack(frame, limit=8))[-8:]) if frame else ""
                name = getattr(getattr(origin, "_run", None), "__qualname__", None) or type(origin).__name__
                self.record("run", ran * 1000, greenlet=str(name), where=where[-1500:], cpu=round(ran_cpu * 1000, 2))

        greenlet.settrace(trace)

    def _commits(self) -> None:
        """Time every SQLite commit (app/green_sqlite.py runs them in a thread: a slow one, a WAL
        checkpoint say, holds its batch of messages without holding the hub)."""
        try:
            from app import green_sqlite
        except ImportError:  # the relay
            return
        commit = green_sqlite.GreenConnection.commit
        probe = self

        def timed(connection) -> None:  # noqa: ANN001
            began = time.perf_counter()
            try:
                commit(connection)
            finally:
                probe.record("commit", (time.perf_counter() - began) * 1000)

        green_sqlite.GreenConnection.commit = timed

    def start(self, mode: str) -> None:
        gc.callbacks.append(self._gc)
        if os.environ.get("BENCH_RELAY") != "1":
            self._commits()
        if mode == "gevent":
            import gevent

            gevent.spawn(self._lag, gevent.sleep)
            if os.environ.get("BENCH_PROBE_TRACE", "1") == "1":
                self._trace()
        elif mode == "eventlet":
            import eventlet

            eventlet.spawn(self._lag, eventlet.sleep)
        else:
            threading.Thread(target=self._lag, args=(time.sleep,), daemon=True).start()


def start(mode: str) -> Probe | None:
    """Start the probes when ``BENCH_PROBE`` names a file; the caller flushes them periodically."""
    path = os.environ.get("BENCH_PROBE")
    if not path:
        return None
    probe = Probe(path)
    probe.start(mode)
    return probe
