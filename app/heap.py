"""The interpreter's cyclic garbage collector in a long-running server process.

A collection stops the whole process: under gevent or eventlet every socket and request waits
until it ends. Python collects its oldest generation by walking every container object the
process holds, and a desk server holds hundreds of thousands that live as long as it does
(Flask-AppBuilder's views and permissions, SQLAlchemy's mappers and compiled statements, the
translation catalogs, the imported modules), plus those of every open chat connection: with a
thousand connections such a collection stopped the server for 100–270 ms (more on a busy
machine), often enough to fall inside a few seconds of busy chat and make the slowest messages'
latency.

Rules:
- While the server starts the collector is off (``run.pause_collector``, called before anything
  is imported, so it lives in run.py): importing the stack and
  building the application allocate some 370,000 long-lived objects that collections would walk
  again and again while finding next to no garbage; once the application is built, what it made
  is frozen and collection resumes (``resume_collector``).
- Once the server is ready (the application built, the database prepared), ``settle()`` collects
  the garbage of start-up and moves every object alive then out of the collector's sight
  (``gc.freeze()``): they are never walked again.
- After each collection of the oldest generation, what survived it is frozen as well, so the next
  one walks only what was created since: the connections opened meanwhile, not all of them again.
  The younger generations are collected as Python does by default.
- An object frozen and later dropped is still freed when nothing refers to it; only garbage
  *cycles* among frozen objects wait: every ``GC_FULL_SECONDS`` (default 900) the objects are
  unfrozen before the next collection of the oldest generation, which then walks them all once
  (the one long pause of the period) and frees those cycles; freezing resumes after it.
- ``GC_FREEZE=0`` leaves the collector as Python sets it.
"""

from __future__ import annotations

import gc
import os
import time

DEFAULT_FULL_SECONDS = 900.0


class Refreeze:
    """The ``gc.callbacks`` hook of the rules above: after a collection of the oldest generation,
    freeze its survivors, or (once every *full_seconds*) unfreeze everything for the next one."""

    def __init__(self, full_seconds: float, clock=time.monotonic) -> None:  # noqa: ANN001
        self.full_seconds = full_seconds
        self._clock = clock
        self.next_full = clock() + full_seconds
        self.unfrozen = False
        self.freezes = 0
        self.full = 0

    def __call__(self, phase: str, info: dict) -> None:
        if phase != "stop" or info.get("generation") != 2:
            return
        now = self._clock()
        if self.unfrozen:  # that was the full one: freeze again
            self.unfrozen = False
            self.full += 1
            self.next_full = now + self.full_seconds
        elif now >= self.next_full:
            gc.unfreeze()
            self.unfrozen = True
            return
        gc.freeze()
        self.freezes += 1


def resume_collector() -> None:
    """Collect cyclic garbage again, but never walk what the start built (modules, classes, views,
    mappers, URL rules): it is moved to the collector's permanent generation, so that the
    collections of a running server only look at what it allocated since (less work per
    collection for as long as the server runs). The few thousand objects the start left
    unreachable stay allocated (a full collection to find them would cost 0.2 s of CPU)."""
    gc.freeze()
    gc.enable()


def settle(full_seconds: float | None = None) -> Refreeze | None:
    """Collect start-up's garbage, freeze what is left and keep freezing the survivors of each
    collection of the oldest generation (see the module rules); returns the hook, or None when
    ``GC_FREEZE=0``."""
    if os.environ.get("GC_FREEZE", "1") == "0":
        return None
    if full_seconds is None:
        full_seconds = float(os.environ.get("GC_FULL_SECONDS", str(DEFAULT_FULL_SECONDS)))
    gc.collect()
    gc.freeze()
    hook = Refreeze(full_seconds)
    gc.callbacks.append(hook)
    return hook
