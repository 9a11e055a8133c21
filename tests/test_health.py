"""``GET /health``: what load balancers and monitors see, without signing in.

200 while the database answers (the message queue is reported, and only degrades the status);
503 as soon as the database does not.
"""

from __future__ import annotations

import io
import os

import pytest
from sqlalchemy.exc import OperationalError

from app import create_app
from app.extensions import db
from tests.conftest import make_test_config

REDIS_URL = os.environ.get("TEST_REDIS_URL")
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def test_health_is_ok_without_a_message_queue(app):
    app.config["SOCKETIO_MESSAGE_QUEUE"] = None

    response = app.test_client().get("/health")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "db": "ok", "message_queue": "none"}


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL")
def test_health_reports_a_reachable_message_queue(app):
    app.config["SOCKETIO_MESSAGE_QUEUE"] = REDIS_URL

    response = app.test_client().get("/health")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "db": "ok", "message_queue": "ok"}


def test_an_unreachable_message_queue_degrades_but_keeps_serving(app):
    app.config["SOCKETIO_MESSAGE_QUEUE"] = UNREACHABLE_REDIS

    response = app.test_client().get("/health")

    assert response.status_code == 200
    assert response.json == {"status": "degraded", "db": "ok", "message_queue": "error"}


def test_health_is_503_when_the_database_fails(app, monkeypatch):
    app.config["SOCKETIO_MESSAGE_QUEUE"] = None

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(db.session, "execute", down)
    response = app.test_client().get("/health")
    monkeypatch.undo()

    assert response.status_code == 503
    assert response.json == {"status": "error", "db": "error", "message_queue": "none"}
    assert b"connection refused" not in response.data  # no internals for anonymous callers
    assert app.test_client().get("/health").status_code == 200  # the next check recovers


@pytest.mark.parametrize("queue", [None, UNREACHABLE_REDIS])
def test_health_is_503_when_the_database_is_unreachable(app, tmp_path, queue):
    application = create_app(make_test_config(
        tmp_path, SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/missing?connect_timeout=2",
        SOCKETIO_MESSAGE_QUEUE=queue, REDIS_URL=None, RATELIMIT_STORAGE_URI="memory://"))
    try:
        response = application.test_client().get("/health")
    finally:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()

    assert response.status_code == 503
    assert response.json == {"status": "error", "db": "error",
                             "message_queue": "none" if queue is None else "error"}


def test_the_favicon_is_an_icon_for_anyone(app):
    from PIL import Image

    response = app.test_client().get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/vnd.microsoft.icon"
    assert Image.open(io.BytesIO(response.data)).format == "ICO"
