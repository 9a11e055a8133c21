"""Every setting of Bookkeeping Desk, read from the environment and documented here.

Environment variables (all optional):

``DATABASE_URL``            SQLAlchemy URL; default: SQLite file ``instance/bookkeeping.db``.
``SECRET_KEY``              session/JWT signing key; generated into ``instance/secret-key`` when unset.
``REDIS_URL``               Redis; enables shared rate-limit storage and is the default message queue.
``SOCKETIO_MESSAGE_QUEUE``  Socket.IO message queue URL (defaults to ``REDIS_URL``).
``ASYNC_MODE``              ``gevent`` (default) | ``eventlet`` | ``threading`` (benchmarks/RESULTS.md says why).
``DB_CONNECT_TIMEOUT``      seconds a PostgreSQL connection may take before it fails (default 5).
``FIELD_ENCRYPTION_KEY``    Fernet key(s), comma separated, first one encrypts; generated into
                            ``instance/field-encryption.key`` when unset.
``MFA_REQUIRED_ROLES``      comma-separated role names that must enrol in TOTP (default
                            ``Admin,Manager``; empty disables the requirement).
``SESSION_IDLE_MINUTES``    idle minutes before a browser session ends (default 30).
``AUTH_RATE_LIMIT``         failed sign-in attempts (wrong password or one-time code) allowed per address,
                            Flask-Limiter syntax (default ``5 per minute``); successful sign-ins do not count.
``AUTH_LOCKOUT_ATTEMPTS``   wrong passwords for one account, from any address, that lock it (default 5) ...
``AUTH_LOCKOUT_WINDOW_MINUTES`` ... within this many minutes (default 15); a successful sign-in starts again.
``AUTH_LOCKOUT_MINUTES``    how long a lock lasts (default 15; 0: until an Admin lifts it).
``PASSWORD_MAX_AGE_DAYS``   days after which a password must be changed at the next sign-in (default 0: never).
``UPLOAD_MAX_MB``           largest archive upload in MiB (default 20).
``TZ_DISPLAY``              zone shown to users (default ``Asia/Shanghai``).
``DEMO_PASSWORD``           password of the demo users (generated when unset).
``AGENCY_NAME``             the agency's name shown in the header and on documents.
``GEOIP_DB``                path of a MaxMind-format database (GeoIP2/GeoLite2 City ``.mmdb``) that gives
                            chat visitors' country, region and city; unset, missing or unreadable: blank.
``TRACKING_TRUNCATE_IP``    store chat visitors' addresses truncated (IPv4 to /24, IPv6 to /48) and never
                            show agents the address (default true; ``false`` keeps the full address).
                            Blocks and the place lookup still use the full address while connecting.
``CHAT_SWEEP_SECONDS``      how often each server process looks for offers that timed out and chats that
                            need the no-answer auto reply (default 2).
``CHAT_VISITOR_RATE``       socket events a visitor may send, ``limits`` syntax (default ``30 per 10 second``);
                            counted in Redis when ``REDIS_URL`` is set, else per process.
``CHAT_FANOUT_SECONDS``     how long queue, presence and visitor-list updates are held to be sent once (default 0.1).
``CHAT_POLL_MAX_PACKETS``   most Socket.IO packets one long-polling request may carry (default 200; Engine.IO's own
                            is 16): a widget sending its outbox after a reload batches them; a request with more
                            is refused by Engine.IO.
``CHAT_SOCKET_MAX_BYTES``   largest Socket.IO packet a client may send (default 4000000): a larger one closes the
                            connection without an answer (Engine.IO's rule), so it stays far above the longest
                            payload the events allow (a 2000-character message), which is refused with an error.
``CHAT_VISITOR_GRACE_SECONDS``
                            how long a visitor whose every widget connection closed may take to come back before
                            their waiting chat leaves the queue as left by the visitor (default 45).
``CHAT_MAX_INFLIGHT``       socket events one process handles at once; past that an event is refused at once as
                            busy with ``retry_after`` (default 0: 500 on SQLite under gevent or eventlet,
                            else twice the pool's size plus overflow).
``DB_POOL_SIZE``, ``DB_POOL_OVERFLOW``, ``DB_POOL_TIMEOUT``
                            the database connection pool: connections kept, extra ones allowed, and seconds a
                            request waits for one before it is refused as busy (a chat message is then refused
                            with ``retry_after`` and the widget sends it again). Defaults depend on
                            ``ASYNC_MODE``: gevent/eventlet 10 + 20 and 5 s (one process serves many chats on
                            few threads of the database), threading 10 + 20 and 10 s.
``GC_FREEZE``               ``0`` leaves Python's garbage collector as it is; by default the server keeps start-up's
                            objects and the survivors of each full collection out of its sight (app/heap.py).
``GC_FULL_SECONDS``         how often everything is collected in full once (default 900).
``CHAT_UPLOAD_MAX_MB``      largest file sent in a chat, in MiB (default 10).
``CHAT_RETENTION_DAYS``     days after which ``flask --app app chat-retention`` truncates visitor addresses and
                            anonymises closed chats of unidentified visitors (default 180).
``MAIL_SERVER``, ``MAIL_PORT``, ``MAIL_USERNAME``, ``MAIL_PASSWORD``, ``MAIL_USE_TLS``, ``MAIL_USE_SSL``,
``MAIL_DEFAULT_SENDER``     SMTP for replies to left messages and chat transcripts (default localhost:25,
                            no TLS; sender ``desk@localhost``).
``DESK_URL``                the back office's address as users reach it (e.g. ``https://desk.example.com``); mails
                            sent from the command line (``flask --app app remind``) link to it (default: no link).
``REPORTS_SYNC_MAX_ROWS``   PDFs with more table rows than this render as a background job (default 400).
``REPORTS_CHUNK_ROWS``      rows per chunk of a background PDF, rendered in parallel (default 250).
``REPORTS_WORKERS``         local worker processes for PDFs and spreadsheet imports (default 3; background PDF jobs
                            use all but one, so a small PDF or an import never waits behind a large job).
                            With ``REDIS_URL`` background jobs go to RQ workers instead
                            (``python -m reports.worker rq``) and the local ones serve the rest.
``REPORTS_TASK_SECONDS``    time limit of one task in a worker (a PDF, a chunk, the reading of a file; default 300).
``IMPORT_MAX_MB``           largest voucher import file, in MiB (default 2); a larger request body answers 413.
``IMPORT_MAX_UNPACKED_MB``  largest total of an XLSX file's parts once unpacked, in MiB (default 20); checked
                            before anything is parsed (a "zip bomb" answers 413).
``IMPORT_MAX_ROWS``         most data rows of a voucher import file (default 2000; more: 422).
``IMPORT_MAX_COLUMNS``      most columns of a voucher import file (default 40; more: 422).
``DEMO_SITE_KEY``           the site key of the demo chat site (generated when unset).
``DEMO_HOST_PORT``          port of the demo host page that embeds the widget (default 5001; 0: none).
``MAX_CONNECTIONS``         connections one server process accepts at once under eventlet (default 20000; read
                            by run.py: eventlet's own default is 1024; gevent and threading have no cap).
``SESSION_COOKIE_SECURE``   send the session cookie over HTTPS only (default false, for local http); set it
                            whenever users reach the server over TLS.
``REMEMBER_COOKIE_SECURE``  the same for Flask-Login's remember cookie (default: ``SESSION_COOKIE_SECURE``).
``TRUSTED_PROXIES``         reverse proxies in front of the server whose ``X-Forwarded-For``, ``-Proto`` and
                            ``-Host`` headers are believed (Werkzeug's ProxyFix; default 0: none, the headers are
                            ignored). Each proxy must set (not append blindly to) those headers.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = BASE_DIR / "instance"


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _read_or_create(path: Path, make: callable) -> str:
    """Return the secret stored in *path*, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def engine_options(async_mode: str, url: str | None = None) -> dict:
    """SQLAlchemy engine options for the async mode (``DB_POOL_*`` override them).

    Under gevent or eventlet every socket event runs on the one hub, so a few database connections
    serve many chats; a request that cannot get one within ``DB_POOL_TIMEOUT`` is refused as busy
    (the client retries) instead of queueing without bound. Threading runs a thread per request.
    The pool bounds one process's connections: keep processes × (size + overflow) below the
    database's ``max_connections``."""
    if url in ("sqlite://", "sqlite:///:memory:"):  # one connection per thread, no queue pool
        return {"pool_pre_ping": True}
    green = async_mode in ("gevent", "eventlet")
    return {"pool_pre_ping": True,
            "pool_size": int(os.environ.get("DB_POOL_SIZE", "10")),
            "max_overflow": int(os.environ.get("DB_POOL_OVERFLOW", "20")),
            "pool_timeout": float(os.environ.get("DB_POOL_TIMEOUT", "5" if green else "10"))}


def build_config(overrides: dict | None = None) -> dict:
    """Build the Flask config mapping from the environment plus *overrides*."""
    overrides = dict(overrides or {})
    instance = Path(overrides.pop("INSTANCE_PATH", os.environ.get("INSTANCE_PATH", DEFAULT_INSTANCE)))
    instance.mkdir(parents=True, exist_ok=True)

    redis_url = overrides.get("REDIS_URL", os.environ.get("REDIS_URL") or None)
    idle = int(os.environ.get("SESSION_IDLE_MINUTES", "30"))
    mfa_roles = os.environ.get("MFA_REQUIRED_ROLES", "Admin,Manager")

    cfg: dict = {
        "INSTANCE_PATH": str(instance),
        "APP_NAME": os.environ.get("AGENCY_NAME", "Bookkeeping Desk"),
        "AGENCY_NAME": os.environ.get("AGENCY_NAME", "Bookkeeping Desk"),
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL")
        or f"sqlite:///{instance / 'bookkeeping.db'}",
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(os.environ.get("ASYNC_MODE", "gevent"),
                                                    os.environ.get("DATABASE_URL")),
        "REDIS_URL": redis_url,
        "SOCKETIO_MESSAGE_QUEUE": os.environ.get("SOCKETIO_MESSAGE_QUEUE") or redis_url,
        "ASYNC_MODE": os.environ.get("ASYNC_MODE", "gevent"),
        "TZ_DISPLAY": os.environ.get("TZ_DISPLAY", "Asia/Shanghai"),
        # --- Flask-AppBuilder -------------------------------------------------
        "AUTH_TYPE": 1,  # AUTH_DB
        "AUTH_ROLE_ADMIN": "Admin",
        "AUTH_ROLE_PUBLIC": "Public",
        "AUTH_USER_REGISTRATION": False,
        "FAB_SECURITY_MANAGER_CLASS": "app.security.DeskSecurityManager",
        "FAB_CREATE_DB": False,  # the schema comes from Alembic migrations only
        "FAB_UPDATE_PERMS": False,  # permissions are synced by app.services.bootstrap
        "FAB_ADD_SECURITY_API": False,
        "FAB_API_SWAGGER_UI": True,
        "FAB_PASSWORD_COMPLEXITY_ENABLED": True,
        "FAB_INDEX_VIEW": "app.views.home.DeskIndexView",
        "FAB_BASE_TEMPLATE": "desk_base.html",  # FAB's layout with the date picker in the page's language
        "AUTH_RATE_LIMITED": _env_bool("AUTH_RATE_LIMITED", True),
        "AUTH_RATE_LIMIT": os.environ.get("AUTH_RATE_LIMIT", "5 per minute"),
        "AUTH_LOCKOUT_ATTEMPTS": int(os.environ.get("AUTH_LOCKOUT_ATTEMPTS", "5")),
        "AUTH_LOCKOUT_WINDOW_MINUTES": float(os.environ.get("AUTH_LOCKOUT_WINDOW_MINUTES", "15")),
        "AUTH_LOCKOUT_MINUTES": float(os.environ.get("AUTH_LOCKOUT_MINUTES", "15")),
        "PASSWORD_MAX_AGE_DAYS": int(os.environ.get("PASSWORD_MAX_AGE_DAYS", "0")),
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis down: sign-in limits go on in this process's memory (a warning is logged) and
        # Redis is tried again now and then; short timeouts keep a dead host from stalling logins.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        # --- i18n ---------------------------------------------------------------
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "BABEL_TRANSLATION_DIRECTORIES": str(BASE_DIR / "translations"),
        "LANGUAGES": {
            "zh_CN": {"flag": "cn", "name": "简体中文"},
            "en": {"flag": "gb", "name": "English"},
        },
        # --- sessions, CSRF, JWT -------------------------------------------------
        "SESSION_IDLE_MINUTES": idle,
        "PERMANENT_SESSION_LIFETIME": timedelta(minutes=idle),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _env_bool("SESSION_COOKIE_SECURE", False),
        "REMEMBER_COOKIE_SECURE": _env_bool("REMEMBER_COOKIE_SECURE", _env_bool("SESSION_COOKIE_SECURE", False)),
        "TRUSTED_PROXIES": int(os.environ.get("TRUSTED_PROXIES", "0")),
        "WTF_CSRF_ENABLED": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=30),
        # --- MFA ------------------------------------------------------------------
        "MFA_REQUIRED_ROLES": [r.strip() for r in mfa_roles.split(",") if r.strip()],
        "MFA_ISSUER": os.environ.get("MFA_ISSUER", "Bookkeeping Desk"),
        # --- archives ---------------------------------------------------------------
        "UPLOAD_DIR": str(instance / "archives"),
        "UPLOAD_MAX_BYTES": int(float(os.environ.get("UPLOAD_MAX_MB", "20")) * 1024 * 1024),
        "MAX_CONTENT_LENGTH": int(float(os.environ.get("UPLOAD_MAX_MB", "20")) * 1024 * 1024)
        + 1024 * 1024,
        "RENEWAL_WINDOW_DAYS": int(os.environ.get("RENEWAL_WINDOW_DAYS", "30")),
        "DEMO_PASSWORD": os.environ.get("DEMO_PASSWORD") or None,
        # --- live chat visitor tracking ------------------------------------------------
        "GEOIP_DB": os.environ.get("GEOIP_DB") or None,
        "TRACKING_TRUNCATE_IP": _env_bool("TRACKING_TRUNCATE_IP", True),
        # --- live chat ------------------------------------------------------------------
        "CHAT_SWEEP_SECONDS": float(os.environ.get("CHAT_SWEEP_SECONDS", "2")),
        "CHAT_VISITOR_RATE": os.environ.get("CHAT_VISITOR_RATE", "30 per 10 second"),
        "CHAT_FANOUT_SECONDS": float(os.environ.get("CHAT_FANOUT_SECONDS", "0.1")),
        "CHAT_SOCKET_MAX_BYTES": int(os.environ.get("CHAT_SOCKET_MAX_BYTES", "4000000")),
        "CHAT_POLL_MAX_PACKETS": int(os.environ.get("CHAT_POLL_MAX_PACKETS", "200")),
        "CHAT_VISITOR_GRACE_SECONDS": float(os.environ.get("CHAT_VISITOR_GRACE_SECONDS", "45")),
        "CHAT_MAX_INFLIGHT": int(os.environ.get("CHAT_MAX_INFLIGHT", "0")),
        "CHAT_UPLOAD_DIR": str(instance / "chat-files"),
        "CHAT_UPLOAD_MAX_BYTES": int(float(os.environ.get("CHAT_UPLOAD_MAX_MB", "10")) * 1024 * 1024),
        "CHAT_RETENTION_DAYS": int(os.environ.get("CHAT_RETENTION_DAYS", "180")),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", "localhost"),
        "MAIL_PORT": int(os.environ.get("MAIL_PORT", "25")),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": _env_bool("MAIL_USE_TLS", False),
        "MAIL_USE_SSL": _env_bool("MAIL_USE_SSL", False),
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER", "desk@localhost"),
        "DESK_URL": (os.environ.get("DESK_URL") or "").rstrip("/") or None,
        # --- PDF reports -----------------------------------------------------------------
        "REPORTS_SYNC_MAX_ROWS": int(os.environ.get("REPORTS_SYNC_MAX_ROWS", "400")),
        "REPORTS_CHUNK_ROWS": int(os.environ.get("REPORTS_CHUNK_ROWS", "250")),
        "REPORTS_WORKERS": int(os.environ.get("REPORTS_WORKERS", "3")),
        "REPORTS_TASK_SECONDS": float(os.environ.get("REPORTS_TASK_SECONDS", "300")),
        # --- voucher import (bounded before parsing) ---------------------------------------
        "IMPORT_MAX_BYTES": int(float(os.environ.get("IMPORT_MAX_MB", "2")) * 1024 * 1024),
        "IMPORT_MAX_UNPACKED_BYTES": int(float(os.environ.get("IMPORT_MAX_UNPACKED_MB", "20")) * 1024 * 1024),
        "IMPORT_MAX_ROWS": int(os.environ.get("IMPORT_MAX_ROWS", "2000")),
        "IMPORT_MAX_COLUMNS": int(os.environ.get("IMPORT_MAX_COLUMNS", "40")),
        "DEMO_SITE_KEY": os.environ.get("DEMO_SITE_KEY") or None,
        "DEMO_HOST_PORT": int(os.environ.get("DEMO_HOST_PORT", "5001")),
    }
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("postgresql") and "connect_timeout=" not in cfg[
            "SQLALCHEMY_DATABASE_URI"]:
        # A database host that does not answer fails a connection (a request, /health, the start)
        # in DB_CONNECT_TIMEOUT seconds instead of the system's minutes of TCP retries.
        cfg["SQLALCHEMY_ENGINE_OPTIONS"].setdefault("connect_args", {}).setdefault(
            "connect_timeout", int(os.environ.get("DB_CONNECT_TIMEOUT", "5")))
    cfg.update(overrides)
    uri = cfg["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite") and uri not in ("sqlite://", "sqlite:///:memory:"):
        options = cfg["SQLALCHEMY_ENGINE_OPTIONS"] = dict(cfg["SQLALCHEMY_ENGINE_OPTIONS"])
        # A writer waits up to SQLITE_BUSY_SECONDS for another one's transaction (a large import)
        # instead of failing after sqlite3's 5 s; it waits in its own thread (below).
        options["connect_args"] = {"timeout": float(os.environ.get("SQLITE_BUSY_SECONDS", "30")),
                                   **options.get("connect_args", {})}
        # A SQLite connection is a file this process has open: no server can drop it, so the ping
        # before each checkout would only be one more statement per request and chat message.
        options["pool_pre_ping"] = False
        if cfg["ASYNC_MODE"] in ("gevent", "eventlet"):
            # SQLite's calls run in native threads so that they do not hold the hub (app/green_sqlite.py).
            from app.green_sqlite import dbapi

            options["module"] = dbapi()

    secret = os.environ.get("SECRET_KEY") or cfg.get("SECRET_KEY")
    cfg["SECRET_KEY"] = secret or _read_or_create(
        Path(cfg["INSTANCE_PATH"]) / "secret-key", lambda: secrets.token_hex(32)
    )
    cfg.setdefault("JWT_SECRET_KEY", cfg["SECRET_KEY"])
    key = os.environ.get("FIELD_ENCRYPTION_KEY") or cfg.get("FIELD_ENCRYPTION_KEY")
    cfg["FIELD_ENCRYPTION_KEY"] = key or _read_or_create(
        Path(cfg["INSTANCE_PATH"]) / "field-encryption.key", _new_fernet_key
    )
    return cfg
