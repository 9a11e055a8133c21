"""Chat routing (分配): which group and agent a new conversation goes to, the waiting queue (排队)
with its estimated wait, greetings and the no-answer auto reply.

Rules:
- Group (区域分流): the designated agent's group on the site when the visitor asked for an agent
  (指定客服, ``Conversation.requested_agent_id``); else the first group of the site (lowest
  ``priority``, then id) with a URL pattern (``fnmatch`` glob, one per line, case-insensitive)
  matching ``Conversation.entry_url``; else the site's default group; else any group of the site;
  else no group (then every agent serving the site may take it). An agent with no group serves
  every site.
- Offer: the designated agent when they are available, else an available agent of the group:
  status ``online`` (away, offline and invisible agents are never offered chats — invisible ones
  may still take chats from the queue by hand), active, present (``last_seen_at`` within
  ``PRESENCE_SECONDS``) and with fewer open chats (offered + active) than ``max_chats``. Least
  busy: fewest open chats, then the longest since ``last_assigned_at``; round robin: the longest
  since ``last_assigned_at``. Agents who declined this conversation are never offered it again;
  agents who let it time out only when nobody else is available.
- An offer is a conditional update (``UPDATE ... WHERE status = 'queued'``), so two processes
  routing at once offer a conversation once; the agent's row is locked while their open chats
  are counted, so the cap holds too. It lasts ``group.accept_timeout_seconds`` (30 s without a
  group); then the sweep withdraws it (outcome ``timed_out``), sets the agent ``away`` (they are
  not at their desk) and offers the conversation to the next agent.
- Queue: queued conversations wait first in, first out (``queued_at``, then id) per group; each
  visitor hears their position (1 = next) and an estimate of the wait, and the site's agents hear
  every position, whenever the queue changes.
- Wait estimate: ``queueing.estimate_wait`` (M/M/n with every server busy) with the mean handle time (``closed_at −
  accepted_at``) of the site's last ``HANDLE_SAMPLE`` chats closed in the past week
  (``DEFAULT_HANDLE_SECONDS`` without any) and as servers the chat slots (``max_chats``) of the
  group's present online agents: a chat slot is one server of the M/M/n queue. Unknown (None)
  when nobody is online.
- Presence and status are in ``app.services.presence``; what happens with time (timeouts, the
  auto reply) in ``app.services.chat_sweep``.
- Greeting: the site's ``welcome_text`` when a conversation opens, the agent's ``greeting`` when
  they accept; the no-answer auto reply (``auto_reply_text`` or a default) once, when no agent has
  answered ``auto_reply_seconds`` (> 0) after the conversation started. All are system messages,
  stored once (idempotent on a reserved client message id).

Functions return the events to send as ``Emit`` values (the socket layer delivers them); each
commits its own transaction. Errors: ``ValidationFailed`` (bad status), ``AccessDenied``,
``NotFound``, ``Conflict``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import (
    AgentGroup,
    AgentProfile,
    AgentStatus,
    ChatMessage,
    ChatOffer,
    ChatSite,
    Conversation,
    ConversationStatus,
    OfferOutcome,
    RoutingMode,
    SenderType,
    agent_group_member,
)
from app.services import chat, queueing, tracking
from app.services.errors import AccessDenied
from app.services.timefmt import utc_iso
from app.sockets.rooms import agent_room, conversation_room, site_agents_room, visitor_room

PRESENCE_SECONDS = 90
DISCONNECT_GRACE_SECONDS = 45  # longer than the console's 30 s ping
SEEN_REFRESH_SECONDS = 15
DEFAULT_ACCEPT_SECONDS = 30
DEFAULT_HANDLE_SECONDS = 300.0
HANDLE_SAMPLE = 50
HANDLE_WINDOW = timedelta(days=7)
DRAIN_LIMIT = 200  # queued conversations tried per site and pass


@dataclass(frozen=True)
class Emit:
    """One event for the socket layer to send: ``socketio.emit(event, payload, to=to, namespace=...)``."""

    event: str
    payload: dict
    to: str
    namespace: str


# --- who serves what ------------------------------------------------------------------------


def serves_site(site_id: int):  # noqa: ANN202
    """SQL condition on ``AgentProfile``: the agent serves the site (one of its groups, or no group)."""
    member = agent_group_member.c
    in_site_group = exists().where(member.agent_id == AgentProfile.id, member.group_id == AgentGroup.id,
                                   AgentGroup.site_id == site_id)
    no_group = ~exists().where(member.agent_id == AgentProfile.id)
    return or_(in_site_group, no_group)


def _in_group(group_id: int):  # noqa: ANN202
    member = agent_group_member.c
    return exists().where(member.agent_id == AgentProfile.id, member.group_id == group_id)


def agent_site_ids(session: Session, agent: AgentProfile) -> set[int]:
    """The sites an agent serves: those of their groups, or every site without a group."""
    sites = {group.site_id for group in agent.groups}
    return sites or set(session.scalars(select(ChatSite.id)))


def present(now: datetime):  # noqa: ANN202
    """SQL condition on ``AgentProfile``: active, online and heard from within ``PRESENCE_SECONDS``."""
    return and_(AgentProfile.active.is_(True), AgentProfile.status == AgentStatus.online,
                AgentProfile.last_seen_at >= now - timedelta(seconds=PRESENCE_SECONDS))


def available_agents(session: Session, *, site_id: int, group_id: int | None,
                     now: datetime) -> list[tuple[AgentProfile, int]]:
    """Agents who may be offered a chat of the group (or of the site without a group) now, with
    their open chats: online, active, present and under their ``max_chats``."""
    load = select(Conversation.agent_id.label("agent_id"), func.count().label("n")).where(
        Conversation.status.in_(chat.BUSY)).group_by(Conversation.agent_id).subquery()
    open_chats = func.coalesce(load.c.n, 0)
    query = select(AgentProfile, open_chats).outerjoin(load, load.c.agent_id == AgentProfile.id).where(
        present(now), open_chats < AgentProfile.max_chats)
    query = query.where(_in_group(group_id) if group_id is not None else serves_site(site_id))
    return [(agent, int(n)) for agent, n in session.execute(query).all()]


def choose_group(session: Session, conversation: Conversation) -> AgentGroup | None:
    """The group a conversation belongs to (see the module rules): designated agent, URL pattern,
    default group, any group of the site."""
    groups = list(session.scalars(select(AgentGroup).where(AgentGroup.site_id == conversation.site_id)
                                  .order_by(AgentGroup.priority, AgentGroup.id)))
    if conversation.requested_agent is not None:
        mine = [g for g in groups if conversation.requested_agent in g.agents]
        if mine:
            return mine[0]
    url = (conversation.entry_url or "").strip().lower()
    if url:
        for group in groups:
            patterns = [p.strip().lower() for p in (group.url_patterns or "").splitlines() if p.strip()]
            if any(fnmatch.fnmatchcase(url, pattern) for pattern in patterns):
                return group
    default = next((g for g in groups if g.is_default), None)
    return default or (groups[0] if groups else None)


def _pick(candidates: list[tuple[AgentProfile, int]], mode: RoutingMode) -> AgentProfile:
    never = datetime.min
    if mode == RoutingMode.round_robin:
        return min(candidates, key=lambda c: (c[0].last_assigned_at or never, c[0].id))[0]
    return min(candidates, key=lambda c: (c[1], c[0].last_assigned_at or never, c[0].id))[0]


# --- offering -------------------------------------------------------------------------------


def _offer_history(session: Session, conversation_id: int) -> tuple[set[int], set[int]]:
    rows = session.execute(select(ChatOffer.agent_id, ChatOffer.outcome).where(
        ChatOffer.conversation_id == conversation_id,
        ChatOffer.outcome.in_((OfferOutcome.declined, OfferOutcome.timed_out)))).all()
    declined = {a for a, o in rows if o == OfferOutcome.declined}
    timed_out = {a for a, o in rows if o == OfferOutcome.timed_out}
    return declined, timed_out


def offer_payload(conversation: Conversation, expires_at: datetime | None, include_ip: bool = False) -> dict:
    return {"conversation_id": conversation.id,
            "visitor": tracking.visitor_payload(conversation.visitor, include_ip=include_ip),
            "expires_at": utc_iso(expires_at)}


def plan_offer(session: Session, conversation: Conversation, now: datetime) -> AgentProfile | None:
    """The agent a queued conversation should be offered to now, or None (it waits)."""
    declined, timed_out = _offer_history(session, conversation.id)
    group = conversation.group
    requested = conversation.requested_agent
    if requested is not None and requested.id not in declined | timed_out:
        here = available_agents(session, site_id=conversation.site_id, group_id=None, now=now)
        mine = [(a, n) for a, n in here if a.id == requested.id]
        if mine:
            return requested
    candidates = [(a, n) for a, n in available_agents(
        session, site_id=conversation.site_id, group_id=group.id if group else None, now=now)
        if a.id not in declined]
    fresh = [(a, n) for a, n in candidates if a.id not in timed_out]
    if not (fresh or candidates):
        return None
    return _pick(fresh or candidates, group.routing if group else RoutingMode.least_busy)


def commit_offer(session: Session, conversation_id: int, agent: AgentProfile, now: datetime,
                 include_ip: bool = False) -> list[Emit]:
    """Offer a queued conversation to *agent*: only if it is still queued and the agent is still
    under their cap (conditional update, agent row locked). Returns the ``chat_offer`` to send, or
    nothing when another process was faster."""
    session.execute(select(AgentProfile.id).where(AgentProfile.id == agent.id).with_for_update())
    if chat.active_chats(session, agent.id) >= agent.max_chats:
        session.rollback()
        return []
    conversation = session.get(Conversation, conversation_id)
    timeout = conversation.group.accept_timeout_seconds if conversation.group else DEFAULT_ACCEPT_SECONDS
    expires = now + timedelta(seconds=max(timeout, 1))
    taken = session.execute(update(Conversation).where(
        Conversation.id == conversation_id, Conversation.status == ConversationStatus.queued).values(
        status=ConversationStatus.offered, agent_id=agent.id, offered_at=now, offer_expires_at=expires)
        .execution_options(synchronize_session=False)).rowcount == 1
    if not taken:
        session.rollback()
        return []
    session.add(ChatOffer(conversation_id=conversation_id, agent_id=agent.id, offered_at=now, expires_at=expires))
    session.execute(update(AgentProfile).where(AgentProfile.id == agent.id).values(last_assigned_at=now)
                    .execution_options(synchronize_session=False))
    session.commit()
    session.refresh(conversation)
    return [Emit("chat_offer", offer_payload(conversation, expires, include_ip), agent_room(agent.id), "/agent")]


def route(session: Session, conversation_id: int, now: datetime | None = None,
          include_ip: bool = False) -> list[Emit]:
    """Give a queued conversation its group (once) and offer it to the best available agent.

    Does nothing to a conversation that is not queued, or when nobody is available (it waits in
    the queue). Returns the ``chat_offer`` to send (queue events are separate: ``queue_emits``)."""
    now = now or utcnow()
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        return []
    session.refresh(conversation)
    if conversation.status != ConversationStatus.queued:
        return []
    if conversation.group_id is None:
        group = choose_group(session, conversation)
        if group is not None:
            session.execute(update(Conversation).where(
                Conversation.id == conversation.id, Conversation.group_id.is_(None)).values(group_id=group.id)
                .execution_options(synchronize_session=False))
            session.commit()
            session.refresh(conversation)
    agent = plan_offer(session, conversation, now)
    if agent is None:
        session.commit()  # end the read transaction
        return []
    return commit_offer(session, conversation.id, agent, now, include_ip)


def drain(session: Session, site_id: int, now: datetime | None = None, include_ip: bool = False) -> list[Emit]:
    """Offer the site's queued conversations, first in first out, while agents are available."""
    now = now or utcnow()
    waiting = session.execute(select(Conversation.id, Conversation.group_id, Conversation.requested_agent_id).where(
        Conversation.site_id == site_id, Conversation.status == ConversationStatus.queued)
        .order_by(Conversation.queued_at, Conversation.id).limit(DRAIN_LIMIT)).all()
    emits: list[Emit] = []
    # Once nobody of a group was free, its later chats wait too (unless they asked for an agent):
    # a long queue costs one look per group and pass, not one per waiting chat. A chat without a
    # group gets one while it is routed, unless its site has none (then the site is its "group").
    grouped_site = session.scalar(select(exists().where(AgentGroup.site_id == site_id)))
    full: set[int | None] = set()
    for conversation_id, group_id, requested in waiting:
        known = group_id is not None or not grouped_site
        if known and requested is None and group_id in full:
            continue
        offered = route(session, conversation_id, now, include_ip)
        if not offered and known and requested is None:
            full.add(group_id)
        emits += offered
    return emits


# --- the queue ------------------------------------------------------------------------------


def mean_handle_seconds(session: Session, site_id: int, now: datetime) -> float:
    """Mean ``closed_at − accepted_at`` in seconds of the site's recent chats (see the rules)."""
    rows = session.execute(select(Conversation.accepted_at, Conversation.closed_at).where(
        Conversation.site_id == site_id, Conversation.accepted_at.is_not(None),
        Conversation.closed_at.is_not(None), Conversation.closed_at >= now - HANDLE_WINDOW)
        .order_by(Conversation.closed_at.desc()).limit(HANDLE_SAMPLE)).all()
    durations = [(closed - accepted).total_seconds() for accepted, closed in rows if closed > accepted]
    return sum(durations) / len(durations) if durations else DEFAULT_HANDLE_SECONDS


def chat_slots(session: Session, site_id: int, group_id: int | None, now: datetime) -> int:
    """Servers of the M/M/n queue: the ``max_chats`` of the group's present online agents."""
    query = select(func.coalesce(func.sum(AgentProfile.max_chats), 0)).where(present(now))
    query = query.where(_in_group(group_id) if group_id is not None else serves_site(site_id))
    return int(session.scalar(query) or 0)


def queue_positions(session: Session, site_id: int) -> list[tuple[Conversation, int]]:
    """The site's queued conversations with their position (1 = next) in their group's FIFO queue."""
    waiting = session.scalars(select(Conversation).where(
        Conversation.site_id == site_id, Conversation.status == ConversationStatus.queued)
        .order_by(Conversation.queued_at, Conversation.id))
    counters: dict[int | None, int] = {}
    result = []
    for conversation in waiting:
        counters[conversation.group_id] = counters.get(conversation.group_id, 0) + 1
        result.append((conversation, counters[conversation.group_id]))
    return result


def queue_emits(session: Session, site_id: int, now: datetime | None = None,
                changed: tuple[int, ...] | list[int] = ()) -> list[Emit]:
    """``queue {conversation_id, position, eta_seconds}`` to every queued visitor of the site (and
    position 0 to the visitors of *changed* conversations now offered or assigned), and
    ``queue_update {conversation_id, status, position}`` to the site's agents."""
    now = now or utcnow()
    handle = mean_handle_seconds(session, site_id, now)
    slots: dict[int | None, int] = {}
    emits: list[Emit] = []
    agents = site_agents_room(site_id)
    queued_ids = set()
    for conversation, position in queue_positions(session, site_id):
        queued_ids.add(conversation.id)
        if conversation.group_id not in slots:
            slots[conversation.group_id] = chat_slots(session, site_id, conversation.group_id, now)
        eta = queueing.estimate_wait(position, handle, slots[conversation.group_id])
        emits.append(Emit("queue", {"conversation_id": conversation.id, "position": position, "eta_seconds": eta},
                          visitor_room(conversation.visitor_id), "/visitor"))
        emits.append(Emit("queue_update", {"conversation_id": conversation.id, "status": "queued",
                                           "position": position}, agents, "/agent"))
    for conversation_id in changed:
        if conversation_id in queued_ids:
            continue
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.site_id != site_id:
            continue
        if conversation.status in chat.BUSY:
            emits.append(Emit("queue", {"conversation_id": conversation.id, "position": 0, "eta_seconds": 0},
                              visitor_room(conversation.visitor_id), "/visitor"))
        emits.append(Emit("queue_update", {"conversation_id": conversation.id,
                                           "status": conversation.status.value, "position": None}, agents, "/agent"))
    session.commit()
    return emits


def queue_list(session: Session, agent: AgentProfile, now: datetime | None = None) -> list[dict]:
    """The queued and offered conversations of the agent's sites, first in first out (the console's
    queue list)."""
    now = now or utcnow()
    sites = agent_site_ids(session, agent)
    rows = session.scalars(select(Conversation).where(
        Conversation.site_id.in_(sites), Conversation.status.in_(
            (ConversationStatus.queued, ConversationStatus.offered)))
        .order_by(Conversation.queued_at, Conversation.id).limit(500))
    positions = {c.id: p for site in sites for c, p in queue_positions(session, site)}
    return [{"conversation_id": c.id, "site_id": c.site_id, "group_id": c.group_id, "status": c.status.value,
             "position": positions.get(c.id, 0), "queued_at": utc_iso(c.queued_at), "entry_url": c.entry_url,
             "waited_seconds": max(0, int((now - c.queued_at).total_seconds())),
             "visitor": {"id": c.visitor_id, "uid": c.visitor.uid}} for c in rows]


# --- events of a conversation's life ----------------------------------------------------------


def message_emits(conversation: Conversation, message: ChatMessage) -> list[Emit]:
    payload = chat.message_payload(message)
    return [Emit("message", payload, visitor_room(conversation.visitor_id), "/visitor"),
            Emit("message", payload, conversation_room(conversation.id), "/agent")]


def queue_position(session: Session, conversation: Conversation) -> int:
    """The position (1 = next) of a queued conversation in its group's first-in-first-out queue."""
    same_group = Conversation.group_id == conversation.group_id if conversation.group_id is not None \
        else Conversation.group_id.is_(None)
    ahead = session.scalar(select(func.count()).select_from(Conversation).where(
        Conversation.site_id == conversation.site_id, Conversation.status == ConversationStatus.queued, same_group,
        or_(Conversation.queued_at < conversation.queued_at,
            and_(Conversation.queued_at == conversation.queued_at, Conversation.id < conversation.id))))
    return int(ahead or 0) + 1


def joined_queue_emits(session: Session, conversation: Conversation, now: datetime | None = None) -> list[Emit]:
    """A conversation that was just queued, or offered straight away: only its own visitor and the
    site's agents hear of it. A chat joins the queue at its end, so nobody else's position or wait
    changes and the other waiting visitors are not told (``queue_emits`` is for changes that move
    the queue)."""
    now = now or utcnow()
    agents = site_agents_room(conversation.site_id)
    if conversation.status != ConversationStatus.queued:
        return [Emit("queue", {"conversation_id": conversation.id, "position": 0, "eta_seconds": 0},
                     visitor_room(conversation.visitor_id), "/visitor"),
                Emit("queue_update", {"conversation_id": conversation.id, "status": conversation.status.value,
                                      "position": None}, agents, "/agent")]
    position = queue_position(session, conversation)
    eta = queueing.estimate_wait(position, mean_handle_seconds(session, conversation.site_id, now),
                                 chat_slots(session, conversation.site_id, conversation.group_id, now))
    session.commit()  # ends the read transaction
    return [Emit("queue", {"conversation_id": conversation.id, "position": position, "eta_seconds": eta},
                 visitor_room(conversation.visitor_id), "/visitor"),
            Emit("queue_update", {"conversation_id": conversation.id, "status": "queued", "position": position},
                 agents, "/agent")]


def after_visitor_message(session: Session, message: ChatMessage | int, now: datetime | None = None,
                          include_ip: bool = False) -> list[Emit]:
    """After a visitor's new message in a new or queued conversation (the socket layer runs this
    after the ack; a message in an offered or active conversation needs none of it): the welcome
    when the message opened the conversation; a queued conversation is offered to the best
    available agent; ``chat_request`` to the site's agents while the chat is new or still queued;
    and the chat's own queue events (``joined_queue_emits``)."""
    now = now or utcnow()
    message = session.get(ChatMessage, message) if isinstance(message, int) else message
    if message is None:
        return []
    conversation = session.get(Conversation, message.conversation_id)
    emits: list[Emit] = []
    first = session.scalar(select(func.min(ChatMessage.id)).where(
        ChatMessage.conversation_id == conversation.id, ChatMessage.sender_type == SenderType.visitor))
    opened = first == message.id
    if opened:  # the welcome was stored with the first message, before it
        welcome = chat.welcome_message(session, conversation.id)
        if welcome is not None:
            emits += message_emits(conversation, welcome)
    offered = route(session, conversation.id, now, include_ip)
    emits += offered
    session.refresh(conversation)
    if opened or conversation.status == ConversationStatus.queued:
        emits.append(Emit("chat_request", {"conversation_id": conversation.id},
                          site_agents_room(conversation.site_id), "/agent"))
    if opened:
        emits += joined_queue_emits(session, conversation, now)
    elif offered:  # it left the queue from its place: the ones behind it move up
        emits += queue_emits(session, conversation.site_id, now, changed=[conversation.id])
    session.commit()
    return emits


def after_accept(session: Session, conversation: Conversation, now: datetime | None = None,
                 from_queue: bool = True) -> list[Emit]:
    """After an agent accepted: the line "<agent> is here to help you" (stored, so the widget shows
    it again after a reload), their greeting (each once) and the queue. A chat taken from the queue
    moves the ones behind it (every queued visitor is told); an accepted offer was out of the queue
    already, so only its own visitor and the site's agents hear of it (*from_queue* False)."""
    now = now or utcnow()
    emits: list[Emit] = []
    agent = conversation.agent
    if agent is not None:
        emits += joined_emits(session, conversation, agent)
    if agent is not None and agent.greeting:
        greeting = chat.store_system_message(session, conversation, f"greeting:{agent.id}", agent.greeting)
        if greeting is not None:
            emits += message_emits(conversation, greeting)
    if not from_queue:
        return emits + joined_queue_emits(session, conversation, now)
    return emits + queue_emits(session, conversation.site_id, now, changed=[conversation.id])


def joined_emits(session: Session, conversation: Conversation, agent: AgentProfile) -> list[Emit]:
    """Store (once per agent and conversation) the system line telling the visitor that *agent* now
    serves them, and return its ``message`` emits (none when it was stored before). Commits."""
    line = chat.store_system_message(session, conversation, f"joined:{agent.id}",
                                     str(_l("%(name)s is here to help you.", name=agent.display_name)))
    return message_emits(conversation, line) if line is not None else []


def after_close(session: Session, conversation: Conversation, now: datetime | None = None,
                include_ip: bool = False) -> list[Emit]:
    """After a conversation closed: an agent it was still offered to hears the offer is withdrawn;
    its agent has a free slot, so the queue moves on."""
    now = now or utcnow()
    emits: list[Emit] = []
    if conversation.agent_id is not None and conversation.accepted_at is None:
        emits.append(Emit("offer_withdrawn", {"conversation_id": conversation.id, "reason": "closed"},
                          agent_room(conversation.agent_id), "/agent"))
    emits += drain(session, conversation.site_id, now, include_ip)
    changed = [conversation.id] + [e.payload["conversation_id"] for e in emits if e.event == "chat_offer"]
    return emits + queue_emits(session, conversation.site_id, now, changed=changed)


def decline(session: Session, agent: AgentProfile | None, conversation_id: object, now: datetime | None = None,
            include_ip: bool = False) -> list[Emit]:
    """The agent declines a conversation offered to them: it goes to the next agent (never back to
    them). Raises ``AccessDenied`` (no agent profile, or not offered to them), ``NotFound``."""
    now = now or utcnow()
    if agent is None or not agent.active:
        raise AccessDenied({"_": [str(_l("You have no active agent profile."))]})
    conversation = chat.get_conversation(session, conversation_id)
    released = session.execute(update(Conversation).where(
        Conversation.id == conversation.id, Conversation.status == ConversationStatus.offered,
        Conversation.agent_id == agent.id).values(
        status=ConversationStatus.queued, agent_id=None, offer_expires_at=None)
        .execution_options(synchronize_session=False)).rowcount == 1
    if not released:
        session.rollback()
        raise AccessDenied({"conversation_id": [str(_l("This conversation is not offered to you."))]})
    chat.settle_offers(session, conversation.id, OfferOutcome.declined, now, agent.id)
    session.commit()
    emits = route(session, conversation.id, now, include_ip)
    return emits + queue_emits(session, conversation.site_id, now, changed=[conversation.id])
