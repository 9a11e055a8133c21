"""Chat updates that can wait: coalesced per tick, and work deferred until after the ack.

Rules:
- Updates that describe a state rather than a happening — ``queue``, ``queue_update``,
  ``visitor_update``, ``chat_request``, ``agent_status``, ``availability`` — are held for at most
  one tick (``CHAT_FANOUT_SECONDS``, default 0.1 s) and sent once per room and subject (the
  conversation, visitor or agent they are about), with the latest payload: a burst of changes
  costs each receiver one event, not one per change. Every other event goes out at once.
- Work that can follow the ack (routing a new chat, its welcome and queue events) is queued and
  run by one task per process, in its own application context, in order. A job that fails is
  logged with its traceback; what it would have sent is recovered by the sweep (queued chats are
  offered every ``CHAT_SWEEP_SECONDS``) and by clients resuming.
- Nothing here is state another process needs: held updates are rebuilt from the database by the
  next change or sweep, so a crash loses at most one tick of notices, never a message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from flask import Flask

from app.extensions import db, socketio

log = logging.getLogger(__name__)

COALESCED = {  # event -> the payload field naming what it is about (None: the room alone)
    "queue": "conversation_id", "queue_update": "conversation_id", "chat_request": "conversation_id",
    "visitor_update": "id", "agent_status": "agent_id", "availability": None,
}


class Fanout:
    """The per-process holder of coalesced updates and deferred jobs, flushed by one task."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple, tuple] = {}
        self._jobs: deque[tuple[Flask, Callable, tuple]] = deque()
        self._busy = False
        self._started = False
        self.tick = 0.1

    # --- producers ----------------------------------------------------------------------------

    def send(self, emits: Iterable) -> None:
        """Send *emits* (``routing.Emit``): coalesced events are held for the next tick."""
        for item in emits:
            field = COALESCED.get(item.event, "")
            if field == "":
                socketio.emit(item.event, item.payload, to=item.to, namespace=item.namespace)
                continue
            subject = item.payload.get(field) if field else None
            with self._lock:
                self._held[(item.event, item.namespace, item.to, subject)] = (item.event, item.payload)
            self._ensure_started()

    def defer(self, app: Flask, job: Callable, *args: object) -> None:
        """Run ``job(session, *args)`` after the current event, in an application context of *app*;
        the ``Emit`` list it returns is sent (through ``send``)."""
        with self._lock:
            self._jobs.append((app, job, args))
        self._ensure_started()

    # --- the task ------------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._started:
            return
        with self._lock:
            if self._started:
                return
            self._started = True
        socketio.start_background_task(self._loop)

    def _loop(self) -> None:
        while True:
            socketio.sleep(self.tick)
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - a failed pass is logged; the next tick goes on
                log.exception("chat fan-out pass failed")

    def run_once(self) -> int:
        """Run the queued jobs, then send the held updates; returns how many events were sent."""
        with self._lock:
            jobs = list(self._jobs)
            self._jobs.clear()
            self._busy = bool(jobs)
        for app, job, args in jobs:
            with app.app_context():
                try:
                    self.send(job(db.session, *args))
                except Exception:  # noqa: BLE001 - logged with its traceback; the sweep recovers
                    db.session.rollback()
                    log.exception("deferred chat job %s failed", getattr(job, "__name__", job))
                finally:
                    db.session.remove()
        with self._lock:
            held = list(self._held.items())
            self._held.clear()
            self._busy = False
        for (_, namespace, to, _), (event, payload) in held:
            socketio.emit(event, payload, to=to, namespace=namespace)
        return len(held)

    def idle(self, timeout: float = 5.0) -> bool:
        """Wait until no job is queued or running and nothing is held (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._jobs and not self._held and not self._busy:
                    return True
            socketio.sleep(0.02)
        return False


fanout = Fanout()
