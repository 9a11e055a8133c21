"""Helpers for tests that start real server processes (``run.py``) as a user would."""

from __future__ import annotations

import os

# Settings a test server must not inherit from the test run: its database, Redis and async mode
# are the test's choice (the async mode is left at the default, which is what ``make run`` uses).
SERVER_OWN = ("DATABASE_URL", "REDIS_URL", "SOCKETIO_MESSAGE_QUEUE", "ASYNC_MODE")


def server_env(**values: str) -> dict[str, str]:
    """The test run's environment without ``SERVER_OWN``, plus *values*."""
    env = {k: v for k, v in os.environ.items() if k not in SERVER_OWN}
    env.update(values)
    return env
