"""The embeddable chat widget: ``GET /widget.js`` and the Socket.IO client it loads from beside it
(``GET /widget/socket.io.min.js``, from the npm package installed by ``scripts/setup.sh``), and the
cross-origin rule of the Socket.IO endpoint.

Rules:
- Both files are public (they are pasted into other websites) and sent with caching headers and
  an ETag; ``widget.js`` is cached briefly because its URL never changes, the client for a day.
- Socket.IO answers browsers on its own origin (the agent console) and on the origins some active
  chat site allows (the widget, including the HTTP long-polling transport). Credentials are never
  allowed cross-origin: the widget identifies itself with its visitor token, not with cookies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.config import BASE_DIR
from app.services import chat_sites

bp = Blueprint("widget", __name__)

WIDGET_JS = Path(__file__).resolve().parent.parent / "static" / "widget" / "widget.js"
SOCKETIO_CLIENT = BASE_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
WIDGET_MAX_AGE = 300  # seconds: a new widget reaches every website within minutes
CLIENT_MAX_AGE = 86400
ORIGINS_REFRESH = 30.0  # seconds a process trusts its copy of the sites' allowed origins
ORIGINS_RETRY = 2.0  # an unknown origin re-reads them at most this often (a new site works at once)


def _javascript(path: Path, max_age: int) -> Response:
    if not path.is_file():
        current_app.logger.error("%s is missing: run scripts/setup.sh (npm ci)", path.name)
        abort(404)
    # Small files, read whole: an ETag of their content answers revalidations with a 304.
    response = Response(path.read_bytes(), mimetype="text/javascript")
    response.add_etag()
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)


@bp.get("/widget.js")
def widget_js() -> Response:
    """The widget script every chat site embeds."""
    return _javascript(WIDGET_JS, WIDGET_MAX_AGE)


@bp.get("/widget/socket.io.min.js")
def socketio_client() -> Response:
    """The Socket.IO client the widget loads (npm package ``socket.io-client``)."""
    return _javascript(SOCKETIO_CLIENT, CLIENT_MAX_AGE)


def _same_origin(origin: str, environ: dict) -> bool:
    """Whether *origin* names this server: its host (and port) is the request's ``Host`` or the one a
    proxy forwarded (the scheme is left aside: a TLS-terminating proxy may not say it was https)."""
    hosts = {environ.get("HTTP_HOST", ""), environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[0].strip()}
    return any(chat_sites.same_origin(origin, host) for host in hosts if host)


def socket_origin_checker(app: Flask) -> Callable[[str | None, dict], bool]:
    """The ``cors_allowed_origins`` callable of the Socket.IO server.

    Allows a request without ``Origin`` (not a browser page), the server's own origin and any
    origin allowed by an active chat site. The sites' rules are read from the database and kept
    for ``ORIGINS_REFRESH`` seconds (rebuilt from the database, so every process agrees soon).
    The ``/visitor`` namespace still checks the Origin against the connecting site's own list.
    """
    lock = threading.Lock()
    state: dict = {"rules": [], "loaded": 0.0}

    def _load() -> list:
        from app.extensions import db
        from app.models.chat import ChatSite
        from app.services.chat_sites import parse_origin_rules
        from app.services.errors import ValidationFailed

        rules = []
        with app.app_context():
            try:
                for text in db.session.scalars(select(ChatSite.allowed_origins).where(ChatSite.active.is_(True))):
                    try:
                        rules.extend(parse_origin_rules(text))
                    except ValidationFailed:
                        continue
            finally:
                db.session.remove()
        return rules

    def _rules(stale_after: float) -> list:
        now = time.monotonic()
        if now - state["loaded"] > stale_after:
            with lock:
                if now - state["loaded"] > stale_after:
                    try:
                        state["rules"] = _load()
                    except SQLAlchemyError:  # the database is away: keep what we knew
                        app.logger.exception("chat sites' allowed origins could not be read")
                    state["loaded"] = time.monotonic()
        return state["rules"]

    def allowed(origin: str | None, environ: dict | None = None) -> bool:
        if not origin:
            return True
        if environ is not None and _same_origin(origin, environ):
            return True
        if any(rule.matches(origin) for rule in _rules(ORIGINS_REFRESH)):
            return True
        return any(rule.matches(origin) for rule in _rules(ORIGINS_RETRY))

    return allowed
