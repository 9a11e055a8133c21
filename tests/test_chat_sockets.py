"""The ``/visitor`` and ``/agent`` namespaces through Flask-SocketIO's test client: admission,
messages stored before the ack, idempotent resends, resume, privacy between visitors, agents."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, func, select

from app.extensions import db, socketio
from app.models.chat import AgentProfile, ChatBlock, ChatMessage, ChatSite, Conversation, ConversationStatus, Visitor
from app.services import chat_sites, chat_tools
from app.sockets.fanout import fanout
from tests.factories import make_client, make_contact
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"


@pytest.fixture
def site(app):
    site = chat_sites.prepare_new_site(ChatSite(name="演示站点", allowed_origins=f"{ORIGIN}\nhttp://localhost:5001"))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def agent_profile(app, user_id):
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=2)
    db.session.add(profile)
    db.session.commit()
    return profile


def _browser(app, origin: str | None = ORIGIN, site_key: str = "", **auth):
    """A widget connection from a browser at 127.0.0.1 on a page of *origin*."""
    return FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": origin} if origin else {},
                             auth={"site_key": site_key, **auth}, flask_test_client=app.test_client())


def _visitor(app, site, origin=ORIGIN, **auth):
    return _browser(app, origin, site.site_key, **auth)


def _agent(app, login_as, username="agent"):
    return FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as(username))


def _events(client, name, namespace, wait=2.0) -> list:
    return received(client, name, namespace, wait)


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


# --- admission ------------------------------------------------------------------------------


def test_a_visitor_from_an_allowed_origin_gets_a_session_and_a_token(app, site):
    client = _visitor(app, site)
    assert client.is_connected("/visitor")
    [session] = _events(client, "session", "/visitor")
    assert session["returning"] is False and session["conversation_id"] is None
    assert chat_sites.visitor_uid_from_token(app.config["SECRET_KEY"], site.site_key,
                                             session["visitor_token"]) == session["visitor_id"]
    visitor = db.session.scalar(select(Visitor))
    assert (visitor.uid, visitor.online, visitor.visits) == (session["visitor_id"], True, 1)
    client.disconnect("/visitor")
    db.session.expire_all()
    assert visitor.online is False

    again = _visitor(app, site, visitor_token=session["visitor_token"])
    [second] = _events(again, "session", "/visitor")
    assert (second["visitor_id"], second["returning"]) == (session["visitor_id"], True)
    assert _count(Visitor) == 1


@pytest.mark.parametrize("case", ["unknown key", "other origin", "no origin", "inactive", "blocked ip"])
def test_refused_connections_write_nothing(app, site, case):
    if case == "inactive":
        site.active = False
    if case == "blocked ip":
        db.session.add(ChatBlock(site_id=site.id, ip_range="127.0.0.0/8"))
    db.session.commit()
    origin = {"other origin": "https://evil.example", "no origin": None}.get(case, ORIGIN)
    client = _browser(app, origin, "nope" if case == "unknown key" else site.site_key)
    assert not client.is_connected("/visitor")
    assert _count(Visitor) == 0


def test_a_forged_token_gets_a_new_visitor_and_a_wrong_identity_hash_is_refused(app, site):
    first = _visitor(app, site)
    [session] = _events(first, "session", "/visitor")
    forged = _visitor(app, site, visitor_token=session["visitor_token"][:-3] + "abc")
    [other] = _events(forged, "session", "/visitor")
    assert other["visitor_id"] != session["visitor_id"] and other["returning"] is False
    wrong = _visitor(app, site, user_id="u-1", user_hash="0" * 64)
    assert not wrong.is_connected("/visitor")
    assert _count(Visitor) == 2


def test_a_verified_user_id_links_the_visitor_to_the_client_contact(app, site):
    contact = make_contact(make_client(name="识别客户有限公司"), name="李四", chat_user_id="u-77")
    client = _visitor(app, site, user_id="u-77", user_hash=chat_sites.identity_hash(site.identity_secret, "u-77"))
    assert client.is_connected("/visitor")
    visitor = db.session.scalar(select(Visitor))
    assert (visitor.external_user_id, visitor.contact_id) == ("u-77", contact.id)


# --- messages -------------------------------------------------------------------------------


def test_a_message_is_stored_before_the_ack_and_a_resend_stores_nothing_new(app, site):
    client = _visitor(app, site)
    ack = client.emit("message", {"client_msg_id": "m-1", "text": "你好，想咨询代账"}, namespace="/visitor",
                      callback=True)
    stored = db.session.get(ChatMessage, ack["id"])
    assert (stored.text, stored.client_msg_id, ack["client_msg_id"]) == ("你好，想咨询代账", "m-1", "m-1")
    conversation = db.session.get(Conversation, ack["conversation_id"])
    assert conversation.status == ConversationStatus.queued
    again = client.emit("message", {"client_msg_id": "m-1", "text": "你好，想咨询代账"}, namespace="/visitor",
                        callback=True)
    assert again["id"] == ack["id"] and _count(ChatMessage) == 1


@pytest.mark.parametrize("payload", [{"client_msg_id": "m", "text": ""}, {"client_msg_id": "m", "text": "x" * 2001},
                                     {"client_msg_id": "", "text": "hi"}, {"text": "hi"}, "just a string",
                                     {"client_msg_id": "m", "text": 5}])
def test_bad_message_payloads_get_an_error_and_change_nothing(app, site, payload):
    client = _visitor(app, site)
    ack = client.emit("message", payload, namespace="/visitor", callback=True)
    assert "error" in ack
    assert _events(client, "error", "/visitor")[0]["event"] == "message"
    assert _count(ChatMessage) == 0 and _count(Conversation) == 0


def test_resume_resends_only_later_messages_of_this_visitor(app, site):
    alice, bob = _visitor(app, site), _visitor(app, site)
    first = alice.emit("message", {"client_msg_id": "a1", "text": "第一条"}, namespace="/visitor", callback=True)
    alice.emit("message", {"client_msg_id": "a2", "text": "第二条"}, namespace="/visitor", callback=True)
    bob.emit("message", {"client_msg_id": "b1", "text": "<script>alert(1)</script>"}, namespace="/visitor",
             callback=True)
    alice.get_received("/visitor")
    assert alice.emit("resume", {"last_message_id": first["id"]}, namespace="/visitor", callback=True) == {"resent": 1}
    assert [m["text"] for m in _events(alice, "message", "/visitor")] == ["第二条"]
    bob.get_received("/visitor")
    bob.emit("resume", {"last_message_id": 0}, namespace="/visitor", callback=True)
    assert [m["text"] for m in _events(bob, "message", "/visitor")] == ["<script>alert(1)</script>"]
    assert "error" in alice.emit("resume", {"last_message_id": "x"}, namespace="/visitor", callback=True)


# --- agents ---------------------------------------------------------------------------------


def test_agent_accepts_replies_and_closes_and_the_visitor_hears_it(app, site, agent_profile, login_as):
    visitor = _visitor(app, site)
    ack = visitor.emit("message", {"client_msg_id": "v1", "text": "在吗"}, namespace="/visitor", callback=True)
    agent = _agent(app, login_as)
    assert agent.is_connected("/agent")
    accepted = agent.emit("accept", {"conversation_id": ack["conversation_id"]}, namespace="/agent", callback=True)
    assert [m["text"] for m in accepted["messages"]] == ["在吗", "客服小张 为您服务"]
    visitor.get_received("/visitor")
    reply = agent.emit("message", {"conversation_id": ack["conversation_id"], "client_msg_id": "r1",
                                   "text": "您好，请讲"}, namespace="/agent", callback=True)
    assert reply["id"] and reply["client_msg_id"] == "r1"
    agent.emit("message", {"conversation_id": ack["conversation_id"], "client_msg_id": "n1", "text": "内部备注",
                           "note": True}, namespace="/agent", callback=True)
    heard = _events(visitor, "message", "/visitor")
    assert [m["text"] for m in heard] == ["您好，请讲"]  # the note never reaches the visitor
    assert heard[0]["sender_name"] == "客服小张" and heard[0]["sender_type"] == "agent"
    agent.emit("close", {"conversation_id": ack["conversation_id"]}, namespace="/agent", callback=True)
    assert _events(visitor, "closed", "/visitor")[0]["by"] == "agent"
    assert visitor.emit("rate", {"score": 5, "comment": "很专业"}, namespace="/visitor", callback=True)["rating"] == 5
    assert "error" in visitor.emit("rate", {"score": 6}, namespace="/visitor", callback=True)
    conversation = db.session.get(Conversation, ack["conversation_id"])
    db.session.refresh(conversation)
    assert (conversation.status, conversation.rating, conversation.rating_comment) == (
        ConversationStatus.closed, 5, "很专业")


def test_a_chat_the_visitor_ends_in_one_tab_ends_in_their_other_tabs(app, site, agent_profile, login_as):
    first = _visitor(app, site)
    [session] = _events(first, "session", "/visitor")
    second = _visitor(app, site, visitor_token=session["visitor_token"])
    ack = first.emit("message", {"client_msg_id": "v1", "text": "在吗"}, namespace="/visitor", callback=True)
    agent = _agent(app, login_as)
    agent.emit("accept", {"conversation_id": ack["conversation_id"]}, namespace="/agent", callback=True)
    second.get_received("/visitor")
    assert first.emit("close", {}, namespace="/visitor", callback=True) == {"closed": ack["conversation_id"]}
    assert _events(second, "closed", "/visitor") == [{"conversation_id": ack["conversation_id"], "by": "visitor"}]
    assert _events(first, "closed", "/visitor", wait=0.5) == []  # this tab has the ack
    assert _events(agent, "closed", "/agent")[0]["by"] == "visitor"


def test_agents_may_not_write_in_someone_elses_conversation(app, site, agent_profile, login_as, user_id):
    other = AgentProfile(user_id=user_id("manager"), display_name="主管", max_chats=3)
    db.session.add(other)
    db.session.commit()
    visitor = _visitor(app, site)
    ack = visitor.emit("message", {"client_msg_id": "v1", "text": "hi"}, namespace="/visitor", callback=True)
    mine = _agent(app, login_as)
    mine.emit("accept", {"conversation_id": ack["conversation_id"]}, namespace="/agent", callback=True)
    theirs = _agent(app, login_as, "manager")
    assert "error" in theirs.emit("accept", {"conversation_id": ack["conversation_id"]}, namespace="/agent",
                                  callback=True)
    refused = theirs.emit("message", {"conversation_id": ack["conversation_id"], "client_msg_id": "x",
                                      "text": "插话"}, namespace="/agent", callback=True)
    assert "error" in refused and _count(ChatMessage) == 2  # "hi" and "客服小张 为您服务"


@pytest.mark.parametrize("username", ["accountant", "reviewer"])
def test_users_without_the_chat_permission_or_a_profile_cannot_connect_as_agents(app, login_as, username):
    assert not _agent(app, login_as, username).is_connected("/agent")


def test_an_agent_without_a_profile_cannot_connect(app, login_as):
    assert not _agent(app, login_as, "agent").is_connected("/agent")


def test_agent_chat_limit(app, site, agent_profile, login_as):
    agent = _agent(app, login_as)
    ids = []
    for n in range(3):
        visitor = _visitor(app, site)
        ids.append(visitor.emit("message", {"client_msg_id": f"v{n}", "text": "hi"}, namespace="/visitor",
                                callback=True)["conversation_id"])
    # the online agent was offered the first two chats only (routed right after each ack): the
    # third waits for a free slot
    assert fanout.idle()
    assert sorted(o["conversation_id"] for o in _events(agent, "chat_offer", "/agent")) == ids[:2]
    assert "messages" in agent.emit("accept", {"conversation_id": ids[0]}, namespace="/agent", callback=True)
    assert "messages" in agent.emit("accept", {"conversation_id": ids[1]}, namespace="/agent", callback=True)
    third = agent.emit("accept", {"conversation_id": ids[2]}, namespace="/agent", callback=True)
    assert "limit of 2 chats" in third["error"] or "2" in third["error"]
    assert db.session.get(Conversation, ids[2]).status == ConversationStatus.queued


# --- one-click block ------------------------------------------------------------------------


def _accepted_chat(app, site, login_as):
    visitor = _visitor(app, site)
    [session] = _events(visitor, "session", "/visitor")
    ack = visitor.emit("message", {"client_msg_id": "v1", "text": "广告推广，加微信"}, namespace="/visitor",
                       callback=True)
    agent = _agent(app, login_as)
    agent.emit("accept", {"conversation_id": ack["conversation_id"]}, namespace="/agent", callback=True)
    visitor.get_received("/visitor")
    return visitor, session["visitor_token"], agent, ack["conversation_id"]


def test_an_agent_blocks_the_visitor_of_their_chat_in_one_click(app, site, agent_profile, login_as, user_id):
    from app.models.security import AuditLog

    visitor, token, agent, conversation_id = _accepted_chat(app, site, login_as)
    ack = agent.emit("block_visitor", {"conversation_id": conversation_id, "reason": "发广告"}, namespace="/agent",
                     callback=True)
    assert ack == {"conversation_id": conversation_id, "by": "agent", "blocked": True}
    assert not visitor.is_connected("/visitor")  # the open widget is cut off, told why first:
    assert [e["args"][0] for e in visitor.queue if e["name"] == "closed" and e["namespace"] == "/visitor"] == [
        {"conversation_id": conversation_id, "by": "agent"}]
    db.session.expire_all()
    uid = db.session.scalar(select(Visitor.uid).join(Conversation, Conversation.visitor_id == Visitor.id)
                            .where(Conversation.id == conversation_id))
    [block] = db.session.scalars(select(ChatBlock)).all()
    assert (block.site_id, block.visitor_uid, block.reason, block.expires_at, block.created_by_id) == (
        site.id, uid, "发广告", None, user_id("agent"))
    assert db.session.get(Conversation, conversation_id).status == ConversationStatus.closed
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.object_type == "chat_block", AuditLog.object_id == str(block.id))) == 1
    again = _visitor(app, site, visitor_token=token)  # the same browser comes back: refused
    assert not again.is_connected("/visitor")
    # Blocking again (the closed chat) keeps the one block.
    assert agent.emit("block_visitor", {"conversation_id": conversation_id}, namespace="/agent",
                      callback=True)["blocked"] is True
    assert _count(ChatBlock) == 1


def test_two_clicks_on_block_at_once_make_one_block(app, site, agent_profile, login_as):
    """Two blocks of the same chat at once (a double click, two tabs): the second waits for the
    first and finds its block. The first holds its insert until the second has read the blocks,
    or for a second and a half when the second cannot read them (it waits for the first). On
    PostgreSQL, without the lock, both read "no block yet" and both insert one."""
    _visitor_client, _, _agent_client, conversation_id = _accepted_chat(app, site, login_as)
    profile_id = agent_profile.id
    db.session.remove()
    second_read, results = threading.Event(), {}
    first_thread = []

    def on_execute(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        words = " ".join(statement.split()).upper()
        if threading.get_ident() in first_thread and words.startswith("INSERT INTO CHAT_BLOCK"):
            second_read.wait(1.5)
        elif threading.get_ident() not in first_thread and "FROM CHAT_BLOCK" in words:
            second_read.set()

    def block(n: int) -> None:
        if n == 0:
            first_thread.append(threading.get_ident())
        with app.app_context():
            try:
                agent = db.session.get(AgentProfile, profile_id)
                results[n] = chat_tools.block_from_chat(db.session, agent, conversation_id)[1].id
            except Exception as exc:  # noqa: BLE001 - reported below
                results[n] = exc
            finally:
                db.session.remove()

    event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        first = threading.Thread(target=block, args=(0,))
        first.start()
        time.sleep(0.2)  # the first is past its checks
        second = threading.Thread(target=block, args=(1,))
        second.start()
        first.join(20)
        second.join(20)
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)
    assert _count(ChatBlock) == 1, results
    assert results[0] == results[1], results
    assert db.session.get(Conversation, conversation_id).status == ConversationStatus.closed


@pytest.mark.parametrize("payload", [
    {"conversation_id": "1"}, {"conversation_id": 10**20}, {"conversation_id": 999999},
    {"reason": 5}, {"reason": "x" * 501}, {"reason": True},
])
def test_a_bad_block_request_gets_an_error_and_blocks_nobody(app, site, agent_profile, login_as, payload):
    visitor, _, agent, conversation_id = _accepted_chat(app, site, login_as)
    refused = agent.emit("block_visitor", {"conversation_id": conversation_id, **payload}, namespace="/agent",
                         callback=True)
    assert "error" in refused, refused
    assert _count(ChatBlock) == 0
    assert db.session.get(Conversation, conversation_id).status == ConversationStatus.active
    assert visitor.is_connected("/visitor")


def test_only_the_agent_of_the_chat_may_block_its_visitor(app, site, agent_profile, login_as, user_id):
    db.session.add(AgentProfile(user_id=user_id("manager"), display_name="主管", max_chats=3))
    db.session.commit()
    visitor, _, _, conversation_id = _accepted_chat(app, site, login_as)
    other = _agent(app, login_as, "manager")
    refused = other.emit("block_visitor", {"conversation_id": conversation_id}, namespace="/agent", callback=True)
    assert "error" in refused
    assert _count(ChatBlock) == 0 and visitor.is_connected("/visitor")
