"""Test fixtures: one migrated database per session, reset to a snapshot after every test.

The reset rewrites only the tables the test wrote (every statement of the process is watched),
those whose row count differs from the snapshot (a write from outside the process), and the
tables that refer to either (their rows may point at the rows deleted and written again).

The database is SQLite in a temp folder, or PostgreSQL when ``TEST_DATABASE_URL`` is set;
Redis (rate-limit storage, message queue) is used when ``TEST_REDIS_URL`` is set.
"""

from __future__ import annotations

import os
import re
import socket
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from flask.testing import FlaskClient
from flask_appbuilder import Model
from sqlalchemy import create_engine, event, func, insert, literal, select, text, union_all
from sqlalchemy.engine import Engine, make_url

from app import create_app
from app.extensions import db
from app.services.bootstrap import prepare_database
from app.services.users import create_user
from tests.servers import (
    demo_server,  # noqa: F401 - the shared real server, a session fixture
    empty_postgres,
    redis_number_below,
)

REDIS_NUMBERS_PER_WORKER = 4  # the worker's own, and one per group of test servers (tests.servers)


def _own_worker_services() -> None:
    """Under pytest-xdist (``pytest -n N``) every worker but the first gets a PostgreSQL database
    (``<name>_gw1``, created when missing) and Redis database numbers of its own, so that workers
    never reset, lock or rate-limit each other's data. SQLite needs nothing: each worker has its
    own temp folder."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or worker == "gw0":
        return
    database_url = os.environ.get("TEST_DATABASE_URL", "")
    if database_url.startswith("postgresql"):
        url = make_url(database_url)
        name = f"{url.database}_{worker}"
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}):
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        os.environ["TEST_DATABASE_URL"] = url.set(database=name).render_as_string(hide_password=False)
    redis_url = os.environ.get("TEST_REDIS_URL")
    if redis_url:
        os.environ["TEST_REDIS_URL"] = redis_number_below(redis_url, REDIS_NUMBERS_PER_WORKER * int(worker[2:]))


_own_worker_services()

PASSWORD = "Test-Pass-2026xy"
ROLE_USERS = {
    "admin": ["Admin"],
    "manager": ["Manager"],
    "accountant": ["Accountant"],
    "accountant2": ["Accountant"],
    "reviewer": ["Reviewer"],
    "agent": ["Agent"],
}


def _database_url(tmp: Path) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp / 'test.db'}"


def make_test_config(tmp: Path, **overrides) -> dict:
    cfg = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp / "instance"),
        "SQLALCHEMY_DATABASE_URI": _database_url(tmp),
        "SECRET_KEY": "test-secret-key-of-at-least-32-bytes-long",
        "WTF_CSRF_ENABLED": False,
        "ASYNC_MODE": "threading",
        "AUTH_RATE_LIMITED": False,
        "RATELIMIT_ENABLED": False,
        "MFA_REQUIRED_ROLES": [],
        "REDIS_URL": os.environ.get("TEST_REDIS_URL") or None,
        "SOCKETIO_MESSAGE_QUEUE": os.environ.get("TEST_REDIS_URL") or None,
        "RATELIMIT_STORAGE_URI": os.environ.get("TEST_REDIS_URL") or "memory://",
        "SERVER_NAME": None,
    }
    cfg["UPLOAD_DIR"] = str(tmp / "instance" / "archives")
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # A test database need not survive a crash: commits return without waiting for the disk.
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True,
                                            "connect_args": {"options": "-c synchronous_commit=off"}}
    cfg.update(overrides)
    return cfg


class FreshContextClient(FlaskClient):
    """Each request runs in its own application context, as in production.

    pytest-flask keeps an app context pushed for the whole test; without this, requests would
    share its ``g`` (and Flask-Login's cached user) with each other.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def _session_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("desk")


@pytest.fixture(scope="session")
def app(_session_tmp):
    url = _database_url(_session_tmp)
    if url.startswith("postgresql"):
        empty_postgres(url)
    application = create_app(make_test_config(_session_tmp))
    application.test_client_class = FreshContextClient
    with application.app_context():
        prepare_database(application)
        for username, roles in ROLE_USERS.items():
            create_user(application, username, PASSWORD, roles, first_name=username)
        snapshot = {}
        for table in Model.metadata.sorted_tables:
            rows = [dict(r._mapping) for r in db.session.execute(table.select())]
            snapshot[table.name] = rows
        db.session.commit()
    application.extensions["test_snapshot"] = snapshot
    _written.clear()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


_WRITE = re.compile(r'\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+"?(\w+)"?', re.I)
_SCHEMA = re.compile(r"\s*(?:TRUNCATE|DROP|ALTER|CREATE)\b", re.I)
_EVERY_TABLE = "*"
_written: set[str] = set()


@event.listens_for(Engine, "before_cursor_execute")
def _note_writes(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ARG001
    """Remember which tables the statements of this process write (any engine, any thread)."""
    head = statement[:300]
    found = _WRITE.match(head)
    if found:
        _written.add(found.group(1))
    elif _SCHEMA.match(head):
        _written.add(_EVERY_TABLE)


def _tables_to_reset(conn, snapshot: dict, written: set[str]) -> list:
    tables = Model.metadata.sorted_tables
    if _EVERY_TABLE in written:
        return tables
    counts = conn.execute(union_all(*(select(literal(t.name), func.count()).select_from(t) for t in tables))).all()
    names = set(written) | {name for name, count in counts if count != len(snapshot.get(name) or ())}
    grown = True
    while grown:  # and every table that refers to one of them, at any depth
        before = len(names)
        names |= {t.name for t in tables if any(fk.column.table.name in names for fk in t.foreign_keys)}
        grown = len(names) > before
    return [t for t in tables if t.name in names]


def reset_database(application) -> None:
    """Put back the snapshot. On SQLite foreign keys are off meanwhile: SQLite refuses a RESTRICT
    key row by row, so emptying a table whose rows refer to each other (accounts and their
    parents) in one statement would fail there though it passes on PostgreSQL. The keys are
    checked once the snapshot is back, and on again before the connection returns to the pool."""
    snapshot = application.extensions["test_snapshot"]
    with application.app_context():
        db.session.remove()
        written = set(_written)
        with db.engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                conn.commit()
            try:
                with conn.begin():
                    tables = _tables_to_reset(conn, snapshot, written)
                    for table in reversed(tables):
                        conn.execute(table.delete())
                    for table in tables:
                        rows = snapshot.get(table.name)
                        if rows:
                            conn.execute(insert(table), rows)
                    if sqlite:
                        dangling = [row for table in tables for row in
                                    conn.exec_driver_sql(f'PRAGMA foreign_key_check("{table.name}")').all()]
                        assert not dangling, f"the reset left rows pointing at nothing: {dangling[:5]}"
                if sqlite:
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()
            except BaseException:
                if sqlite:
                    conn.invalidate()  # never back to the pool with keys off
                raise
        _written.clear()


@pytest.fixture(autouse=True)
def _fresh_database(app, tmp_path):
    original = dict(app.config)
    app.config["UPLOAD_DIR"] = str(tmp_path / "archives")
    yield
    app.config.clear()
    app.config.update(original)
    app.extensions.pop("field_cipher", None)
    reset_database(app)


@pytest.fixture
def second_app(app, tmp_path):
    """``second_app(**config)``: another application for settings the suite's one does not have,
    on the same database and field key unless *config* says otherwise. Afterwards its engine is
    disposed and the Socket.IO server, which every ``create_app`` rebinds, serves the suite's
    application again (a second app with a message queue would otherwise break the socket tests
    that follow)."""
    from app import _init_socketio

    made = []

    def _make(**overrides):
        config = {"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                  "FIELD_ENCRYPTION_KEY": app.config["FIELD_ENCRYPTION_KEY"], **overrides}
        application = create_app(make_test_config(tmp_path / f"second-{len(made)}", **config))
        application.test_client_class = FreshContextClient
        made.append(application)
        return application

    yield _make
    for application in made:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
    if made:
        _init_socketio(app)


@pytest.fixture
def session(app):
    """The SQLAlchemy session (inside the app context pytest-flask pushes)."""
    return db.session


class AuthActions:
    def __init__(self, client) -> None:
        self.client = client

    def login(self, username: str, password: str = PASSWORD, follow: bool = False):
        return self.client.post("/login/", data={"username": username, "password": password},
                                follow_redirects=follow)

    def logout(self):
        return self.client.get("/logout/")


@pytest.fixture
def auth(client) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def login_as(app):
    """``login_as("manager")`` returns a fresh test client signed in as that user."""

    def _login(username: str):
        test_client = app.test_client()
        response = test_client.post("/login/", data={"username": username, "password": PASSWORD})
        assert response.status_code == 302, response.data[:500]
        return test_client

    return _login


@pytest.fixture
def user_id(app):
    def _id(username: str) -> int:
        return app.appbuilder.sm.find_user(username=username).id

    return _id


@pytest.fixture
def api_token(app):
    """``api_token("manager")`` returns headers with a JWT bearer token for that user."""

    def _token(username: str) -> dict:
        response = app.test_client().post("/api/v1/security/login", json={
            "username": username, "password": PASSWORD, "provider": "db"})
        assert response.status_code == 200, response.json
        return {"Authorization": f"Bearer {response.json['access_token']}"}

    return _token


# --- a local SMTP server (mail the desk sends: replies, transcripts, reminders) --------------------


class _Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], object]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        self.mails.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def _smtp_server():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def smtp(app, _smtp_server):
    """Mail goes to the local server; ``smtp.mails`` holds ``(recipients, message)`` pairs."""
    controller, inbox = _smtp_server
    inbox.mails.clear()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port, MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                      MAIL_USERNAME=None, MAIL_DEFAULT_SENDER="desk@example.com")
    return inbox


@pytest.fixture
def smtp_down(app):
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=_free_port(), MAIL_USE_TLS=False, MAIL_USE_SSL=False)
