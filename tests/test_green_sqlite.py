"""SQLite under gevent and eventlet: a long query or a checkpoint does not hold the hub
(app/green_sqlite.py), errors reach the caller, and only green SQLite file databases use it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.config import build_config
from app.green_sqlite import GreenConnection, _is_read, connect, sqlite_connection

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import sys, time
    mode, db = sys.argv[1], sys.argv[2]
    if mode == "gevent":
        from gevent import monkey; monkey.patch_all()
        import gevent; spawn, sleep = gevent.spawn, gevent.sleep
    else:
        import eventlet; eventlet.monkey_patch(); spawn, sleep = eventlet.spawn, eventlet.sleep
    from sqlalchemy import create_engine, exc, text
    from app.config import build_config
    cfg = build_config({"SQLALCHEMY_DATABASE_URI": "sqlite:///" + db, "ASYNC_MODE": mode,
                        "INSTANCE_PATH": db + ".instance"})
    engine = create_engine(cfg["SQLALCHEMY_DATABASE_URI"], **cfg["SQLALCHEMY_ENGINE_OPTIONS"])
    ticks = []
    def ticker():
        while True:
            ticks.append(time.perf_counter()); sleep(0.002)
    spawn(ticker); sleep(0.01)
    start = time.perf_counter()
    with engine.connect() as conn:
        print("kind", type(conn.connection.dbapi_connection).__name__)
        n = conn.execute(text("WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r "
                              "WHERE i < 2000000) SELECT count(*) FROM r")).scalar()
    end = time.perf_counter()
    print("count", n)
    print("ticks_during_query", sum(1 for t in ticks if start < t < end))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE u (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO u VALUES (1)"))
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO u VALUES (2)"))
            conn.execute(text("INSERT INTO u VALUES (1)"))
    except exc.IntegrityError:
        print("integrity_error yes")
    with engine.connect() as conn:
        print("rows", conn.execute(text("SELECT count(*) FROM u")).scalar())
        print("journal", conn.execute(text("PRAGMA journal_mode")).scalar())
        print("foreign_keys", conn.execute(text("PRAGMA foreign_keys")).scalar())
        print("autocheckpoint", conn.execute(text("PRAGMA wal_autocheckpoint")).scalar())
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO u VALUES (3)"))
    sleep(2.5)  # the process's checkpoint task copies the log into the database file meanwhile
    import shutil, sqlite3
    shutil.copy(db, db + ".main-only")  # the database file without its log
    print("checkpointed_rows", sqlite3.connect(db + ".main-only").execute("SELECT count(*) FROM u").fetchone()[0])
""")


@pytest.mark.parametrize("mode", ["gevent", "eventlet"])
def test_long_sqlite_query_leaves_the_hub_free(mode: str, tmp_path: Path) -> None:
    """Other greenlets keep running while SQLite works (without the wrapper they get no turn at
    all until the query ends); an error raised by SQLite reaches the caller and rolls back."""
    result = subprocess.run([sys.executable, "-c", SCRIPT, mode, str(tmp_path / "green.db")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["kind"] == "GreenConnection"
    assert lines["count"] == "2000000"
    assert int(lines["ticks_during_query"]) > 0
    assert lines["integrity_error"] == "yes"
    assert lines["rows"] == "1"  # the failed transaction's first insert was rolled back
    assert lines["journal"] == "wal"  # the connect listener reached the connection underneath
    assert lines["foreign_keys"] == "1"  # and so SQLite enforces foreign keys under gevent and eventlet too
    assert lines["autocheckpoint"] == "0"  # a commit never checkpoints (it runs on the hub)...
    assert lines["checkpointed_rows"] == "2"  # ...the process's checkpoint task does, in a thread
    assert "Traceback" not in result.stderr  # the handled error was not printed by the thread pool


def test_unpatched_process_gets_plain_sqlite(tmp_path: Path) -> None:
    """In a process gevent and eventlet did not patch (this one: threading mode), ``connect`` is
    ``sqlite3.connect``."""
    conn = connect(str(tmp_path / "plain.db"))
    try:
        assert isinstance(conn, sqlite3.Connection)
        assert sqlite_connection(conn) is conn
        assert not isinstance(conn, GreenConnection)
    finally:
        conn.close()
    assert sqlite_connection(object()) is None


@pytest.mark.parametrize(("mode", "uri", "green"), [
    ("gevent", "sqlite:///{tmp}/a.db", True),
    ("eventlet", "sqlite:///{tmp}/a.db", True),
    ("threading", "sqlite:///{tmp}/a.db", False),
    ("gevent", "sqlite://", False),
    ("gevent", "postgresql+psycopg://u@127.0.0.1:1/x", False),
])
def test_only_green_sqlite_files_use_the_wrapper(mode: str, uri: str, green: bool, tmp_path: Path) -> None:
    cfg = build_config({"SQLALCHEMY_DATABASE_URI": uri.format(tmp=tmp_path), "ASYNC_MODE": mode,
                        "INSTANCE_PATH": str(tmp_path / "instance")})
    module = cfg["SQLALCHEMY_ENGINE_OPTIONS"].get("module")
    assert (module is not None) is green
    # no ping before each checkout of a SQLite file's connection (nothing can drop it); a server's, yes
    assert cfg["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is not uri.startswith("sqlite:///")
    if green:
        assert module.connect is connect
        assert module.IntegrityError is sqlite3.IntegrityError


@pytest.mark.parametrize(("sql", "read"), [
    ("SELECT id FROM ledger_voucher", True),
    ("  select updated_at FROM ledger_voucher", True),
    ("WITH recent AS (SELECT id, updated_at FROM ledger_voucher) SELECT * FROM recent", True),
    ("PRAGMA journal_mode", True),
    ("WITH gone AS (SELECT id FROM ledger_voucher) DELETE FROM ledger_voucher_line", False),
    ("INSERT INTO chat_message (id) VALUES (1)", False),
    ("UPDATE ledger_book SET updated_at = updated_at", False),
])
def test_only_reads_may_be_interrupted_and_run_again(sql: str, read: bool) -> None:
    """A read may be stopped past its budget and run again in a thread; a write (interrupting one
    would roll back its transaction), a common table expression in front of one included, never."""
    assert _is_read(sql) is read
