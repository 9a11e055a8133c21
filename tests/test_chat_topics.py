"""Conversation topics (对话主题): the managed list (rules, screen, API, audit), agents filing a chat
under topics from the console (``set_topics``, fanned out to the others in the chat), and the
history's topic filter."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models.chat import (
    AgentGroup,
    AgentProfile,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationStatus,
    SenderType,
    Visitor,
)
from app.models.chat_topics import ChatTopic, conversation_topic
from app.models.security import AuditLog
from app.services import chat_inbox, chat_sites, chat_topics
from app.services.errors import NotFound, ValidationFailed
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _links() -> int:
    return db.session.scalar(select(func.count()).select_from(conversation_topic))


def _topic(name: str, active: bool = True, sort_order: int = 100) -> ChatTopic:
    topic = ChatTopic(name=name, active=active, sort_order=sort_order)
    chat_topics.validate_topic(db.session, topic)
    db.session.add(topic)
    db.session.commit()
    return topic


def _site(name: str) -> ChatSite:
    site = chat_sites.prepare_new_site(ChatSite(name=name, allowed_origins="https://www.example.com"))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def topics(app):
    return {name: _topic(name, sort_order=i) for i, name in enumerate(("代理记账咨询", "报税问题", "发票", "投诉"))}


@pytest.fixture
def site(app):
    return _site("主题站点")


@pytest.fixture
def agent_profile(site, user_id):
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小张",
                           groups=[AgentGroup(site_id=site.id, name="售前")])
    db.session.add(profile)
    db.session.commit()
    return profile


def _conversation(site: ChatSite, agent: AgentProfile | None = None, status=ConversationStatus.active,  # noqa: ANN001
                  text: str = "你好，想问报税", started: datetime = datetime(2026, 11, 20, 2, 0)) -> Conversation:
    visitor = Visitor(site_id=site.id, uid=f"v-{_count(Visitor) + 1}-{site.id}")
    db.session.add(visitor)
    db.session.flush()
    conversation = Conversation(site_id=site.id, visitor_id=visitor.id, agent_id=agent.id if agent else None,
                                status=status, queued_at=started, accepted_at=started)
    db.session.add(conversation)
    db.session.flush()
    db.session.add(ChatMessage(conversation_id=conversation.id, sender_type=SenderType.visitor, text=text))
    db.session.commit()
    return conversation


def _console(app, login_as, username: str = "agent") -> FreshSocketClient:
    client = FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as(username))
    assert client.is_connected("/agent")
    return client


def _set(client, payload) -> dict:  # noqa: ANN001
    return client.emit("set_topics", payload, namespace="/agent", callback=True)


# --- the list of topics -----------------------------------------------------------------------


def test_a_topic_needs_a_unique_name_of_at_most_50_characters_and_a_sort_order(app, topics):
    for name in ("", "   ", "x" * 51, "报税\n问题"):
        with pytest.raises(ValidationFailed) as caught:
            chat_topics.validate_topic(db.session, ChatTopic(name=name))
        assert set(caught.value.errors) == {"name"}
    with pytest.raises(ValidationFailed) as caught:
        chat_topics.validate_topic(db.session, ChatTopic(name=" 报税问题 "))  # the same name, blanks aside
    assert "报税问题" in caught.value.message
    with pytest.raises(ValidationFailed) as caught:
        chat_topics.validate_topic(db.session, ChatTopic(name="新主题", sort_order=-1, description="d" * 201))
    assert set(caught.value.errors) == {"sort_order", "description"}
    db.session.rollback()
    assert _count(ChatTopic) == 4


def test_a_manager_keeps_topics_over_the_api_with_audit_rows(app, api_token):
    c, headers = app.test_client(), api_token("manager")
    response = c.post("/api/v1/chat_topic/", headers=headers, json={"name": "工商注册", "sort_order": 40})
    assert response.status_code == 201, response.json
    pk = response.json["id"]
    assert c.get(f"/api/v1/chat_topic/{pk}", headers=headers).json["result"]["name"] == "工商注册"
    assert c.put(f"/api/v1/chat_topic/{pk}", headers=headers, json={"name": "工商变更"}).status_code == 200
    assert c.delete(f"/api/v1/chat_topic/{pk}", headers=headers).status_code == 200
    assert _count(ChatTopic) == 0
    actions = list(db.session.scalars(select(AuditLog.action).where(AuditLog.object_type == "chat_topic")
                                      .order_by(AuditLog.id)))
    assert actions == ["create", "update", "delete"]


def test_agents_read_topics_and_nobody_else_writes_them(app, api_token, topics):
    c, agent = app.test_client(), api_token("agent")
    listed = c.get("/api/v1/chat_topic/", headers=agent)
    assert listed.status_code == 200
    assert {row["name"] for row in listed.json["result"]} == set(topics)
    topic = topics["发票"]
    assert c.post("/api/v1/chat_topic/", headers=agent, json={"name": "新主题"}).status_code == 403
    assert c.put(f"/api/v1/chat_topic/{topic.id}", headers=agent, json={"name": "改名"}).status_code == 403
    assert c.delete(f"/api/v1/chat_topic/{topic.id}", headers=agent).status_code == 403
    assert c.get("/api/v1/chat_topic/", headers=api_token("accountant")).status_code == 403
    assert c.get("/api/v1/chat_topic/").status_code == 401
    assert _count(ChatTopic) == 4 and db.session.get(ChatTopic, topic.id).name == "发票"


@pytest.mark.parametrize("body, field", [
    ({"name": ""}, "name"),
    ({"name": "x" * 51}, "name"),
    ({"name": "报税问题"}, "name"),  # taken
    ({"name": "新主题", "sort_order": -1}, "sort_order"),
    ({"name": "新主题", "sort_order": "abc"}, "sort_order"),
    ({"name": "新主题", "active": "maybe"}, "active"),
    ({"name": ["列表"]}, "name"),
])
def test_a_bad_topic_is_a_4xx_naming_the_field_and_writes_nothing(app, api_token, topics, body, field):
    response = app.test_client().post("/api/v1/chat_topic/", headers=api_token("manager"), json=body)
    assert 400 <= response.status_code < 500
    assert field in json.dumps(response.json)
    assert _count(ChatTopic) == 4
    assert _count(AuditLog, AuditLog.object_type == "chat_topic") == 4  # the fixture's creations only


def test_a_topic_in_use_is_not_deleted_but_can_be_deactivated(app, api_token, login_as, topics, site):
    conversation = _conversation(site, status=ConversationStatus.closed)
    db.session.execute(conversation_topic.insert().values(conversation_id=conversation.id,
                                                          topic_id=topics["投诉"].id))
    db.session.commit()
    c, headers = app.test_client(), api_token("manager")
    response = c.delete(f"/api/v1/chat_topic/{topics['投诉'].id}", headers=headers)
    assert response.status_code == 409
    assert "1" in response.json["message"]
    login_as("manager").post(f"/chattopicmodelview/delete/{topics['投诉'].id}")
    assert _count(ChatTopic) == 4 and _links() == 1
    assert c.put(f"/api/v1/chat_topic/{topics['投诉'].id}", headers=headers, json={"active": False}).status_code == 200
    assert "投诉" not in [t["name"] for t in chat_topics.active_topics(db.session)]
    assert chat_topics.topics_of(db.session, [conversation.id]) == {
        conversation.id: [{"id": topics["投诉"].id, "name": "投诉"}]}  # the history keeps it


def test_a_manager_adds_a_topic_on_the_screen_and_an_agent_only_reads(app, login_as):
    manager = login_as("manager")
    response = manager.post("/chattopicmodelview/add", data={"name": "社保", "sort_order": "50", "active": "y"})
    assert response.status_code == 302
    topic = db.session.scalar(select(ChatTopic))
    assert (topic.name, topic.sort_order, topic.active) == ("社保", 50, True)
    agent = login_as("agent")
    assert "社保" in agent.get("/chattopicmodelview/list/").get_data(as_text=True)
    assert agent.get("/chattopicmodelview/add").status_code in (302, 403)
    agent.post(f"/chattopicmodelview/delete/{topic.id}")
    assert _count(ChatTopic) == 1


# --- filing a chat under topics -----------------------------------------------------------------


def test_the_owner_sets_topics_the_watching_supervisor_hears_and_it_is_audited(
        app, login_as, topics, site, agent_profile):
    conversation = _conversation(site, agent_profile)
    boss = _console(app, login_as, "manager")
    assert "messages" in boss.emit("watch", {"conversation_id": conversation.id}, namespace="/agent", callback=True)
    boss.get_received("/agent")
    owner = _console(app, login_as)
    wanted = [topics["报税问题"].id, topics["代理记账咨询"].id]
    ack = _set(owner, {"conversation_id": conversation.id, "topic_ids": wanted})
    expected = [{"id": topics[name].id, "name": name} for name in ("代理记账咨询", "报税问题")]
    assert ack == {"conversation_id": conversation.id, "topics": expected}  # in the list's order
    assert received(boss, "topics", "/agent", 2.0) == [{"conversation_id": conversation.id, "topics": expected}]
    assert received(owner, "topics", "/agent", 0.2) == []  # the sender has the ack
    [row] = db.session.scalars(select(AuditLog).where(AuditLog.action == "chat_topics")).all()
    assert (row.object_type, row.object_id, row.username) == ("chat_conversation", str(conversation.id), "agent")
    assert json.loads(row.changes) == {"topics": [[], ["代理记账咨询", "报税问题"]]}

    assert _set(owner, {"conversation_id": conversation.id, "topic_ids": wanted[::-1]})["topics"] == expected
    assert _count(AuditLog, AuditLog.action == "chat_topics") == 1  # the same topics again: nothing written
    ack = _set(owner, {"conversation_id": conversation.id, "topic_ids": [topics["发票"].id]})
    assert ack["topics"] == [{"id": topics["发票"].id, "name": "发票"}]
    assert _links() == 1 and _count(AuditLog, AuditLog.action == "chat_topics") == 2
    assert _set(owner, {"conversation_id": conversation.id, "topic_ids": []})["topics"] == []
    assert _links() == 0


def test_a_closed_chat_keeps_an_inactive_topic_but_gets_no_new_inactive_one(app, login_as, topics, site,
                                                                              agent_profile):
    conversation = _conversation(site, agent_profile, status=ConversationStatus.closed)
    owner = _console(app, login_as)
    keep, retired = topics["投诉"], topics["发票"]
    assert _set(owner, {"conversation_id": conversation.id, "topic_ids": [keep.id]})["topics"][0]["name"] == "投诉"
    keep.active = retired.active = False
    db.session.commit()
    ack = _set(owner, {"conversation_id": conversation.id, "topic_ids": [keep.id, topics["发票"].id]})
    assert "topic_ids" in ack["errors"] and str(retired.id) in ack["error"]
    assert _set(owner, {"conversation_id": conversation.id, "topic_ids": [keep.id]})["topics"][0]["name"] == "投诉"
    assert chat_topics.topics_of(db.session, [conversation.id])[conversation.id] == [{"id": keep.id, "name": "投诉"}]


@pytest.mark.parametrize("payload, field", [
    ({"conversation_id": "1", "topic_ids": []}, "conversation_id"),
    ({"conversation_id": 2**31, "topic_ids": []}, "conversation_id"),
    ({"conversation_id": 2**64 + 1, "topic_ids": []}, "conversation_id"),
    ({"conversation_id": True, "topic_ids": []}, "conversation_id"),
    ({"conversation_id": 1.5, "topic_ids": []}, "conversation_id"),
    ({"conversation_id": None, "topic_ids": "1,2"}, "topic_ids"),
    ({"conversation_id": None, "topic_ids": {"id": 1}}, "topic_ids"),
    ({"conversation_id": None, "topic_ids": ["1"]}, "topic_ids"),
    ({"conversation_id": None, "topic_ids": [True]}, "topic_ids"),
    ({"conversation_id": None, "topic_ids": [0]}, "topic_ids"),
    ({"conversation_id": None, "topic_ids": [2**63]}, "topic_ids"),
    ({"conversation_id": None, "topic_ids": [1.0]}, "topic_ids"),
    ({"conversation_id": None, "topic_ids": list(range(1, 12))}, "topic_ids"),
    ({"conversation_id": None, "topic_ids": [], "note": "a\u0000b"}, "note"),
    ({"conversation_id": None}, "topic_ids"),  # required: a list, [] to clear
    ({"conversation_id": None, "topic_ids": [999999]}, "topic_ids"),  # no such topic
])
def test_bad_set_topics_payloads_are_refused_and_nothing_is_written(app, login_as, topics, site, agent_profile,
                                                                     payload, field):
    conversation = _conversation(site, agent_profile)
    payload = {**payload, "conversation_id": payload["conversation_id"] or conversation.id}
    owner = _console(app, login_as)
    ack = _set(owner, payload)
    assert field in ack["errors"], ack
    [error] = [e["args"][0] for e in owner.get_received("/agent") if e["name"] == "error"]
    assert error["event"] == "set_topics" and field in error["errors"]
    assert _links() == 0 and _count(AuditLog, AuditLog.action == "chat_topics") == 0


def test_an_agent_cannot_file_a_conversation_that_is_not_theirs(app, login_as, topics, site, agent_profile,
                                                               user_id):
    other_agent = AgentProfile(user_id=user_id("admin"), display_name="别的客服")
    db.session.add(other_agent)
    db.session.commit()
    theirs = _conversation(site, other_agent)  # same site, another agent's chat
    # (a queued chat of the agent's own site would be offered to them as they connect: theirs then)
    queued = _conversation(_site("别的站点"), None, status=ConversationStatus.queued)
    owner = _console(app, login_as)
    for conversation_id in (theirs.id, queued.id, 987654):
        ack = _set(owner, {"conversation_id": conversation_id, "topic_ids": [topics["投诉"].id]})
        assert "conversation_id" in ack["errors"], ack
    with pytest.raises(NotFound):  # nor anyone without chat rights calling the service
        chat_topics.set_topics(db.session, theirs.id, [topics["投诉"].id], user_id("accountant"), False)
    assert _links() == 0 and _count(AuditLog, AuditLog.action == "chat_topics") == 0


def test_a_supervisor_files_any_conversation(app, login_as, topics, site, agent_profile):
    conversation = _conversation(site, agent_profile, status=ConversationStatus.closed)
    boss = _console(app, login_as, "manager")
    ack = _set(boss, {"conversation_id": conversation.id, "topic_ids": [topics["投诉"].id]})
    assert ack["topics"] == [{"id": topics["投诉"].id, "name": "投诉"}]
    assert db.session.scalar(select(AuditLog.username).where(AuditLog.action == "chat_topics")) == "manager"


def test_the_console_state_offers_the_active_topics_and_shows_each_chats_topics(app, login_as, topics, site,
                                                                                 agent_profile):
    conversation = _conversation(site, agent_profile)
    chat_topics.set_topics(db.session, conversation.id, [topics["发票"].id], None, True)
    topics["投诉"].active = False
    db.session.commit()
    state = login_as("agent").get("/chat/console/state").json
    assert [t["name"] for t in state["topics"]] == ["代理记账咨询", "报税问题", "发票"]
    [row] = state["chats"]
    assert row["topics"] == [{"id": topics["发票"].id, "name": "发票"}]
    assert row["visitor"]["site_id"] == site.id
    detail = login_as("agent").get(f"/chat/console/conversation/{conversation.id}").json
    assert detail["conversation"]["topics"] == row["topics"]


# --- the history's topic filter -----------------------------------------------------------------


def test_the_history_is_filtered_by_topic_and_shows_the_topics(app, login_as, topics, site, agent_profile):
    other_site = _site("别的站点")
    tax = _conversation(site, agent_profile, status=ConversationStatus.closed, text="增值税怎么报")
    invoice = _conversation(site, agent_profile, status=ConversationStatus.closed, text="发票丢了")
    elsewhere = _conversation(other_site, status=ConversationStatus.closed, text="别处的报税问题")
    for conversation, names in ((tax, ["报税问题"]), (invoice, ["发票", "投诉"]), (elsewhere, ["报税问题"])):
        chat_topics.set_topics(db.session, conversation.id, [topics[n].id for n in names], None, True)
    search = chat_inbox.search_conversations
    assert [c.id for c in search(db.session, topic_id=topics["报税问题"].id).conversations] == [elsewhere.id, tax.id]
    assert [c.id for c in search(db.session, topic_id=topics["投诉"].id).conversations] == [invoice.id]
    assert search(db.session, "增值税", topic_id=topics["发票"].id).total == 0
    assert search(db.session, topic_id=topics["代理记账咨询"].id).total == 0

    page = login_as("agent").get(f"/chat/history/?topic_id={topics['报税问题'].id}").get_data(as_text=True)
    assert "增值税怎么报" in page and "发票丢了" not in page
    assert "别处的报税问题" not in page  # not a site the agent serves
    assert 'class="label label-info">报税问题</span>' in page
    assert f'<option value="{topics["报税问题"].id}" selected>报税问题</option>' in page
    everything = login_as("manager").get("/chat/history/").get_data(as_text=True)
    assert "增值税怎么报" in everything and "发票丢了" in everything and "别处的报税问题" in everything
    ignored = login_as("manager").get("/chat/history/?topic_id=abc").get_data(as_text=True)
    assert "发票丢了" in ignored  # a filter that is no id is ignored (and said so)
    transcript = login_as("agent").get(f"/chat/history/{invoice.id}").get_data(as_text=True)
    assert "发票</span>" in transcript and "投诉</span>" in transcript
