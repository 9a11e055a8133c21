"""Start Bookkeeping Desk: HTTP and Socket.IO on one port (gevent by default; ``ASYNC_MODE``).

    python run.py [--host 127.0.0.1] [--port 5000] [--no-demo]

On first start with an empty database it applies the migrations and seeds demo data. When the
demo chat site exists, the demo host page (a fake agency website embedding the chat widget) is
served in the same process on ``DEMO_HOST_PORT`` (default 5001; 0 turns it off).

A start that cannot work stops at once with one line on stderr and exit status 1: the port is
taken (another server is running there), or the database cannot be reached.
The log (stderr) has every warning and error with its traceback; ``ACCESS_LOG=1`` adds a line
per request.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import socket
import sys
import warnings
from collections.abc import Iterator

ASYNC_MODE = os.environ.get("ASYNC_MODE", "gevent")
ASYNC_MODES = ("gevent", "eventlet", "threading")


class StartError(Exception):
    """A start that cannot work; the message is the one line the operator sees."""


def patch_for_async_mode() -> None:
    """Monkey-patch the standard library for eventlet or gevent. Called first in ``main`` (not at
    import: the PDF worker processes import this module too and must stay unpatched)."""
    if ASYNC_MODE == "eventlet":
        # psycopg 3 waits in C under eventlet, which blocks the hub on every query; its select()
        # wait function goes through the patched select module instead. (Under gevent psycopg
        # detects the patching itself.)
        os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")
        # eventlet's green DNS imports dnspython, whose DNSSEC module uses DSA keys that
        # cryptography deprecates: eight warning lines at every start about code the desk never runs.
        warnings.filterwarnings("ignore", message=r"DSA is deprecated", module=r"dns\.")
        import eventlet

        eventlet.monkey_patch()
    elif ASYNC_MODE == "gevent":
        from gevent import monkey

        with entry_points_read_once():
            monkey.patch_all()


@contextlib.contextmanager
def entry_points_read_once() -> Iterator[None]:
    """While it lasts, ``importlib.metadata.entry_points(group=...)`` answers from one reading of
    the installed packages' entry points. gevent's patching asks for its plugins 25 times, each
    time reading the entry-point file of every installed package: about a tenth of a second of
    every start."""
    from importlib import metadata

    original = metadata.entry_points
    groups: dict[str, list] = {}
    for dist in metadata.distributions():
        for entry_point in dist.entry_points:
            groups.setdefault(entry_point.group, []).append(entry_point)

    def entry_points(**params: str):  # noqa: ANN202
        if set(params) == {"group"}:
            return metadata.EntryPoints(groups.get(params["group"], ()))
        return original(**params)

    metadata.entry_points = entry_points
    try:
        yield
    finally:
        metadata.entry_points = original


def configure_logging() -> None:
    """The server's log on stderr: every warning and error (with its traceback), and which
    migrations run. Configured before anything else logs, so the migration step keeps it."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    logging.getLogger("alembic.runtime.migration").setLevel(logging.INFO)
    if os.environ.get("ACCESS_LOG", "0") != "1":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # request lines of the threading server


def raise_open_file_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit (each chat connection is a
    socket; a soft limit of 1024 is common); returns the limit now in force."""
    try:
        import resource
    except ImportError:  # not on this platform
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return soft
    return wanted


def check_port_free(host: str, port: int) -> None:
    """Raise ``StartError`` when *host*:*port* cannot be listened on. A plain bind (no
    SO_REUSEPORT) fails while another server listens there, even one that shares its port, so a
    second server never starts quietly beside the first one."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartError(f"cannot start: the address {host} is not valid ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartError(f"cannot start: {host}:{port} is already in use (is another server running "
                                 f"there?); choose another port with --port or PORT") from None
            raise StartError(f"cannot start: cannot listen on {host}:{port} ({exc.strerror})") from None


def serve_demo_host(wsgi_app, host: str, port: int) -> bool:  # noqa: ANN001
    """Serve *wsgi_app* on *port* in the background with the server of the async mode; False (and
    a warning) when the port cannot be bound, so the desk itself still starts."""
    from app.extensions import socketio

    try:
        check_port_free(host, port)
        if ASYNC_MODE == "eventlet":
            import eventlet.wsgi

            listener = eventlet.listen((host, port), reuse_port=False)
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
    except (OSError, StartError) as exc:
        reason = getattr(exc, "strerror", None) or ("in use" if isinstance(exc, StartError) else exc)
        print(f"  demo host page not started: port {port} is not free ({reason})", flush=True)
        return False
    return True


def server_options() -> dict:
    """Options of ``socketio.run`` for the async mode: under gevent and threading, a connection
    upgraded to a websocket is closed when the websocket ends. What is left on it then is
    websocket frames (the client's close frame), which the servers' keep-alive loop would read as
    the next HTTP request and log as an error ("Invalid HTTP method", "Bad request syntax") at
    every websocket disconnect (eventlet's server does not read on). eventlet's server accepts at
    most 1024 connections at once unless told otherwise: ``MAX_CONNECTIONS`` (default 20,000)."""
    if ASYNC_MODE == "gevent":
        from gevent.pywsgi import WSGIHandler

        class ClosingGeventHandler(WSGIHandler):
            def run_application(self) -> None:
                if self.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
                    self.close_connection = True
                super().run_application()

        return {"handler_class": ClosingGeventHandler}
    if ASYNC_MODE == "threading":
        from werkzeug.serving import WSGIRequestHandler

        class ClosingWerkzeugHandler(WSGIRequestHandler):
            def run_wsgi(self) -> None:
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    self.close_connection = True
                super().run_wsgi()

        return {"request_handler": ClosingWerkzeugHandler}
    if ASYNC_MODE == "eventlet":
        return {"max_size": int(os.environ.get("MAX_CONNECTIONS", "20000"))}
    return {}


def prepare(app, seed: bool) -> tuple[dict | None, str | None]:  # noqa: ANN001
    """Migrate, sync permissions, seed the demo data on an empty database (when *seed*) and let
    the demo site allow the demo host page's port; return (what was seeded, the demo site's key).
    Raises ``StartError`` when the database cannot be reached."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from app.errors import database_unavailable
    from app.services.bootstrap import database_is_empty, prepare_database
    from app.services.demo import seed_demo
    from app.services.demo_chat import allow_demo_host, find_demo_site

    try:
        with app.app_context():
            first_start = database_is_empty()
            prepare_database(app)
            seeded = seed_demo(app) if first_start and seed else None
            demo_site = find_demo_site(app)
            site_key = demo_site.site_key if demo_site is not None and demo_site.active else None
            if site_key:
                allow_demo_host(app, demo_site, app.config.get("DEMO_HOST_PORT") or 0)
    except DBAPIError as exc:
        if not database_unavailable(exc):
            raise
        url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(hide_password=True)
        reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        raise StartError(f"cannot start: the database {url} cannot be reached ({reason})") from None
    return seeded, site_key


def print_banner(app, base: str, seeded: dict | None) -> None:  # noqa: ANN001
    from app.services.demo import DEMO_USERS

    print(f"Bookkeeping Desk is running at {base}/ (async mode: {ASYNC_MODE})", flush=True)
    print(f"  admin screens: {base}/login/   API docs: {base}/swagger/v1   health: {base}/health", flush=True)
    if seeded and seeded.get("password"):
        print("  demo users (password shown once, also in "
              f"{seeded['credentials_file']}):", flush=True)
        for username, roles, *_ in DEMO_USERS:
            print(f"    {username:<11} {roles[0]:<11} {seeded['password']}", flush=True)
    mfa_roles = app.config.get("MFA_REQUIRED_ROLES") or []
    if mfa_roles:
        print(f"  two-factor authentication is required at first sign-in for: {', '.join(mfa_roles)}", flush=True)


# Seconds between the server's start and the start of its worker processes.
WARM_DELAY_SECONDS = 1.0


def warm_pool_soon(app) -> None:  # noqa: ANN001
    """Start the worker processes (PDFs, import files, sign-in hashes) a moment after the server
    starts to listen rather than on their first use, and not before it listens: each worker
    imports WeasyPrint (about a second of CPU), which on two cores would delay the server's first
    answers. A call that comes earlier starts the pool itself."""
    from app.extensions import socketio
    from reports.jobs import warm_pool

    socketio.sleep(WARM_DELAY_SECONDS)
    with app.app_context():
        warm_pool()


def pause_collector() -> None:
    """No cyclic garbage collection while the server starts: importing the stack and building the
    application allocate some 370,000 long-lived objects, and the collections that this triggers
    walk them again and again (a third of a restart's CPU) while finding next to no garbage."""
    import gc

    gc.disable()


def main() -> None:
    if ASYNC_MODE not in ASYNC_MODES:
        sys.exit(f"cannot start: ASYNC_MODE is {ASYNC_MODE!r}; it is one of {', '.join(ASYNC_MODES)}")
    pause_collector()
    patch_for_async_mode()
    raise_open_file_limit()
    configure_logging()
    parser = argparse.ArgumentParser(description="Bookkeeping Desk server")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--no-demo", action="store_true", help="do not seed demo data on first start")
    args = parser.parse_args()

    try:
        check_port_free(args.host, args.port)
        from app import create_app

        app = create_app()
        from app import heap

        heap.resume_collector()  # before the demo data, whose rows come and go
        seeded, site_key = prepare(app, seed=not args.no_demo)
    except StartError as exc:
        sys.exit(str(exc))

    from app.demo_host import browser_host, make_demo_host
    from app.extensions import socketio
    from app.sockets.sweeper import start_sweeper

    base = f"http://{args.host}:{args.port}"
    print_banner(app, base, seeded)
    demo_port = app.config.get("DEMO_HOST_PORT") or 0
    if site_key:
        print(f"  demo chat site key: {site_key}", flush=True)
        if demo_port:
            # behind a proxy (DESK_URL) the demo page reaches the desk the way users do
            desk_url = app.config.get("DESK_URL") or f"http://{browser_host(args.host)}:{args.port}"
            if serve_demo_host(make_demo_host(desk_url, site_key), args.host, demo_port):
                print(f"  demo website with the chat widget: http://{browser_host(args.host)}:{demo_port}/"
                      f"  (answer as agent1 or agent2 at {desk_url}/chat/console/)", flush=True)
    start_sweeper(app)
    socketio.start_background_task(warm_pool_soon, app)
    heap.settle()  # start-up's objects out of the collector's sight: shorter pauses
    socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True,
                 log_output=os.environ.get("ACCESS_LOG", "0") == "1", **server_options())


if __name__ == "__main__":
    main()
