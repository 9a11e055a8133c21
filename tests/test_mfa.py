"""Two-factor authentication: enrolment gate, the code step at login, replay refusal,
recovery codes, voluntary enrolment, admin reset, the API's ``otp`` and encryption at rest."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pyotp
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.extensions import db
from app.models.security import AuditLog, MFARecoveryCode, UserMFA
from app.services import mfa as mfa_svc
from tests.conftest import PASSWORD

REQUIRED = ["Admin", "Manager"]
API_LOGIN = "/api/v1/security/login"


class Clock:
    """Stands in for the ``time`` module inside ``app.services.mfa``: codes are checked
    against this clock, so a test decides which 30-second step is "now"."""

    def __init__(self) -> None:
        self.now = (time.time() // mfa_svc.STEP) * mfa_svc.STEP + 10  # 10 s into a step

    def time(self) -> float:
        return self.now

    def next_step(self) -> None:
        self.now += mfa_svc.STEP


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"  # messages below are asserted in English


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(mfa_svc, "time", fake)
    return fake


def _path(response) -> str:
    return urlsplit(response.location).path


def _code(secret: str, clock: Clock) -> str:
    return pyotp.TOTP(secret).at(clock.now)


def _wrong_code(secret: str, clock: Clock) -> str:
    totp = pyotp.TOTP(secret)
    near = {totp.at(clock.now + k * mfa_svc.STEP) for k in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)


def _login(app, username: str, **environ):
    client = app.test_client()
    if environ:
        client.environ_base.update(environ)
    response = client.post("/login/", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return client, response


def _enrol(session, uid: int, clock: Clock) -> tuple[str, list[str]]:
    """Enrol *uid* through the service (the code used is spent); the clock moves on a step."""
    secret = mfa_svc.start_enrolment(session, uid)
    codes = mfa_svc.confirm_enrolment(session, uid, _code(secret, clock))
    assert codes
    clock.next_step()
    return secret, codes


def _audit(session, action: str) -> list[AuditLog]:
    session.expire_all()
    return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def _enabled(session, uid: int) -> bool:
    session.expire_all()
    return mfa_svc.is_enabled(session, uid)


def _signed_in(client) -> bool:
    response = client.get("/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and _path(response) == "/login/", response.location
    return False


# --- enrolment gate -----------------------------------------------------------------------


def test_required_role_is_held_on_setup_until_enrolled_then_pages_open(app, session, user_id, clock):
    app.config["MFA_REQUIRED_ROLES"] = REQUIRED
    c, response = _login(app, "manager")
    assert _path(response) == "/mfa/setup"
    for page in ("/", "/clientmodelview/list/", "/contractmodelview/list/", "/auditlogmodelview/list/",
                 "/users/userinfo/"):
        held = c.get(page)
        assert held.status_code == 302 and _path(held) == "/mfa/setup", page
    api = c.get("/api/v1/client/")  # the APIs accept the session cookie too
    assert api.status_code == 401 and "enrolment is required" in api.json["message"]

    setup = c.get("/mfa/setup")
    assert setup.status_code == 200
    html = setup.get_data(as_text=True)
    assert "<svg" in html and "Your role requires two-factor authentication" in html
    secret = re.search(r'<code id="mfa-secret">([A-Z2-7]{32})</code>', html).group(1)
    reload = c.get("/mfa/setup").get_data(as_text=True)  # the key the user may have scanned stays
    assert f'<code id="mfa-secret">{secret}</code>' in reload

    wrong = c.post("/mfa/setup", data={"code": _wrong_code(secret, clock)})
    assert wrong.status_code == 200
    assert "That code is not valid" in wrong.get_data(as_text=True)
    assert f'<code id="mfa-secret">{secret}</code>' in wrong.get_data(as_text=True)  # same key to retry
    assert not _enabled(session, user_id("manager"))
    assert c.get("/clientmodelview/list/").status_code == 302

    confirmed = c.post("/mfa/setup", data={"code": _code(secret, clock)})
    assert confirmed.status_code == 200
    shown = re.search(r'<pre id="recovery-codes">(.*?)</pre>', confirmed.get_data(as_text=True), re.S).group(1)
    codes = shown.split()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[0-9a-f]{5}-[0-9a-f]{5}", code) for code in codes)
    assert _enabled(session, user_id("manager"))
    stored = list(session.scalars(select(MFARecoveryCode.code_hash).where(
        MFARecoveryCode.user_id == user_id("manager"))))
    assert len(stored) == 10 and not set(stored) & set(codes)  # only hashes are kept
    assert [row.username for row in _audit(session, "mfa_enrolled")] == ["manager"]

    for page in ("/", "/clientmodelview/list/", "/auditlogmodelview/list/", "/api/v1/client/"):
        assert c.get(page).status_code == 200, page
    status = c.get("/mfa/setup").get_data(as_text=True)
    assert "Two-factor authentication is on." in status and "Unused recovery codes: 10." in status


def test_user_held_on_setup_can_sign_out(app):
    app.config["MFA_REQUIRED_ROLES"] = REQUIRED
    c, response = _login(app, "manager")
    assert _path(response) == "/mfa/setup"
    out = c.get("/logout/")
    assert out.status_code == 302 and _path(out) != "/mfa/setup"
    assert not _signed_in(c)


def test_empty_required_roles_switches_the_requirement_off(app, user_id):
    app.config["MFA_REQUIRED_ROLES"] = []
    c, response = _login(app, "manager")
    assert _path(response) == "/"
    assert c.get("/clientmodelview/list/").status_code == 200
    setup = c.get("/mfa/setup").get_data(as_text=True)
    assert "Your role requires" not in setup
    assert app.test_client().post(API_LOGIN, json={"username": "manager", "password": PASSWORD,
                                                   "provider": "db"}).status_code == 200


# --- the code step at login ---------------------------------------------------------------


def test_enrolled_user_signs_in_only_with_a_valid_code(app, session, user_id, clock):
    app.config["MFA_REQUIRED_ROLES"] = REQUIRED
    secret, _ = _enrol(session, user_id("manager"), clock)
    c, response = _login(app, "manager", REMOTE_ADDR="10.1.2.3")
    assert _path(response) == "/mfa/verify"
    assert not _signed_in(c)
    assert c.get("/clientmodelview/list/").status_code == 302

    wrong = c.post("/mfa/verify", data={"code": _wrong_code(secret, clock)})
    assert wrong.status_code == 200 and "That code is not valid" in wrong.get_data(as_text=True)
    assert not _signed_in(c)
    failures = _audit(session, "mfa_failure")
    assert [(r.username, r.user_id, r.ip) for r in failures] == [("manager", user_id("manager"), "10.1.2.3")]
    assert _audit(session, "mfa_success") == []
    assert [r.username for r in _audit(session, "password_ok")] == ["manager"]
    assert _audit(session, "login_success") == []  # the password alone does not sign in

    right = c.post("/mfa/verify", data={"code": _code(secret, clock)})
    assert right.status_code == 302 and _path(right) == "/"
    assert _signed_in(c)
    assert c.get("/clientmodelview/list/").status_code == 200
    assert [r.username for r in _audit(session, "mfa_success")] == ["manager"]
    assert [(r.username, r.ip) for r in _audit(session, "login_success")] == [("manager", "10.1.2.3")]


def test_the_code_that_confirmed_enrolment_cannot_sign_in(app, session, user_id, clock):
    app.config["MFA_REQUIRED_ROLES"] = REQUIRED
    c, _ = _login(app, "manager")
    secret = re.search(r'id="mfa-secret">([A-Z2-7]+)<', c.get("/mfa/setup").get_data(as_text=True)).group(1)
    code = _code(secret, clock)
    assert c.post("/mfa/setup", data={"code": code}).status_code == 200
    assert _enabled(session, user_id("manager"))

    again, response = _login(app, "manager")
    assert _path(response) == "/mfa/verify"
    assert again.post("/mfa/verify", data={"code": code}).status_code == 200  # replay: refused
    assert not _signed_in(again)
    clock.next_step()
    assert again.post("/mfa/verify", data={"code": _code(secret, clock)}).status_code == 302
    assert _signed_in(again)


def test_a_totp_code_is_accepted_once(app, session, user_id, clock):
    secret, _ = _enrol(session, user_id("accountant"), clock)
    code = _code(secret, clock)
    first, _ = _login(app, "accountant")
    assert first.post("/mfa/verify", data={"code": code}).status_code == 302
    assert _signed_in(first)

    second, _ = _login(app, "accountant")
    refused = second.post("/mfa/verify", data={"code": code})
    assert refused.status_code == 200 and "That code is not valid" in refused.get_data(as_text=True)
    assert not _signed_in(second)
    clock.next_step()
    assert second.post("/mfa/verify", data={"code": _code(secret, clock)}).status_code == 302
    assert _signed_in(second)


def test_verify_accepts_one_step_of_drift_and_never_an_older_step(session, user_id):
    uid = user_id("accountant2")
    secret = mfa_svc.start_enrolment(session, uid)
    totp = pyotp.TOTP(secret)
    assert mfa_svc.confirm_enrolment(session, uid, totp.now())
    t = time.time() + 300  # well after the step of the code that confirmed the enrolment
    assert not mfa_svc.verify(session, uid, totp.at(t + 60), now=t)  # two steps ahead
    assert not mfa_svc.verify(session, uid, totp.at(t - 60), now=t)  # two steps behind
    assert mfa_svc.verify(session, uid, totp.at(t + 30), now=t)  # clock of the phone a step ahead
    assert not mfa_svc.verify(session, uid, totp.at(t + 30), now=t)  # replay
    assert not mfa_svc.verify(session, uid, totp.at(t), now=t + 30)  # older than the last used step
    assert mfa_svc.verify(session, uid, totp.at(t + 60), now=t + 60)
    assert not mfa_svc.verify(session, uid, "12345", now=t + 60)
    assert not mfa_svc.verify(session, uid, "", now=t + 60)


def test_two_sessions_racing_with_one_code_let_only_one_in(app, session, user_id, clock):
    uid = user_id("accountant2")
    secret, codes = _enrol(session, uid, clock)
    first, second = Session(db.engine), Session(db.engine)
    try:
        # both have read the enrolment (and hold it) before either spends the code
        held = [racer.get(UserMFA, uid) for racer in (first, second)]
        assert all(enrolment.enabled for enrolment in held)
        code = _code(secret, clock)
        assert [mfa_svc.verify(first, uid, code), mfa_svc.verify(second, uid, code)] == [True, False]
        assert [mfa_svc.verify(first, uid, codes[0]), mfa_svc.verify(second, uid, codes[0])] == [True, False]
    finally:
        first.close()
        second.close()


def test_a_recovery_code_works_once(app, session, user_id, clock):
    app.config["MFA_REQUIRED_ROLES"] = REQUIRED
    _, codes = _enrol(session, user_id("manager"), clock)
    first, _ = _login(app, "manager")
    assert first.post("/mfa/verify", data={"code": codes[3]}).status_code == 302
    assert _signed_in(first)
    session.expire_all()
    assert mfa_svc.remaining_recovery_codes(session, user_id("manager")) == 9

    second, _ = _login(app, "manager")
    assert second.post("/mfa/verify", data={"code": codes[3]}).status_code == 200
    assert not _signed_in(second)
    assert second.post("/mfa/verify", data={"code": codes[4].upper()}).status_code == 302
    assert _signed_in(second)
    session.expire_all()
    assert mfa_svc.remaining_recovery_codes(session, user_id("manager")) == 8


def test_verify_page_needs_a_recent_password_step(app, session, user_id, clock):
    secret, _ = _enrol(session, user_id("accountant"), clock)
    stranger = app.test_client()
    response = stranger.post("/mfa/verify", data={"code": _code(secret, clock)})
    assert response.status_code == 302 and _path(response) == "/login/"
    assert not _signed_in(stranger)

    c, _ = _login(app, "accountant")
    with c.session_transaction() as s:
        s["mfa_pending"] = dict(s["mfa_pending"], at=time.time() - 301)
    late = c.post("/mfa/verify", data={"code": _code(secret, clock)})
    assert late.status_code == 302 and _path(late) == "/login/"
    assert not _signed_in(c)
    assert _audit(session, "mfa_success") == []


# --- voluntary enrolment, disabling, admin reset ------------------------------------------


def test_accountant_may_enrol_voluntarily_and_turn_it_off(app, session, user_id, clock):
    app.config["MFA_REQUIRED_ROLES"] = REQUIRED
    c, response = _login(app, "accountant")
    assert _path(response) == "/"
    assert c.get("/").status_code == 200
    html = c.get("/mfa/setup").get_data(as_text=True)
    assert "Your role requires" not in html
    secret = re.search(r'id="mfa-secret">([A-Z2-7]+)<', html).group(1)
    assert c.post("/mfa/setup", data={"code": _code(secret, clock)}).status_code == 200
    assert _enabled(session, user_id("accountant"))
    assert 'id="disable-code"' in c.get("/mfa/setup").get_data(as_text=True)

    clock.next_step()
    refused = c.post("/mfa/disable", data={"code": _wrong_code(secret, clock)}, follow_redirects=True)
    assert "That code is not valid" in refused.get_data(as_text=True)
    assert _enabled(session, user_id("accountant"))

    done = c.post("/mfa/disable", data={"code": _code(secret, clock)})
    assert done.status_code == 302 and _path(done) == "/mfa/setup"
    assert not _enabled(session, user_id("accountant"))
    assert session.get(UserMFA, user_id("accountant")) is None
    assert session.scalar(select(func.count()).select_from(MFARecoveryCode).where(
        MFARecoveryCode.user_id == user_id("accountant"))) == 0
    assert [r.username for r in _audit(session, "mfa_disabled")] == ["accountant"]
    assert "Two-factor authentication is off." in c.get("/mfa/setup").get_data(as_text=True)

    _, again = _login(app, "accountant")
    assert _path(again) == "/"  # no code step any more


def test_manager_may_not_turn_required_mfa_off(app, session, user_id, clock):
    app.config["MFA_REQUIRED_ROLES"] = REQUIRED
    secret, _ = _enrol(session, user_id("manager"), clock)
    c, _ = _login(app, "manager")
    assert c.post("/mfa/verify", data={"code": _code(secret, clock)}).status_code == 302
    status = c.get("/mfa/setup").get_data(as_text=True)
    assert "Two-factor authentication is on." in status and 'id="disable-code"' not in status

    clock.next_step()
    refused = c.post("/mfa/disable", data={"code": _code(secret, clock)}, follow_redirects=True)
    assert "Your role requires two-factor authentication." in refused.get_data(as_text=True)
    assert _enabled(session, user_id("manager"))
    assert _audit(session, "mfa_disabled") == []


def test_admin_resets_a_users_enrolment(app, login_as, session, user_id, clock):
    uid = user_id("accountant")
    _enrol(session, uid, clock)
    admin = login_as("admin")
    response = admin.post(f"/mfa-admin/reset/{uid}")
    assert response.status_code == 302
    assert not _enabled(session, uid)
    assert session.get(UserMFA, uid) is None
    assert session.scalar(select(func.count()).select_from(MFARecoveryCode).where(
        MFARecoveryCode.user_id == uid)) == 0
    [row] = _audit(session, "mfa_reset")
    assert (row.username, row.object_type, row.object_id, row.summary) == ("admin", "ab_user", str(uid), "accountant")
    _, again = _login(app, "accountant")
    assert _path(again) == "/"
    assert admin.post("/mfa-admin/reset/999999").status_code == 404


def test_admin_resets_from_the_users_detail_page(app, login_as, session, user_id, clock):
    uid = user_id("accountant")
    admin = login_as("admin")
    page = admin.get(f"/users/show/{uid}").get_data(as_text=True)
    assert re.search(r'id="user-mfa-status">\s*Off', page) and "Reset two-factor authentication</button>" not in page

    _enrol(session, uid, clock)
    page = admin.get(f"/users/show/{uid}").get_data(as_text=True)
    assert re.search(r'id="user-mfa-status">\s*On', page)
    assert f'action="/mfa-admin/reset/{uid}"' in page and 'name="csrf_token"' in page

    back = admin.post(f"/mfa-admin/reset/{uid}", headers={"Referer": f"http://localhost/users/show/{uid}"})
    assert back.status_code == 302 and _path(back) == f"/users/show/{uid}"
    assert "was reset for accountant" in admin.get(_path(back)).get_data(as_text=True)
    assert not _enabled(session, uid)

    own = login_as("accountant").get("/users/userinfo/").get_data(as_text=True)
    assert re.search(r'id="user-mfa-status">\s*Off', own) and 'href="/mfa/setup"' in own
    assert "/mfa-admin/reset/" not in own


@pytest.mark.parametrize("username", ["manager", "accountant"])
def test_only_admin_may_reset_someone_elses_mfa(app, login_as, session, user_id, clock, username):
    uid = user_id("accountant2")
    _enrol(session, uid, clock)
    response = login_as(username).post(f"/mfa-admin/reset/{uid}")
    assert response.status_code == 403
    assert _enabled(session, uid)
    assert _audit(session, "mfa_reset") == []


# --- API ------------------------------------------------------------------------------------


def _api_login(app, username: str, **extra):
    return app.test_client().post(API_LOGIN, json={"username": username, "password": PASSWORD,
                                                   "provider": "db", **extra})


def test_api_login_of_an_enrolled_user_needs_otp(app, session, user_id, clock):
    secret, codes = _enrol(session, user_id("accountant"), clock)
    missing = _api_login(app, "accountant")
    assert missing.status_code == 401 and "access_token" not in missing.json
    assert "otp" in missing.json["message"]
    wrong = _api_login(app, "accountant", otp=_wrong_code(secret, clock))
    assert wrong.status_code == 401
    assert [(r.username, r.summary) for r in _audit(session, "mfa_failure")] == [
        ("accountant", "api"), ("accountant", "api")]

    code = _code(secret, clock)
    ok = _api_login(app, "accountant", otp=code)
    assert ok.status_code == 200 and ok.json["access_token"]
    headers = {"Authorization": f"Bearer {ok.json['access_token']}"}
    assert app.test_client().get("/api/v1/client/", headers=headers).status_code == 200
    assert _api_login(app, "accountant", otp=code).status_code == 401  # replay
    assert _api_login(app, "accountant", otp=codes[0]).status_code == 200  # recovery code
    assert _api_login(app, "accountant", otp=codes[0]).status_code == 401
    assert [r.summary for r in _audit(session, "login_success")] == ["api", "api"]  # only the two that got a token


def test_api_refuses_a_required_but_unenrolled_user(app, session):
    app.config["MFA_REQUIRED_ROLES"] = REQUIRED
    response = _api_login(app, "manager")
    assert response.status_code == 401 and "access_token" not in response.json
    assert "enrolment is required" in response.json["message"]
    assert _api_login(app, "accountant").status_code == 200  # role not required
    assert _api_login(app, "manager", password="wrong").status_code == 401


# --- storage -------------------------------------------------------------------------------


def test_the_totp_secret_is_stored_encrypted(app, session, user_id, clock):
    uid = user_id("accountant")
    secret, _ = _enrol(session, uid, clock)
    raw = session.execute(text("SELECT secret FROM user_mfa WHERE user_id = :u"), {"u": uid}).scalar()
    assert raw and raw != secret and secret not in raw
    session.expire_all()
    assert session.get(UserMFA, uid).secret == secret
