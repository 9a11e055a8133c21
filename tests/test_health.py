"""``GET /health``: what load balancers and monitors see, without signing in.

200 while the database answers ("degraded" when a Redis part does not: the desk still serves);
503 as soon as the database does not. Each part is named, never its address or error.
"""

from __future__ import annotations

import io
import os

import pytest
from sqlalchemy.exc import OperationalError

from app.extensions import db

REDIS_URL = os.environ.get("TEST_REDIS_URL")
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
UNREACHABLE_DATABASE = "postgresql+psycopg://nobody@127.0.0.1:1/missing?connect_timeout=2"


def _single_process(app) -> None:
    """No Redis anywhere: the embedded set-up of ``make run`` without ``REDIS_URL``."""
    app.config.update(SOCKETIO_MESSAGE_QUEUE=None, RATELIMIT_STORAGE_URI="memory://", REDIS_URL=None)


def test_health_is_ok_without_redis(app):
    _single_process(app)

    response = app.test_client().get("/health")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "db": "ok", "message_queue": "none", "rate_limit_storage": "memory"}


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL")
def test_health_reports_each_reachable_redis_part(app):
    app.config.update(SOCKETIO_MESSAGE_QUEUE=REDIS_URL, RATELIMIT_STORAGE_URI=REDIS_URL, REDIS_URL=REDIS_URL)

    response = app.test_client().get("/health")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "db": "ok", "message_queue": "ok", "rate_limit_storage": "ok",
                             "job_queue": "ok"}


def test_redis_down_degrades_every_redis_part_but_keeps_serving(app):
    app.config.update(SOCKETIO_MESSAGE_QUEUE=UNREACHABLE_REDIS, RATELIMIT_STORAGE_URI=UNREACHABLE_REDIS,
                      REDIS_URL=UNREACHABLE_REDIS)

    response = app.test_client().get("/health")

    assert response.status_code == 200
    assert response.json == {"status": "degraded", "db": "ok", "message_queue": "error",
                             "rate_limit_storage": "error", "job_queue": "error"}
    assert b"127.0.0.1" not in response.data


def test_only_the_part_that_is_down_is_named(app):
    app.config.update(SOCKETIO_MESSAGE_QUEUE=UNREACHABLE_REDIS, RATELIMIT_STORAGE_URI="memory://", REDIS_URL=None)

    response = app.test_client().get("/health")

    assert response.status_code == 200
    assert response.json == {"status": "degraded", "db": "ok", "message_queue": "error",
                             "rate_limit_storage": "memory"}


def test_health_is_503_when_the_database_fails(app, monkeypatch):
    _single_process(app)

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(db.session, "execute", down)
    response = app.test_client().get("/health")
    monkeypatch.undo()

    assert response.status_code == 503
    assert response.json == {"status": "error", "db": "error", "message_queue": "none",
                             "rate_limit_storage": "memory"}
    assert b"connection refused" not in response.data  # no internals for anonymous callers
    assert app.test_client().get("/health").status_code == 200  # the next check recovers


@pytest.mark.parametrize("redis_url", [None, UNREACHABLE_REDIS])
def test_health_is_503_when_the_database_is_unreachable(second_app, redis_url):
    application = second_app(SQLALCHEMY_DATABASE_URI=UNREACHABLE_DATABASE, SOCKETIO_MESSAGE_QUEUE=redis_url,
                             REDIS_URL=redis_url, RATELIMIT_STORAGE_URI=redis_url or "memory://")
    response = application.test_client().get("/health")

    assert response.status_code == 503
    expected = {"status": "error", "db": "error"}
    if redis_url is None:
        expected.update(message_queue="none", rate_limit_storage="memory")
    else:
        expected.update(message_queue="error", rate_limit_storage="error", job_queue="error")
    assert response.json == expected


def test_the_favicon_is_an_icon_for_anyone(app):
    from PIL import Image

    response = app.test_client().get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/vnd.microsoft.icon"
    assert Image.open(io.BytesIO(response.data)).format == "ICO"
