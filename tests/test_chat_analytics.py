"""Chat analytics (统计分析) on a small hand-built week of chats: each table's figures computed by
hand, the filters, and that each table is a fixed number of aggregate statements.

p90 is the nearest-rank percentile: the value of rank ⌈0.9·n⌉ in ascending order."""

from __future__ import annotations

import csv
import io
import itertools
import re
import threading
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from pytest import approx
from sqlalchemy import event, func, select

from app.extensions import db
from app.models.chat import (
    AgentGroup,
    AgentPresence,
    AgentProfile,
    AgentStatus,
    ChatMessage,
    ChatOffer,
    ChatSite,
    ChatTransfer,
    Conversation,
    ConversationStatus,
    OfferOutcome,
    PageView,
    SenderType,
    Visitor,
)
from app.models.security import AuditLog
from app.services import chat_analytics as svc
from app.services import chat_sites, presence
from app.services.errors import ValidationFailed
from tests.factories import make_client, make_contact
from tests.test_zh_raw_values import visible_text

TZ = "Asia/Shanghai"  # UTC+8
WEEK = svc.Filters(date(2026, 3, 2), date(2026, 3, 8))  # Monday 2 March to Sunday 8 March
_uids = itertools.count(1)


def _utc(local: str) -> datetime:
    """A Shanghai wall-clock time as the naive UTC the database stores."""
    return datetime.fromisoformat(local) - timedelta(hours=8)


def _visitor(site_id: int, **kw) -> Visitor:
    visitor = Visitor(site_id=site_id, uid=f"a{next(_uids)}", **kw)
    db.session.add(visitor)
    db.session.flush()
    return visitor


def _chat(site_id: int, queued: str, *, visitor: Visitor | None = None, group_id: int | None = None,
          agent: AgentProfile | None = None, wait: float | None = None, first: float | None = None,
          handle: float | None = None, left_after: float | None = None, closed_by: str = "agent",
          rating: int | None = None) -> Conversation:
    """A chat queued at *queued* (Shanghai): accepted after *wait* s, first answered *first* s after
    it was queued, closed *handle* s after acceptance; or closed by *closed_by* after *left_after* s."""
    visitor = visitor or _visitor(site_id)
    start = _utc(queued)
    chat = Conversation(site_id=site_id, visitor_id=visitor.id, group_id=group_id, queued_at=start,
                        status=ConversationStatus.closed, agent_id=agent.id if agent else None, rating=rating)
    if wait is not None:
        chat.accepted_at = start + timedelta(seconds=wait)
        chat.first_response_at = start + timedelta(seconds=first) if first is not None else None
        chat.closed_at, chat.closed_by = chat.accepted_at + timedelta(seconds=handle), "agent"
    else:
        chat.closed_at, chat.closed_by = start + timedelta(seconds=left_after), closed_by
    db.session.add(chat)
    db.session.flush()
    return chat


def _offer(chat: Conversation, agent: AgentProfile, local: str, outcome: OfferOutcome) -> None:
    at = _utc(local)
    db.session.add(ChatOffer(conversation_id=chat.id, agent_id=agent.id, offered_at=at,
                             expires_at=at + timedelta(seconds=30), outcome=outcome, decided_at=at))


def _says(chat: Conversation, local: str, sender: SenderType, user_id: int | None = None) -> None:
    db.session.add(ChatMessage(conversation_id=chat.id, sender_type=sender, sender_user_id=user_id, text="您好",
                               created_at=_utc(local)))


def _page(visitor: Visitor, local: str, url: str, visit_no: int = 1, **kw) -> None:
    at = _utc(local)
    db.session.add(PageView(visitor_id=visitor.id, visit_no=visit_no, url=url, started_at=at, last_seen_at=at,
                            **kw))


@pytest.fixture
def world(app, user_id):
    """Site 代账官网 with groups 售前 and 售后; agents 小张 (two chat slots) and 小李 (five); another site."""
    site = chat_sites.prepare_new_site(ChatSite(name="代账官网", allowed_origins="https://a.example.com"))
    other = chat_sites.prepare_new_site(ChatSite(name="另一站点", allowed_origins="https://b.example.com"))
    db.session.add_all([site, other])
    db.session.flush()
    sales, service = AgentGroup(site_id=site.id, name="售前"), AgentGroup(site_id=site.id, name="售后")
    zhang = AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=2, groups=[sales])
    li = AgentProfile(user_id=user_id("manager"), display_name="客服小李", max_chats=5, groups=[sales, service])
    db.session.add_all([sales, service, zhang, li])
    db.session.commit()
    return {"site": site.id, "other": other.id, "sales": sales.id, "service": service.id, "zhang": zhang, "li": li}


@pytest.fixture
def week(world):
    """Monday 09:xx: three chats for 小张 and one visitor who left after 15 s; Tuesday 14:xx: one
    chat for 小李 and a visitor who left after 200 s; Wednesday: one the system closed unanswered;
    and chats outside the range or on the other site. Page views for the sources."""
    site, zhang, li, sales, service = world["site"], world["zhang"], world["li"], world["sales"], world["service"]
    client = make_client()
    contact = make_contact(client)
    v1 = _visitor(site, contact_id=contact.id, country="中国", region="上海")
    v2 = _visitor(site, country="中国", region="北京")
    v3 = _visitor(site)
    c1 = _chat(site, "2026-03-02 09:10:00", visitor=v1, group_id=sales, agent=zhang, wait=10, first=30, handle=600,
               rating=5)
    c2 = _chat(site, "2026-03-02 09:20:00", visitor=v2, group_id=sales, agent=zhang, wait=20, first=40, handle=300,
               rating=3)
    c3 = _chat(site, "2026-03-02 09:30:00", visitor=v3, group_id=sales, agent=zhang, wait=40, first=100, handle=120)
    c4 = _chat(site, "2026-03-03 14:00:00", group_id=service, agent=li, wait=0, first=5, handle=60, rating=4)
    c5 = _chat(site, "2026-03-02 09:50:00", group_id=sales, left_after=15, closed_by="visitor")
    _chat(site, "2026-03-03 14:30:00", group_id=service, left_after=200, closed_by="visitor")
    _chat(site, "2026-03-04 10:00:00", left_after=20, closed_by="system")
    _chat(site, "2026-03-09 09:00:00", agent=zhang, wait=1, first=2, handle=3, rating=1)  # the next week
    _chat(world["other"], "2026-03-02 09:15:00", agent=li, wait=1, first=2, handle=3, rating=1)  # other site
    _offer(c1, li, "2026-03-02 09:10:00", OfferOutcome.timed_out)
    _offer(c1, zhang, "2026-03-02 09:10:05", OfferOutcome.accepted)
    _offer(c2, zhang, "2026-03-02 09:20:05", OfferOutcome.accepted)
    _offer(c3, li, "2026-03-02 09:30:05", OfferOutcome.accepted)
    _offer(c4, li, "2026-03-03 14:00:00", OfferOutcome.accepted)
    _offer(c5, zhang, "2026-03-02 09:50:01", OfferOutcome.declined)
    db.session.add(ChatTransfer(conversation_id=c3.id, from_agent_id=li.id, to_agent_id=zhang.id,
                                created_at=_utc("2026-03-02 09:31:00")))
    _says(c1, "2026-03-02 09:10:20", SenderType.visitor)
    _says(c1, "2026-03-02 09:10:30", SenderType.agent, zhang.user_id)
    _says(c1, "2026-03-02 09:11:00", SenderType.agent, zhang.user_id)
    _says(c2, "2026-03-02 09:20:40", SenderType.agent, zhang.user_id)
    _says(c3, "2026-03-02 09:32:00", SenderType.note, zhang.user_id)  # a note: seen working, not a message
    _says(c4, "2026-03-03 14:00:05", SenderType.agent, li.user_id)
    # Sources: v1 from a Baidu search, v2 from Zhihu with a campaign, v3 direct (after a visit
    # before the range), v4 from Zhihu without a chat; v1's later pages are not its first.
    _page(v1, "2026-03-02 09:05:00", "https://a.example.com/price?x=1", referrer="https://www.baidu.com/s?wd=代账",
          search_engine="百度", keyword="代账")
    _page(v1, "2026-03-02 09:06:00", "https://a.example.com/about", referrer="https://www.sogou.com/")
    _page(v2, "2026-03-02 09:15:00", "https://a.example.com/price#top", referrer="https://WWW.Zhihu.com:443/q/1",
          utm_campaign="春季", utm_source="zhihu")
    _page(v3, "2026-03-01 20:00:00", "https://a.example.com/old", referrer="https://old.example.org/")
    _page(v3, "2026-03-02 09:25:00", "https://a.example.com/", visit_no=2)
    v4 = _visitor(site, country="中国", region="北京")
    _page(v4, "2026-03-05 20:10:00", "https://a.example.com/about", referrer="https://www.zhihu.com/x")
    _page(v4, "2026-03-06 21:00:00", "https://a.example.com/about", visit_no=2, referrer="https://www.zhihu.com/y")
    db.session.commit()
    return world


@contextmanager
def statements():
    seen: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001, ANN002, ARG001
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _in_site(world, **kw) -> svc.Filters:  # noqa: ANN001
    return svc.Filters(WEEK.date_from, WEEK.date_to, site_id=world["site"], **kw)


# --- agents ----------------------------------------------------------------------------------------------


def test_the_agent_table_counts_each_agents_work(week, session):
    rows = {r.agent: r for r in svc.agents(session, _in_site(week), TZ)}
    assert set(rows) == {"客服小张", "客服小李"}
    zhang, li = rows["客服小张"], rows["客服小李"]
    assert (zhang.chats, zhang.messages) == (3, 3)  # the note is not a message
    assert zhang.first_response_mean == approx((30 + 40 + 100) / 3, abs=0.05)
    assert zhang.first_response_p90 == 100  # rank ⌈0.9·3⌉ = 3
    assert zhang.handle_mean == approx((600 + 300 + 120) / 3)
    assert (zhang.rated, zhang.csat, zhang.rating_mean) == (2, 0.5, 4.0)  # 5 and 3: one satisfied
    assert (zhang.transfers, zhang.offers, zhang.missed_offers) == (0, 3, 1)  # declined c5
    assert zhang.hours_seen == 1  # all on Monday 09:xx
    assert zhang.occupancy == approx(1020 / (1 * 3600 * 2), abs=1e-4)
    assert (li.chats, li.messages, li.first_response_mean, li.first_response_p90, li.handle_mean) == (1, 1, 5, 5, 60)
    assert (li.rated, li.csat, li.rating_mean) == (1, 1.0, 4.0)
    assert (li.transfers, li.offers, li.missed_offers) == (1, 3, 1)  # handed c3 on; c1 timed out
    assert li.hours_seen == 2 and li.occupancy == approx(60 / (2 * 3600 * 5), abs=1e-4)


def test_time_online_and_away_come_from_the_status_changes_cut_to_the_range(week, session):
    """小张: online from Sunday 1 March 22:00 (before the range) to Monday 10:00, away to 10:30,
    invisible (counted online) to 11:00, then offline; back online on Sunday 8 March 23:00 and
    still online (cut at the range's end, midnight). 小李 kept no status: occupancy falls back."""
    zhang = week["zhang"]
    stretches = [("online", "2026-03-01 22:00", "2026-03-02 10:00"), ("away", "2026-03-02 10:00", "2026-03-02 10:30"),
                 ("invisible", "2026-03-02 10:30", "2026-03-02 11:00"), ("online", "2026-03-08 23:00", None)]
    for status, began, ended in stretches:
        db.session.add(AgentPresence(agent_id=zhang.id, status=AgentStatus(status), started_at=_utc(began),
                                     ended_at=_utc(ended) if ended else None))
    db.session.commit()
    rows = {r.agent: r for r in svc.agents(session, _in_site(week), TZ)}
    online = 10 * 3600 + 30 * 60 + 3600  # 00:00–10:00 on Monday, 10:30–11:00, Sunday 23:00–24:00
    assert rows["客服小张"].online_seconds == approx(online, abs=0.01)
    assert rows["客服小张"].away_seconds == approx(1800, abs=0.01)
    assert rows["客服小张"].occupancy == approx(1020 / (online * 2), abs=1e-4)  # of the time online now
    assert (rows["客服小李"].online_seconds, rows["客服小李"].away_seconds) == (0, 0)
    assert rows["客服小李"].occupancy == approx(60 / (2 * 3600 * 5), abs=1e-4)


def test_status_changes_keep_one_open_stretch_per_agent(world, session):
    """The console's status changes and a lapsed console (offline) each end the agent's stretch and
    start the next; offline starts none; the same status again changes nothing. (A missed offer's
    away: tests/test_chat_routing.py.)"""
    zhang = world["zhang"]
    moments = [datetime(2026, 3, 2, 1, m) for m in range(6)]
    presence.set_status(session, zhang, "online", moments[0])
    presence.set_status(session, zhang, "online", moments[1])  # no change, no new stretch
    presence.set_status(session, zhang, "away", moments[2])
    presence.set_status(session, zhang, "offline", moments[3])
    presence.set_status(session, zhang, "invisible", moments[4])
    rows = session.execute(select(AgentPresence.status, AgentPresence.started_at, AgentPresence.ended_at)
                           .where(AgentPresence.agent_id == zhang.id).order_by(AgentPresence.id)).all()
    assert [(r.status.value, r.started_at, r.ended_at) for r in rows] == [
        ("online", moments[0], moments[2]), ("away", moments[2], moments[3]), ("invisible", moments[4], None)]
    # the sweep sets an agent whose console is gone offline: the open stretch ends then
    from app.services import chat_sweep

    zhang.last_seen_at = moments[4]
    session.commit()
    later = moments[4] + timedelta(hours=1)
    chat_sweep._expire_presence(session, later, TZ)  # noqa: SLF001
    ended = session.scalar(select(AgentPresence.ended_at).where(AgentPresence.agent_id == zhang.id,
                                                                AgentPresence.status == AgentStatus.invisible))
    assert ended == later
    assert session.scalar(select(func.count()).select_from(AgentPresence).where(
        AgentPresence.agent_id == zhang.id, AgentPresence.ended_at.is_(None))) == 0


def test_two_status_changes_at_once_leave_one_open_stretch(app, world):
    """Two tabs of one agent change the status at the same moment: the second waits for the first
    and ends the stretch the first started. The first holds its commit until the second has begun
    writing stretches, or for a second and a half when the second waits for it (on PostgreSQL,
    without the agent's lock, both stretches stayed open)."""
    agent_id = world["zhang"].id
    db.session.remove()
    second_writes, first_thread, results = threading.Event(), [], {}

    def on_execute(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        words = " ".join(statement.split()).upper()
        if threading.get_ident() in first_thread and words.startswith("INSERT INTO CHAT_AGENT_PRESENCE"):
            second_writes.wait(1.5)
        elif threading.get_ident() not in first_thread and words.startswith("UPDATE CHAT_AGENT_PRESENCE"):
            second_writes.set()

    def change(n: int, status: str) -> None:
        if n == 0:
            first_thread.append(threading.get_ident())
        with app.app_context():
            try:
                presence.set_status(db.session, db.session.get(AgentProfile, agent_id), status)
                results[n] = status
            except Exception as exc:  # noqa: BLE001 - reported below
                results[n] = exc
            finally:
                db.session.remove()

    event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        first = threading.Thread(target=change, args=(0, "online"))
        first.start()
        time.sleep(0.2)
        second = threading.Thread(target=change, args=(1, "away"))
        second.start()
        first.join(20)
        second.join(20)
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)
    assert results == {0: "online", 1: "away"}, results
    open_stretches = db.session.execute(select(AgentPresence.status).where(
        AgentPresence.agent_id == agent_id, AgentPresence.ended_at.is_(None))).scalars().all()
    assert open_stretches == [AgentStatus.away]


def test_the_agent_and_group_filters_narrow_the_agent_table(week, session):
    only_li = svc.agents(session, _in_site(week, agent_id=week["li"].id), TZ)
    assert [r.agent for r in only_li] == ["客服小李"]
    service = {r.agent: r for r in svc.agents(session, _in_site(week, group_id=week["service"]), TZ)}
    assert set(service) == {"客服小李"} and service["客服小李"].chats == 1 and service["客服小李"].transfers == 0
    everywhere = {r.agent: r for r in svc.agents(session, WEEK, TZ)}
    assert everywhere["客服小李"].chats == 2  # and the other site's


def test_p90_is_the_nearest_rank(world, session):
    for n in range(1, 12):  # first responses 1, 2, … 11 seconds
        _chat(world["site"], f"2026-03-04 10:{n:02d}:00", agent=world["zhang"], wait=0, first=n, handle=10)
    db.session.commit()
    row = svc.agents(session, WEEK, TZ)[0]
    assert (row.first_response_mean, row.first_response_p90) == (6.0, 10)  # rank ⌈9.9⌉ = 10
    assert svc.queue(session, WEEK, TZ).wait_p90 == 0


# --- hours, queue, visits --------------------------------------------------------------------------------


def test_chats_are_counted_per_hour_of_the_week(week, session):
    cells = {(c["weekday"], c["hour"]): c["chats"] for c in svc.hours(session, _in_site(week), TZ)}
    assert len(cells) == 168 and sum(cells.values()) == 7
    assert (cells[0, 9], cells[1, 14], cells[2, 10]) == (4, 2, 1)
    zhang = {(c["weekday"], c["hour"]): c["chats"] for c in svc.hours(
        session, _in_site(week, agent_id=week["zhang"].id), TZ)}
    assert sum(zhang.values()) == 3 and zhang[0, 9] == 3


def test_the_queue_shows_waits_abandonment_and_the_patience_distribution(week, session):
    result = svc.queue(session, _in_site(week), TZ)
    assert (result.chats, result.answered, result.abandoned, result.unanswered) == (7, 4, 2, 1)
    assert (result.wait_mean, result.wait_p90) == (17.5, 40)  # waits 0, 10, 20, 40: rank ⌈3.6⌉ = 4
    assert (result.within_20, result.within_60) == (0.75, 1.0)
    assert result.patience_mean == approx((15 + 200 + 0 + 10 + 20 + 40) / 2)
    buckets = {b["from"]: (b["answered"], b["abandoned"]) for b in result.buckets}
    assert buckets == {0: (1, 0), 10: (2, 1), 30: (1, 0), 60: (0, 0), 120: (0, 1), 300: (0, 0), 600: (0, 0)}
    assert result.buckets[-1]["to"] is None and result.buckets[0]["to"] == 10


def test_visits_are_counted_per_hour_of_the_week_at_their_first_page(week, session):
    cells = {(c["weekday"], c["hour"]): c["visits"] for c in svc.visits(session, _in_site(week), TZ)}
    # v1 and v2 and v3's second visit on Monday 09:xx; v4's two visits Thursday 20:xx and Friday 21:xx
    assert (cells[0, 9], cells[3, 20], cells[4, 21], sum(cells.values())) == (3, 1, 1, 5)
    assert sum(c["visits"] for c in svc.visits(session, svc.Filters(
        WEEK.date_from, WEEK.date_to, site_id=week["other"]), TZ)) == 0


# --- sources ---------------------------------------------------------------------------------------------


def _sources(session, world, by: str) -> dict:  # noqa: ANN001
    return {(r.source, r.detail): (r.visitors, r.chatted, r.chats, r.identified, r.conversion)
            for r in svc.sources(session, _in_site(world), TZ, by)}


def test_sources_attribute_each_visitor_to_their_first_page_in_the_range(week, session):
    assert _sources(session, week, "referrer") == {
        ("www.baidu.com", None): (1, 1, 1, 1, 1.0),
        ("www.zhihu.com", None): (2, 1, 1, 0, 0.0),  # the port and the case do not split a host
        (None, None): (1, 1, 1, 0, 0.0)}
    assert _sources(session, week, "search") == {("百度", "代账"): (1, 1, 1, 1, 1.0), (None, None): (3, 2, 2, 0, 0.0)}
    assert _sources(session, week, "landing") == {
        ("https://a.example.com/price", None): (2, 2, 2, 1, 0.5), ("https://a.example.com/", None): (1, 1, 1, 0, 0.0),
        ("https://a.example.com/about", None): (1, 0, 0, 0, 0.0)}
    assert _sources(session, week, "campaign") == {("春季", "zhihu"): (1, 1, 1, 0, 0.0),
                                                   (None, None): (3, 2, 2, 1, 0.3333)}
    assert _sources(session, week, "region") == {("中国", "上海"): (1, 1, 1, 1, 1.0),
                                                 ("中国", "北京"): (2, 1, 1, 0, 0.0), (None, None): (1, 1, 1, 0, 0.0)}


def test_sources_are_limited_to_the_most_visited(week, session):
    rows = svc.sources(session, _in_site(week), TZ, "referrer", limit=1)
    assert [(r.source, r.visitors) for r in rows] == [("www.zhihu.com", 2)]


def test_the_group_filter_counts_only_that_groups_chats_per_source(week, session):
    rows = svc.sources(session, _in_site(week, group_id=week["service"]), TZ, "referrer")
    assert sum(r.visitors for r in rows) == 4 and sum(r.chats for r in rows) == 0


# --- filters ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "field"), [
    ({"date_from": "2026-13-01"}, "date_from"), ({"date_to": "昨天"}, "date_to"),
    ({"date_from": "2026-03-10", "date_to": "2026-03-01"}, "date_from"),
    ({"date_from": "2025-02-28", "date_to": "2026-03-01"}, "date_from"),  # 367 days: 366 is the most
    ({"site_id": "0"}, "site_id"), ({"group_id": "x"}, "group_id"), ({"agent_id": "-1"}, "agent_id"),
])
def test_bad_filters_are_refused_naming_the_field(args, field):
    with pytest.raises(ValidationFailed) as refused:
        svc.read_filters(args, date(2026, 3, 20))
    assert list(refused.value.errors) == [field]


def test_a_year_is_the_longest_range_and_four_weeks_the_default():
    filters = svc.read_filters({"date_from": "2025-03-02", "date_to": "2026-03-02"}, date(2026, 3, 20))
    assert (filters.date_to - filters.date_from).days == 365
    default = svc.read_filters({}, date(2026, 3, 20))
    assert (default.date_from, default.date_to) == (date(2026, 2, 21), date(2026, 3, 20))


@pytest.mark.parametrize(("args", "field"), [({"agent_id": "999"}, "agent_id"), ({"site_id": "999"}, "site_id")])
def test_an_unknown_agent_or_site_is_refused(world, session, args, field):
    with pytest.raises(ValidationFailed) as refused:
        svc.check_filters(session, svc.read_filters(args, date(2026, 3, 20)))
    assert list(refused.value.errors) == [field]


@pytest.mark.parametrize(("args", "field"), [({"by": "weather"}, "by"), ({"limit": "0"}, "limit"),
                                              ({"limit": "1001"}, "limit")])
def test_bad_source_arguments_are_refused(args, field):
    with pytest.raises(ValidationFailed) as refused:
        svc.read_source(args)
    assert list(refused.value.errors) == [field]


# --- aggregates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "count"), [("agents", 1), ("hours", 2), ("queue", 4), ("visits", 1),
                                             ("sources", 1)])
def test_each_table_is_a_fixed_number_of_aggregate_statements(world, session, name, count):
    def measure() -> int:
        db.session.expire_all()
        with statements() as seen:
            svc.table(session, name, WEEK, TZ, {"by": "referrer"})
        return len(seen)

    few = measure()
    for n in range(30):
        visitor = _visitor(world["site"])
        _page(visitor, f"2026-03-03 10:{n:02d}:00", "https://a.example.com/", referrer=f"https://s{n}.example.com/")
        chat = _chat(world["site"], f"2026-03-03 10:{n:02d}:00", visitor=visitor, agent=world["zhang"], wait=n,
                     first=n + 1, handle=60, rating=n % 5 + 1)
        _offer(chat, world["li"], f"2026-03-03 10:{n:02d}:00", OfferOutcome.timed_out)
        _says(chat, f"2026-03-03 10:{n:02d}:30", SenderType.agent, world["zhang"].user_id)
    db.session.commit()
    assert few == measure() == count


# --- API, CSV and the screen -----------------------------------------------------------------------------

RANGE_ARGS = {"date_from": "2026-03-02", "date_to": "2026-03-08"}


def test_the_api_answers_each_table_as_json(week, login_as):
    manager = login_as("manager")
    answer = manager.get("/api/v1/chat/analytics/agents", query_string={**RANGE_ARGS, "site_id": week["site"]})
    assert answer.status_code == 200
    rows = {r["agent"]: r for r in answer.json["rows"]}
    assert rows["客服小张"]["first_response_p90"] == 100 and rows["客服小李"]["transfers"] == 1
    assert answer.json["filters"] == {**RANGE_ARGS, "site_id": str(week["site"])}
    queue = manager.get("/api/v1/chat/analytics/queue", query_string={**RANGE_ARGS, "site_id": week["site"]}).json
    assert (queue["summary"]["abandoned"], queue["summary"]["wait_p90"]) == (2, 40)
    assert queue["rows"][1] == {"from": 10, "to": 30, "answered": 2, "abandoned": 1}
    sources = manager.get("/api/v1/chat/analytics/sources", query_string={**RANGE_ARGS, "by": "search"}).json
    assert sources["by"] == "search" and {"source": "百度", "detail": "代账", "visitors": 1, "chatted": 1, "chats": 1,
                                          "identified": 1, "conversion": 1.0} in sources["rows"]


@pytest.mark.parametrize(("table", "args", "field"), [
    ("weather", {}, "table"), ("agents", {"date_from": "2026-02-30"}, "date_from"),
    ("agents", {"date_from": "2025-01-01", "date_to": "2026-03-01"}, "date_from"),
    ("agents", {"agent_id": "9999"}, "agent_id"), ("sources", {"by": "moon"}, "by"),
    ("hours", {"format": "xlsx"}, "format"),
])
def test_the_api_refuses_bad_input_with_a_422_naming_the_field(world, login_as, table, args, field):
    answer = login_as("admin").get(f"/api/v1/chat/analytics/{table}", query_string=args)
    assert answer.status_code == 422 and list(answer.json["errors"]) == [field]


@pytest.mark.parametrize("role", ["accountant", "reviewer", "agent"])
def test_other_roles_get_neither_the_api_nor_the_screen(world, login_as, role):
    client = login_as(role)
    assert client.get("/api/v1/chat/analytics/agents").status_code in (401, 403)
    screen = client.get("/chat/analytics/")
    assert screen.status_code in (302, 403) and "统计分析" not in screen.get_data(as_text=True)


def test_csv_opens_in_chinese_excel_and_runs_no_formula(week, login_as):
    db.session.get(AgentProfile, week["zhang"].id).display_name = "=HYPERLINK(\"http://x\")"
    db.session.execute(PageView.__table__.update().where(PageView.utm_campaign == "春季").values(
        utm_campaign="+cmd|' /C calc'!A0", utm_source="@SUM(1)"))
    db.session.commit()
    manager = login_as("manager")
    answer = manager.get("/api/v1/chat/analytics/agents", query_string={**RANGE_ARGS, "format": "csv"})
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in answer.headers["Content-Disposition"]
    body = answer.data
    assert body.startswith("\ufeff".encode())
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("客服,对话数,发送消息数,首次响应平均（秒）")
    cells = [row[0] for row in csv.reader(lines[1:])]
    assert "'=HYPERLINK(\"http://x\")" in cells and "客服小李" in cells
    campaign = manager.get("/api/v1/chat/analytics/sources", query_string={
        **RANGE_ARGS, "by": "campaign", "format": "csv"}).data.decode("utf-8-sig")
    assert ["'+cmd|' /C calc'!A0", "'@SUM(1)", "1", "1", "1", "0", "0.0%"] in list(csv.reader(campaign.splitlines()))


def test_the_screen_shows_each_section_in_chinese_with_its_charts(week, login_as, session):
    manager = login_as("manager")
    writes = session.scalar(select(func.count()).select_from(AuditLog))
    pages = {}
    for section in svc.TABLES:
        answer = manager.get("/chat/analytics/", query_string={**RANGE_ARGS, "section": section,
                                                               "site_id": week["site"]})
        assert answer.status_code == 200
        pages[section] = answer.get_data(as_text=True)
        assert "<svg" in pages[section] and "<script type=\"text/javascript\">window.pygal" not in pages[section]
        assert "Noto Sans CJK SC" in pages[section]
    agents = visible_text(pages["agents"])
    assert "统计分析" in agents and "客服小张" in agents and "首次响应" in agents and "50.0%" in agents
    assert "按小时" in visible_text(pages["hours"]) and 'data-weekday="0" data-hour="9"' in pages["hours"]
    queue = visible_text(pages["queue"])
    assert "离开队列" in queue and "142.5" in queue
    assert "www.zhihu.com" in visible_text(pages["sources"])
    assert session.scalar(select(func.count()).select_from(AuditLog)) == writes  # reading writes nothing


def test_a_bad_filter_on_the_screen_is_reported_and_the_default_range_shown(world, login_as):
    answer = login_as("admin").get("/chat/analytics/", query_string={"date_from": "2026-99-01"})
    assert answer.status_code == 200 and "日期格式为 YYYY-MM-DD" in visible_text(answer.get_data(as_text=True))


def test_visitor_text_is_escaped_in_the_table_and_the_chart(week, login_as):
    db.session.execute(PageView.__table__.update().values(referrer="https://<script>x</script>.example/"))
    db.session.commit()
    page = login_as("manager").get("/chat/analytics/", query_string={**RANGE_ARGS, "section": "sources"}).get_data(
        as_text=True)
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;" in page


# --- the manager's desk ----------------------------------------------------------------------------------


def test_the_managers_desk_shows_todays_chats_linking_to_the_analytics(world, login_as):
    now = datetime.now(ZoneInfo(TZ)).replace(tzinfo=None)
    start = now.replace(hour=0, minute=0, second=1, microsecond=0)  # today's first second, Shanghai time
    iso = start.isoformat(sep=" ")
    zhang = world["zhang"]
    _chat(world["site"], iso, agent=zhang, wait=5, first=20, handle=60, rating=5)
    _chat(world["site"], iso, agent=zhang, wait=5, first=40, handle=60, rating=2)
    _chat(world["site"], iso, left_after=30, closed_by="visitor")  # missed
    yesterday = (start - timedelta(seconds=2)).isoformat(sep=" ")
    _chat(world["site"], yesterday, left_after=30, closed_by="visitor")
    db.session.commit()
    page = login_as("manager").get("/").get_data(as_text=True)
    tiles = dict(re.findall(r'<h3 id="tile-([\w-]+)">([^<]*)</h3>', page))
    assert (tiles["chats-today"], tiles["missed-today"]) == ("3", "1")
    assert (tiles["first-response-today"], tiles["csat-today"]) == ("30 秒", "50%")
    assert "今日在线客服" in visible_text(page)
    links = dict(re.findall(r'<a href="([^"]+)" id="link-([\w-]+)">', page))
    by_key = {key: url.replace("&amp;", "&") for url, key in links.items()}
    today = now.date().isoformat()
    assert by_key["missed-today"] == f"/chat/analytics/?section=queue&date_from={today}&date_to={today}"
    queue = login_as("manager").get(by_key["missed-today"]).get_data(as_text=True)
    assert 'id="sum-abandoned">1<' in queue
    # the live figures open their lists, and their analytics for today by a second link
    more = {key: url.replace("&amp;", "&") for url, key in re.findall(r'<a href="([^"]+)" id="more-([\w-]+)"', page)}
    assert more == {"chats-waiting": f"/chat/analytics/?section=queue&date_from={today}&date_to={today}",
                    "agents-online": f"/chat/analytics/?section=agents&date_from={today}&date_to={today}"}
    assert by_key["chats-waiting"] == "/chat/console/"


def test_other_desks_show_no_chat_figures(world, login_as):
    assert "tile-chats-today" not in login_as("accountant").get("/").get_data(as_text=True)


# --- the PDF ---------------------------------------------------------------------------------------------


def test_the_pdf_prints_every_section_with_its_charts_in_chinese(week, login_as):
    answer = login_as("manager").get("/chat/analytics/report.pdf", query_string={**RANGE_ARGS,
                                                                                "site_id": week["site"]})
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    assert "attachment" in answer.headers["Content-Disposition"]
    reader = PdfReader(io.BytesIO(answer.data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "统计分析" in text and "代账官网" in text and "2026-03-02 – 2026-03-08" in text
    for words in ("客服小张", "首次响应", "按小时对话量", "排队与放弃", "离开队列前等待", "www.zhihu.com", "百度",
                  "上海"):
        assert words in text, words
    assert "142.5" in text  # the mean patience


def test_a_bad_filter_for_the_pdf_goes_back_to_the_screen_saying_why(world, login_as):
    answer = login_as("manager").get("/chat/analytics/report.pdf", query_string={"date_from": "2026-02-30"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/chat/analytics/")
