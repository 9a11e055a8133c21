"""The demo chat site: what a first start sets up so that the widget can be tried at once."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models.chat import AgentGroup, AgentProfile, CannedReply, ChatSite, InvitationRule
from app.services import chat_sites
from app.services.demo_chat import DEMO_SITE_NAME, demo_origins, find_demo_site, seed_demo_chat
from app.services.users import create_user
from tests.conftest import PASSWORD


@pytest.fixture
def demo_agents(app):
    for username, last in (("agent1", "一号"), ("agent2", "二号")):
        create_user(app, username, PASSWORD, ["Agent"], first_name="客服", last_name=last)


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_demo_site_serves_the_demo_host_page_with_two_agents(app, demo_agents):
    key = seed_demo_chat(app)

    site = db.session.scalar(select(ChatSite).where(ChatSite.site_key == key))
    assert site.name == DEMO_SITE_NAME and site.active and site.offline_form
    assert site.welcome_text and site.warning_banner
    assert not site.business_hours
    assert chat_sites.is_open(site, datetime(2026, 1, 4, 3, 0), "Asia/Shanghai")  # a Sunday night: open
    for origin in ("http://127.0.0.1:5001", "http://localhost:5001"):
        assert chat_sites.origin_allowed(site, origin)
    assert not chat_sites.origin_allowed(site, "http://127.0.0.1:5000")
    [group] = db.session.scalars(select(AgentGroup).where(AgentGroup.site_id == site.id))
    assert group.is_default
    assert sorted(a.display_name for a in group.agents) == ["客服一号", "客服二号"]
    assert {a.user.username for a in group.agents} == {"agent1", "agent2"}
    replies = list(db.session.scalars(select(CannedReply)))
    assert len(replies) >= 2 and all(r.owner_id is None for r in replies)
    assert {r.shortcut for r in replies} >= {"hi", "price"}
    [rule] = db.session.scalars(select(InvitationRule).where(InvitationRule.site_id == site.id))
    assert rule.active and rule.min_seconds_on_page == 30 and rule.message


@pytest.mark.parametrize("question, category", [
    ("代账一个月多少钱", "代账价格"), ("注册公司要多久", "注册公司"), ("每月几号前报税", "报税")])
def test_the_demo_knowledge_base_answers_prices_registration_and_deadlines(app, demo_agents, question, category):
    from app.services import chat_faq

    site = db.session.scalar(select(ChatSite).where(ChatSite.site_key == seed_demo_chat(app)))
    terms, hits = chat_faq.search(db.session, question, [site.id])
    assert hits[0].entry.category == category
    assert chat_faq.good_match(terms, hits[0])


def test_seeding_again_changes_nothing(app, demo_agents):
    first = seed_demo_chat(app)
    counts = [_count(m) for m in (ChatSite, AgentGroup, AgentProfile, CannedReply, InvitationRule)]

    assert seed_demo_chat(app) == first
    assert [_count(m) for m in (ChatSite, AgentGroup, AgentProfile, CannedReply, InvitationRule)] == counts
    assert find_demo_site(app).site_key == first


def test_the_configured_site_key_is_used(app, demo_agents):
    app.config["DEMO_SITE_KEY"] = "demo-key-for-tests"

    assert seed_demo_chat(app) == "demo-key-for-tests"
    assert find_demo_site(app).name == DEMO_SITE_NAME


def test_without_the_demo_agents_the_site_still_comes_up_with_an_empty_group(app):
    key = seed_demo_chat(app)

    site = db.session.scalar(select(ChatSite).where(ChatSite.site_key == key))
    [group] = db.session.scalars(select(AgentGroup).where(AgentGroup.site_id == site.id))
    assert group.agents == []
    assert _count(AgentProfile) == 0


def test_an_existing_agent_profile_is_kept_and_joins_the_group(app, demo_agents):
    user = app.appbuilder.sm.find_user(username="agent1")
    db.session.add(AgentProfile(user_id=user.id, display_name="老客服", max_chats=3))
    db.session.commit()

    seed_demo_chat(app)

    profile = db.session.scalar(select(AgentProfile).where(AgentProfile.user_id == user.id))
    assert profile.display_name == "老客服" and profile.max_chats == 3
    assert [g.name for g in profile.groups]


def test_another_demo_host_port_is_allowed_too():
    assert demo_origins(5001).splitlines() == ["http://127.0.0.1:5001", "http://localhost:5001"]
    assert "http://127.0.0.1:6123" in demo_origins(6123).splitlines()
    assert "http://127.0.0.1:5001" in demo_origins(6123).splitlines()
    assert demo_origins(0).splitlines() == ["http://127.0.0.1:5001", "http://localhost:5001"]


def test_seed_demo_returns_the_site_key(app, demo_agents):
    from app.services.demo import seed_demo

    result = seed_demo(app)

    assert result["site_key"] == find_demo_site(app).site_key


def test_a_start_on_another_demo_host_port_allows_that_port_too(app, demo_agents):
    from app.services.demo_chat import allow_demo_host

    site = db.session.scalar(select(ChatSite).where(ChatSite.site_key == seed_demo_chat(app)))
    site.allowed_origins += "\nhttps://www.example.cn"
    db.session.commit()

    assert allow_demo_host(app, site, 6123) == ["http://127.0.0.1:6123", "http://localhost:6123"]
    assert allow_demo_host(app, site, 6123) == []  # the next start on the same port changes nothing
    assert allow_demo_host(app, site, 0) == []

    db.session.expire_all()
    for origin in ("http://127.0.0.1:6123", "http://localhost:6123", "http://127.0.0.1:5001",
                   "https://www.example.cn"):
        assert chat_sites.origin_allowed(site, origin), origin
