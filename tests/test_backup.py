"""Backup and restore (``flask backup PATH`` / ``flask restore PATH``).

A backup restored into an empty database reproduces every row of every table. "Empty" means
no data: no table holds a row other than Alembic's version stamp and the roles and permissions
``flask init-db`` writes, so a database with no tables at all, one that was only migrated and one
prepared by ``init-db`` all qualify. Anything else is refused and left untouched. Database files,
backups and uploaded files are the server user's alone (0600, folders 0700).

On SQLite the second database is a new file; on PostgreSQL (``TEST_DATABASE_URL``) it is a
scratch database created on the same server and dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
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


def _refusal(application) -> str:
    """The refusal of a restore into a database with data, in the application's language."""
    from flask_babel import gettext

    with application.app_context():
        return gettext("The target database already holds data (users, clients or other rows): a backup "
                       "is restored only into a new database or one just prepared with flask init-db. "
                       "Nothing was changed.")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


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

    with pytest.raises(BackupError) as refused:
        restore(db.engine, written)

    assert str(refused.value) == _refusal(app)
    assert _dump(db.engine) == before


def test_restore_into_a_database_prepared_by_init_db_yields_the_backed_up_data(app, tmp_path, demo_data, scratch_url):
    """How an operator recovers: ``flask init-db`` on a new database, then ``flask restore``."""
    written = backup(db.engine, tmp_path / "desk.backup")
    with _second_app(app, tmp_path, scratch_url) as second, second.app_context():
        prepare_database(second)  # schema plus the seeded roles and permissions, no data
        assert _dump(db.engine)["ab_role"] and not _dump(db.engine)["ab_user"]
        result = second.test_cli_runner().invoke(args=["restore", str(written)])
        assert result.exit_code == 0, result.output
        assert "restore complete" in result.output
        assert _dump(db.engine) == demo_data  # the backup's roles and permissions, not a mixture
    with _second_app(app, tmp_path, scratch_url) as second:
        browser = second.test_client()
        assert browser.post("/login/", data={"username": "manager", "password": PASSWORD}).status_code == 302
        assert "备份测试客户有限公司" in browser.get("/clientmodelview/list/?psize_ClientModelView=100").text


def test_restore_into_a_prepared_database_that_has_a_user_is_refused(app, tmp_path, demo_data, scratch_url):
    from app.services.users import create_user

    written = backup(db.engine, tmp_path / "desk.backup")
    with _second_app(app, tmp_path, scratch_url) as second, second.app_context():
        prepare_database(second)
        create_user(second, "firstadmin", PASSWORD, ["Admin"])
        before = _dump(db.engine)
        result = second.test_cli_runner().invoke(args=["restore", str(written)])
        assert result.exit_code == 1
        assert _refusal(second) in result.output and "restore complete" not in result.output
        assert _dump(db.engine) == before


def test_database_files_backups_and_archives_are_private(app, tmp_path, demo_data):
    """0600 files in 0700 folders, whatever the umask: nobody but the server's user reads them."""
    old_umask = os.umask(0o022)
    try:
        instance = tmp_path / "private" / "instance"
        sqlite_url = f"sqlite:///{instance / 'desk.db'}"
        own = create_app(make_test_config(tmp_path / "private", SQLALCHEMY_DATABASE_URI=sqlite_url,
                                          SQLALCHEMY_ENGINE_OPTIONS={},  # a SQLite file on either suite
                                          FIELD_ENCRYPTION_KEY=app.config["FIELD_ENCRYPTION_KEY"]))
        try:
            with own.app_context():
                migrate_database()
                with db.engine.connect() as conn:  # a reader keeps the -wal and -shm files there
                    conn.execute(text("SELECT 1 FROM alembic_version")).all()
                    files = [instance / "desk.db", instance / "desk.db-wal", instance / "desk.db-shm"]
                    assert all(path.exists() for path in files)
                    assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}
                nested = backup(db.engine, tmp_path / "backups" / "nightly" / "sqlite.backup")
                assert _mode(nested) == 0o600
                assert _mode(nested.parent) == 0o700 and _mode(nested.parent.parent) == 0o700
        finally:
            with own.app_context():
                db.session.remove()
                db.engine.dispose()
        assert _mode(instance) == 0o700

        # rendered reports kept on disk (no Redis): cache and job files
        from reports.store import FileStore

        store = FileStore(instance)
        store.cache_put("closed-month", b"%PDF-1.7 cached")
        cached = instance / "report_cache" / "closed-month.pdf"
        assert (_mode(cached), _mode(cached.parent)) == (0o600, 0o700)
        # the suite's own database (SQLite or PostgreSQL): its backup too
        written = backup(db.engine, tmp_path / "desk.backup")
        assert _mode(written) == 0o600
        # an older install's wider files and folders are narrowed at start
        old = tmp_path / "old"
        (old / "archives").mkdir(parents=True, mode=0o755)
        (old / "old.db").write_bytes(b"")
        os.chmod(old / "old.db", 0o644)
        os.chmod(old, 0o755)  # noqa: S103 - an older install's folder, as it was left
        again = create_app(make_test_config(old, INSTANCE_PATH=str(old), UPLOAD_DIR=str(old / "archives"),
                                            SQLALCHEMY_DATABASE_URI=f"sqlite:///{old / 'old.db'}",
                                            SQLALCHEMY_ENGINE_OPTIONS={}))
        with again.app_context():
            db.engine.dispose()
        assert (_mode(old), _mode(old / "archives"), _mode(old / "old.db")) == (0o700, 0o700, 0o600)
    finally:
        os.umask(old_umask)
        from app import _init_socketio

        _init_socketio(app)  # every create_app rebinds the Socket.IO server: back to the suite's app


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
    assert _refusal(app) in result.output
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
