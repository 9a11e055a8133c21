"""``GET /health``: whether each part of the desk works, for load balancers and monitors (no sign-in);
``GET /favicon.ico``: the desk's icon (browsers ask for it on every site).

The health answer is JSON with one field per part and an overall ``status``:

``db``                  ``ok`` | ``error``: ``SELECT 1`` on the database.
``message_queue``       ``ok`` | ``error`` | ``none``: a PING of ``SOCKETIO_MESSAGE_QUEUE`` (``none``: no
                        queue, one process). On ``error`` the chat works within each process only.
``rate_limit_storage``  ``ok`` | ``error`` | ``memory``: a PING of the sign-in limiter's Redis
                        (``memory``: counters in this process). On ``error`` each process counts in
                        memory until Redis answers.
``job_queue``           ``ok`` | ``error``, only when ``REDIS_URL`` is set: the Redis of the background
                        PDF jobs (RQ).

``status`` is ``error`` (HTTP 503) when the database is down, since nothing works without it;
``degraded`` (HTTP 200) when a Redis part is down, since the desk still serves; else ``ok``.
Every check has a one-second timeout and each Redis address is pinged once per request, over a
connection kept between requests. No address or error text is shown to the anonymous caller.
"""

from __future__ import annotations

import io
from functools import cache

from flask import Blueprint, Flask, Response, current_app, jsonify
from sqlalchemy import text

from app.extensions import db

bp = Blueprint("health", __name__)
CHECK_TIMEOUT_SECONDS = 1.0


def _redis_client(app: Flask, url: str):  # noqa: ANN202
    clients = app.extensions.setdefault("health_redis", {})
    if url not in clients:
        import redis

        clients[url] = redis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
                                            socket_timeout=CHECK_TIMEOUT_SECONDS)
    return clients[url]


def _database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means "down"
        db.session.rollback()
        return "error"
    return "ok"


def check_parts(app: Flask) -> dict[str, str]:
    """The state of each part (see the module docstring), without the overall status."""
    parts = {"db": _database()}
    redis_parts = {"message_queue": app.config.get("SOCKETIO_MESSAGE_QUEUE") or None,
                   "rate_limit_storage": app.config.get("RATELIMIT_STORAGE_URI") or None}
    if app.config.get("REDIS_URL"):
        redis_parts["job_queue"] = app.config["REDIS_URL"]
    pinged: dict[str, str] = {}
    for part, url in redis_parts.items():
        if url is None:
            parts[part] = "none"
        elif not url.startswith(("redis://", "rediss://", "unix://")):
            parts[part] = "memory" if url.startswith("memory://") else "ok"  # not a Redis: nothing to ping
        else:
            if url not in pinged:
                try:
                    _redis_client(app, url).ping()
                    pinged[url] = "ok"
                except Exception:  # noqa: BLE001 - refused, timed out, bad password...: down
                    pinged[url] = "error"
            parts[part] = pinged[url]
    return parts


def overall_status(parts: dict[str, str]) -> str:
    """``error`` when the database is down, ``degraded`` when another part is, else ``ok``."""
    if parts["db"] != "ok":
        return "error"
    return "degraded" if "error" in parts.values() else "ok"


@bp.get("/health")
def health():  # noqa: ANN201
    parts = check_parts(current_app)
    status = overall_status(parts)
    return jsonify(status=status, **parts), 503 if status == "error" else 200


@cache
def _icon() -> bytes:
    """A ledger sheet (white ruled lines on the desk's blue), 16 and 32 px, as an ICO file."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, 31, 31), radius=6, fill=(51, 122, 183, 255))
    for y in (10, 16, 22):
        draw.line((8, y, 24, y), fill=(255, 255, 255, 255), width=2)
    draw.line((13, 7, 13, 25), fill=(255, 255, 255, 200), width=1)
    out = io.BytesIO()
    image.save(out, format="ICO", sizes=[(16, 16), (32, 32)])
    return out.getvalue()


@bp.get("/favicon.ico")
def favicon() -> Response:
    response = Response(_icon(), mimetype="image/vnd.microsoft.icon")
    response.headers["Cache-Control"] = "public, max-age=604800"
    return response
