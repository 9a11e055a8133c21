"""A visitor who closed their browser leaves the queue after a short grace; one who reloads, or
keeps another tab open, stays. Connections are counted in the database, across processes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db, socketio
from app.models.base import utcnow
from app.models.chat import (
    AgentProfile,
    AgentStatus,
    ChatOffer,
    ChatSite,
    Conversation,
    ConversationStatus,
    OfferOutcome,
    Visitor,
    VisitorConnection,
)
from app.services import chat_sites, chat_sweep, chat_visitors
from app.sockets.rooms import agent_room, conversation_room, site_agents_room
from app.sockets.sweeper import sweep_once
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"
GRACE = chat_visitors.GRACE_SECONDS


@pytest.fixture
def site(app):
    site = chat_sites.prepare_new_site(ChatSite(name="演示站点", allowed_origins=ORIGIN))
    db.session.add(site)
    db.session.commit()
    return site


def _tab(app, site, token: str | None = None):
    auth = {"site_key": site.site_key, **({"visitor_token": token} if token else {})}
    client = FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN}, auth=auth,
                               flask_test_client=app.test_client())
    [session] = received(client, "session", "/visitor", 2.0)
    return client, session


def _waiting_chat(app, site):
    """A visitor's tab with a chat in the queue (no agent online)."""
    tab, session = _tab(app, site)
    ack = tab.emit("message", {"client_msg_id": "q-1", "text": "在吗？想咨询代账"}, namespace="/visitor", callback=True)
    return tab, session, ack["conversation_id"]


def _conversation(conversation_id: int) -> Conversation:
    db.session.expire_all()
    return db.session.get(Conversation, conversation_id)


def _visitor(session: dict) -> Visitor:
    db.session.expire_all()
    return db.session.scalar(select(Visitor).where(Visitor.uid == session["visitor_id"]))


def test_a_visitor_who_closed_the_browser_leaves_the_queue_after_the_grace(app, site):
    tab, session, conversation_id = _waiting_chat(app, site)
    tab.disconnect("/visitor")
    left_at = _visitor(session).last_seen_at
    assert _visitor(session).online is False
    assert "closed" not in [e.event for e in chat_sweep.sweep(db.session, now=left_at + timedelta(seconds=GRACE - 1))]
    assert _conversation(conversation_id).status == ConversationStatus.queued

    emits = chat_sweep.sweep(db.session, now=left_at + timedelta(seconds=GRACE + 1))
    conversation = _conversation(conversation_id)
    assert (conversation.status, conversation.closed_by) == (ConversationStatus.closed, "visitor")
    told = [(e.event, e.payload, e.to) for e in emits if e.namespace == "/agent"]
    assert ("closed", {"conversation_id": conversation_id, "by": "visitor"}, conversation_room(conversation_id)) in told
    assert ("queue_update", {"conversation_id": conversation_id, "status": "closed", "position": None},
            site_agents_room(site.id)) in told
    again = chat_sweep.sweep(db.session, now=left_at + timedelta(seconds=GRACE + 3))
    assert "closed" not in [e.event for e in again]  # closed once


def test_a_visitor_who_comes_back_within_the_grace_stays_in_the_queue(app, site):
    tab, session, conversation_id = _waiting_chat(app, site)
    tab.disconnect("/visitor")  # a reload: the page's new connection follows at once
    again, _ = _tab(app, site, session["visitor_token"])
    left_at = _visitor(session).last_seen_at
    assert _visitor(session).online is True
    emits = chat_sweep.sweep(db.session, now=left_at + timedelta(seconds=GRACE + 30))
    assert "closed" not in [e.event for e in emits]
    assert _conversation(conversation_id).status == ConversationStatus.queued
    again.disconnect("/visitor")


def test_closing_one_of_two_tabs_keeps_the_visitor_online_and_waiting(app, site):
    first, session, conversation_id = _waiting_chat(app, site)
    second, _ = _tab(app, site, session["visitor_token"])
    first.disconnect("/visitor")
    assert _visitor(session).online is True
    emits = chat_sweep.sweep(db.session, now=utcnow() + timedelta(seconds=GRACE + 5))
    assert "closed" not in [e.event for e in emits]
    assert _conversation(conversation_id).status == ConversationStatus.queued
    second.disconnect("/visitor")
    assert _visitor(session).online is False


def test_an_offer_of_a_chat_whose_visitor_left_is_withdrawn(app, site, user_id):
    tab, session, conversation_id = _waiting_chat(app, site)
    agent = AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=2, status=AgentStatus.online)
    db.session.add(agent)
    db.session.commit()
    now = utcnow()
    conversation = _conversation(conversation_id)
    conversation.status, conversation.agent_id = ConversationStatus.offered, agent.id
    conversation.offer_expires_at = now + timedelta(seconds=600)
    db.session.add(ChatOffer(conversation_id=conversation_id, agent_id=agent.id, offered_at=now,
                             expires_at=conversation.offer_expires_at))
    db.session.commit()
    tab.disconnect("/visitor")
    emits = chat_sweep.sweep(db.session, now=utcnow() + timedelta(seconds=GRACE + 1))
    assert ("offer_withdrawn", {"conversation_id": conversation_id, "reason": "closed"}, agent_room(agent.id)) in [
        (e.event, e.payload, e.to) for e in emits]
    assert _conversation(conversation_id).status == ConversationStatus.closed
    assert db.session.scalar(select(ChatOffer.outcome)) == OfferOutcome.withdrawn


def test_an_active_chat_stays_open_when_the_visitor_leaves(app, site, user_id):
    tab, session, conversation_id = _waiting_chat(app, site)
    agent = AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=2)
    db.session.add(agent)
    db.session.commit()
    conversation = _conversation(conversation_id)
    conversation.status, conversation.agent_id = ConversationStatus.active, agent.id
    db.session.commit()
    tab.disconnect("/visitor")
    chat_sweep.sweep(db.session, now=utcnow() + timedelta(seconds=GRACE + 1))
    assert _conversation(conversation_id).status == ConversationStatus.active  # the agent closes it


def test_the_connections_of_a_process_that_died_are_dropped_and_its_visitors_leave(app, site):
    tab, session, conversation_id = _waiting_chat(app, site)
    # the visitor's connection as another process would have recorded it, which then died
    db.session.execute(VisitorConnection.__table__.update().values(process="4242-dead"))
    db.session.commit()
    refreshed = _visitor(session).last_seen_at  # about when the dead process last refreshed it
    assert "closed" not in [e.event for e in chat_sweep.sweep(db.session, now=refreshed + timedelta(seconds=GRACE))]
    assert _visitor(session).online is True  # not stale yet
    emits = chat_sweep.sweep(db.session, now=refreshed + timedelta(seconds=chat_visitors.STALE_SECONDS + 1))
    assert _visitor(session).online is False
    assert db.session.scalar(select(VisitorConnection.id)) is None
    # gone since the process last refreshed its connection, longer ago than the grace: out of the queue
    assert _conversation(conversation_id).status == ConversationStatus.closed
    assert "closed" in [e.event for e in emits]
    tab.disconnect("/visitor")


def test_this_processs_own_connections_stay_alive(app, site):
    tab, session, conversation_id = _waiting_chat(app, site)
    for minutes in (1, 2, 3):  # the sweep refreshes them on every pass
        chat_sweep.sweep(db.session, now=utcnow() + timedelta(minutes=minutes))
    assert _visitor(session).online is True
    assert _conversation(conversation_id).status == ConversationStatus.queued
    tab.disconnect("/visitor")


def test_the_grace_is_configurable(app, site):
    tab, session, conversation_id = _waiting_chat(app, site)
    tab.disconnect("/visitor")
    grace, app.config["CHAT_VISITOR_GRACE_SECONDS"] = app.config["CHAT_VISITOR_GRACE_SECONDS"], 0
    try:
        sweep_once(app)
    finally:
        app.config["CHAT_VISITOR_GRACE_SECONDS"] = grace
    assert _conversation(conversation_id).status == ConversationStatus.closed
