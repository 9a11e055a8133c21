"""Sign-in throttling per account (登录锁定): wrong passwords lock the account for a while.

Rules:
- Only failures count. ``AUTH_LOCKOUT_ATTEMPTS`` wrong passwords for one account within
  ``AUTH_LOCKOUT_WINDOW_MINUTES`` (from whatever addresses) lock it; a successful sign-in before
  that starts the count again.
- A locked account does not sign in, with the right password or a wrong one, and the answer is
  the same either way (the password is not even checked). The lock ends by itself after
  ``AUTH_LOCKOUT_MINUTES`` (0: only an Admin lifts it), or when an Admin lifts it.
- Each failure writes a ``login_failure`` audit row (the caller's), a lock an ``account_locked``
  row, a lift an ``account_unlocked`` row.
- The counts live in the database (``user_credential``), updated with one statement each so that
  requests served by several processes at once count every failure.

(Per address, the sign-in forms are limited by Flask-Limiter in the rate-limit storage, counting
failed attempts only: app/security.py.)
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.security import UserCredential
from app.services import audit
from app.services.credentials import ensure_row
from app.services.errors import Conflict, NotFound

log = logging.getLogger(__name__)

LOCKED_MESSAGE = _l("This account is locked after too many failed sign-ins. Try again later or ask an "
                    "administrator to unlock it.")


@dataclass(frozen=True)
class Policy:
    """How many failures within how many minutes lock an account, and for how long (0: until lifted)."""

    attempts: int = 5
    window_minutes: float = 15
    lock_minutes: float = 15

    @classmethod
    def from_config(cls, config) -> Policy:  # noqa: ANN001
        return cls(int(config.get("AUTH_LOCKOUT_ATTEMPTS", 5)),
                   float(config.get("AUTH_LOCKOUT_WINDOW_MINUTES", 15)),
                   float(config.get("AUTH_LOCKOUT_MINUTES", 15)))


@dataclass(frozen=True)
class LockState:
    locked: bool
    failed_count: int
    locked_at: datetime | None
    locked_until: datetime | None  # None while locked: until an Admin lifts it


def _row(session: Session, user_id: int) -> UserCredential | None:
    return session.execute(select(UserCredential).where(UserCredential.user_id == user_id)
                           .execution_options(populate_existing=True)).scalar_one_or_none()


def state(session: Session, user_id: int, policy: Policy, now: datetime | None = None) -> LockState:
    """Whether *user_id* is locked now, with the failures counted and when the lock ends."""
    row = _row(session, user_id)
    if row is None:
        return LockState(False, 0, None, None)
    now = now or utcnow()
    until = row.locked_at + timedelta(minutes=policy.lock_minutes) if row.locked_at and policy.lock_minutes > 0 \
        else None
    locked = row.locked_at is not None and (until is None or now < until)
    return LockState(locked, row.failed_count, row.locked_at, until)


def is_locked(session: Session, user_id: int, policy: Policy) -> bool:
    return state(session, user_id, policy).locked


def record_failure(session: Session, user_id: int, username: str, policy: Policy, ip: str | None) -> bool:
    """Count a wrong password for *user_id*; lock the account when the count reaches the limit
    (writing ``account_locked``). Returns whether the account is locked now. The caller writes the
    ``login_failure`` row and commits."""
    now = utcnow()
    ensure_row(session, user_id)
    window_start = now - timedelta(minutes=policy.window_minutes)
    expired_lock = now - timedelta(minutes=policy.lock_minutes) if policy.lock_minutes > 0 else None
    stale = UserCredential.failed_since.is_(None) | (UserCredential.failed_since < window_start)
    if expired_lock is not None:  # a lock that ran out: counting starts again
        stale = stale | (UserCredential.locked_at.is_not(None) & (UserCredential.locked_at <= expired_lock))
    session.execute(update(UserCredential).where(UserCredential.user_id == user_id).values(
        failed_count=case((stale, 1), else_=UserCredential.failed_count + 1),
        failed_since=case((stale, now), else_=UserCredential.failed_since),
        locked_at=case((stale, None), else_=UserCredential.locked_at)))
    row = _row(session, user_id)
    if row.locked_at is None and row.failed_count >= policy.attempts:
        row.locked_at = now
        audit.record_event(session, "account_locked", actor=audit.Actor(user_id, username, ip),
                           object_type="ab_user", object_id=user_id, summary=username,
                           changes={"failed_count": row.failed_count})
    return row.locked_at is not None


def record_success(session: Session, user_id: int) -> None:
    """A successful sign-in: the failures counted so far are forgotten. The caller commits."""
    session.execute(update(UserCredential).where(
        UserCredential.user_id == user_id,
        (UserCredential.failed_count != 0) | UserCredential.locked_at.is_not(None),
    ).values(failed_count=0, failed_since=None, locked_at=None))


def lift(session: Session, user_id: int, policy: Policy) -> None:
    """An Admin unlocks *user_id*'s account: the lock and its count go, an ``account_unlocked`` row
    is written (by the current actor). Raises ``NotFound`` for an unknown user, ``Conflict`` when
    the account is not locked. The caller commits."""
    from flask_appbuilder.security.sqla.models import User

    user = session.get(User, user_id)
    if user is None:
        raise NotFound(str(_l("No such user.")))
    if not is_locked(session, user_id, policy):
        raise Conflict(str(_l("This account is not locked.")))
    session.execute(update(UserCredential).where(UserCredential.user_id == user_id)
                    .values(locked_at=None, failed_count=0, failed_since=None))
    audit.record_event(session, "account_unlocked", object_type="ab_user", object_id=user_id, summary=user.username)


# --- names that are not active accounts ------------------------------------------------------------
# They never sign in, but their answers must look the same as an account's: after as many failures
# they get the lock message too, so that the message does not tell which names are accounts. Their
# count lives in the rate-limit storage (``RATELIMIT_STORAGE_URI``: Redis when configured), keyed by
# a hash of the name.

NAME_SCOPE = "sign-in-name"


def name_counter(storage_uri: str, options: dict | None = None):  # noqa: ANN201
    """The counter of failures per name over *storage_uri* (a ``limits`` fixed window)."""
    from limits.storage import storage_from_string
    from limits.strategies import FixedWindowRateLimiter

    return FixedWindowRateLimiter(storage_from_string(storage_uri, **(options or {})))


def _name_limit(policy: Policy):  # noqa: ANN202
    from limits import parse

    return parse(f"{max(policy.attempts - 1, 1)} per {max(int(policy.window_minutes * 60), 1)} second")


def _name_key(name: str) -> str:
    return hashlib.sha256(name.strip().lower().encode()).hexdigest()[:32]


def name_looks_locked(counter, name: str, policy: Policy) -> bool:  # noqa: ANN001
    """Whether a name that is not an active account has failed as often as locks an account. The
    storage being unreachable answers no (such a name cannot sign in anyway)."""
    try:
        return not counter.test(_name_limit(policy), NAME_SCOPE, _name_key(name))
    except Exception:  # noqa: BLE001 - the storage is down: there is nothing to protect then
        log.warning("sign-in name counter unavailable", exc_info=True)
        return False


def count_name_failure(counter, name: str, policy: Policy) -> bool:  # noqa: ANN001
    """Count a failure for a name that is not an active account; whether it now looks locked."""
    try:
        return not counter.hit(_name_limit(policy), NAME_SCOPE, _name_key(name))
    except Exception:  # noqa: BLE001
        log.warning("sign-in name counter unavailable", exc_info=True)
        return False


def forget_name(counter, name: str, policy: Policy) -> None:  # noqa: ANN001
    """Drop the failures counted for *name* (tests, or an Admin creating an account of that name)."""
    counter.clear(_name_limit(policy), NAME_SCOPE, _name_key(name))
