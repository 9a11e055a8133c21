"""``GET /health``: database and message-queue reachability for load balancers and monitors."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
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
