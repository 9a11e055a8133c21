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
- A domain error that a screen did not turn into a form message is answered once, here: a form
  sent with POST goes back to the page it came from (303) with the message shown there; any other
  request gets a short page with the message and the refusal's status.
- A refusal is one shape on the JSON faces (``/api/``, ``/reports/``, ``/chat/``, and requests
  that ask for JSON): ``{"message": text, "errors": {field: [text, ...]}}`` with the status of
  the refusal — a domain error's own (``app/services/errors.py``: 404, 409, 422 ...) or an HTTP
  error's (400, 404, 405, 413 ...). A domain error that reaches a view's caller rolls the
  session back first: nothing of a refused request is written. That holds inside
  Flask-AppBuilder's ``@safe`` too, which would otherwise answer 500 for any exception.
"""

from __future__ import annotations

import functools
import logging
import re
import sys

from flask import Flask, Response, current_app, flash, g, jsonify, redirect, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError

from app.services.errors import DomainError

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


JSON_PREFIXES = ("/api/", "/reports/", "/chat/")


def _wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES) or request.accept_mimetypes.best == "application/json"


def _same_site_referrer() -> str | None:
    """The page a form was sent from, when it is a page of this site (never an outside address)."""
    referrer = request.referrer or ""
    host = request.host_url.rstrip("/")
    if referrer == host or referrer.startswith(host + "/"):
        return referrer
    return None


def refusal_body(error: DomainError | HTTPException) -> tuple[dict, int]:
    """The JSON body and status of a refused request (see the module docstring)."""
    if isinstance(error, DomainError):
        return {"message": error.message, "errors": error.errors}, error.status_code
    code = error.code or 400
    text = error.description
    if not text or text == type(error).description or code == 429:  # werkzeug's English default, the limit
        text = str(_HTTP_MESSAGES.get(code, error.name))
    return {"message": text, "errors": {}}, code


def refused(error: DomainError | HTTPException) -> Response:
    """The refusal as JSON, after rolling back whatever the request's session holds."""
    if isinstance(error, DomainError):
        from app.extensions import db

        db.session.rollback()
    body, status = refusal_body(error)
    response = jsonify(body)
    response.status_code = status
    if isinstance(error, HTTPException):
        for name, value in error.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
    return response


def html_lang() -> str:
    """The ``lang`` of a page in the request's language (Flask-Babel parses zh_CN as zh_Hans_CN)."""
    locale = get_locale()
    return "zh-CN" if locale is not None and locale.language == "zh" else "en"


def error_page(error: HTTPException) -> Response:
    """An HTTP error of a page (403, 404, 405, 429, 500 ...) as a short page in the user's language
    instead of werkzeug's English one, with the error's status and headers (``Retry-After``,
    ``Allow``). Rendered without the context processors, like the 503 page."""
    code = error.code or 500
    if isinstance(error, InternalServerError):
        message = _("Something went wrong on the server. Please try again later.")
    else:
        message = refusal_body(error)[0]["message"]
    page = current_app.jinja_env.get_template("errors/refused.html").render(
        title=str(_HTTP_TITLES.get(code, _l("The request was refused"))), message=message,
        lang=html_lang(), status=code)
    response = Response(page, status=code, mimetype="text/html")
    for name, value in error.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


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
            message=message, lang=html_lang(), again=request.full_path)
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
            return jsonify(message=_("Internal server error"), errors={}), 500
        return error_page(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):  # noqa: ANN202
        if error.code is None or error.code < 400:
            return error
        if isinstance(error, InternalServerError) or not _wants_json():
            return error_page(error)
        return refused(error)

    @app.errorhandler(DomainError)
    def _domain_error(error: DomainError):  # noqa: ANN202
        if _wants_json():
            return refused(error)
        from app.extensions import db

        db.session.rollback()
        if request.method == "POST":  # a screen's button: back to the page it was pressed on, saying why
            flash(error.message, "danger")
            return redirect(_same_site_referrer() or "/", code=303)
        page = current_app.jinja_env.get_template("errors/refused.html").render(
            message=error.message, lang=html_lang(), status=error.status_code)
        return Response(page, status=error.status_code, mimetype="text/html")

    _answer_503_from_safe_apis()
    _one_error_shape_for_apis()
    _token_refusals_are_401(app)


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
        if isinstance(error, DomainError | HTTPException) and not isinstance(error, InternalServerError):
            return refused(error)
        _rollback_quietly()  # a failed statement must not leave the session's transaction aborted
        return original(self, message=message)

    response_500.desk_unavailable_aware = True
    BaseApi.response_500 = response_500


# Flask-AppBuilder's fixed English texts of its API answers, and ours.
_FAB_MESSAGES = {
    "Not authorized": _l("Sign in first: the request has no valid credentials."),
    "Forbidden": _l("You may not do this."),
    "Not found": _l("Not found."),
    "Arguments are not correct": _l("The request is not valid."),
    "Could not process entity": _l("The request is not valid."),
    "Fatal error": _l("Internal server error"),
    "Internal error": _l("Internal server error"),
}
# marshmallow's English messages of the API schemas' field errors (its defaults), and the ones
# with a number or a list in them, as patterns.
_SCHEMA_MESSAGES = {
    "Missing data for required field.": _l("This field is required."),
    "Field may not be null.": _l("This field may not be empty."),
    "Unknown field.": _l("Unknown field."),
    "Invalid input type.": _l("Invalid input type."),
    "Invalid type.": _l("Invalid input type."),
    "Invalid value.": _l("Not a valid value."),
    "Not a valid string.": _l("Not a valid text."),
    "Not a valid integer.": _l("Not a valid whole number."),
    "Not a valid number.": _l("Not a valid number."),
    "Not a valid boolean.": _l("Not a valid yes/no value (true or false)."),
    "Not a valid date.": _l("Not a valid date (YYYY-MM-DD)."),
    "Not a valid datetime.": _l("Not a valid date and time."),
    "Not a valid email address.": _l("Not a valid e-mail address."),
    "Not a valid URL.": _l("Not a valid web address."),
    "Not a valid list.": _l("Not a valid list."),
    "Not a valid mapping type.": _l("Not a valid object."),
    "Number too large.": _l("The number is too large."),
    "Special numeric values (nan or infinity) are not permitted.": _l("Not a valid number."),
}
_SCHEMA_PATTERNS = (
    (re.compile(r"Longer than maximum length (?P<n>\d+)\."), _l("At most %(n)s characters.")),
    (re.compile(r"Shorter than minimum length (?P<n>\d+)\."), _l("At least %(n)s characters.")),
    (re.compile(r"Length must be between (?P<min>\d+) and (?P<max>\d+)\."),
     _l("Between %(min)s and %(max)s characters.")),
    (re.compile(r"Must be one of: (?P<choices>.*)\."), _l("Must be one of: %(choices)s.")),
    (re.compile(r"Must be greater than or equal to (?P<min>\S+) and less than or equal to (?P<max>\S+)\."),
     _l("Must be from %(min)s to %(max)s.")),
    (re.compile(r"Must be greater than or equal to (?P<min>\S+)\."), _l("Must be at least %(min)s.")),
    (re.compile(r"Must be less than or equal to (?P<max>\S+)\."), _l("Must be at most %(max)s.")),
)


def schema_message(text: str) -> str:
    """A marshmallow field error in the user's language (any other text as it is)."""
    if text in _SCHEMA_MESSAGES:
        return str(_SCHEMA_MESSAGES[text])
    for pattern, translated in _SCHEMA_PATTERNS:
        found = pattern.fullmatch(text)
        if found:
            return str(translated) % found.groupdict()
    return text


# werkzeug's English descriptions of the usual HTTP errors.
_HTTP_MESSAGES = {
    400: _l("The request is not valid."),
    401: _l("Sign in first: the request has no valid credentials."),
    403: _l("You may not do this."),
    404: _l("Not found."),
    405: _l("This method is not allowed here."),
    413: _l("The request is too large."),
    415: _l("This content type is not accepted here."),
    429: _l("Too many requests: please wait a moment and try again."),
}
# The titles of the error pages.
_HTTP_TITLES = {
    400: _l("The request is not valid"),
    401: _l("Sign in first"),
    403: _l("Access denied"),
    404: _l("Page not found"),
    405: _l("Not allowed"),
    413: _l("Too large"),
    429: _l("Too many requests"),
    500: _l("Server error"),
}


def _flatten(messages: object, prefix: str = "") -> dict[str, list[str]]:
    """Marshmallow's nested errors (``{"lines": {0: {"debit": [...]}}}``) as ``{"lines[0].debit": [...]}``."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten(value, name))
        return flat
    if isinstance(messages, list | tuple) and all(not isinstance(m, dict | list) for m in messages):
        return {prefix or "_": [str(m) for m in messages]}
    if isinstance(messages, list | tuple):
        flat = {}
        for index, value in enumerate(messages):
            flat.update(_flatten(value, f"{prefix}[{index}]"))
        return flat
    return {prefix or "_": [str(messages)]}


def _one_error_shape_for_apis() -> None:
    """Every error answer of every Flask-AppBuilder API is ``{"message": text, "errors": {field:
    [text]}}``: a message given as a dict of field errors (marshmallow's) becomes ``errors``, and
    Flask-AppBuilder's fixed English texts are translated."""
    from flask_appbuilder.api import BaseApi

    original = BaseApi.response
    if getattr(original, "desk_one_shape", False):
        return

    def response(code: int, **kwargs: object) -> Response:
        if code >= 400 and set(kwargs) <= {"message", "errors", "msg"}:
            message = kwargs.get("message", kwargs.pop("msg", None))
            errors = kwargs.get("errors")
            if isinstance(message, dict | list):
                flat = {field: [schema_message(m) for m in texts] for field, texts in _flatten(message).items()}
                errors = {**flat, **(errors or {})}
                message = "; ".join(m for msgs in errors.values() for m in msgs)
            elif isinstance(message, str) and message in _FAB_MESSAGES:
                message = str(_FAB_MESSAGES[message])
            kwargs = {"message": str(message) if message is not None else str(_HTTP_MESSAGES.get(code, "")),
                      "errors": errors or {}}
        return original(code, **kwargs)

    response.desk_one_shape = True
    BaseApi.response = staticmethod(response)
    BaseApi.responses = {code: {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
                         for code, description in ERROR_RESPONSES.items()}


# The OpenAPI description of every error answer.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["message", "errors"],
    "properties": {
        "message": {"type": "string", "description": "what went wrong, in the user's language"},
        "errors": {"type": "object", "description": "messages by field (\"_\": the whole request)",
                   "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
}
ERROR_RESPONSES = {
    "400": "Bad request", "401": "Not signed in, or the token is not valid", "403": "Forbidden",
    "404": "Not found (or outside the user's scope)", "409": "Conflicts with the current state",
    "413": "The request body is too large", "422": "Invalid input; errors name the fields",
    "429": "Too many requests", "500": "Internal server error", "503": "The database is unavailable; try again",
}


def _token_refusals_are_401(app: Flask) -> None:
    """A bearer token that is missing, malformed, forged or expired is a 401 in the one error shape
    (Flask-JWT-Extended answers 422 for a token it cannot decode, and ``{"msg"}``)."""
    manager = app.extensions.get("flask-jwt-extended")
    if manager is None:
        return

    def unauthorized(_reason: object = None, *_args: object) -> Response:
        text = str(_l("Sign in first: the request has no valid credentials."))
        response = jsonify(message=text, errors={"Authorization": [text]})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response

    manager.unauthorized_loader(unauthorized)
    manager.invalid_token_loader(unauthorized)
    manager.expired_token_loader(unauthorized)


def api_safe(view):  # noqa: ANN001, ANN201
    """Flask-AppBuilder's ``@safe`` for the desk's API methods, with the error contract of this
    module: a domain error or an HTTP error raised by the method is answered in the one shape with
    its own status (a refusal: no traceback in the log); anything else is logged with its
    traceback and answered 500 (503 while the database is unavailable)."""

    @functools.wraps(view)
    def run(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        try:
            return view(self, *args, **kwargs)
        except DomainError as exc:
            return refused(exc)
        except HTTPException as exc:
            if isinstance(exc, InternalServerError):
                raise
            return refused(exc)
        except Exception:  # noqa: BLE001 - the contract: logged, then answered 500 or 503
            log.exception("API request failed (%s %s)", request.method, request.path)
            _rollback_quietly()
            return self.response_500()

    return run


def _rollback_quietly() -> None:
    from app.extensions import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - a dead connection cannot roll back; the pool discards it
        log.debug("rollback after a failed API request failed too", exc_info=True)
