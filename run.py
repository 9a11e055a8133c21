"""Start Bookkeeping Desk: HTTP and Socket.IO on one port (eventlet by default).

    python run.py [--host 127.0.0.1] [--port 5000] [--no-demo]

On first start with an empty database it applies the migrations and seeds demo data.
"""

from __future__ import annotations

import argparse
import os

ASYNC_MODE = os.environ.get("ASYNC_MODE", "eventlet")
if ASYNC_MODE == "eventlet":
    import eventlet

    eventlet.monkey_patch()
elif ASYNC_MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()


def main() -> None:
    parser = argparse.ArgumentParser(description="Bookkeeping Desk server")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--no-demo", action="store_true", help="do not seed demo data on first start")
    args = parser.parse_args()

    from app import create_app
    from app.extensions import socketio
    from app.services.bootstrap import database_is_empty, prepare_database
    from app.services.demo import DEMO_USERS, seed_demo
    from app.services.i18n import ensure_compiled

    ensure_compiled()
    app = create_app()
    with app.app_context():
        first_start = database_is_empty()
        prepare_database(app)
        seeded = seed_demo(app) if first_start and not args.no_demo else None

    base = f"http://{args.host}:{args.port}"
    print(f"Bookkeeping Desk is running at {base}/", flush=True)
    print(f"  admin screens: {base}/login/   API docs: {base}/swagger/v1   health: {base}/health", flush=True)
    if seeded and seeded.get("password"):
        print("  demo users (password shown once, also in "
              f"{seeded['credentials_file']}):", flush=True)
        for username, roles, *_ in DEMO_USERS:
            print(f"    {username:<11} {roles[0]:<11} {seeded['password']}", flush=True)
        print("  Admin and Manager enrol in two-factor authentication at first sign-in.", flush=True)
    socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True,
                 log_output=os.environ.get("ACCESS_LOG", "0") == "1")


if __name__ == "__main__":
    main()
