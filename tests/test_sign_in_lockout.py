"""Sign-in throttling: failures lock the account (from any address), the answer of a locked account
does not tell whether the password was right, an Admin lifts the lock; the per-address limit
counts failures only."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models.base import utcnow
from app.models.security import AuditLog, UserCredential
from tests.conftest import PASSWORD, ROLE_USERS

LOCKED = "This account is locked after too many failed sign-ins"
INVALID = "Invalid login. Please try again."


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


def _client(application, ip: str):
    c = application.test_client()
    c.environ_base["REMOTE_ADDR"] = ip
    return c


def _sign_in(application, username: str, password: str, ip: str = "10.30.0.1"):
    """Sign in through the form; returns (client, the page the browser lands on)."""
    c = _client(application, ip)
    response = c.post("/login/", data={"username": username, "password": password}, follow_redirects=True)
    return c, response.get_data(as_text=True)


def _signed_in(c) -> bool:
    return c.get("/").status_code == 200


def _actions(*names: str) -> list[tuple[str, str | None]]:
    db.session.expire_all()
    rows = db.session.execute(select(AuditLog.action, AuditLog.ip).where(AuditLog.action.in_(names))
                              .order_by(AuditLog.id)).all()
    return [tuple(r) for r in rows]


def _guess_wrong(app, username: str, times: int, first_ip: int = 1) -> None:
    for k in range(times):
        c, page = _sign_in(app, username, f"wrong-guess-{k}", ip=f"10.30.{first_ip + k}.9")
        assert not _signed_in(c)


def test_five_wrong_guesses_from_several_addresses_lock_the_account(app, user_id):
    _guess_wrong(app, "accountant", 4)
    c, page = _sign_in(app, "accountant", "wrong-guess-final", ip="10.30.40.9")
    assert LOCKED in page

    right, right_page = _sign_in(app, "accountant", PASSWORD, ip="10.30.41.9")
    wrong, wrong_page = _sign_in(app, "accountant", "still-wrong-guess", ip="10.30.42.9")
    assert not _signed_in(right)
    assert LOCKED in right_page and LOCKED in wrong_page and INVALID not in right_page

    assert _actions("login_failure", "account_locked", "login_success") == (
        [("login_failure", f"10.30.{k}.9") for k in range(1, 5)]
        + [("login_failure", "10.30.40.9"), ("account_locked", "10.30.40.9"),
           ("login_failure", "10.30.41.9"), ("login_failure", "10.30.42.9")])
    other, _ = _sign_in(app, "manager", PASSWORD)  # other accounts are not affected
    assert _signed_in(other)


def test_the_api_refuses_a_locked_account_with_the_same_answer_for_any_password(app):
    _guess_wrong(app, "reviewer", 5)
    body = {"username": "reviewer", "provider": "db"}
    right = app.test_client().post("/api/v1/security/login", json={**body, "password": PASSWORD})
    wrong = app.test_client().post("/api/v1/security/login", json={**body, "password": "not-it-at-all"})
    assert right.status_code == wrong.status_code == 401
    assert right.json == wrong.json and LOCKED in right.json["message"]
    assert "access_token" not in right.json


def test_a_success_starts_the_count_again(app):
    _guess_wrong(app, "accountant", 4)
    c, _ = _sign_in(app, "accountant", PASSWORD)
    assert _signed_in(c)
    _guess_wrong(app, "accountant", 4, first_ip=20)
    c, _ = _sign_in(app, "accountant", PASSWORD)
    assert _signed_in(c)
    assert _actions("account_locked") == []


def test_failures_older_than_the_window_do_not_count(app, user_id):
    _guess_wrong(app, "accountant", 4)
    db.session.execute(update(UserCredential).where(UserCredential.user_id == user_id("accountant"))
                       .values(failed_since=utcnow() - timedelta(minutes=16)))
    db.session.commit()
    _guess_wrong(app, "accountant", 1, first_ip=30)
    c, _ = _sign_in(app, "accountant", PASSWORD)
    assert _signed_in(c)


def test_the_lock_ends_by_itself_after_the_configured_time(app, user_id):
    _guess_wrong(app, "accountant", 5)
    assert not _signed_in(_sign_in(app, "accountant", PASSWORD)[0])
    db.session.execute(update(UserCredential).where(UserCredential.user_id == user_id("accountant"))
                       .values(locked_at=utcnow() - timedelta(minutes=16)))
    db.session.commit()
    assert _signed_in(_sign_in(app, "accountant", PASSWORD)[0])


def test_with_no_lock_time_only_an_admin_lifts_it(app, login_as, user_id):
    app.config["AUTH_LOCKOUT_MINUTES"] = 0
    _guess_wrong(app, "accountant", 5)
    db.session.execute(update(UserCredential).where(UserCredential.user_id == user_id("accountant"))
                       .values(locked_at=utcnow() - timedelta(days=30)))
    db.session.commit()
    c, page = _sign_in(app, "accountant", PASSWORD)
    assert LOCKED in page and not _signed_in(c)

    admin = login_as("admin")
    uid = user_id("accountant")
    shown = admin.get(f"/users/show/{uid}").get_data(as_text=True)
    assert "Locked after 5 failed sign-ins" in shown and f"/account-lock/lift/{uid}" in shown
    response = admin.post(f"/account-lock/lift/{uid}", headers={"Referer": f"/users/show/{uid}"})
    assert response.status_code == 302
    assert "The account is unlocked" in admin.get(response.location).get_data(as_text=True)
    assert _signed_in(_sign_in(app, "accountant", PASSWORD)[0])
    rows = db.session.execute(select(AuditLog.username, AuditLog.object_id, AuditLog.summary)
                              .where(AuditLog.action == "account_unlocked")).all()
    assert [tuple(r) for r in rows] == [("admin", str(uid), "accountant")]


def test_an_admin_lifts_a_lock_through_the_api(app, api_token, user_id):
    _guess_wrong(app, "reviewer", 5)
    uid = user_id("reviewer")
    headers = api_token("admin")
    client = app.test_client()
    state = client.get(f"/api/v1/account_lock/{uid}", headers=headers)
    assert state.status_code == 200 and state.json["locked"] is True and state.json["failed_count"] == 5
    assert client.delete(f"/api/v1/account_lock/{uid}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/account_lock/{uid}", headers=headers).json["locked"] is False
    again = client.delete(f"/api/v1/account_lock/{uid}", headers=headers)
    assert again.status_code == 409 and "not locked" in again.json["message"]
    assert client.delete("/api/v1/account_lock/999999", headers=headers).status_code == 404
    rows = db.session.execute(select(AuditLog.username, AuditLog.object_id)
                              .where(AuditLog.action == "account_unlocked"))
    assert [tuple(r) for r in rows] == [("admin", str(uid))]
    assert _signed_in(_sign_in(app, "reviewer", PASSWORD)[0])


def test_only_an_admin_may_lift_a_lock(app, login_as, api_token, user_id):
    _guess_wrong(app, "reviewer", 5)
    uid = user_id("reviewer")
    manager = login_as("manager")
    assert manager.post(f"/account-lock/lift/{uid}").status_code in (302, 403)
    assert app.test_client().delete(f"/api/v1/account_lock/{uid}", headers=api_token("manager")).status_code == 403
    assert _actions("account_unlocked") == []
    assert not _signed_in(_sign_in(app, "reviewer", PASSWORD)[0])


def test_the_lock_is_counted_in_the_database_for_every_process(app, second_app, user_id):
    other_process = second_app()
    _guess_wrong(app, "accountant", 3)
    _guess_wrong(other_process, "accountant", 2, first_ip=10)
    c, page = _sign_in(app, "accountant", PASSWORD)
    assert LOCKED in page and not _signed_in(c)
    row = db.session.get(UserCredential, user_id("accountant"))
    db.session.refresh(row)
    assert row.failed_count == 5 and row.locked_at is not None
    assert json.loads(db.session.scalar(select(AuditLog.changes).where(AuditLog.action == "account_locked"))) == {
        "failed_count": 5}


# --- the per-address limit counts failures only ----------------------------------------------------


@pytest.fixture
def limited_app(second_app):
    application = second_app(AUTH_RATE_LIMITED=True, RATELIMIT_ENABLED=True, AUTH_RATE_LIMIT="3 per minute")
    limiter = application.appbuilder.sm.limiter
    limiter.reset()  # the storage may be a Redis shared with earlier runs
    yield application
    limiter.reset()


def test_an_office_behind_one_address_signing_in_is_not_limited(limited_app):
    for _ in range(3):
        for username in ROLE_USERS:  # six users, one address, more sign-ins than the limit allows
            c = _client(limited_app, "10.40.0.1")
            response = c.post("/login/", data={"username": username, "password": PASSWORD})
            assert response.status_code == 302 and urlsplit(response.location).path == "/"
            api = _client(limited_app, "10.40.0.1").post("/api/v1/security/login", json={
                "username": username, "password": PASSWORD, "provider": "db"})
            assert api.status_code == 200


def test_failures_from_one_address_are_limited(limited_app, session):
    c = _client(limited_app, "10.40.1.1")
    for username in ("manager", "reviewer", "agent"):  # spraying several accounts
        assert c.post("/login/", data={"username": username, "password": "wrong-password"}).status_code == 302
    assert c.post("/login/", data={"username": "admin", "password": PASSWORD}).status_code == 429
    assert c.post("/api/v1/security/login", json={"username": "admin", "password": PASSWORD,
                                                  "provider": "db"}).status_code == 200  # its own allowance
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "login_failure")) == 3


# --- the second factor ---------------------------------------------------------------------------


def _wrong_code(secret: str) -> str:
    import time

    import pyotp

    near = {pyotp.TOTP(secret).at(time.time() + k * 30) for k in (-2, -1, 0, 1, 2)}
    return next(code for code in ("000000", "111111", "222222", "333333", "444444", "555555", "666666")
                if code not in near)


def test_wrong_one_time_codes_lock_the_account_and_the_password_alone_does_not_clear_them(app, session, user_id):
    import pyotp

    from app.services import mfa

    uid = user_id("accountant")
    secret = mfa.start_enrolment(session, uid)
    assert mfa.confirm_enrolment(session, uid, pyotp.TOTP(secret).now())
    for k in range(5):  # the password is right every time: only the code is guessed
        c = _client(app, f"10.50.{k}.1")
        assert c.post("/login/", data={"username": "accountant", "password": PASSWORD}).location == "/mfa/verify"
        response = c.post("/mfa/verify", data={"code": _wrong_code(secret)}, follow_redirects=True)
        assert (LOCKED in response.get_data(as_text=True)) == (k == 4)
    assert _actions("account_locked") == [("account_locked", "10.50.4.1")]

    c, page = _sign_in(app, "accountant", PASSWORD, ip="10.50.9.1")
    assert LOCKED in page and not _signed_in(c)
    api = app.test_client().post("/api/v1/security/login", json={
        "username": "accountant", "password": PASSWORD, "provider": "db", "otp": pyotp.TOTP(secret).now()})
    assert api.status_code == 401 and LOCKED in api.json["message"]


def test_wrong_codes_sent_to_the_api_count_too(app, session, user_id):
    import pyotp

    from app.services import mfa

    uid = user_id("reviewer")
    secret = mfa.start_enrolment(session, uid)
    assert mfa.confirm_enrolment(session, uid, pyotp.TOTP(secret).now())
    body = {"username": "reviewer", "password": PASSWORD, "provider": "db", "otp": _wrong_code(secret)}
    answers = [app.test_client().post("/api/v1/security/login", json=body) for _ in range(5)]
    assert [a.status_code for a in answers] == [401] * 5
    assert LOCKED not in answers[3].json["message"] and LOCKED in answers[4].json["message"]
    assert _actions("account_locked") == [("account_locked", "127.0.0.1")]


# --- names that are not accounts --------------------------------------------------------------


@pytest.fixture
def name_counter(app):
    from app.services import signin

    def forget() -> None:  # the storage may be a Redis shared with earlier runs
        with app.app_context():
            for name in ("no-such-person", "reviewer"):
                signin.forget_name(app.appbuilder.sm.name_counter, name, signin.Policy.from_config(app.config))

    forget()
    yield
    forget()


@pytest.mark.parametrize("username", ["no-such-person", "reviewer"])
def test_the_lock_message_does_not_tell_which_names_are_accounts(app, name_counter, user_id, username):
    from flask_appbuilder.security.sqla.models import User

    db.session.get(User, user_id("reviewer")).active = False  # an inactive account never signs in either
    db.session.commit()
    pages = [_sign_in(app, "accountant", f"wrong-{k}", ip=f"10.60.{k}.1")[1] for k in range(6)]
    others = [_sign_in(app, username, f"wrong-{k}", ip=f"10.61.{k}.1")[1] for k in range(6)]
    assert [LOCKED in p for p in pages] == [LOCKED in p for p in others] == [False] * 4 + [True] * 2
    assert [INVALID in p for p in pages] == [INVALID in p for p in others] == [True] * 4 + [False] * 2
