"""``GET /health``: database and message-queue reachability for load balancers and monitors;
``GET /favicon.ico``: the desk's icon (browsers ask for it on every site)."""

from __future__ import annotations

import io
from functools import cache

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from app.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():  # noqa: ANN201
    body = {"status": "ok", "db": "ok", "message_queue": "none"}
    code = 200
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means "down"
        db.session.rollback()
        body["db"] = "error"
        body["status"] = "error"
        code = 503
    queue = current_app.config.get("SOCKETIO_MESSAGE_QUEUE")
    if queue:
        try:
            import redis

            redis.Redis.from_url(queue, socket_connect_timeout=2, socket_timeout=2).ping()
            body["message_queue"] = "ok"
        except Exception:  # noqa: BLE001
            body["message_queue"] = "error"
            body["status"] = "degraded" if code == 200 else body["status"]
    return jsonify(body), code


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
