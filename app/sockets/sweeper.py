"""The chat sweeper: a background task in every server process that runs ``chat_sweep.sweep`` every
``CHAT_SWEEP_SECONDS`` (offers that timed out move on, waiting chats are offered to agents who
became free, presence lapses, the no-answer auto reply). Every change the sweep makes is a
conditional update, so the processes do not step on each other."""

from __future__ import annotations

import logging

from flask import Flask

from app.extensions import db, socketio

log = logging.getLogger(__name__)
_STARTED = "desk.chat_sweeper"  # app.extensions key: started in this process


def sweep_once(app: Flask) -> int:
    """One sweep in an application context; the events are sent. Returns how many were sent."""
    from app.services import chat_sweep, chat_visitors
    from app.sockets import deliver

    with app.app_context():
        try:
            live = {sid for sid, _eio in socketio.server.manager.get_participants("/visitor", None)}
            chat_visitors.drop_closed_connections(db.session, live)
            emits = chat_sweep.sweep(db.session, tz=app.config.get("TZ_DISPLAY", "UTC"),
                                     include_ip=not app.config.get("TRACKING_TRUNCATE_IP", True),
                                     visitor_grace=float(app.config.get("CHAT_VISITOR_GRACE_SECONDS", 45)))
            deliver(emits)
            return len(emits)
        finally:
            db.session.remove()


def _loop(app: Flask) -> None:
    interval = max(float(app.config.get("CHAT_SWEEP_SECONDS", 2)), 0.1)
    while True:
        socketio.sleep(interval)
        try:
            sweep_once(app)
        except Exception:  # noqa: BLE001 - a failed pass is logged; the next one tries again
            log.exception("chat sweep failed")


def start_sweeper(app: Flask) -> bool:
    """Start the sweep loop once per process (a second call does nothing); False when it was
    running already."""
    if app.extensions.get(_STARTED):
        return False
    app.extensions[_STARTED] = True
    from app.sockets.fanout import fanout

    fanout.tick = max(float(app.config.get("CHAT_FANOUT_SECONDS", 0.1)), 0.01)
    socketio.start_background_task(_loop, app)
    return True
