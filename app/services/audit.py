"""Audit trail (审计日志): logins and every create/update/delete of business records.

Changes are captured in the same transaction as the change itself (``after_flush``), so an
audit row exists exactly when the change was committed. The acting user comes from the
current actor: the logged-in user in a request, or whoever ``acting_as`` names in the CLI.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Mapper, Session

from app.models.base import Audited, utcnow
from app.models.security import AuditLog


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str | None
    ip: str | None = None


SYSTEM = Actor(None, "system")

# Every action an audit row can carry: the three record changes the flush hook writes, and the
# events the code records. ``record_event`` refuses any other, so that the audit screen, which
# shows a label for each, never meets an action it cannot name.
RECORD_ACTIONS = ("create", "update", "delete")
EVENT_ACTIONS = (
    "login_success", "login_failure", "password_ok", "logout", "password_changed",
    "account_locked", "account_unlocked",
    "mfa_success", "mfa_failure", "mfa_enrolled", "mfa_recovery_codes", "mfa_disabled", "mfa_reset",
    "period_close", "period_reopen", "download",
    "chat_transfer", "chat_transcript", "chat_retention", "chat_topics", "chat_contact_linked",
    "chat_statement_sent",
)
ACTIONS = RECORD_ACTIONS + EVENT_ACTIONS
# Record types that events name besides the audited tables (FAB's users, a month of a set of
# books, a chat conversation, a chat visitor).
EVENT_RECORD_TYPES = ("ab_user", "ledger_period", "chat_conversation", "chat_visitor")


def record_types() -> set[str]:
    """Every ``object_type`` an audit row can carry: the tables of the audited models and the
    record types events name."""
    found, pending = set(EVENT_RECORD_TYPES), [Audited]
    while pending:
        for cls in pending.pop().__subclasses__():
            pending.append(cls)
            if getattr(cls, "__tablename__", None):
                found.add(cls.__tablename__)
    return found


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("audit_actor", default=None)
_request_actor_provider = None


def set_request_actor_provider(provider) -> None:  # noqa: ANN001
    """Register the callable the web layer uses to name the user of the current request."""
    global _request_actor_provider
    _request_actor_provider = provider


def current_actor() -> Actor:
    actor = _actor.get()
    if actor is not None:
        return actor
    if _request_actor_provider is not None:
        found = _request_actor_provider()
        if found is not None:
            return found
    return SYSTEM


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Attribute every audited change inside the block to *actor* (CLI, jobs, tests)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def _plain(value):  # noqa: ANN001, ANN202
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set):
        return [repr(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


SECRET_MARK = "******"  # noqa: S105 - the mask shown instead of a secret

# FAB's user table: audited, but never its password hash nor the login counters.
_USER_IGNORE = {"password", "last_login", "login_count", "fail_login_count", "changed_on",
                "created_on", "changed_by_fk", "created_by_fk"}


def _audit_rules(obj) -> tuple[set[str], set[str]] | None:  # noqa: ANN001
    """Return (ignored, secret) column names for an audited object, or None if not audited."""
    if isinstance(obj, Audited):
        return set(obj.__audit_ignore__), set(obj.__audit_secret__)
    if obj.__class__.__name__ == "User" and getattr(obj, "__tablename__", "") == "ab_user":
        return _USER_IGNORE, set()
    return None


def _changes(obj, ignored: set[str], secret: set[str], mode: str) -> dict:  # noqa: ANN001
    state = inspect(obj)
    result: dict[str, list] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in ignored:
            continue
        hist = state.attrs[key].history
        if mode == "update":
            if not hist.has_changes():
                continue
            old = hist.deleted[0] if hist.deleted else None
            new = hist.added[0] if hist.added else None
            if old == new:
                continue
        elif mode == "create":
            old, new = None, getattr(obj, key)
            if new is None:
                continue
        else:  # delete
            old, new = getattr(obj, key), None
        if key in secret:
            result[key] = [SECRET_MARK if old else None, SECRET_MARK if new else None]
        else:
            result[key] = [_plain(old), _plain(new)]
    for rel in state.mapper.relationships:
        if mode != "update" or rel.direction.name != "MANYTOMANY":
            continue
        hist = state.attrs[rel.key].history
        if hist.added or hist.deleted:
            before = [repr(v) for v in (hist.unchanged or ())] + [repr(v) for v in hist.deleted]
            after = [repr(v) for v in (hist.unchanged or ())] + [repr(v) for v in hist.added]
            result[rel.key] = [sorted(before), sorted(after)]
    return result


def _pk(obj) -> str:  # noqa: ANN001
    identity = inspect(obj).identity
    if identity:
        return ",".join(str(v) for v in identity)
    return str(getattr(obj, "id", ""))


# Audit rows written in the session's current transaction, by (table, primary key): an edit
# that is flushed in several steps (autoflush while a form fills the object) is one change,
# so later steps are merged into the row the first step wrote.
_PENDING = "audit_pending_rows"


def _merge(entry: dict, changes: dict, secret: set[str]) -> None:
    """Fold the *changes* of a later flush into the earlier create/update *entry*."""
    merged = entry["changes"]
    for key, (old, new) in changes.items():
        first = None if entry["action"] == "create" else merged[key][0] if key in merged else old
        if first == new and (entry["action"] == "create" or key not in secret):
            merged.pop(key, None)  # back to the value the transaction started with
        else:
            merged[key] = [first, new]


def _keep_old_value(target, value, oldvalue, initiator):  # noqa: ANN001, ANN202, ARG001
    return value


@event.listens_for(Mapper, "mapper_configured")
def _load_old_values_of_audited_columns(mapper: Mapper, cls: type) -> None:
    """Audited columns load their stored value before a change, even when it was expired (after a
    commit), so the audit row always has the old value."""
    if not issubclass(cls, Audited):
        return
    for attr in mapper.column_attrs:
        if attr.key not in getattr(cls, "__audit_ignore__", ()):
            event.listen(getattr(cls, attr.key), "set", _keep_old_value, active_history=True, retval=True)


@event.listens_for(Session, "after_flush")
def _write_audit_rows(session: Session, flush_context) -> None:  # noqa: ANN001
    pending = session.info.setdefault(_PENDING, {})
    table = AuditLog.__table__
    actor = None
    for mode, objs in (("create", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objs:
            rules = _audit_rules(obj)
            if rules is None:
                continue
            if mode == "update" and not session.is_modified(obj, include_collections=True):
                continue
            changes = _changes(obj, rules[0], rules[1], mode)
            if mode == "update" and not changes:
                continue
            actor = actor or current_actor()
            key = (obj.__tablename__, _pk(obj))
            action, entry = mode, pending.get(key)
            if mode == "update" and entry is not None and entry["action"] in ("create", "update"):
                _merge(entry, changes, rules[1])
                updated = session.connection().execute(
                    table.update().where(table.c.id == entry["id"]).values(
                        summary=str(obj)[:300],
                        changes=json.dumps(entry["changes"], ensure_ascii=False, default=str)))
                if updated.rowcount:
                    continue
                action, changes = entry["action"], entry["changes"]  # rolled back with a savepoint
            row = {
                "created_at": utcnow(),
                "user_id": actor.user_id,
                "username": actor.username,
                "ip": actor.ip,
                "action": action,
                "object_type": obj.__tablename__,
                "object_id": _pk(obj),
                "summary": str(obj)[:300],
                "changes": json.dumps(changes, ensure_ascii=False, default=str),
            }
            result = session.connection().execute(insert(table).values(**row))
            pending[key] = {"id": result.inserted_primary_key[0], "action": action, "changes": changes}


def record_created(session: Session, model: type, rows: list[dict], summaries: list[str]) -> None:
    """The audit rows of objects of *model* created with bulk inserts (which the ``after_flush``
    hook does not see): one ``create`` row each, with the same changes the hook would record.
    *rows* are the inserted values, each with its ``id``; *summaries* their ``str``. Joins the
    caller's transaction; the caller commits."""
    if not rows:
        return
    ignored, secret = set(model.__audit_ignore__), set(model.__audit_secret__)
    actor, now = current_actor(), utcnow()
    session.execute(insert(AuditLog.__table__), [{
        "created_at": now, "user_id": actor.user_id, "username": actor.username, "ip": actor.ip,
        "action": "create", "object_type": model.__tablename__, "object_id": str(row["id"]),
        "summary": summary[:300],
        "changes": json.dumps({key: [None, SECRET_MARK if key in secret else _plain(value)]
                               for key, value in row.items() if value is not None and key not in ignored},
                              ensure_ascii=False, default=str),
    } for row, summary in zip(rows, summaries, strict=True)])


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_pending_rows(session: Session) -> None:
    session.info.pop(_PENDING, None)


def record_event(
    session: Session,
    action: str,
    *,
    actor: Actor | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    summary: str | None = None,
    changes: dict | None = None,
) -> None:
    """Add an audit row for a non-CRUD event (login, logout, download, MFA ...).

    *action* must be one of ``EVENT_ACTIONS`` (ValueError otherwise). The row joins the
    caller's transaction; the caller commits.
    """
    if action not in EVENT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: add it to EVENT_ACTIONS and give it a label")
    actor = actor or current_actor()
    session.add(
        AuditLog(
            user_id=actor.user_id,
            username=actor.username,
            ip=actor.ip,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            summary=(summary or "")[:300] or None,
            changes=json.dumps(changes, ensure_ascii=False, default=str) if changes else None,
        )
    )
