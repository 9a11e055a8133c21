"""The socket face's error contract for what a handler did not foresee.

Rules:
- A handler's domain errors (``DomainError``: bad input, not allowed, not found, wrong state)
  are answered here, once for every event: the transaction is rolled back (nothing was written),
  the sender gets the ``error`` event ``{event, message, errors}`` and the ack
  ``{error, errors}``. Handlers raise; they do not catch.
- The database or its connection pool being saturated or unreachable (SQLAlchemy's pool
  ``TimeoutError``, ``OperationalError``) refuses the event with a retryable error: the ``error``
  event and the ack carry ``retry_after`` (seconds); nothing was written (the transaction is
  rolled back), so the client may send the same payload again (a message's ``client_msg_id``
  keeps a resend idempotent).
- A payload is refused before the handler runs when it does not fit its event's schema
  (``app.sockets.payloads``: every field's type and length, no NUL character, not nested too
  deeply): the error names each bad field, and nothing was written.
- At most ``Admission.limit()`` events are in progress per process; past that an event is refused
  at once as busy (``retry_after``), before it waits for a database connection.
- Any other exception is logged with its traceback, the transaction rolled back, and the sender
  gets an ``error`` event and an error ack: an event is never answered by silence.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import current_app, request
from flask.ctx import RequestContext
from flask_babel import lazy_gettext as _l
from flask_socketio import SocketIO, emit
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.extensions import db
from app.services.errors import DomainError
from app.sockets.payloads import check_payload

log = logging.getLogger(__name__)

SESSION_KEY = "desk.cookie_session"  # request.environ: the connection's cookie session, opened once
MATCH_KEY = "desk.url_match"  # request.environ: the connection's URL matched against the routes, once
BUSY_RETRY_SECONDS = 2  # a refused event is sent again after this long (the widget's outbox obeys it)
GREEN_INFLIGHT = 500  # events in progress at once on SQLite under gevent or eventlet (``Admission``)


def refusal(event: str, message: str, retry_after: int | None = None, errors: dict | None = None) -> dict:
    """Send the sender ``error {event, message, errors[, retry_after]}``; return the matching ack
    ``{error, errors[, retry_after]}``. Needs the event's request context."""
    errors = errors if errors is not None else {"_": [message]}
    payload: dict = {"event": event, "message": message, "errors": errors}
    ack: dict = {"error": message, "errors": errors}
    if retry_after is not None:
        payload["retry_after"] = ack["retry_after"] = retry_after
    emit("error", payload)
    return ack


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - a dead connection cannot roll back; the pool discards it
        log.debug("rollback after a failed socket event failed too", exc_info=True)


class Admission:
    """Events in progress in this process, and the most it takes at once (``CHAT_MAX_INFLIGHT``;
    0: ``GREEN_INFLIGHT`` on SQLite under gevent or eventlet, else twice the database pool's size
    plus overflow). Past that an event is refused at once as busy instead of queueing: under
    overload the backlog, and so the wait of every event, stays bounded, and the sender hears
    within milliseconds when to try again.

    On SQLite under gevent or eventlet an event never waits for a pooled connection (SQLite's
    calls run on the hub; its writers take turns), only for the hub: an event waiting costs a
    greenlet, so the bound is set by time, ``GREEN_INFLIGHT`` events at the 1–2 ms of work each
    costs being about a second of backlog. The pool's bound there turned every pause of the
    process of a few tens of milliseconds at a few hundred messages a second (a collection, a
    moment without a core on a busy machine) into refusals, each of which costs its sender two
    seconds or more before the retry. On a database server, events wait for the pool's
    connections, and the pool is the bound."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inflight = 0

    @staticmethod
    def limit() -> int:
        configured = int(current_app.config.get("CHAT_MAX_INFLIGHT") or 0)
        if configured > 0:
            return configured
        if current_app.config.get("ASYNC_MODE") in ("gevent", "eventlet") and str(
                current_app.config.get("SQLALCHEMY_DATABASE_URI", "")).startswith("sqlite"):
            return GREEN_INFLIGHT
        options = current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
        return 2 * (int(options.get("pool_size", 5)) + int(options.get("max_overflow", 10)))

    def enter(self) -> bool:
        limit = self.limit()
        with self._lock:
            if self.inflight >= limit:
                return False
            self.inflight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.inflight -= 1


admission = Admission()


def _busy(event: str) -> dict:
    return refusal(event, str(_l("The server is busy. Please try again in a moment.")), retry_after=BUSY_RETRY_SECONDS)


def guarded(event: str, handler: Callable, namespace: str = "") -> Callable:
    """*handler* (of *event* in *namespace*) wrapped in the error contract above (for every event
    but connect and disconnect), admitted only while fewer than ``Admission.limit()`` events are
    in progress."""

    def run(*data):  # noqa: ANN002, ANN202
        if not admission.enter():
            return _busy(event)
        try:
            check_payload(namespace, event, data)
            return handler(*data)
        except DomainError as exc:
            _rollback()
            return refusal(event, exc.message, errors=exc.errors)
        except (PoolTimeout, OperationalError) as exc:
            _rollback()
            log.warning("socket event %r refused, the database is busy or unreachable: %s", event,
                             str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return _busy(event)
        except Exception:  # noqa: BLE001 - the contract: logged with its traceback, answered with an error
            _rollback()
            log.exception("socket event %r failed", event)
            return refusal(event, str(_l("Something went wrong. Please try again.")))
        finally:
            admission.leave()

    return run


class EventContext(RequestContext):
    """A socket event's request context. The URL of a connection's events is the one it connected
    with, so it is matched against the application's routes once per connection (Flask's
    ``match_request`` hook) and the match reused by its later events: matching it again cost
    about as much as the rest of the context."""

    def match_request(self) -> None:
        """Set the request's ``url_rule``, ``view_args`` and ``routing_exception`` as the
        connection's first event matched them."""
        request, environ = self.request, self.request.environ
        matched = environ.get(MATCH_KEY)
        if matched is None:
            super().match_request()
            environ[MATCH_KEY] = (request.url_rule, request.view_args, request.routing_exception)
        else:
            request.url_rule, request.view_args, request.routing_exception = matched


def dispatch(socketio: SocketIO, handler: Callable, event: str, namespace: str, sid: str, *data: object) -> object:
    """Run an event's *handler* in a request context over the connection's environ, as
    Flask-SocketIO's ``_handle_event`` does, without its saving of the cookie session after every
    event: with ``manage_session=False`` and cookie sessions that save builds a response nobody
    receives (a socket event cannot set a cookie) and cost a busy chat server ~8 % of its CPU.
    Flask's private ``RequestContext._session`` is the one hook for a session opened earlier.
    (Server-side sessions would need it: this application keeps Flask's cookie sessions.) The
    connection's URL is matched against the routes once (``EventContext``)."""
    environ = socketio.server.get_environ(sid, namespace=namespace)
    if not environ:  # no record of this client: ignored, as Flask-SocketIO does
        return "", 400
    context = EventContext(environ["flask.app"], environ)
    # The cookie session is opened once per connection and kept: a socket event cannot change the
    # cookie, so it is the one the connection came with (Flask-SocketIO's own rule for
    # manage_session=False), and opening it again cost ~10 % of the server's time per event.
    context._session = environ.get(SESSION_KEY)  # noqa: SLF001
    with context:
        environ[SESSION_KEY] = context._session  # noqa: SLF001
        request.sid = sid
        request.namespace = namespace
        request.event = {"message": event, "args": data}
        return handler(*data)


def connect_guarded(handler: Callable, refused: Callable[[str, dict], Exception]) -> Callable:
    """*handler* (a connect handler) whose unforeseen exceptions are logged and turned into a
    refusal (``connect_error``) built by *refused(message, data)*; a busy database gives
    ``retry_after`` in the data. Refusals the handler raises itself pass unchanged."""
    from flask_socketio import ConnectionRefusedError

    def run(*data):  # noqa: ANN002, ANN202
        try:
            return handler(*data)
        except ConnectionRefusedError:
            raise
        except (PoolTimeout, OperationalError) as exc:
            _rollback()
            log.warning("socket connect refused, the database is busy or unreachable: %s",
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            message = str(_l("The server is busy. Please try again in a moment."))
            raise refused(message, {"event": "connect", "message": message, "errors": {"_": [message]},
                                    "retry_after": BUSY_RETRY_SECONDS}) from None
        except Exception:  # noqa: BLE001 - logged with its traceback, refused with an error
            _rollback()
            log.exception("socket connect failed")
            message = str(_l("Something went wrong. Please try again."))
            raise refused(message, {"event": "connect", "message": message, "errors": {"_": [message]}}) from None

    return run
