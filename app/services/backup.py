"""Backup and restore of the whole database.

SQLite uses the online backup API (consistent while the application runs); PostgreSQL uses
``pg_dump --format=custom`` and ``pg_restore``. Rules:

- A backup file is created with mode 0600 (in a folder created 0700 when it is new): it holds every
  row of the agency's data.
- Restore goes into a database that holds no data, so that it reproduces every row instead of
  merging with what is there: one with no tables, one that was only migrated, or one prepared by
  ``flask init-db`` (its only rows are Alembic's version stamp and the roles and permissions the
  prepare step writes, which the backup's own replace). A database with anything else (a user, a
  client, an audit row...) is refused and left untouched.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess  # noqa: S404 - runs pg_dump/pg_restore with argument lists, never a shell
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, Engine, make_url

from app.private_files import create_private, private_dir, private_sqlite_file


class BackupError(Exception):
    """Backup or restore refused or failed; the message says why."""


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _libpq_url(url: URL) -> str:
    """The libpq connection URL without the password (that goes in the environment, not argv)."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def _libpq_env(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed (Debian package postgresql-client)")
    return found


def backup(engine: Engine, target: str | Path) -> Path:
    """Write a full copy of the database behind *engine* to *target*."""
    url = engine.url
    target = Path(target)
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise BackupError(f"backup of {url.get_backend_name()} is not supported")
    private_dir(target.parent, narrow_existing=False)
    create_private(target)  # SQLite and pg_dump write into it and keep its mode 0600
    if url.get_backend_name() == "sqlite":
        source = sqlite3.connect(_sqlite_path(url))
        dest = sqlite3.connect(target)
        try:
            with dest:
                source.backup(dest)
        finally:
            dest.close()
            source.close()
        return target
    result = subprocess.run(  # noqa: S603
        [_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target), _libpq_url(url)],
        capture_output=True, text=True, check=False, env=_libpq_env(url))
    if result.returncode != 0:
        raise BackupError(result.stderr.strip() or "pg_dump failed")
    return target


# Alembic's version stamp is schema, not data: a database that was only migrated is empty.
SCHEMA_ONLY_TABLES = frozenset({"alembic_version"})
# What the prepare step (``flask init-db``: ``bootstrap.prepare_database``) writes into a migrated
# database: the permissions, the views they apply to, the roles and their grants. No data.
PREPARED_TABLES = frozenset({"ab_permission", "ab_view_menu", "ab_permission_view", "ab_role",
                             "ab_permission_view_role"})
# Reference data that a migration seeds into every database (the tax rates of 0009_tax_rates, the
# official 2026 filing deadlines of 0011_tax_filings): the backup brings its own copy. Editing a rate
# needs a user, whose row makes a database non-empty.
SEEDED_TABLES = frozenset({"tax_rate", "tax_deadline"})


def is_empty(engine: Engine) -> bool:
    """True when the database holds no data: no table has a row other than Alembic's version stamp
    and the roles and permissions of the prepare step (``PREPARED_TABLES``) and the reference data the
    migrations seed (``SEEDED_TABLES``)."""
    inspector = inspect(engine)
    with engine.connect() as conn:
        for table in inspector.get_table_names():
            if table in SCHEMA_ONLY_TABLES or table in PREPARED_TABLES or table in SEEDED_TABLES:
                continue
            if conn.execute(text(f'SELECT 1 FROM "{table}" LIMIT 1')).first():  # noqa: S608
                return False
    return True


def restore(engine: Engine, source: str | Path) -> None:
    """Restore *source* (made by ``backup``) into the empty database behind *engine*.

    Raises ``BackupError`` when the file is missing or not a backup, or the database already holds
    data (see the module rules: a database prepared by ``flask init-db`` holds none).
    """
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    if not is_empty(engine):
        raise BackupError(str(_l("The target database already holds data (users, clients or other rows): a backup "
                                 "is restored only into a new database or one just prepared with flask init-db. "
                                 "Nothing was changed.")))
    url = engine.url
    engine.dispose()
    if url.get_backend_name() == "sqlite":
        with open(source, "rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                raise BackupError(f"{source} is not a SQLite backup")
        target = _sqlite_path(make_url(str(url)))
        if not target.exists():
            create_private(target)
        src = sqlite3.connect(source)
        dest = sqlite3.connect(target)
        try:
            with dest:
                src.backup(dest)  # replaces every page: the prepared roles and permissions go too
        finally:
            dest.close()
            src.close()
        private_sqlite_file(target)
        return
    if url.get_backend_name() == "postgresql":
        listed = subprocess.run(  # noqa: S603 - refuse a file pg_restore cannot read before dropping anything
            [_tool("pg_restore"), "--list", str(source)], capture_output=True, text=True, check=False)
        if listed.returncode != 0:
            raise BackupError(f"{source} is not a PostgreSQL backup: {listed.stderr.strip()}")
        # --clean drops the empty tables left by migrations so the dump recreates them; all of it in
        # one transaction, so a failed restore leaves the database as it was.
        result = subprocess.run(  # noqa: S603
            [_tool("pg_restore"), "--no-owner", "--clean", "--if-exists", "--single-transaction",
             "--exit-on-error", "--dbname", _libpq_url(url), str(source)],
            capture_output=True, text=True, check=False, env=_libpq_env(url))
        if result.returncode != 0:
            raise BackupError(result.stderr.strip() or "pg_restore failed")
        return
    raise BackupError(f"restore of {url.get_backend_name()} is not supported")
