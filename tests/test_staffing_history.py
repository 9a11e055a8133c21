"""The staffing planner's history (排班测算) on a small hand-built set of chats: arrivals per hour of
the week in the display zone, handle time, measured patience, the agents seen working, the plans
and the screen 在线客服 → 排班测算."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import pytest
from pytest import approx
from sqlalchemy import func, select

from app.extensions import db
from app.models.chat import (
    AgentGroup,
    AgentPresence,
    AgentProfile,
    AgentStatus,
    ChatMessage,
    ChatOffer,
    ChatSite,
    Conversation,
    ConversationStatus,
    OfferOutcome,
    SenderType,
    Visitor,
)
from app.models.security import AuditLog
from app.services import chat_sites, staffing
from app.services import staffing_history as svc
from app.services.errors import ValidationFailed
from tests.test_zh_raw_values import visible_text

TZ = "Asia/Shanghai"  # UTC+8, no summer time
RANGE = svc.Filters(date(2026, 3, 2), date(2026, 3, 15))  # Monday 2 March to Sunday 15 March: two weeks
_uids = itertools.count(1)


def _utc(local: str) -> datetime:
    """A Shanghai wall-clock time as the naive UTC the database stores."""
    return datetime.fromisoformat(local) - timedelta(hours=8)


@pytest.fixture
def world(app, user_id):
    """Two sites; the first with groups 售前 and 售后; agents 小张 (user ``agent``) and 小李 (user
    ``manager``)."""
    first = chat_sites.prepare_new_site(ChatSite(name="代账官网", allowed_origins="https://a.example.com"))
    second = chat_sites.prepare_new_site(ChatSite(name="另一站点", allowed_origins="https://b.example.com"))
    db.session.add_all([first, second])
    db.session.flush()
    sales, service = AgentGroup(site_id=first.id, name="售前"), AgentGroup(site_id=first.id, name="售后")
    zhang = AgentProfile(user_id=user_id("agent"), display_name="客服小张", groups=[sales])
    li = AgentProfile(user_id=user_id("manager"), display_name="客服小李", groups=[sales, service])
    db.session.add_all([sales, service, zhang, li])
    db.session.commit()
    return {"site": first.id, "other": second.id, "sales": sales.id, "service": service.id, "zhang": zhang,
            "li": li}


def _chat(site_id: int, queued: str, *, group_id: int | None = None, wait: float | None = None,
          handle: float | None = None, left_after: float | None = None, closed_by: str = "agent",
          agent: AgentProfile | None = None) -> Conversation:
    """A conversation queued at *queued* (Shanghai time): answered after *wait* seconds and closed
    *handle* seconds later, or closed by *closed_by* after *left_after* seconds unanswered."""
    visitor = Visitor(site_id=site_id, uid=f"v{next(_uids)}")
    db.session.add(visitor)
    db.session.flush()
    start = _utc(queued)
    conversation = Conversation(site_id=site_id, visitor_id=visitor.id, group_id=group_id, queued_at=start,
                                status=ConversationStatus.closed, agent_id=agent.id if agent else None)
    if wait is not None:
        conversation.accepted_at = start + timedelta(seconds=wait)
        conversation.closed_at = conversation.accepted_at + timedelta(seconds=handle)
        conversation.closed_by = "agent"
    else:
        conversation.closed_at, conversation.closed_by = start + timedelta(seconds=left_after), closed_by
    db.session.add(conversation)
    db.session.flush()
    return conversation


def _offer(conversation: Conversation, agent: AgentProfile, local: str) -> None:
    at = _utc(local)
    db.session.add(ChatOffer(conversation_id=conversation.id, agent_id=agent.id, offered_at=at,
                             expires_at=at + timedelta(seconds=30), outcome=OfferOutcome.accepted, decided_at=at))


def _says(conversation: Conversation, local: str, sender: SenderType, user_id: int | None = None) -> None:
    db.session.add(ChatMessage(conversation_id=conversation.id, sender_type=sender, sender_user_id=user_id,
                               text="您好", created_at=_utc(local)))


@pytest.fixture
def chats(world):
    """Monday 09:00–10:00 in both weeks, Tuesday 14:00–15:00 in the first, and chats outside the
    range, on the other site and closed by the system."""
    site, zhang, li = world["site"], world["zhang"], world["li"]
    monday = _chat(site, "2026-03-02 09:10:00", group_id=world["sales"], wait=30, handle=600, agent=zhang)
    _offer(monday, zhang, "2026-03-02 09:10:05")
    _says(monday, "2026-03-02 09:12:00", SenderType.agent, zhang.user_id)
    _says(monday, "2026-03-02 09:11:00", SenderType.visitor)
    later = _chat(site, "2026-03-09 09:40:00", group_id=world["sales"], wait=90, handle=300, agent=li)
    _offer(later, li, "2026-03-09 09:40:10")
    _says(later, "2026-03-09 09:45:00", SenderType.note, zhang.user_id)  # 小张 helps with a note
    _chat(site, "2026-03-09 09:50:00", group_id=world["sales"], left_after=60, closed_by="visitor")
    tuesday = _chat(site, "2026-03-03 14:05:00", group_id=world["service"], wait=0, handle=120, agent=li)
    _says(tuesday, "2026-03-03 14:06:00", SenderType.agent, li.user_id)
    _chat(site, "2026-03-03 14:30:00", group_id=world["service"], left_after=20, closed_by="system")  # not patience
    _chat(site, "2026-03-02 00:30:00", left_after=10, closed_by="visitor")  # Monday 00:xx local, Sunday in UTC
    _chat(site, "2026-03-01 23:50:00", wait=5, handle=50)  # the day before the range
    _chat(site, "2026-03-16 09:10:00", wait=5, handle=50)  # the day after
    _chat(world["other"], "2026-03-02 09:30:00", wait=10, handle=200)
    db.session.commit()
    return world


def _row(result: svc.History, weekday: int, hour: int) -> svc.HourOfWeek:
    return next(r for r in result.rows if (r.weekday, r.hour) == (weekday, hour))


def test_arrivals_handle_time_patience_and_agents_are_counted_per_hour_of_the_week(chats, session):
    result = svc.history(session, svc.Filters(RANGE.date_from, RANGE.date_to, site_id=chats["site"]), TZ)
    assert len(result.rows) == 168 and {r.hours for r in result.rows} == {2}  # two of each hour
    monday = _row(result, 0, 9)
    assert (monday.arrivals, monday.arrival_rate, monday.handled, monday.aht) == (3, 1.5, 2, approx(450))
    assert monday.agent_hours == 3 and monday.agents_seen == 1.5  # 小张 on the 2nd; 小张 and 小李 on the 9th
    tuesday = _row(result, 1, 14)
    assert (tuesday.arrivals, tuesday.handled, tuesday.aht, tuesday.agents_seen) == (2, 1, approx(120), 0.5)
    midnight = _row(result, 0, 0)  # 00:30 Shanghai is Sunday 16:30 UTC: placed in the local week
    assert (midnight.arrivals, _row(result, 6, 16).arrivals) == (1, 0)
    assert sum(r.arrivals for r in result.rows) == result.arrivals == 6
    assert (result.handled, result.aht_seconds) == (3, approx((600 + 300 + 120) / 3))
    # Two visitors left (after 60 s and 10 s); everyone answered waited 30 + 90 + 0 s: patience =
    # all the waiting over the leavers; the chat the system closed is neither.
    assert result.abandoned == 2
    assert result.patience_seconds == approx((60 + 10 + 30 + 90 + 0) / 2)


def test_the_site_and_group_filters_narrow_every_figure(chats, session):
    everything = svc.history(session, RANGE, TZ)
    assert _row(everything, 0, 9).arrivals == 4 and everything.arrivals == 7
    service = svc.history(session, svc.Filters(RANGE.date_from, RANGE.date_to, chats["site"], chats["service"]), TZ)
    assert service.arrivals == 2 and _row(service, 0, 9).arrivals == 0
    assert (_row(service, 1, 14).arrivals, _row(service, 1, 14).agents_seen) == (2, 0.5)
    assert (service.abandoned, service.patience_seconds) == (0, None)
    one_week = svc.history(session, svc.Filters(date(2026, 3, 9), date(2026, 3, 15), chats["site"]), TZ)
    assert {r.hours for r in one_week.rows} == {1}
    assert (_row(one_week, 0, 9).arrivals, _row(one_week, 0, 9).agents_seen) == (2, 2.0)


def test_each_hour_is_planned_by_erlang_c_and_a_against_the_agents_seen(chats, session):
    filters = svc.Filters(RANGE.date_from, RANGE.date_to, site_id=chats["site"], target=staffing.Target(0.8, 20))
    result = svc.plan(svc.history(session, filters, TZ))
    monday = _row(result, 0, 9)
    aht = (600 + 300 + 120) / 3  # fewer than MIN_HANDLED answered in the hour: the range's mean
    assert (monday.own_aht, monday.aht_used) == (False, approx(aht))
    demand = staffing.Demand(1.5, aht)
    assert monday.needed_c == staffing.erlang_c_plan(demand, filters.target)
    impatient = staffing.Demand(1.5, aht, result.patience_seconds)
    assert monday.needed_a == staffing.erlang_a_plan(impatient, filters.target)
    assert monday.current_agents == 2  # 1.5 agents seen, rounded
    assert monday.current_c == staffing.erlang_c_performance(demand, 2, 20)
    assert monday.current_a == staffing.erlang_a_performance(impatient, 2, 20)
    quiet = _row(result, 3, 3)
    assert not quiet.active and quiet.needed_c is None


def test_the_agents_online_then_come_from_their_status_history(chats, session):
    """小张 online on Monday 2 March 09:00–11:30 and, invisible, on Monday 9 March 09:30–10:00; away
    on Tuesday 3 March 14:00–15:00 (not online); 小李, of the site too, online on Monday 9 March
    08:00–09:15. Monday 09:00 over the two weeks: 3600 + 1800 + 900 s in 2 hours = 0.875 agents."""
    zhang, li = chats["zhang"], chats["li"]
    for agent, status, began, ended in [
            (zhang, "online", "2026-03-02 09:00", "2026-03-02 11:30"),
            (zhang, "invisible", "2026-03-09 09:30", "2026-03-09 10:00"),
            (zhang, "away", "2026-03-03 14:00", "2026-03-03 15:00"),
            (li, "online", "2026-03-09 08:00", "2026-03-09 09:15")]:
        db.session.add(AgentPresence(agent_id=agent.id, status=AgentStatus(status), started_at=_utc(began),
                                     ended_at=_utc(ended)))
    db.session.commit()
    filters = svc.Filters(RANGE.date_from, RANGE.date_to, site_id=chats["site"])
    result = svc.plan(svc.history(session, filters, TZ))
    assert result.presence_kept and not any("没有客服状态记录" in note for note in result.notes)
    assert _row(result, 0, 9).online_seconds == approx(3600 + 1800 + 900, abs=0.01)
    assert _row(result, 0, 9).agents_online == approx(0.875)
    assert _row(result, 0, 8).agents_online == approx(0.5)  # 小李's hour on the 9th, of two Monday 08:00s
    assert _row(result, 0, 11).agents_online == approx(0.25)  # 11:00–11:30 on the 2nd
    assert _row(result, 1, 14).agents_online == 0  # away is not online
    assert _row(result, 0, 9).current_agents == 1  # 0.875 rounded (the agents seen would give 2)
    # The group 售后 has only 小李: Monday 09:00 has his quarter of an hour, over two hours.
    service = svc.history(session, svc.Filters(RANGE.date_from, RANGE.date_to, chats["site"], chats["service"]), TZ)
    assert _row(service, 0, 9).agents_online == approx(900 / 7200)


def test_without_status_history_the_agents_seen_stand_in_and_a_note_says_so(chats, session):
    result = svc.plan(svc.history(session, svc.Filters(RANGE.date_from, RANGE.date_to, site_id=chats["site"]), TZ))
    assert not result.presence_kept
    assert any("没有客服状态记录" in note for note in result.notes)  # (the notes are in the UI's language)
    assert _row(result, 0, 9).current_agents == 2  # 1.5 agents seen, rounded


def test_without_anyone_leaving_or_answered_the_plan_says_what_it_assumed(world, session):
    _chat(world["site"], "2026-03-04 10:00:00", left_after=30, closed_by="system")
    db.session.commit()
    result = svc.plan(svc.history(session, RANGE, TZ))
    row = _row(result, 2, 10)
    assert row.aht_used == svc.DEFAULT_HANDLE_SECONDS and row.needed_c.agents == 1 and row.needed_a is None
    assert len(result.notes) == 3  # no handle time, no patience, no status history


def test_an_hour_beyond_the_planners_bounds_says_why_on_its_row(world, login_as):
    _chat(world["site"], "2026-03-04 10:00:00", wait=5, handle=2 * 86_400)  # a chat left open for two days
    db.session.commit()
    result = svc.plan(svc.history(db.session, RANGE, TZ))
    row = _row(result, 2, 10)
    assert row.needed_c is None and row.problem == "须大于 0 且不超过 86400。"  # the handle time (zh_CN by default)
    status, page = _screen(login_as("manager"), date_from="2026-03-02", date_to="2026-03-15")
    assert status == 200 and "须大于 0 且不超过 86400。" in visible_text(page)


@pytest.mark.parametrize(("args", "field"), [
    ({"date_from": "2026-13-01"}, "date_from"), ({"date_to": "yesterday"}, "date_to"),
    ({"date_from": "2026-03-10", "date_to": "2026-03-01"}, "date_from"),
    ({"date_from": "2025-01-01", "date_to": "2026-03-01"}, "date_from"),
    ({"site_id": "0"}, "site_id"), ({"group_id": "x"}, "group_id"),
    ({"target_level": "1"}, "target_level"), ({"chats_per_agent": "0"}, "chats_per_agent"),
])
def test_bad_filters_are_refused_naming_the_field(args, field):
    with pytest.raises(ValidationFailed) as refused:
        svc.read_filters(args, date(2026, 3, 20))
    assert list(refused.value.errors) == [field]


def test_filters_default_to_the_last_four_weeks_and_eighty_percent_in_twenty_seconds():
    filters = svc.read_filters({}, date(2026, 3, 20))
    assert (filters.date_from, filters.date_to) == (date(2026, 2, 21), date(2026, 3, 20))
    assert (filters.target, filters.chats_per_agent) == (staffing.Target(0.8, 20.0), 1)


def test_a_group_of_another_site_is_refused(world, session):
    filters = svc.read_filters({"site_id": str(world["other"]), "group_id": str(world["sales"])}, date(2026, 3, 20))
    with pytest.raises(ValidationFailed) as refused:
        svc.check_filters(session, filters)
    assert list(refused.value.errors) == ["group_id"]


# --- the screen ---------------------------------------------------------------------------------------


def _screen(client, **args) -> tuple[int, str]:  # noqa: ANN001
    response = client.get("/chat/staffing/", query_string=args)
    return response.status_code, response.get_data(as_text=True)


def test_the_manager_sees_each_hour_in_chinese(chats, login_as, session):
    manager = login_as("manager")
    writes = session.scalar(select(func.count()).select_from(AuditLog))
    status, page = _screen(manager, date_from="2026-03-02", date_to="2026-03-15", site_id=chats["site"],
                           target_level="0.8", target_seconds="20")
    assert status == 200
    text = visible_text(page)
    assert "排班测算" in text and "周一 09:00–10:00" in text and "周二 14:00–15:00" in text
    assert "平均耐心时长" in text and "95 秒" in text  # (60 + 10 + 30 + 90 + 0) / 2 seconds
    assert 'data-weekday="0" data-hour="9"' in page
    assert "周四 03:00" not in text  # an hour with no chat and no agent is left out
    assert session.scalar(select(func.count()).select_from(AuditLog)) == writes  # reading writes nothing


def test_a_bad_filter_is_reported_and_the_default_range_shown(chats, login_as):
    status, page = _screen(login_as("admin"), date_from="2026-99-01")
    assert status == 200
    assert "日期格式为 YYYY-MM-DD" in visible_text(page)


def test_visitor_text_in_site_names_is_escaped(world, login_as):
    site = db.session.get(ChatSite, world["site"])
    site.name = "<script>alert(1)</script>"
    db.session.commit()
    status, page = _screen(login_as("manager"))
    assert status == 200
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("role", ["accountant", "reviewer", "agent"])
def test_other_roles_do_not_get_the_screen(login_as, role):
    response = login_as(role).get("/chat/staffing/")
    assert response.status_code in (302, 403)
    assert "排班测算" not in response.get_data(as_text=True)
