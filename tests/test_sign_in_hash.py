"""The password check of a sign-in (70-130 ms of scrypt) runs in a worker process under gevent and
eventlet, where it would otherwise hold the whole server; in-process under threading, or when no
worker can take it."""

from __future__ import annotations

import logging

import pytest

from app import workers
from tests.conftest import PASSWORD


@pytest.fixture
def hashed_by(app, monkeypatch):
    """The tasks the worker pool was asked to run (still run for real)."""
    asked: list[str] = []
    real = workers.call

    def spy(task, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        asked.append(task)
        return real(task, *args, **kwargs)

    monkeypatch.setattr(workers, "call", spy)
    return asked


@pytest.mark.parametrize("mode", ["gevent", "eventlet"])
def test_under_a_hub_the_password_is_checked_by_a_worker(app, hashed_by, mode):
    app.config["ASYNC_MODE"] = mode
    client = app.test_client()

    right = client.post("/login/", data={"username": "accountant", "password": PASSWORD})
    client.get("/logout/")
    wrong = client.post("/login/", data={"username": "accountant", "password": PASSWORD + "x"})
    unknown = client.post("/login/", data={"username": "nobody-here", "password": PASSWORD})

    assert right.status_code == 302 and "/login" not in right.headers["Location"]
    assert "/login" in wrong.headers["Location"] and "/login" in unknown.headers["Location"]
    assert hashed_by == ["password.check"] * 3  # the unknown name costs a check as well


def test_under_threading_the_password_is_checked_in_process(app, hashed_by):
    client = app.test_client()
    response = client.post("/login/", data={"username": "accountant", "password": PASSWORD})
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    assert hashed_by == []


def test_without_a_worker_sign_in_still_works_and_says_so(app, monkeypatch, caplog):
    app.config["ASYNC_MODE"] = "gevent"

    def unavailable(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise workers.WorkersUnavailable("no worker process is running")

    monkeypatch.setattr(workers, "call", unavailable)
    with caplog.at_level(logging.WARNING, logger="app.services.users"):
        response = app.test_client().post("/login/", data={"username": "accountant", "password": PASSWORD})
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    assert any("no worker process is running" in r.getMessage() for r in caplog.records)
