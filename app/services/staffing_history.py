"""The staffing planner's history (排班测算): each hour of the week as the chat's records saw it, and
the agents it needed by Erlang C and Erlang A (``app.services.staffing``).

Over a range of days (in the display time zone, ``date_from`` to ``date_to`` inclusive, at most
``MAX_DAYS``), for one site or group or all, from the conversations that started in the range:

- **arrivals**: conversations started (``queued_at``) in each hour of the week; the rate is their
  number over how many such hours the range holds (four Mondays 09:00 in four weeks);
- **handle time**: the mean of ``closed_at − accepted_at`` over the chats answered and closed,
  per hour of the week when it has at least ``MIN_HANDLED`` of them, else over the whole range
  (``routing.DEFAULT_HANDLE_SECONDS`` without any);
- **patience**: a visitor who closed a chat nobody had accepted left the queue (``closed_by``
  ``visitor``: the widget's close, or gone offline past the grace time). The mean patience is the
  maximum-likelihood estimate for an exponential patience with the answered visitors' waits as
  censored observations: all the time visitors spent waiting (the leavers' until they left, the
  answered ones' until accepted) over the number who left. None when nobody left: the planner
  then gives Erlang C only;
- **agents online then**: from the agents' status history (``AgentPresence``: each stretch of
  online or invisible, cut to each hour), the mean number of the site's (or group's) agents online
  in each hour of the week over the range; rounded, the current staffing whose service level, mean
  wait and occupancy are shown. For a range with no status history at all (before it was kept)
  the planner falls back to the agents *seen working* in each hour (an offer made to them, or a
  reply or note they wrote), a lower bound, and says so in a note.

All of it is read with three aggregate statements grouped by hour (UTC, the stored time); the hours
are then placed in the week in the display zone (an hour of a zone whose offset is not whole
hours goes to the local hour it starts in).

Errors: ``ValidationFailed`` naming ``date_from``, ``date_to``, ``site_id``, ``group_id``,
``target_level``, ``target_seconds`` or ``chats_per_agent``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import DateTime, and_, case, func, literal, literal_column, select, union
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import (
    AgentGroup,
    AgentPresence,
    AgentProfile,
    AgentStatus,
    ChatMessage,
    ChatOffer,
    ChatSite,
    Conversation,
    SenderType,
    agent_group_member,
)
from app.services import staffing
from app.services.errors import ValidationFailed
from app.services.inputs import parse_id
from app.services.routing import DEFAULT_HANDLE_SECONDS

DEFAULT_DAYS = 28
MAX_DAYS = 366
MIN_HANDLED = 5
DEFAULT_LEVEL = 0.8
DEFAULT_SECONDS = 20.0
# A chat's messages are looked for in the conversations started up to this long before the range.
MESSAGE_LOOKBACK = timedelta(days=1)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Filters:
    """The range of days (display zone), the site and group (None: all), the target and the chat
    slots of an agent."""

    date_from: date
    date_to: date
    site_id: int | None = None
    group_id: int | None = None
    target: staffing.Target = staffing.Target(DEFAULT_LEVEL, DEFAULT_SECONDS)
    chats_per_agent: int = 1
    agent_id: int | None = None  # the chat analytics' agent filter (the planner has none)


@dataclass
class HourOfWeek:
    """One hour of the week (``weekday`` 0 = Monday, ``hour`` 0–23 local) over the range."""

    weekday: int
    hour: int
    hours: int = 0  # how many such hours the range holds
    arrivals: int = 0
    handled: int = 0
    handle_seconds: float = 0.0  # their sum
    agent_hours: int = 0  # agents seen working, summed over the range's hours
    online_seconds: float = 0.0  # the agents' time online in this hour, summed over the range's hours
    aht_used: float | None = None
    own_aht: bool = False
    needed_c: staffing.Plan | None = None
    needed_a: staffing.Plan | None = None
    current_agents: int = 0
    current_c: staffing.Performance | None = None
    current_a: staffing.Performance | None = None
    problem: str | None = None  # why a plan is missing

    @property
    def arrival_rate(self) -> float:
        """Arrivals per hour."""
        return self.arrivals / self.hours if self.hours else 0.0

    @property
    def aht(self) -> float | None:
        """This hour's own mean handle time (None without an answered chat)."""
        return self.handle_seconds / self.handled if self.handled else None

    @property
    def agents_seen(self) -> float:
        """Mean number of agents seen working in this hour."""
        return self.agent_hours / self.hours if self.hours else 0.0

    @property
    def agents_online(self) -> float:
        """Mean number of agents online in this hour (from the status history)."""
        return self.online_seconds / (self.hours * 3600) if self.hours else 0.0

    @property
    def active(self) -> bool:
        return bool(self.arrivals or self.agent_hours or self.online_seconds)


@dataclass
class History:
    filters: Filters
    rows: list[HourOfWeek]
    arrivals: int = 0
    handled: int = 0
    handle_seconds: float = 0.0
    abandoned: int = 0
    waited_seconds: float = 0.0
    presence_kept: bool = False  # the status history has stretches in the range
    notes: list[str] = field(default_factory=list)

    @property
    def aht_seconds(self) -> float | None:
        return self.handle_seconds / self.handled if self.handled else None

    @property
    def patience_seconds(self) -> float | None:
        """Mean patience (maximum likelihood, exponential): waiting time over visitors who left."""
        return self.waited_seconds / self.abandoned if self.abandoned else None


# --- filters ----------------------------------------------------------------------------------------


def _day(args: Mapping[str, object], name: str, default: date, errors: dict[str, list[str]]) -> date:
    raw = args.get(name)
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return default
    try:
        if not _DAY.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = [str(_l("A date written YYYY-MM-DD."))]
        return default


def read_filters(args: Mapping[str, object], today: date) -> Filters:
    """Filters from query arguments: ``date_from`` and ``date_to`` (YYYY-MM-DD, by default the
    ``DEFAULT_DAYS`` days to *today*; at most ``MAX_DAYS``), ``site_id``, ``group_id`` and the
    target as the API reads it (``staffing.read_target``; by default 0.8 within 20 seconds, one
    chat per agent). Raises ``ValidationFailed`` naming each field that is not valid."""
    errors: dict[str, list[str]] = {}
    date_from, date_to, ids = read_range(args, today, errors, ("site_id", "group_id"), DEFAULT_DAYS, MAX_DAYS)
    target, per_agent = staffing.read_target(args, errors, DEFAULT_LEVEL, DEFAULT_SECONDS)
    if errors:
        raise ValidationFailed(errors)
    return Filters(date_from, date_to, ids["site_id"], ids["group_id"], target, per_agent)


def read_range(args: Mapping[str, object], today: date, errors: dict[str, list[str]], id_names: tuple[str, ...],
               default_days: int, max_days: int) -> tuple[date, date, dict[str, int | None]]:
    """The range of days ``date_from``–``date_to`` (YYYY-MM-DD; by default the *default_days* days
    to *today*; at most *max_days*, first before last) and the ids *id_names* (whole numbers, or
    None when not given) of query arguments; each bad field is added to *errors*."""
    date_to = _day(args, "date_to", today, errors)
    date_from = _day(args, "date_from", date_to - timedelta(days=default_days - 1), errors)
    if not errors and date_from > date_to:
        errors["date_from"] = [str(_l("The first day comes before the last."))]
    elif not errors and (date_to - date_from).days >= max_days:
        errors["date_from"] = [str(_l("At most %(n)d days.", n=max_days))]
    ids: dict[str, int | None] = {}
    for name in id_names:
        raw = args.get(name)
        ids[name] = None
        if raw is not None and str(raw).strip():
            ids[name] = parse_id(raw)
            if ids[name] is None:
                errors[name] = [str(_l("A whole number from %(n)d.", n=1))]
    return date_from, date_to, ids


def check_filters(session: Session, filters: Filters) -> None:
    """The site and the group exist, and the group is on the site. Raises ``ValidationFailed``."""
    errors: dict[str, list[str]] = {}
    if filters.site_id is not None and session.get(ChatSite, filters.site_id) is None:
        errors["site_id"] = [str(_l("No such site."))]
    if filters.group_id is not None:
        group = session.get(AgentGroup, filters.group_id)
        if group is None:
            errors["group_id"] = [str(_l("No such group."))]
        elif filters.site_id is not None and group.site_id != filters.site_id:
            errors["group_id"] = [str(_l("This group is not on the chosen site."))]
    if errors:
        raise ValidationFailed(errors)


# --- SQL ---------------------------------------------------------------------------------------------


def _hour_bucket(dialect: str, column):  # noqa: ANN001, ANN202
    """The UTC hour of a stored time as text ``YYYY-MM-DD HH`` (one literal format, so that the
    GROUP BY names the same expression as the SELECT on PostgreSQL)."""
    if dialect == "postgresql":
        return func.to_char(column, literal_column("'YYYY-MM-DD HH24'"))
    return func.strftime(literal_column("'%Y-%m-%d %H'"), column)


def _seconds(dialect: str, later, earlier):  # noqa: ANN001, ANN202
    """Seconds from *earlier* to *later*: exact on PostgreSQL; on SQLite from Julian days (a double
    that resolves about 50 µs), rounded to the millisecond."""
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return func.round((func.julianday(later) - func.julianday(earlier)) * 86400.0, 3)


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def _scope(filters: Filters) -> list:
    where = []
    if filters.site_id is not None:
        where.append(Conversation.site_id == filters.site_id)
    if filters.group_id is not None:
        where.append(Conversation.group_id == filters.group_id)
    if filters.agent_id is not None:
        where.append(Conversation.agent_id == filters.agent_id)
    return where


def _conversation_hours(session: Session, dialect: str, filters: Filters, start: datetime, end: datetime):  # noqa: ANN202
    """Per UTC hour of arrival: arrivals, answered and closed chats with their summed handle time,
    visitors who left the queue, and the waiting time of every visitor who left or was answered."""
    bucket = _hour_bucket(dialect, Conversation.queued_at)
    handled = and_(Conversation.accepted_at.is_not(None), Conversation.closed_at.is_not(None),
                   Conversation.closed_at >= Conversation.accepted_at)
    left = and_(Conversation.accepted_at.is_(None), Conversation.closed_at.is_not(None),
                Conversation.closed_by == "visitor", Conversation.closed_at >= Conversation.queued_at)
    answered = and_(Conversation.accepted_at.is_not(None), Conversation.accepted_at >= Conversation.queued_at)
    return session.execute(
        select(bucket.label("bucket"), func.count(),
               func.sum(case((handled, 1), else_=0)),
               func.sum(case((handled, _seconds(dialect, Conversation.closed_at, Conversation.accepted_at)), else_=0)),
               func.sum(case((left, 1), else_=0)),
               func.sum(case((left, _seconds(dialect, Conversation.closed_at, Conversation.queued_at)),
                             (answered, _seconds(dialect, Conversation.accepted_at, Conversation.queued_at)),
                             else_=0)))
        .where(Conversation.queued_at >= start, Conversation.queued_at < end, *_scope(filters))
        .group_by(bucket)).all()


def agents_seen(dialect: str, filters: Filters, start: datetime, end: datetime):  # noqa: ANN201
    """A subquery of the distinct ``(bucket, agent)`` pairs: the UTC hours (``_hour_bucket``) in which
    each agent was offered a chat or wrote a reply or note in one (site and group of *filters*)."""
    offers = (select(_hour_bucket(dialect, ChatOffer.offered_at).label("bucket"), ChatOffer.agent_id.label("agent"))
              .join(Conversation, Conversation.id == ChatOffer.conversation_id)
              .where(ChatOffer.offered_at >= start, ChatOffer.offered_at < end, *_scope(filters)))
    replies = (select(_hour_bucket(dialect, ChatMessage.created_at).label("bucket"), AgentProfile.id.label("agent"))
               .join(Conversation, Conversation.id == ChatMessage.conversation_id)
               .join(AgentProfile, AgentProfile.user_id == ChatMessage.sender_user_id)
               .where(Conversation.queued_at >= start - MESSAGE_LOOKBACK, Conversation.queued_at < end,
                      ChatMessage.created_at >= start, ChatMessage.created_at < end,
                      ChatMessage.sender_type.in_((SenderType.agent, SenderType.note)), *_scope(filters)))
    return union(offers, replies).subquery()


def _agent_hours(session: Session, dialect: str, filters: Filters, start: datetime, end: datetime):  # noqa: ANN202
    """Per UTC hour: the distinct agents offered a chat or writing a reply or note in it."""
    seen = agents_seen(dialect, filters, start, end)
    return session.execute(select(seen.c.bucket, func.count()).group_by(seen.c.bucket)).all()


def _plus_hour(dialect: str, moment):  # noqa: ANN001, ANN202
    if dialect == "postgresql":
        return moment + literal_column("interval '1 hour'")
    return func.datetime(moment, literal_column("'+1 hour'"))


def _online_hours(session: Session, dialect: str, filters: Filters, start: datetime, end: datetime,
                  now: datetime):  # noqa: ANN202
    """Per UTC hour of the range: the seconds the agents (of the site or group of *filters*) were
    online or invisible in it, from ``AgentPresence`` (an open stretch lasts until *now*). The hours
    are a recursive CTE of the range (at most ``MAX_DAYS`` × 24 rows)."""
    first = select(literal(start, DateTime).label("h")).cte("hours", recursive=True)
    following = _plus_hour(dialect, first.c.h)
    hours = first.union_all(select(following).where(following < literal(end, DateTime)))
    least, greatest = (func.least, func.greatest) if dialect == "postgresql" else (func.min, func.max)
    until = func.coalesce(AgentPresence.ended_at, literal(now, DateTime))
    hour_end = _plus_hour(dialect, hours.c.h)
    overlap = _seconds(dialect, least(until, hour_end), greatest(AgentPresence.started_at, hours.c.h))
    agents = select(AgentProfile.id)
    if filters.site_id is not None or filters.group_id is not None:
        agents = (select(agent_group_member.c.agent_id).join(AgentGroup, AgentGroup.id == agent_group_member.c.group_id)
                  .where(*([AgentGroup.site_id == filters.site_id] if filters.site_id is not None else []),
                         *([AgentGroup.id == filters.group_id] if filters.group_id is not None else [])))
    bucket = _hour_bucket(dialect, hours.c.h)
    return session.execute(
        select(bucket, func.sum(overlap)).select_from(hours).join(AgentPresence, and_(
            AgentPresence.started_at < hour_end, until > hours.c.h,
            AgentPresence.status.in_((AgentStatus.online, AgentStatus.invisible)),
            AgentPresence.agent_id.in_(agents)))
        .group_by(bucket)).all()


# --- the week ------------------------------------------------------------------------------------------


def _local_slot(bucket: str, zone: ZoneInfo) -> tuple[int, int]:
    local = datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(zone)
    return local.weekday(), local.hour


def history(session: Session, filters: Filters, tz: str, online: bool = True) -> History:
    """The range's hours of the week with arrivals, handle times, agents seen and (unless not
    *online*) online, and the range's patience (three aggregate statements; two without the agents
    online). Does not plan: see ``plan``."""
    zone = ZoneInfo(tz)
    dialect = session.get_bind().dialect.name
    start, end = _day_start(filters.date_from, zone), _day_start(filters.date_to + timedelta(days=1), zone)
    rows = {(d, h): HourOfWeek(d, h) for d in range(7) for h in range(24)}
    moment = start
    while moment < end:  # how many of each hour of the week the range holds (at most 8,784 hours)
        rows[_local_slot(moment.strftime("%Y-%m-%d %H"), zone)].hours += 1
        moment += timedelta(hours=1)
    result = History(filters, [rows[d, h] for d in range(7) for h in range(24)])
    for bucket, count, handled, handle_seconds, left, waited in _conversation_hours(
            session, dialect, filters, start, end):
        row = rows[_local_slot(bucket, zone)]
        row.arrivals += count
        row.handled += int(handled or 0)
        row.handle_seconds += float(handle_seconds or 0)
        result.abandoned += int(left or 0)
        result.waited_seconds += float(waited or 0)
    for bucket, agents in _agent_hours(session, dialect, filters, start, end):
        rows[_local_slot(bucket, zone)].agent_hours += agents
    for bucket, seconds in _online_hours(session, dialect, filters, start, end, utcnow()) if online else ():
        rows[_local_slot(bucket, zone)].online_seconds += float(seconds or 0)
        result.presence_kept = True
    result.arrivals = sum(r.arrivals for r in result.rows)
    result.handled = sum(r.handled for r in result.rows)
    result.handle_seconds = sum(r.handle_seconds for r in result.rows)
    return result


def plan(result: History) -> History:
    """Fill in each hour's plan: the agents needed by Erlang C and (with a measured patience) by
    Erlang A for the filters' target, and what the agents seen then give (service level, mean
    wait, occupancy). An hour whose demand is out of the planner's bounds keeps the reason in
    ``problem`` (no Erlang A plan, or no plan at all when Erlang C cannot plan it either).
    Returns *result*."""
    filters = result.filters
    target, per_agent = filters.target, filters.chats_per_agent
    overall = result.aht_seconds or DEFAULT_HANDLE_SECONDS
    if result.aht_seconds is None:
        result.notes.append(str(_l("No chat was answered and closed in this range: the handle time is taken as "
                                   "%(n)d seconds.", n=round(DEFAULT_HANDLE_SECONDS))))
    patience = result.patience_seconds
    if patience is None:
        result.notes.append(str(_l("No visitor left the queue in this range: no patience to measure, so no "
                                   "Erlang A estimate.")))
    elif patience > staffing.MAX_PATIENCE_SECONDS:
        result.notes.append(str(_l("The measured patience is longer than the planner computes: no Erlang A "
                                   "estimate.")))
        patience = None
    if not result.presence_kept:
        result.notes.append(str(_l("No agent status was recorded in this range: the agents online then are the "
                                   "agents seen working (offered a chat, or writing a reply or note), a lower bound.")))
    for row in result.rows:
        row.own_aht = row.handled >= MIN_HANDLED
        row.aht_used = row.aht if row.own_aht else overall
        row.current_agents = math.floor((row.agents_online if result.presence_kept else row.agents_seen) + 0.5)
        if not row.active:
            continue
        demand = staffing.Demand(row.arrival_rate, row.aht_used)
        try:
            row.needed_c = staffing.erlang_c_plan(demand, target, per_agent)
        except ValidationFailed as exc:  # an hour out of the planner's bounds: said on its row
            row.problem = exc.message
            continue
        row.current_c = staffing.erlang_c_performance(demand, row.current_agents * per_agent, target.seconds)
        if patience is None:
            continue
        impatient = staffing.Demand(row.arrival_rate, row.aht_used, patience)
        try:
            row.needed_a = staffing.erlang_a_plan(impatient, target, per_agent)
        except ValidationFailed as exc:
            row.problem = exc.message
            continue
        row.current_a = staffing.erlang_a_performance(impatient, row.current_agents * per_agent, target.seconds)
    return result
