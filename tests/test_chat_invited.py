"""An accepted invitation starts the chat: the invitation's text is its first message (the inviting
agent's), and the chat goes to the inviting agent when they can take it, else it is queued and
routed. A rule of "30 s on the page" fires at 30 s (± the sweep's tick), not at the next heartbeat."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models.base import utcnow
from app.models.chat import (
    AgentGroup,
    AgentProfile,
    AgentStatus,
    ChatInvitation,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationStatus,
    InvitationRule,
    Visitor,
)
from app.services import chat_sites, chat_sweep, chat_tools, tracking
from app.services.users import create_user
from tests.conftest import PASSWORD
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"


@pytest.fixture
def site(app):
    site = chat_sites.prepare_new_site(ChatSite(name="演示站点", allowed_origins=ORIGIN, welcome_text="欢迎咨询"))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def group(app, site):
    group = AgentGroup(site_id=site.id, name="售前", is_default=True)
    db.session.add(group)
    db.session.commit()
    return group


def _agent(user_id, group, username: str, name: str, **kw) -> AgentProfile:
    profile = AgentProfile(user_id=user_id(username), display_name=name, groups=[group],
                           **{"max_chats": 3, "status": AgentStatus.online, **kw})
    db.session.add(profile)
    db.session.commit()
    return profile


def _widget(app, site):
    client = FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                               auth={"site_key": site.site_key}, flask_test_client=app.test_client())
    [session] = received(client, "session", "/visitor", 2.0)
    db.session.expire_all()
    return client, db.session.scalar(select(Visitor).where(Visitor.uid == session["visitor_id"]))


def _console(app, login_as, username="agent"):
    client = FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as(username))
    assert client.is_connected("/agent")
    return client


def _invite_and_accept(console, widget, visitor, text="您好，需要报税方面的帮助吗？") -> dict:
    invited = console.emit("invite", {"visitor_id": visitor.id, "text": text}, namespace="/agent", callback=True)
    received(widget, "invite", "/visitor", 2.0)
    return widget.emit("invite_response", {"invitation_id": invited["invitation_id"], "accepted": True},
                       namespace="/visitor", callback=True)


def _events(client, namespace: str, wait: float = 0.5) -> dict[str, list]:
    """Every event the client received within *wait* seconds, by name."""
    time.sleep(wait)
    found: dict[str, list] = {}
    for event in client.get_received(namespace):
        found.setdefault(event["name"], []).append(event["args"] if event["name"] == "message" else event["args"][0])
    return found


def _messages(conversation_id: int) -> list[tuple[str, str | None, str]]:
    db.session.expire_all()
    return [(m.sender_type.value, m.sender_name, m.text) for m in db.session.scalars(
        select(ChatMessage).where(ChatMessage.conversation_id == conversation_id).order_by(ChatMessage.id))]


def test_an_accepted_invitation_puts_its_text_in_the_chat_and_gives_the_chat_to_the_inviting_agent(
        app, site, group, user_id, login_as):
    agent = _agent(user_id, group, "agent", "客服小张")
    agent.last_seen_at = utcnow()
    db.session.commit()
    console = _console(app, login_as)
    widget, visitor = _widget(app, site)
    answered = _invite_and_accept(console, widget, visitor)
    conversation = db.session.get(Conversation, answered["conversation_id"])
    assert (conversation.status, conversation.agent_id) == (ConversationStatus.active, agent.id)
    assert _messages(conversation.id) == [("agent", "客服小张", "您好，需要报税方面的帮助吗？")]
    seen = _events(widget, "/visitor")
    assert [(m["sender_type"], m["sender_name"], m["text"]) for m in seen["message"]] == [
        ("agent", "客服小张", "您好，需要报税方面的帮助吗？")]
    assert seen["agent_joined"] == [{"conversation_id": conversation.id, "name": "客服小张"}]
    assert [m["text"] for m in received(console, "message", "/agent", 2.0)] == ["您好，需要报税方面的帮助吗？"]
    # the visitor's answer lands in that chat and reaches the agent
    ack = widget.emit("message", {"client_msg_id": "v-1", "text": "是的，想问下季度申报"}, namespace="/visitor",
                      callback=True)
    assert ack["conversation_id"] == conversation.id
    assert [m["text"] for m in received(console, "message", "/agent", 2.0)] == ["是的，想问下季度申报"]
    # answering again (another tab) stores the text once
    invitation = db.session.scalar(select(ChatInvitation))
    assert widget.emit("invite_response", {"invitation_id": invitation.id, "accepted": True}, namespace="/visitor",
                       callback=True)["conversation_id"] == conversation.id
    assert [t for _s, _n, t in _messages(conversation.id)] == ["您好，需要报税方面的帮助吗？", "是的，想问下季度申报"]


@pytest.mark.parametrize("why", ["away", "full", "absent"])
def test_an_inviting_agent_who_cannot_take_the_chat_leaves_it_to_the_queue(app, site, group, user_id, login_as,
                                                                           why):
    inviter = _agent(user_id, group, "agent", "客服小张", max_chats=1 if why == "full" else 3)
    create_user(app, "agent2", PASSWORD, ["Agent"], first_name="agent2")
    colleague = _agent(user_id, group, "agent2", "客服小李")
    console = _console(app, login_as)  # the inviter's console: present and online
    widget, visitor = _widget(app, site)
    invited = console.emit("invite", {"visitor_id": visitor.id, "text": "需要帮忙吗？"}, namespace="/agent",
                           callback=True)
    db.session.expire_all()
    inviter = db.session.get(AgentProfile, inviter.id)
    if why == "away":
        inviter.status = AgentStatus.away
    elif why == "full":
        other = Visitor(site_id=site.id, uid="other-visitor")
        db.session.add(other)
        db.session.flush()
        db.session.add(Conversation(site_id=site.id, visitor_id=other.id, agent_id=inviter.id,
                                    status=ConversationStatus.active))
    else:
        inviter.last_seen_at = utcnow() - timedelta(minutes=5)  # the console went quiet
    colleague.last_seen_at = utcnow()
    db.session.commit()
    answered = widget.emit("invite_response", {"invitation_id": invited["invitation_id"], "accepted": True},
                           namespace="/visitor", callback=True)
    conversation = db.session.get(Conversation, answered["conversation_id"])
    db.session.refresh(conversation)
    # offered to the colleague of the group; the inviter is the asked-for agent, offered it when free
    assert (conversation.status, conversation.agent_id, conversation.requested_agent_id) == (
        ConversationStatus.offered, colleague.id, inviter.id)
    assert _messages(conversation.id) == [("agent", "客服小张", "需要帮忙吗？")]


def test_a_rules_accepted_invitation_is_a_system_message_in_a_routed_chat(app, site, group, user_id):
    agent = _agent(user_id, group, "agent", "客服小张", last_seen_at=utcnow())
    db.session.add(InvitationRule(site_id=site.id, name="定价页", message="需要报价吗？", url_pattern="*/pricing*"))
    db.session.commit()
    widget, _visitor = _widget(app, site)
    widget.emit("page_view", {"url": "https://www.example.com/pricing"}, namespace="/visitor", callback=True)
    [invite] = received(widget, "invite", "/visitor", 2.0)
    answered = widget.emit("invite_response", {"invitation_id": invite["invitation_id"], "accepted": True},
                           namespace="/visitor", callback=True)
    conversation = db.session.get(Conversation, answered["conversation_id"])
    db.session.refresh(conversation)
    assert (conversation.status, conversation.agent_id) == (ConversationStatus.offered, agent.id)
    assert _messages(conversation.id) == [("system", None, "需要报价吗？")]


def test_a_declined_invitation_starts_no_chat(app, site, group, user_id, login_as):
    _agent(user_id, group, "agent", "客服小张", last_seen_at=utcnow())
    console = _console(app, login_as)
    widget, visitor = _widget(app, site)
    invited = console.emit("invite", {"visitor_id": visitor.id}, namespace="/agent", callback=True)
    answered = widget.emit("invite_response", {"invitation_id": invited["invitation_id"], "accepted": False},
                           namespace="/visitor", callback=True)
    assert answered == {"ok": True, "conversation_id": None}
    assert db.session.scalar(select(func.count()).select_from(Conversation)) == 0


# --- "after 30 s on the page" ----------------------------------------------------------------


T0 = datetime(2026, 11, 23, 8, 0, 0)


def test_a_30_second_rule_fires_at_30_seconds_between_heartbeats(app, site):
    """The widget beats every 15 s from its start, its page view stored a moment later (0.3 s): the
    beats credit 14 s and then 29 s, so a check on heartbeats only fired at the third beat, ~45 s."""
    db.session.add(InvitationRule(site_id=site.id, name="停留 30 秒", message="需要帮助吗？", min_seconds_on_page=30))
    visitor = Visitor(site_id=site.id, uid="reader", online=True, first_seen_at=T0, last_seen_at=T0)
    db.session.add(visitor)
    db.session.commit()
    start = T0 + timedelta(seconds=0.3)
    view = tracking.record_page_view(db.session, visitor.id, {"url": "https://www.example.com/tax"}, now=start)
    for beat in (15, 30):
        tracking.heartbeat(db.session, visitor.id, view.id, now=T0 + timedelta(seconds=beat))
        assert chat_tools.invite_by_rule(db.session, visitor.id, view.id, now=T0 + timedelta(seconds=beat)) is None
    assert db.session.get(type(view), view.id).seconds == 29
    assert chat_sweep.sweep(db.session, now=start + timedelta(seconds=29.5)) == []
    emits = chat_sweep.sweep(db.session, now=start + timedelta(seconds=30.5))  # the next tick after 30 s
    assert [(e.event, e.payload["text"]) for e in emits] == [("invite", "需要帮助吗？"),
                                                             ("visitor_invited", "需要帮助吗？")]
    assert chat_sweep.sweep(db.session, now=start + timedelta(seconds=32.5)) == []  # once per visit


def test_a_page_no_longer_beating_stops_counting(app, site):
    db.session.add(InvitationRule(site_id=site.id, name="停留 30 秒", message="需要帮助吗？", min_seconds_on_page=30))
    visitor = Visitor(site_id=site.id, uid="reader", online=True, first_seen_at=T0, last_seen_at=T0)
    db.session.add(visitor)
    db.session.commit()
    view = tracking.record_page_view(db.session, visitor.id, {"url": "https://www.example.com/tax"}, now=T0)
    tracking.heartbeat(db.session, visitor.id, view.id, now=T0 + timedelta(seconds=5))  # then the tab was hidden
    assert chat_sweep.sweep(db.session, now=T0 + timedelta(seconds=31)) == []
    assert db.session.scalar(select(func.count()).select_from(ChatInvitation)) == 0
