"""The chat sweep: what happens with time rather than on an event — presence that lapsed, offers
that timed out, waiting chats for agents who became free, the no-answer auto reply, invitation
rules whose time on the page was reached between heartbeats, visitors who left while waiting, and
business hours opening or closing. ``app/sockets/sweeper.py`` runs it in every server process; every change
is a conditional update, so several processes may sweep at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import (
    AgentProfile,
    AgentStatus,
    ChatSite,
    Conversation,
    ConversationStatus,
    OfferOutcome,
    Visitor,
)
from app.services import chat, chat_sites, chat_tools, chat_visitors
from app.services.presence import record_status, site_online, status_emits
from app.services.routing import (
    PRESENCE_SECONDS,
    Emit,
    drain,
    message_emits,
    queue_emits,
)
from app.sockets.rooms import agent_room, site_agents_room, site_visitors_room, visitor_room


def _expire_presence(session: Session, now: datetime, tz: str) -> list[Emit]:
    cutoff = now - timedelta(seconds=PRESENCE_SECONDS)
    stale = or_(AgentProfile.last_seen_at.is_(None), AgentProfile.last_seen_at < cutoff)
    emits: list[Emit] = []
    for agent_id in list(session.scalars(select(AgentProfile.id).where(
            AgentProfile.status != AgentStatus.offline, stale))):
        gone = session.execute(update(AgentProfile).where(
            AgentProfile.id == agent_id, AgentProfile.status != AgentStatus.offline, stale)
            .values(status=AgentStatus.offline).execution_options(synchronize_session=False)).rowcount == 1
        if gone:
            record_status(session, agent_id, AgentStatus.offline, now)
        session.commit()
        if gone:
            emits += status_emits(session, session.get(AgentProfile, agent_id), now, tz)
    return emits


def _expire_offers(session: Session, now: datetime, tz: str) -> tuple[list[Emit], set[int], list[int]]:
    emits: list[Emit] = []
    sites: set[int] = set()
    released: list[int] = []
    expired = session.execute(select(Conversation.id, Conversation.agent_id, Conversation.site_id).where(
        Conversation.status == ConversationStatus.offered, Conversation.offer_expires_at <= now)).all()
    for conversation_id, agent_id, site_id in expired:
        moved = session.execute(update(Conversation).where(
            Conversation.id == conversation_id, Conversation.status == ConversationStatus.offered,
            Conversation.agent_id == agent_id, Conversation.offer_expires_at <= now).values(
            status=ConversationStatus.queued, agent_id=None, offer_expires_at=None)
            .execution_options(synchronize_session=False)).rowcount == 1
        if not moved:
            session.rollback()
            continue
        chat.settle_offers(session, conversation_id, OfferOutcome.timed_out, now, agent_id)
        session.commit()  # before touching the agent's row: offers lock the agent first, then the chat
        went_away = session.execute(update(AgentProfile).where(
            AgentProfile.id == agent_id, AgentProfile.status == AgentStatus.online).values(
            status=AgentStatus.away).execution_options(synchronize_session=False)).rowcount == 1
        if went_away:
            record_status(session, agent_id, AgentStatus.away, now)
        session.commit()
        sites.add(site_id)
        released.append(conversation_id)
        emits.append(Emit("offer_withdrawn", {"conversation_id": conversation_id, "reason": "timed_out"},
                          agent_room(agent_id), "/agent"))
        if went_away:
            emits += status_emits(session, session.get(AgentProfile, agent_id), now, tz)
    return emits, sites, released


def _auto_replies(session: Session, now: datetime) -> list[Emit]:
    emits: list[Emit] = []
    candidates = session.execute(select(Conversation.id, Conversation.queued_at, ChatSite.auto_reply_seconds).join(
        ChatSite, ChatSite.id == Conversation.site_id).where(
        Conversation.status.in_(chat.OPEN), Conversation.first_response_at.is_(None),
        Conversation.auto_replied_at.is_(None), ChatSite.auto_reply_seconds > 0)).all()
    for conversation_id, started, seconds in candidates:
        if started + timedelta(seconds=seconds) > now:
            continue
        claimed = session.execute(update(Conversation).where(
            Conversation.id == conversation_id, Conversation.auto_replied_at.is_(None),
            Conversation.first_response_at.is_(None)).values(auto_replied_at=now)
            .execution_options(synchronize_session=False)).rowcount == 1
        session.commit()
        if not claimed:
            continue
        conversation = session.get(Conversation, conversation_id)
        session.refresh(conversation)
        text = conversation.site.auto_reply_text or str(_l(
            "Thank you for waiting. All our agents are busy at the moment; we will answer you as soon as we can."))
        message = chat.store_system_message(session, conversation, "auto-reply", text)
        if message is not None:
            emits += message_emits(conversation, message)
    return emits


def sweep(session: Session, now: datetime | None = None, tz: str = "UTC", include_ip: bool = False,
          visitor_grace: float = chat_visitors.GRACE_SECONDS) -> list[Emit]:
    """One pass of the background sweep, safe to run in several processes at once (every change
    is a conditional update): this process's visitor connections are marked alive and those of
    dead processes dropped; the waiting chats of visitors gone for longer than *visitor_grace*
    seconds leave the queue; agents whose presence lapsed go offline; offers that timed out move
    on (the agent is set away); queued conversations are offered to agents who became free; the
    no-answer auto reply goes out; invitation rules fire for time on the page. Returns the events
    to send."""
    now = now or utcnow()
    chat_visitors.refresh_connections(session, now)
    chat_visitors.drop_stale_connections(session, now)
    emits = chat_visitors.gone_visitors(session, now, visitor_grace, include_ip)
    emits += _expire_presence(session, now, tz)
    offer_emits, changed_sites, released = _expire_offers(session, now, tz)
    emits += offer_emits
    waiting_sites = set(session.scalars(select(Conversation.site_id).where(
        Conversation.status == ConversationStatus.queued).distinct()))
    offered: list[int] = []
    for site_id in sorted(waiting_sites):
        site_offers = drain(session, site_id, now, include_ip)
        if site_offers:
            changed_sites.add(site_id)
            offered += [e.payload["conversation_id"] for e in site_offers]
        emits += site_offers
    for site_id in sorted(changed_sites):
        emits += queue_emits(session, site_id, now, changed=released + offered)
    emits += _auto_replies(session, now)
    emits += _timed_invitations(session, now)
    emits += _opening_hours(session, now, tz)
    session.commit()
    return emits


def _timed_invitations(session: Session, now: datetime) -> list[Emit]:
    """``invite`` to each visitor a rule now invites for their time on the page (``visitor_invited``
    to the site's agents)."""
    emits = []
    for invitation in chat_tools.timed_invitations(session, now):
        site_id = session.get(Visitor, invitation.visitor_id).site_id
        emits.append(Emit("invite", chat_tools.invitation_payload(session, invitation),
                          visitor_room(invitation.visitor_id), "/visitor"))
        emits.append(Emit("visitor_invited", chat_tools.invited_payload(session, invitation),
                          site_agents_room(site_id), "/agent"))
    return emits


HOURS_WINDOW = timedelta(seconds=10)  # a sweep pass notices opening and closing times this recent


def _opening_hours(session: Session, now: datetime, tz: str) -> list[Emit]:
    """``availability`` to the widgets of every site whose business hours opened or closed within
    ``HOURS_WINDOW`` (stateless: several passes, or processes, may tell the same change twice)."""
    emits = []
    sites = session.scalars(select(ChatSite).where(ChatSite.active.is_(True), ChatSite.business_hours.is_not(None)))
    for site in sites:
        if chat_sites.is_open(site, now, tz) != chat_sites.is_open(site, now - HOURS_WINDOW, tz):
            emits.append(Emit("availability", {"online": site_online(session, site, now, tz)},
                              site_visitors_room(site.id), "/visitor"))
    return emits
