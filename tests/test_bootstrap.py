"""Start-up preparation of the database: migrations, permissions and roles, only what is missing.

A start with nothing to change reads a handful of rows and writes nothing; a permission a view
gains is created and granted, one it loses goes with its grants; roles get their defaults without
losing what an Admin added; a typo in the role spec is an error and writes nothing.
"""

from __future__ import annotations

import pytest
from flask_appbuilder.security.sqla.models import assoc_permissionview_role
from sqlalchemy import event, func, select

from app.extensions import db
from app.security import ROLE_SPEC
from app.services import bootstrap


def _statements(run) -> list[str]:  # noqa: ANN001
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def _grants(sm, role_name: str) -> set[tuple[str, str]]:  # noqa: ANN001
    db.session.expire_all()
    return {(pv.permission.name, pv.view_menu.name) for pv in sm.find_role(role_name).permissions}


def test_a_start_with_nothing_to_change_only_reads_a_few_rows(app):
    statements = _statements(lambda: bootstrap.prepare_database(app))

    writes = [s for s in statements if s in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    assert len([s for s in statements if s == "SELECT"]) <= 15


def test_the_database_at_head_is_not_migrated_again(app, monkeypatch):
    assert bootstrap.database_at_head()
    monkeypatch.setattr(bootstrap, "upgrade", lambda **kwargs: pytest.fail("migrated a database at head"))

    bootstrap.migrate_database()


def test_a_permission_a_view_gains_is_created_and_granted(app):
    sm = app.appbuilder.sm
    pv = sm.find_permission_view_menu("can_export", "ClientModelView")
    db.session.execute(assoc_permissionview_role.delete().where(
        assoc_permissionview_role.c.permission_view_id == pv.id))
    db.session.delete(pv)
    db.session.commit()
    assert ("can_export", "ClientModelView") not in _grants(sm, "Manager")

    bootstrap.prepare_database(app)

    assert ("can_export", "ClientModelView") in _grants(sm, "Admin")
    assert ("can_export", "ClientModelView") in _grants(sm, "Manager")
    assert ("can_export", "ClientModelView") not in _grants(sm, "Reviewer")


def test_a_permission_a_view_no_longer_has_goes_with_its_grants(app):
    sm = app.appbuilder.sm
    stale = sm.add_permission_view_menu("can_frobnicate", "ClientModelView")
    manager = sm.find_role("Manager")
    manager.permissions.append(stale)
    db.session.commit()

    bootstrap.sync_permissions(app)

    assert sm.find_permission_view_menu("can_frobnicate", "ClientModelView") is None
    assert ("can_frobnicate", "ClientModelView") not in _grants(sm, "Manager")
    assert ("can_list", "ClientModelView") in _grants(sm, "Manager")


def test_roles_keep_what_an_admin_added_unless_reset(app):
    sm = app.appbuilder.sm
    extra = sm.find_permission_view_menu("can_list", "AuditLogModelView")
    reviewer = sm.find_role("Reviewer")
    reviewer.permissions.append(extra)
    db.session.commit()

    bootstrap.sync_roles(app)
    assert ("can_list", "AuditLogModelView") in _grants(sm, "Reviewer")

    bootstrap.sync_roles(app, reset=True)
    assert ("can_list", "AuditLogModelView") not in _grants(sm, "Reviewer")
    assert ("can_list", "ClientModelView") in _grants(sm, "Reviewer")


def test_a_typo_in_the_role_spec_is_an_error_and_writes_nothing(app, monkeypatch):
    sm = app.appbuilder.sm
    before = db.session.scalar(select(func.count()).select_from(assoc_permissionview_role))
    monkeypatch.setitem(ROLE_SPEC, "Auditor", [("can_list", "AuditLogModelVeiw")])

    with pytest.raises(RuntimeError, match="AuditLogModelVeiw"):
        bootstrap.sync_roles(app)

    assert sm.find_role("Auditor") is None
    assert db.session.scalar(select(func.count()).select_from(assoc_permissionview_role)) == before
