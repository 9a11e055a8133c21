"""The visitor's event rate (``CHAT_VISITOR_RATE``), at a constant cost per event.

Rules:
- The limit is a sliding window counter: the count of the current fixed window plus the previous
  window's count weighted by how much of it still overlaps the sliding window. It never lets more
  than the limit through in any window and forgets a visitor two windows after their last event.
- With Redis (``RATELIMIT_STORAGE_URI`` ``redis://…``) the counters are shared by every server
  process (``limits``' sliding window counter: one round trip per event). Otherwise each process
  counts its own visitors in memory (two dictionaries swapped at each window's end: no timer, no
  walk over the keys — ``limits``' memory storage expires keys with a timer that walks every key
  each 10 ms, which cost a busy chat server a fifth of its CPU).
- A shared store that cannot be reached does not stop the chat: the process counts in memory
  (one warning when the store goes away, one when it answers again; it is tried again every
  ``RETRY_SECONDS``), as the sign-in limiter does.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
STORAGE_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}  # a stalled Redis must not stall events


class LocalWindowCounter:
    """Per-process sliding window counter over two generations of plain dictionaries."""

    def __init__(self, clock=time.monotonic) -> None:  # noqa: ANN001
        self._clock = clock
        self._lock = threading.Lock()
        self._window: int | None = None
        self._current: dict[str, int] = {}
        self._previous: dict[str, int] = {}

    def hit(self, key: str, amount: int, seconds: int) -> bool:
        """Count one event of *key*; False (and not counted) when it would exceed *amount* per
        *seconds*."""
        now = self._clock()
        window, into = divmod(now, seconds)
        window = int(window)
        with self._lock:
            if window != self._window:
                adjacent = self._window is not None and window == self._window + 1
                self._previous = self._current if adjacent else {}
                self._current = {}
                self._window = window
            weight = 1 - into / seconds
            current = self._current.get(key, 0)
            if self._previous.get(key, 0) * weight + current + 1 > amount:
                return False
            self._current[key] = current + 1
            return True

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)


class VisitorRate:
    """``CHAT_VISITOR_RATE`` (``limits`` syntax) over a storage URI, see the module rules."""

    def __init__(self, rate: str, storage_uri: str, clock=time.monotonic) -> None:  # noqa: ANN001
        self.item: RateLimitItem = parse(rate)
        self.shared = not storage_uri.startswith("memory://")
        self._clock = clock
        self._local = LocalWindowCounter(clock)
        self._limiter = SlidingWindowCounterRateLimiter(
            storage_from_string(storage_uri, **STORAGE_OPTIONS)) if self.shared else None
        self._down_until: float | None = None  # while the shared store is down: when to try it again

    @property
    def retry_after(self) -> int:
        """Seconds a refused sender waits before trying again: the mean spacing the limit allows."""
        return max(1, math.ceil(self.item.get_expiry() / self.item.amount))

    def hit(self, *key: str) -> bool:
        """Count one event of the visitor named by *key*; False when over the limit."""
        if self._limiter is not None and (self._down_until is None or self._clock() >= self._down_until):
            try:
                allowed = self._limiter.hit(self.item, "chat-visitor", *key)
            except Exception as exc:  # noqa: BLE001 - any failure: count in this process for a while
                if self._down_until is None:
                    log.warning("visitor rate limit storage unreachable (%s): counting in this process "
                                "until it answers again", exc)
                self._down_until = self._clock() + RETRY_SECONDS
            else:
                if self._down_until is not None:
                    log.warning("visitor rate limit storage reachable again")
                    self._down_until = None
                return allowed
        return self._local.hit(":".join(key), self.item.amount, self.item.get_expiry())


_rates: dict[tuple[str, str], VisitorRate] = {}  # per (rate, storage URI); the counters live in the storage


def visitor_rate(rate: str, storage_uri: str) -> VisitorRate:
    """The limiter of this rate and storage (one per process)."""
    key = (rate, storage_uri)
    if key not in _rates:
        _rates[key] = VisitorRate(rate, storage_uri)
    return _rates[key]
