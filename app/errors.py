"""What a failure looks like to the people using the desk, and to whoever reads the server log.

Rules:
- Every unhandled exception of a request is logged with its traceback: Flask logs those of the
  views (``app.logger``), Flask-AppBuilder's ``@safe`` those it turns into a JSON 500 (logger
  ``flask_appbuilder.api``). Nothing here swallows an exception without a log line.
- The database being unavailable (connection refused or lost, the pool exhausted, SQLite locked or
  unreadable) is not a bug: the request answers 503 with ``Retry-After``, JSON
  ``{"message": ...}`` from the API (``/api/``, every Flask-AppBuilder API class, and requests
  that ask for JSON), a short page elsewhere. The log gets one warning line per request (plus the
  traceback ``@safe`` logs before it lets go of an exception). A bug that happens to raise a
  database error (a missing table, bad SQL) stays a 500 with its traceback.
- Any other 500 on the API answers JSON too, so API clients get one shape of error.
"""

from __future__ import annotations

import logging
import sys

from flask import Flask, Response, current_app, g, jsonify, request
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import InternalServerError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10
# SQLite reports "the database cannot be used right now" and "the SQL is wrong" with the same
# exception class; these are the messages of the first kind.
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error", "database or disk is full",
                       "readonly database")


def database_unavailable(error: BaseException) -> bool:
    """True when *error* says the database cannot serve requests right now (rather than that the
    request or the code is wrong)."""
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection became free in time
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, sa_exc.OperationalError):
        return False
    if type(error.orig).__module__.startswith("sqlite3"):
        text = str(error.orig).lower()
        return any(fragment in text for fragment in _SQLITE_UNAVAILABLE)
    return True


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def unavailable_response(as_json: bool | None = None) -> Response:
    """The 503 of a request that needed the database while it was unavailable (JSON when
    *as_json*, by default when the request is an API call)."""
    g.database_unavailable = True  # the after-request hooks must not try to load the user again
    message = _("The database cannot be reached right now. Please try again in a minute.")
    if as_json if as_json is not None else _wants_json():
        response = jsonify(message=message)
    else:
        # Rendered without the context processors: the one for ``current_user`` needs the database.
        page = current_app.jinja_env.get_template("errors/503.html").render(
            message=message, lang="zh-CN" if str(get_locale()) == "zh_CN" else "en", again=request.full_path)
        response = Response(page, mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _log_unavailable(error: BaseException) -> None:
    first_line = (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]
    log.warning("database unavailable (%s %s): %s", request.method, request.path, first_line[:300])


def register_error_handlers(app: Flask) -> None:
    """The database-unavailable 503 and the JSON 500 of the API (see the module docstring)."""

    def on_database_error(error: Exception):  # noqa: ANN202
        if not database_unavailable(error):
            raise error  # a bug: Flask logs it with its traceback and answers 500
        _log_unavailable(error)
        return unavailable_response()

    app.register_error_handler(sa_exc.DBAPIError, on_database_error)
    app.register_error_handler(sa_exc.TimeoutError, on_database_error)

    @app.errorhandler(InternalServerError)
    def _internal_error(error: InternalServerError):  # noqa: ANN202
        # Flask has logged the original exception with its traceback before calling this.
        if _wants_json():
            return jsonify(message=_("Internal server error")), 500
        return error

    _answer_503_from_safe_apis()


def _answer_503_from_safe_apis() -> None:
    """Flask-AppBuilder's ``@safe`` catches every exception of an API method (after logging it) and
    answers ``response_500``; while the database is unavailable that answer becomes the 503. Done
    on the base class once, since ``@safe`` is applied when the API classes are defined."""
    from flask_appbuilder.api import BaseApi

    original = BaseApi.response_500
    if getattr(original, "desk_unavailable_aware", False):
        return

    def response_500(self, message: str | None = None) -> Response:  # noqa: ANN001
        error = sys.exc_info()[1]  # called from @safe's except block: the exception it caught
        if error is not None and database_unavailable(error):
            return unavailable_response(as_json=True)
        return original(self, message=message)

    response_500.desk_unavailable_aware = True
    BaseApi.response_500 = response_500
