"""Backup and restore (``flask backup PATH`` / ``flask restore PATH``).

A backup restored into an empty database reproduces every row of every table. "Empty" means
no table holds a row other than Alembic's version stamp: a database with no tables at all and
one that was only migrated both qualify. Anything else is refused and left untouched.

On SQLite the second database is a new file; on PostgreSQL (``TEST_DATABASE_URL``) it is a
scratch database created on the same server and dropped afterwards.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from pathlib import Path

import pytest
from flask_appbuilder import Model
from sqlalchemy import MetaData, create_engine, func, select, text
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db
from app.models.crm import Client
from app.services.backup import BackupError, backup, restore
from app.services.bootstrap import migrate_database, prepare_database
from app.services.demo import seed_demo
from tests.conftest import PASSWORD, FreshContextClient, make_test_config
from tests.factories import make_client

# --- helpers ------------------------------------------------------------------------------


def _sort_key(row: tuple) -> tuple:
    return tuple((value is None, str(type(value)), str(value)) for value in row)


def _dump(engine) -> dict[str, list[tuple]]:
    """Every row of every table of the database (as stored), sorted."""
    meta = MetaData()
    meta.reflect(bind=engine)
    with engine.connect() as conn:
        return {name: sorted((tuple(r) for r in conn.execute(table.select())), key=_sort_key)
                for name, table in meta.tables.items()}


def _is_postgres(app) -> bool:
    return make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() == "postgresql"


@pytest.fixture
def scratch_url(app, tmp_path):
    """URL of a second database that exists but has no tables."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"restore_test_{uuid.uuid4().hex[:12]}"
    server = create_engine(url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@contextlib.contextmanager
def _second_app(app, tmp_path: Path, url: str):
    """Another application, same keys, on the database at *url*.

    Its CLI commands must run inside ``second.app_context()``: Flask's CLI uses whichever
    application context is already pushed (here: the test session's app).
    """
    second = create_app(make_test_config(tmp_path / "second", SQLALCHEMY_DATABASE_URI=url,
                                         FIELD_ENCRYPTION_KEY=app.config["FIELD_ENCRYPTION_KEY"],
                                         SECRET_KEY=app.config["SECRET_KEY"]))
    second.test_client_class = FreshContextClient
    try:
        yield second
    finally:
        with second.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def demo_data(app, session):
    """Users of every role, clients, contracts, bills, payments, archives, audit rows."""
    seed_demo(app)
    make_client(name="备份测试客户有限公司", notes="=SUM(A1)")
    session.commit()
    source = _dump(db.engine)
    for table in ("ab_user", "ab_role", "client", "contract", "document", "audit_log", "alembic_version"):
        assert source[table], f"demo data has no {table} rows"
    return source


# --- service --------------------------------------------------------------------------------


@pytest.mark.parametrize("target_state", ["no_tables", "migrated_without_rows"])
def test_restore_into_an_empty_database_reproduces_every_row_of_every_table(
        app, tmp_path, demo_data, scratch_url, target_state):
    written = backup(db.engine, tmp_path / "nested" / "desk.backup")
    assert written == tmp_path / "nested" / "desk.backup" and written.stat().st_size > 0

    with _second_app(app, tmp_path, scratch_url) as second, second.app_context():
        if target_state == "migrated_without_rows":
            migrate_database()
            assert set(_dump(db.engine)) >= {t.name for t in Model.metadata.sorted_tables}
        restore(db.engine, written)
        restored = _dump(db.engine)

    assert restored == demo_data
    assert _dump(db.engine) == demo_data  # and the source is untouched


def test_restored_database_serves_the_application(app, tmp_path, demo_data, scratch_url):
    written = backup(db.engine, tmp_path / "desk.backup")
    with _second_app(app, tmp_path, scratch_url) as second:
        with second.app_context():
            restore(db.engine, written)
            highest = db.session.scalar(select(func.max(Client.id)))
            added = make_client(name="恢复后新增客户有限公司")  # ids continue after the restored rows
            assert added.id > highest
            names = set(db.session.scalars(select(Client.name)))
        assert {"备份测试客户有限公司", "恢复后新增客户有限公司"} <= names
        browser = second.test_client()
        assert browser.post("/login/", data={"username": "manager", "password": PASSWORD}).status_code == 302
        page = browser.get("/clientmodelview/list/?psize_ClientModelView=100")
        assert page.status_code == 200 and "备份测试客户有限公司" in page.text


def test_restore_into_a_database_with_data_is_refused_and_changes_nothing(app, tmp_path, demo_data):
    written = backup(db.engine, tmp_path / "desk.backup")
    make_client(name="备份之后的客户有限公司")
    before = _dump(db.engine)

    with pytest.raises(BackupError, match="not empty"):
        restore(db.engine, written)

    assert _dump(db.engine) == before


def test_restore_into_a_database_prepared_by_init_db_is_refused(app, tmp_path, demo_data, scratch_url):
    written = backup(db.engine, tmp_path / "desk.backup")
    with _second_app(app, tmp_path, scratch_url) as second, second.app_context():
        prepare_database(second)  # roles and permissions are rows: restoring would mix two databases
        before = _dump(db.engine)
        with pytest.raises(BackupError, match="not empty"):
            restore(db.engine, written)
        assert _dump(db.engine) == before


def test_restore_of_a_missing_file_is_refused(app, tmp_path, scratch_url):
    with _second_app(app, tmp_path, scratch_url) as second, second.app_context():
        with pytest.raises(BackupError, match="does not exist"):
            restore(db.engine, tmp_path / "nothing.backup")
        assert _dump(db.engine) == {}


# --- CLI ------------------------------------------------------------------------------------


def test_backup_and_restore_commands_copy_the_database(app, tmp_path, demo_data, scratch_url):
    path = tmp_path / "cli.backup"
    result = app.test_cli_runner().invoke(args=["backup", str(path)])
    assert result.exit_code == 0, result.output
    assert f"backup written to {path}" in result.output
    assert path.is_file()

    with _second_app(app, tmp_path, scratch_url) as second, second.app_context():
        result = second.test_cli_runner().invoke(args=["restore", str(path)])
        assert result.exit_code == 0, result.output
        assert "restore complete" in result.output
        assert _dump(db.engine) == demo_data


def test_restore_command_refuses_a_database_with_data_and_changes_nothing(app, tmp_path, demo_data):
    path = tmp_path / "cli.backup"
    assert app.test_cli_runner().invoke(args=["backup", str(path)]).exit_code == 0
    make_client(name="备份之后的客户有限公司")
    before = _dump(db.engine)

    result = app.test_cli_runner().invoke(args=["restore", str(path)])

    assert result.exit_code == 1
    assert "the target database is not empty; restore needs an empty database" in result.output
    assert "restore complete" not in result.output
    assert _dump(db.engine) == before


def test_restore_command_refuses_a_missing_file(app, tmp_path, scratch_url):
    with _second_app(app, tmp_path, scratch_url) as second, second.app_context():
        result = second.test_cli_runner().invoke(args=["restore", str(tmp_path / "nothing.backup")])
        assert result.exit_code == 1
        assert "does not exist" in result.output
        assert _dump(db.engine) == {}


def test_restore_command_refuses_a_file_that_is_not_a_backup(app, tmp_path, scratch_url):
    path = tmp_path / "notes.backup"
    path.write_text("这不是备份文件\n" * 10)
    with _second_app(app, tmp_path, scratch_url) as second, second.app_context():
        migrate_database()
        before = _dump(db.engine)
        result = second.test_cli_runner().invoke(args=["restore", str(path)])
        assert result.exit_code == 1
        assert re.search(r"notes\.backup is not a (SQLite|PostgreSQL) backup", result.output), result.output
        assert "restore complete" not in result.output
        assert _dump(db.engine) == before


def test_backup_command_to_an_unwritable_place_is_a_clear_error(app, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")

    result = app.test_cli_runner().invoke(args=["backup", str(blocker / "db.backup")])

    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    assert "not-a-folder" in result.output
    assert not (blocker / "db.backup").exists()
