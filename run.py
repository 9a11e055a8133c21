"""Start Bookkeeping Desk: HTTP and Socket.IO on one port (gevent by default; ``ASYNC_MODE``).

    python run.py [--host 127.0.0.1] [--port 5000] [--no-demo]

On first start with an empty database it applies the migrations and seeds demo data. When the
demo chat site exists, the demo host page (a fake agency website embedding the chat widget) is
served in the same process on ``DEMO_HOST_PORT`` (default 5001; 0 turns it off).
"""

from __future__ import annotations

import argparse
import os

ASYNC_MODE = os.environ.get("ASYNC_MODE", "gevent")


def patch_for_async_mode() -> None:
    """Monkey-patch the standard library for eventlet or gevent. Called first in ``main`` (not at
    import: the PDF worker processes import this module too and must stay unpatched)."""
    if ASYNC_MODE == "eventlet":
        # psycopg 3 waits in C under eventlet, which blocks the hub on every query; its select()
        # wait function goes through the patched select module instead. (Under gevent psycopg
        # detects the patching itself.)
        os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")
        import eventlet

        eventlet.monkey_patch()
    elif ASYNC_MODE == "gevent":
        from gevent import monkey

        monkey.patch_all()


def serve_demo_host(wsgi_app, host: str, port: int) -> bool:  # noqa: ANN001
    """Serve *wsgi_app* on *port* in the background with the server of the async mode; False (and
    a warning) when the port cannot be bound, so the desk itself still starts."""
    from app.extensions import socketio

    try:
        if ASYNC_MODE == "eventlet":
            import eventlet.wsgi

            listener = eventlet.listen((host, port))
            socketio.start_background_task(eventlet.wsgi.server, listener, wsgi_app, log_output=False)
        elif ASYNC_MODE == "gevent":
            from gevent.pywsgi import WSGIServer

            WSGIServer((host, port), wsgi_app, log=None).start()
        else:
            import threading

            from werkzeug.serving import make_server

            try:
                server = make_server(host, port, wsgi_app, threaded=True)
            except SystemExit as exc:  # werkzeug exits when the port is taken
                raise OSError(f"cannot listen on {host}:{port}") from exc
            threading.Thread(target=server.serve_forever, name="demo-host", daemon=True).start()
    except OSError as exc:
        print(f"  demo host page not started: port {port} is not free ({exc.strerror or exc})", flush=True)
        return False
    return True


def main() -> None:
    patch_for_async_mode()
    parser = argparse.ArgumentParser(description="Bookkeeping Desk server")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--no-demo", action="store_true", help="do not seed demo data on first start")
    args = parser.parse_args()

    from app import create_app
    from app.demo_host import browser_host, make_demo_host
    from app.extensions import socketio
    from app.services.bootstrap import database_is_empty, prepare_database
    from app.services.demo import DEMO_USERS, seed_demo
    from app.services.demo_chat import find_demo_site
    from app.services.i18n import ensure_compiled
    from app.sockets.sweeper import start_sweeper
    from reports.jobs import warm_pool

    ensure_compiled()
    app = create_app()
    with app.app_context():
        first_start = database_is_empty()
        prepare_database(app)
        seeded = seed_demo(app) if first_start and not args.no_demo else None
        demo_site = find_demo_site(app)
        site_key = demo_site.site_key if demo_site is not None and demo_site.active else None

    base = f"http://{args.host}:{args.port}"
    print(f"Bookkeeping Desk is running at {base}/", flush=True)
    print(f"  admin screens: {base}/login/   API docs: {base}/swagger/v1   health: {base}/health", flush=True)
    if seeded and seeded.get("password"):
        print("  demo users (password shown once, also in "
              f"{seeded['credentials_file']}):", flush=True)
        for username, roles, *_ in DEMO_USERS:
            print(f"    {username:<11} {roles[0]:<11} {seeded['password']}", flush=True)
        print("  Admin and Manager enrol in two-factor authentication at first sign-in.", flush=True)
    demo_port = app.config.get("DEMO_HOST_PORT") or 0
    if site_key:
        print(f"  demo chat site key: {site_key}", flush=True)
        if demo_port:
            desk_url = f"http://{browser_host(args.host)}:{args.port}"
            if serve_demo_host(make_demo_host(desk_url, site_key), args.host, demo_port):
                print(f"  demo website with the chat widget: http://{browser_host(args.host)}:{demo_port}/"
                      f"  (answer as agent1 or agent2 at {base}/chat/console/)", flush=True)
    start_sweeper(app)
    with app.app_context():
        warm_pool()  # the worker processes (PDFs, import files) start now, not on the first use
    socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True,
                 log_output=os.environ.get("ACCESS_LOG", "0") == "1")


if __name__ == "__main__":
    main()
