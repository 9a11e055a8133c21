"""The Socket.IO message queue over Redis, and what happens while Redis is down.

Several server processes share the chat through Redis: an event emitted in one process is published
on the queue's channel and every other process hands it to its own clients. python-socketio's
``RedisManager`` hands every emit to this process's clients first and then publishes it (the
project requires a python-socketio that does; ``tests/test_degraded.py`` checks it), so the chat
keeps working within one process when Redis is down. What it does badly then is the rest: every
emit tries to connect twice and logs two errors, without a connect timeout (a host that drops
packets stalls the emitting handler for minutes), and its listener waits up to a minute between
reconnection attempts, logging each one.

``DeskRedisManager`` keeps the delivery and changes the rest:

- publishing uses short connect and read timeouts; when it fails, one warning says the queue is
  down and that events reach this process's clients only, and publishing is not tried again for
  ``retry_seconds`` (emits in between are delivered here and not published);
- the listener has its own connection and tries to reconnect every ``retry_seconds``;
- when a publish or the listener gets through again, one line says the queue is back.

Events published by other processes while this one could not listen are lost, as with any
Redis pub/sub outage; the chat's clients resume from the last message id they saw.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

from socketio import RedisManager

log = logging.getLogger(__name__)

CHANNEL = "flask-socketio"  # Flask-SocketIO's default: processes and external emitters must agree
RETRY_SECONDS = 2.0
PUBLISH_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 2}
# The listener blocks on reads between events, so no read timeout; keepalive and health checks
# find a dead connection.
LISTEN_OPTIONS = {"socket_connect_timeout": 2, "socket_keepalive": True, "health_check_interval": 30}


def redacted(url: str) -> str:
    """*url* without its password, for log lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


class DeskRedisManager(RedisManager):
    """``RedisManager`` that degrades to this process while Redis is down (see the module docstring)."""

    def __init__(self, url: str, channel: str = CHANNEL, retry_seconds: float = RETRY_SECONDS,
                 write_only: bool = False) -> None:
        super().__init__(url, channel=channel, write_only=write_only, logger=log,
                         redis_options=dict(PUBLISH_OPTIONS))
        self.retry_seconds = retry_seconds
        self._state_lock = threading.Lock()
        self._down_since: float | None = None
        self._next_publish = 0.0
        self._listen_redis = None
        self._closed = False

    # --- state -------------------------------------------------------------------------

    @property
    def down(self) -> bool:
        """True from a failed publish or listen until one gets through again."""
        return self._down_since is not None

    def _mark_down(self, error: BaseException) -> None:
        with self._state_lock:
            first = self._down_since is None
            if first:
                self._down_since = time.monotonic()
        if first:
            log.warning("message queue %s unreachable (%s): chat events reach the clients of this process only "
                        "until it answers again", redacted(self.redis_url), error)

    def _mark_up(self) -> None:
        with self._state_lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.warning("message queue %s reachable again after %.0f s", redacted(self.redis_url),
                        time.monotonic() - since)

    # --- publishing ----------------------------------------------------------------------

    def _redis_connect(self) -> None:
        module = self._get_redis_module()
        self.redis = module.Redis.from_url(self.redis_url, **self.redis_options)
        self.connected = True

    def _publish(self, data: dict) -> int | None:
        """Publish *data* for the other processes (this one has delivered it already)."""
        now = time.monotonic()
        if self.down and now < self._next_publish:
            return None
        try:
            if not self.connected:
                self._redis_connect()
            receivers = self.redis.publish(self.channel, self.json.dumps(data))
        except Exception as exc:  # noqa: BLE001 - any failure: this process carries on alone
            self.connected = False
            self._next_publish = now + self.retry_seconds
            self._mark_down(exc)
            return None
        self._mark_up()
        return receivers

    # --- listening -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening (the listener ends) and drop the connections."""
        self._closed = True
        for closable in (self.pubsub, self._listen_redis, self.redis):
            if closable is not None:
                try:
                    closable.close()
                except Exception:  # noqa: BLE001, S110 - closing what may be broken already
                    pass

    def _listen(self) -> Iterator[bytes]:
        channel = self.channel.encode("utf-8")
        for message in self._redis_listen_with_retries():
            if message["channel"] == channel and message["type"] == "message" and "data" in message:
                yield message["data"]

    def _redis_listen_with_retries(self) -> Iterator[dict]:
        pubsub = None
        while not self._closed:
            try:
                if pubsub is None:
                    module = self._get_redis_module()
                    self._listen_redis = module.Redis.from_url(self.redis_url, **LISTEN_OPTIONS)
                    pubsub = self._listen_redis.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.channel)
                    self.pubsub = pubsub
                    self._mark_up()
                yield from pubsub.listen()
            except Exception as exc:  # noqa: BLE001 - reconnect after a pause, whatever broke
                if self._closed:
                    return
                self._mark_down(exc)
                for closable in (pubsub, self._listen_redis):
                    if closable is not None:
                        try:
                            closable.close()
                        except Exception:  # noqa: BLE001, S110 - the connection is gone either way
                            pass
                pubsub = self._listen_redis = None
                # server.sleep: cooperative under gevent and eventlet, time.sleep under threading
                self.server.sleep(self.retry_seconds)
