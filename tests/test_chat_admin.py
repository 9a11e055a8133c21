"""Live-chat administration screens: sites with their snippet and keys, groups, agents, blocks."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.models.chat import AgentGroup, AgentProfile, ChatBlock, ChatSite
from app.models.security import AuditLog


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


def _count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


SITE_FORM = {"name": "官网", "allowed_origins": "https://www.example.com\nhttps://*.example.com",
             "welcome_text": "您好，有什么可以帮您？", "warning_banner": "请勿发送密码", "theme_color": "#1677ff",
             "button_position": "right", "business_hours": "mon-fri 09:00-18:00", "offline_form": "y",
             "active": "y"}


def test_manager_adds_a_site_and_sees_the_snippet_to_paste(login_as, session):
    browser = login_as("manager")
    response = browser.post("/chatsitemodelview/add", data=SITE_FORM)
    assert response.status_code == 302
    site = session.scalar(select(ChatSite))
    assert len(site.site_key) >= 20 and len(site.identity_secret) == 64
    page = browser.get(f"/chatsitemodelview/show/{site.id}").get_data(as_text=True)
    code = re.search(r'<pre id="snippet-code">(.*?)</pre>', page, re.S).group(1)
    assert code == (f'&lt;script src=&#34;http://localhost/widget.js&#34; data-site=&#34;{site.site_key}&#34; '
                    f'async&gt;&lt;/script&gt;')  # shown as text, never run in the admin page
    assert "<script src=\"http://localhost/widget.js\"" not in page
    assert site.auto_reply_seconds == 60  # left blank: the default
    listing = browser.get("/chatsitemodelview/list/").get_data(as_text=True)
    assert "官网" in listing and site.identity_secret not in listing
    [audit] = session.scalars(select(AuditLog).where(AuditLog.object_type == "chat_site"))
    assert site.identity_secret not in (audit.changes or "")
    # The site's page lists its groups; making new keys asks first (a script, no inline handler).
    session.add(AgentGroup(site_id=site.id, name="报税咨询组"))
    session.commit()
    page = browser.get(f"/chatsitemodelview/show/{site.id}").get_data(as_text=True)
    assert "报税咨询组" in page
    assert "onsubmit" not in page and 'id="regenerate-keys"' in page


@pytest.mark.parametrize(("field", "value", "message"), [
    ("allowed_origins", "www.example.com", "Line 1: www.example.com is not an origin"),
    ("theme_color", "blue", "A colour is written #RRGGBB"),
    ("business_hours", "always", "Line 1: write business hours like"),
    ("auto_reply_seconds", "-5", "between 0 and 3600"),
])
def test_a_bad_site_is_refused_with_the_reason_and_nothing_is_written(login_as, session, field, value, message):
    response = login_as("manager").post("/chatsitemodelview/add", data={**SITE_FORM, field: value},
                                        follow_redirects=True)
    assert message in response.get_data(as_text=True)
    assert _count(session, ChatSite) == 0


def test_making_new_keys_stops_the_old_ones(login_as, session):
    browser = login_as("manager")
    browser.post("/chatsitemodelview/add", data=SITE_FORM)
    site = session.scalar(select(ChatSite))
    old = (site.site_key, site.identity_secret)
    response = browser.post(f"/chatsitemodelview/regenerate/{site.id}")
    assert response.status_code == 302
    session.expire_all()
    assert site.site_key != old[0] and site.identity_secret != old[1]
    assert browser.post("/chatsitemodelview/regenerate/999999").status_code == 404


@pytest.mark.parametrize("username", ["accountant", "reviewer", "agent"])
def test_only_admin_and_manager_manage_sites(login_as, session, username):
    browser = login_as(username)
    assert browser.get("/chatsitemodelview/list/").status_code in (302, 403)
    browser.post("/chatsitemodelview/add", data=SITE_FORM)
    assert _count(session, ChatSite) == 0


def test_agent_profile_and_block_rules(login_as, session, user_id):
    browser = login_as("manager")
    bad = browser.post("/agentprofilemodelview/add", data={"user": user_id("agent"), "display_name": "小张",
                                                           "avatar_url": "javascript:alert(1)", "max_chats": "3",
                                                           "active": "y"}, follow_redirects=True)
    assert "The avatar is a web address" in bad.get_data(as_text=True)
    assert _count(session, AgentProfile) == 0
    good = browser.post("/agentprofilemodelview/add", data={"user": user_id("agent"), "display_name": "小张",
                                                            "max_chats": "3", "active": "y"})
    assert good.status_code == 302 and _count(session, AgentProfile) == 1
    too_many = browser.post("/agentprofilemodelview/add", data={"user": user_id("agent"), "display_name": "x",
                                                                "max_chats": "0"})
    assert too_many.status_code == 200 and _count(session, AgentProfile) == 1

    refused = browser.post("/chatblockmodelview/add", data={"ip_range": "300.0.0.1/24"}, follow_redirects=True)
    assert "Not an IP address or CIDR range" in refused.get_data(as_text=True)
    assert _count(session, ChatBlock) == 0
    assert browser.post("/chatblockmodelview/add", data={"ip_range": "203.0.113.0/24"}).status_code == 302
    block = session.scalar(select(ChatBlock))
    assert (block.ip_range, block.created_by_id) == ("203.0.113.0/24", user_id("manager"))
