"""A bare Socket.IO relay: the chat's message path without a database, the yardstick of
``benchmarks/chat_load.py``.

Same stack as the desk (Flask, Flask-SocketIO, the async mode's server started by
``socketio.run``), same namespaces and payload shapes: a visitor (auth ``{"bench": i}``) sends
``message {client_msg_id, text}``; the relay acks ``{id, client_msg_id, created_at,
conversation_id}`` and emits ``message`` to the conversation's room on ``/agent`` (and to the
visitor's other tabs), which the agent ``j`` (auth ``{"bench_agent": j, "agents": n, "visitors":
m}``) joined for every visitor ``i`` with ``i % n == j``. Nothing is stored.

    ASYNC_MODE=gevent python benchmarks/chat_relay.py --port 5123
"""

from __future__ import annotations

import argparse
import os

ASYNC_MODE = os.environ.get("ASYNC_MODE", "gevent")


def main() -> None:
    if ASYNC_MODE == "gevent":
        from gevent import monkey

        monkey.patch_all()
    elif ASYNC_MODE == "eventlet":
        import eventlet

        eventlet.monkey_patch()
    import itertools
    import resource
    from datetime import UTC, datetime

    from flask import Flask, request
    from flask_socketio import ConnectionRefusedError, SocketIO, join_room

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    import threading
    import time

    import chat_probe

    os.environ["BENCH_RELAY"] = "1"

    probe = chat_probe.start(ASYNC_MODE)
    if probe is not None:
        def flush() -> None:
            while True:
                time.sleep(0.25)
                probe.flush()

        threading.Thread(target=flush, daemon=True).start()

    app = Flask(__name__)
    socketio = SocketIO(app, async_mode=ASYNC_MODE, cors_allowed_origins="*", manage_session=False)
    ids = itertools.count(1)

    @socketio.on("connect", namespace="/visitor")
    def visitor_connect(auth=None):  # noqa: ANN001, ANN202
        if not isinstance(auth, dict) or not isinstance(auth.get("bench"), int):
            raise ConnectionRefusedError("bench visitor number needed")
        request.environ["bench.visitor"] = auth["bench"]
        join_room(f"visitor:{auth['bench']}")

    @socketio.on("message", namespace="/visitor")
    def visitor_message(data=None):  # noqa: ANN001, ANN202
        data = data if isinstance(data, dict) else {}
        visitor = request.environ["bench.visitor"]
        payload = {"id": next(ids), "conversation_id": visitor, "sender_type": "visitor", "sender_name": None,
                   "text": data.get("text"), "client_msg_id": data.get("client_msg_id"),
                   "created_at": datetime.now(UTC).isoformat()}
        socketio.emit("message", payload, to=f"visitor:{visitor}", namespace="/visitor", skip_sid=request.sid)
        socketio.emit("message", payload, to=f"conversation:{visitor}", namespace="/agent")
        return {"id": payload["id"], "client_msg_id": payload["client_msg_id"],
                "created_at": payload["created_at"], "conversation_id": visitor}

    @socketio.on("connect", namespace="/agent")
    def agent_connect(auth=None):  # noqa: ANN001, ANN202
        if not isinstance(auth, dict) or not isinstance(auth.get("bench_agent"), int):
            raise ConnectionRefusedError("bench agent number needed")
        for visitor in range(auth["bench_agent"], int(auth["visitors"]), int(auth["agents"])):
            join_room(f"conversation:{visitor}")

    if os.environ.get("GC_FREEZE", "1") != "0":  # as the desk's run.py does (app/heap.py)
        import gc

        def refreeze(phase: str, info: dict) -> None:
            if phase == "stop" and info.get("generation") == 2:
                gc.freeze()

        gc.collect()
        gc.freeze()
        gc.callbacks.append(refreeze)
    print(f"relay ({ASYNC_MODE}) on http://{args.host}:{args.port}", flush=True)
    options = {"max_size": 20000} if ASYNC_MODE == "eventlet" else {}
    socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True, log_output=False, **options)


if __name__ == "__main__":
    main()
