"""Credentials (凭据): which sessions and API tokens of a user are still valid, and the password's age.

Rules:
- Every browser sign-in opens a server-side session (``user_session``): the cookie carries a
  random id, the table keeps its SHA-256. A request is signed in only while that row exists and
  belongs to the cookie's user; signing out deletes the row, so a replayed copy of the old cookie
  signs nobody in. A row idle for longer than the idle limit is dead and purged at the next sign-in.
- Every user has a credential ``version`` (``user_credential``), embedded in each API token
  (access and refresh, claim ``cv``). A token whose version is not the user's current one is revoked.
- Whenever a user's stored password changes (own change, Admin reset, any other path) or the user
  is deactivated, the version goes up and all the user's sessions are deleted, in the same flush:
  every session and token the user had ends. A password change also writes a ``password_changed``
  audit row (who changed whose password) and restarts the password's age.
- A new user's password age starts at creation.

Helpers join the caller's transaction and never commit, except ``session_is_live``'s bookkeeping
of when a session was last used (its own short transaction, at most once a minute per session).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, event, insert, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.security import AuditLog, UserCredential, UserSession

TOUCH_SECONDS = 60  # a session's last_seen is written at most this often


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def ensure_row(session: Session | Connection, user_id: int) -> None:
    """Make sure *user_id* has a ``user_credential`` row (two requests may race to create it)."""
    bind = session if isinstance(session, Connection) else session.get_bind()
    maker = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
    session.execute(maker(UserCredential).values(user_id=user_id, version=0, failed_count=0)
                    .on_conflict_do_nothing(index_elements=["user_id"]))


def version(session: Session, user_id: int) -> int:
    """The user's current credential version (0 for a user who never changed anything)."""
    found = session.scalar(select(UserCredential.version).where(UserCredential.user_id == user_id))
    return found or 0


def token_is_current(session: Session, user_id: int, claimed: object) -> bool:
    """Whether an API token carrying version *claimed* is still valid for *user_id*."""
    return isinstance(claimed, int) and not isinstance(claimed, bool) and claimed == version(session, user_id)


def open_session(session: Session, user_id: int, idle_seconds: int) -> str:
    """Record a new signed-in session of *user_id*; return the id the cookie carries. Sessions of
    anyone that were idle longer than *idle_seconds* are purged on the way. The caller commits."""
    now = utcnow()
    session.execute(delete(UserSession).where(
        UserSession.last_seen < now - timedelta(seconds=idle_seconds + TOUCH_SECONDS)))
    session_id = secrets.token_urlsafe(32)
    session.add(UserSession(id_hash=_hash(session_id), user_id=user_id, created_at=now, last_seen=now))
    return session_id


def session_is_live(session: Session, session_id: object, user_id: int, idle_seconds: int) -> bool:
    """Whether the session *session_id* of *user_id* is still signed in (not signed out, not ended
    by a password change or deactivation, not idle past *idle_seconds*). Notes its use."""
    if not isinstance(session_id, str) or not session_id:
        return False
    key = _hash(session_id)
    row = session.execute(select(UserSession.user_id, UserSession.last_seen)
                          .where(UserSession.id_hash == key)).first()
    if row is None or row.user_id != user_id:
        return False
    now = utcnow()
    if now - row.last_seen > timedelta(seconds=idle_seconds + TOUCH_SECONDS):
        return False
    if now - row.last_seen > timedelta(seconds=TOUCH_SECONDS):
        # Its own transaction: the request's session may hold work that is not ours to commit.
        with session.get_bind().engine.begin() as conn:
            conn.execute(update(UserSession).where(UserSession.id_hash == key).values(last_seen=now))
    return True


def end_session(session: Session, session_id: object) -> None:
    """Sign out one session: its cookie no longer signs anyone in. The caller commits."""
    if isinstance(session_id, str) and session_id:
        session.execute(delete(UserSession).where(UserSession.id_hash == _hash(session_id)))


def end_all(session: Session, user_id: int) -> None:
    """End every session and API token of *user_id* (raise the version, delete the sessions).
    The caller commits."""
    ensure_row(session, user_id)
    session.execute(update(UserCredential).where(UserCredential.user_id == user_id)
                    .values(version=UserCredential.version + 1))
    session.execute(delete(UserSession).where(UserSession.user_id == user_id))


def password_changed_at(session: Session, user_id: int) -> datetime | None:
    """When the user's password was last set (None: not recorded)."""
    return session.scalar(select(UserCredential.password_changed_at).where(UserCredential.user_id == user_id))


def password_expired(session: Session, user_id: int, max_age_days: int, now: datetime | None = None) -> bool:
    """Whether the password is older than *max_age_days* (0 or less: passwords never expire). A
    password whose age was never recorded counts as expired when expiry is on."""
    if max_age_days <= 0:
        return False
    changed = password_changed_at(session, user_id)
    return changed is None or (now or utcnow()) - changed > timedelta(days=max_age_days)


# --- the flush hook: any password change or deactivation ends the user's sessions and tokens ----


def _is_user(obj) -> bool:  # noqa: ANN001
    return obj.__class__.__name__ == "User" and getattr(obj, "__tablename__", "") == "ab_user"


def _changed(obj, key: str) -> tuple[bool, object]:  # noqa: ANN001
    hist = inspect(obj).attrs[key].history
    if not hist.added:
        return False, None
    old = hist.deleted[0] if hist.deleted else None
    return hist.added[0] != old, hist.added[0]


@event.listens_for(Session, "after_flush")
def _end_credentials_on_change(session: Session, flush_context) -> None:  # noqa: ANN001, ARG001
    from app.services.audit import current_actor

    conn = session.connection()
    now = utcnow()
    for obj in session.new:
        if _is_user(obj):
            conn.execute(insert(UserCredential).values(user_id=obj.id, version=0, failed_count=0,
                                                       password_changed_at=now))
    for obj in session.dirty:
        if not _is_user(obj):
            continue
        password_changed, _ = _changed(obj, "password")
        active_changed, active = _changed(obj, "active")
        deactivated = active_changed and not active
        if not (password_changed or deactivated):
            continue
        ensure_row(conn, obj.id)
        values = {"version": UserCredential.version + 1}
        if password_changed:
            values["password_changed_at"] = now
        conn.execute(update(UserCredential).where(UserCredential.user_id == obj.id).values(**values))
        conn.execute(delete(UserSession).where(UserSession.user_id == obj.id))
        if password_changed:
            actor = current_actor()
            by = "self" if actor.user_id == obj.id else "other"
            conn.execute(insert(AuditLog.__table__).values(
                created_at=now, user_id=actor.user_id, username=actor.username, ip=actor.ip,
                action="password_changed", object_type="ab_user", object_id=str(obj.id),
                summary=(obj.username or "")[:300], changes=json.dumps({"by": by})))
