"""CSRF on the REST APIs: a state change made with the browser session needs the page's token.

Flask-AppBuilder exempts its APIs from Flask-WTF's CSRF protection (``BaseApi.csrf_exempt``),
because API clients send a bearer JWT, which a page on another site cannot send. The APIs here
also accept the browser session (``allow_browser_login``), and a browser sends the session cookie
with a form posted from any page, another port of the same host included. Rule:

- A request to an API (any path under ``/api/`` and every other Flask-AppBuilder API, such as
  ``/reports``) whose method is not GET, HEAD or OPTIONS and that is authenticated by the session
  cookie (the session holds a signed-in user and the request has no ``Authorization: Bearer``
  header) must
  - come from the application's own origin when the browser names one (``Origin``, else
    ``Referer``): another scheme, host or port is refused; and
  - carry the session's CSRF token (Flask-WTF's ``csrf_token()``) in the ``X-CSRFToken`` header
    (or ``X-CSRF-Token``, or a ``csrf_token`` form field).
  Otherwise it is answered 403 ``{"message": ...}`` before any view runs: nothing is written.
- Bearer-token clients and requests without a signed-in session pass unchanged (an API that
  needs a user answers those 401 itself).
- ``WTF_CSRF_ENABLED`` false turns this check off, as it does for the forms.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, request, session
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SESSION_USER_KEY = "_user_id"  # where Flask-Login keeps the signed-in user in the session


def _own_origin() -> str:
    return f"{request.scheme}://{request.host}".lower()


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_origin() -> bool:
    """True when the browser says the request comes from a page of another origin (scheme, host
    and port), or names an origin that cannot be read (``Origin: null``)."""
    origin = request.headers.get("Origin")
    if origin is not None:
        return _origin_of(origin) != _own_origin()
    referrer = request.headers.get("Referer")
    if referrer:
        return _origin_of(referrer) != _own_origin()
    return False


def _token() -> str | None:
    for header in current_app.config.get("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"]):
        value = request.headers.get(header)
        if value:
            return value
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.get(field) or None
    return None


def session_authenticated() -> bool:
    """Whether the request acts as a user through the session cookie (not a bearer token)."""
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        return False
    return bool(session.get(SESSION_USER_KEY))


def _is_api(app: Flask) -> bool:
    if request.path.startswith("/api/"):
        return True
    return request.blueprint is not None and request.blueprint in app.extensions.get("desk_api_blueprints", ())


def _hint_at_proxies(app: Flask) -> None:
    """Log why a page of this very host may look foreign: https in the browser, http here (a TLS
    proxy whose ``X-Forwarded-Proto`` is not trusted)."""
    origin = _origin_of(request.headers.get("Origin") or request.headers.get("Referer") or "")
    if origin and origin.startswith("https://") and not request.is_secure \
            and urlsplit(origin).hostname == (request.host.split(":")[0] or "").lower():
        app.logger.warning("API write from %s refused as cross-origin: the server sees http. Behind a TLS "
                           "proxy set TRUSTED_PROXIES (README: Running behind TLS).", origin)


def _refuse(message: str):  # noqa: ANN202
    response = jsonify(message=message)
    response.status_code = 403
    return response


def install(app: Flask) -> None:
    """Check every API state change made with the session (see the module rules). Call after the
    views are registered: the API blueprints are collected then."""
    from flask_appbuilder.api import BaseApi

    app.extensions["desk_api_blueprints"] = frozenset(
        view.blueprint.name for view in app.appbuilder.baseviews
        if isinstance(view, BaseApi) and getattr(view, "blueprint", None) is not None)

    @app.before_request
    def _api_csrf():  # noqa: ANN202
        if request.method in SAFE_METHODS or not app.config.get("WTF_CSRF_ENABLED", True):
            return None
        if not _is_api(app) or not session_authenticated():
            return None
        if cross_origin():
            _hint_at_proxies(app)
            return _refuse(str(_l("Refused: this request came from a page of another site.")))
        try:
            validate_csrf(_token())
        except ValidationError:
            return _refuse(str(_l("Refused: the request lacks a valid CSRF token (X-CSRFToken header). "
                                  "Reload the page and try again.")))
        return None
