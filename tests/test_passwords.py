"""Passwords: the policy (length, common passwords, the user name, repetition), changing one's own
password needs the current one, every change is audited, and expired passwords must be changed."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash

from app.extensions import db
from app.models.base import utcnow
from app.models.security import AuditLog, UserCredential
from app.services import passwords
from app.services.errors import ValidationFailed
from tests.conftest import PASSWORD

PASSPHRASE = "quiet harbour lantern 58"
TOO_SHORT = "Use at least 10 characters."
COMMON = "This is one of the most common passwords"
USER_NAME = "The password must not contain the user name."
REPETITIVE = "The password is too repetitive or predictable"


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


def _path(response) -> str:
    return urlsplit(response.location).path


def _stored_hash(app, username: str) -> str:
    db.session.expire_all()
    return app.appbuilder.sm.find_user(username=username).password


def _password_rows() -> list[tuple]:
    db.session.expire_all()
    return [tuple(r) for r in db.session.execute(
        select(AuditLog.username, AuditLog.object_id, AuditLog.summary, AuditLog.changes)
        .where(AuditLog.action == "password_changed").order_by(AuditLog.id))]


# --- the policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("password", "message"), [
    ("short", TOO_SHORT),
    ("Abc-12345", TOO_SHORT),
    ("aaaaaaaaaaAA11!", REPETITIVE),
    ("1234567890abcdef", REPETITIVE),
    ("Ab1!Ab1!Ab1!Ab1!", REPETITIVE),
    ("password123", COMMON),
    ("QWERTYUIOP", COMMON),
    ("1qaz2wsx3edc", COMMON),
    ("accountant-2026!x", USER_NAME),
])
def test_the_policy_refuses(password, message):
    assert any(message in e for e in passwords.policy_errors(password, "accountant", "acc@example.invalid"))


@pytest.mark.parametrize("password", [PASSPHRASE, "correct horse battery staple", PASSWORD, "记账报税按时完成2026年"])
def test_the_policy_accepts_long_passphrases(password):
    assert passwords.policy_errors(password, "accountant", "acc@example.invalid") == []


# --- changing one's own password -------------------------------------------------------------------


def _change(c, current: str, new: str, confirm: str | None = None):
    return c.post("/resetmypassword/form", data={"current_password": current, "password": new,
                                                 "conf_password": new if confirm is None else confirm})


def test_the_form_asks_for_the_current_password(app, login_as):
    page = login_as("manager").get("/resetmypassword/form").get_data(as_text=True)
    assert 'name="current_password"' in page


def test_own_change_needs_the_current_password(app, login_as):
    c = login_as("manager")
    before = _stored_hash(app, "manager")
    response = _change(c, "not-my-password", PASSPHRASE)
    assert response.status_code == 200
    assert "The current password is not correct." in response.get_data(as_text=True)
    assert _stored_hash(app, "manager") == before
    assert _password_rows() == []
    missing = c.post("/resetmypassword/form", data={"password": PASSPHRASE, "conf_password": PASSPHRASE})
    assert missing.status_code == 200 and _stored_hash(app, "manager") == before


@pytest.mark.parametrize(("new", "message"), [("aaaaaaaaaaAA11!", REPETITIVE), ("password1234", COMMON),
                                              ("Manager-is-me-9", USER_NAME)])
def test_own_change_refuses_a_weak_password(app, login_as, new, message):
    c = login_as("manager")
    before = _stored_hash(app, "manager")
    response = _change(c, PASSWORD, new)
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    assert _stored_hash(app, "manager") == before
    assert _password_rows() == []


def test_own_change_with_a_passphrase_is_stored_and_audited(app, login_as, user_id):
    c = login_as("manager")
    response = _change(c, PASSWORD, PASSPHRASE)
    assert response.status_code == 302
    assert "Your password was changed" in c.get(response.location, follow_redirects=True).get_data(as_text=True)
    assert check_password_hash(_stored_hash(app, "manager"), PASSPHRASE)
    assert _password_rows() == [("manager", str(user_id("manager")), "manager", '{"by": "self"}')]
    fresh = app.test_client()
    assert fresh.post("/login/", data={"username": "manager", "password": PASSPHRASE}).location == "/"


# --- an Admin's reset ---------------------------------------------------------------------------------


def test_admin_reset_follows_the_policy_and_is_audited(app, login_as, user_id):
    admin = login_as("admin")
    uid = user_id("accountant")
    before = _stored_hash(app, "accountant")
    weak = admin.post(f"/resetpassword/form?pk={uid}", data={"password": "aaaaaaaaaaAA11!",
                                                            "conf_password": "aaaaaaaaaaAA11!"})
    assert weak.status_code == 200 and REPETITIVE in weak.get_data(as_text=True)
    assert _stored_hash(app, "accountant") == before and _password_rows() == []

    ok = admin.post(f"/resetpassword/form?pk={uid}", data={"password": PASSPHRASE, "conf_password": PASSPHRASE})
    assert ok.status_code == 302
    assert check_password_hash(_stored_hash(app, "accountant"), PASSPHRASE)
    assert _password_rows() == [("admin", str(uid), "accountant", '{"by": "other"}')]


def test_only_an_admin_may_reset_another_users_password(app, login_as, user_id):
    manager = login_as("manager")
    before = _stored_hash(app, "accountant")
    response = manager.post(f"/resetpassword/form?pk={user_id('accountant')}",
                            data={"password": PASSPHRASE, "conf_password": PASSPHRASE})
    assert response.status_code == 403
    assert _stored_hash(app, "accountant") == before


def test_users_screen_refuses_a_common_password_for_a_new_user(app, login_as):
    admin = login_as("admin")
    with app.app_context():
        role_id = app.appbuilder.sm.find_role("Accountant").id
    form = {"first_name": "新", "last_name": "会计", "username": "newbie", "active": "y",
            "email": "newbie@example.invalid", "roles": [str(role_id)]}
    refused = admin.post("/users/add", data={**form, "password": "newbie-2026-ok", "conf_password": "newbie-2026-ok"})
    assert refused.status_code == 200 and USER_NAME in refused.get_data(as_text=True)
    accepted = admin.post("/users/add", data={**form, "password": PASSPHRASE, "conf_password": PASSPHRASE})
    assert accepted.status_code == 302
    assert app.appbuilder.sm.find_user(username="newbie") is not None


def test_create_user_refuses_a_common_password(app):
    from app.services.users import create_user

    with pytest.raises(ValidationFailed) as failure:
        create_user(app, "newbie", "password123", ["Accountant"])
    assert COMMON in str(failure.value.errors["password"])


# --- expiry ---------------------------------------------------------------------------------------------


def _age_password(user_id: int, days: int) -> None:
    db.session.execute(update(UserCredential).where(UserCredential.user_id == user_id)
                       .values(password_changed_at=utcnow() - timedelta(days=days)))
    db.session.commit()


def test_an_expired_password_must_be_changed_before_anything_else(app, user_id):
    app.config["PASSWORD_MAX_AGE_DAYS"] = 90
    _age_password(user_id("manager"), 91)
    c = app.test_client()
    signed_in = c.post("/login/", data={"username": "manager", "password": PASSWORD})
    assert signed_in.status_code == 302
    landing = c.get(signed_in.location)
    assert landing.status_code == 302 and _path(landing) == "/resetmypassword/form"
    for path in ("/clientmodelview/list/", "/users/userinfo/", "/mfa-admin/reset/1"):
        assert _path(c.get(path)) == "/resetmypassword/form"
    blocked = c.get("/api/v1/client/")
    assert blocked.status_code == 403 and "expired" in blocked.json["message"]
    token = app.test_client().post("/api/v1/security/login", json={
        "username": "manager", "password": PASSWORD, "provider": "db"})
    assert token.status_code == 403 and "access_token" not in token.json and "expired" in token.json["message"]
    page = c.get("/resetmypassword/form")
    assert page.status_code == 200 and "Your password has expired" in page.get_data(as_text=True)

    assert _change(c, PASSWORD, PASSPHRASE).status_code == 302
    assert c.get("/clientmodelview/list/").status_code == 200
    again = app.test_client()
    assert again.post("/login/", data={"username": "manager", "password": PASSPHRASE}).location == "/"
    assert again.get("/").status_code == 200


def test_a_password_younger_than_the_limit_or_expiry_off_is_not_held(app, user_id):
    _age_password(user_id("manager"), 400)
    c = app.test_client()  # expiry is off by default
    c.post("/login/", data={"username": "manager", "password": PASSWORD})
    assert c.get("/clientmodelview/list/").status_code == 200
    app.config["PASSWORD_MAX_AGE_DAYS"] = 90
    _age_password(user_id("manager"), 89)
    c = app.test_client()
    c.post("/login/", data={"username": "manager", "password": PASSWORD})
    assert c.get("/clientmodelview/list/").status_code == 200


def test_a_new_user_password_age_starts_at_creation(app, session):
    from app.services.users import create_user

    user = create_user(app, "newbie", PASSPHRASE, ["Accountant"])
    session.commit()
    changed = session.scalar(select(UserCredential.password_changed_at).where(UserCredential.user_id == user.id))
    assert changed is not None and abs((utcnow() - changed).total_seconds()) < 120
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "password_changed")) == 0
