"""Bookkeeping Desk (代账工作台): the application factory."""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta

from flask import Flask, abort, flash, g, has_request_context, jsonify, redirect, request, session, url_for
from flask_appbuilder import AppBuilder
from flask_babel import lazy_gettext as _l
from flask_login import logout_user

from app.config import build_config
from app.extensions import csrf, db, socketio
from app.url_rules import LazyBuilderRule

# Endpoints reachable while a user is held on the MFA enrolment page.
# (The sign-out endpoint is named after the security manager's login view class; see the hook.)
_ENROL_ALLOWED = {"MFAView.setup", "MFAView.verify", "static", "appbuilder.static",
                  "LocaleView.index", "health.health"}


def create_app(config: dict | None = None) -> Flask:
    """Build the application. *config* overrides the environment (tests pass their own)."""
    cfg = build_config(config)
    app = Flask(__name__, instance_path=cfg["INSTANCE_PATH"], instance_relative_config=False)
    app.url_rule_class = LazyBuilderRule  # URL builders compiled on first use (app.url_rules)
    app.config.update(cfg)
    from app import request_input

    request_input.install(app)  # strict ids in URLs, bounded JSON, no NUL characters: before any route
    if not (config or {}).get("PERMANENT_SESSION_LIFETIME"):
        app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=app.config["SESSION_IDLE_MINUTES"])
    _compile_catalogs()
    _private_data(app)

    with app.app_context():
        from app import models as _models  # noqa: F401  (registers the models)

        db.init_app(app)
        csrf.init_app(app)
        appbuilder = AppBuilder()
        appbuilder.init_app(app, db.session)
        from app.views import register_views

        register_views(app, appbuilder)
        from app.errors import register_error_handlers

        register_error_handlers(app)
        from app import openapi

        openapi.install(app)  # the API document says what the API answers
        from app import body_limits

        body_limits.install(app)  # request bodies bounded before anything reads them (413)
        from app import api_csrf

        api_csrf.install(app)  # API state changes made with the session cookie need the CSRF token (403)
        _install_request_hooks(app)
        _init_socketio(app)
        _trust_proxies(app)  # outermost: the Socket.IO server sees the forwarded scheme and host too
        from app.cli import register_cli

        register_cli(app)
    return app


def _private_data(app: Flask) -> None:
    """The instance folder, the data folders and a SQLite database are the server user's alone
    (``app.private_files``): created so, and narrowed when an older install left them wider."""
    from sqlalchemy.engine import make_url

    from app.private_files import PRIVATE_DIR, narrow, private_dir, private_sqlite_file

    private_dir(app.config["INSTANCE_PATH"])
    for key in ("UPLOAD_DIR", "CHAT_UPLOAD_DIR"):
        if app.config.get(key):
            narrow(app.config[key], PRIVATE_DIR)
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:"):
        private_sqlite_file(url.database)


def _compile_catalogs() -> None:
    """Compile stale message catalogs; a read-only install keeps the ones it shipped with."""
    from app.services.i18n import ensure_compiled

    try:
        ensure_compiled()
    except OSError as exc:
        logging.getLogger(__name__).warning("message catalogs not compiled: %s", exc)


def _trust_proxies(app: Flask) -> None:
    """Behind ``TRUSTED_PROXIES`` reverse proxies, believe their ``X-Forwarded-For``, ``-Proto`` and
    ``-Host`` (Werkzeug's ProxyFix): the client's address (sign-in audit, rate limits), https for
    HSTS and Flask-WTF's strict referrer check, and the origin the CSRF and socket checks compare
    with. Without it those headers are ignored: a client could forge them."""
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def _init_socketio(app: Flask) -> None:
    from app.sockets import register_namespaces
    from app.views.widget import socket_origin_checker

    # Flask-SocketIO keeps the queue manager of an earlier init_app in its options: drop it so
    # that this application's SOCKETIO_MESSAGE_QUEUE (or its absence) is what counts.
    socketio.server_options.pop("client_manager", None)
    queue = app.config.get("SOCKETIO_MESSAGE_QUEUE")
    manager = {}
    if queue and queue.startswith(("redis://", "rediss://")):
        from app.sockets.queue import DeskRedisManager  # delivers within this process while Redis is down

        manager["client_manager"], queue = DeskRedisManager(queue), None
    # A long-polling client sends what it queued in one request: a widget flushing its outbox
    # after a reload sends dozens of messages at once. Engine.IO refuses a request of more than 16
    # packets (and the messages in it are lost), so the limit is the chat's own setting.
    from engineio.payload import Payload

    Payload.max_decode_packets = int(app.config.get("CHAT_POLL_MAX_PACKETS") or 200)
    socketio.init_app(
        app,
        async_mode=app.config["ASYNC_MODE"] if app.config["ASYNC_MODE"] != "auto" else None,
        message_queue=queue,
        # Same origin (the agent console) and the chat sites' allowed origins (the widget, whose
        # long-polling requests need the CORS headers); never with credentials cross-origin.
        cors_allowed_origins=socket_origin_checker(app),
        cors_credentials=False,
        manage_session=False,
        # A packet above this closes the connection unanswered (Engine.IO): far above every payload
        # the events allow, so an over-long message gets its error instead (app/sockets/payloads.py).
        max_http_buffer_size=int(app.config.get("CHAT_SOCKET_MAX_BYTES") or 4_000_000),
        **manager,
    )
    register_namespaces(socketio)


def _request_actor():  # noqa: ANN202
    from app.services.audit import Actor

    if not has_request_context():
        return None
    try:
        from flask import current_app

        user = current_app.appbuilder.sm.current_user
    except Exception:  # noqa: BLE001 - outside an authenticated request
        user = None
    if user is None or not getattr(user, "id", None):
        return Actor(None, None, request.remote_addr)
    return Actor(user.id, user.username, request.remote_addr)


def _install_request_hooks(app: Flask) -> None:
    from app.services.audit import set_request_actor_provider

    set_request_actor_provider(_request_actor)

    @app.before_request
    def _nonce() -> None:
        g.csp_nonce = secrets.token_urlsafe(16)

    # A Jinja global rather than a context processor: FAB renders its widgets (the list table,
    # the search form) without context processors, and its templates import ``baselib``
    # without context, so only a global reaches ``baselib.get_nonce()`` everywhere.
    app.jinja_env.globals["csp_nonce"] = lambda: g.get("csp_nonce", "")

    @app.before_request
    def _idle_timeout_and_mfa_gate():  # noqa: ANN202
        # Only browser sessions get here: a JWT-authenticated API call has no session user yet.
        # The APIs also accept the session cookie, so they obey the same timeout and MFA gate.
        user = getattr(g, "user", None)
        if user is None or not user.is_authenticated:
            return None
        api = request.path.startswith("/api/")
        now = time.time()
        seen = session.get("_seen")
        idle = app.config["SESSION_IDLE_MINUTES"] * 60
        if seen is not None and now - seen > idle:
            logout_user()
            session.clear()
            if api:
                return None  # now anonymous: the API answers 401
            flash(str(_l("Your session expired after inactivity. Please sign in again.")), "info")
            return redirect(app.appbuilder.get_url_for_login_with(request.full_path))
        if not api:  # background API calls do not count as activity
            session["_seen"] = now
            session.permanent = True
        logout_endpoint = f"{app.appbuilder.sm.auth_view.endpoint}.logout"
        if (session.get("mfa_enrol_required") and request.endpoint not in _ENROL_ALLOWED
                and request.endpoint != logout_endpoint):
            if api:
                return jsonify(message=str(_l(
                    "Two-factor enrolment is required: sign in to the web application first."))), 401
            return redirect(url_for("MFAView.setup"))
        return None

    @app.before_request
    def _unsupported_fab_endpoints():  # noqa: ANN202
        # FAB answers a bulk action that does not exist, or a file-column download (no model
        # here has one; archives have their own download), with a 500; both are 404s.
        endpoint = request.endpoint or ""
        view_name, _, method = endpoint.rpartition(".")
        if method == "download" and "filename" in (request.view_args or {}):
            abort(404)
        if method not in ("action", "action_post"):
            return None
        name = (request.view_args or {}).get("name") if method == "action" else request.form.get("action")
        view = next((v for v in app.appbuilder.baseviews if v.endpoint == view_name), None)
        if view is None or name not in (getattr(view, "actions", None) or {}):
            abort(404)
        return None

    @app.after_request
    def _security_headers(response):  # noqa: ANN001, ANN202
        nonce = g.get("csp_nonce", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.headers.setdefault(
            "Content-Security-Policy",
            f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
            "base-uri 'self'; frame-ancestors 'self'; form-action 'self'",
        )
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if g.get("database_unavailable"):  # the signed-in user cannot be loaded now (app.errors)
            response.headers.setdefault("Cache-Control", "no-store")
        elif getattr(g, "user", None) is not None and g.user.is_authenticated:
            response.headers.setdefault("Cache-Control", "no-store")
        return response
