"""Chat analytics (在线客服 → 统计分析): what the chat's records say about a range of days, as tables
read with SQL aggregates (a fixed number of statements, however many chats).

Filters: a range of days in the display zone (``date_from`` to ``date_to`` inclusive, at most
``MAX_DAYS``; by default the ``DEFAULT_DAYS`` days to today), a site, a group and an agent. A chat
belongs to the range when it started (``queued_at``) in it.

Tables (``TABLES``):

- **agents** — per agent: chats (conversations they hold at the end), messages written (replies,
  not notes), first response (``first_response_at − queued_at``: what the visitor waited for the
  first answer; mean and p90), handle time (``closed_at − accepted_at``, mean), CSAT (share of
  rated chats rated 4 or 5, and the mean rating), transfers handed on, offers missed (timed out
  or declined), the *hours seen working* and the occupancy. Presence is kept as the current
  state only (no history), so time online and away cannot be shown: the hours seen working are
  the clock hours in which the agent was offered a chat or wrote a reply or note
  (``staffing_history.agents_seen``, the staffing planner's measure), and the occupancy is the
  handle time over those hours' chat slots (``hours × 3600 × max_chats``). The agent filter picks
  the agent's row; the site and group filters the chats counted.
- **hours** — chats started per hour of the week (weekday × local hour: the heatmap), from
  ``staffing_history.history``.
- **queue** — chats started, answered, left in the queue (closed by the visitor before anyone
  accepted: the planner's abandonment) and otherwise unanswered; the wait before an answer (mean,
  p90, share within 20 and 60 seconds); the mean patience (the planner's estimate), and a
  histogram of how long the answered waited and after how long the others left (the patience
  distribution), in ``WAIT_EDGES`` buckets.
- **sources** — the visitors whose first page view in the range came from a source
  (``by``: ``referrer`` host, ``search`` engine and keyword, ``landing`` page without its query,
  ``campaign`` utm_campaign with utm_source, ``region`` country and region from GeoIP), with the
  visitors who chatted, their chats and the visitors identified as a client's contact
  (conversion = identified / visitors). The site filter picks visitors; group and agent the
  chats counted.
- **visits** — visits started (a visit's first page view in the range) per hour of the week
  (访客来访时间), for staffing and sales; the regions are the ``sources`` table ``by=region``.

**p90** is the nearest-rank 90th percentile: the smallest value with at least 90 % of the values
at or below it (the value of rank ⌈0.9·n⌉ in ascending order), computed in SQL with a window.

Errors: ``ValidationFailed`` naming ``date_from``, ``date_to``, ``site_id``, ``group_id``,
``agent_id``, ``table``, ``by`` or ``limit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import DateTime, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import (
    AgentPresence,
    AgentProfile,
    AgentStatus,
    ChatMessage,
    ChatOffer,
    ChatTransfer,
    Conversation,
    OfferOutcome,
    PageView,
    SenderType,
    Visitor,
)
from app.services import staffing_history as history_svc
from app.services.errors import ValidationFailed
from app.services.inputs import parse_count
from app.services.staffing_history import _day_start, _hour_bucket, _local_slot, _seconds

DEFAULT_DAYS = 28
MAX_DAYS = 366
TABLES = ("agents", "hours", "queue", "sources", "visits")
SOURCES = ("referrer", "search", "landing", "campaign", "region")
WAIT_EDGES = (0, 10, 30, 60, 120, 300, 600)  # seconds: buckets [0,10) [10,30) … [600, ∞)
DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
SATISFIED = 4  # a rating of 4 or 5 counts as satisfied


@dataclass(frozen=True)
class Filters:
    """Days in the display zone (inclusive), and the site, group and agent (None: all)."""

    date_from: date
    date_to: date
    site_id: int | None = None
    group_id: int | None = None
    agent_id: int | None = None

    def query(self) -> dict[str, str]:
        """The filters as query arguments (for links and forms)."""
        args = {"date_from": self.date_from.isoformat(), "date_to": self.date_to.isoformat()}
        for name in ("site_id", "group_id", "agent_id"):
            if getattr(self, name) is not None:
                args[name] = str(getattr(self, name))
        return args


def read_filters(args: Mapping[str, object], today: date) -> Filters:
    """Filters from query arguments ``date_from``, ``date_to`` (YYYY-MM-DD; by default the
    ``DEFAULT_DAYS`` days to *today*; at most ``MAX_DAYS`` days, first before last), ``site_id``,
    ``group_id`` and ``agent_id`` (whole numbers). Raises ``ValidationFailed`` naming each field."""
    errors: dict[str, list[str]] = {}
    date_from, date_to, ids = history_svc.read_range(args, today, errors, ("site_id", "group_id", "agent_id"),
                                                     DEFAULT_DAYS, MAX_DAYS)
    if errors:
        raise ValidationFailed(errors)
    return Filters(date_from, date_to, ids["site_id"], ids["group_id"], ids["agent_id"])


def check_filters(session: Session, filters: Filters) -> None:
    """The site and group exist (the group on the site: ``staffing_history.check_filters``) and so
    does the agent. Raises ``ValidationFailed``."""
    history_svc.check_filters(session, _planner_filters(filters))
    if filters.agent_id is not None and session.get(AgentProfile, filters.agent_id) is None:
        raise ValidationFailed({"agent_id": [str(_l("No such agent."))]})


def read_table(value: object) -> str:
    """The table's name, one of ``TABLES``. Raises ``ValidationFailed`` naming ``table``."""
    if value not in TABLES:
        raise ValidationFailed({"table": [str(_l("No such table."))]})
    return str(value)


def read_source(args: Mapping[str, object]) -> tuple[str, int]:
    """``by`` (one of ``SOURCES``, default ``referrer``) and ``limit`` (rows, 1–``MAX_LIMIT``,
    default ``DEFAULT_LIMIT``) of the sources table. Raises ``ValidationFailed``."""
    errors: dict[str, list[str]] = {}
    by = str(args.get("by") or "referrer")
    if by not in SOURCES:
        errors["by"] = [str(_l("No such source."))]
    limit = parse_count(args.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    if limit is None or limit < 1:
        errors["limit"] = [str(_l("A whole number from %(n)d to %(m)d.", n=1, m=MAX_LIMIT))]
    if errors:
        raise ValidationFailed(errors)
    return by, int(limit or DEFAULT_LIMIT)


# --- helpers -------------------------------------------------------------------------------------------


def _planner_filters(filters: Filters, agent: bool = True) -> history_svc.Filters:
    return history_svc.Filters(filters.date_from, filters.date_to, filters.site_id, filters.group_id,
                               agent_id=filters.agent_id if agent else None)


def _bounds(filters: Filters, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    return _day_start(filters.date_from, zone), _day_start(filters.date_to + timedelta(days=1), zone)


def _scope(filters: Filters, agent: bool = True) -> list:
    where = []
    if filters.site_id is not None:
        where.append(Conversation.site_id == filters.site_id)
    if filters.group_id is not None:
        where.append(Conversation.group_id == filters.group_id)
    if agent and filters.agent_id is not None:
        where.append(Conversation.agent_id == filters.agent_id)
    return where


def _round(value: object, places: int = 1) -> float | None:
    return None if value is None else round(float(value), places)  # type: ignore[arg-type]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _p90(values, partition=None):  # noqa: ANN001, ANN202
    """Rank columns for the nearest-rank p90 of *values*: row number and count in the partition."""
    over = {"order_by": values}
    if partition is not None:
        over["partition_by"] = partition
    counted = {"partition_by": partition} if partition is not None else {}
    return func.row_number().over(**over).label("rank"), func.count().over(**counted).label("n")


def _p90_of(sub):  # noqa: ANN001, ANN202
    """The nearest-rank p90 over a subquery with ``value``, ``rank`` and ``n``: the smallest value
    whose rank is at least 0.9·n (10·rank ≥ 9·n, in whole numbers)."""
    return func.min(case((sub.c.rank * 10 >= sub.c.n * 9, sub.c.value)))


# --- agents --------------------------------------------------------------------------------------------


@dataclass
class AgentRow:
    agent_id: int
    agent: str
    chats: int
    messages: int
    first_response_mean: float | None
    first_response_p90: float | None
    handle_mean: float | None
    rated: int
    csat: float | None  # share of rated chats rated 4 or 5
    rating_mean: float | None
    transfers: int
    offers: int
    missed_offers: int
    hours_seen: int
    online_seconds: float  # online or invisible (``AgentPresence``), within the range
    away_seconds: float
    occupancy: float | None


def _presence(dialect: str, start: datetime, end: datetime, now: datetime):  # noqa: ANN202
    """Per agent, the seconds online (or invisible) and away within [*start*, *end*): each stretch
    of ``AgentPresence`` cut to the range (an open stretch lasts until *now*)."""
    least, greatest = (func.least, func.greatest) if dialect == "postgresql" else (func.min, func.max)
    until = func.coalesce(AgentPresence.ended_at, literal(now, DateTime))
    overlap = _seconds(dialect, least(until, literal(end, DateTime)), greatest(AgentPresence.started_at,
                                                                                 literal(start, DateTime)))
    working = AgentPresence.status.in_((AgentStatus.online, AgentStatus.invisible))
    return (select(AgentPresence.agent_id.label("agent_id"),
                   func.sum(case((working, overlap), else_=0)).label("online"),
                   func.sum(case((AgentPresence.status == AgentStatus.away, overlap), else_=0)).label("away"))
            .where(AgentPresence.started_at < end, until > start).group_by(AgentPresence.agent_id).subquery())


def agents(session: Session, filters: Filters, tz: str) -> list[AgentRow]:
    """The per-agent table (one statement): see the module's docstring for each column."""
    dialect = session.get_bind().dialect.name
    start, end = _bounds(filters, tz)
    scope = _scope(filters, agent=False)
    in_range = and_(Conversation.queued_at >= start, Conversation.queued_at < end, *scope)
    handled = and_(Conversation.accepted_at.is_not(None), Conversation.closed_at.is_not(None),
                   Conversation.closed_at >= Conversation.accepted_at)
    chats = (select(Conversation.agent_id.label("agent_id"), func.count().label("chats"),
                    func.sum(case((handled, 1), else_=0)).label("handled"),
                    func.sum(case((handled, _seconds(dialect, Conversation.closed_at, Conversation.accepted_at)),
                                  else_=0)).label("handle_seconds"),
                    func.count(Conversation.rating).label("rated"),
                    func.sum(case((Conversation.rating >= SATISFIED, 1), else_=0)).label("satisfied"),
                    func.avg(Conversation.rating).label("rating_mean"))
             .where(in_range, Conversation.agent_id.is_not(None)).group_by(Conversation.agent_id).subquery())
    value = _seconds(dialect, Conversation.first_response_at, Conversation.queued_at)
    ranked = (select(Conversation.agent_id.label("agent_id"), value.label("value"),
                     *_p90(value, Conversation.agent_id))
              .where(in_range, Conversation.agent_id.is_not(None), Conversation.first_response_at.is_not(None),
                     Conversation.first_response_at >= Conversation.queued_at).subquery())
    first = (select(ranked.c.agent_id, func.avg(ranked.c.value).label("mean"), _p90_of(ranked).label("p90"))
             .group_by(ranked.c.agent_id).subquery())
    messages = (select(AgentProfile.id.label("agent_id"), func.count().label("messages"))
                .join(ChatMessage, ChatMessage.sender_user_id == AgentProfile.user_id)
                .join(Conversation, Conversation.id == ChatMessage.conversation_id)
                .where(in_range, ChatMessage.sender_type == SenderType.agent).group_by(AgentProfile.id).subquery())
    transfers = (select(ChatTransfer.from_agent_id.label("agent_id"), func.count().label("transfers"))
                 .join(Conversation, Conversation.id == ChatTransfer.conversation_id)
                 .where(ChatTransfer.created_at >= start, ChatTransfer.created_at < end, *scope)
                 .group_by(ChatTransfer.from_agent_id).subquery())
    missed = ChatOffer.outcome.in_((OfferOutcome.timed_out, OfferOutcome.declined))
    offers = (select(ChatOffer.agent_id.label("agent_id"), func.count().label("offers"),
                     func.sum(case((missed, 1), else_=0)).label("missed"))
              .join(Conversation, Conversation.id == ChatOffer.conversation_id)
              .where(ChatOffer.offered_at >= start, ChatOffer.offered_at < end, *scope)
              .group_by(ChatOffer.agent_id).subquery())
    seen_pairs = history_svc.agents_seen(dialect, _planner_filters(filters, agent=False), start, end)
    seen = select(seen_pairs.c.agent.label("agent_id"), func.count().label("hours")).group_by(
        seen_pairs.c.agent).subquery()
    presence = _presence(dialect, start, end, utcnow())
    parts = (chats, first, messages, transfers, offers, seen, presence)
    stmt = select(AgentProfile.id, AgentProfile.display_name, AgentProfile.max_chats,
                  chats.c.chats, chats.c.handled, chats.c.handle_seconds, chats.c.rated, chats.c.satisfied,
                  chats.c.rating_mean, first.c.mean, first.c.p90, messages.c.messages, transfers.c.transfers,
                  offers.c.offers, offers.c.missed, seen.c.hours, presence.c.online, presence.c.away)
    for part in parts:
        stmt = stmt.outerjoin(part, part.c.agent_id == AgentProfile.id)
    stmt = stmt.where(or_(*(part.c.agent_id.is_not(None) for part in parts)))
    if filters.agent_id is not None:
        stmt = stmt.where(AgentProfile.id == filters.agent_id)
    rows = []
    for r in session.execute(stmt.order_by(AgentProfile.display_name, AgentProfile.id)):
        handled_n, handle_seconds, hours = int(r.handled or 0), float(r.handle_seconds or 0), int(r.hours or 0)
        rated, online = int(r.rated or 0), float(r.online or 0)
        # the chat slots of the time online; where no presence was kept, of the hours seen working
        slots = (online or hours * 3600) * r.max_chats
        rows.append(AgentRow(
            agent_id=r.id, agent=r.display_name, chats=int(r.chats or 0), messages=int(r.messages or 0),
            first_response_mean=_round(r.mean), first_response_p90=_round(r.p90),
            handle_mean=_round(handle_seconds / handled_n) if handled_n else None,
            rated=rated, csat=_share(int(r.satisfied or 0), rated), rating_mean=_round(r.rating_mean, 2),
            transfers=int(r.transfers or 0), offers=int(r.offers or 0), missed_offers=int(r.missed or 0),
            hours_seen=hours, online_seconds=round(online, 1), away_seconds=round(float(r.away or 0), 1),
            occupancy=round(handle_seconds / slots, 4) if slots else None))
    return rows


# --- hours of the week -----------------------------------------------------------------------------------


def hours(session: Session, filters: Filters, tz: str) -> list[dict[str, int]]:
    """Chats started per hour of the week (``weekday`` 0 = Monday, local ``hour``): 168 cells, from
    the staffing planner's history."""
    result = history_svc.history(session, _planner_filters(filters), tz, online=False)
    return [{"weekday": r.weekday, "hour": r.hour, "chats": r.arrivals} for r in result.rows]


def visits(session: Session, filters: Filters, tz: str) -> list[dict[str, int]]:
    """Visits started per hour of the week (168 cells): a visit is counted at its first page view,
    when that falls in the range (one statement)."""
    dialect = session.get_bind().dialect.name
    start, end = _bounds(filters, tz)
    first = select(func.min(PageView.id).label("id")).group_by(PageView.visitor_id, PageView.visit_no)
    bucket = _hour_bucket(dialect, PageView.started_at)
    stmt = (select(bucket.label("bucket"), func.count()).where(
        PageView.id.in_(first), PageView.started_at >= start, PageView.started_at < end))
    if filters.site_id is not None:
        stmt = stmt.join(Visitor, Visitor.id == PageView.visitor_id).where(Visitor.site_id == filters.site_id)
    cells = {(d, h): 0 for d in range(7) for h in range(24)}
    zone = ZoneInfo(tz)
    for row_bucket, count in session.execute(stmt.group_by(bucket)):
        cells[_local_slot(row_bucket, zone)] += count
    return [{"weekday": d, "hour": h, "visits": n} for (d, h), n in cells.items()]


# --- the queue -------------------------------------------------------------------------------------------


@dataclass
class Queue:
    chats: int
    answered: int
    abandoned: int  # left the queue: closed by the visitor before anyone accepted
    unanswered: int  # otherwise never accepted (closed by the system or an agent, or still waiting)
    wait_mean: float | None  # before an answer, over the answered
    wait_p90: float | None
    within_20: float | None  # share of the answered within 20 seconds
    within_60: float | None
    patience_mean: float | None  # the planner's estimate (answered waits as censored observations)
    buckets: list[dict[str, Any]]  # from, to (None: no end), answered, abandoned


def queue(session: Session, filters: Filters, tz: str) -> Queue:
    """Queue waits and abandonment: the chats, the leavers and the mean patience from the planner's
    history (``staffing_history.history``, two statements), the answered waits with their p90 (one)
    and the histogram of the answered waits and of the leavers' patience (one)."""
    dialect = session.get_bind().dialect.name
    start, end = _bounds(filters, tz)
    planner = history_svc.history(session, _planner_filters(filters), tz, online=False)
    in_range = and_(Conversation.queued_at >= start, Conversation.queued_at < end, *_scope(filters))
    answered = and_(Conversation.accepted_at.is_not(None), Conversation.accepted_at >= Conversation.queued_at)
    left = and_(Conversation.accepted_at.is_(None), Conversation.closed_at.is_not(None),
                Conversation.closed_by == "visitor", Conversation.closed_at >= Conversation.queued_at)
    wait = _seconds(dialect, Conversation.accepted_at, Conversation.queued_at)
    waits = select(wait.label("value"), *_p90(wait)).where(in_range, answered).subquery()
    count, mean, p90, within_20, within_60 = session.execute(select(
        func.count(waits.c.value), func.avg(waits.c.value), _p90_of(waits),
        func.sum(case((waits.c.value <= 20, 1), else_=0)), func.sum(case((waits.c.value <= 60, 1), else_=0)))).one()
    count = int(count or 0)
    value = case((answered, wait), else_=_seconds(dialect, Conversation.closed_at, Conversation.queued_at))
    bucket = case(*((value >= edge, index) for index, edge in reversed(list(enumerate(WAIT_EDGES)))), else_=0)
    cells = {index: [0, 0] for index in range(len(WAIT_EDGES))}
    for index, answered_n, left_n in session.execute(
            select(bucket.label("bucket"), func.sum(case((answered, 1), else_=0)), func.sum(case((left, 1), else_=0)))
            .where(in_range, or_(answered, left)).group_by(bucket)):
        cells[int(index)][0] += int(answered_n or 0)
        cells[int(index)][1] += int(left_n or 0)
    buckets = [{"from": edge, "to": WAIT_EDGES[i + 1] if i + 1 < len(WAIT_EDGES) else None,
                "answered": cells[i][0], "abandoned": cells[i][1]} for i, edge in enumerate(WAIT_EDGES)]
    return Queue(chats=planner.arrivals, answered=count, abandoned=planner.abandoned,
                 unanswered=planner.arrivals - count - planner.abandoned, wait_mean=_round(mean),
                 wait_p90=_round(p90), within_20=_share(int(within_20 or 0), count),
                 within_60=_share(int(within_60 or 0), count), patience_mean=_round(planner.patience_seconds),
                 buckets=buckets)


# --- sources ---------------------------------------------------------------------------------------------


@dataclass
class SourceRow:
    source: str | None  # None: none (direct visits, no campaign, no GeoIP)
    detail: str | None
    visitors: int
    chatted: int  # visitors with a chat in the range
    chats: int
    identified: int  # visitors identified as a client's contact
    conversion: float | None  # identified / visitors


def _cut(dialect: str, text, marks: str):  # noqa: ANN001, ANN202
    """*text* up to the first of the characters *marks* (all of it without one): plain string
    functions that SQLite and PostgreSQL both have (``instr`` / ``strpos``)."""
    position = func.strpos if dialect == "postgresql" else func.instr
    for mark in marks[1:]:
        text = func.replace(text, mark, marks[0])
    return func.substr(text, 1, position(text.concat(marks[0]), marks[0]) - 1)


def _host(dialect: str, url):  # noqa: ANN001, ANN202
    """The host of an absolute URL in SQL (lower case, without port), None for another text."""
    position = func.strpos if dialect == "postgresql" else func.instr
    after = func.substr(url, position(url, "://") + 3)
    return case((position(url, "://") > 0, func.lower(_cut(dialect, after, "/?#:"))), else_=None)


def _source_columns(dialect: str, by: str) -> tuple:  # noqa: ANN001
    if by == "referrer":
        return _host(dialect, PageView.referrer), literal(None)
    if by == "search":
        return PageView.search_engine, PageView.keyword
    if by == "landing":
        return _cut(dialect, PageView.url, "?#"), literal(None)
    if by == "campaign":
        return PageView.utm_campaign, PageView.utm_source
    return Visitor.country, Visitor.region


def sources(session: Session, filters: Filters, tz: str, by: str = "referrer",
            limit: int = DEFAULT_LIMIT) -> list[SourceRow]:
    """Visitors by the source of their first page view in the range (one statement), the most
    visitors first, at most *limit* rows: see the module's docstring."""
    dialect = session.get_bind().dialect.name
    start, end = _bounds(filters, tz)
    first_where = [PageView.started_at >= start, PageView.started_at < end]
    first = select(PageView.visitor_id.label("visitor_id"), func.min(PageView.id).label("page_view_id"))
    if filters.site_id is not None:
        first = first.join(Visitor, Visitor.id == PageView.visitor_id)
        first_where.append(Visitor.site_id == filters.site_id)
    first = first.where(*first_where).group_by(PageView.visitor_id).subquery()
    chats = (select(Conversation.visitor_id.label("visitor_id"), func.count().label("chats"))
             .where(Conversation.queued_at >= start, Conversation.queued_at < end, *_scope(filters))
             .group_by(Conversation.visitor_id).subquery())
    source, detail = _source_columns(dialect, by)
    source, detail = source.label("source"), detail.label("detail")
    visitors = func.count().label("visitors")
    stmt = (select(source, detail, visitors, func.count(chats.c.visitor_id), func.coalesce(func.sum(chats.c.chats), 0),
                   func.sum(case((Visitor.contact_id.is_not(None), 1), else_=0)))
            .select_from(first)
            .join(PageView, PageView.id == first.c.page_view_id)
            .join(Visitor, Visitor.id == first.c.visitor_id)
            .outerjoin(chats, chats.c.visitor_id == first.c.visitor_id)
            .group_by(source, detail)
            .order_by(visitors.desc(), source, detail).limit(limit))
    rows = []
    for name, extra, visitor_n, chatted, chat_n, identified in session.execute(stmt):
        rows.append(SourceRow(name or None, extra or None, int(visitor_n), int(chatted or 0), int(chat_n or 0),
                              int(identified or 0), _share(int(identified or 0), int(visitor_n))))
    return rows


# --- today, for the manager's desk --------------------------------------------------------------------------


@dataclass
class Today:
    chats: int  # started today
    missed: int  # started today, closed without anyone accepting them (left, or closed by the system)
    first_response_mean: float | None  # seconds, over today's chats answered so far
    csat: float | None  # share of today's rated chats rated 4 or 5


def today_figures(session: Session, today: date, tz: str) -> Today:
    """Today's chats (in the display zone) for the manager's desk, in one statement."""
    dialect = session.get_bind().dialect.name
    start, end = _bounds(Filters(today, today), tz)
    missed = and_(Conversation.accepted_at.is_(None), Conversation.closed_at.is_not(None))
    answered = and_(Conversation.first_response_at.is_not(None),
                    Conversation.first_response_at >= Conversation.queued_at)
    row = session.execute(select(
        func.count(), func.sum(case((missed, 1), else_=0)),
        func.avg(case((answered, _seconds(dialect, Conversation.first_response_at, Conversation.queued_at)))),
        func.count(Conversation.rating), func.sum(case((Conversation.rating >= SATISFIED, 1), else_=0)))
        .where(Conversation.queued_at >= start, Conversation.queued_at < end)).one()
    chats, missed_n, mean, rated, satisfied = row
    return Today(int(chats or 0), int(missed_n or 0), _round(mean), _share(int(satisfied or 0), int(rated or 0)))


# --- one table by name -----------------------------------------------------------------------------------


def table(session: Session, name: str, filters: Filters, tz: str, args: Mapping[str, object] | None = None) -> dict:
    """The table *name* (``TABLES``) as JSON-ready data: ``{"table", "filters", "rows"}`` (and
    ``summary`` for the queue; ``by`` for sources, read from *args*). Raises ``ValidationFailed``."""
    name = read_table(name)
    out: dict[str, Any] = {"table": name, "filters": filters.query()}
    if name == "agents":
        out["rows"] = [asdict(r) for r in agents(session, filters, tz)]
    elif name == "hours":
        out["rows"] = hours(session, filters, tz)
    elif name == "visits":
        out["rows"] = visits(session, filters, tz)
    elif name == "queue":
        result = asdict(queue(session, filters, tz))
        out["rows"] = result.pop("buckets")
        out["summary"] = result
    else:
        by, limit = read_source(args or {})
        out["by"] = by
        out["rows"] = [asdict(r) for r in sources(session, filters, tz, by, limit)]
    return out
