"""The agent console's read side (客服工作台): what an agent sees when the console loads, a visitor's
details with their linked client card, and a conversation's messages.

Rules:
- An agent serves the sites of their groups (every site when they belong to no group); a
  supervisor (``can_supervise``) sees every site. A user with neither an active agent profile nor
  the supervise permission serves no site.
- A visitor is readable only on a site the user serves; otherwise ``NotFound`` (the console does
  not reveal that the visitor exists).
- A conversation is readable by its owner agent, its participants (invited agents and watchers)
  and supervisors; otherwise ``NotFound``. They see every message, notes and whispers included.
- The client card (Visitor.contact → ClientContact → Client) never carries encrypted or
  sensitive fields (ID numbers, bank accounts).
- Counts, loads and sums are aggregated in SQL. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import String, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.models.base import utcnow
from app.models.chat import (
    AgentGroup,
    AgentProfile,
    AgentStatus,
    ChatMessage,
    ChatOffer,
    ChatSite,
    Conversation,
    ConversationParticipant,
    ConversationStatus,
    OfferOutcome,
    SenderType,
    Visitor,
    agent_group_member,
)
from app.models.contracts import Contract
from app.models.crm import Client, ClientContact, ServiceRecord
from app.models.ledger import LedgerBook, Period, PeriodStatus
from app.services import chat, chat_topics, routing, tracking
from app.services.contracts import LIVE, client_balance
from app.services.errors import NotFound, ValidationFailed
from app.services.timefmt import utc_iso

QUEUED = (ConversationStatus.queued, ConversationStatus.offered)
MAX_QUERY = 100
MAX_VISITORS = 500
AGENT_TEXT = (SenderType.agent, SenderType.note)


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the user, their active agent profile (if any) and whether they supervise."""

    user_id: int
    agent: AgentProfile | None
    supervisor: bool


def viewer(session: Session, user_id: int, supervisor: bool) -> Viewer:
    return Viewer(user_id, chat.agent_for_user(session, user_id), supervisor)


def _seconds_since(value: datetime | None, now: datetime) -> int:
    return max(0, int((now - value).total_seconds())) if value is not None else 0


def served_site_ids(session: Session, who: Viewer) -> list[int]:
    """The sites whose visitors *who* may see: a supervisor every site, an agent the sites of their
    groups (every site without a group), anyone else none."""
    if who.supervisor:
        return list(session.scalars(select(ChatSite.id).order_by(ChatSite.id)))
    if who.agent is None:
        return []
    return sorted(routing.agent_site_ids(session, who.agent))  # the rooms the agent's socket joins


def _me(who: Viewer, name: str) -> dict:
    agent = who.agent
    return {"agent_id": agent.id if agent else None, "user_id": who.user_id,
            "name": agent.display_name if agent else name, "status": agent.status.value if agent else None,
            "max_chats": agent.max_chats if agent else 0, "supervisor": who.supervisor,
            "send_key": agent.send_key.value if agent and agent.send_key else "enter"}


def _visitor_filter(q: str):  # noqa: ANN202 - a SQL expression
    like = f"%{q.lower()}%"
    return or_(*(func.lower(column).like(like) for column in (
        Visitor.current_url, Visitor.current_title, Visitor.city, Visitor.region, Visitor.country, Visitor.uid,
        Visitor.name, Visitor.external_user_id, cast(Visitor.id, String))))


def online_visitors(session: Session, site_ids: list[int], q: str = "", include_ip: bool = False) -> list[dict]:
    """Online visitors of *site_ids*, latest activity first, filtered by *q* (URL, title, location,
    visitor id or name, case-insensitive): the visitor, ``name``, ``seconds_on_site`` over the
    current visit, ``source`` (the visit's first page: referrer, engine, keyword, UTM) and
    ``conversation_id`` (their open chat, if any)."""
    q = (q or "").strip()[:MAX_QUERY]
    rows = tracking.online_visitors(session, site_ids, include_ip, limit=MAX_VISITORS,
                                    where=_visitor_filter(q) if q else None)
    if not rows:
        return []
    open_chats = dict(session.execute(
        select(Conversation.visitor_id, func.max(Conversation.id))
        .where(Conversation.visitor_id.in_([row["id"] for row in rows]), Conversation.status.in_(chat.OPEN))
        .group_by(Conversation.visitor_id)).all())
    for row in rows:
        row["conversation_id"] = open_chats.get(row["id"])
    return rows


def _visitor_summary(visitor: Visitor) -> dict:
    return {"id": visitor.id, "uid": visitor.uid, "site_id": visitor.site_id, "name": visitor.name,
            "current_url": visitor.current_url,
            "current_title": visitor.current_title, "city": visitor.city, "region": visitor.region,
            "country": visitor.country, "online": visitor.online}


def queue(session: Session, site_ids: list[int], now: datetime | None = None) -> list[dict]:
    """Queued and offered conversations of *site_ids*, first come first served, with their
    ``position`` in their group's queue (1 = next; none while offered), seconds waited, entry page,
    group and the visitor."""
    if not site_ids:
        return []
    now = now or utcnow()
    rows = session.execute(
        select(Conversation, Visitor, AgentGroup.name, AgentProfile.display_name)
        .join(Visitor, Conversation.visitor_id == Visitor.id)
        .outerjoin(AgentGroup, Conversation.group_id == AgentGroup.id)
        .outerjoin(AgentProfile, Conversation.agent_id == AgentProfile.id)
        .where(Conversation.site_id.in_(site_ids), Conversation.status.in_(QUEUED))
        .order_by(Conversation.queued_at, Conversation.id)).all()
    # Positions as the visitors are told them: among the queued ones of the same group (an offered
    # chat has none: it waits for its agent to accept).
    counters: dict[int | None, int] = {}
    result = []
    for c, v, group, offered_to in rows:
        position = None
        if c.status == ConversationStatus.queued:
            position = counters[c.group_id] = counters.get(c.group_id, 0) + 1
        result.append({
            "conversation_id": c.id, "position": position, "status": c.status.value, "site_id": c.site_id,
            "queued_at": utc_iso(c.queued_at), "waited_seconds": _seconds_since(c.queued_at, now),
            "entry_url": c.entry_url or v.current_url, "group": group, "offered_to": offered_to,
            "offered_to_agent_id": c.agent_id if c.status == ConversationStatus.offered else None,
            "offer_expires_at": utc_iso(c.offer_expires_at), "visitor": _visitor_summary(v)})
    return result


def _waiting_counts(session: Session, conversation_ids: list[int]) -> dict[int, int]:
    """Per conversation, the visitor's messages after the last agent reply that its agents have not
    read either (past ``agent_read_up_to``, the read receipt): the console's unread count."""
    if not conversation_ids:
        return {}
    last_reply = (select(ChatMessage.conversation_id, func.max(ChatMessage.id).label("last_id"))
                  .where(ChatMessage.conversation_id.in_(conversation_ids), ChatMessage.sender_type.in_(AGENT_TEXT))
                  .group_by(ChatMessage.conversation_id).subquery())
    return dict(session.execute(
        select(ChatMessage.conversation_id, func.count(ChatMessage.id))
        .join(Conversation, Conversation.id == ChatMessage.conversation_id)
        .outerjoin(last_reply, last_reply.c.conversation_id == ChatMessage.conversation_id)
        .where(ChatMessage.conversation_id.in_(conversation_ids), ChatMessage.sender_type == SenderType.visitor,
               ChatMessage.id > func.coalesce(last_reply.c.last_id, 0),
               ChatMessage.id > func.coalesce(Conversation.agent_read_up_to, 0))
        .group_by(ChatMessage.conversation_id)).all())


def _conversation_rows(session: Session, conversations: list[tuple[Conversation, Visitor]], role: dict[int, str],
                       now: datetime) -> list[dict]:
    ids = [c.id for c, _ in conversations]
    waiting = _waiting_counts(session, ids)
    last = dict(session.execute(select(ChatMessage.conversation_id, func.max(ChatMessage.created_at))
                                .where(ChatMessage.conversation_id.in_(ids))
                                .group_by(ChatMessage.conversation_id)).all()) if ids else {}
    return [{"conversation_id": c.id, "status": c.status.value, "role": role.get(c.id, "owner"),
             "site_id": c.site_id, "agent_id": c.agent_id, "queued_at": utc_iso(c.queued_at),
             "accepted_at": utc_iso(c.accepted_at), "last_message_at": utc_iso(last.get(c.id)),
             "seconds": _seconds_since(c.accepted_at or c.queued_at, now), "entry_url": c.entry_url,
             "unread": int(waiting.get(c.id, 0)), "visitor": _visitor_summary(v)}
            for c, v in conversations]


def my_chats(session: Session, who: Viewer, now: datetime | None = None) -> list[dict]:
    """The user's open conversations: those they own (active) and those they were invited into
    (or watch), oldest first, each with the visitor and the count of unanswered visitor messages."""
    now = now or utcnow()
    participant = (select(ConversationParticipant.conversation_id, ConversationParticipant.role)
                   .where(ConversationParticipant.user_id == who.user_id, ConversationParticipant.left_at.is_(None)))
    role = {cid: r.value for cid, r in session.execute(participant).all()}
    owned = Conversation.agent_id == who.agent.id if who.agent is not None else False
    stmt = (select(Conversation, Visitor).join(Visitor, Conversation.visitor_id == Visitor.id)
            .where(Conversation.status == ConversationStatus.active,
                   or_(owned, Conversation.id.in_(list(role) or [0])))
            .order_by(Conversation.accepted_at, Conversation.id))
    conversations = [(c, v) for c, v in session.execute(stmt).all()]
    own_id = who.agent.id if who.agent is not None else None
    roles = {c.id: "owner" if c.agent_id == own_id else role.get(c.id, "invited") for c, _ in conversations}
    return _conversation_rows(session, conversations, roles, now)


def my_offers(session: Session, who: Viewer) -> list[dict]:
    """Conversations offered to the user's agent profile and not yet answered, with the offer's deadline."""
    if who.agent is None:
        return []
    rows = session.execute(
        select(Conversation, Visitor, func.max(ChatOffer.expires_at))
        .join(Visitor, Conversation.visitor_id == Visitor.id)
        .outerjoin(ChatOffer, and_(ChatOffer.conversation_id == Conversation.id, ChatOffer.agent_id == who.agent.id,
                                   ChatOffer.outcome == OfferOutcome.pending))
        .where(Conversation.agent_id == who.agent.id, Conversation.status == ConversationStatus.offered)
        .group_by(Conversation.id, Visitor.id).order_by(Conversation.queued_at, Conversation.id)).all()
    return [{"conversation_id": c.id, "expires_at": utc_iso(expires or c.offer_expires_at),
             "visitor": tracking.visitor_payload(v)} for c, v, expires in rows]


def agents(session: Session, site_ids: list[int], who: Viewer) -> list[dict]:
    """Agents of *site_ids* (members of their groups, and agents without a group, who serve every
    site) with their status and load (conversations offered or active) — for transfer and invite.
    An invisible agent shows as offline to everyone but themselves."""
    if not site_ids:
        return []
    in_sites = select(agent_group_member.c.agent_id).join(
        AgentGroup, AgentGroup.id == agent_group_member.c.group_id).where(AgentGroup.site_id.in_(site_ids))
    grouped = select(agent_group_member.c.agent_id)
    load = (select(Conversation.agent_id, func.count(Conversation.id).label("load"))
            .where(Conversation.status.in_((ConversationStatus.offered, ConversationStatus.active)))
            .group_by(Conversation.agent_id).subquery())
    rows = session.execute(
        select(AgentProfile, func.coalesce(load.c.load, 0))
        .options(selectinload(AgentProfile.groups))  # shown per agent: one statement for all, not one each
        .outerjoin(load, load.c.agent_id == AgentProfile.id)
        .where(AgentProfile.active.is_(True), or_(AgentProfile.id.in_(in_sites), AgentProfile.id.not_in(grouped)))
        .order_by(case((AgentProfile.status == AgentStatus.online, 0), (AgentProfile.status == AgentStatus.away, 1),
                       else_=2), AgentProfile.display_name, AgentProfile.id)).all()
    own_id = who.agent.id if who.agent is not None else None
    result = []
    for agent, count in rows:
        status = agent.status
        if status == AgentStatus.invisible and agent.id != own_id:
            status = AgentStatus.offline
        result.append({"id": agent.id, "user_id": agent.user_id, "name": agent.display_name, "status": status.value,
                       "load": int(count), "max_chats": agent.max_chats, "me": agent.id == own_id,
                       "group_ids": sorted(g.id for g in agent.groups)})
    return result


def groups(session: Session, site_ids: list[int]) -> list[dict]:
    """The agent groups of *site_ids*, with their site's name."""
    if not site_ids:
        return []
    rows = session.execute(select(AgentGroup, ChatSite.name).join(ChatSite, AgentGroup.site_id == ChatSite.id)
                           .where(AgentGroup.site_id.in_(site_ids))
                           .order_by(ChatSite.name, AgentGroup.priority, AgentGroup.name)).all()
    return [{"id": g.id, "name": g.name, "site_id": g.site_id, "site_name": site} for g, site in rows]


def live_conversations(session: Session, now: datetime | None = None) -> list[dict]:
    """Every open conversation (queued, offered, active) for a supervisor, oldest first, with its
    agent's name and message count."""
    now = now or utcnow()
    counts = (select(ChatMessage.conversation_id, func.count(ChatMessage.id).label("messages"),
                     func.max(ChatMessage.created_at).label("last_at"))
              .group_by(ChatMessage.conversation_id).subquery())
    rows = session.execute(
        select(Conversation, Visitor, AgentProfile.display_name, ChatSite.name, counts.c.messages, counts.c.last_at)
        .join(Visitor, Conversation.visitor_id == Visitor.id)
        .join(ChatSite, Conversation.site_id == ChatSite.id)
        .outerjoin(AgentProfile, Conversation.agent_id == AgentProfile.id)
        .outerjoin(counts, counts.c.conversation_id == Conversation.id)
        .where(Conversation.status.in_(chat.OPEN)).order_by(Conversation.queued_at, Conversation.id)).all()
    return [{"conversation_id": c.id, "status": c.status.value, "site_name": site, "agent_name": agent_name,
             "agent_id": c.agent_id, "messages": int(messages or 0), "last_message_at": utc_iso(last_at),
             "seconds": _seconds_since(c.queued_at, now), "visitor": _visitor_summary(v)}
            for c, v, agent_name, site, messages, last_at in rows]


def console_state(session: Session, who: Viewer, name: str, q: str = "", include_ip: bool = False) -> dict:
    """Everything the console shows when it (re)loads: ``me``, ``visitors`` (filtered by *q*),
    ``queue``, ``offers``, ``chats`` (each with its ``topics``), ``agents``, ``groups``, ``topics`` (the
    active conversation topics to choose from) and, for supervisors, ``live``."""
    site_ids = served_site_ids(session, who)
    now = utcnow()
    return {
        "me": _me(who, name), "now": utc_iso(now), "site_ids": site_ids,
        "visitors": online_visitors(session, site_ids, q, include_ip),
        "queue": queue(session, site_ids, now), "offers": my_offers(session, who),
        "chats": chat_topics.with_topics(session, my_chats(session, who, now)),
        "agents": agents(session, site_ids, who),
        "groups": groups(session, site_ids),
        "live": live_conversations(session, now) if who.supervisor else [],
        "topics": chat_topics.active_topics(session),
    }


# --- a visitor's details ----------------------------------------------------------------------------


def _served_visitor(session: Session, who: Viewer, visitor_id: int) -> Visitor:
    visitor = session.get(Visitor, visitor_id)
    if visitor is None or visitor.site_id not in served_site_ids(session, who):
        raise NotFound({"visitor": [str(_l("No such visitor."))]})
    return visitor


def past_conversations(session: Session, visitor_id: int, limit: int = 50) -> list[dict]:
    """The visitor's conversations, newest first, with agent, message count and rating."""
    counts = (select(ChatMessage.conversation_id, func.count(ChatMessage.id).label("messages"))
              .where(ChatMessage.sender_type.in_((SenderType.visitor, SenderType.agent)))
              .group_by(ChatMessage.conversation_id).subquery())
    rows = session.execute(
        select(Conversation, AgentProfile.display_name, counts.c.messages)
        .outerjoin(AgentProfile, Conversation.agent_id == AgentProfile.id)
        .outerjoin(counts, counts.c.conversation_id == Conversation.id)
        .where(Conversation.visitor_id == visitor_id).order_by(Conversation.id.desc()).limit(limit)).all()
    return [{"conversation_id": c.id, "status": c.status.value, "agent_name": agent_name,
             "queued_at": utc_iso(c.queued_at), "closed_at": utc_iso(c.closed_at), "rating": c.rating,
             "messages": int(messages or 0)} for c, agent_name, messages in rows]


def client_card(session: Session, contact_id: int | None, today: datetime | None = None) -> dict | None:
    """The client behind an identified visitor (ClientContact → Client): name, credit code,
    taxpayer type, status, the contact, live contracts, balance due, books status (latest closed
    month) and the five latest service records. No ID numbers, no bank accounts."""
    from app.views.labels import enum_label

    contact = session.get(ClientContact, contact_id) if contact_id else None
    if contact is None:
        return None
    client = session.get(Client, contact.client_id)
    try:
        balance = client_balance(session, client.id)
        shown = {"billed": str(balance.billed), "paid": str(balance.paid), "due": str(balance.due)}
    except ValidationFailed as exc:  # sums beyond what SQLite adds up exactly: the card says so
        shown = {"billed": "", "paid": "", "due": exc.message}
    contracts = session.scalars(select(Contract).where(Contract.client_id == client.id, Contract.status.in_(LIVE))
                                .order_by(Contract.end_date))
    book = session.scalar(select(LedgerBook).where(LedgerBook.client_id == client.id))
    closed = session.scalar(select(func.max(Period.period)).where(
        Period.book_id == book.id, Period.status == PeriodStatus.closed)) if book else None
    records = session.scalars(select(ServiceRecord).where(ServiceRecord.client_id == client.id)
                              .order_by(ServiceRecord.performed_at.desc(), ServiceRecord.id.desc()).limit(5))

    def month(period: int | None) -> str | None:
        return f"{period // 100:04d}-{period % 100:02d}" if period else None

    return {
        "id": client.id, "name": client.name, "credit_code": client.credit_code,
        "taxpayer_type": enum_label(client.taxpayer_type), "status": enum_label(client.status),
        "contact": {"name": contact.name, "position": contact.position},
        "contracts": [{"id": c.id, "number": c.number, "service_type": enum_label(c.service_type),
                       "monthly_fee": str(c.monthly_fee), "billing_cycle": enum_label(c.billing_cycle),
                       "start_date": c.start_date.isoformat(), "end_date": c.end_date.isoformat(),
                       "status": enum_label(c.status)} for c in contracts],
        "balance": shown,
        "books": {"start_period": month(book.start_period), "latest_closed": month(closed)} if book else None,
        "service_records": [{"performed_at": utc_iso(r.performed_at), "subject": r.subject, "result": r.result}
                            for r in records],
    }


def visitor_details(session: Session, who: Viewer, visitor_id: int, include_ip: bool = False) -> dict:
    """A visitor of a site the user serves: their tracking payload and contact details, their page
    trail (访问轨迹, newest first), past conversations and the linked client card. Raises ``NotFound``."""
    visitor = _served_visitor(session, who, visitor_id)
    return {
        "visitor": {**tracking.visitor_payload(visitor, include_ip), "name": visitor.name, "email": visitor.email,
                    "phone": visitor.phone, "site_name": visitor.site.name},
        "trail": [entry.as_dict() for entry in tracking.visit_trail(session, visitor.id, limit=100)],
        "conversations": past_conversations(session, visitor.id),
        "client": client_card(session, visitor.contact_id),
    }


# --- a conversation ---------------------------------------------------------------------------------


def readable_conversation(session: Session, who: Viewer, conversation_id: int) -> Conversation:
    """The conversation when *who* owns it, takes part in it (``chat.takes_part``) or supervises.
    Raises ``NotFound``."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is not None and not who.supervisor and not chat.takes_part(session, conversation, who.user_id):
        conversation = None
    if conversation is None:
        raise NotFound({"conversation_id": [str(_l("No such conversation."))]})
    return conversation


def conversation_detail(session: Session, who: Viewer, conversation_id: int) -> dict:
    """A conversation and all its messages (notes and whispers included), oldest first. Raises ``NotFound``."""
    conversation = readable_conversation(session, who, conversation_id)
    agent = conversation.agent
    messages = chat.conversation_messages_after(session, conversation.id)
    return {
        "conversation": {"id": conversation.id, "status": conversation.status.value, "site_id": conversation.site_id,
                         "agent_id": conversation.agent_id, "agent_name": agent.display_name if agent else None,
                         "queued_at": utc_iso(conversation.queued_at), "accepted_at": utc_iso(conversation.accepted_at),
                         "closed_at": utc_iso(conversation.closed_at), "entry_url": conversation.entry_url,
                         "rating": conversation.rating, "visitor": _visitor_summary(conversation.visitor),
                         "topics": chat_topics.topics_of(session, [conversation.id]).get(conversation.id, [])},
        "messages": [chat.message_payload(m) for m in messages],
    }
