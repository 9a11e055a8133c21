"""Browser sessions: idle timeout, login rate limits, the password policy."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select

from app.models.security import AuditLog
from app.services import mfa
from app.services.errors import ValidationFailed
from app.services.users import create_user
from tests.conftest import PASSWORD

POLICY = {"short": "Use at least 10 characters.",
          "Password12": "This is one of the most common passwords",
          "AB12cdefgh": "The password is too repetitive or predictable",
          "aaaaaaaaaaAA11!": "The password is too repetitive or predictable",
          "weakling-2026-x": "The password must not contain the user name."}


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"  # messages below are asserted in English


def _path(response) -> str:
    return urlsplit(response.location).path


def _count(session, model, *where) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


# --- idle timeout ---------------------------------------------------------------------------


@pytest.mark.parametrize(("idle_minutes", "away_minutes"), [(30, 31), (5, 6), (30, 24 * 60)])
def test_an_idle_session_is_signed_out(app, login_as, idle_minutes, away_minutes):
    app.config["SESSION_IDLE_MINUTES"] = idle_minutes
    c = login_as("manager")
    assert c.get("/clientmodelview/list/").status_code == 200
    with c.session_transaction() as s:
        s["_seen"] = time.time() - away_minutes * 60

    response = c.get("/clientmodelview/list/?_flt_0_name=x")
    assert response.status_code == 302 and _path(response) == "/login/"
    assert parse_qs(urlsplit(response.location).query)["next"] == ["/clientmodelview/list/?_flt_0_name=x"]
    login_page = c.get(response.location)
    assert "Your session expired after inactivity" in login_page.get_data(as_text=True)
    home = c.get("/")
    assert home.status_code == 302 and _path(home) == "/login/"
    assert c.get("/clientmodelview/list/").status_code == 302


def test_an_idle_session_cookie_no_longer_opens_the_api(app, login_as, api_token):
    c = login_as("manager")
    assert c.get("/api/v1/client/").status_code == 200  # the API accepts the browser session
    with c.session_transaction() as s:
        s["_seen"] = time.time() - 31 * 60
    assert c.get("/api/v1/client/").status_code == 401
    assert c.get("/").status_code == 302
    token = api_token("manager")  # a token is not a browser session: no idle rule
    assert app.test_client().get("/api/v1/client/", headers=token).status_code == 200


@pytest.mark.parametrize(("idle_minutes", "away_minutes"), [(30, 29), (5, 4)])
def test_an_active_session_stays_and_is_renewed(app, login_as, idle_minutes, away_minutes):
    app.config["SESSION_IDLE_MINUTES"] = idle_minutes
    c = login_as("manager")
    stale = time.time() - away_minutes * 60
    with c.session_transaction() as s:
        s["_seen"] = stale
    assert c.get("/clientmodelview/list/").status_code == 200
    with c.session_transaction() as s:
        assert s["_seen"] > stale + 60  # the request counted as activity
    assert c.get("/").status_code == 200


def test_the_session_cookie_lasts_as_long_as_the_idle_limit(app, login_as):
    c = login_as("manager")
    cookie = c.get_cookie("session")
    assert cookie is not None and cookie.http_only
    assert cookie.expires is not None
    lifetime = cookie.expires.timestamp() - time.time()
    assert abs(lifetime - app.config["SESSION_IDLE_MINUTES"] * 60) < 120


# --- login rate limits ----------------------------------------------------------------------


@pytest.fixture
def limited_app(second_app):
    """A second application on the same database with login rate limiting switched on."""
    application = second_app(AUTH_RATE_LIMITED=True, RATELIMIT_ENABLED=True, AUTH_RATE_LIMIT="3 per minute")
    limiter = application.appbuilder.sm.limiter
    limiter.reset()  # the storage may be a Redis shared with earlier runs
    yield application
    limiter.reset()


def _client(application, ip: str):
    c = application.test_client()
    c.environ_base["REMOTE_ADDR"] = ip
    return c


def test_fourth_web_login_within_a_minute_is_refused(limited_app, session):
    c = _client(limited_app, "10.20.0.1")
    for _ in range(3):
        response = c.post("/login/", data={"username": "manager", "password": "wrong-password"})
        assert response.status_code == 302 and _path(response) == "/login/"
    blocked = c.post("/login/", data={"username": "manager", "password": PASSWORD})
    assert blocked.status_code == 429
    home = c.get("/")
    assert home.status_code == 302 and _path(home) == "/login/"
    assert _count(session, AuditLog, AuditLog.action == "login_failure") == 3
    assert _count(session, AuditLog, AuditLog.action == "login_success") == 0

    other = _client(limited_app, "10.20.0.2")  # another address has its own allowance
    response = other.post("/login/", data={"username": "manager", "password": PASSWORD})
    assert response.status_code == 302 and _path(response) == "/"
    assert other.get("/").status_code == 200


def test_fourth_api_login_after_three_failures_within_a_minute_is_refused(limited_app, session):
    c = _client(limited_app, "10.20.1.1")
    body = {"username": "manager", "password": PASSWORD, "provider": "db"}
    for _ in range(4):  # successful sign-ins do not count
        assert c.post("/api/v1/security/login", json=body).status_code == 200
    for _ in range(3):
        assert c.post("/api/v1/security/login", json={**body, "password": "wrong-password"}).status_code == 401
    blocked = c.post("/api/v1/security/login", json=body)
    assert blocked.status_code == 429
    assert "access_token" not in (blocked.get_json(silent=True) or {})
    assert _count(session, AuditLog, AuditLog.action == "login_success") == 4
    assert _client(limited_app, "10.20.1.2").post("/api/v1/security/login", json=body).status_code == 200


def test_guessing_the_one_time_code_is_limited_too(limited_app, session, user_id):
    secret = mfa.start_enrolment(session, user_id("accountant"))
    totp = pyotp.TOTP(secret)
    assert mfa.confirm_enrolment(session, user_id("accountant"), totp.now())
    c = _client(limited_app, "10.20.2.1")
    assert c.post("/login/", data={"username": "accountant", "password": PASSWORD}).location == "/mfa/verify"
    for guess in ("000000", "111111", "222222"):
        if guess in {totp.at(time.time() + k * 30) for k in (-1, 0, 1)}:
            guess = "999999"
        assert c.post("/mfa/verify", data={"code": guess}).status_code == 200
    assert c.post("/mfa/verify", data={"code": totp.at(time.time() + 30)}).status_code == 429  # even a good one
    home = c.get("/")
    assert home.status_code == 302 and _path(home) == "/login/"
    assert _count(session, AuditLog, AuditLog.action == "mfa_failure") == 3
    assert _count(session, AuditLog, AuditLog.action == "mfa_success") == 0


def test_without_the_limit_many_logins_are_answered(app):
    c = app.test_client()
    for _ in range(6):
        assert c.post("/login/", data={"username": "manager", "password": "wrong-password"}).status_code == 302


# --- password policy ------------------------------------------------------------------------


def _user_form(app, username: str, password: str) -> dict:
    with app.app_context():
        role_id = app.appbuilder.sm.find_role("Accountant").id
    return {"first_name": "新", "last_name": "会计", "username": username, "active": "y",
            "email": f"{username}@example.invalid", "roles": [str(role_id)],
            "password": password, "conf_password": password}


@pytest.mark.parametrize("weak", list(POLICY))
def test_users_screen_refuses_a_weak_password(app, login_as, session, weak):
    admin = login_as("admin")
    before = _count(session, User)
    audit_before = _count(session, AuditLog)
    response = admin.post("/users/add", data=_user_form(app, "weakling", weak))
    assert response.status_code == 200
    assert POLICY[weak] in response.get_data(as_text=True)
    assert _count(session, User) == before
    assert _count(session, User, User.username == "weakling") == 0
    assert _count(session, AuditLog) == audit_before


def test_users_screen_accepts_a_strong_password(app, login_as, session):
    admin = login_as("admin")
    response = admin.post("/users/add", data=_user_form(app, "newcomer", "Strong-Pass-77ab"))
    assert response.status_code == 302
    assert _count(session, User, User.username == "newcomer") == 1
    fresh = app.test_client()
    assert fresh.post("/login/", data={"username": "newcomer", "password": "Strong-Pass-77ab"}).location == "/"


@pytest.mark.parametrize("weak", ["short", "Password12", "aaaaaaaaaaAA11!", ""])
def test_create_user_refuses_a_weak_password(app, session, weak):
    before = _count(session, User)
    with pytest.raises(ValidationFailed) as failure:
        create_user(app, "weakling", weak, ["Accountant"])
    assert "password" in failure.value.errors
    assert POLICY.get(weak or "short") in str(failure.value.errors["password"])
    assert _count(session, User) == before
