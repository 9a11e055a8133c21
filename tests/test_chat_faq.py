"""The chat knowledge base (机器人知识库): search ranking in Chinese and English, the entries' API and
screen, the agents' search from the console, the bot's answers while no agent serves the visitor,
转人工, and the unanswered questions."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models.chat import (
    AgentGroup,
    AgentProfile,
    AgentStatus,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationStatus,
    SenderType,
)
from app.models.chat_faq import FaqEntry, FaqTerm, FaqUnanswered
from app.models.security import AuditLog
from app.services import chat_faq, chat_sites
from app.services.errors import ValidationFailed
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"
PRICE = "代理记账的收费标准：小规模纳税人每月 300 元起，一般纳税人每月 800 元起。"
REGISTER = "注册公司一般 5 个工作日办结，需要法人身份证、注册地址证明和公司名称。"
DEADLINE = "增值税和附加税每月 15 日前申报，遇节假日顺延。"


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _entry(question: str, answer: str, keywords: str | None = None, site_id: int | None = None,
           active: bool = True, category: str | None = None) -> FaqEntry:
    entry = FaqEntry(question=question, answer=answer, keywords=keywords, site_id=site_id, active=active,
                     category=category)
    chat_faq.validate_entry(db.session, entry)
    db.session.add(entry)
    db.session.commit()
    return entry


@pytest.fixture
def site(app):
    site = chat_sites.prepare_new_site(ChatSite(name="知识库站点", allowed_origins=ORIGIN))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def kb(site):
    return {
        "price": _entry("代理记账多少钱一个月？", PRICE, "代账 价格 收费 费用 bookkeeping price cost", site.id,
                        category="价格"),
        "register": _entry("注册公司要多久，需要什么材料？", REGISTER, "注册 开公司 营业执照 register company"),
        "deadline": _entry("每个月几号之前报税？", DEADLINE, "报税 申报 截止 deadline tax filing", site.id),
    }


# --- terms and ranking ------------------------------------------------------------------------


def test_chinese_runs_become_character_pairs_and_latin_runs_whole_words():
    assert chat_faq.search_terms("代账Price 2026") == ["代账", "price", "2026"]
    assert chat_faq.search_terms("请问怎么报税？") == ["报税"]  # 请问 and 怎么 say nothing
    assert chat_faq.search_terms("你们的记账收费") == ["记账", "账收", "收费"]  # no pairs across 你们的
    assert chat_faq.search_terms("税？") == ["税"]  # a lone character when there is nothing else
    assert chat_faq.search_terms("ＡＢＣ") == ["abc"]  # full-width letters are plain letters
    assert chat_faq.search_terms(None) == []


@pytest.mark.parametrize("question, expected", [
    ("代账一个月多少钱", "price"),
    ("你们的记账收费怎么算", "price"),
    ("注册公司需要多长时间", "register"),
    ("报税截止是几号", "deadline"),
])
def test_a_chinese_question_finds_its_entry_first(kb, site, question, expected):
    terms, hits = chat_faq.search(db.session, question, [site.id])
    assert hits[0].entry.id == kb[expected].id
    assert chat_faq.good_match(terms, hits[0])


@pytest.mark.parametrize("question, expected", [
    ("How much does bookkeeping cost?", "price"),
    ("register a company", "register"),
    ("tax filing deadline", "deadline"),
])
def test_an_english_question_finds_its_entry_first(kb, site, question, expected):
    terms, hits = chat_faq.search(db.session, question, [site.id])
    assert hits[0].entry.id == kb[expected].id
    assert chat_faq.good_match(terms, hits[0])


def test_the_question_and_keywords_weigh_more_than_the_answer(site):
    in_answer = _entry("发票怎么开？", "发票可以在电子税务局开具，也可以找我们代开。", site_id=site.id)
    in_question = _entry("电子税务局怎么登录？", "用法人手机号和密码登录。", site_id=site.id)
    _, hits = chat_faq.search(db.session, "电子税务局", [site.id])
    assert [hit.entry.id for hit in hits] == [in_question.id, in_answer.id]
    assert hits[0].score > hits[1].score


def test_a_search_sees_its_sites_and_every_site_entries_but_not_inactive_ones(kb, site):
    other = chat_sites.prepare_new_site(ChatSite(name="别的站点", allowed_origins="https://b.example.com"))
    db.session.add(other)
    db.session.commit()
    _entry("代账报价单", "别的站点的价格。", "代账 价格", other.id)
    _entry("代账优惠活动", "已下线。", "代账 价格", site.id, active=False)
    _, hits = chat_faq.search(db.session, "代账价格", [site.id])
    assert [hit.entry.id for hit in hits] == [kb["price"].id]
    _, hits = chat_faq.search(db.session, "注册公司", [other.id])  # an entry for every site
    assert [hit.entry.id for hit in hits] == [kb["register"].id]


def test_a_weak_match_is_not_good_enough_for_the_bot(kb, site):
    terms, hits = chat_faq.search(db.session, "你们公司在哪里，周末上班吗", [site.id])
    assert not hits or not chat_faq.good_match(terms, hits[0])


def test_bad_entries_are_refused_with_every_problem_and_nothing_written(site):
    entry = FaqEntry(question="  ", answer="x" * 2001, keywords="k" * 201, category="c" * 51, site_id=999999)
    with pytest.raises(ValidationFailed) as caught:
        chat_faq.validate_entry(db.session, entry)
    assert set(caught.value.errors) == {"question", "answer", "keywords", "category", "site_id"}
    db.session.rollback()
    assert _count(FaqEntry) == 0 and _count(FaqTerm) == 0


def test_editing_an_entry_rebuilds_its_terms(kb, site):
    entry = kb["deadline"]
    entry.question, entry.keywords = "个税汇算什么时候", "汇算"
    chat_faq.validate_entry(db.session, entry)
    db.session.commit()
    terms = set(db.session.scalars(select(FaqTerm.term).where(FaqTerm.faq_id == entry.id)))
    assert {"个税", "汇算"} <= terms and "报税" not in terms
    _, hits = chat_faq.search(db.session, "报税截止", [site.id])
    assert entry.id not in [hit.entry.id for hit in hits]


# --- the API ------------------------------------------------------------------------------------


def test_a_manager_creates_changes_and_deletes_entries_over_the_api_with_audit_rows(app, api_token, site):
    c, headers = app.test_client(), api_token("manager")
    response = c.post("/api/v1/faq/", headers=headers, json={
        "question": "社保怎么交？", "answer": "每月 15 日前在税务系统申报缴纳。", "keywords": "社保 五险",
        "category": "社保", "site_id": site.id})
    assert response.status_code == 201, response.json
    pk = response.json["id"]
    assert c.get(f"/api/v1/faq/{pk}", headers=headers).json["result"]["site_id"] == site.id
    _, hits = chat_faq.search(db.session, "社保", [site.id])
    assert [hit.entry.id for hit in hits] == [pk]
    response = c.put(f"/api/v1/faq/{pk}", headers=headers, json={"question": "公积金怎么交？", "keywords": "公积金"})
    assert response.status_code == 200, response.json
    _, hits = chat_faq.search(db.session, "公积金", [site.id])
    assert [hit.entry.id for hit in hits] == [pk]
    assert c.delete(f"/api/v1/faq/{pk}", headers=headers).status_code == 200
    assert _count(FaqEntry) == 0 and _count(FaqTerm) == 0
    actions = list(db.session.scalars(select(AuditLog.action).where(AuditLog.object_type == "chat_faq")
                                      .order_by(AuditLog.id)))
    assert actions == ["create", "update", "delete"]


def test_agents_read_entries_and_nobody_else_writes_them(app, api_token, kb):
    c = app.test_client()
    agent = api_token("agent")
    listed = c.get("/api/v1/faq/", headers=agent)
    assert listed.status_code == 200
    assert {row["question"] for row in listed.json["result"]} == {e.question for e in kb.values()}
    body = {"question": "新问题", "answer": "新答案"}
    assert c.post("/api/v1/faq/", headers=agent, json=body).status_code == 403
    assert c.put(f"/api/v1/faq/{kb['price'].id}", headers=agent, json=body).status_code == 403
    assert c.delete(f"/api/v1/faq/{kb['price'].id}", headers=agent).status_code == 403
    assert c.get("/api/v1/faq/", headers=api_token("accountant")).status_code == 403
    assert c.get("/api/v1/faq/").status_code == 401
    assert _count(FaqEntry) == 3


@pytest.mark.parametrize("body, field", [
    ({"question": "", "answer": "有答案"}, "question"),
    ({"question": "   ", "answer": "有答案"}, "question"),
    ({"question": "有问题", "answer": ""}, "answer"),
    ({"question": "有问题", "answer": "x" * 2001}, "answer"),
    ({"question": "有问题", "answer": "有答案", "site_id": 999999}, "site_id"),
    ({"question": "有问题", "answer": "有答案", "site_id": "abc"}, "site_id"),
    ({"question": "有问题", "answer": "有答案", "site_id": -355687428096001}, "site_id"),  # beyond 32 bits
    ({"question": "有问题", "answer": "有答案", "site_id": 2**31}, "site_id"),
    ({"question": "有问题", "answer": "有答案", "site": {"name": "新站点", "site_key": "k"}}, "site"),
    ({"question": "有问题", "answer": "有答案", "active": "maybe"}, "active"),
    ({"question": ["列表"], "answer": "有答案"}, "question"),
])
def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(app, api_token, site, body, field):
    response = app.test_client().post("/api/v1/faq/", headers=api_token("manager"), json=body)
    assert 400 <= response.status_code < 500
    assert field in json.dumps(response.json)
    assert _count(FaqEntry) == 0 and _count(FaqTerm) == 0 and _count(ChatSite) == 1
    assert _count(AuditLog, AuditLog.object_type == "chat_faq") == 0


def test_a_bad_change_keeps_the_entry_as_it_was(app, api_token, kb):
    pk = kb["price"].id
    response = app.test_client().put(f"/api/v1/faq/{pk}", headers=api_token("manager"), json={"answer": " "})
    assert response.status_code == 422
    db.session.expire_all()
    assert db.session.get(FaqEntry, pk).answer == PRICE


# --- the screens --------------------------------------------------------------------------------


def test_a_manager_adds_an_entry_on_the_screen_and_an_agent_only_reads(app, login_as, site):
    manager = login_as("manager")
    response = manager.post("/faqentrymodelview/add", data={
        "question": "零申报可以吗？", "answer": "没有收入也要按期零申报。", "keywords": "零申报", "category": "报税",
        "site": str(site.id), "active": "y"})
    assert response.status_code == 302
    entry = db.session.scalar(select(FaqEntry))
    assert (entry.question, entry.site_id) == ("零申报可以吗？", site.id)
    assert _count(FaqTerm, FaqTerm.faq_id == entry.id) > 0
    agent = login_as("agent")
    assert "零申报可以吗？" in agent.get("/faqentrymodelview/list/").get_data(as_text=True)
    assert agent.get("/faqentrymodelview/add").status_code in (302, 403)
    agent.post(f"/faqentrymodelview/delete/{entry.id}")
    assert _count(FaqEntry) == 1


def test_a_refused_entry_on_the_screen_says_why_and_writes_nothing(app, login_as, site):
    page = login_as("manager").post("/faqentrymodelview/add", data={"question": "没答案", "answer": "  "},
                                    follow_redirects=True).get_data(as_text=True)
    assert "answer" in page or "答案" in page
    assert _count(FaqEntry) == 0


# --- sockets ------------------------------------------------------------------------------------


def _widget(app, site):
    client = FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                               auth={"site_key": site.site_key}, flask_test_client=app.test_client())
    assert client.is_connected("/visitor")
    return client


def _console(app, login_as, username="agent"):
    client = FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as(username))
    assert client.is_connected("/agent")
    return client


@pytest.fixture
def agent_profile(site, user_id):
    group = AgentGroup(site_id=site.id, name="咨询", is_default=True)
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小李", max_chats=3,
                           status=AgentStatus.offline, groups=[group])
    db.session.add_all([group, profile])
    db.session.commit()
    return profile


def _say(widget, text: str, client_msg_id: str = "m1") -> dict:
    ack = widget.emit("message", {"client_msg_id": client_msg_id, "text": text}, namespace="/visitor", callback=True)
    assert "id" in ack, ack
    return ack


def _bot_messages(widget, wait: float = 2.0) -> list[dict]:
    return [m for m in received(widget, "message", "/visitor", wait) if m.get("sender_type") == "bot"]


def test_with_no_agent_online_the_bot_answers_a_question_it_knows(app, site, kb, agent_profile):
    widget = _widget(app, site)
    [session] = received(widget, "session", "/visitor", 2.0)
    assert session["online"] is False
    ack = _say(widget, "代账一个月多少钱？")
    [bot] = _bot_messages(widget)
    assert (bot["text"], bot["conversation_id"]) == (PRICE, ack["conversation_id"])
    stored = db.session.scalar(select(ChatMessage).where(ChatMessage.sender_type == SenderType.bot))
    assert (stored.id, stored.text) == (bot["id"], PRICE)
    assert db.session.get(Conversation, ack["conversation_id"]).status == ConversationStatus.queued
    assert _count(FaqUnanswered) == 0


def test_a_question_without_a_good_answer_gets_no_bot_message_and_is_recorded(app, site, kb, agent_profile):
    widget = _widget(app, site)
    _say(widget, "你们周末营业吗？")
    assert _bot_messages(widget, 0.5) == []
    from app.sockets.fanout import fanout
    assert fanout.idle(5)
    assert _count(ChatMessage, ChatMessage.sender_type == SenderType.bot) == 0
    [row] = db.session.scalars(select(FaqUnanswered)).all()
    assert (row.question, row.site_id) == ("你们周末营业吗？", site.id)


def test_after_asking_for_a_person_the_chat_stays_queued_and_the_bot_is_quiet(app, site, kb, agent_profile):
    widget = _widget(app, site)
    ack = _say(widget, "代账一个月多少钱？")
    assert len(_bot_messages(widget)) == 1
    told = widget.emit("handoff", {}, namespace="/visitor", callback=True)
    assert told == {"conversation_id": ack["conversation_id"], "online": False}
    lines = [m for m in received(widget, "message", "/visitor", 2.0) if m.get("sender_type") == "system"]
    assert any("留言" in m["text"] or "leave a message" in m["text"] for m in lines)
    _say(widget, "注册公司需要什么材料", "m2")
    assert _bot_messages(widget, 0.5) == []
    from app.sockets.fanout import fanout
    assert fanout.idle(5)
    assert _count(ChatMessage, ChatMessage.sender_type == SenderType.bot) == 1
    assert db.session.get(Conversation, ack["conversation_id"]).status == ConversationStatus.queued


def test_the_bot_stays_quiet_when_an_agent_takes_the_chat(app, site, kb, agent_profile, login_as):
    console = _console(app, login_as)
    console.emit("status", {"status": "online"}, namespace="/agent", callback=True)
    widget = _widget(app, site)
    _say(widget, "代账一个月多少钱？")
    assert received(console, "chat_offer", "/agent", 2.0)
    from app.sockets.fanout import fanout
    assert fanout.idle(5)
    assert _count(ChatMessage, ChatMessage.sender_type == SenderType.bot) == 0


def test_a_handoff_without_a_chat_is_refused(app, site):
    widget = _widget(app, site)
    ack = widget.emit("handoff", {}, namespace="/visitor", callback=True)
    assert "error" in ack


def test_an_agent_searches_the_knowledge_base_from_the_console(app, site, kb, agent_profile, login_as):
    console = _console(app, login_as)
    ack = console.emit("faq_search", {"q": "报税截止"}, namespace="/agent", callback=True)
    assert ack["results"][0] == {"id": kb["deadline"].id, "question": kb["deadline"].question, "answer": DEADLINE,
                                 "category": None, "site_id": site.id}
    assert console.emit("faq_search", {"q": "毫不相干"}, namespace="/agent", callback=True) == {"results": []}


@pytest.mark.parametrize("payload", [{}, {"q": ""}, {"q": "   "}, {"q": 5}, {"q": "x" * 101}, {"q": ["报税"]}, "报税"])
def test_bad_search_payloads_are_refused(app, site, kb, agent_profile, login_as, payload):
    console = _console(app, login_as)
    ack = console.emit("faq_search", payload, namespace="/agent", callback=True)
    assert "error" in ack and "results" not in ack


def test_the_search_results_are_limited(app, site, agent_profile, login_as):
    for i in range(15):
        _entry(f"报税问题{i}", f"答案{i}", "报税", site.id)
    console = _console(app, login_as)
    ack = console.emit("faq_search", {"q": "报税"}, namespace="/agent", callback=True)
    assert len(ack["results"]) == chat_faq.SEARCH_LIMIT


# --- unanswered questions -----------------------------------------------------------------------


def test_managers_see_unanswered_questions_counted_with_a_link_to_a_new_entry(app, login_as, site):
    for text in ("周末营业吗", "周末营业吗", "  周末营业吗 ", "可以开发票吗"):
        db.session.add(FaqUnanswered(site_id=site.id, question=text.strip(), question_key=text.strip()))
    db.session.commit()
    page = login_as("manager").get("/chat/faq/unanswered/").get_data(as_text=True)
    assert page.index("周末营业吗") < page.index("可以开发票吗")
    assert '<td class="count">3</td>' in page
    link = f"/faqentrymodelview/add?question=%E5%91%A8%E6%9C%AB%E8%90%A5%E4%B8%9A%E5%90%97&amp;site_id={site.id}"
    assert link in page
    form = login_as("manager").get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert 'value="周末营业吗"' in form
    assert login_as("agent").get("/chat/faq/unanswered/").status_code in (302, 403)


def test_retention_deletes_old_unanswered_questions(app, site):
    from datetime import timedelta

    from app.models.base import utcnow
    from app.services.chat_retention import apply_retention

    old, new = utcnow() - timedelta(days=200), utcnow()
    db.session.add_all([FaqUnanswered(site_id=site.id, question="旧问题", question_key="旧问题", created_at=old),
                        FaqUnanswered(site_id=site.id, question="新问题", question_key="新问题", created_at=new)])
    db.session.commit()
    assert apply_retention(db.session, 180).unanswered_deleted == 1
    assert list(db.session.scalars(select(FaqUnanswered.question))) == ["新问题"]
