"""Extension singletons, bound to an application by ``create_app``.

Two exceptions: Flask-AppBuilder, because an ``AppBuilder`` keeps the views it registered, so each
application gets its own (``create_app`` builds it; code reaches it as ``current_app.appbuilder``);
and Flask-Migrate, bound by ``app.services.bootstrap.init_migrations`` only when a migration runs
(it imports Alembic, which a start with nothing to migrate does without).
"""

from __future__ import annotations

from flask_appbuilder.utils.legacy import get_sqla_class
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.green_sqlite import sqlite_connection

db = get_sqla_class()()
csrf = CSRFProtect()
socketio = SocketIO()


@event.listens_for(Engine, "connect")
def _sqlite_setup(dbapi_connection, connection_record) -> None:  # noqa: ANN001, ARG001
    """SQLite enforces foreign keys on every connection (``PRAGMA foreign_keys=ON``; SQLite's
    default is off): a row cannot point at a row that does not exist, and the ``ondelete`` rules
    of the models (CASCADE, SET NULL, RESTRICT) happen on SQLite as on PostgreSQL. The pragma is
    per connection and ignored inside a transaction, so it is set here, before any. Migrations
    turn it off while they run (migrations/env.py) and check every key afterwards.

    SQLite runs in WAL mode: readers never block the writer nor the writer the readers, so a
    request that holds a read transaction while it waits (for a PDF worker, say) cannot make
    another one's commit spin in SQLite's busy handler, which would block the whole server
    under gevent or eventlet. (A no-op on PostgreSQL and on in-memory databases.)

    Commits write the WAL without waiting for the disk (``synchronous=NORMAL``, SQLite's advice for
    WAL): under gevent or eventlet the whole server waits while a commit syncs, which capped the
    chat near 170 messages/s. A crashed or killed server loses nothing it acknowledged; a power
    cut or an operating-system crash may lose the last transactions before a checkpoint. Where
    that matters, run PostgreSQL."""
    connection = sqlite_connection(dbapi_connection)
    if connection is not None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
