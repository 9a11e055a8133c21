"""Agent presence and status (在线状态): online, away, offline or invisible, and whether a site's
widget shows the chat as open.

Rules:
- ``status`` is chosen by the agent; going online offers them waiting chats at once.
- Presence: any event of a console tab refreshes ``last_seen_at`` (at most every
  ``SEEN_REFRESH_SECONDS``); the console sends ``ping`` every 30 s. Opening the console sets an
  offline agent online. Closing a tab backdates ``last_seen_at`` so that presence lapses
  ``DISCONNECT_GRACE_SECONDS`` later unless another tab of the agent pings meanwhile (the sweep,
  ``chat_sweep``, then sets the agent offline). Nothing is kept in process memory.
- A site is open to visitors within its business hours when at least one online, present agent
  serves it.
Errors: ``ValidationFailed`` (bad status), ``AccessDenied`` (no active agent profile).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import (
    AgentPresence,
    AgentProfile,
    AgentStatus,
    ChatSite,
)
from app.services import chat_sites
from app.services.errors import AccessDenied, ValidationFailed
from app.services.locking import write_lock
from app.services.routing import (
    DISCONNECT_GRACE_SECONDS,
    PRESENCE_SECONDS,
    SEEN_REFRESH_SECONDS,
    Emit,
    agent_site_ids,
    drain,
    present,
    queue_emits,
    serves_site,
)
from app.sockets.rooms import site_agents_room, site_visitors_room

STATUSES = tuple(s.value for s in AgentStatus)


def site_online(session: Session, site: ChatSite, now: datetime, tz: str) -> bool:
    """Whether the widget shows the chat as open: within business hours and at least one online
    (not away, not invisible) present agent serves the site."""
    if not chat_sites.is_open(site, now, tz):
        return False
    return session.scalar(select(func.count()).select_from(AgentProfile).where(
        present(now), serves_site(site.id))) > 0


def status_emits(session: Session, agent: AgentProfile, now: datetime, tz: str) -> list[Emit]:
    payload = {"agent_id": agent.id, "name": agent.display_name, "status": agent.status.value}
    emits = []
    for site_id in sorted(agent_site_ids(session, agent)):
        emits.append(Emit("agent_status", payload, site_agents_room(site_id), "/agent"))
        site = session.get(ChatSite, site_id)
        emits.append(Emit("availability", {"online": site_online(session, site, now, tz)},
                          site_visitors_room(site_id), "/visitor"))
    return emits


def record_status(session: Session, agent_id: int, status: AgentStatus, now: datetime) -> None:
    """The agent's status changed to *status* at *now*: their open stretch (``AgentPresence``) ends
    and, unless they went offline, a stretch of the new status starts. Call it in the transaction
    that changes the status, holding the agent's row (the status's own UPDATE, or ``write_lock``),
    and only when it changed; nothing is committed here."""
    session.execute(update(AgentPresence).where(AgentPresence.agent_id == agent_id, AgentPresence.ended_at.is_(None))
                    .values(ended_at=now).execution_options(synchronize_session=False))
    if status != AgentStatus.offline:
        session.add(AgentPresence(agent_id=agent_id, status=status, started_at=now))


def set_status(session: Session, agent: AgentProfile | None, status: object, now: datetime | None = None,
               tz: str = "UTC", include_ip: bool = False) -> list[Emit]:
    """The agent chooses online, away, offline or invisible; the site's agents and visitors hear of
    it, and an agent coming online is offered waiting chats. Raises ``ValidationFailed``,
    ``AccessDenied``."""
    now = now or utcnow()
    if agent is None or not agent.active:
        raise AccessDenied({"_": [str(_l("You have no active agent profile."))]})
    if status not in STATUSES:
        raise ValidationFailed({"status": [str(_l("The status is one of online, away, offline, invisible."))]})
    # the agent's row first (another tab may be changing the status too), then its status as stored
    write_lock(session, AgentProfile, AgentProfile.id, agent.id, AgentProfile.max_chats)
    session.refresh(agent, ["status"])
    if agent.status != AgentStatus(status):
        record_status(session, agent.id, AgentStatus(status), now)
    agent.status, agent.last_seen_at = AgentStatus(status), now
    session.commit()
    emits = status_emits(session, agent, now, tz)
    if agent.status == AgentStatus.online:
        for site_id in sorted(agent_site_ids(session, agent)):
            offers = drain(session, site_id, now, include_ip)
            if offers:
                emits += offers + queue_emits(session, site_id, now, changed=[
                    e.payload["conversation_id"] for e in offers])
    return emits


def agent_connected(session: Session, agent: AgentProfile, now: datetime | None = None, tz: str = "UTC",
                    include_ip: bool = False) -> list[Emit]:
    """A console tab opened: the agent is present; an offline agent becomes online."""
    now = now or utcnow()
    if agent.status == AgentStatus.offline:
        return set_status(session, agent, AgentStatus.online.value, now, tz, include_ip)
    agent.last_seen_at = now
    session.commit()
    return []


def touch(session: Session, agent_id: int, now: datetime | None = None) -> None:
    """Any event of a console tab: refresh ``last_seen_at`` (one write per ``SEEN_REFRESH_SECONDS``)."""
    now = now or utcnow()
    session.execute(update(AgentProfile).where(
        AgentProfile.id == agent_id, or_(AgentProfile.last_seen_at.is_(None),
                                         AgentProfile.last_seen_at < now - timedelta(seconds=SEEN_REFRESH_SECONDS)))
        .values(last_seen_at=now).execution_options(synchronize_session=False))
    session.commit()


def agent_disconnected(session: Session, agent_id: int, now: datetime | None = None) -> None:
    """A console tab closed: presence lapses ``DISCONNECT_GRACE_SECONDS`` from now unless another
    tab pings first (the sweep then sets the agent offline)."""
    now = now or utcnow()
    lapse = now - timedelta(seconds=PRESENCE_SECONDS - DISCONNECT_GRACE_SECONDS)
    session.execute(update(AgentProfile).where(
        AgentProfile.id == agent_id, or_(AgentProfile.last_seen_at.is_(None), AgentProfile.last_seen_at > lapse))
        .values(last_seen_at=lapse).execution_options(synchronize_session=False))
    session.commit()
