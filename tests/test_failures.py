"""Failures reach the log with their traceback, and a database that cannot be reached is a 503.

- An unhandled exception in an HTML view, in a REST API method (Flask-AppBuilder's ``@safe`` turns
  it into a JSON 500) and in a PDF download is logged with its traceback.
- The migration step leaves the loggers of Flask, werkzeug and Socket.IO enabled.
- With the database unreachable, API calls answer JSON 503, pages a 503 page, both with
  ``Retry-After``; a database error that is a bug (a missing table) stays a 500 with its traceback.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy.exc import OperationalError

from app.extensions import db
from tests.conftest import PASSWORD
from tests.factories import make_client

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE_DATABASE = "postgresql+psycopg://nobody@127.0.0.1:1/missing?connect_timeout=2"


@pytest.fixture
def as_served(app):
    """Exceptions handled as a served application handles them (tests let them propagate)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # restored after the test by tests/conftest.py


def _logged_with_traceback(caplog: pytest.LogCaptureFixture, message: str) -> logging.LogRecord:
    """The ERROR record that carries the exception *message* with its traceback."""
    for record in caplog.records:
        if record.levelno >= logging.ERROR and record.exc_info and message in str(record.exc_info[1]):
            assert record.exc_info[2] is not None  # the traceback itself, not only the message
            return record
    raise AssertionError(f"no ERROR record with the traceback of {message!r}: "
                         f"{[(r.name, r.levelname, r.getMessage()[:80]) for r in caplog.records]}")


def test_an_exception_in_an_html_view_is_logged_with_its_traceback(as_served, login_as, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("the renewals query broke")

    monkeypatch.setattr("app.views.home.renewals_due", broken)
    manager = login_as("manager")
    caplog.clear()

    response = manager.get("/")

    assert response.status_code == 500
    _logged_with_traceback(caplog, "the renewals query broke")


def test_an_exception_in_a_rest_api_method_is_logged_and_answered_as_json(as_served, app, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("the password check broke")

    monkeypatch.setattr(app.appbuilder.sm, "auth_user_db", broken)
    caplog.clear()

    response = app.test_client().post("/api/v1/security/login",
                                      json={"username": "manager", "password": PASSWORD, "provider": "db"})

    assert response.status_code == 500
    assert response.is_json and "message" in response.json
    assert "password check broke" not in response.get_data(as_text=True)  # no internals to the caller
    _logged_with_traceback(caplog, "the password check broke")


def test_an_exception_in_a_pdf_download_is_logged_with_its_traceback(as_served, login_as, monkeypatch, caplog):
    from reports import documents

    def broken(*args, **kwargs):
        raise RuntimeError("the statement builder broke")

    client_id = make_client().id
    db.session.commit()
    monkeypatch.setitem(documents.BUILDERS, "statement", broken)
    manager = login_as("manager")
    caplog.clear()

    response = manager.get(f"/reports/statement.pdf?client_id={client_id}&period=2026-01")

    assert response.status_code == 500
    _logged_with_traceback(caplog, "the statement builder broke")


def test_a_database_error_that_is_a_bug_stays_a_logged_500(as_served, login_as, monkeypatch, caplog):
    def missing_table(*args, **kwargs):
        raise OperationalError("SELECT * FROM renewal", {}, sqlite3.OperationalError("no such table: renewal"))

    monkeypatch.setattr("app.views.home.renewals_due", missing_table)
    manager = login_as("manager")
    caplog.clear()

    response = manager.get("/")

    assert response.status_code == 500
    _logged_with_traceback(caplog, "no such table: renewal")


MIGRATE_THEN_LOG = """
import logging, sys
from app import create_app
from app.services.bootstrap import prepare_database

app = create_app()
loggers = [app.logger, logging.getLogger("werkzeug"), logging.getLogger("engineio.server"),
           logging.getLogger("socketio.server"), logging.getLogger("flask_appbuilder.api")]
with app.app_context():
    prepare_database(app)
for logger in loggers:
    logger.error("still logging: %s", logger.name)
print("migrated", flush=True)
"""


def test_the_migration_step_leaves_the_loggers_enabled(tmp_path):
    """In a process that has not configured logging (``flask init-db``, or ``run.py`` before), the
    migrations used to disable every logger that existed before them."""
    env = {"PATH": "/usr/bin:/bin", "INSTANCE_PATH": str(tmp_path / "instance"), "ASYNC_MODE": "threading",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'desk.db'}"}
    result = subprocess.run([sys.executable, "-c", MIGRATE_THEN_LOG], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    assert "Running upgrade" in result.stderr  # the migrations did run in this process
    for name in ("app", "werkzeug", "engineio.server", "socketio.server", "flask_appbuilder.api"):
        assert f"still logging: {name}" in result.stderr


# --- the database unreachable ----------------------------------------------------------------


@pytest.fixture
def unreachable(second_app):
    """An application whose database cannot be reached (a closed port)."""
    return second_app(SQLALCHEMY_DATABASE_URI=UNREACHABLE_DATABASE, SOCKETIO_MESSAGE_QUEUE=None, REDIS_URL=None,
                      RATELIMIT_STORAGE_URI="memory://", PROPAGATE_EXCEPTIONS=False)


def test_api_calls_answer_json_503_while_the_database_is_unreachable(app, unreachable, caplog):
    with app.app_context():  # a token issued before the outage (it names the user's credential version)
        token = create_access_token(identity="1", fresh=True)
    client = unreachable.test_client()
    caplog.clear()

    listed = client.get("/api/v1/client/", headers={"Authorization": f"Bearer {token}"})
    login = client.post("/api/v1/security/login", json={"username": "manager", "password": PASSWORD,
                                                         "provider": "db"})

    for response in (listed, login):
        assert response.status_code == 503, response.data[:300]
        assert response.is_json and response.json["message"]
        assert response.headers["Retry-After"].isdigit()
        assert "127.0.0.1" not in response.get_data(as_text=True)
    assert any(r.levelno == logging.WARNING and "database unavailable" in r.getMessage() for r in caplog.records)


def test_pages_answer_a_503_page_while_the_database_is_unreachable(unreachable):
    client = unreachable.test_client()
    signed_in = unreachable.test_client()
    with signed_in.session_transaction() as session:  # a browser that signed in before the outage
        session["_user_id"] = "1"
        session["_fresh"] = True

    login = client.post("/login/", data={"username": "manager", "password": PASSWORD})
    home = signed_in.get("/")

    for response in (login, home):
        assert response.status_code == 503
        assert response.mimetype == "text/html"
        assert response.headers["Retry-After"].isdigit()
        page = response.get_data(as_text=True)
        assert "<h1>服务暂时不可用</h1>" in page  # the default language is Simplified Chinese
        assert "Traceback" not in page and "127.0.0.1" not in page
    assert client.get("/health").status_code == 503
