"""Quick links (常用链接): the rules of an address a visitor may be sent, the list's API and screen
with their audit rows, and which links the console offers an agent (their sites and every site)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models.chat import AgentGroup, AgentProfile, ChatSite
from app.models.chat_topics import QuickLink
from app.models.security import AuditLog
from app.services import chat_links, chat_sites
from app.services.errors import ValidationFailed


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _site(name: str) -> ChatSite:
    site = chat_sites.prepare_new_site(ChatSite(name=name, allowed_origins="https://www.example.com"))
    db.session.add(site)
    db.session.commit()
    return site


def _link(title: str, url: str, site: ChatSite | None = None, active: bool = True, sort_order: int = 100) -> QuickLink:
    link = QuickLink(title=title, url=url, site_id=site.id if site else None, active=active, sort_order=sort_order)
    chat_links.validate_link(db.session, link)
    db.session.add(link)
    db.session.commit()
    return link


@pytest.fixture
def sites(app):
    return _site("上海站"), _site("杭州站")


@pytest.fixture
def links(sites):
    shanghai, hangzhou = sites
    return {"tax": _link("国家税务总局", "https://www.chinatax.gov.cn/", sort_order=10),
            "shanghai": _link("上海电子税务局", "https://etax.shanghai.chinatax.gov.cn/", shanghai),
            "hangzhou": _link("浙江电子税务局", "https://etax.zhejiang.chinatax.gov.cn/", hangzhou),
            "old": _link("旧价目表", "https://www.example.com/old-price", shanghai, active=False)}


@pytest.fixture
def agent_profile(sites, user_id):
    """The ``agent`` user serves the Shanghai site only."""
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小张",
                           groups=[AgentGroup(site_id=sites[0].id, name="上海客服")])
    db.session.add(profile)
    db.session.commit()
    return profile


# --- the rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "ftp://files.example.com/a",
    "//www.example.com/", "/price", "www.example.com", "https://", "http://exa mple.com/",
    "https://www.example.com/\u0001", "https://www.example.com/" + "a" * 2000, "", "http://[::1",
])
def test_an_address_a_visitor_may_not_be_sent_is_refused(app, url):
    with pytest.raises(ValidationFailed) as caught:
        chat_links.validate_link(db.session, QuickLink(title="链接", url=url))
    assert set(caught.value.errors) == {"url"}
    db.session.rollback()
    assert _count(QuickLink) == 0


def test_a_link_is_tidied_and_needs_a_title_and_an_existing_site(app, sites):
    link = QuickLink(title="  国家税务总局 ", url=" HTTPS://www.chinatax.gov.cn/ ")
    chat_links.validate_link(db.session, link)
    assert (link.title, link.url, link.active, link.sort_order) == ("国家税务总局", "HTTPS://www.chinatax.gov.cn/",
                                                                    True, 100)
    with pytest.raises(ValidationFailed) as caught:
        chat_links.validate_link(db.session, QuickLink(title=" ", url="https://a.example.com/", site_id=999999,
                                                       sort_order=-5))
    assert set(caught.value.errors) == {"title", "site_id", "sort_order"}


# --- the API and the screen ---------------------------------------------------------------------


def test_a_manager_keeps_links_over_the_api_with_audit_rows(app, api_token, sites):
    c, headers = app.test_client(), api_token("manager")
    response = c.post("/api/v1/quick_link/", headers=headers, json={
        "title": "个税 App", "url": "https://etax.chinatax.gov.cn/", "site_id": sites[0].id})
    assert response.status_code == 201, response.json
    pk = response.json["id"]
    assert c.get(f"/api/v1/quick_link/{pk}", headers=headers).json["result"]["site_id"] == sites[0].id
    assert c.put(f"/api/v1/quick_link/{pk}", headers=headers, json={"site_id": None}).status_code == 200
    assert db.session.get(QuickLink, pk).site_id is None
    assert c.delete(f"/api/v1/quick_link/{pk}", headers=headers).status_code == 200
    assert _count(QuickLink) == 0
    actions = list(db.session.scalars(select(AuditLog.action).where(AuditLog.object_type == "chat_quick_link")
                                      .order_by(AuditLog.id)))
    assert actions == ["create", "update", "delete"]


@pytest.mark.parametrize("body, field", [
    ({"title": "链接", "url": "javascript:alert(document.cookie)"}, "url"),
    ({"title": "链接", "url": "ftp://x.example.com/"}, "url"),
    ({"title": "", "url": "https://www.example.com/"}, "title"),
    ({"title": "链接"}, "url"),
    ({"title": "链接", "url": "https://www.example.com/", "site_id": 999999}, "site_id"),
    ({"title": "链接", "url": "https://www.example.com/", "site_id": 2**31}, "site_id"),
    ({"title": "链接", "url": "https://www.example.com/", "site": {"name": "新站点", "site_key": "k"}}, "site"),
    ({"title": "链接", "url": "https://www.example.com/", "sort_order": "first"}, "sort_order"),
    ({"title": "链接", "url": ["https://www.example.com/"]}, "url"),
])
def test_a_bad_link_is_a_4xx_naming_the_field_and_writes_nothing(app, api_token, sites, body, field):
    response = app.test_client().post("/api/v1/quick_link/", headers=api_token("manager"), json=body)
    assert 400 <= response.status_code < 500
    assert field in json.dumps(response.json)
    assert _count(QuickLink) == 0 and _count(ChatSite) == 2
    assert _count(AuditLog, AuditLog.object_type == "chat_quick_link") == 0


def test_agents_read_the_links_of_their_sites_and_write_none(app, api_token, links, agent_profile):
    c, agent = app.test_client(), api_token("agent")
    listed = c.get("/api/v1/quick_link/", headers=agent)
    assert listed.status_code == 200
    assert {row["title"] for row in listed.json["result"]} == {"国家税务总局", "上海电子税务局", "旧价目表"}
    assert c.get(f"/api/v1/quick_link/{links['hangzhou'].id}", headers=agent).status_code == 404
    body = {"title": "新链接", "url": "https://www.example.com/"}
    assert c.post("/api/v1/quick_link/", headers=agent, json=body).status_code == 403
    assert c.put(f"/api/v1/quick_link/{links['tax'].id}", headers=agent, json=body).status_code == 403
    assert c.delete(f"/api/v1/quick_link/{links['tax'].id}", headers=agent).status_code == 403
    assert c.get("/api/v1/quick_link/", headers=api_token("reviewer")).status_code == 403
    assert c.get("/api/v1/quick_link/", headers=api_token("manager")).json["count"] == 4
    assert _count(QuickLink) == 4


def test_a_manager_adds_a_link_on_the_screen_and_a_bad_address_is_refused(app, login_as, sites):
    manager = login_as("manager")
    response = manager.post("/quicklinkmodelview/add", data={
        "title": "服务与价格", "url": "https://www.example.com/services.html", "site": str(sites[0].id),
        "sort_order": "10", "active": "y"})
    assert response.status_code == 302
    link = db.session.scalar(select(QuickLink))
    assert (link.title, link.site_id, link.sort_order) == ("服务与价格", sites[0].id, 10)
    page = manager.post("/quicklinkmodelview/add", data={"title": "坏链接", "url": "javascript:alert(1)"},
                        follow_redirects=True).get_data(as_text=True)
    assert "http://" in page  # the rule is named
    assert _count(QuickLink) == 1
    agent_list = login_as("agent").get("/quicklinkmodelview/list/")
    assert agent_list.status_code == 200


# --- the console ------------------------------------------------------------------------------


def test_the_console_offers_an_agent_the_active_links_of_their_sites_and_every_site(app, login_as, links, sites,
                                                                                    agent_profile):
    agent = login_as("agent")
    found = agent.get("/chat/links/").json["links"]
    assert [link["title"] for link in found] == ["上海电子税务局", "国家税务总局"]  # the site's first
    assert found[0] == {"id": links["shanghai"].id, "title": "上海电子税务局",
                        "url": "https://etax.shanghai.chinatax.gov.cn/", "site_id": sites[0].id}
    assert [x["title"] for x in agent.get(f"/chat/links/?site_id={sites[0].id}").json["links"]] == [
        "上海电子税务局", "国家税务总局"]
    # a site the agent does not serve, or no site at all: only the links for every site
    for site_id in (sites[1].id, 999999, "abc", "-1"):
        assert [x["title"] for x in agent.get(f"/chat/links/?site_id={site_id}").json["links"]] == ["国家税务总局"]
    assert [x["title"] for x in agent.get("/chat/links/?q=上海").json["links"]] == ["上海电子税务局"]
    assert [x["title"] for x in agent.get("/chat/links/?q=ETAX.SHANGHAI").json["links"]] == ["上海电子税务局"]
    assert agent.get("/chat/links/?q=%25").json["links"] == []  # literal, not a wildcard
    assert agent.get("/chat/links/?q=" + "x" * 101).status_code == 422
    manager = login_as("manager").get("/chat/links/").json["links"]
    assert {x["title"] for x in manager} == {"国家税务总局", "上海电子税务局", "浙江电子税务局"}
    assert login_as("accountant").get("/chat/links/").status_code in (401, 403)
    assert app.test_client().get("/chat/links/").status_code in (401, 403)


def test_an_agent_without_a_profile_gets_only_the_links_for_every_site(app, login_as, links):
    assert [x["title"] for x in login_as("agent").get("/chat/links/").json["links"]] == ["国家税务总局"]
