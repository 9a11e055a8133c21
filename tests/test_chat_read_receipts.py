"""Read receipts (已读) over ``read`` on both namespaces: the visitor's and the agents' read
positions are stored, only grow, reach the other side and come back on ``resume``; every bad
``read`` is refused with the event's error and writes nothing. Emoji (4-byte UTF-8) survive
storage and the transcript PDF."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models.chat import AgentProfile, AgentStatus, ChatMessage, ChatSite, Conversation
from app.services import chat_console, chat_sites
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401
from tests.test_reports_pdf import report_store  # noqa: F401 - an autouse fixture: a report cache of the test's own

ORIGIN = "http://127.0.0.1:5001"
HUGE = 2**64 + 1


def _positions(conversation_id: int) -> tuple[int | None, int | None]:
    db.session.expire_all()
    conversation = db.session.get(Conversation, conversation_id)
    return conversation.visitor_read_up_to, conversation.agent_read_up_to


def _widget(app, site, **auth) -> FreshSocketClient:
    return FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                             auth={"site_key": site.site_key, **auth}, flask_test_client=app.test_client())


def _console(app, login_as, username: str = "agent") -> FreshSocketClient:
    client = FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as(username))
    assert client.is_connected("/agent")
    return client


def _send(client, event: str, payload: object, namespace: str):  # noqa: ANN202
    return client.emit(event, payload, namespace=namespace, callback=True)


def _names(client, namespace: str) -> list[str]:
    return [e["name"] for e in client.get_received(namespace)]


@pytest.fixture
def chat(app, login_as, user_id):
    """A visitor (with a second tab) in a chat agent ``agent`` has accepted, with the visitor's
    question, the 为您服务 line and the agent's reply stored."""
    site = chat_sites.prepare_new_site(ChatSite(name="演示站点", allowed_origins=ORIGIN))
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=3, status=AgentStatus.online)
    db.session.add_all([site, profile])
    db.session.commit()
    widget = _widget(app, site)
    [session] = received(widget, "session", "/visitor", 2.0)
    other_tab = _widget(app, site, visitor_token=session["visitor_token"])
    question = _send(widget, "message", {"client_msg_id": "v1", "text": "你好，想咨询代账"}, "/visitor")
    cid = question["conversation_id"]
    console = _console(app, login_as)
    assert _send(console, "accept", {"conversation_id": cid}, "/agent")["conversation_id"] == cid
    reply = _send(console, "message", {"conversation_id": cid, "client_msg_id": "r1", "text": "您好，请讲"}, "/agent")
    for client, namespace in ((widget, "/visitor"), (other_tab, "/visitor"), (console, "/agent")):
        client.get_received(namespace)
    return {"site": site, "widget": widget, "other_tab": other_tab, "console": console, "cid": cid,
            "token": session["visitor_token"], "question": question["id"], "reply": reply["id"]}


# --- both ways -------------------------------------------------------------------------------


def test_the_visitor_reads_the_reply_and_the_agent_and_the_visitors_other_tab_hear_it(chat):
    ack = _send(chat["widget"], "read", {"message_id": chat["reply"]}, "/visitor")
    expected = {"conversation_id": chat["cid"], "reader": "visitor", "up_to": chat["reply"]}
    assert ack == expected
    assert _positions(chat["cid"]) == (chat["reply"], None)
    assert received(chat["console"], "read", "/agent", 2.0) == [expected]
    assert received(chat["other_tab"], "read", "/visitor", 2.0) == [expected]
    assert received(chat["widget"], "read", "/visitor", 0.3) == []  # the sender has the ack


def test_the_agent_reads_the_visitors_question_and_the_visitor_hears_it(chat):
    ack = _send(chat["console"], "read", {"conversation_id": chat["cid"], "message_id": chat["question"]}, "/agent")
    expected = {"conversation_id": chat["cid"], "reader": "agent", "up_to": chat["question"]}
    assert ack == expected
    assert _positions(chat["cid"]) == (None, chat["question"])
    assert received(chat["widget"], "read", "/visitor", 2.0) == [expected]
    assert received(chat["other_tab"], "read", "/visitor", 2.0) == [expected]


def test_the_same_position_again_writes_nothing_and_tells_nobody(chat):
    _send(chat["widget"], "read", {"message_id": chat["reply"]}, "/visitor")
    chat["console"].get_received("/agent")
    again = _send(chat["widget"], "read", {"message_id": chat["reply"]}, "/visitor")
    assert again == {"conversation_id": chat["cid"], "reader": "visitor", "up_to": chat["reply"]}
    assert received(chat["console"], "read", "/agent", 0.3) == []


def test_one_read_of_the_newest_message_marks_a_burst_read_and_empties_the_consoles_unread_count(
        app, chat, user_id):
    ids = [_send(chat["widget"], "message", {"client_msg_id": f"b{n}", "text": f"第{n}条"}, "/visitor")["id"]
           for n in range(5)]
    who = chat_console.viewer(db.session, user_id("agent"), False)
    [row] = chat_console.my_chats(db.session, who)
    assert row["unread"] == 5
    _send(chat["console"], "read", {"conversation_id": chat["cid"], "message_id": ids[-1]}, "/agent")
    assert _positions(chat["cid"]) == (None, ids[-1])
    [row] = chat_console.my_chats(db.session, who)
    assert row["unread"] == 0


def test_the_read_positions_come_back_on_resume_before_the_messages(app, chat):
    _send(chat["widget"], "read", {"message_id": chat["reply"]}, "/visitor")
    _send(chat["console"], "read", {"conversation_id": chat["cid"], "message_id": chat["question"]}, "/agent")
    reloaded = _widget(app, chat["site"], visitor_token=chat["token"])
    reloaded.get_received("/visitor")
    assert _send(reloaded, "resume", {"last_message_id": 0}, "/visitor") == {"resent": 3}
    # (a queue update of the chat's routing, held to be sent once, may arrive in between: not ours)
    events = [e for e in reloaded.get_received("/visitor") if e["name"] in ("read", "message")]
    assert [e["name"] for e in events] == ["read", "read", "message", "message", "message"]
    assert [e["args"][0] for e in events[:2]] == [
        {"conversation_id": chat["cid"], "reader": "visitor", "up_to": chat["reply"]},
        {"conversation_id": chat["cid"], "reader": "agent", "up_to": chat["question"]}]

    console = chat["console"]
    console.get_received("/agent")
    _send(console, "resume", {"conversation_id": chat["cid"], "last_message_id": chat["reply"]}, "/agent")
    assert [e["args"][0]["reader"] for e in console.get_received("/agent") if e["name"] == "read"] == [
        "visitor", "agent"]


def test_nothing_read_yet_sends_no_read_event_on_resume(app, chat):
    _send(chat["widget"], "resume", {"last_message_id": 0}, "/visitor")
    assert "read" not in _names(chat["widget"], "/visitor")


# --- refused, nothing written ----------------------------------------------------------------


def _refused(client, namespace: str, payload: object) -> dict:
    ack = _send(client, "read", payload, namespace)
    assert isinstance(ack, dict) and "error" in ack, ack
    assert [e["event"] for e in received(client, "error", namespace, 2.0)] == ["read"]
    assert client.is_connected(namespace)
    return ack


@pytest.mark.parametrize("case", ["other conversation", "note", "moving back", "string", "float", "boolean",
                                  "huge", "missing", "not an object"])
def test_a_bad_read_from_the_visitor_is_refused_and_writes_nothing(app, chat, case):
    widget = chat["widget"]
    stranger = _widget(app, chat["site"])
    theirs = _send(stranger, "message", {"client_msg_id": "s1", "text": "别人的消息"}, "/visitor")["id"]
    note = _send(chat["console"], "message", {"conversation_id": chat["cid"], "client_msg_id": "n1",
                                              "text": "内部备注", "note": True}, "/agent")["id"]
    if case == "moving back":
        _send(widget, "read", {"message_id": chat["reply"]}, "/visitor")
    before = _positions(chat["cid"])
    chat["console"].get_received("/agent")
    payload = {"other conversation": {"message_id": theirs}, "note": {"message_id": note},
               "moving back": {"message_id": chat["question"]}, "string": {"message_id": str(chat["reply"])},
               "float": {"message_id": float(chat["reply"])}, "boolean": {"message_id": True},
               "huge": {"message_id": HUGE}, "missing": {}, "not an object": [chat["reply"]]}[case]
    ack = _refused(widget, "/visitor", payload)
    assert list(ack["errors"]) == (["_"] if case == "not an object" else ["message_id"])
    assert _positions(chat["cid"]) == before
    assert _positions(db.session.get(ChatMessage, theirs).conversation_id) == (None, None)
    assert received(chat["console"], "read", "/agent", 0.3) == []


@pytest.mark.parametrize("case", ["other conversation", "moving back", "string", "huge", "missing message",
                                  "no conversation", "unknown conversation"])
def test_a_bad_read_from_the_agent_is_refused_and_writes_nothing(app, chat, case):
    stranger = _widget(app, chat["site"])
    theirs = _send(stranger, "message", {"client_msg_id": "s1", "text": "别人的消息"}, "/visitor")["id"]
    if case == "moving back":
        _send(chat["console"], "read", {"conversation_id": chat["cid"], "message_id": chat["reply"]}, "/agent")
    before = _positions(chat["cid"])
    chat["widget"].get_received("/visitor")
    cid = chat["cid"]
    payload = {"other conversation": {"conversation_id": cid, "message_id": theirs},
               "moving back": {"conversation_id": cid, "message_id": chat["question"]},
               "string": {"conversation_id": cid, "message_id": "1"},
               "huge": {"conversation_id": cid, "message_id": HUGE},
               "missing message": {"conversation_id": cid},
               "no conversation": {"message_id": chat["question"]},
               "unknown conversation": {"conversation_id": 987654, "message_id": chat["question"]}}[case]
    _refused(chat["console"], "/agent", payload)
    assert _positions(cid) == before
    assert received(chat["widget"], "read", "/visitor", 0.3) == []


@pytest.mark.parametrize("who", ["watching supervisor", "agent of another chat", "supervisor without a profile"])
def test_only_the_agents_of_the_chat_mark_it_read(app, chat, login_as, user_id, who):
    if who != "supervisor without a profile":
        db.session.add(AgentProfile(user_id=user_id("manager"), display_name="王主管", max_chats=3))
        db.session.commit()
    boss = _console(app, login_as, "manager")
    if who != "agent of another chat":
        assert "messages" in _send(boss, "watch", {"conversation_id": chat["cid"]}, "/agent")
    chat["widget"].get_received("/visitor")
    ack = _refused(boss, "/agent", {"conversation_id": chat["cid"], "message_id": chat["question"]})
    assert ack["errors"] == {"conversation_id": ["这不是您接待的会话。"]}
    assert _positions(chat["cid"]) == (None, None)
    assert received(chat["widget"], "read", "/visitor", 0.3) == []


def test_the_owner_still_marks_a_closed_chat_read(chat):
    _send(chat["widget"], "message", {"client_msg_id": "v2", "text": "谢谢，再见"}, "/visitor")
    last = db.session.scalar(select(func.max(ChatMessage.id)))
    _send(chat["console"], "close", {"conversation_id": chat["cid"]}, "/agent")
    ack = _send(chat["console"], "read", {"conversation_id": chat["cid"], "message_id": last}, "/agent")
    assert ack["up_to"] == last and _positions(chat["cid"]) == (None, last)


# --- emoji -------------------------------------------------------------------------------------


EMOJI_TEXT = "好的👍😀，谢谢🙏 ❤️"


def test_emoji_survive_storage_both_ways_and_come_back_on_resume(app, chat):
    visitor_ack = _send(chat["widget"], "message", {"client_msg_id": "e1", "text": EMOJI_TEXT}, "/visitor")
    agent_ack = _send(chat["console"], "message", {"conversation_id": chat["cid"], "client_msg_id": "e2",
                                                   "text": "🎉" + EMOJI_TEXT}, "/agent")
    db.session.expire_all()
    assert db.session.get(ChatMessage, visitor_ack["id"]).text == EMOJI_TEXT
    assert db.session.get(ChatMessage, agent_ack["id"]).text == "🎉" + EMOJI_TEXT
    chat["widget"].get_received("/visitor")
    _send(chat["widget"], "resume", {"last_message_id": chat["reply"]}, "/visitor")
    assert [m["text"] for m in received(chat["widget"], "message", "/visitor", 2.0)] == [
        EMOJI_TEXT, "🎉" + EMOJI_TEXT]


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_a_transcript_with_emoji_prints_its_text(app, chat, login_as, tmp_path):
    """Noto Sans CJK has no emoji: WeasyPrint draws them from another font where one has them (a
    box where none has), and the PDF keeps the text. (pypdf cannot read the CJK font's encoding once
    a second font is embedded, so poppler's pdftotext reads it.)"""
    _send(chat["widget"], "message", {"client_msg_id": "e1", "text": EMOJI_TEXT}, "/visitor")
    response = login_as("agent").get(f"/reports/transcript/{chat['cid']}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    pdf = tmp_path / "transcript.pdf"
    pdf.write_bytes(response.data)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True, text=True).stdout
    assert "你好，想咨询代账" in text and "好的" in text and "，谢谢" in text and "您好，请讲" in text
