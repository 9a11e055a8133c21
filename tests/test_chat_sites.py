"""Chat sites: allowed origins, visitor tokens, identity verification, blocks and business hours."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.extensions import db
from app.models.chat import ChatBlock, ChatSite
from app.services import chat_sites as svc
from app.services.errors import ValidationFailed

SECRET = "test-secret-key-of-at-least-32-bytes-long"


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


def _site(**kw) -> ChatSite:
    site = svc.prepare_new_site(ChatSite(name=kw.pop("name", "官网"), allowed_origins=kw.pop("allowed_origins", ""),
                                         **kw))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.mark.parametrize(("rules", "origin", "allowed"), [
    ("https://www.example.com", "https://www.example.com", True),
    ("https://www.example.com", "https://www.example.com:443", True),
    ("https://www.example.com", "http://www.example.com", False),  # scheme counts
    ("https://www.example.com", "https://example.com", False),
    ("https://www.example.com", "https://www.example.com.evil.net", False),
    ("http://127.0.0.1:5001", "http://127.0.0.1:5001", True),
    ("http://127.0.0.1:5001", "http://127.0.0.1:5002", False),  # port counts
    ("http://localhost:5001\nhttp://127.0.0.1:5001", "http://localhost:5001", True),
    ("https://*.example.com", "https://shop.example.com", True),
    ("https://*.example.com", "https://a.b.example.com", True),
    ("https://*.example.com", "https://example.com", False),  # the bare domain is listed on its own
    ("https://*.example.com", "https://badexample.com", False),
    ("https://*.example.com", "https://example.com.evil.net", False),
    ("https://www.example.com", "null", False),
    ("https://www.example.com", "", False),
])
def test_origin_matching(app, rules, origin, allowed):
    assert svc.origin_allowed(_site(allowed_origins=rules), origin) is allowed


def test_an_inactive_site_allows_nobody(app):
    site = _site(allowed_origins="https://www.example.com", active=False)
    assert not svc.origin_allowed(site, "https://www.example.com")


@pytest.mark.parametrize("bad", ["www.example.com", "https://www.example.com/path", "ftp://x.example.com",
                                 "https://*example.com", "https://www.*.example.com", "https://user@example.com",
                                 "https://exa mple.com"])
def test_bad_origin_lines_are_refused_with_their_line_number(app, bad):
    with pytest.raises(ValidationFailed) as refused:
        svc.validate_site(ChatSite(name="x", allowed_origins=f"https://ok.example.com\n{bad}", theme_color="#123456"))
    assert refused.value.errors["allowed_origins"][0].startswith("Line 2: ")


def test_site_validation_names_each_field(app):
    with pytest.raises(ValidationFailed) as refused:
        svc.validate_site(ChatSite(name=" ", allowed_origins="", theme_color="blue", business_hours="weekdays"))
    assert set(refused.value.errors) == {"name", "theme_color", "business_hours"}


def test_new_sites_get_distinct_random_keys_and_regenerating_replaces_them(app, session):
    one, two = _site(), _site()
    assert one.site_key != two.site_key and len(one.site_key) >= 20
    assert one.identity_secret != two.identity_secret and len(one.identity_secret) == 64
    old_key, old_secret = one.site_key, one.identity_secret
    svc.regenerate_keys(session, one)
    assert (one.site_key, one.identity_secret) != (old_key, old_secret)


def test_the_snippet_is_one_async_script_tag_with_the_key(app):
    site = _site()
    assert str(svc.snippet(site, "https://desk.example.com/")) == (
        f'<script src="https://desk.example.com/widget.js" data-site="{site.site_key}" async></script>')


def test_visitor_tokens_are_signed_and_bound_to_the_site(app):
    token = svc.visitor_token(SECRET, "site-a", "abc123")
    assert svc.visitor_uid_from_token(SECRET, "site-a", token) == "abc123"
    assert svc.visitor_uid_from_token(SECRET, "site-b", token) is None  # another site's token
    assert svc.visitor_uid_from_token("another-secret-key-of-32-bytes-or-more", "site-a", token) is None
    assert svc.visitor_uid_from_token(SECRET, "site-a", token[:-2] + "xx") is None
    assert svc.visitor_uid_from_token(SECRET, "site-a", None) is None
    assert svc.visitor_uid_from_token(SECRET, "site-a", "x" * 400) is None


def test_identity_verification_needs_the_right_hmac(app):
    site = _site()
    good = svc.identity_hash(site.identity_secret, "u-42")
    assert svc.verify_identity(site, "u-42", good) == "u-42"
    assert svc.verify_identity(site, "u-42", good.upper()) == "u-42"
    assert svc.verify_identity(site, None, None) is None
    for wrong in (None, "", svc.identity_hash(site.identity_secret, "u-43"), svc.identity_hash("other", "u-42")):
        with pytest.raises(ValidationFailed) as refused:
            svc.verify_identity(site, "u-42", wrong)
        assert "user_hash" in refused.value.errors


def test_blocks_by_visitor_ip_and_range_until_they_expire(app, session):
    site, other = _site(), _site()
    now = datetime(2026, 11, 23, 12, 0)
    session.add_all([
        ChatBlock(site_id=site.id, visitor_uid="bad-visitor"),
        ChatBlock(site_id=site.id, ip_range="203.0.113.0/24", expires_at=now + timedelta(hours=1)),
        ChatBlock(site_id=None, ip_range="198.51.100.7"),
        ChatBlock(site_id=site.id, ip_range="192.0.2.1", expires_at=now - timedelta(seconds=1)),
    ])
    session.commit()
    assert svc.is_blocked(session, site.id, "bad-visitor", "10.0.0.1", now)
    assert not svc.is_blocked(session, other.id, "bad-visitor", "10.0.0.1", now)  # only on that site
    assert svc.is_blocked(session, site.id, "v", "203.0.113.99", now)
    assert not svc.is_blocked(session, site.id, "v", "203.0.113.99", now + timedelta(hours=2))  # expired
    assert svc.is_blocked(session, other.id, "v", "198.51.100.7", now)  # a block on every site
    assert not svc.is_blocked(session, site.id, "v", "192.0.2.1", now)  # expired already
    assert not svc.is_blocked(session, site.id, "v", "not-an-ip", now)


def test_block_validation(app):
    with pytest.raises(ValidationFailed):
        svc.validate_block(ChatBlock())
    with pytest.raises(ValidationFailed, match="CIDR"):
        svc.validate_block(ChatBlock(ip_range="300.1.1.1/24"))
    svc.validate_block(ChatBlock(ip_range="2001:db8::/32"))


def test_business_hours_in_the_display_zone(app):
    site = ChatSite(business_hours="mon-fri 09:00-18:00\nsat 10:00-12:00")
    tz = "Asia/Shanghai"  # UTC+8
    monday_0859, monday_0900 = datetime(2026, 11, 23, 0, 59), datetime(2026, 11, 23, 1, 0)
    assert not svc.is_open(site, monday_0859, tz) and svc.is_open(site, monday_0900, tz)
    assert not svc.is_open(site, datetime(2026, 11, 23, 10, 0), tz)  # 18:00 Beijing: closed
    assert svc.is_open(site, datetime(2026, 11, 28, 2, 30), tz)  # Saturday 10:30
    assert not svc.is_open(site, datetime(2026, 11, 29, 2, 30), tz)  # Sunday
    assert svc.is_open(ChatSite(business_hours=""), monday_0859, tz)  # blank: always open
    assert svc.is_open(ChatSite(business_hours="fri-mon 20:00-23:00"), datetime(2026, 11, 22, 13, 0), tz)  # Sun
