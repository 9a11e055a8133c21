"""Idempotent requests: an ``Idempotency-Key`` makes a retried POST return the first answer.

Rules:
- A client that may not have seen the answer to a POST (a timeout, a dropped connection, a
  server killed after the commit) sends the request again with the same ``Idempotency-Key``
  header; the desk then answers what it answered the first time and does nothing more.
- The key is the caller's: 1 to 255 visible ASCII characters (a UUID is the usual choice),
  scoped to the signed-in user. Anything else is refused (``ValidationFailed``, field
  ``Idempotency-Key``).
- The answer is stored in the same transaction as the work (``remember`` before the commit), so
  a committed piece of work always has its answer and a rolled-back one never has.
- The same key with a different request (another operation or another body) is refused with
  ``ValidationFailed``: the first request's work is not repeated or changed.
- Two requests with one key at the same time: the second waits for the first and returns its
  answer (``remember`` raises ``Replayed`` when the key was stored meanwhile).
- Answers are kept ``RETENTION``; a key older than that starts afresh. Refusals (4xx) are not
  stored: correcting the request and sending it again with the same key works.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.idempotency import IdempotentRequest
from app.services.errors import ValidationFailed

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)


@dataclass(frozen=True)
class Keyed:
    """A request that carries an idempotency key: who sent it, the key, the operation and a
    digest of its content."""

    user_id: int
    key: str
    scope: str
    digest: str


class Replayed(Exception):  # noqa: N818 - not an error: the answer to give
    """The key was stored by a concurrent request while this one worked: answer with its answer
    (this request's work has been rolled back)."""

    def __init__(self, status: int, body: dict) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def keyed(user_id: int | None, header: str | None, scope: str, content: object) -> Keyed | None:
    """The request's key, or ``None`` when it has none. *content* is everything that defines the
    request (its JSON body, or the form fields and a digest of an uploaded file). Raises
    ``ValidationFailed`` for a malformed key or when nobody is signed in."""
    if header is None:
        return None
    if not (1 <= len(header) <= MAX_KEY_LENGTH and all(0x21 <= ord(ch) <= 0x7E for ch in header)):
        raise ValidationFailed({HEADER: [str(_l(
            "The Idempotency-Key is 1 to %(n)d visible ASCII characters, such as a UUID.", n=MAX_KEY_LENGTH))]})
    if user_id is None:
        raise ValidationFailed({HEADER: [str(_l("An Idempotency-Key needs a signed-in user."))]})
    text = json.dumps([scope, content], sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return Keyed(user_id, header, scope, hashlib.sha256(text.encode()).hexdigest())


def replay(session: Session, request: Keyed) -> tuple[int, dict] | None:
    """The stored answer (status, JSON body) to an earlier request with this key, or ``None``.
    Raises ``ValidationFailed`` when the key was used for a different request."""
    row = session.scalar(select(IdempotentRequest).where(
        IdempotentRequest.user_id == request.user_id, IdempotentRequest.key == request.key,
        IdempotentRequest.created_at >= utcnow() - RETENTION))
    if row is None:
        return None
    if (row.scope, row.request_hash) != (request.scope, request.digest):
        raise ValidationFailed({HEADER: [str(_l(
            "This Idempotency-Key was already used for a different request; use a new key."))]})
    return row.status, json.loads(row.body)


def remember(session: Session, request: Keyed, status: int, body: dict) -> None:
    """Store the answer to *request* in the current transaction (call after the work, before the
    commit). Raises ``Replayed`` (after rolling the transaction back) when a concurrent request
    with the same key stored its answer first, and ``ValidationFailed`` when that one was a
    different request. Does not commit."""
    session.execute(delete(IdempotentRequest).where(
        IdempotentRequest.user_id == request.user_id, IdempotentRequest.key == request.key,
        IdempotentRequest.created_at < utcnow() - RETENTION))
    session.add(IdempotentRequest(user_id=request.user_id, key=request.key, scope=request.scope,
                                  request_hash=request.digest, status=status,
                                  body=json.dumps(body, ensure_ascii=False, default=str)))
    try:
        session.flush()
    except IntegrityError as exc:
        if "uq_idempotent_user_key" not in str(exc.orig) and "idempotent_request" not in str(exc.orig):
            raise
        session.rollback()
        stored = replay(session, request)
        if stored is None:  # pragma: no cover - the row that collided is committed
            raise
        raise Replayed(*stored) from None
