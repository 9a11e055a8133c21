"""Canned replies (快捷回复: personal and shared, row rules, search, ``/shortcut`` expansion) and
invitations (主动邀请: automatic rules per site, manual invitations by an agent, the visitor's answer)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models.chat import (
    AgentGroup,
    AgentProfile,
    AgentStatus,
    CannedReply,
    ChatInvitation,
    ChatSite,
    Conversation,
    ConversationStatus,
    InvitationRule,
    InvitationStatus,
    PageView,
    Visitor,
)
from app.services import chat_sites, chat_tools
from app.services.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from app.services.users import create_user
from tests.conftest import PASSWORD
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"
NOW = datetime(2026, 11, 23, 8, 0, 0)


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def site(app):
    site = chat_sites.prepare_new_site(ChatSite(name="演示站点", allowed_origins=ORIGIN))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def agent_profile(app, site, user_id):
    group = AgentGroup(site_id=site.id, name="售前", is_default=True)
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=3,
                           status=AgentStatus.online, groups=[group])
    db.session.add_all([group, profile])
    db.session.commit()
    return profile


# --- canned replies: the rules ----------------------------------------------------------------


def _reply(owner_id, shortcut, text="您好，请问有什么可以帮您？", **kw) -> CannedReply:
    reply = CannedReply(owner_id=owner_id, shortcut=shortcut, text=text, **kw)
    chat_tools.validate_canned_reply(db.session, reply)
    db.session.add(reply)
    db.session.commit()
    return reply


@pytest.mark.parametrize("shortcut", ["", "a b", "a/b", "x" * 31, "问候!"])
def test_a_shortcut_is_letters_digits_underscore_or_dash(app, user_id, shortcut):
    with pytest.raises(ValidationFailed) as caught:
        _reply(user_id("agent"), shortcut)
    assert "shortcut" in caught.value.errors
    assert _count(CannedReply) == 0


def test_a_leading_slash_is_dropped_and_shortcuts_are_unique_per_owner_and_among_shared(app, user_id):
    mine = _reply(user_id("agent"), " /hello ")
    assert mine.shortcut == "hello"
    with pytest.raises(ValidationFailed, match="已被使用"):
        _reply(user_id("agent"), "HELLO")
    _reply(None, "hello")  # a shared one may use the same shortcut as someone's personal one
    with pytest.raises(ValidationFailed, match="已被使用"):
        _reply(None, "Hello")
    _reply(user_id("manager"), "hello")
    assert _count(CannedReply) == 3


def test_an_empty_text_is_refused(app, user_id):
    with pytest.raises(ValidationFailed) as caught:
        _reply(user_id("agent"), "empty", text="   ")
    assert list(caught.value.errors) == ["text"]


def test_search_finds_own_and_shared_replies_by_shortcut_prefix_title_or_text(app, user_id):
    _reply(user_id("agent"), "price", "代账每月 300 元起", title="报价")
    _reply(None, "hours", "我们的工作时间是 9:00-18:00", title="工作时间")
    _reply(user_id("manager"), "secret", "经理自己的")
    mine = user_id("agent")
    assert [r.shortcut for r in chat_tools.search_replies(db.session, mine)] == ["price", "hours"]
    assert [r.shortcut for r in chat_tools.search_replies(db.session, mine, "/pr")] == ["price"]
    assert [r.shortcut for r in chat_tools.search_replies(db.session, mine, "工作时间")] == ["hours"]
    assert [r.shortcut for r in chat_tools.search_replies(db.session, mine, "300")] == ["price"]
    assert chat_tools.search_replies(db.session, mine, "经理") == []
    assert chat_tools.search_replies(db.session, mine, "%") == []


def test_a_leading_shortcut_expands_and_a_personal_reply_wins(app, user_id):
    _reply(None, "hi", "您好（共享）")
    _reply(user_id("agent"), "hi", "您好，我是小张")
    _reply(None, "bye", "再见")
    mine = user_id("agent")
    assert chat_tools.expand(db.session, mine, "/hi") == "您好，我是小张"
    assert chat_tools.expand(db.session, user_id("manager"), "/hi") == "您好（共享）"
    assert chat_tools.expand(db.session, mine, "/bye 张先生") == "再见 张先生"
    assert chat_tools.expand(db.session, mine, "/nope") == "/nope"
    assert chat_tools.expand(db.session, mine, "see /hi") == "see /hi"


# --- canned replies: the screen ---------------------------------------------------------------


def _form(shortcut, text="您好", shared=False, **extra) -> dict:
    data = {"shortcut": shortcut, "title": "", "category": "", "text": text, **extra}
    if shared:
        data["shared"] = "y"
    return data


def test_an_agent_creates_personal_replies_but_cannot_share_one(app, login_as, user_id):
    agent = login_as("agent")
    agent.post("/cannedreplymodelview/add", data=_form("mine", "我的回复"))
    reply = db.session.scalar(select(CannedReply))
    assert (reply.shortcut, reply.owner_id) == ("mine", user_id("agent"))
    response = agent.post("/cannedreplymodelview/add", data=_form("shared", shared=True), follow_redirects=True)
    assert "Only a manager can share" in response.get_data(as_text=True) or "只有" in response.get_data(as_text=True)
    assert _count(CannedReply) == 1


def test_an_agent_sees_shared_and_own_replies_and_edits_only_their_own(app, login_as, user_id):
    shared = _reply(None, "shared", "共享回复")
    theirs = _reply(user_id("manager"), "theirs", "经理的回复")
    mine = _reply(user_id("agent"), "mine", "我的回复")
    agent = login_as("agent")
    page = agent.get("/cannedreplymodelview/list/").get_data(as_text=True)
    assert "shared" in page and "mine" in page and "theirs" not in page
    assert agent.get(f"/cannedreplymodelview/show/{theirs.id}").status_code == 404
    for reply in (shared, theirs):
        assert agent.get(f"/cannedreplymodelview/edit/{reply.id}").status_code == 404
        assert agent.post(f"/cannedreplymodelview/edit/{reply.id}", data=_form("hacked")).status_code == 404
        assert agent.post(f"/cannedreplymodelview/delete/{reply.id}").status_code == 404
    assert agent.post(f"/cannedreplymodelview/edit/{mine.id}", data=_form("mine2", "改过的")).status_code == 302
    db.session.expire_all()
    assert [(r.shortcut, r.text) for r in db.session.scalars(select(CannedReply).order_by(CannedReply.id))] == [
        ("shared", "共享回复"), ("theirs", "经理的回复"), ("mine2", "改过的")]
    agent.post(f"/cannedreplymodelview/delete/{mine.id}")
    assert _count(CannedReply) == 2


def test_an_agent_cannot_turn_their_reply_into_a_shared_one(app, login_as, user_id):
    mine = _reply(user_id("agent"), "mine", "我的回复")
    login_as("agent").post(f"/cannedreplymodelview/edit/{mine.id}", data=_form("mine", shared=True))
    db.session.expire_all()
    assert db.session.get(CannedReply, mine.id).owner_id == user_id("agent")


def test_a_manager_shares_replies_and_sees_everyones(app, login_as, user_id):
    _reply(user_id("agent"), "mine", "小张的回复")
    manager = login_as("manager")
    manager.post("/cannedreplymodelview/add", data=_form("welcome", "欢迎光临", shared=True))
    manager.post("/cannedreplymodelview/add", data=_form("welcome", "重复了", shared=True))
    assert _count(CannedReply, CannedReply.owner_id.is_(None)) == 1
    page = manager.get("/cannedreplymodelview/list/").get_data(as_text=True)
    assert "welcome" in page and "mine" in page


def test_the_console_search_returns_own_and_shared_replies_as_json(app, login_as, user_id):
    _reply(None, "hours", "我们的工作时间是 9:00-18:00", title="工作时间", category="常用")
    _reply(user_id("agent"), "price", "代账每月 300 元起")
    _reply(user_id("manager"), "boss", "经理的")
    agent = login_as("agent")
    body = agent.get("/chat/canned").get_json()
    assert [(r["shortcut"], r["shared"]) for r in body["replies"]] == [("price", False), ("hours", True)]
    [hit] = agent.get("/chat/canned?q=/ho").get_json()["replies"]
    assert (hit["title"], hit["category"], hit["text"]) == ("工作时间", "常用", "我们的工作时间是 9:00-18:00")
    assert app.test_client().get("/chat/canned").status_code == 401
    assert login_as("accountant").get("/chat/canned").status_code == 403


# --- invitation rules: the rules --------------------------------------------------------------


def _visitor_row(site, visits=1) -> Visitor:
    visitor = Visitor(site_id=site.id, uid=f"v-{time.monotonic_ns()}", visits=visits, online=True)
    db.session.add(visitor)
    db.session.commit()
    return visitor


def _page(visitor, url="https://www.example.com/pricing", seconds=0, referrer=None, keyword=None,
          minutes_ago=0) -> PageView:
    view = PageView(visitor_id=visitor.id, visit_no=visitor.visits, url=url, seconds=seconds, referrer=referrer,
                    keyword=keyword, started_at=NOW - timedelta(minutes=minutes_ago),
                    last_seen_at=NOW - timedelta(minutes=minutes_ago))
    db.session.add(view)
    db.session.commit()
    return view


def _rule(site, **kw) -> InvitationRule:
    rule = InvitationRule(site_id=site.id, name=kw.pop("name", "规则"), message=kw.pop("message", "需要帮助吗？"),
                          **kw)
    chat_tools.validate_rule(rule)
    db.session.add(rule)
    db.session.commit()
    return rule


def test_a_rule_needs_a_site_a_message_and_sane_numbers_and_patterns(app, site):
    rule = InvitationRule(name=" ", message="x" * 501, min_seconds_on_page=-1, min_page_views=-2,
                          url_pattern="*" * 501)
    with pytest.raises(ValidationFailed) as caught:
        chat_tools.validate_rule(rule)
    assert set(caught.value.errors) == {"site", "name", "message", "min_seconds_on_page", "min_page_views",
                                        "url_pattern"}


@pytest.mark.parametrize(("condition", "meets", "misses"), [
    ({"min_seconds_on_page": 30}, {"seconds": 30}, {"seconds": 29}),
    ({"url_pattern": "*/pricing*\n*/tax/*"}, {"url": "https://www.example.com/tax/vat"},
     {"url": "https://www.example.com/about"}),
    ({"referrer_pattern": "*baidu.com*"}, {"referrer": "https://www.baidu.com/s?wd=代账"},
     {"referrer": "https://www.bing.com/"}),
    ({"keyword_pattern": "代账"}, {"keyword": "北京代账公司"}, {"keyword": "注册公司"}),
    ({"returning_only": True}, {"visits": 2}, {"visits": 1}),
    ({"min_page_views": 2}, {"pages": 2}, {"pages": 1}),
])
def test_each_condition_of_a_rule_decides(app, site, condition, meets, misses):
    rule = _rule(site, **condition)
    for data, expected in ((meets, rule.id), (misses, None)):
        data = dict(data)
        visitor = _visitor_row(site, visits=data.pop("visits", 1))
        for earlier in range(data.pop("pages", 1) - 1):
            _page(visitor, url=f"https://www.example.com/p{earlier}", minutes_ago=5)
        page = _page(visitor, **data)
        found = chat_tools.matching_rule(db.session, visitor.id, page.id, NOW)
        assert (found.id if found else None) == expected, (condition, data)


def test_conditions_are_anded_and_the_first_rule_by_priority_wins(app, site):
    _rule(site, name="慢", priority=50, url_pattern="*/pricing*", min_seconds_on_page=60)
    quick = _rule(site, name="快", priority=80, url_pattern="*/pricing*")
    _rule(site, name="停用", priority=1, active=False)
    visitor = _visitor_row(site)
    page = _page(visitor, seconds=10)
    assert chat_tools.matching_rule(db.session, visitor.id, page.id, NOW).id == quick.id


def test_a_rule_invites_once_per_visit_and_never_during_a_conversation(app, site):
    rule = _rule(site, url_pattern="*/pricing*")
    visitor = _visitor_row(site)
    page = _page(visitor)
    first = chat_tools.invite_by_rule(db.session, visitor.id, page.id, now=NOW)
    assert (first.rule_id, first.text, first.visit_no, first.status) == (rule.id, "需要帮助吗？", 1,
                                                                          InvitationStatus.sent)
    assert chat_tools.invite_by_rule(db.session, visitor.id, _page(visitor).id, now=NOW) is None
    visitor.visits = 2  # a new visit: the rule may invite again
    db.session.commit()
    assert chat_tools.invite_by_rule(db.session, visitor.id, _page(visitor).id, now=NOW) is not None
    visitor.visits = 3
    db.session.add(Conversation(site_id=site.id, visitor_id=visitor.id, status=ConversationStatus.queued))
    db.session.commit()
    assert chat_tools.invite_by_rule(db.session, visitor.id, _page(visitor).id, now=NOW) is None
    assert _count(ChatInvitation) == 2


def test_another_visitors_page_view_invites_nobody(app, site):
    _rule(site)
    visitor, other = _visitor_row(site), _visitor_row(site)
    assert chat_tools.invite_by_rule(db.session, visitor.id, _page(other).id, now=NOW) is None
    assert _count(ChatInvitation) == 0


def test_the_rules_screen_is_for_managers_and_validates(app, login_as, site):
    manager = login_as("manager")
    form = {"site": str(site.id), "name": "定价页停留", "message": "需要报价吗？", "min_seconds_on_page": "30",
            "url_pattern": "*/pricing*", "priority": "10", "active": "y"}
    assert manager.post("/invitationrulemodelview/add", data=form).status_code == 302
    manager.post("/invitationrulemodelview/add", data={**form, "message": ""})
    [rule] = db.session.scalars(select(InvitationRule)).all()
    assert (rule.name, rule.min_seconds_on_page, rule.url_pattern) == ("定价页停留", 30, "*/pricing*")
    assert login_as("agent").get("/invitationrulemodelview/list/").status_code in (302, 403)


# --- invitations over the sockets -------------------------------------------------------------


def _widget(app, site, **auth):
    client = FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                               auth={"site_key": site.site_key, **auth}, flask_test_client=app.test_client())
    assert client.is_connected("/visitor")
    return client


def _console(app, login_as, username="agent"):
    client = FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as(username))
    assert client.is_connected("/agent")
    return client


def _visitor_of(client) -> Visitor:
    [session] = received(client, "session", "/visitor", 2.0)
    db.session.expire_all()
    return db.session.scalar(select(Visitor).where(Visitor.uid == session["visitor_id"]))


def test_a_page_view_that_meets_a_rule_pops_up_an_invitation(app, site, agent_profile, login_as):
    rule = _rule(site, name="定价页", message="需要报价吗？", url_pattern="*/pricing*")
    console = _console(app, login_as)
    widget = _widget(app, site)
    visitor = _visitor_of(widget)
    widget.emit("page_view", {"url": "https://www.example.com/about"}, namespace="/visitor", callback=True)
    assert received(widget, "invite", "/visitor", 0.3) == []
    widget.emit("page_view", {"url": "https://www.example.com/pricing"}, namespace="/visitor", callback=True)
    [invite] = received(widget, "invite", "/visitor", 2.0)
    assert (invite["text"], invite["agent_name"]) == ("需要报价吗？", None)
    [told] = received(console, "visitor_invited", "/agent", 2.0)
    assert (told["invitation_id"], told["visitor_id"], told["rule_name"]) == (invite["invitation_id"], visitor.id,
                                                                              "定价页")
    widget.emit("page_view", {"url": "https://www.example.com/pricing?again"}, namespace="/visitor", callback=True)
    assert received(widget, "invite", "/visitor", 0.3) == []
    assert _count(ChatInvitation, ChatInvitation.rule_id == rule.id) == 1


def test_a_heartbeat_after_enough_time_on_the_page_pops_up_an_invitation(app, site, agent_profile):
    _rule(site, min_seconds_on_page=20)
    widget = _widget(app, site)
    ack = widget.emit("page_view", {"url": "https://www.example.com/"}, namespace="/visitor", callback=True)
    assert received(widget, "invite", "/visitor", 0.3) == []
    view = db.session.get(PageView, ack["page_view_id"])
    view.last_seen_at -= timedelta(seconds=25)  # the visitor has been reading for a while
    db.session.commit()
    widget.emit("heartbeat", {}, namespace="/visitor", callback=True)
    [invite] = received(widget, "invite", "/visitor", 2.0)
    assert invite["text"] == "需要帮助吗？"


def test_an_agent_invites_a_browsing_visitor_who_accepts(app, site, agent_profile, login_as):
    console = _console(app, login_as)
    widget = _widget(app, site)
    visitor = _visitor_of(widget)
    ack = console.emit("invite", {"visitor_id": visitor.id, "text": "您好，需要帮忙吗？"}, namespace="/agent",
                       callback=True)
    [invite] = received(widget, "invite", "/visitor", 2.0)
    assert (invite["invitation_id"], invite["text"], invite["agent_name"]) == (ack["invitation_id"],
                                                                               "您好，需要帮忙吗？", "客服小张")
    answered = widget.emit("invite_response", {"invitation_id": ack["invitation_id"], "accepted": True},
                           namespace="/visitor", callback=True)
    conversation = db.session.scalar(select(Conversation).where(Conversation.visitor_id == visitor.id))
    assert answered == {"ok": True, "conversation_id": conversation.id}
    [answer] = received(console, "invite_response", "/agent", 2.0)
    assert answer == {"invitation_id": ack["invitation_id"], "visitor_id": visitor.id, "accepted": True,
                      "conversation_id": conversation.id, "agent_id": agent_profile.id}
    db.session.expire_all()
    invitation = db.session.get(ChatInvitation, ack["invitation_id"])
    assert (invitation.status, invitation.agent_id) == (InvitationStatus.accepted, agent_profile.id)


def test_a_blank_invitation_text_uses_the_sites_welcome_text(app, site, agent_profile, login_as):
    site.welcome_text = "欢迎咨询代账业务"
    db.session.commit()
    console = _console(app, login_as)
    visitor = _visitor_of(_widget(app, site))
    ack = console.emit("invite", {"visitor_id": visitor.id}, namespace="/agent", callback=True)
    assert db.session.get(ChatInvitation, ack["invitation_id"]).text == "欢迎咨询代账业务"


def test_a_visitor_cannot_answer_someone_elses_invitation(app, site, agent_profile, login_as):
    console = _console(app, login_as)
    invited = _visitor_of(_widget(app, site))
    ack = console.emit("invite", {"visitor_id": invited.id}, namespace="/agent", callback=True)
    stranger = _widget(app, site)
    answer = stranger.emit("invite_response", {"invitation_id": ack["invitation_id"], "accepted": False},
                           namespace="/visitor", callback=True)
    assert "error" in answer
    [error] = received(stranger, "error", "/visitor", 1.0)
    assert error["event"] == "invite_response" and "invitation_id" in error["errors"]
    db.session.expire_all()
    assert db.session.get(ChatInvitation, ack["invitation_id"]).status == InvitationStatus.sent


@pytest.mark.parametrize("payload", [{"invitation_id": "1", "accepted": True}, {"invitation_id": 1, "accepted": 1},
                                     None])
def test_a_malformed_invite_response_changes_nothing(app, site, payload):
    widget = _widget(app, site)
    answer = widget.emit("invite_response", payload, namespace="/visitor", callback=True)
    assert "error" in answer
    [error] = received(widget, "error", "/visitor", 1.0)
    assert error["event"] == "invite_response"


def test_manual_invitations_need_an_online_visitor_of_the_agents_site_and_valid_text(app, site, agent_profile,
                                                                                     user_id):
    visitor = _visitor_row(site)
    with pytest.raises(ValidationFailed):
        chat_tools.invite_manually(db.session, agent_profile, visitor.id, "x" * 501)
    with pytest.raises(ValidationFailed):
        chat_tools.invite_manually(db.session, agent_profile, "1", "你好")
    with pytest.raises(AccessDenied):
        chat_tools.invite_manually(db.session, None, visitor.id, "你好")
    other_site = chat_sites.prepare_new_site(ChatSite(name="别的站点", allowed_origins=ORIGIN))
    db.session.add(other_site)
    db.session.commit()
    with pytest.raises(NotFound):
        chat_tools.invite_manually(db.session, agent_profile, _visitor_row(other_site).id, "你好")
    visitor.online = False
    db.session.commit()
    with pytest.raises(Conflict):
        chat_tools.invite_manually(db.session, agent_profile, visitor.id, "你好")
    visitor.online = True
    db.session.add(Conversation(site_id=site.id, visitor_id=visitor.id, status=ConversationStatus.active))
    db.session.commit()
    with pytest.raises(Conflict):
        chat_tools.invite_manually(db.session, agent_profile, visitor.id, "你好")
    assert _count(ChatInvitation) == 0


def test_an_invitation_is_answered_once(app, site, agent_profile):
    visitor = _visitor_row(site)
    invitation = chat_tools.invite_manually(db.session, agent_profile, visitor.id, "你好")
    chat_tools.respond(db.session, visitor.id, invitation.id, False)
    assert chat_tools.respond(db.session, visitor.id, invitation.id, False).status == InvitationStatus.declined
    with pytest.raises(Conflict):
        chat_tools.respond(db.session, visitor.id, invitation.id, True)


def test_an_agent_of_another_site_cannot_invite_the_visitor(app, site, agent_profile, login_as):
    create_user(app, "agent2", PASSWORD, ["Agent"], first_name="agent2")
    other_site = chat_sites.prepare_new_site(ChatSite(name="别的站点", allowed_origins=ORIGIN))
    db.session.add(other_site)
    db.session.flush()
    group = AgentGroup(site_id=other_site.id, name="别处")
    stranger = AgentProfile(user_id=app.appbuilder.sm.find_user(username="agent2").id, display_name="小李",
                            groups=[group])
    db.session.add_all([group, stranger])
    db.session.commit()
    console = _console(app, login_as, "agent2")
    visitor = _visitor_of(_widget(app, site))
    answer = console.emit("invite", {"visitor_id": visitor.id}, namespace="/agent", callback=True)
    assert "error" in answer
    assert _count(ChatInvitation) == 0
