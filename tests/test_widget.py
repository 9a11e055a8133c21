"""The widget's files (``/widget.js``, the Socket.IO client next to it), the Socket.IO endpoint's
cross-origin rule, and the demo host page that embeds the widget."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from app.demo_host import browser_host, make_demo_host
from app.extensions import db
from app.models.chat import ChatSite
from app.services import chat_sites
from app.views import widget as widget_view

ALLOWED = "http://127.0.0.1:5001"
POLL = "/socket.io/?EIO=4&transport=polling"


@pytest.fixture
def site(app):
    site = chat_sites.prepare_new_site(ChatSite(name="演示站点", allowed_origins=f"{ALLOWED}\nhttps://*.example.com"))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def client(app):
    """A plain test client (each request in its own application context)."""
    return app.test_client()


@pytest.fixture(autouse=True)
def _fresh_origin_cache(app):
    """Each test sees the sites as they are now (the checker keeps them for some seconds)."""
    from app import _init_socketio

    _init_socketio(app)


# --- the files ------------------------------------------------------------------------------


def test_widget_js_is_public_javascript_with_caching_headers(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert "public" in response.headers["Cache-Control"] and "max-age=300" in response.headers["Cache-Control"]
    assert response.headers["ETag"]
    body = response.get_data(as_text=True)
    assert "attachShadow" in body and "/widget/socket.io.min.js" in body
    again = client.get("/widget.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_the_widget_never_inserts_text_as_html(client):
    body = client.get("/widget.js").get_data(as_text=True)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in body


def test_the_socketio_client_is_served_next_to_the_widget(client):
    if not widget_view.SOCKETIO_CLIENT.is_file():
        pytest.fail("node_modules/socket.io-client is missing: run scripts/setup.sh (npm ci)")
    response = client.get("/widget/socket.io.min.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert "max-age=86400" in response.headers["Cache-Control"]
    assert b"io" in response.get_data()


def test_a_missing_socketio_client_is_a_404_not_a_crash(client, monkeypatch, tmp_path):
    monkeypatch.setattr(widget_view, "SOCKETIO_CLIENT", tmp_path / "missing.js")
    assert client.get("/widget/socket.io.min.js").status_code == 404


# --- cross-origin Socket.IO -------------------------------------------------------------------


def _poll(client, origin: str | None):
    return client.get(POLL, headers={"Origin": origin} if origin else {})


def test_polling_from_a_site_origin_gets_cors_headers_without_credentials(client, site):
    response = _poll(client, ALLOWED)
    assert response.status_code == 200 and b'"sid"' in response.data
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_wildcard_origin_of_a_site_is_allowed(client, site):
    response = _poll(client, "https://shop.example.com")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"


@pytest.mark.parametrize("origin", ["http://evil.test", "http://127.0.0.1:5002", "https://example.com"])
def test_other_origins_are_refused_before_any_socketio_session(client, site, origin):
    response = _poll(client, origin)
    assert response.status_code == 400
    assert "Access-Control-Allow-Origin" not in response.headers


def test_an_inactive_sites_origins_are_refused(client, site):
    site.active = False
    db.session.commit()
    assert _poll(client, ALLOWED).status_code == 400


def test_the_servers_own_origin_and_non_browser_clients_are_allowed(client, site):
    assert _poll(client, "http://localhost").status_code == 200  # the test client's Host
    assert _poll(client, None).status_code == 200


def test_the_console_behind_a_proxy_is_its_own_origin(client, site):
    response = client.get(POLL, headers={"Origin": "https://desk.example.org",
                                         "X-Forwarded-Host": "desk.example.org", "X-Forwarded-Proto": "https"})
    assert response.status_code == 200


def test_a_site_added_later_is_allowed_at_once(app, client, site, monkeypatch):
    assert _poll(client, "https://new.test").status_code == 400
    monkeypatch.setattr(widget_view, "ORIGINS_RETRY", 0.0)
    db.session.add(chat_sites.prepare_new_site(ChatSite(name="新站点", allowed_origins="https://new.test")))
    db.session.commit()
    assert _poll(client, "https://new.test").status_code == 200


# --- the demo host page ---------------------------------------------------------------------


def test_demo_host_pages_embed_the_widget_snippet():
    host = Client(make_demo_host("http://127.0.0.1:5000/", "KEY-123"))
    home = host.get("/")
    assert home.status_code == 200
    html = home.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert '<script src="http://127.0.0.1:5000/widget.js" data-site="KEY-123" async></script>' in html
    assert 'href="/services.html"' in html
    second = host.get("/services.html")
    assert second.status_code == 200 and "服务与价格" in second.get_data(as_text=True)
    assert host.get("/nope").status_code == 404
    assert host.post("/").status_code == 405


def test_demo_host_escapes_what_it_is_given():
    html = Client(make_demo_host("http://desk", '"><script>x()</script>')).get("/").get_data(as_text=True)
    assert "<script>x()</script>" not in html


def test_browser_host_maps_wildcard_addresses_to_loopback():
    assert browser_host("0.0.0.0") == "127.0.0.1"  # noqa: S104
    assert browser_host("localhost") == "localhost"


def test_a_long_polling_request_may_carry_a_widgets_whole_outbox(client, site, caplog):
    """A widget sending what it queued while reloading batches it in one long-polling request:
    40 packets (more than Engine.IO's own limit of 16) are taken. Engine.IO answers such a
    request "OK" either way; a refused one is only an error in the log, its packets dropped."""
    import json
    import logging

    opened = _poll(client, ALLOWED)
    sid = json.loads(opened.data[1:])["sid"]
    body = "\x1e".join(["3"] * 40)  # 40 pongs: packets the server takes without a namespace
    with caplog.at_level(logging.ERROR):
        sent = client.post(f"{POLL}&sid={sid}", data=body, headers={"Origin": ALLOWED, "Content-Type": "text/plain"})
    assert sent.status_code == 200
    assert not [r for r in caplog.records if "Too many packets" in r.getMessage() + str(r.exc_info)]
