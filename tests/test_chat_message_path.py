"""The chat's per-message path: a fixed, small number of SQL statements per visitor message; a
message reaches only its conversation's agents (the site's other agents hear only of new or queued
chats); a new chat does not tell every waiting visitor; a busy database refuses a message with a
retryable error and stores nothing; an unforeseen failure is logged and answered, never silent; the
visitor rate limit costs the same whatever the number of visitors."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select
from werkzeug.test import EnvironBuilder

from app.extensions import db, socketio
from app.models.base import utcnow
from app.models.chat import (
    AgentProfile,
    AgentStatus,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationStatus,
    Visitor,
)
from app.services import chat_post, chat_sites
from app.services.timefmt import utc_iso
from app.sockets.fanout import fanout
from app.sockets.guard import MATCH_KEY, EventContext
from app.sockets.ratelimit import LocalWindowCounter
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"
MESSAGE_STATEMENTS = 3  # the open conversation (with an earlier resend), the insert, the conversation's update
# no open conversation, an earlier message of this id in a closed one, the visitor's lock (a
# write, so that SQLite serialises it too) and the visitor, no open conversation still, the new
# conversation, the site (its welcome), the welcome's insert, the message's insert
OPENING_STATEMENTS = 9


@pytest.fixture
def site(app):
    site = chat_sites.prepare_new_site(ChatSite(name="演示站点", allowed_origins=ORIGIN, auto_reply_seconds=0,
                                                welcome_text="欢迎咨询"))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def make_agent(app, user_id):
    def _make(username: str, *, status: AgentStatus = AgentStatus.online, max_chats: int = 3) -> AgentProfile:
        agent = AgentProfile(user_id=user_id(username), display_name=f"客服{username}", max_chats=max_chats,
                             status=status, last_seen_at=utcnow())
        db.session.add(agent)
        db.session.commit()
        return agent

    return _make


@pytest.fixture
def unlimited(app):
    app.config["CHAT_VISITOR_RATE"] = ""  # fifty messages in a row; the limit is tested on its own below


def _visitor(app, site):
    return FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                             auth={"site_key": site.site_key}, flask_test_client=app.test_client())


def _console(app, login_as, username):
    return FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as(username))


@contextmanager
def statements_of_this_thread(engine):
    """The SQL statements this thread sends (deferred work runs on another one)."""
    me, seen = threading.get_ident(), []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        if threading.get_ident() == me:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _send(client, client_msg_id, text="你好"):
    return client.emit("message", {"client_msg_id": client_msg_id, "text": text}, namespace="/visitor",
                       callback=True)


def test_a_visitor_message_costs_a_fixed_number_of_statements_from_the_first_to_the_fiftieth(
        app, site, make_agent, login_as, unlimited):
    make_agent("agent", max_chats=5)
    console = _console(app, login_as, "agent")
    widget = _visitor(app, site)
    with statements_of_this_thread(db.engine) as seen:
        first = _send(widget, "m-1")
    assert len(seen) == OPENING_STATEMENTS, "\n".join(s[:90] for s in seen)
    [offer] = received(console, "chat_offer", "/agent", 5)
    assert console.emit("accept", {"conversation_id": offer["conversation_id"]}, namespace="/agent",
                        callback=True)["conversation_id"] == first["conversation_id"]
    counts = []
    for n in range(2, 51):
        with statements_of_this_thread(db.engine) as seen:
            ack = _send(widget, f"m-{n}", f"第{n}条")
        assert ack["conversation_id"] == first["conversation_id"]
        counts.append(len(seen))
    assert counts == [MESSAGE_STATEMENTS] * 49
    texts = [m["text"] for m in received(console, "message", "/agent", 5)]
    assert texts[-1] == "第50条" and len([t for t in texts if t.startswith("第")]) == 49
    assert db.session.scalar(select(func.count()).select_from(ChatMessage).where(
        ChatMessage.conversation_id == first["conversation_id"], ChatMessage.sender_type == "visitor")) == 50
    # a resend is answered from the store: no new row, the same id
    with statements_of_this_thread(db.engine) as seen:
        assert _send(widget, "m-50", "第50条")["id"] == ack["id"]
    assert db.session.scalar(select(func.count()).select_from(ChatMessage).where(
        ChatMessage.client_msg_id == "m-50")) == 1


def test_a_message_is_stored_alike_whether_the_callers_session_is_idle_or_in_a_transaction(app, site):
    visitor = Visitor(site_id=site.id, uid=chat_sites.new_visitor_uid(), online=True)
    db.session.add(visitor)
    db.session.commit()
    visitor_id = visitor.id
    first = chat_post.post_visitor_message(db.session, visitor_id, "t-1", "第一条")
    assert first.opened and not db.session().in_transaction()
    with statements_of_this_thread(db.engine) as seen:  # an idle session: a connection of its own
        idle = chat_post.post_visitor_message(db.session, visitor_id, "t-2", "第二条")
    assert len(seen) == MESSAGE_STATEMENTS and idle.created and not idle.opened
    assert utc_iso(db.session.get(Conversation, first.conversation_id).last_visitor_message_at) == \
        idle.payload["created_at"]
    assert db.session().in_transaction()  # the read above began one: the message is committed with it
    with statements_of_this_thread(db.engine) as seen:
        busy = chat_post.post_visitor_message(db.session, visitor_id, "t-3", "第三条")
    assert len(seen) == MESSAGE_STATEMENTS and busy.created and not db.session().in_transaction()
    assert utc_iso(db.session.get(Conversation, first.conversation_id).last_visitor_message_at) == \
        busy.payload["created_at"]
    for posted in (idle, busy):  # a resend returns the stored message, from an idle session or not
        again = chat_post.post_visitor_message(db.session, visitor_id, posted.payload["client_msg_id"], "x")
        assert not again.created and again.payload == posted.payload
        db.session.get(Conversation, first.conversation_id)
    db.session.rollback()
    assert list(db.session.scalars(select(ChatMessage.text).where(
        ChatMessage.conversation_id == first.conversation_id).order_by(ChatMessage.id))) == [
        "欢迎咨询", "第一条", "第二条", "第三条"]


def test_messages_that_arrive_during_a_commit_are_stored_together_each_acknowledged_after_the_commit(app, site):
    """Five visitors post at once; the first message's commit is held until the other four wait
    behind it: those four are written in one transaction with one commit, each gets its own id,
    and none is answered before its batch is committed. (SQLite's case: on PostgreSQL each message
    has a connection of its own, so that the round trips of different messages overlap.)"""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("group commit is SQLite's")
    visitor_ids = []
    for n in range(5):
        visitor = Visitor(site_id=site.id, uid=chat_sites.new_visitor_uid(), online=True)
        db.session.add(visitor)
        db.session.commit()
        visitor_ids.append(visitor.id)
        chat_post.post_visitor_message(db.session, visitor.id, f"open-{n}", "开始")  # opens the conversation
    db.session.remove()
    group = chat_post._group_of(db.engine)  # noqa: SLF001
    commits, answered, hold, first_committing = [], {}, threading.Event(), threading.Event()

    def on_commit(connection):  # noqa: ANN001
        commits.append(len(answered))  # how many were answered when this commit began
        if len(commits) == 1:
            first_committing.set()
            hold.wait(10)

    def post(n: int) -> None:
        with app.app_context():
            answered[n] = chat_post.post_visitor_message(db.session, visitor_ids[n], f"g-{n}", f"第{n}条")
            db.session.remove()

    event.listen(db.engine, "commit", on_commit)
    try:
        first = threading.Thread(target=post, args=(0,))
        first.start()
        assert first_committing.wait(10)
        others = [threading.Thread(target=post, args=(n,)) for n in range(1, 5)]
        for thread in others:
            thread.start()
        deadline = threading.Event()
        for _ in range(100):  # the four queue behind the held commit
            with group._cond:  # noqa: SLF001
                if len(group._queue) == 4:  # noqa: SLF001
                    break
            deadline.wait(0.05)
        assert answered == {}  # nobody is answered while the first commit is held
        hold.set()
        for thread in [first, *others]:
            thread.join(10)
    finally:
        hold.set()
        event.remove(db.engine, "commit", on_commit)
    assert commits == [0, 1]  # two commits for five messages: the first alone, then the other four
    assert sorted(answered) == [0, 1, 2, 3, 4] and all(p.created for p in answered.values())
    assert len({p.message_id for p in answered.values()}) == 5
    stored = dict(db.session.execute(select(ChatMessage.client_msg_id, ChatMessage.id).where(
        ChatMessage.client_msg_id.like("g-%"))).all())
    assert stored == {f"g-{n}": answered[n].message_id for n in range(5)}


def test_only_the_conversations_agents_hear_its_messages_and_only_new_or_queued_chats_reach_the_site(
        app, site, make_agent, login_as, unlimited):
    make_agent("agent", max_chats=1)
    make_agent("manager", status=AgentStatus.away)  # serves the site, is never offered a chat
    mine, other = _console(app, login_as, "agent"), _console(app, login_as, "manager")
    first = _visitor(app, site)
    opened = _send(first, "a-1", "第一位")
    [offer] = received(mine, "chat_offer", "/agent", 5)
    mine.emit("accept", {"conversation_id": offer["conversation_id"]}, namespace="/agent", callback=True)
    assert [r["conversation_id"] for r in received(other, "chat_request", "/agent", 5)] == [
        opened["conversation_id"]]  # a new chat: every agent of the site may take it
    fanout.idle()
    other.get_received("/agent")
    mine.get_received("/agent")

    _send(first, "a-2", "只给我的客服")
    _send(first, "a-3", "还是只给我的客服")
    assert [m["text"] for m in received(mine, "message", "/agent", 5)][-1] == "还是只给我的客服"
    fanout.idle()
    heard = other.get_received("/agent")
    assert [e for e in heard if e["name"] in ("message", "chat_request")] == []

    second = _visitor(app, site)  # the owner is at their limit: this one waits in the queue
    queued = _send(second, "b-1", "排队中")
    assert received(other, "chat_request", "/agent", 5)[-1] == {"conversation_id": queued["conversation_id"]}
    fanout.idle()
    other.get_received("/agent")
    _send(second, "b-2", "还在排队")
    assert received(other, "chat_request", "/agent", 5) == [{"conversation_id": queued["conversation_id"]}]
    assert [e for e in other.get_received("/agent") if e["name"] == "message"] == []
    assert db.session.get(Conversation, queued["conversation_id"]).status == ConversationStatus.queued


def test_a_new_chat_tells_only_its_own_visitor_its_place_in_the_queue(app, site, make_agent, login_as):
    make_agent("agent", status=AgentStatus.away)  # nobody takes chats: they all wait
    console = _console(app, login_as, "agent")
    waiting = [_visitor(app, site) for _ in range(3)]
    for n, widget in enumerate(waiting, start=1):
        _send(widget, f"w-{n}")
        assert received(widget, "queue", "/visitor", 5)[-1]["position"] == n
    fanout.idle()
    for widget in waiting:
        widget.get_received("/visitor")
    console.get_received("/agent")

    newcomer = _visitor(app, site)
    ack = _send(newcomer, "n-1")
    assert received(newcomer, "queue", "/visitor", 5) == [
        {"conversation_id": ack["conversation_id"], "position": 4, "eta_seconds": None}]
    fanout.idle()
    for widget in waiting:
        assert [e for e in widget.get_received("/visitor") if e["name"] == "queue"] == []
    updates = [e["args"][0] for e in console.get_received("/agent") if e["name"] == "queue_update"]
    assert updates == [{"conversation_id": ack["conversation_id"], "status": "queued", "position": 4}]


@pytest.fixture
def small_pool_app(second_app):
    """A second application on the same database whose pool holds one connection and gives up
    waiting for it after 0.2 s."""
    busy = second_app(SOCKETIO_MESSAGE_QUEUE=None, CHAT_VISITOR_RATE="",
                      SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2})
    yield busy
    assert fanout.idle(10)


def test_a_saturated_pool_refuses_a_message_with_a_retryable_error_and_stores_nothing(site, small_pool_app):
    widget = FreshSocketClient(small_pool_app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                               auth={"site_key": site.site_key}, flask_test_client=small_pool_app.test_client())
    assert widget.is_connected("/visitor")
    with small_pool_app.app_context():
        held = db.engine.connect()  # another request holds the only connection
        try:
            refused = _send(widget, "p-1", "数据库忙时发送")
        finally:
            held.close()
    assert refused["retry_after"] > 0 and refused["error"]
    [error] = received(widget, "error", "/visitor", 2)
    assert error["event"] == "message" and error["retry_after"] == refused["retry_after"]
    assert db.session.scalar(select(func.count()).select_from(ChatMessage).where(
        ChatMessage.client_msg_id == "p-1")) == 0
    stored = _send(widget, "p-1", "数据库忙时发送")  # the widget's outbox sends it again: now it is stored
    assert isinstance(stored["id"], int)
    assert db.session.scalar(select(ChatMessage.text).where(ChatMessage.client_msg_id == "p-1")) == "数据库忙时发送"


def test_past_the_events_in_progress_limit_a_message_is_refused_at_once_and_stored_later(
        app, site, monkeypatch, unlimited):
    app.config["CHAT_MAX_INFLIGHT"] = 1
    inside, release = threading.Event(), threading.Event()
    real = chat_post.post_visitor_message

    def slow(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the first message holds its place
        if kwargs.get("entry_url") is None and args[2] == "slow-1":
            inside.set()
            release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(chat_post, "post_visitor_message", slow)
    first, second = _visitor(app, site), _visitor(app, site)
    acks = {}
    waiting = threading.Thread(target=lambda: acks.setdefault("first", _send(first, "slow-1", "慢")))
    waiting.start()
    try:
        assert inside.wait(10)
        refused = _send(second, "fast-1", "快")
    finally:
        release.set()
        waiting.join(10)
    assert refused["retry_after"] > 0 and "id" not in refused
    assert db.session.scalar(select(func.count()).select_from(ChatMessage).where(
        ChatMessage.client_msg_id == "fast-1")) == 0
    assert isinstance(acks["first"]["id"], int)
    assert isinstance(_send(second, "fast-1", "快")["id"], int)  # sent again: now taken


def test_an_unforeseen_failure_is_logged_with_its_traceback_and_answered(app, site, monkeypatch, caplog):
    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ARG001
        raise RuntimeError("disk on fire")

    widget = _visitor(app, site)
    monkeypatch.setattr(chat_post, "post_visitor_message", broken)
    with caplog.at_level(logging.ERROR, logger="app.sockets.guard"):
        ack = _send(widget, "x-1")
    assert ack["error"] and "retry_after" not in ack
    assert received(widget, "error", "/visitor", 2)[-1]["event"] == "message"
    [record] = [r for r in caplog.records if r.name == "app.sockets.guard"]
    assert record.exc_info is not None and "disk on fire" in str(record.exc_info[1])


def test_the_rate_limit_allows_the_limit_per_window_and_forgets_old_windows_without_a_walk():
    now = [0.0]
    counter = LocalWindowCounter(clock=lambda: now[0])
    assert [counter.hit("v", 3, 10) for _ in range(4)] == [True, True, True, False]
    now[0] = 15.0  # half of the previous window still counts: 3 × 0.5 + 1 ≤ 3
    assert [counter.hit("v", 3, 10) for _ in range(2)] == [True, False]
    for n in range(10_000):
        counter.hit(f"visitor-{n}", 3, 10)
    now[0] = 35.0  # two windows later every one of them is forgotten at once
    assert counter.hit("v", 3, 10) and len(counter) == 1


def test_a_socket_events_context_reuses_its_connections_url_match(app):
    environ = EnvironBuilder(path="/socket.io/", query_string="EIO=4&transport=websocket").get_environ()
    with app.request_context(dict(environ)) as plain:
        expected = (plain.request.url_rule, plain.request.view_args, repr(plain.request.routing_exception))
    for _ in range(2):  # the first event matches and keeps the match; the next one reuses it
        with EventContext(app, environ) as context:
            request = context.request
            assert (request.url_rule, request.view_args, repr(request.routing_exception)) == expected
        assert MATCH_KEY in environ


def test_the_default_limit_of_events_in_progress_is_a_second_of_work_on_green_sqlite_and_twice_the_pool_else(
        app, monkeypatch):
    from app.sockets.guard import GREEN_INFLIGHT, Admission

    monkeypatch.setitem(app.config, "CHAT_MAX_INFLIGHT", 0)
    monkeypatch.setitem(app.config, "SQLALCHEMY_ENGINE_OPTIONS", {"pool_size": 10, "max_overflow": 20})
    monkeypatch.setitem(app.config, "SQLALCHEMY_DATABASE_URI", "sqlite:///desk.db")
    for mode in ("gevent", "eventlet"):
        monkeypatch.setitem(app.config, "ASYNC_MODE", mode)
        assert Admission.limit() == GREEN_INFLIGHT == 500
    monkeypatch.setitem(app.config, "ASYNC_MODE", "threading")
    assert Admission.limit() == 60
    monkeypatch.setitem(app.config, "ASYNC_MODE", "gevent")
    monkeypatch.setitem(app.config, "SQLALCHEMY_DATABASE_URI", "postgresql+psycopg://desk@db/desk")
    assert Admission.limit() == 60  # events wait for the pool's connections: the pool is the bound
    monkeypatch.setitem(app.config, "CHAT_MAX_INFLIGHT", 7)
    assert Admission.limit() == 7


def test_two_first_messages_of_one_visitor_at_once_open_one_conversation(app, site):
    """The page before a reload and the page after it send the visitor's first messages at the
    same moment: one conversation is opened, and both messages are in it (12 rounds). The
    visitor's row is locked before the second look (a row lock on PostgreSQL, the write lock on
    SQLite)."""
    site_id = site.id
    for round_ in range(12):
        visitor = Visitor(site_id=site_id, uid=chat_sites.new_visitor_uid(), online=True)
        db.session.add(visitor)
        db.session.commit()
        visitor_id = visitor.id
        db.session.remove()
        start, results = threading.Barrier(2), {}

        def post(n: int, visitor_id: int = visitor_id, start: threading.Barrier = start,
                 results: dict = results) -> None:
            with app.app_context():
                start.wait(10)
                results[n] = chat_post.post_visitor_message(db.session, visitor_id, f"r{n}", f"第{n}条")
                db.session.remove()

        threads = [threading.Thread(target=post, args=(n,)) for n in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        conversations = db.session.scalars(select(Conversation.id).where(Conversation.visitor_id == visitor_id)).all()
        assert len(conversations) == 1, f"round {round_}: {len(conversations)} conversations"
        texts = db.session.scalars(select(ChatMessage.text).where(ChatMessage.conversation_id == conversations[0])
                                   .order_by(ChatMessage.id)).all()
        assert texts[0] == "欢迎咨询" and sorted(texts[1:]) == ["第1条", "第2条"]
        assert sorted(r.opened for r in results.values()) == [False, True]
