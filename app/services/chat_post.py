"""A visitor's message: the chat's per-message path (see ``app.services.chat`` for the rules of
conversations and messages).

Rules:
- A message is stored (and committed) before it is acknowledged; ``client_msg_id`` makes a resend
  return the stored message, in any conversation of the visitor (closed ones too).
- In an open conversation the path is three statements and a commit, none of them repeated
  lookups: the open conversation read together with an earlier message of the same
  ``client_msg_id``, the insert, and the conversation's ``last_visitor_message_at``. The
  statements are built once (SQLAlchemy Core): building them, and the ORM's work around them,
  cost more Python time per message than running them. When the caller's session has no
  transaction in progress (a socket event's case) they run on a connection of their own, without
  the session's transaction bookkeeping; otherwise in the session's transaction.
- Group commit: messages in open conversations that arrive while another batch is being
  committed are written together, in arrival order, in one transaction on one connection (the
  same three statements each, one commit for all), and each is acknowledged only after that
  commit (``GroupCommit``). A busy server then spends one commit, one trip to SQLite's thread and
  one pooled connection per batch instead of per message, and its writers no longer wait for
  each other's locks. A message that opens a conversation, or a resend, takes the path below.
  On SQLite only: its writers take turns anyway. On PostgreSQL each message keeps a connection
  of its own, so that the round trips of different messages overlap (one connection writing a
  batch statement by statement held a busy server to 110 messages/s where it takes 250).
- The first message opens a queued conversation (seven statements with the site's welcome), unless
  the site's pre-chat form has a required field the visitor has not given
  (``chat_prechat.missing_before_chat``).
Errors: ``ValidationFailed`` (bad payload, the pre-chat form not sent), ``NotFound`` (no such visitor).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import Connection, Engine, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session

from app.models.base import utcnow
from app.models.chat import AgentProfile, ChatMessage, Conversation, ConversationStatus, SenderType, Visitor
from app.services.chat import (
    MAX_URL,
    OPEN,
    SYSTEM_PREFIX,
    WELCOME_KEY,
    message_payload,
    validate_message,
)
from app.services.chat_prechat import missing_before_chat
from app.services.errors import NotFound, ValidationFailed
from app.services.locking import write_lock
from app.services.timefmt import utc_iso


def _clip(value: object, length: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:length] or None


@dataclass
class PostedMessage:
    """What storing a visitor's message gave: its payload (the stored message's for a resend, then
    ``created`` is False), built without reading anything back, and its conversation's status."""

    created: bool
    payload: dict
    status: ConversationStatus
    opened: bool  # this message opened the conversation

    @property
    def message_id(self) -> int:
        return self.payload["id"]

    @property
    def conversation_id(self) -> int:
        return self.payload["conversation_id"]


def _earlier_visitor_message():  # noqa: ANN202 - a SELECT with the parameters visitor_id, client_msg_id
    message, theirs = ChatMessage.__table__.c, Conversation.__table__.alias("theirs")
    return select(message.id).select_from(ChatMessage.__table__.join(
        theirs, theirs.c.id == message.conversation_id)).where(
        theirs.c.visitor_id == bindparam("visitor_id"), message.client_msg_id == bindparam("client_msg_id"),
        message.sender_type == SenderType.visitor.value).limit(1)


# Built once, in SQLAlchemy Core: building a statement, and the ORM's work around it, cost more
# Python time than running it on a warm connection.
_CONVERSATION = Conversation.__table__.c
_EARLIER = _earlier_visitor_message()
# The open statuses as plain parameters (``status = ? OR …``), not an expanding ``IN``, which is
# rendered anew at every execution.
_OPEN_AND_EARLIER = select(_CONVERSATION.id, _CONVERSATION.status, _earlier_visitor_message().scalar_subquery()).where(
    _CONVERSATION.visitor_id == bindparam("visitor_id"),
    or_(*[_CONVERSATION.status == s.value for s in OPEN])).order_by(_CONVERSATION.id.desc()).limit(1)
_INSERT_MESSAGE = insert(ChatMessage.__table__).returning(ChatMessage.__table__.c.id)
_TOUCH_CONVERSATION = update(Conversation.__table__).where(_CONVERSATION.id == bindparam("conversation_id")).values(
    last_visitor_message_at=bindparam("now"))


def _stored(session: Session, message_id: int, status: ConversationStatus) -> PostedMessage:
    posted = PostedMessage(False, message_payload(session.get(ChatMessage, message_id)), status, False)
    session.commit()  # ends the read transaction
    return posted


def post_visitor_message(session: Session | scoped_session, visitor_id: int, client_msg_id: object,
                         text: object, *, entry_url: object = None,
                         requested_agent_id: object = None, engine: Engine | None = None) -> PostedMessage:
    """Store a visitor's message in their open conversation (opening one when needed). Commits.

    The path of a message in an open conversation is three statements and a commit: the open
    conversation read together with an earlier message of this visitor with this
    ``client_msg_id``, the message's insert and the conversation's ``last_visitor_message_at``.
    A new conversation records the page it started on (*entry_url*, else the visitor's current
    page) and the agent the visitor asked for (*requested_agent_id*, 指定客服: kept only when it
    names an active agent), both used by routing; the site's welcome text is stored first. A
    resend of a stored ``client_msg_id`` (in any conversation of the visitor, closed ones too)
    returns the stored message with ``created`` False. When *session* has no transaction in
    progress, a message in an open conversation is stored on a connection of its own (the same
    statements, without the session's bookkeeping); otherwise it is committed with the session's
    transaction. *engine*, the session's engine, spares a scoped session that has not begun
    in this scope from being made only to be asked. Raises ``ValidationFailed``, ``NotFound``.
    """
    client_msg_id, text = validate_message(client_msg_id, text)
    keys = {"visitor_id": visitor_id, "client_msg_id": client_msg_id}
    engine = _idle_engine(session, engine)
    grouped = _group_of(engine).post(engine, keys, text) if engine is not None \
        and engine.dialect.name == "sqlite" else _AGAIN
    if isinstance(grouped, PostedMessage):
        return grouped
    if engine is None:
        row = session.execute(_OPEN_AND_EARLIER, keys).first()
    elif grouped is not _AGAIN:  # read in the batch: a resend, or a message that opens a conversation
        row = grouped
    else:
        with engine.connect() as connection:
            row = connection.execute(_OPEN_AND_EARLIER, keys).first()
            if row is not None and row[2] is None:
                posted = _insert_in_open(connection, row[0], ConversationStatus(row[1]), client_msg_id, text, keys)
                if isinstance(posted, PostedMessage):
                    return posted
                row = (row[0], row[1], posted)  # the same resend, stored by another event at once
        # (a resend, or a message that opens a conversation: in the session, as below)
    now = utcnow()
    opened = row is None
    if row is not None:
        conversation_id, status, earlier = row
        status = ConversationStatus(status)
        if earlier is not None:
            return _stored(session, earlier, status)
    else:
        # A resend may arrive after the conversation was closed: look among all of theirs first.
        earlier = session.scalar(_EARLIER, keys)
        if earlier is not None:
            return _stored(session, earlier, ConversationStatus.closed)
        # Two first messages of one visitor at once (the page before a reload and the page after
        # it) must not open two conversations: the visitor's row is locked, then looked at again.
        # (SQLite ignores FOR UPDATE: the lock is a write, which SQLite serialises.)
        write_lock(session, Visitor, Visitor.id, visitor_id, Visitor.site_id)
        visitor = session.get(Visitor, visitor_id, populate_existing=True)
        row = session.execute(_OPEN_AND_EARLIER, keys).first()
        if row is not None:
            opened = False
            conversation_id, status, earlier = row[0], ConversationStatus(row[1]), row[2]
            if earlier is not None:
                return _stored(session, earlier, status)
        else:
            conversation = _open_conversation(session, visitor, now, entry_url, requested_agent_id)
            conversation_id, status = conversation.id, conversation.status
    try:
        message_id = session.execute(_INSERT_MESSAGE, {
            "conversation_id": conversation_id, "sender_type": SenderType.visitor.value, "client_msg_id": client_msg_id,
            "text": text, "created_at": now}).scalar_one()
        if not opened:
            session.execute(_TOUCH_CONVERSATION, {"conversation_id": conversation_id, "now": now})
        session.commit()
    except IntegrityError:  # the same resend arrived twice at once: the other one was stored
        session.rollback()
        earlier = session.scalar(_EARLIER, keys)
        if earlier is None:
            raise
        return _stored(session, earlier, status)
    payload = {"id": message_id, "conversation_id": conversation_id, "sender_type": SenderType.visitor.value,
               "sender_name": None, "text": text, "client_msg_id": client_msg_id, "created_at": utc_iso(now)}
    return PostedMessage(True, payload, status, opened)


_AGAIN = object()  # a batch that failed on a constraint: its messages are posted one by one


class _Job:
    __slots__ = ("keys", "text", "result", "error", "done")

    def __init__(self, keys: dict, text: str) -> None:
        self.keys, self.text = keys, text
        self.result: object = _AGAIN
        self.error: BaseException | None = None
        self.done = False


class GroupCommit:
    """Visitor messages in open conversations, written in batches (see the module rules).

    There is no writer task: the first message finding nobody writing writes every message queued
    by then, while the next ones queue; when its commit is done it wakes them, and one of those
    still waiting writes the next batch. Works alike with native threads and with gevent's or
    eventlet's patched ``threading``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._writing = False

    def post(self, engine: Engine, keys: dict, text: str) -> object:
        """Store the message of *keys* (``visitor_id``, ``client_msg_id``) with its batch. Returns
        the ``PostedMessage`` once committed; or the row of ``_OPEN_AND_EARLIER`` when the message
        is not one for a batch (it opens a conversation, or is a resend: the caller goes on with
        it); or ``_AGAIN`` when the batch failed on a constraint (the caller posts it alone).
        Raises what writing the batch raised (a pool time-out, a database error)."""
        job = _Job(keys, text)
        batch: list[_Job] = []
        with self._cond:
            self._queue.append(job)
            while self._writing and not job.done:
                self._cond.wait()
            if not job.done:
                self._writing = True
                batch, self._queue = self._queue, []
        if batch:
            try:
                _write_batch(engine, batch)
            finally:
                with self._cond:
                    self._writing = False
                    for item in batch:
                        item.done = True
                    self._cond.notify_all()
        if job.error is not None:
            raise job.error
        return job.result


_groups: weakref.WeakKeyDictionary[Engine, GroupCommit] = weakref.WeakKeyDictionary()
_groups_lock = threading.Lock()


def _group_of(engine: Engine) -> GroupCommit:
    group = _groups.get(engine)
    if group is None:
        with _groups_lock:
            group = _groups.setdefault(engine, GroupCommit())
    return group


def _write_batch(engine: Engine, batch: list[_Job]) -> None:
    """Write *batch* in one transaction and commit; set each job's result (or error)."""
    results: list[object] = []
    try:
        with engine.connect() as connection:
            try:
                for job in batch:
                    row = connection.execute(_OPEN_AND_EARLIER, job.keys).first()
                    if row is None or row[2] is not None:  # opens a conversation, or a resend
                        results.append(row)
                        continue
                    now = utcnow()
                    client_msg_id = job.keys["client_msg_id"]
                    message_id = connection.execute(_INSERT_MESSAGE, {
                        "conversation_id": row[0], "sender_type": SenderType.visitor.value,
                        "client_msg_id": client_msg_id, "text": job.text, "created_at": now}).scalar_one()
                    connection.execute(_TOUCH_CONVERSATION, {"conversation_id": row[0], "now": now})
                    results.append(PostedMessage(True, {
                        "id": message_id, "conversation_id": row[0], "sender_type": SenderType.visitor.value,
                        "sender_name": None, "text": job.text, "client_msg_id": client_msg_id,
                        "created_at": utc_iso(now)}, ConversationStatus(row[1]), False))
                connection.commit()
            except IntegrityError:  # a resend stored by another process at once: each goes alone
                connection.rollback()
                results = [_AGAIN] * len(batch)
    except BaseException as exc:
        for job in batch:
            job.error = exc
        raise
    for job, result in zip(batch, results, strict=True):
        job.result = result


def _idle_engine(session: Session | scoped_session, engine: Engine | None) -> Engine | None:
    """The engine to post on with a connection of its own: *session*'s (*engine* when given), when
    the session has no transaction in progress (nothing of it to see the message or to be
    committed with it); None otherwise (the message is posted in the session's transaction)."""
    if isinstance(session, scoped_session):
        if not session.registry.has():  # no session in this scope yet: none in a transaction
            return engine if engine is not None else _engine_of(session())
        session = session.registry()
    return None if session.in_transaction() else (engine if engine is not None else _engine_of(session))


def _engine_of(session: Session) -> Engine | None:
    bind = session.get_bind(clause=ChatMessage.__table__)
    return bind if isinstance(bind, Engine) else None


def _insert_in_open(connection: Connection, conversation_id: int, status: ConversationStatus, client_msg_id: str,
                    text: str, keys: dict) -> PostedMessage | int:
    """Store the message in its open conversation on *connection* and commit (two statements).
    When the same resend arrived twice at once and the other one was stored: rolled back, and
    the stored message's id is returned instead."""
    now = utcnow()
    try:
        message_id = connection.execute(_INSERT_MESSAGE, {
            "conversation_id": conversation_id, "sender_type": SenderType.visitor.value,
            "client_msg_id": client_msg_id, "text": text, "created_at": now}).scalar_one()
        connection.execute(_TOUCH_CONVERSATION, {"conversation_id": conversation_id, "now": now})
        connection.commit()
    except IntegrityError:
        connection.rollback()
        earlier = connection.scalar(_EARLIER, keys)
        if earlier is None:
            raise
        return earlier
    payload = {"id": message_id, "conversation_id": conversation_id, "sender_type": SenderType.visitor.value,
               "sender_name": None, "text": text, "client_msg_id": client_msg_id, "created_at": utc_iso(now)}
    return PostedMessage(True, payload, status, False)


def _open_conversation(session: Session, visitor: Visitor | None, now: datetime, entry_url: object,
                       requested_agent_id: object) -> Conversation:
    """A new queued conversation of *visitor*, with the site's welcome stored first (flushed, not
    committed). Raises ``NotFound`` for an unknown visitor (None), ``ValidationFailed`` naming the
    required fields of the site's pre-chat form the visitor has not given."""
    if visitor is None:
        raise NotFound({"visitor": [str(_l("No such visitor."))]})
    if missing := missing_before_chat(visitor.site, visitor):
        raise ValidationFailed(missing)
    requested = session.get(AgentProfile, requested_agent_id) if isinstance(requested_agent_id, int) \
        and not isinstance(requested_agent_id, bool) else None
    conversation = Conversation(
        site_id=visitor.site_id, visitor_id=visitor.id, status=ConversationStatus.queued, queued_at=now,
        last_visitor_message_at=now, entry_url=_clip(entry_url, MAX_URL) or visitor.current_url,
        requested_agent_id=requested.id if requested is not None and requested.active else None)
    session.add(conversation)
    session.flush()
    if visitor.site.welcome_text:  # the welcome comes first in the transcript (committed with the message)
        session.add(ChatMessage(conversation_id=conversation.id, sender_type=SenderType.system,
                                client_msg_id=SYSTEM_PREFIX + WELCOME_KEY, text=visitor.site.welcome_text,
                                created_at=now))
        session.flush()
    return conversation
