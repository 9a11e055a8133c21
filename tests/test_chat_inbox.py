"""Left messages (留言), transcripts by email, the conversation history with search, and the
screens that show them — with a local SMTP server receiving what the desk sends."""

from __future__ import annotations

import itertools
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
    ConversationParticipant,
    ConversationStatus,
    LeaveMessage,
    LeaveMessageStatus,
    PageView,
    ParticipantRole,
    SenderType,
    Visitor,
)
from app.models.security import AuditLog
from app.services import chat_inbox, chat_sites
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"


def _parts(message) -> tuple[str, str]:  # noqa: ANN001
    return (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content())


# --- fixtures ---------------------------------------------------------------------------------


def _site(name: str, offline_form: bool = True) -> ChatSite:
    site = chat_sites.prepare_new_site(ChatSite(name=name, allowed_origins=ORIGIN, offline_form=offline_form))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def site(app):
    return _site("代账官网")


@pytest.fixture
def other_site(app):
    return _site("另一站点")


@pytest.fixture
def agent_profile(app, user_id, site):
    """The ``agent`` user serves ``site`` only (through a group)."""
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小张",
                           groups=[AgentGroup(site_id=site.id, name="售前")])
    db.session.add(profile)
    db.session.commit()
    return profile


def _visitor(app, site, **auth):
    return FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                             auth={"site_key": site.site_key, **auth}, flask_test_client=app.test_client())


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


GOOD = {"client_msg_id": "lm-1", "name": "王小明", "phone": "13800138000", "email": "xm@example.com",
        "text": "想咨询小规模纳税人代账价格"}


# --- leave_message over the socket ----------------------------------------------------------


def test_a_left_message_is_stored_acknowledged_and_announced_to_the_sites_agents(app, site, agent_profile,
                                                                                  login_as):
    agent = FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as("agent"))
    visitor = _visitor(app, site)
    ack = visitor.emit("leave_message", GOOD, namespace="/visitor", callback=True)
    stored = db.session.get(LeaveMessage, ack["id"])
    assert (stored.name, stored.phone, stored.email, stored.text, stored.status) == (
        "王小明", "13800138000", "xm@example.com", "想咨询小规模纳税人代账价格", LeaveMessageStatus.new)
    assert (stored.visitor.name, stored.visitor.phone, stored.visitor.email) == (
        "王小明", "13800138000", "xm@example.com")
    [announced] = received(agent, "leave_message", "/agent", 2.0)
    assert announced == {"id": stored.id, "name": "王小明", "site_id": site.id}


def test_a_resent_left_message_is_stored_once(app, site):
    visitor = _visitor(app, site)
    first = visitor.emit("leave_message", GOOD, namespace="/visitor", callback=True)
    again = visitor.emit("leave_message", GOOD, namespace="/visitor", callback=True)
    assert first == again
    assert _count(LeaveMessage) == 1


@pytest.mark.parametrize(("field", "value"), [
    ("name", ""), ("name", "名" * 101), ("name", 42), ("phone", "abc"), ("phone", "12"), ("phone", "1" * 31),
    ("email", "not-an-address"), ("email", "a@b.com\r\nBcc: x@evil.example"), ("email", "a@b.com, c@d.com"),
    ("text", ""), ("text", "字" * 2001), ("client_msg_id", ""), ("client_msg_id", "x" * 65),
])
def test_each_bad_field_of_a_left_message_is_refused_and_nothing_is_stored(app, site, field, value):
    visitor = _visitor(app, site)
    received(visitor, "session", "/visitor", 1.0)
    ack = visitor.emit("leave_message", {**GOOD, field: value}, namespace="/visitor", callback=True)
    [error] = received(visitor, "error", "/visitor", 1.0)
    assert error["event"] == "leave_message" and field in error["errors"] and field in ack["errors"]
    assert _count(LeaveMessage) == 0
    assert db.session.scalar(select(Visitor.name)) is None


def test_a_left_message_needs_a_phone_or_an_email(app, site):
    visitor = _visitor(app, site)
    ack = visitor.emit("leave_message", {**GOOD, "phone": None, "email": ""}, namespace="/visitor", callback=True)
    assert "phone" in ack["errors"]
    only_email = visitor.emit("leave_message", {**GOOD, "phone": None}, namespace="/visitor", callback=True)
    only_landline = visitor.emit("leave_message", {**GOOD, "client_msg_id": "lm-2", "email": None,
                                                   "phone": "010-62345678"}, namespace="/visitor", callback=True)
    assert "id" in only_email and "id" in only_landline
    assert _count(LeaveMessage) == 2


def test_a_message_id_of_another_visitor_is_not_theirs_to_resend(app, site):
    first = _visitor(app, site)
    mine = first.emit("leave_message", GOOD, namespace="/visitor", callback=True)
    other = _visitor(app, site)
    ack = other.emit("leave_message", {**GOOD, "name": "冒名者"}, namespace="/visitor", callback=True)
    assert "error" in ack and "id" not in ack
    assert _count(LeaveMessage) == 1
    assert db.session.get(LeaveMessage, mine["id"]).name == "王小明"


def test_a_site_without_the_offline_form_takes_no_messages(app):
    site = _site("无留言站点", offline_form=False)
    visitor = _visitor(app, site)
    ack = visitor.emit("leave_message", GOOD, namespace="/visitor", callback=True)
    assert "error" in ack
    assert _count(LeaveMessage) == 0


# --- transcripts ------------------------------------------------------------------------------


def _conversation_with_everything(site: ChatSite, visitor: Visitor, agent: AgentProfile | None = None,
                                  closed: bool = True) -> Conversation:
    conversation = Conversation(site_id=site.id, visitor_id=visitor.id, agent_id=agent.id if agent else None,
                                status=ConversationStatus.closed if closed else ConversationStatus.active,
                                closed_at=datetime(2026, 11, 20, 3, 0) if closed else None,
                                queued_at=datetime(2026, 11, 20, 2, 0))
    db.session.add(conversation)
    db.session.flush()
    for sender, text in [(SenderType.visitor, "你好 <script>alert(1)</script>"),
                         (SenderType.agent, "您好，请问有什么可以帮您？"),
                         (SenderType.note, "内部备注：老客户"), (SenderType.whisper, "主管悄悄话"),
                         (SenderType.system, "会话已结束")]:
        db.session.add(ChatMessage(conversation_id=conversation.id, sender_type=sender, text=text,
                                   sender_name="客服小张" if sender == SenderType.agent else None))
    db.session.commit()
    return conversation


def test_a_transcript_mail_holds_what_the_visitor_saw_escaped_and_no_internal_messages(app, site, smtp):
    client = _visitor(app, site)
    [session] = received(client, "session", "/visitor", 1.0)
    visitor = db.session.scalar(select(Visitor).where(Visitor.uid == session["visitor_id"]))
    conversation = _conversation_with_everything(site, visitor)
    ack = client.emit("transcript", {"email": "visitor@example.com"}, namespace="/visitor", callback=True)
    assert ack == {"ok": True}
    [(recipients, mail)] = smtp.mails
    assert recipients == ["visitor@example.com"]
    assert "代账官网" in mail["Subject"]  # a UTF-8 (RFC 2047) subject, decoded
    text, html = _parts(mail)
    assert "你好 <script>alert(1)</script>" in text and "您好，请问有什么可以帮您？" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    for secret in ("内部备注", "主管悄悄话"):
        assert secret not in text and secret not in html
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).transcript_email == "visitor@example.com"


def test_transcripts_are_limited_per_conversation_and_bad_addresses_refused(app, site, smtp):
    client = _visitor(app, site)
    [session] = received(client, "session", "/visitor", 1.0)
    _conversation_with_everything(site, db.session.scalar(select(Visitor).where(Visitor.uid == session["visitor_id"])))
    bad = client.emit("transcript", {"email": "nope"}, namespace="/visitor", callback=True)
    assert "email" in bad["errors"] and smtp.mails == []
    for _ in range(chat_inbox.MAX_TRANSCRIPTS):
        ack = client.emit("transcript", {"email": "v@example.com"}, namespace="/visitor", callback=True)
        assert ack == {"ok": True}
    refused = client.emit("transcript", {"email": "v@example.com"}, namespace="/visitor", callback=True)
    assert "error" in refused and len(smtp.mails) == chat_inbox.MAX_TRANSCRIPTS


def test_no_transcript_without_a_conversation_or_when_the_mail_server_is_down(app, site, smtp_down):
    client = _visitor(app, site)
    [session] = received(client, "session", "/visitor", 1.0)
    assert "error" in client.emit("transcript", {"email": "v@example.com"}, namespace="/visitor", callback=True)
    conversation = _conversation_with_everything(
        site, db.session.scalar(select(Visitor).where(Visitor.uid == session["visitor_id"])))
    ack = client.emit("transcript", {"email": "v@example.com"}, namespace="/visitor", callback=True)
    # the visitor reads what happened in words, never the name of the exception behind it
    assert ack["error"] == "聊天记录暂时无法发送，请稍后再试。"
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).transcript_email is None


# --- left messages screen -----------------------------------------------------------------------


def _left(site: ChatSite, name: str = "王五", email: str | None = "ww@example.com", phone: str | None = None,
          text: str = "请联系我") -> LeaveMessage:
    message = LeaveMessage(site_id=site.id, name=name, email=email, phone=phone, text=text)
    db.session.add(message)
    db.session.commit()
    return message


def test_agents_list_only_the_left_messages_of_their_sites_and_managers_all(app, site, other_site, agent_profile,
                                                                            login_as):
    _left(site, name="本站留言人")
    other = _left(other_site, name="他站留言人")
    as_agent = login_as("agent").get("/leavemessagemodelview/list/").get_data(as_text=True)
    assert "本站留言人" in as_agent and "他站留言人" not in as_agent
    assert login_as("agent").get(f"/leavemessagemodelview/show/{other.id}").status_code == 404
    as_manager = login_as("manager").get("/leavemessagemodelview/list/").get_data(as_text=True)
    assert "本站留言人" in as_manager and "他站留言人" in as_manager
    assert login_as("accountant").get("/leavemessagemodelview/list/").status_code in (302, 403)


def test_a_left_message_is_assigned_to_a_chat_user_only(app, site, agent_profile, login_as, user_id):
    message = _left(site)
    manager = login_as("manager")
    manager.post(f"/leavemessagemodelview/assign/{message.id}", data={"user_id": str(user_id("reviewer"))})
    db.session.expire_all()
    assert (message.assigned_to_id, message.status) == (None, LeaveMessageStatus.new)
    manager.post(f"/leavemessagemodelview/assign/{message.id}", data={"user_id": str(user_id("agent"))})
    db.session.expire_all()
    assert (message.assigned_to_id, message.status) == (user_id("agent"), LeaveMessageStatus.assigned)
    manager.post(f"/leavemessagemodelview/assign/{message.id}", data={"status": "closed"})
    db.session.expire_all()
    assert message.status == LeaveMessageStatus.closed
    page = manager.get(f"/leavemessagemodelview/show/{message.id}").get_data(as_text=True)
    assert "assign-form" in page and "reply-form" in page


def test_a_reply_is_emailed_stored_and_audited(app, site, agent_profile, login_as, user_id, smtp):
    message = _left(site, text="发票怎么开？<b>急</b>")
    response = login_as("agent").post(f"/leavemessagemodelview/reply/{message.id}",
                                      data={"reply_text": "您好，我们明天上午给您回电。"}, follow_redirects=True)
    assert response.status_code == 200
    [(recipients, mail)] = smtp.mails
    assert recipients == ["ww@example.com"] and "代账官网" in mail["Subject"]
    text, html = _parts(mail)
    assert "我们明天上午给您回电" in text and "&lt;b&gt;急&lt;/b&gt;" in html
    db.session.expire_all()
    stored = db.session.get(LeaveMessage, message.id)
    assert (stored.status, stored.reply_text, stored.replied_by_id) == (
        LeaveMessageStatus.replied, "您好，我们明天上午给您回电。", user_id("agent"))
    assert stored.replied_at is not None
    assert _count(AuditLog, AuditLog.object_type == "chat_leave_message", AuditLog.action == "update",
                  AuditLog.user_id == user_id("agent")) == 1


def test_a_reply_without_an_email_is_recorded_as_a_phone_follow_up(app, site, login_as, smtp):
    message = _left(site, email=None, phone="13900139000")
    login_as("manager").post(f"/leavemessagemodelview/reply/{message.id}",
                             data={"reply_text": "已电话联系，约周五面谈"})
    db.session.expire_all()
    assert (message.status, message.reply_text) == (LeaveMessageStatus.replied, "已电话联系，约周五面谈")
    assert smtp.mails == []


def test_a_reply_that_cannot_be_mailed_changes_nothing_and_says_so(app, site, login_as, smtp_down):
    message = _left(site)
    page = login_as("manager").post(f"/leavemessagemodelview/reply/{message.id}", data={"reply_text": "您好"},
                                    follow_redirects=True).get_data(as_text=True)
    assert "could not be sent" in page or "无法发送" in page
    db.session.expire_all()
    assert (message.status, message.reply_text, message.replied_at) == (LeaveMessageStatus.new, None, None)


# --- history and transcripts ------------------------------------------------------------------


_UIDS = itertools.count(1)


def _visitor_row(site: ChatSite, uid: str, **fields) -> Visitor:
    visitor = Visitor(site_id=site.id, uid=uid, **fields)
    db.session.add(visitor)
    db.session.commit()
    return visitor


def _chat(site: ChatSite, texts: list[str], agent: AgentProfile | None = None, rating: int | None = None,
          started: datetime = datetime(2026, 11, 20, 2, 0)) -> Conversation:
    visitor = _visitor_row(site, f"v-{next(_UIDS)}")
    conversation = Conversation(site_id=site.id, visitor_id=visitor.id, agent_id=agent.id if agent else None,
                                rating=rating, status=ConversationStatus.closed, queued_at=started)
    db.session.add(conversation)
    db.session.flush()
    for text in texts:
        db.session.add(ChatMessage(conversation_id=conversation.id, sender_type=SenderType.visitor, text=text))
    db.session.commit()
    return conversation


def test_search_finds_chinese_text_once_per_conversation_and_treats_percent_literally(app, site):
    tax = _chat(site, ["增值税申报问题", "还是增值税的事"])
    percent = _chat(site, ["优惠是 5% 吗"])
    _chat(site, ["营业执照办理"])
    found = chat_inbox.search_conversations(db.session, "增值税")
    assert (found.total, [c.id for c in found.conversations]) == (1, [tax.id])
    assert [c.id for c in chat_inbox.search_conversations(db.session, "5%").conversations] == [percent.id]
    assert chat_inbox.search_conversations(db.session, "%").total == 1
    assert chat_inbox.search_conversations(db.session, "_").total == 0


def test_search_filters_by_site_agent_date_and_rating(app, site, other_site, agent_profile):
    mine = _chat(site, ["代账咨询"], agent=agent_profile, rating=5, started=datetime(2026, 11, 20, 2, 0))
    _chat(site, ["代账咨询"], rating=2, started=datetime(2026, 11, 10, 2, 0))
    _chat(other_site, ["代账咨询"], rating=5, started=datetime(2026, 11, 20, 3, 0))
    search = chat_inbox.search_conversations
    assert search(db.session, "代账").total == 3
    assert [c.id for c in search(db.session, "代账", site_id=site.id, rating=5).conversations] == [mine.id]
    assert [c.id for c in search(db.session, "代账", agent_id=agent_profile.id).conversations] == [mine.id]
    from datetime import date

    assert search(db.session, "代账", date_from=date(2026, 11, 15), date_to=date(2026, 11, 20)).total == 2
    assert search(db.session, "代账", site_ids=[other_site.id]).total == 1


def test_the_history_screen_shows_an_agent_only_their_sites(app, site, other_site, agent_profile, login_as):
    _chat(site, ["本站客户问社保"])
    other = _chat(other_site, ["他站客户问社保"])
    page = login_as("agent").get("/chat/history/?q=社保").get_data(as_text=True)
    assert "本站客户问社保" in page and "他站客户问社保" not in page
    assert login_as("agent").get(f"/chat/history/{other.id}").status_code == 404
    everything = login_as("manager").get("/chat/history/?q=社保&rating=9").get_data(as_text=True)
    assert "本站客户问社保" in everything and "他站客户问社保" in everything


def test_a_user_without_an_agent_profile_sees_no_history(app, site, login_as):
    _chat(site, ["没有客服档案"])
    page = login_as("agent").get("/chat/history/").get_data(as_text=True)
    assert "no-conversations" in page and "没有客服档案" not in page


def test_a_transcript_page_escapes_visitor_text_and_shows_internal_messages_only_to_insiders(
        app, site, agent_profile, login_as, user_id):
    visitor = _visitor_row(site, "v-script")
    conversation = _conversation_with_everything(site, visitor)  # no agent: the site's agent is not in it
    for who in ("manager", "agent"):
        page = login_as(who).get(f"/chat/history/{conversation.id}").get_data(as_text=True)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
        assert ("内部备注：老客户" in page) is (who == "manager")
    db.session.add(ConversationParticipant(conversation_id=conversation.id, user_id=user_id("agent"),
                                           role=ParticipantRole.invited))
    db.session.commit()
    assert "内部备注：老客户" in login_as("agent").get(f"/chat/history/{conversation.id}").get_data(as_text=True)


def test_a_visitor_page_shows_their_trail_and_conversations(app, site, agent_profile, login_as):
    visitor = _visitor_row(site, "v-trail", name="<i>访客</i>")
    db.session.add(PageView(visitor_id=visitor.id, url="https://www.example.com/pricing", title="价格 <b>表</b>"))
    conversation = _chat(site, ["问价格"])
    conversation.visitor_id = visitor.id
    db.session.commit()
    page = login_as("agent").get(f"/chatvisitormodelview/show/{visitor.id}").get_data(as_text=True)
    assert "https://www.example.com/pricing" in page and "价格 &lt;b&gt;表&lt;/b&gt;" in page
    assert f"/chat/history/{conversation.id}" in page and "<i>访客</i>" not in page
