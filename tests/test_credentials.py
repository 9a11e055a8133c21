"""Sessions and API tokens end when they should: sign-out ends that session (a replayed copy of
its cookie no longer works), a password change or a deactivation ends every session and token."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models.chat import AgentProfile
from app.models.security import AuditLog, UserSession
from tests.conftest import PASSWORD
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue  # noqa: F401

NEW_PASSWORD = "quiet harbour lantern 58"


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


def _path(response) -> str:
    return urlsplit(response.location).path


def _copy(app, client):
    """Another browser holding a copy of *client*'s session cookie (what an attacker replays)."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def _signed_out(client) -> bool:
    home = client.get("/clientmodelview/list/")
    return home.status_code == 302 and _path(home) == "/login/"


def _tokens(app, username: str, password: str = PASSWORD) -> tuple[dict, dict]:
    response = app.test_client().post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db", "refresh": True})
    assert response.status_code == 200, response.json
    return ({"Authorization": f"Bearer {response.json['access_token']}"},
            {"Authorization": f"Bearer {response.json['refresh_token']}"})


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- sign-out -------------------------------------------------------------------------------


def test_a_replayed_cookie_no_longer_works_after_sign_out(app, login_as):
    c, laptop = login_as("manager"), login_as("manager")
    replay = _copy(app, c)
    assert replay.get("/clientmodelview/list/").status_code == 200  # the copy works while signed in
    assert c.get("/logout/").status_code == 302

    assert _signed_out(replay)
    assert replay.get("/api/v1/client/").status_code == 401
    assert _signed_out(c)
    assert laptop.get("/clientmodelview/list/").status_code == 200  # sign-out ends that session only


def test_an_agents_socket_with_a_signed_out_cookie_is_refused(app, login_as, user_id):
    db.session.add(AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=2))
    db.session.commit()
    c = login_as("agent")
    replay = _copy(app, c)
    assert FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=_copy(app, c)).is_connected("/agent")
    c.get("/logout/")
    assert not FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=replay).is_connected("/agent")


# --- password changes -----------------------------------------------------------------------


def test_api_tokens_end_when_the_user_changes_their_password(app, login_as):
    access, refresh = _tokens(app, "manager")
    client = app.test_client()
    assert client.get("/api/v1/client/", headers=access).status_code == 200
    assert client.post("/api/v1/security/refresh", headers=refresh).status_code == 200

    c = login_as("manager")
    response = c.post("/resetmypassword/form", data={
        "current_password": PASSWORD, "password": NEW_PASSWORD, "conf_password": NEW_PASSWORD})
    assert response.status_code == 302

    assert client.get("/api/v1/client/", headers=access).status_code == 401
    assert client.post("/api/v1/security/refresh", headers=refresh).status_code == 401
    fresh_access, _ = _tokens(app, "manager", NEW_PASSWORD)
    assert client.get("/api/v1/client/", headers=fresh_access).status_code == 200


def test_own_password_change_ends_other_sessions_and_keeps_this_one(app, login_as):
    c, elsewhere = login_as("manager"), login_as("manager")
    replay = _copy(app, c)
    response = c.post("/resetmypassword/form", data={
        "current_password": PASSWORD, "password": NEW_PASSWORD, "conf_password": NEW_PASSWORD})
    assert response.status_code == 302
    assert c.get("/clientmodelview/list/").status_code == 200
    assert _signed_out(elsewhere)
    assert _signed_out(replay)  # the cookie from before the change is dead even here


def test_an_admin_reset_ends_the_users_sessions_and_tokens(app, login_as, user_id):
    access, refresh = _tokens(app, "accountant")
    victim = login_as("accountant")
    admin = login_as("admin")
    response = admin.post(f"/resetpassword/form?pk={user_id('accountant')}",
                          data={"password": NEW_PASSWORD, "conf_password": NEW_PASSWORD})
    assert response.status_code == 302

    assert _signed_out(victim)
    client = app.test_client()
    assert client.get("/api/v1/client/", headers=access).status_code == 401
    assert client.post("/api/v1/security/refresh", headers=refresh).status_code == 401
    assert admin.get("/users/list/").status_code == 200  # the Admin's own session is untouched
    rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "password_changed")).all()
    assert [(r.username, r.object_id, r.summary) for r in rows] == [
        ("admin", str(user_id("accountant")), "accountant")]


# --- deactivation ---------------------------------------------------------------------------


def test_deactivation_ends_sessions_and_tokens_and_reactivation_does_not_revive_them(app, login_as, user_id):
    access, refresh = _tokens(app, "reviewer")
    c = login_as("reviewer")
    user = db.session.get(User, user_id("reviewer"))
    user.active = False
    db.session.commit()

    assert _signed_out(c)
    client = app.test_client()
    assert client.get("/api/v1/client/", headers=access).status_code == 401
    assert _count(UserSession, UserSession.user_id == user_id("reviewer")) == 0

    user = db.session.get(User, user_id("reviewer"))
    user.active = True
    db.session.commit()
    assert _signed_out(c)
    assert client.get("/api/v1/client/", headers=access).status_code == 401
    assert client.post("/api/v1/security/refresh", headers=refresh).status_code == 401


def test_deactivation_from_the_users_screen_ends_the_session_for_good(app, login_as, user_id):
    c = login_as("reviewer")
    admin = login_as("admin")
    uid = user_id("reviewer")
    with app.app_context():
        role_id = app.appbuilder.sm.find_role("Reviewer").id
    response = admin.post(f"/users/edit/{uid}", data={
        "first_name": "reviewer", "last_name": "-", "username": "reviewer",
        "email": "reviewer@example.invalid", "roles": [str(role_id)]})  # "active" unticked
    assert response.status_code == 302
    assert db.session.get(User, uid).active is False
    assert _signed_out(c)
    admin.post(f"/users/edit/{uid}", data={
        "first_name": "reviewer", "last_name": "-", "username": "reviewer", "active": "y",
        "email": "reviewer@example.invalid", "roles": [str(role_id)]})
    db.session.expire_all()
    assert db.session.get(User, uid).active is True
    assert _signed_out(c)  # reactivated, the user signs in again; the old session stays ended


def test_a_token_from_before_these_rules_is_refused(app, user_id):
    from flask_jwt_extended import create_access_token

    with app.test_request_context():
        # A token without the credential version claim (issued by an older version of the desk).
        token = create_access_token(identity=str(user_id("manager")), additional_claims={"cv": None})
    assert app.test_client().get("/api/v1/client/", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize("ending", ["sign-out", "deactivation"])
def test_an_open_agent_console_is_cut_off_when_its_session_ends(app, login_as, user_id, monkeypatch, ending):
    from app.sockets import agent as agent_namespace

    monkeypatch.setattr(agent_namespace, "SESSION_RECHECK_SECONDS", 0)  # check at every event
    db.session.add(AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=2))
    db.session.commit()
    c = login_as("agent")
    console = FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=c)
    assert console.is_connected("/agent")
    assert "error" not in (console.emit("ping", {}, namespace="/agent", callback=True) or {})

    if ending == "sign-out":
        c.get("/logout/")
    else:
        db.session.get(User, user_id("agent")).active = False
        db.session.commit()
    ack = console.emit("ping", {}, namespace="/agent", callback=True)
    assert "session has ended" in ack["error"]
    assert not console.is_connected("/agent")
