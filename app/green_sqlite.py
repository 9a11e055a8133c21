"""SQLite that does not hold the hub under gevent or eventlet.

Python's ``sqlite3`` calls SQLite's C library directly: under gevent or eventlet a long query, a
commit or a wait for SQLite's write lock would stop every other request and chat socket of the
process for as long as it takes (a year's trial balance over a million lines: seconds). This
module is a DBAPI module for SQLAlchemy (``create_engine(..., module=dbapi())``) whose connections
keep the quick calls on the hub and send the ones that could take long to a native thread of the
hub's thread pool, while the calling greenlet waits and the hub serves the others (``sqlite3``
releases the interpreter lock while SQLite works). A trip to a thread costs tens of microseconds,
several times a short query, so the rule is:

- a read (``SELECT``, ``WITH``, ``PRAGMA``) runs on the hub with a budget of ``HUB_BUDGET`` seconds
  (SQLite's progress handler interrupts it past that) and its rows are fetched at once; an
  interrupted read runs again, whole, in a thread;
- a write runs on the hub without waiting for SQLite's write lock (busy timeout 0); when another
  transaction holds the lock, the statement is tried again in a thread, which waits for the lock
  up to the connection's ``timeout`` (SQLAlchemy's ``connect_args``);
- ``commit`` runs on the hub: with the write-ahead log and ``synchronous=NORMAL`` it appends the
  transaction's pages to the log without waiting for the disk (tens of microseconds), and these
  connections never checkpoint the log themselves (``wal_autocheckpoint`` 0), which is what made a
  commit slow. A commit that finds the database busy is tried again in a thread. A trip to a
  thread per commit cost more than the commit: the thread waits for the interpreter lock while
  the hub is busy (up to its 5 ms switch interval), and a chat message waits for its commit.
- The log is checkpointed every ``CHECKPOINT_SECONDS`` by a task of the process, in a thread, on a
  connection of its own (``PASSIVE``: it neither waits for nor blocks the readers and writers).
- ``executescript`` always runs in a thread; ``rollback``, attributes, ``create_function`` and
  ``close`` go straight to the connection.

Only in a process that gevent or eventlet has monkey-patched; anywhere else (threading mode, the
command line, worker processes) ``connect`` returns a plain ``sqlite3`` connection. A connection
is used by one greenlet at a time (SQLAlchemy's pool), from the hub or a pool thread: connections
are opened with ``check_same_thread=False``. Errors raised by SQLite reach the caller unchanged.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

Runner = Callable[..., Any]
log = logging.getLogger(__name__)

# Native threads for database calls; a report query holds one for its whole run, so allow more
# than the hub's default of ten (idle threads cost next to nothing).
THREADS = 32


def _gevent_runner() -> Runner | None:
    if "gevent" not in sys.modules:  # not imported, so not patched (and not imported here)
        return None
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        return None
    import gevent

    pool = gevent.get_hub().threadpool
    pool.maxsize = max(pool.maxsize, THREADS)

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # The exception comes back as a value: gevent's pool would print every error raised in
        # its threads (an IntegrityError the caller handles included) on stderr.
        ok, value = pool.apply(_capture, (fn, args, kwargs))
        if not ok:
            raise value
        return value

    return run


def _capture(fn: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[bool, Any]:
    try:
        return True, fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - re-raised in the calling greenlet
        return False, exc


def _eventlet_runner() -> Runner | None:
    if "eventlet" not in sys.modules:
        return None
    from eventlet import patcher

    if not patcher.is_monkey_patched("socket"):
        return None
    from eventlet import tpool

    tpool.set_num_threads(max(THREADS, 20))
    return tpool.execute


def runner() -> Runner | None:
    """The function that runs ``fn(*args)`` in a native thread while the caller's greenlet waits,
    or None when this process is not monkey-patched by gevent or eventlet."""
    return _gevent_runner() or _eventlet_runner()


# Seconds a read may run on the hub before it is interrupted and run again in a thread.
HUB_BUDGET = 0.02
# SQLite virtual-machine steps between two looks at the clock while a read runs on the hub.
PROGRESS_STEPS = 2000
_READS = ("SELECT", "WITH", "PRAGMA", "EXPLAIN")
_WRITE_INSIDE = re.compile(r"\b(?:INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def _is_read(sql: str) -> bool:
    head = sql.lstrip()[:7].upper()
    if not head.startswith(_READS):
        return False
    # A common table expression in front of a write is a write (interrupting one would roll back
    # the transaction).
    return not head.startswith("WITH") or not _WRITE_INSIDE.search(sql)


def _code(exc: sqlite3.Error) -> int:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF


def _busy(exc: sqlite3.Error) -> bool:
    return _code(exc) == 5 or "database is locked" in str(exc)  # SQLITE_BUSY


def _interrupted(exc: sqlite3.Error) -> bool:
    return _code(exc) == 9 or str(exc) == "interrupted"  # SQLITE_INTERRUPT


class GreenCursor:
    """A ``sqlite3.Cursor`` whose long calls run in a native thread (see the module docstring)."""

    __slots__ = ("_cursor", "_owner", "_rows", "_next")

    def __init__(self, cursor: sqlite3.Cursor, owner: GreenConnection) -> None:
        object.__setattr__(self, "_cursor", cursor)
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_rows", None)
        object.__setattr__(self, "_next", 0)

    def _buffer(self, rows: list | None) -> None:
        object.__setattr__(self, "_rows", rows)
        object.__setattr__(self, "_next", 0)

    def _read_all(self, sql: str, parameters: Any) -> list:
        self._cursor.execute(sql, parameters)
        return self._cursor.fetchall()

    def execute(self, sql: str, parameters: Any = ()) -> GreenCursor:
        owner = self._owner
        if _is_read(sql):
            try:
                with owner.budget():
                    self._buffer(self._read_all(sql, parameters))
                return self
            except sqlite3.OperationalError as exc:
                if not (_interrupted(exc) or _busy(exc)):
                    raise
            self._buffer(owner.in_thread(self._read_all, sql, parameters))
            return self
        self._buffer(None)
        try:
            self._cursor.execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            owner.in_thread(self._cursor.execute, sql, parameters)
        return self

    def executemany(self, sql: str, seq_of_parameters: Any) -> GreenCursor:
        self._buffer(None)
        rows = seq_of_parameters if isinstance(seq_of_parameters, (list, tuple)) else list(seq_of_parameters)
        try:
            self._cursor.executemany(sql, rows)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            self._owner.in_thread(self._cursor.executemany, sql, rows)
        return self

    def executescript(self, script: str) -> GreenCursor:
        self._buffer(None)
        self._owner.in_thread(self._cursor.executescript, script)
        return self

    def fetchone(self) -> Any:
        if self._rows is None:
            return self._cursor.fetchone()
        if self._next >= len(self._rows):
            return None
        object.__setattr__(self, "_next", self._next + 1)
        return self._rows[self._next - 1]

    def fetchmany(self, size: int | None = None) -> list:
        if self._rows is None:
            return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)
        size = self._cursor.arraysize if size is None else size
        chunk = self._rows[self._next:self._next + size]
        object.__setattr__(self, "_next", self._next + len(chunk))
        return chunk

    def fetchall(self) -> list:
        if self._rows is None:
            return self._cursor.fetchall()
        rest = self._rows[self._next:]
        object.__setattr__(self, "_next", len(self._rows))
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchone, None)

    def __getattr__(self, name: str) -> Any:  # description, rowcount, lastrowid, close, ...
        return getattr(self._cursor, name)

    def __setattr__(self, name: str, value: Any) -> None:  # arraysize, row_factory
        setattr(self._cursor, name, value)


class GreenConnection:
    """A ``sqlite3.Connection`` whose long calls run in a native thread (see the module docstring)."""

    __slots__ = ("_connection", "_run", "_busy_ms", "_deadline", "__weakref__")

    def __init__(self, connection: sqlite3.Connection, run: Runner, busy_seconds: float) -> None:
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_busy_ms", max(0, int(busy_seconds * 1000)))
        object.__setattr__(self, "_deadline", None)
        connection.set_progress_handler(self._progress, PROGRESS_STEPS)

    @property
    def raw(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection underneath."""
        return self._connection

    def _progress(self) -> int:
        deadline = self._deadline
        return 1 if deadline is not None and time.monotonic() > deadline else 0

    @contextmanager
    def budget(self) -> Iterator[None]:
        """Within the block, a statement running longer than ``HUB_BUDGET`` is interrupted."""
        object.__setattr__(self, "_deadline", time.monotonic() + HUB_BUDGET)
        try:
            yield
        finally:
            object.__setattr__(self, "_deadline", None)

    def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in a native thread, waiting for SQLite's write lock up to the
        connection's timeout; the calling greenlet waits, the hub does not."""
        return self._run(self._waiting, fn, args)

    def _waiting(self, fn: Callable[..., Any], args: tuple) -> Any:
        self._connection.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        try:
            return fn(*args)
        finally:
            self._connection.execute("PRAGMA busy_timeout = 0")

    def cursor(self, *args: Any) -> GreenCursor:
        return GreenCursor(self._connection.cursor(*args), self)

    def execute(self, sql: str, parameters: Sequence | dict = ()) -> GreenCursor:
        return self.cursor().execute(sql, parameters)

    def commit(self) -> None:
        try:
            self._connection.commit()
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            self.in_thread(self._connection.commit)

    def __getattr__(self, name: str) -> Any:  # rollback, close, create_function, isolation_level, ...
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:  # isolation_level
        setattr(self._connection, name, value)


# Seconds between two checkpoints of a database's write-ahead log (see the module docstring).
CHECKPOINT_SECONDS = 1.0
_checkpointed: set[str] = set()
_checkpointed_lock = threading.Lock()


def _green_sleep() -> Callable[[float], None]:
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("socket"):
            import gevent

            return gevent.sleep
    import eventlet

    return eventlet.sleep


def _spawn(fn: Callable[[], None]) -> None:
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("socket"):
            import gevent

            gevent.spawn(fn)
            return
    import eventlet

    eventlet.spawn(fn)


def start_checkpoints(database: str, run: Runner, uri: bool = False) -> bool:
    """Checkpoint *database*'s write-ahead log every ``CHECKPOINT_SECONDS`` from now on, in a
    thread (once per database and process); False when it was started already or *database* is
    in memory."""
    if not database or database == ":memory:" or "mode=memory" in database:
        return False
    with _checkpointed_lock:
        if database in _checkpointed:
            return False
        _checkpointed.add(database)
    sleep = _green_sleep()
    own: list[sqlite3.Connection] = []

    def checkpoint() -> None:
        if not own:
            own.append(sqlite3.connect(database, uri=uri, timeout=0, check_same_thread=False))
        own[0].execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def loop() -> None:
        failing = False
        while True:
            sleep(CHECKPOINT_SECONDS)
            try:
                run(checkpoint)
                failing = False
            except sqlite3.Error as exc:  # logged once until it works again; the next one tries again
                if not failing:
                    log.warning("checkpoint of the SQLite log failed: %s", exc)
                failing = True

    _spawn(loop)
    return True


def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection | GreenConnection:
    """``sqlite3.connect``, wrapped in a :class:`GreenConnection` in a monkey-patched process. The
    ``timeout`` (seconds a write waits for another transaction's lock; sqlite3's default 5) applies
    to the writes sent to a thread; on the hub nothing waits. The connection leaves checkpoints to
    the process's checkpoint task (``start_checkpoints``)."""
    run = runner()
    if run is None:
        return sqlite3.connect(*args, **kwargs)
    busy_seconds = float(kwargs.pop("timeout", 5.0))
    kwargs.update(check_same_thread=False, timeout=0)
    connection = sqlite3.connect(*args, **kwargs)
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    database = args[0] if args else kwargs.get("database")
    start_checkpoints(str(database), run, uri=bool(kwargs.get("uri")))
    return GreenConnection(connection, run, busy_seconds)


def dbapi() -> types.ModuleType:
    """A DBAPI module for ``create_engine(module=...)``: ``sqlite3`` with :func:`connect`."""
    module = types.ModuleType("desk_green_sqlite3")
    module.__dict__.update({name: getattr(sqlite3, name) for name in dir(sqlite3) if not name.startswith("__")})
    module.connect = connect
    return module


def sqlite_connection(dbapi_connection: Any) -> sqlite3.Connection | None:
    """The ``sqlite3`` connection behind a DBAPI connection of either kind, or None when it is
    not SQLite (PostgreSQL)."""
    if isinstance(dbapi_connection, GreenConnection):
        return dbapi_connection.raw
    if isinstance(dbapi_connection, sqlite3.Connection):
        return dbapi_connection
    return None
