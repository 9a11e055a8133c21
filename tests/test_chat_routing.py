"""Chat routing: groups by URL rule and designated agent, least-busy and round-robin offers under the
chat cap, offers that time out or are declined, the FIFO queue told live with its wait estimate,
greetings and the no-answer auto reply, agent status and presence, the visitor rate limit and the
console's origin check."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.extensions import db, socketio
from app.models.base import utcnow
from app.models.chat import (
    AgentGroup,
    AgentPresence,
    AgentProfile,
    AgentStatus,
    ChatAttachment,
    ChatMessage,
    ChatOffer,
    ChatSite,
    Conversation,
    ConversationParticipant,
    ConversationStatus,
    OfferOutcome,
    ParticipantRole,
    RoutingMode,
    SenderType,
    Visitor,
)
from app.services import chat, chat_post, chat_sites, chat_sweep, presence, queueing, routing
from app.services.errors import AccessDenied, Conflict, ValidationFailed
from app.sockets.rooms import agent_room, conversation_room, site_agents_room, site_visitors_room, visitor_room
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"


@pytest.fixture
def site(app):
    site = chat_sites.prepare_new_site(ChatSite(name="演示站点", allowed_origins=ORIGIN, auto_reply_seconds=0))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def make_agent(app, user_id):
    def _make(username: str, *, status: AgentStatus = AgentStatus.online, max_chats: int = 3, groups=(),
              seen_ago: int = 0, greeting: str | None = None, last_assigned_ago: int | None = None) -> AgentProfile:
        now = utcnow()
        agent = AgentProfile(user_id=user_id(username), display_name=f"客服{username}", max_chats=max_chats,
                             status=status, last_seen_at=now - timedelta(seconds=seen_ago), greeting=greeting,
                             last_assigned_at=None if last_assigned_ago is None
                             else now - timedelta(seconds=last_assigned_ago))
        agent.groups = list(groups)
        db.session.add(agent)
        db.session.commit()
        return agent

    return _make


def _group(site, name, *, patterns=None, priority=100, default=False, mode=RoutingMode.least_busy, timeout=30):
    group = AgentGroup(site_id=site.id, name=name, url_patterns=patterns, priority=priority, is_default=default,
                       routing=mode, accept_timeout_seconds=timeout)
    db.session.add(group)
    db.session.commit()
    return group


def _open(site, text="你好", url=None, agent=None, route=True) -> tuple[Conversation, list]:
    """A new visitor writes their first message; returns the conversation and the events sent."""
    visitor = Visitor(site_id=site.id, uid=chat_sites.new_visitor_uid(), online=True)
    db.session.add(visitor)
    db.session.commit()
    posted = chat_post.post_visitor_message(db.session, visitor.id, "m-1", text, entry_url=url,
                                       requested_agent_id=agent.id if agent else None)
    emits = routing.after_visitor_message(db.session, posted.message_id) if route else []
    return db.session.get(Conversation, posted.conversation_id), emits


def _fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def _offers(conversation_id):
    db.session.expire_all()
    return list(db.session.scalars(select(ChatOffer).where(ChatOffer.conversation_id == conversation_id)
                                   .order_by(ChatOffer.id)))


def _to(emits, event, room=None):
    return [e.payload for e in emits if e.event == event and (room is None or e.to == room)]


# --- choosing the group and the agent ---------------------------------------------------------


def test_the_url_rule_with_the_lowest_priority_number_wins_and_other_pages_go_to_the_default_group(
        site, make_agent):
    tax = _group(site, "税务", patterns="*/tax/*\n*/fapiao*", priority=10)
    _group(site, "税务备用", patterns="*/tax/*", priority=20)
    general = _group(site, "综合", default=True)
    tax_agent = make_agent("agent", groups=[tax])
    general_agent = make_agent("manager", groups=[general])

    on_tax, emits = _open(site, url="https://www.example.com/TAX/vat")
    assert (on_tax.group_id, on_tax.agent_id, on_tax.status) == (tax.id, tax_agent.id, ConversationStatus.offered)
    assert [p["conversation_id"] for p in _to(emits, "chat_offer", agent_room(tax_agent.id))] == [on_tax.id]
    on_about, _ = _open(site, url="https://www.example.com/about")
    assert (on_about.group_id, on_about.agent_id) == (general.id, general_agent.id)


def test_a_designated_agent_is_offered_the_chat_and_when_away_their_group_takes_it(site, make_agent):
    team = _group(site, "一组")
    other = _group(site, "二组", default=True)
    wanted = make_agent("agent", groups=[team])
    make_agent("manager", groups=[team])
    make_agent("admin", groups=[other])
    chosen, _ = _open(site, agent=wanted)
    assert (chosen.agent_id, chosen.group_id, chosen.requested_agent_id) == (wanted.id, team.id, wanted.id)

    wanted.status = AgentStatus.away
    db.session.commit()
    fallback, _ = _open(site, agent=wanted)
    assert fallback.group_id == team.id
    assert fallback.agent.user.username == "manager"


@pytest.mark.parametrize(("mode", "expected"), [(RoutingMode.least_busy, "manager"),
                                               (RoutingMode.round_robin, "agent")])
def test_least_busy_takes_the_agent_with_fewer_chats_round_robin_the_longest_unassigned(
        site, make_agent, mode, expected):
    group = _group(site, "一组", default=True, mode=mode)
    busy = make_agent("agent", groups=[group], max_chats=5)
    for _ in range(2):  # busy carries two chats...
        conversation, _ = _open(site, route=False)
        chat.accept(db.session, _fresh(AgentProfile, busy.id), conversation.id)
    busy = _fresh(AgentProfile, busy.id)
    busy.last_assigned_at = utcnow() - timedelta(hours=1)  # ...but was last given one an hour ago
    make_agent("manager", groups=[group], last_assigned_ago=60)
    conversation, _ = _open(site)
    assert conversation.agent.user.username == expected


def test_least_busy_breaks_ties_by_the_longest_since_an_assignment(site, make_agent):
    make_agent("agent", last_assigned_ago=60)
    make_agent("manager", last_assigned_ago=600)
    first, _ = _open(site)
    second, _ = _open(site)
    assert (first.agent.user.username, second.agent.user.username) == ("manager", "agent")


def test_the_chat_cap_holds_and_the_visitor_waits_in_the_queue(site, make_agent):
    agent = make_agent("agent", max_chats=1)
    first, _ = _open(site)
    second, emits = _open(site)
    assert first.agent_id == agent.id and second.status == ConversationStatus.queued and second.agent_id is None
    assert _to(emits, "queue", visitor_room(second.visitor_id)) == [
        {"conversation_id": second.id, "position": 1,
         "eta_seconds": round(queueing.eta_for_position(1, routing.DEFAULT_HANDLE_SECONDS, 1))}]
    assert _to(emits, "chat_offer") == []


@pytest.mark.parametrize("status", [AgentStatus.away, AgentStatus.invisible, AgentStatus.offline, "stale"])
def test_away_invisible_offline_and_absent_agents_are_not_offered_chats(site, make_agent, status):
    agent = make_agent("agent", status=AgentStatus.online if status == "stale" else status,
                       seen_ago=routing.PRESENCE_SECONDS + 5 if status == "stale" else 0)
    conversation, emits = _open(site)
    assert conversation.status == ConversationStatus.queued and _to(emits, "chat_offer") == []
    assert _offers(conversation.id) == []
    if status == AgentStatus.invisible:  # an invisible agent still takes a chat from the queue by hand
        assert chat.accept(db.session, agent, conversation.id).status == ConversationStatus.active


def test_an_offer_that_times_out_moves_to_the_next_agent_and_the_first_is_set_away(site, make_agent):
    group = _group(site, "一组", default=True, timeout=20)
    first = make_agent("agent", groups=[group])
    second = make_agent("manager", groups=[group])
    conversation, _ = _open(site)
    assert conversation.agent_id == first.id
    now = utcnow()
    assert chat_sweep.sweep(db.session, now + timedelta(seconds=5)) == []  # not yet

    emits = chat_sweep.sweep(db.session, now + timedelta(seconds=21))
    conversation = _fresh(Conversation, conversation.id)
    assert (conversation.status, conversation.agent_id) == (ConversationStatus.offered, second.id)
    assert [(o.agent_id, o.outcome) for o in _offers(conversation.id)] == [
        (first.id, OfferOutcome.timed_out), (second.id, OfferOutcome.pending)]
    assert _to(emits, "offer_withdrawn", agent_room(first.id)) == [
        {"conversation_id": conversation.id, "reason": "timed_out"}]
    assert [p["conversation_id"] for p in _to(emits, "chat_offer", agent_room(second.id))] == [conversation.id]
    assert {"agent_id": first.id, "name": "客服agent", "status": "away"} in _to(emits, "agent_status")
    assert _fresh(AgentProfile, first.id).status == AgentStatus.away
    # the status history (time online / away in the analytics) has the away stretch from then on
    assert db.session.execute(select(AgentPresence.status, AgentPresence.started_at).where(
        AgentPresence.agent_id == first.id, AgentPresence.ended_at.is_(None))).all() == [
        (AgentStatus.away, now + timedelta(seconds=21))]
    with pytest.raises(Conflict):
        chat.accept(db.session, _fresh(AgentProfile, first.id), conversation.id)


def test_a_declined_chat_goes_to_the_next_agent_and_never_back(site, make_agent):
    first = make_agent("agent")
    second = make_agent("manager")
    conversation, _ = _open(site)
    assert conversation.agent_id == first.id
    with pytest.raises(AccessDenied):
        routing.decline(db.session, second, conversation.id)  # not offered to them
    emits = routing.decline(db.session, _fresh(AgentProfile, first.id), conversation.id)
    assert [p["conversation_id"] for p in _to(emits, "chat_offer", agent_room(second.id))] == [conversation.id]
    routing.decline(db.session, _fresh(AgentProfile, second.id), conversation.id)
    conversation = _fresh(Conversation, conversation.id)
    assert (conversation.status, conversation.agent_id) == (ConversationStatus.queued, None)
    assert [o.outcome for o in _offers(conversation.id)] == [OfferOutcome.declined, OfferOutcome.declined]
    assert _to(chat_sweep.sweep(db.session), "chat_offer") == []  # neither is asked again
    assert chat.accept(db.session, _fresh(AgentProfile, first.id), conversation.id).agent_id == first.id


def test_two_processes_routing_at_once_make_one_offer_and_keep_the_cap(app, site, make_agent):
    agent = make_agent("agent", max_chats=5)
    conversation, _ = _open(site, route=False)
    now = utcnow()
    one, two = Session(db.engine), Session(db.engine)
    try:
        planned = [routing.plan_offer(s, s.get(Conversation, conversation.id), now) for s in (one, two)]
        assert [a.id for a in planned] == [agent.id, agent.id]
        won = routing.commit_offer(one, conversation.id, planned[0], now)
        lost = routing.commit_offer(two, conversation.id, planned[1], now)
        assert len(won) == 1 and lost == []
        assert len(_offers(conversation.id)) == 1

        capped = make_agent("manager", max_chats=1)
        agent.status = AgentStatus.away
        db.session.commit()
        a, _ = _open(site, route=False)
        b, _ = _open(site, route=False)
        first = routing.plan_offer(one, one.get(Conversation, a.id), now)
        second = routing.plan_offer(two, two.get(Conversation, b.id), now)
        assert first.id == second.id == capped.id
        assert len(routing.commit_offer(one, a.id, first, now)) == 1
        assert routing.commit_offer(two, b.id, second, now) == []
        assert _fresh(Conversation, b.id).status == ConversationStatus.queued
    finally:
        one.close()
        two.close()


# --- the queue --------------------------------------------------------------------------------


def _closed_chat(site, minutes_ago: int, handled_seconds: int) -> None:
    visitor = Visitor(site_id=site.id, uid=chat_sites.new_visitor_uid())
    db.session.add(visitor)
    db.session.flush()
    closed = utcnow() - timedelta(minutes=minutes_ago)
    db.session.add(Conversation(site_id=site.id, visitor_id=visitor.id, status=ConversationStatus.closed,
                                queued_at=closed - timedelta(seconds=handled_seconds + 5),
                                accepted_at=closed - timedelta(seconds=handled_seconds), closed_at=closed))
    db.session.commit()


def test_queued_visitors_hear_their_fifo_position_and_wait_estimate_and_the_queue_moves_on(site, make_agent):
    _closed_chat(site, 30, 200)
    _closed_chat(site, 20, 400)  # mean handle time 300 s
    _closed_chat(site, 60 * 24 * 30, 5000)  # a month ago: not recent
    make_agent("agent", max_chats=1)
    make_agent("manager", max_chats=1)
    served = [_open(site)[0] for _ in range(2)]
    waiting = [_open(site)[0] for _ in range(3)]
    assert routing.mean_handle_seconds(db.session, site.id, utcnow()) == pytest.approx(300)
    emits = routing.queue_emits(db.session, site.id)
    heard = {e.to: e.payload for e in emits if e.event == "queue"}
    # two chat slots online: the k-th waits k·300/2 seconds (M/M/n with every server busy)
    assert [heard[visitor_room(c.visitor_id)] for c in waiting] == [
        {"conversation_id": c.id, "position": n, "eta_seconds": 150 * n} for n, c in enumerate(waiting, start=1)]
    assert [p["position"] for p in _to(emits, "queue_update", site_agents_room(site.id))] == [1, 2, 3]

    chat.accept(db.session, served[0].agent, served[0].id)
    closed = chat.close(db.session, served[0].id, agent=_fresh(AgentProfile, served[0].agent_id))
    emits = routing.after_close(db.session, closed)
    assert _to(emits, "chat_offer")[0]["conversation_id"] == waiting[0].id  # first in, first out
    assert _to(emits, "queue", visitor_room(waiting[0].visitor_id)) == [
        {"conversation_id": waiting[0].id, "position": 0, "eta_seconds": 0}]
    assert [_to(emits, "queue", visitor_room(c.visitor_id))[0]["position"] for c in waiting[1:]] == [1, 2]


def test_the_wait_is_unknown_when_nobody_is_online(site):
    conversation, emits = _open(site)
    assert _to(emits, "queue") == [{"conversation_id": conversation.id, "position": 1, "eta_seconds": None}]


def test_queues_are_per_group(site, make_agent):
    tax = _group(site, "税务", patterns="*/tax*", priority=1)
    _group(site, "综合", default=True)
    a, _ = _open(site, url="https://x.example/about")
    b, _ = _open(site, url="https://x.example/tax")
    c, _ = _open(site, url="https://x.example/about")
    positions = {c.id: p for c, p in routing.queue_positions(db.session, site.id)}
    assert (positions[a.id], positions[b.id], positions[c.id]) == (1, 1, 2) and b.group_id == tax.id


# --- greetings and the auto reply -------------------------------------------------------------


def _system_texts(conversation_id):
    db.session.expire_all()
    return [m.text for m in db.session.scalars(select(ChatMessage).where(
        ChatMessage.conversation_id == conversation_id, ChatMessage.sender_type == SenderType.system)
        .order_by(ChatMessage.id))]


def test_the_welcome_text_and_the_agents_greeting_are_sent_once(site, make_agent):
    site.welcome_text = "欢迎咨询，我们马上为您服务"
    db.session.commit()
    agent = make_agent("agent", greeting="您好，我是客服小张")
    conversation, emits = _open(site)
    assert [p["text"] for p in _to(emits, "message", visitor_room(conversation.visitor_id))] == [
        "欢迎咨询，我们马上为您服务"]
    again = chat_post.post_visitor_message(db.session, conversation.visitor_id, "m-2", "还在吗").message_id
    routing.after_visitor_message(db.session, again)
    chat.accept(db.session, agent, conversation.id)
    emits = routing.after_accept(db.session, _fresh(Conversation, conversation.id))
    assert [p["text"] for p in _to(emits, "message", visitor_room(conversation.visitor_id))] == [
        "客服agent 为您服务", "您好，我是客服小张"]
    chat.accept(db.session, _fresh(AgentProfile, agent.id), conversation.id)
    again = routing.after_accept(db.session, _fresh(Conversation, conversation.id))
    assert _to(again, "message", visitor_room(conversation.visitor_id)) == []  # each line once
    assert _system_texts(conversation.id) == ["欢迎咨询，我们马上为您服务", "客服agent 为您服务", "您好，我是客服小张"]
    # In the transcript the welcome comes before the visitor's first message.
    first_two = chat.conversation_messages_after(db.session, conversation.id)[:2]
    assert [m.sender_type for m in first_two] == [SenderType.system, SenderType.visitor]


def test_the_no_answer_auto_reply_goes_out_once_and_not_after_an_answer(site, make_agent):
    site.auto_reply_seconds, site.auto_reply_text = 60, "客服稍后回复您"
    db.session.commit()
    waiting, _ = _open(site)
    agent = make_agent("agent")
    answered, _ = _open(site)
    chat.accept(db.session, agent, answered.id)
    chat.post_agent_message(db.session, _fresh(AgentProfile, agent.id), answered.id, "r-1", "您好")
    now = utcnow()
    assert _to(chat_sweep.sweep(db.session, now + timedelta(seconds=30)), "message") == []
    emits = chat_sweep.sweep(db.session, now + timedelta(seconds=61))
    assert [p["text"] for p in _to(emits, "message", visitor_room(waiting.visitor_id))] == ["客服稍后回复您"]
    assert _to(chat_sweep.sweep(db.session, now + timedelta(seconds=200)), "message") == []
    assert _system_texts(waiting.id) == ["客服稍后回复您"] and _system_texts(answered.id) == []
    assert _fresh(Conversation, waiting.id).auto_replied_at is not None


def test_a_visitor_cannot_use_the_reserved_system_message_ids(site):
    visitor = Visitor(site_id=site.id, uid=chat_sites.new_visitor_uid())
    db.session.add(visitor)
    db.session.commit()
    with pytest.raises(ValidationFailed):
        chat_post.post_visitor_message(db.session, visitor.id, "sys:welcome", "hi")


# --- status and presence ----------------------------------------------------------------------


def test_status_is_validated_stored_and_broadcast(site, make_agent):
    agent = make_agent("agent", status=AgentStatus.offline)
    with pytest.raises(ValidationFailed):
        presence.set_status(db.session, agent, "busy")
    waiting, _ = _open(site)
    emits = presence.set_status(db.session, _fresh(AgentProfile, agent.id), "online")
    assert _to(emits, "agent_status", site_agents_room(site.id)) == [
        {"agent_id": agent.id, "name": "客服agent", "status": "online"}]
    assert _to(emits, "availability", site_visitors_room(site.id)) == [{"online": True}]
    assert _to(emits, "chat_offer", agent_room(agent.id))[0]["conversation_id"] == waiting.id  # back: offered
    emits = presence.set_status(db.session, _fresh(AgentProfile, agent.id), "invisible")
    assert _to(emits, "availability") == [{"online": False}]


def test_presence_lapses_after_the_last_tab_closes_unless_another_tab_pings(site, make_agent):
    agent = make_agent("agent")
    now = utcnow()
    presence.agent_disconnected(db.session, agent.id, now)
    assert chat_sweep.sweep(db.session, now + timedelta(seconds=10)) == []
    presence.touch(db.session, agent.id, now + timedelta(seconds=30))  # another tab's ping
    assert chat_sweep.sweep(db.session, now + timedelta(seconds=presence.DISCONNECT_GRACE_SECONDS + 5)) == []
    presence.agent_disconnected(db.session, agent.id, now + timedelta(seconds=60))
    emits = chat_sweep.sweep(db.session, now + timedelta(seconds=60 + presence.DISCONNECT_GRACE_SECONDS + 1))
    assert _to(emits, "agent_status") == [{"agent_id": agent.id, "name": "客服agent", "status": "offline"}]
    assert _fresh(AgentProfile, agent.id).status == AgentStatus.offline


def test_the_site_is_offline_outside_business_hours(site, make_agent):
    make_agent("agent")
    assert presence.site_online(db.session, site, utcnow(), "Asia/Shanghai") is True
    site.business_hours = "mon-fri 09:00-18:00"
    db.session.commit()
    saturday_noon_shanghai = utcnow().replace(year=2026, month=11, day=21, hour=4, minute=0)
    assert presence.site_online(db.session, site, saturday_noon_shanghai, "Asia/Shanghai") is False


def test_widgets_hear_when_business_hours_open_and_close(site, make_agent):
    agent = make_agent("agent")
    site.business_hours = "mon-fri 09:00-18:00"
    db.session.commit()
    opening = datetime(2026, 11, 23, 1, 0, 3)  # Monday 09:00:03 in Shanghai
    closing = datetime(2026, 11, 23, 10, 0, 2)  # Monday 18:00:02
    room = site_visitors_room(site.id)

    def sweep_at(when: datetime) -> list:
        profile = _fresh(AgentProfile, agent.id)
        profile.last_seen_at = when  # the agent's console is open all day
        db.session.commit()
        return _to(chat_sweep.sweep(db.session, when, tz="Asia/Shanghai"), "availability", room)

    assert sweep_at(opening) == [{"online": True}]
    assert sweep_at(opening + timedelta(minutes=5)) == []  # told once, not on every pass
    assert sweep_at(closing) == [{"online": False}]


# --- participants and payloads ------------------------------------------------------------------


def test_invited_agents_write_and_watchers_only_read(site, make_agent, user_id):
    owner = make_agent("agent")
    invited = make_agent("manager", status=AgentStatus.away)
    watcher = make_agent("admin", status=AgentStatus.away)
    conversation, _ = _open(site)
    chat.accept(db.session, owner, conversation.id)
    db.session.add_all([
        ConversationParticipant(conversation_id=conversation.id, user_id=user_id("manager"),
                                role=ParticipantRole.invited),
        ConversationParticipant(conversation_id=conversation.id, user_id=user_id("admin"),
                                role=ParticipantRole.watcher)])
    db.session.commit()
    message, created = chat.post_agent_message(db.session, invited, conversation.id, "i-1", "我来补充")
    assert created and message.sender_name == "客服manager"
    with pytest.raises(AccessDenied):
        chat.post_agent_message(db.session, watcher, conversation.id, "w-1", "插话")
    assert chat.conversations_of_user(db.session, user_id("admin")) == [conversation.id]


def test_a_message_payload_names_its_attachment(site):
    conversation, _ = _open(site)
    attachment = ChatAttachment(conversation_id=conversation.id, uploaded_by=SenderType.visitor,
                                filename="发票.pdf", content_type="application/pdf", size=1234, sha256="0" * 64,
                                storage_name="abc")
    db.session.add(attachment)
    db.session.flush()
    message = db.session.scalar(select(ChatMessage).where(ChatMessage.conversation_id == conversation.id))
    message.attachment_id = attachment.id
    db.session.commit()
    db.session.refresh(message)
    payload = chat.message_payload(message)["attachment"]
    link = payload.pop("url")
    assert payload == {"id": attachment.id, "filename": "发票.pdf", "content_type": "application/pdf", "size": 1234}
    path, token = link.split("?k=")
    assert path == f"/chat/files/{attachment.id}"  # a link to this one file
    assert chat_sites.attachment_id_from_link(current_app.config["SECRET_KEY"], token) == attachment.id


# --- through the sockets --------------------------------------------------------------------------


def _visitor(app, site, **auth):
    return FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                             auth={"site_key": site.site_key, **auth}, flask_test_client=app.test_client())


def _console(app, login_as, username="agent", headers=None):
    return FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as(username),
                             headers=headers or {})


def test_visitors_hear_their_own_queue_position_live(app, site):
    first, second = _visitor(app, site), _visitor(app, site)
    a = first.emit("message", {"client_msg_id": "a", "text": "在吗"}, namespace="/visitor", callback=True)
    b = second.emit("message", {"client_msg_id": "b", "text": "咨询"}, namespace="/visitor", callback=True)
    assert received(second, "queue", "/visitor", 2)[-1] == {
        "conversation_id": b["conversation_id"], "position": 2, "eta_seconds": None}
    assert {q["position"] for q in received(first, "queue", "/visitor", 2)} == {1}
    assert all(q["conversation_id"] == a["conversation_id"] for q in received(first, "queue", "/visitor", 0))


def test_the_session_tells_the_site_settings_and_whether_an_agent_is_online(app, site, make_agent, login_as):
    site.welcome_text, site.theme_color = "欢迎", "#ff0000"
    db.session.commit()
    [offline] = received(_visitor(app, site), "session", "/visitor", 2)
    assert offline["online"] is False and offline["site"]["theme_color"] == "#ff0000"
    assert offline["site"]["welcome_text"] == "欢迎" and offline["site"]["offline_form"] is True
    make_agent("agent", status=AgentStatus.offline)
    console = _console(app, login_as)
    assert console.is_connected("/agent")  # opening the console sets an offline agent online
    [online] = received(_visitor(app, site), "session", "/visitor", 2)
    assert online["online"] is True


def test_an_offer_reaches_the_console_and_accepting_it_greets_the_visitor(app, site, make_agent, login_as):
    make_agent("agent", greeting="您好，我是客服agent")
    console = _console(app, login_as)
    widget = _visitor(app, site, url="https://www.example.com/pricing")
    ack = widget.emit("message", {"client_msg_id": "v1", "text": "价格？"}, namespace="/visitor", callback=True)
    [offer] = received(console, "chat_offer", "/agent", 2)
    assert offer["conversation_id"] == ack["conversation_id"] and offer["expires_at"].endswith("Z")
    assert offer["visitor"]["uid"] and "ip" not in offer["visitor"]
    assert _fresh(Conversation, ack["conversation_id"]).entry_url == "https://www.example.com/pricing"
    widget.get_received("/visitor")
    accepted = console.emit("accept", {"conversation_id": ack["conversation_id"]}, namespace="/agent", callback=True)
    assert [m["text"] for m in accepted["messages"]] == ["价格？", "客服agent 为您服务", "您好，我是客服agent"]
    assert [m["text"] for m in received(widget, "message", "/visitor", 2)] == [
        "客服agent 为您服务", "您好，我是客服agent"]


def test_decline_over_the_socket_and_a_bad_status(app, site, make_agent, login_as):
    make_agent("agent")
    console = _console(app, login_as)
    widget = _visitor(app, site)
    ack = widget.emit("message", {"client_msg_id": "v1", "text": "hi"}, namespace="/visitor", callback=True)
    # the chat is routed right after the ack: the agent declines the offer once it arrived
    assert [o["conversation_id"] for o in received(console, "chat_offer", "/agent", 5)] == [ack["conversation_id"]]
    assert console.emit("decline", {"conversation_id": ack["conversation_id"]}, namespace="/agent",
                        callback=True) == {"ok": True}
    assert _fresh(Conversation, ack["conversation_id"]).status == ConversationStatus.queued
    assert "error" in console.emit("decline", {"conversation_id": ack["conversation_id"]}, namespace="/agent",
                                   callback=True)
    bad = console.emit("status", {"status": "busy"}, namespace="/agent", callback=True)
    assert "error" in bad and received(console, "error", "/agent", 2)[-1]["event"] == "status"


def test_status_changes_are_broadcast_to_the_sites_agents(app, site, make_agent, login_as):
    me = make_agent("agent")
    make_agent("manager")
    mine, colleague = _console(app, login_as), _console(app, login_as, "manager")
    colleague.get_received("/agent")
    assert mine.emit("status", {"status": "away"}, namespace="/agent", callback=True) == {"status": "away"}
    assert {"agent_id": me.id, "name": "客服agent", "status": "away"} in received(
        colleague, "agent_status", "/agent", 2)
    assert _fresh(AgentProfile, me.id).status == AgentStatus.away
    assert mine.emit("ping", {}, namespace="/agent", callback=True) == {"ok": True, "status": "away"}


def test_a_visitor_over_the_rate_limit_gets_an_error_and_nothing_is_stored(app, site):
    app.config["CHAT_VISITOR_RATE"] = "3 per 1 minute"
    widget = _visitor(app, site)
    acks = [widget.emit("message", {"client_msg_id": f"m{n}", "text": "刷屏"}, namespace="/visitor", callback=True)
            for n in range(4)]
    assert all("id" in ack for ack in acks[:3]) and "error" in acks[3]
    errors = received(widget, "error", "/visitor", 2)
    assert errors[-1]["event"] == "message" and errors[-1]["message"] == acks[3]["error"]
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(ChatMessage)) == 3
    other = _visitor(app, site)  # another visitor has their own allowance
    assert "id" in other.emit("message", {"client_msg_id": "x", "text": "hi"}, namespace="/visitor", callback=True)


def test_the_console_refuses_a_cross_site_origin(app, make_agent, login_as):
    make_agent("agent")
    assert not _console(app, login_as, headers={"Origin": "https://evil.example"}).is_connected("/agent")
    assert _console(app, login_as, headers={"Origin": "http://localhost"}).is_connected("/agent")


def test_the_console_refuses_a_page_on_another_port_of_the_same_host(app, make_agent, login_as):
    """The agent's cookie goes with a socket opened from any port of the host: the Origin decides."""
    make_agent("agent")
    assert not _console(app, login_as, headers={"Origin": "http://localhost:5001"}).is_connected("/agent")


def test_a_new_console_tab_joins_the_rooms_of_the_agents_open_chats(app, site, make_agent, login_as):
    agent = make_agent("agent")
    conversation, _ = _open(site)
    chat.accept(db.session, agent, conversation.id)
    console = _console(app, login_as)  # neither accepts nor resumes: joined on connecting
    message = db.session.get(ChatMessage, chat_post.post_visitor_message(
        db.session, conversation.visitor_id, "m-2", "还在吗").message_id)
    socketio.emit("message", chat.message_payload(message), to=conversation_room(conversation.id), namespace="/agent")
    assert [m["text"] for m in received(console, "message", "/agent", 2)] == ["还在吗"]


def test_page_views_and_heartbeats_call_the_tracking_hook(app, site, monkeypatch):
    from app.sockets.visitor import VisitorNamespace

    calls = []
    monkeypatch.setattr(VisitorNamespace, "_after_tracking", lambda self, view_id: calls.append(view_id))
    widget = _visitor(app, site)
    view = widget.emit("page_view", {"url": "https://www.example.com/"}, namespace="/visitor", callback=True)
    widget.emit("heartbeat", {}, namespace="/visitor", callback=True)
    assert calls == [view["page_view_id"], view["page_view_id"]]


def test_the_sweeper_starts_once_per_process_and_a_pass_sends_its_events(app, site, make_agent, login_as,
                                                                        monkeypatch):
    from app.sockets import sweeper

    started = []
    monkeypatch.setattr(socketio, "start_background_task", lambda fn, *args: started.append(fn))
    app.extensions.pop("desk.chat_sweeper", None)
    try:
        assert sweeper.start_sweeper(app) is True and sweeper.start_sweeper(app) is False
        assert len(started) == 1
    finally:
        app.extensions.pop("desk.chat_sweeper", None)
    make_agent("agent")
    gone = make_agent("manager", seen_ago=routing.PRESENCE_SECONDS + 30)
    console = _console(app, login_as)
    console.get_received("/agent")
    assert sweeper.sweep_once(app) >= 1
    assert {"agent_id": gone.id, "name": "客服manager", "status": "offline"} in received(
        console, "agent_status", "/agent", 2)


def test_a_chat_closed_while_offered_withdraws_the_offer(site, make_agent):
    agent = make_agent("agent")
    conversation, _ = _open(site)
    closed = chat.close(db.session, conversation.id, visitor_id=conversation.visitor_id)
    emits = routing.after_close(db.session, closed)
    assert _to(emits, "offer_withdrawn", agent_room(agent.id)) == [
        {"conversation_id": conversation.id, "reason": "closed"}]
    assert _to(emits, "queue_update") == [{"conversation_id": conversation.id, "status": "closed", "position": None}]
    assert [o.outcome for o in _offers(conversation.id)] == [OfferOutcome.withdrawn]
    assert _fresh(Conversation, conversation.id).closed_by == "visitor"


def test_routing_the_same_chat_from_two_threads_at_once_offers_it_once(app, site, make_agent):
    import threading

    make_agent("agent", max_chats=5)
    make_agent("manager", max_chats=5)
    conversation, _ = _open(site, route=False)
    barrier, results = threading.Barrier(2), []

    def worker() -> None:
        with app.app_context(), Session(db.engine) as own:
            barrier.wait()
            results.append(routing.route(own, conversation.id))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(len(r) for r in results) == [0, 1]
    assert len(_offers(conversation.id)) == 1
    assert _fresh(Conversation, conversation.id).status == ConversationStatus.offered
