"""Audit trail: logins, client changes made through the screens, and the read-only audit screen."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text

from app.models.crm import Client, TaxpayerType
from app.models.security import AuditLog
from app.services.audit import SECRET_MARK, Actor, acting_as
from tests.conftest import PASSWORD
from tests.factories import credit_code, id_number, make_client


def _rows(session, after_id: int = 0) -> list[AuditLog]:
    session.expire_all()
    return list(session.scalars(select(AuditLog).where(AuditLog.id > after_id).order_by(AuditLog.id)))


def _describe(rows: list[AuditLog]) -> list[tuple]:
    return [(r.action, r.object_type, r.object_id, r.username, r.changes) for r in rows]


def _last_id(session) -> int:
    return session.scalar(select(func.coalesce(func.max(AuditLog.id), 0)))


def _all_audit_text(session) -> str:
    rows = session.execute(text("SELECT username, summary, changes FROM audit_log")).all()
    return "\n".join(str(value) for row in rows for value in row)


# --- logins -----------------------------------------------------------------------------------


def test_successful_login_and_logout_are_recorded_with_user_and_address(app, session, user_id):
    start = _last_id(session)
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert c.post("/login/", data={"username": "manager", "password": PASSWORD}).status_code == 302
    [row] = _rows(session, start)
    assert (row.action, row.username, row.user_id, row.ip) == ("login_success", "manager", user_id("manager"),
                                                               "10.1.2.3")
    assert row.created_at is not None

    c.get("/logout/")
    [logout] = _rows(session, row.id)
    assert (logout.action, logout.username, logout.user_id, logout.ip) == ("logout", "manager",
                                                                           user_id("manager"), "10.1.2.3")


def test_login_with_an_unknown_user_is_recorded(app, session):
    start = _last_id(session)
    response = app.test_client().post("/login/", data={"username": "intruder", "password": "Whatever-123ab"})
    assert response.status_code == 302 and response.location.startswith("/login/")
    [row] = _rows(session, start)
    assert (row.action, row.username, row.user_id, row.ip) == ("login_failure", "intruder", None, "127.0.0.1")


def test_login_with_a_wrong_password_is_recorded_against_the_user(app, session, user_id):
    start = _last_id(session)
    c = app.test_client()
    assert c.post("/login/", data={"username": "accountant", "password": "Wrong-Pass-2026xy"},
                  environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 302
    [row] = _rows(session, start)
    assert (row.action, row.username, row.user_id, row.ip) == ("login_failure", "accountant",
                                                               user_id("accountant"), "10.9.8.7")
    assert "Wrong-Pass-2026xy" not in _all_audit_text(session)
    assert c.get("/").status_code == 302  # not signed in


def test_api_logins_are_recorded_too(app, session, user_id):
    start = _last_id(session)
    c = app.test_client()
    assert c.post("/api/v1/security/login", json={"username": "reviewer", "password": "nope",
                                                  "provider": "db"}).status_code == 401
    assert c.post("/api/v1/security/login", json={"username": "reviewer", "password": PASSWORD,
                                                  "provider": "db"}).status_code == 200
    assert [(r.action, r.username, r.user_id) for r in _rows(session, start)] == [
        ("login_failure", "reviewer", user_id("reviewer")), ("login_success", "reviewer", user_id("reviewer"))]


# --- client changes through the screens -------------------------------------------------------


def test_client_create_update_delete_through_screens_are_recorded(app, login_as, session, user_id):
    manager = login_as("manager")
    secret_before, secret_after = id_number(21), id_number(22)
    code = credit_code()
    start = _last_id(session)
    response = manager.post("/clientmodelview/add", data={
        "name": "审计客户有限公司", "credit_code": code, "taxpayer_type": "small_scale", "status": "active",
        "legal_rep_name": "钱七", "legal_rep_id_number": secret_before, "office_address": "上海市浦东新区"})
    assert response.status_code == 302
    client_id = session.scalar(select(Client.id).where(Client.credit_code == code))
    [created] = _rows(session, start)
    assert (created.action, created.object_type, created.object_id) == ("create", "client", str(client_id))
    assert (created.user_id, created.username, created.ip) == (user_id("manager"), "manager", "127.0.0.1")
    changes = json.loads(created.changes)
    assert changes["name"] == [None, "审计客户有限公司"]
    assert changes["credit_code"] == [None, code]
    assert changes["taxpayer_type"] == [None, "small_scale"]
    assert changes["status"] == [None, "active"]
    assert changes["office_address"] == [None, "上海市浦东新区"]
    assert changes["legal_rep_id_number"] == [None, SECRET_MARK]
    assert "created_at" not in changes and "updated_at" not in changes

    response = manager.post(f"/clientmodelview/edit/{client_id}", data={
        "name": "审计客户（更名）有限公司", "credit_code": code, "taxpayer_type": "general", "status": "active",
        "legal_rep_name": "钱七", "legal_rep_id_number": secret_after, "office_address": "上海市浦东新区",
        "notes": "改为一般纳税人"})
    assert response.status_code == 302
    [updated] = _rows(session, created.id)
    assert (updated.action, updated.object_type, updated.object_id, updated.username) == (
        "update", "client", str(client_id), "manager")
    assert json.loads(updated.changes) == {
        "name": ["审计客户有限公司", "审计客户（更名）有限公司"],
        "taxpayer_type": ["small_scale", "general"],
        "notes": [None, "改为一般纳税人"],
        "legal_rep_id_number": [SECRET_MARK, SECRET_MARK],
    }

    response = manager.post(f"/clientmodelview/delete/{client_id}")
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Client, client_id) is None
    [deleted] = _rows(session, updated.id)
    assert (deleted.action, deleted.object_type, deleted.object_id, deleted.username) == (
        "delete", "client", str(client_id), "manager")
    gone = json.loads(deleted.changes)
    assert gone["name"] == ["审计客户（更名）有限公司", None]
    assert gone["legal_rep_id_number"] == [SECRET_MARK, None]

    everything = _all_audit_text(session)
    assert secret_before not in everything and secret_after not in everything


def test_an_edit_that_changes_nothing_writes_no_audit_row(login_as, session):
    client = make_client(name="不变客户", legal_rep_id_number=id_number(23))
    manager = login_as("manager")
    start = _last_id(session)
    response = manager.post(f"/clientmodelview/edit/{client.id}", data={
        "name": client.name, "credit_code": client.credit_code, "taxpayer_type": "small_scale",
        "status": "active", "legal_rep_name": client.legal_rep_name, "legal_rep_id_number": ""})
    assert response.status_code == 302
    assert _describe(_rows(session, start)) == []


def test_a_refused_form_writes_no_audit_row(login_as, session):
    manager = login_as("manager")
    start = _last_id(session)
    response = manager.post("/clientmodelview/add", data={
        "name": "坏代码公司", "credit_code": "91350100M000100Y44", "taxpayer_type": "small_scale",
        "status": "active"})
    assert response.status_code == 200
    assert _describe(_rows(session, start)) == []


def test_a_change_flushed_in_steps_is_one_row_per_transaction(session):
    start = _last_id(session)
    with acting_as(Actor(42, "cli-user", None)):
        client = Client(name="分步客户", credit_code=credit_code(), taxpayer_type=TaxpayerType.small_scale)
        session.add(client)
        session.flush()
        client.notes = "第一步"
        session.flush()
        session.commit()
        [created] = _rows(session, start)
        assert (created.action, created.username, created.user_id) == ("create", "cli-user", 42)
        assert json.loads(created.changes)["notes"] == [None, "第一步"]

        assert client.name == "分步客户"  # reloads the row the commit expired
        client.name = "分步客户二"
        session.flush()
        client.notes = "第二步"
        client.legal_rep_id_number = id_number(25)
        session.flush()
        client.name = "分步客户"  # back to where the transaction started
        session.flush()
        session.commit()
        [updated] = _rows(session, created.id)
        assert updated.action == "update" and updated.object_id == str(client.id)
        assert json.loads(updated.changes) == {"notes": ["第一步", "第二步"],
                                               "legal_rep_id_number": [None, SECRET_MARK]}

        client.notes = "回滚"
        session.flush()
        session.rollback()
        assert client.notes == "第二步"
        client.notes = "第三步"
        session.commit()
        [last] = _rows(session, updated.id)
        assert json.loads(last.changes) == {"notes": ["第二步", "第三步"]}


def test_a_change_right_after_a_commit_still_records_the_old_value(session):
    client = make_client(name="旧名称有限公司", notes="旧备注")  # committed: every attribute is expired
    start = _last_id(session)
    with acting_as(Actor(7, "service", None)):
        client.name = "新名称有限公司"  # set without reading it first
        client.notes = None
        session.commit()
    [row] = _rows(session, start)
    assert json.loads(row.changes) == {"name": ["旧名称有限公司", "新名称有限公司"], "notes": ["旧备注", None]}


def test_audit_screen_shows_old_and_new_values_but_never_the_id_number(login_as, session):
    secret = id_number(24)
    manager = login_as("manager")
    manager.post("/clientmodelview/add", data={
        "name": "屏幕审计公司", "credit_code": credit_code(), "taxpayer_type": "small_scale", "status": "active",
        "legal_rep_id_number": secret})
    client = session.scalar(select(Client).where(Client.name == "屏幕审计公司"))
    manager.post(f"/clientmodelview/edit/{client.id}", data={
        "name": "屏幕审计公司二", "credit_code": client.credit_code, "taxpayer_type": "small_scale",
        "status": "active"})
    row = session.scalar(select(AuditLog).where(AuditLog.action == "update", AuditLog.object_id == str(client.id)))
    listing = manager.get("/auditlogmodelview/list/").get_data(as_text=True)
    shown = manager.get(f"/auditlogmodelview/show/{row.id}").get_data(as_text=True)
    assert "屏幕审计公司二" in listing and "修改" in listing  # the action "update" by its label
    assert "<td>屏幕审计公司</td><td>→</td><td>屏幕审计公司二</td>" in shown.replace("\n", "")
    assert "<td>name</td>" not in shown  # the field by its label on the client screen
    assert secret not in listing and secret not in shown


# --- the audit screen -------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["admin", "manager"])
def test_admin_and_manager_see_the_audit_log(login_as, session, username):
    c = login_as(username)
    response = c.get("/auditlogmodelview/list/")
    assert response.status_code == 200
    assert "登录成功" in response.get_data(as_text=True)  # login_success
    row = session.scalar(select(AuditLog).order_by(AuditLog.id.desc()).limit(1))
    assert c.get(f"/auditlogmodelview/show/{row.id}").status_code == 200


@pytest.mark.parametrize("username", ["accountant", "reviewer", "agent"])
def test_other_roles_are_refused_the_audit_log(login_as, session, username):
    c = login_as(username)
    row = session.scalar(select(AuditLog).order_by(AuditLog.id.desc()).limit(1))
    assert c.get("/auditlogmodelview/list/").status_code == 403
    assert c.get(f"/auditlogmodelview/show/{row.id}").status_code == 403
    assert "/auditlogmodelview/list/" not in c.get("/").get_data(as_text=True)  # not in the menu


@pytest.mark.parametrize("username", ["admin", "manager"])
def test_the_audit_log_cannot_be_added_edited_or_deleted(app, login_as, session, username):
    c = login_as(username)
    row = session.scalar(select(AuditLog).order_by(AuditLog.id.desc()).limit(1))
    before = (_last_id(session), session.scalar(select(func.count()).select_from(AuditLog)))
    snapshot = (row.action, row.username, row.summary, row.changes)
    assert c.get("/auditlogmodelview/add").status_code == 403
    assert c.post("/auditlogmodelview/add", data={"action": "forged", "username": "x"}).status_code == 403
    assert c.get(f"/auditlogmodelview/edit/{row.id}").status_code == 403
    assert c.post(f"/auditlogmodelview/edit/{row.id}", data={"action": "forged"}).status_code == 403
    assert c.post(f"/auditlogmodelview/delete/{row.id}").status_code == 403
    assert c.get(f"/auditlogmodelview/delete/{row.id}").status_code == 403
    session.expire_all()
    assert (_last_id(session), session.scalar(select(func.count()).select_from(AuditLog))) == before
    fresh = session.get(AuditLog, row.id)
    assert (fresh.action, fresh.username, fresh.summary, fresh.changes) == snapshot
    listing = c.get("/auditlogmodelview/list/").get_data(as_text=True)
    assert "/auditlogmodelview/add" not in listing and "/auditlogmodelview/delete/" not in listing
    assert "/auditlogmodelview/edit/" not in listing
