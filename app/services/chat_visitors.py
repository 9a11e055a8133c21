"""Whether a chat visitor is still there: their widget connections across server processes, and a
waiting chat whose visitor left.

Rules:
- Each widget connection is a row (``VisitorConnection``) in the database, written by the process
  that holds it, so every process agrees. A visitor is online while they have one; when their
  last one closes, ``online`` becomes false and ``last_seen_at`` the moment it closed. The
  visitor's row is locked while a connection is added or removed, so two tabs closing at once in
  two processes cannot both think the other is still open.
- A process refreshes its own rows' ``seen_at`` from its sweep (at most every ``REFRESH_SECONDS``)
  and drops those of connections it no longer holds (a disconnect whose handler failed); rows
  not refreshed for ``STALE_SECONDS`` belong to a process that died and are dropped, with the
  same effect as closing them (gone since their last refresh).
- A visitor who left (offline) and has not come back within the grace (``CHAT_VISITOR_GRACE_SECONDS``,
  default ``GRACE_SECONDS``) leaves the queue: their queued or offered chat is closed as closed
  by the visitor — the state of a chat the visitor ended — with its pending offer withdrawn, and
  the queue moves on. A reload or a brief network drop within the grace changes nothing.
Every function commits its own transaction.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import Conversation, ConversationStatus, OfferOutcome, Visitor, VisitorConnection
from app.services import chat
from app.services.routing import Emit, after_close
from app.sockets.rooms import conversation_room, visitor_room

GRACE_SECONDS = 45.0  # a reload or a short network drop takes far less
REFRESH_SECONDS = 15
STALE_SECONDS = 60
WAITING = (ConversationStatus.queued, ConversationStatus.offered)

_process: tuple[int, str] | None = None


def process_token() -> str:
    """This server process's name in ``VisitorConnection.process`` (new after a fork)."""
    global _process  # noqa: PLW0603 - the process's own identity, not shared state
    if _process is None or _process[0] != os.getpid():
        _process = (os.getpid(), f"{os.getpid()}-{uuid.uuid4().hex[:16]}")
    return _process[1]


def _lock_visitor(session: Session, visitor_id: int) -> Visitor | None:
    return session.scalar(select(Visitor).where(Visitor.id == visitor_id).with_for_update()
                          .execution_options(populate_existing=True))


def visitor_connected(session: Session, visitor_id: int, sid: str, now: datetime | None = None) -> None:
    """Record the visitor's new connection *sid* (held by this process); they are online. Commits."""
    now = now or utcnow()
    visitor = _lock_visitor(session, visitor_id)
    if visitor is None:
        session.rollback()
        return
    session.add(VisitorConnection(visitor_id=visitor_id, sid=sid, process=process_token(), seen_at=now))
    visitor.online = True
    session.commit()


def visitor_disconnected(session: Session, visitor_id: int, sid: str, now: datetime | None = None) -> bool:
    """Forget the connection *sid*; when it was the visitor's last, they are offline from *now*.
    Returns whether the visitor is now offline. Commits."""
    now = now or utcnow()
    visitor = _lock_visitor(session, visitor_id)
    if visitor is None:
        session.rollback()
        return True
    session.execute(delete(VisitorConnection).where(VisitorConnection.sid == sid))
    left = not session.scalar(select(func.count()).select_from(VisitorConnection).where(
        VisitorConnection.visitor_id == visitor_id))
    if left:
        visitor.online, visitor.last_seen_at = False, now
    session.commit()
    return left


def connection_sids(session: Session, visitor_id: int) -> list[str]:
    """The Socket.IO session ids of the visitor's open widget connections, in every process."""
    return list(session.scalars(select(VisitorConnection.sid).where(VisitorConnection.visitor_id == visitor_id)))


def refresh_connections(session: Session, now: datetime, process: str | None = None) -> None:
    """This process's connections are alive: their ``seen_at`` becomes *now* (rows refreshed within
    ``REFRESH_SECONDS`` are left alone). Commits."""
    session.execute(update(VisitorConnection).where(
        VisitorConnection.process == (process or process_token()),
        VisitorConnection.seen_at < now - timedelta(seconds=REFRESH_SECONDS)).values(seen_at=now)
        .execution_options(synchronize_session=False))
    session.commit()


def drop_closed_connections(session: Session, live_sids: set[str], now: datetime | None = None) -> int:
    """Close this process's rows whose connection it no longer holds (*live_sids*: the ``/visitor``
    connections it serves now). Returns how many. Commits."""
    now = now or utcnow()
    rows = session.execute(select(VisitorConnection.visitor_id, VisitorConnection.sid).where(
        VisitorConnection.process == process_token())).all()
    session.commit()
    closed = [(visitor_id, sid) for visitor_id, sid in rows if sid not in live_sids]
    for visitor_id, sid in closed:
        visitor_disconnected(session, visitor_id, sid, now)
    return len(closed)


def drop_stale_connections(session: Session, now: datetime) -> None:
    """Drop the connections of processes that stopped refreshing them (``STALE_SECONDS``); a visitor
    left without one is offline since their last refresh. Commits."""
    cutoff = now - timedelta(seconds=STALE_SECONDS)
    stale = session.execute(select(VisitorConnection.visitor_id, VisitorConnection.sid, VisitorConnection.seen_at)
                            .where(VisitorConnection.seen_at < cutoff)).all()
    session.commit()
    for visitor_id, sid, seen_at in stale:
        visitor_disconnected(session, visitor_id, sid, seen_at)


def gone_visitors(session: Session, now: datetime, grace: float = GRACE_SECONDS,
                  include_ip: bool = False) -> list[Emit]:
    """Close the waiting (queued or offered) chats of visitors offline for longer than *grace*
    seconds, as closed by the visitor (a conditional update: one process closes each); returns the
    events: ``closed`` to the chat's agents and the visitor's room, the withdrawn offer and the
    queue's updates (``routing.after_close``). Commits."""
    cutoff = now - timedelta(seconds=grace)
    waiting = session.scalars(select(Conversation.id).join(Visitor, Visitor.id == Conversation.visitor_id).where(
        Conversation.status.in_(WAITING), Visitor.online.is_(False), Visitor.last_seen_at <= cutoff)
        .order_by(Conversation.id)).all()
    session.commit()
    emits: list[Emit] = []
    for conversation_id in waiting:
        closed = session.execute(update(Conversation).where(
            Conversation.id == conversation_id, Conversation.status.in_(WAITING),
            Conversation.visitor_id.in_(select(Visitor.id).where(
                Visitor.online.is_(False), Visitor.last_seen_at <= cutoff)))
            .values(status=ConversationStatus.closed, closed_at=now, closed_by="visitor", offer_expires_at=None)
            .execution_options(synchronize_session=False)).rowcount == 1
        if not closed:
            session.rollback()
            continue
        chat.settle_offers(session, conversation_id, OfferOutcome.withdrawn, now)
        session.commit()
        conversation = session.get(Conversation, conversation_id)
        session.refresh(conversation)
        payload = {"conversation_id": conversation_id, "by": "visitor"}
        emits.append(Emit("closed", payload, conversation_room(conversation_id), "/agent"))
        emits.append(Emit("closed", payload, visitor_room(conversation.visitor_id), "/visitor"))
        emits += after_close(session, conversation, now, include_ip)
    return emits
