"""run.py's capacity settings: the open-file limit is raised (each chat connection is a socket)
and eventlet's server accepts more than its default of 1,024 connections at once."""

from __future__ import annotations

import resource

import pytest

import run


def test_the_open_file_limit_is_raised_to_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        now = run.raise_open_file_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == now
        assert now == (hard if hard != resource.RLIM_INFINITY else max(1024, 65536))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize(("mode", "cap"), [("eventlet", 20000), ("gevent", None), ("threading", None)])
def test_eventlets_connection_cap_is_lifted(monkeypatch, mode, cap):
    monkeypatch.setattr(run, "ASYNC_MODE", mode)
    monkeypatch.delenv("MAX_CONNECTIONS", raising=False)
    assert run.server_options().get("max_size") == cap  # gevent's and werkzeug's servers have no cap
    if mode == "eventlet":
        monkeypatch.setenv("MAX_CONNECTIONS", "6000")
        assert run.server_options() == {"max_size": 6000}
