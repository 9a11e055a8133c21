"""Malformed socket payloads: a flag that is not JSON true/false, integers beyond 64 bits, a NUL
character, a message of a megabyte. Each is refused by the guard with the event's error (an
``error`` event and the error ack, naming the field, in Chinese by default) and
writes nothing; the connection stays up."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models.chat import (
    AgentProfile,
    AgentStatus,
    ChatInvitation,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationStatus,
    Visitor,
)
from app.services import chat_sites
from app.sockets.agent import AgentNamespace
from app.sockets.payloads import SCHEMAS
from app.sockets.visitor import VisitorNamespace
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"
HUGE = 2**64 + 1  # beyond 64 bits


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def chat(app, login_as, user_id):
    """A visitor's widget and the console of the agent who has the visitor's chat."""
    site = chat_sites.prepare_new_site(ChatSite(name="演示站点", allowed_origins=ORIGIN))
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=3, status=AgentStatus.online)
    db.session.add_all([site, profile])
    db.session.commit()
    widget = FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                               auth={"site_key": site.site_key}, flask_test_client=app.test_client())
    [session] = received(widget, "session", "/visitor", 2.0)
    visitor = db.session.scalar(select(Visitor).where(Visitor.uid == session["visitor_id"]))
    conversation = Conversation(site_id=site.id, visitor_id=visitor.id, agent_id=profile.id,
                                status=ConversationStatus.active)
    db.session.add(conversation)
    db.session.commit()
    console = FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as("agent"))
    assert console.is_connected("/agent")
    return {"/visitor": widget, "/agent": console, "conversation_id": conversation.id, "visitor_id": visitor.id}


def _refused(client, namespace: str, event: str, payload: object) -> tuple[dict, dict]:
    """Send *payload*; return the error ack and the ``error`` event the sender got."""
    ack = client.emit(event, payload, namespace=namespace, callback=True)
    errors = received(client, "error", namespace, 2.0)
    assert client.is_connected(namespace)
    assert isinstance(ack, dict) and "error" in ack, f"{event} {payload!r:.100} answered {ack!r:.200}"
    assert [e["event"] for e in errors] == [event]
    return ack, errors[0]


@pytest.mark.parametrize("note", ["yes", "true", 1, 0, "", [], {}])
def test_an_agent_message_whose_note_flag_is_not_true_or_false_is_refused_and_reaches_nobody(chat, note):
    ack, error = _refused(chat["/agent"], "/agent", "message",
                          {"conversation_id": chat["conversation_id"], "client_msg_id": "n-1", "text": "内部备注",
                           "note": note})
    assert ack["errors"] == {"note": ["只能是 true 或 false。"]} == error["errors"]
    assert error["message"] == "只能是 true 或 false。"
    assert _count(ChatMessage) == 0
    assert received(chat["/visitor"], "message", "/visitor", 0.3) == []


def test_a_note_flag_of_true_keeps_the_note_from_the_visitor_and_false_sends_it(chat):
    console = chat["/agent"]
    for flag, client_msg_id in ((True, "n-1"), (False, "n-2")):
        ack = console.emit("message", {"conversation_id": chat["conversation_id"], "client_msg_id": client_msg_id,
                                       "text": "您好", "note": flag}, namespace="/agent", callback=True)
        assert "error" not in ack
    seen = received(chat["/visitor"], "message", "/visitor", 2.0)
    assert [m["client_msg_id"] for m in seen] == ["n-2"]


@pytest.mark.parametrize("namespace, event, payload, field", [
    ("/visitor", "resume", {"last_message_id": HUGE}, "last_message_id"),
    ("/visitor", "heartbeat", {"page_view_id": HUGE}, "page_view_id"),
    ("/visitor", "invite_response", {"invitation_id": HUGE, "accepted": True}, "invitation_id"),
    ("/visitor", "invite_response", {"invitation_id": -HUGE, "accepted": True}, "invitation_id"),
    ("/agent", "accept", {"conversation_id": HUGE}, "conversation_id"),
    ("/agent", "resume", {"conversation_id": "CID", "last_message_id": HUGE}, "last_message_id"),
    ("/agent", "resume", {"conversation_id": HUGE, "last_message_id": 0}, "conversation_id"),
    ("/agent", "team_history", {"last_id": HUGE}, "last_id"),
])
def test_an_integer_beyond_64_bits_is_refused_naming_the_field(chat, namespace, event, payload, field):
    payload = {k: chat["conversation_id"] if v == "CID" else v for k, v in payload.items()}
    before = (_count(ChatMessage), _count(ChatInvitation), _count(Conversation))
    ack, error = _refused(chat[namespace], namespace, event, payload)
    assert list(ack["errors"]) == [field] == list(error["errors"])
    assert (_count(ChatMessage), _count(ChatInvitation), _count(Conversation)) == before


@pytest.mark.parametrize("namespace, event, field", [
    ("/visitor", "message", "text"), ("/visitor", "message", "client_msg_id"), ("/agent", "message", "text"),
    ("/agent", "whisper", "text"), ("/agent", "team_message", "text"), ("/visitor", "leave_message", "name")])
def test_a_nul_character_in_a_message_is_refused_and_nothing_is_stored(chat, namespace, event, field):
    payload = {"conversation_id": chat["conversation_id"], "client_msg_id": "m-1", "text": "您好",
               "name": "张三", "phone": "13800138000", field: "发票\x00抬头"}
    ack, error = _refused(chat[namespace], namespace, event, payload)
    assert ack["errors"] == {field: ["文本不能包含 NUL 字符。"]}
    assert _count(ChatMessage) == 0


@pytest.mark.parametrize("namespace", ["/visitor", "/agent"])
def test_a_message_of_a_megabyte_is_refused_with_the_length_limit(chat, namespace):
    payload = {"conversation_id": chat["conversation_id"], "client_msg_id": "big-1", "text": "x" * 1_000_000}
    ack, _error = _refused(chat[namespace], namespace, "message", payload)
    assert ack["errors"] == {"text": ["最多 2000 个字符。"]}
    assert _count(ChatMessage) == 0


@pytest.mark.parametrize("payload", [[1, 2], "hello", 7])
def test_a_payload_that_is_not_an_object_is_refused(chat, payload):
    ack, _error = _refused(chat["/visitor"], "/visitor", "message", payload)
    assert ack["errors"] == {"_": ["事件的数据应为对象（JSON object）。"]}


def test_every_refusal_has_its_chinese_translation(app):
    from flask_babel import force_locale

    from app.sockets import payloads

    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert payloads.FLAG.problem("yes") == "只能是 true 或 false。"
        assert payloads.POSITION.problem(HUGE) == "应为 0 至 2147483647 的整数。"
        assert payloads.ID.problem("1") == "不存在此项：编号为 1 至 2147483647 的整数。"
        assert payloads.NUMBER.problem(1.5) == "应为整数。"
        assert payloads.MESSAGE_TEXT.problem(3) == "应为文本。"


def _handlers(namespace: type) -> set[str]:
    return {name[3:] for name in dir(namespace) if name.startswith("on_") and name not in ("on_connect",
                                                                                             "on_disconnect")}


def test_every_event_of_both_namespaces_has_a_payload_schema():
    declared = {(ns, event) for ns, event in SCHEMAS}
    handled = {("/visitor", e) for e in _handlers(VisitorNamespace)} | {
        ("/agent", e) for e in _handlers(AgentNamespace)}
    assert handled == declared


def test_refusals_of_the_agent_console_speak_the_users_language(app, monkeypatch):
    """The socket's own refusals are translated, like every other text a user reads."""
    from flask_babel import force_locale

    from app.sockets import agent

    with app.test_request_context(), force_locale("zh_Hans_CN"):
        refusal = agent._refused(agent._l("You may not use the agent console."))
        assert refusal.args == ("您无权使用客服工作台。", {"event": "connect", "message": "您无权使用客服工作台。",
                                                       "errors": {}})
        assert str(agent.NOT_YOURS) == "这不是您的会话。"
