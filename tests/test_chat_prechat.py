"""The pre-chat form (售前表单) of a chat site and each agent's send key, through the sockets and
the screens: what the widget is told, what a visitor may send, what the agent then sees."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models.chat import (
    AgentProfile,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationStatus,
    PrechatMode,
    SenderType,
    SendKey,
    Visitor,
)
from app.models.security import AuditLog
from app.services import chat_sites
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"
ASKING = {"prechat_name": PrechatMode.required, "prechat_phone": PrechatMode.optional,
          "prechat_email": PrechatMode.optional, "prechat_question": PrechatMode.required}


@pytest.fixture(autouse=True)
def _english(app):
    before = app.config["BABEL_DEFAULT_LOCALE"]
    app.config["BABEL_DEFAULT_LOCALE"] = "en"
    yield
    app.config["BABEL_DEFAULT_LOCALE"] = before


def _site(**modes) -> ChatSite:
    site = chat_sites.prepare_new_site(ChatSite(name="演示站点", allowed_origins=ORIGIN, **modes))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def site(app):
    return _site(**ASKING)


@pytest.fixture
def agent_profile(app, user_id):
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=2)
    db.session.add(profile)
    db.session.commit()
    return profile


def _visitor(app, site, **auth):
    return FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                             auth={"site_key": site.site_key, **auth}, flask_test_client=app.test_client())


def _agent(app, login_as):
    return FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as("agent"))


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def _the_visitor(session: dict) -> Visitor:
    db.session.expire_all()
    return db.session.scalar(select(Visitor).where(Visitor.uid == session["visitor_id"]))


GOOD = {"client_msg_id": "q-1", "name": "王先生", "phone": "138 0013 8000", "email": "wang@example.com",
        "question": "想咨询小规模纳税人代账的价格"}


# --- what the widget is told ------------------------------------------------------------------


def test_the_widget_gets_the_sites_form_and_a_new_visitor_is_asked(app, site):
    [session] = received(_visitor(app, site), "session", "/visitor", 1.0)
    assert session["site"]["prechat_form"] == [
        {"name": "name", "required": True}, {"name": "phone", "required": False},
        {"name": "email", "required": False}, {"name": "question", "required": True}]
    assert session["prechat"] is True


def test_a_site_without_a_form_asks_nothing_and_chats_as_before(app):
    site = _site()
    client = _visitor(app, site)
    [session] = received(client, "session", "/visitor", 1.0)
    assert session["site"]["prechat_form"] == [] and session["prechat"] is False
    ack = client.emit("message", {"client_msg_id": "m-1", "text": "你好"}, namespace="/visitor", callback=True)
    assert isinstance(ack["id"], int)


# --- what the server refuses --------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "field", "message"), [
    ({**GOOD, "name": "  "}, "name", "Please enter your name."),
    ({k: v for k, v in GOOD.items() if k != "question"}, "question", "Please enter your question."),
    ({**GOOD, "phone": "123"}, "phone", "This is not a phone number."),
    ({**GOOD, "phone": "call me"}, "phone", "This is not a phone number."),
    ({**GOOD, "email": "wang@"}, "email", "This is not an email address."),
    ({**GOOD, "email": "a@b.cn, c@d.cn"}, "email", "This is not an email address."),
    ({**GOOD, "name": "王" * 101}, "name", "Your name: At most 100 characters."),
    ({**GOOD, "question": "x" * 2001}, "question", "Your question: At most 2000 characters."),
    ({**GOOD, "name": 5}, "name", "Your name: Must be text."),
    ({**GOOD, "email": ["wang@example.com"]}, "email", "Email: Must be text."),
    ({**GOOD, "client_msg_id": ""}, "client_msg_id", "client_msg_id is a string of 1 to 64 characters."),
])
def test_a_bad_form_is_refused_naming_the_field_and_nothing_is_written(app, site, payload, field, message):
    client = _visitor(app, site)
    [session] = received(client, "session", "/visitor", 1.0)
    ack = client.emit("prechat", payload, namespace="/visitor", callback=True)
    assert ack["errors"][field] == [message] and message in ack["error"]
    [error] = received(client, "error", "/visitor", 1.0)
    assert error["event"] == "prechat" and error["errors"][field] == [message]
    visitor = _the_visitor(session)
    assert (visitor.name, visitor.phone, visitor.email, visitor.prechat_at) == (None, None, None, None)
    assert _count(ChatMessage) == 0 and _count(Conversation) == 0


def test_the_refusal_is_in_the_visitors_language_chinese_by_default(app, site):
    app.config["BABEL_DEFAULT_LOCALE"] = "zh_CN"
    client = _visitor(app, site)
    ack = client.emit("prechat", {**GOOD, "name": "", "email": "nope"}, namespace="/visitor", callback=True)
    assert ack["errors"] == {"name": ["请填写您的称呼。"], "email": ["这不是有效的电子邮箱地址。"]}
    too_long = client.emit("prechat", {**GOOD, "name": "王" * 101}, namespace="/visitor", callback=True)
    assert too_long["errors"] == {"name": ["称呼：最多 100 个字符。"]}
    assert _count(Conversation) == 0


def test_a_visitor_who_skips_the_form_cannot_start_a_chat(app, site):
    client = _visitor(app, site)
    [session] = received(client, "session", "/visitor", 1.0)
    ack = client.emit("message", {"client_msg_id": "m-1", "text": "你好"}, namespace="/visitor", callback=True)
    assert ack["errors"] == {"name": ["Please enter your name."], "question": ["Please enter your question."]}
    assert _count(ChatMessage) == 0 and _count(Conversation) == 0
    assert _the_visitor(session).prechat_at is None


# --- what a good form does ----------------------------------------------------------------------


def test_a_good_form_is_stored_on_the_visitor_and_the_question_opens_the_chat(app, site, agent_profile, login_as):
    agent = _agent(app, login_as)
    received(agent, "connect", "/agent", 0.2)
    client = _visitor(app, site)
    [session] = received(client, "session", "/visitor", 1.0)
    ack = client.emit("prechat", GOOD, namespace="/visitor", callback=True)
    assert ack["ok"] is True
    message = db.session.get(ChatMessage, ack["message"]["id"])
    assert (message.text, message.sender_type, message.client_msg_id) == (GOOD["question"], SenderType.visitor, "q-1")
    conversation = db.session.get(Conversation, ack["message"]["conversation_id"])
    assert conversation.status in (ConversationStatus.queued, ConversationStatus.offered)
    visitor = _the_visitor(session)
    assert (visitor.name, visitor.phone, visitor.email) == ("王先生", "13800138000", "wang@example.com")
    assert visitor.prechat_at is not None
    # The site's agents hear the visitor's name at once, and their details show it all.
    updates = received(agent, "visitor_update", "/agent", 2.0)
    assert any(u["id"] == visitor.id and u["name"] == "王先生" for u in updates)
    details = login_as("agent").get(f"/chat/console/visitor/{visitor.id}").get_json()["visitor"]
    assert (details["name"], details["phone"], details["email"]) == ("王先生", "13800138000", "wang@example.com")
    # Sent again (a lost ack): the same message, nothing new.
    again = client.emit("prechat", GOOD, namespace="/visitor", callback=True)
    assert again["message"]["id"] == ack["message"]["id"] and _count(ChatMessage) == 1
    # After a reload the visitor is not asked again.
    [later] = received(_visitor(app, site, visitor_token=session["visitor_token"]), "session", "/visitor", 1.0)
    assert later["prechat"] is False and later["conversation_id"] == conversation.id


def test_fields_the_site_does_not_ask_are_not_stored_and_a_form_without_question_opens_no_chat(app):
    site = _site(prechat_name=PrechatMode.required)
    client = _visitor(app, site)
    [session] = received(client, "session", "/visitor", 1.0)
    assert session["site"]["prechat_form"] == [{"name": "name", "required": True}]
    ack = client.emit("prechat", {"name": "李女士", "phone": "not a phone", "question": "?"},
                      namespace="/visitor", callback=True)
    assert ack == {"ok": True, "message": None}
    visitor = _the_visitor(session)
    assert (visitor.name, visitor.phone) == ("李女士", None) and _count(Conversation) == 0
    # The form sent, the visitor's first message opens the chat.
    ack = client.emit("message", {"client_msg_id": "m-1", "text": "你好"}, namespace="/visitor", callback=True)
    assert isinstance(ack["conversation_id"], int)


def test_a_form_of_optional_fields_is_asked_once_and_never_holds_a_chat_back(app):
    site = _site(prechat_phone=PrechatMode.optional)
    client = _visitor(app, site)
    [session] = received(client, "session", "/visitor", 1.0)
    assert session["prechat"] is True
    ack = client.emit("message", {"client_msg_id": "m-1", "text": "你好"}, namespace="/visitor", callback=True)
    assert isinstance(ack["conversation_id"], int)
    blank = _visitor(app, _site(prechat_email=PrechatMode.optional))
    assert blank.emit("prechat", {}, namespace="/visitor", callback=True) == {"ok": True, "message": None}


# --- the site's settings screen -------------------------------------------------------------------


def test_a_manager_sets_the_form_on_the_sites_page_and_it_is_audited(app, login_as):
    site = _site()
    browser = login_as("manager")
    form = {"name": site.name, "allowed_origins": ORIGIN, "theme_color": "#1677ff", "button_position": "right",
            "offline_form": "y", "active": "y", "auto_reply_seconds": "60", "prechat_name": "required",
            "prechat_phone": "optional", "prechat_email": "off", "prechat_question": "required"}
    response = browser.post(f"/chatsitemodelview/edit/{site.id}", data=form)
    assert response.status_code == 302
    db.session.expire_all()
    site = db.session.get(ChatSite, site.id)
    assert (site.prechat_name, site.prechat_phone, site.prechat_email, site.prechat_question) == (
        PrechatMode.required, PrechatMode.optional, PrechatMode.off, PrechatMode.required)
    audits = db.session.scalars(select(AuditLog).where(AuditLog.object_type == "chat_site",
                                                       AuditLog.action == "update")).all()
    assert any("prechat_name" in (a.changes or "") for a in audits)
    page = browser.get(f"/chatsitemodelview/show/{site.id}").get_data(as_text=True)
    assert "Pre-chat form: name" in page and "Required" in page
    bad = browser.post(f"/chatsitemodelview/edit/{site.id}", data={**form, "prechat_name": "always"})
    assert bad.status_code == 200 and 'alert alert-danger' in bad.get_data(as_text=True)  # the form again, marked
    db.session.expire_all()
    assert db.session.get(ChatSite, site.id).prechat_name == PrechatMode.required


# --- the agent's send key -------------------------------------------------------------------------


def test_an_agent_chooses_the_send_key_and_it_follows_them(app, agent_profile, login_as):
    first, second = _agent(app, login_as), _agent(app, login_as)
    page = login_as("agent").get("/chat/console/").get_data(as_text=True)
    assert '"send_key": "enter"' in page and "Enter sends" in page
    ack = first.emit("preferences", {"send_key": "ctrl_enter"}, namespace="/agent", callback=True)
    assert ack == {"send_key": "ctrl_enter"}
    db.session.expire_all()
    assert db.session.get(AgentProfile, agent_profile.id).send_key == SendKey.ctrl_enter
    assert received(second, "preferences", "/agent", 1.0) == [{"send_key": "ctrl_enter"}]
    state = login_as("agent").get("/chat/console/state").get_json()
    assert state["me"]["send_key"] == "ctrl_enter"
    page = login_as("agent").get("/chat/console/").get_data(as_text=True)
    assert '<option value="ctrl_enter" selected>' in page
    # A preference, not an administrative change: no audit row.
    assert not db.session.scalars(select(AuditLog).where(AuditLog.object_type == "chat_agent",
                                                         AuditLog.action == "update")).all()
    # The agents' admin page shows each agent's choice, in words.
    shown = login_as("admin").get(f"/agentprofilemodelview/show/{agent_profile.id}").get_data(as_text=True)
    assert "Send key" in shown and "Ctrl+Enter" in shown and "ctrl_enter" not in shown


@pytest.mark.parametrize("value", ["shift_enter", "", 5, True])
def test_an_unknown_send_key_is_refused_and_nothing_changes(app, agent_profile, login_as, value):
    ack = _agent(app, login_as).emit("preferences", {"send_key": value}, namespace="/agent", callback=True)
    assert "send_key" in ack["errors"]
    db.session.expire_all()
    assert db.session.get(AgentProfile, agent_profile.id).send_key == SendKey.enter
