"""Security headers with a per-response CSP nonce, and CSRF protection of the forms."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import func, select

from app.models.crm import Client
from app.models.security import AuditLog
from tests.conftest import PASSWORD
from tests.factories import credit_code, make_client

SCRIPT_TAG = re.compile(r"<script\b[^>]*>", re.I)


def _directives(csp: str) -> dict[str, list[str]]:
    parts = [p.split() for p in csp.split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


def _check_headers(response) -> str:
    """Assert the security headers of an HTML response; return its CSP nonce."""
    assert response.mimetype == "text/html"
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] in {"DENY", "SAMEORIGIN"}
    assert headers["Referrer-Policy"] in {"no-referrer", "same-origin", "strict-origin",
                                          "strict-origin-when-cross-origin"}
    csp = _directives(headers["Content-Security-Policy"])
    scripts = csp["script-src"]
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts and "*" not in scripts
    nonces = [s[len("'nonce-"):-1] for s in scripts if s.startswith("'nonce-")]
    assert len(nonces) == 1 and len(nonces[0]) >= 16
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] in (["'none'"], ["'self'"])
    tags = SCRIPT_TAG.findall(response.get_data(as_text=True))
    for tag in tags:
        assert f'nonce="{nonces[0]}"' in tag, tag
    return nonces[0]


def _script_count(response) -> int:
    return len(SCRIPT_TAG.findall(response.get_data(as_text=True)))


def test_login_page_carries_the_headers_and_a_matching_nonce(client):
    response = client.get("/login/")
    assert response.status_code == 200
    _check_headers(response)
    assert _script_count(response) > 0


@pytest.mark.parametrize(("username", "path"), [
    ("manager", "/"),
    ("manager", "/clientmodelview/list/"),
    ("manager", "/clientmodelview/add"),
    ("manager", "/clientmodelview/show/{client}"),
    ("manager", "/clientmodelview/edit/{client}"),
    ("manager", "/contractmodelview/list/"),
    ("manager", "/renewals/"),
    ("manager", "/auditlogmodelview/list/"),
    ("manager", "/mfa/setup"),
    ("accountant", "/documentmodelview/list/"),
    ("admin", "/users/list/"),
    ("admin", "/users/add"),
    ("admin", "/roles/list/"),
])
def test_every_page_carries_the_headers_and_its_scripts_the_nonce(login_as, username, path):
    page = path.format(client=make_client().id)
    response = login_as(username).get(page)
    assert response.status_code == 200, page
    _check_headers(response)
    assert _script_count(response) > 0
    assert response.headers["Cache-Control"] == "no-store"  # signed-in pages are not cached


def test_the_code_step_page_carries_the_headers(app, session, user_id):
    from app.services import mfa

    secret = mfa.start_enrolment(session, user_id("accountant"))
    assert mfa.confirm_enrolment(session, user_id("accountant"), pyotp.TOTP(secret).now())
    c = app.test_client()
    assert c.post("/login/", data={"username": "accountant", "password": PASSWORD}).location == "/mfa/verify"
    response = c.get("/mfa/verify")
    assert response.status_code == 200
    _check_headers(response)
    assert _script_count(response) > 0


def test_refused_and_missing_pages_carry_the_headers_too(login_as):
    c = login_as("agent")
    refused = c.get("/clientmodelview/list/")
    assert refused.status_code == 403
    missing = c.get("/no-such-page/")
    assert missing.status_code == 404
    for response in (refused, missing):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "X-Frame-Options" in response.headers
        assert "nonce-" in response.headers["Content-Security-Policy"]


def test_each_response_gets_its_own_nonce(login_as):
    c = login_as("manager")
    nonces = {_check_headers(c.get("/clientmodelview/list/")) for _ in range(3)}
    assert len(nonces) == 3


# --- CSRF -----------------------------------------------------------------------------------


@pytest.fixture
def csrf_app(second_app):
    """A second application on the same database with CSRF protection switched on."""
    return second_app(WTF_CSRF_ENABLED=True)


def _token(page) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True))
    assert match, "the form has no csrf_token"
    return match.group(1)


def _count(session, model, *where) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def _csrf_login(application, username: str):
    c = application.test_client()
    token = _token(c.get("/login/"))
    response = c.post("/login/", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.location == "/"
    return c


def test_a_form_post_without_csrf_token_is_refused_and_writes_nothing(csrf_app, session):
    c = _csrf_login(csrf_app, "manager")
    form = {"name": "跨站客户有限公司", "credit_code": credit_code(), "taxpayer_type": "small_scale",
            "status": "active"}
    clients, audit = _count(session, Client), _count(session, AuditLog)
    assert c.post("/clientmodelview/add", data=form).status_code == 400
    assert c.post("/clientmodelview/add", data={**form, "csrf_token": "forged"}).status_code == 400
    assert (_count(session, Client), _count(session, AuditLog)) == (clients, audit)

    token = _token(c.get("/clientmodelview/add"))
    assert c.post("/clientmodelview/add", data={**form, "csrf_token": token}).status_code == 302
    assert _count(session, Client, Client.name == "跨站客户有限公司") == 1


def test_a_delete_without_csrf_token_is_refused(csrf_app, session):
    client = make_client(name="留下的客户")
    c = _csrf_login(csrf_app, "manager")
    assert c.post(f"/clientmodelview/delete/{client.id}").status_code == 400
    assert _count(session, Client, Client.name == "留下的客户") == 1


def test_the_login_form_without_csrf_token_is_refused(csrf_app, session):
    c = csrf_app.test_client()
    audit = _count(session, AuditLog)
    response = c.post("/login/", data={"username": "manager", "password": PASSWORD})
    assert response.status_code == 400
    assert _count(session, AuditLog) == audit  # no password check happened
    home = c.get("/")
    assert home.status_code == 302 and home.location.startswith("/login/")


def test_json_api_login_needs_no_csrf_token(csrf_app):
    response = csrf_app.test_client().post("/api/v1/security/login", json={
        "username": "manager", "password": PASSWORD, "provider": "db"})
    assert response.status_code == 200 and response.json["access_token"]


# --- CSRF on the APIs used with the browser session ----------------------------------------------


def _voucher_state(session, voucher_id: int):
    from app.models.ledger import Voucher

    session.expire_all()
    return session.get(Voucher, voucher_id).state


def _page_token(c) -> str:
    """The CSRF token a signed-in page gives its scripts (the API docs page)."""
    match = re.search(r'data-csrf-token="([^"]+)"', c.get("/swagger/v1").get_data(as_text=True))
    assert match, "the page has no CSRF token for its scripts"
    return match.group(1)


@pytest.fixture
def draft_voucher(user_id):
    from tests.factories import make_books, make_voucher

    return make_voucher(make_books(), user_id("accountant"))


def test_a_cross_site_form_post_to_the_api_with_the_session_is_refused_and_writes_nothing(
        csrf_app, session, draft_voucher):
    from app.models.ledger import VoucherState

    c = _csrf_login(csrf_app, "reviewer")
    token = _page_token(c)
    for headers in ({"Origin": "http://localhost:5001"}, {"Referer": "http://localhost:5001/evil.html"}, {}):
        response = c.post(f"/api/v1/voucher/{draft_voucher.id}/review", data={"x": "1"}, headers=headers)
        assert response.status_code == 403, headers
        assert response.json["message"]
        assert _voucher_state(session, draft_voucher.id) == VoucherState.draft
    # another origin is refused even with the page's token
    refused = c.post(f"/api/v1/voucher/{draft_voucher.id}/review",
                     headers={"Origin": "http://localhost:5001", "X-CSRFToken": token})
    assert refused.status_code == 403 and "其他站点" in refused.json["message"]  # zh_CN by default
    assert _voucher_state(session, draft_voucher.id) == VoucherState.draft
    forged = c.post(f"/api/v1/voucher/{draft_voucher.id}/review", headers={"X-CSRFToken": "forged"})
    assert forged.status_code == 403 and "CSRF" in forged.json["message"]
    assert _voucher_state(session, draft_voucher.id) == VoucherState.draft

    allowed = c.post(f"/api/v1/voucher/{draft_voucher.id}/review",
                     headers={"Origin": "http://localhost", "X-CSRFToken": token})
    assert allowed.status_code == 200, allowed.json
    assert _voucher_state(session, draft_voucher.id) == VoucherState.reviewed


def test_api_writes_with_the_session_need_the_token_for_every_method(csrf_app, session):
    c = _csrf_login(csrf_app, "manager")
    target = make_client(name="留下的客户")
    clients = _count(session, Client)
    body = {"name": "跨站客户有限公司", "credit_code": credit_code(), "taxpayer_type": "small_scale",
            "status": "active"}
    assert c.post("/api/v1/client/", json=body).status_code == 403
    assert c.put(f"/api/v1/client/{target.id}", json={"name": "改掉的名字"}).status_code == 403
    assert c.delete(f"/api/v1/client/{target.id}").status_code == 403
    assert c.post("/api/v1/voucher/import", data={"client_id": "1"}).status_code == 403
    assert _count(session, Client) == clients
    assert _count(session, Client, Client.name == "留下的客户") == 1
    # reads need no token
    assert c.get(f"/api/v1/client/{target.id}").status_code == 200

    token = _page_token(c)
    assert c.post("/api/v1/client/", json=body, headers={"X-CSRFToken": token}).status_code == 201
    assert _count(session, Client, Client.name == "跨站客户有限公司") == 1


def test_bearer_token_clients_need_no_csrf_token(csrf_app, session, draft_voucher):
    from app.models.ledger import VoucherState

    login = csrf_app.test_client().post("/api/v1/security/login", json={
        "username": "reviewer", "password": PASSWORD, "provider": "db"})
    headers = {"Authorization": f"Bearer {login.json['access_token']}"}
    response = csrf_app.test_client().post(f"/api/v1/voucher/{draft_voucher.id}/review", headers=headers)
    assert response.status_code == 200, response.json
    assert _voucher_state(session, draft_voucher.id) == VoucherState.reviewed


def test_the_api_docs_page_sends_the_csrf_token_with_its_calls(csrf_app):
    c = _csrf_login(csrf_app, "manager")
    page = c.get("/swagger/v1")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "requestInterceptor" in text and "X-CSRFToken" in text
    token = _page_token(c)
    assert c.post("/api/v1/client/", json={"name": "文档页客户有限公司", "credit_code": credit_code(),
                                            "taxpayer_type": "small_scale", "status": "active"},
                  headers={"X-CSRFToken": token}).status_code == 201


def test_no_template_has_inline_event_handlers() -> None:
    """The Content-Security-Policy allows no inline handlers: a template with one would silently
    lose it (e.g. a confirmation that never asks)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    handler = re.compile(r"<[^>]*\son[a-z]+\s*=", re.S)
    offenders = [str(path.relative_to(root)) for folder in ("app/templates", "reports/templates")
                 for path in sorted((root / folder).rglob("*.html")) if handler.search(path.read_text())]
    assert offenders == []


# --- TLS: Secure cookies and trusted proxies --------------------------------------------------------


def test_secure_cookies_and_trusted_proxies_come_from_the_environment(monkeypatch, tmp_path):
    from app.config import build_config

    for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE", "TRUSTED_PROXIES"):
        monkeypatch.delenv(name, raising=False)
    local = build_config({"INSTANCE_PATH": str(tmp_path / "local"), "SECRET_KEY": "k" * 32})
    assert (local["SESSION_COOKIE_SECURE"], local["REMEMBER_COOKIE_SECURE"], local["TRUSTED_PROXIES"]) == (
        False, False, 0)
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "true")
    monkeypatch.setenv("TRUSTED_PROXIES", "2")
    behind = build_config({"INSTANCE_PATH": str(tmp_path / "tls"), "SECRET_KEY": "k" * 32})
    assert (behind["SESSION_COOKIE_SECURE"], behind["REMEMBER_COOKIE_SECURE"], behind["TRUSTED_PROXIES"]) == (
        True, True, 2)


def _session_cookie(response) -> str:
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))


def test_the_session_cookie_is_secure_only_when_configured(app, second_app):
    plain = app.test_client().post("/login/", data={"username": "manager", "password": PASSWORD})
    assert "Secure" not in _session_cookie(plain)
    tls = second_app(SESSION_COOKIE_SECURE=True).test_client().post(
        "/login/", data={"username": "manager", "password": PASSWORD})
    assert tls.status_code == 302
    assert "; Secure" in _session_cookie(tls) and "HttpOnly" in _session_cookie(tls)


def test_forwarded_headers_count_only_from_trusted_proxies(app, second_app, session):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "desk.example"}

    def login(application) -> tuple:
        response = application.test_client().post(
            "/login/", data={"username": "manager", "password": PASSWORD}, headers=forwarded)
        session.expire_all()
        row = session.scalars(select(AuditLog).where(AuditLog.action == "login_success")
                              .order_by(AuditLog.id.desc())).first()
        return response, row.ip

    response, ip = login(app)  # no proxy trusted: a client could forge these headers
    assert "Strict-Transport-Security" not in response.headers and ip != "203.0.113.9"
    response, ip = login(second_app(TRUSTED_PROXIES=1))
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert ip == "203.0.113.9"
    assert response.location in ("/", "https://desk.example/")


def test_behind_a_trusted_proxy_the_api_compares_origins_with_the_public_https_origin(second_app, session):
    proxied = second_app(TRUSTED_PROXIES=1, WTF_CSRF_ENABLED=True)
    c = proxied.test_client()
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "desk.example"}
    token = _token(c.get("/login/", headers=https))
    c.post("/login/", data={"username": "manager", "password": PASSWORD, "csrf_token": token},
           headers={**https, "Referer": "https://desk.example/login/"})
    token = re.search(r'data-csrf-token="([^"]+)"', c.get("/swagger/v1", headers=https).get_data(as_text=True)).group(1)
    body = {"name": "代理后的客户有限公司", "credit_code": credit_code(), "taxpayer_type": "small_scale",
            "status": "active"}
    refused = c.post("/api/v1/client/", json=body, headers={
        **https, "X-CSRFToken": token, "Origin": "http://desk.example"})  # the http origin is another one
    assert refused.status_code == 403
    made = c.post("/api/v1/client/", json=body, headers={
        **https, "X-CSRFToken": token, "Origin": "https://desk.example", "Referer": "https://desk.example/x"})
    assert made.status_code == 201, made.json
