"""Every socket event of the widget and of the agent console, sent random payloads (wrong types,
huge integers, NUL characters, long text, nested junk): the server never fails (no handler error
in the log, the connection stays up), an event answers with an object (or not at all, as typing
does), a payload with a field of the wrong type for its event (a flag that is not true or false,
an id beyond 64 bits, a text too long or holding NUL) is refused, and an event that is refused
writes nothing."""

from __future__ import annotations

import logging

import pytest
from flask_appbuilder import Model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, literal, select, union_all

from app.extensions import db, socketio
from app.models.chat import AgentProfile, AgentStatus, ChatSite, Conversation, ConversationStatus, Visitor
from app.services import chat_sites
from app.sockets.agent import AgentNamespace
from app.sockets.payloads import SCHEMAS
from app.sockets.visitor import VisitorNamespace
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"
EXAMPLES = 10  # random payloads per event, after the sweep of hostile fields
KEYS = ["conversation_id", "text", "client_msg_id", "status", "score", "comment", "visitor_id", "agent_id",
        "to_agent_id", "to_group_id", "note", "last_message_id", "invitation_id", "accepted", "url", "title",
        "referrer", "page_view_id", "email", "name", "phone", "message", "typing", "before_id", "limit"]
WRITTEN = ["chat_message", "chat_conversation", "chat_visitor", "chat_page_view", "chat_invitation",
           "chat_leave_message", "chat_participant", "chat_team_message", "chat_transfer", "chat_offer",
           "chat_attachment", "chat_agent", "audit_log"]

HOSTILE = [None, True, 1.5, -1, 2**31, 2**63, 2**64 + 1, -(2**64 + 1), "", "\x00", "a\x00b", "²", "x" * 70_000,
           "yes", "true", 0, [1, [2]], {"$gt": 1}]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["\x00", "a\x00b", "x" * 70_000, "²", "9" * 30, "<script>alert(1)</script>", "", " "]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)
payloads = st.one_of(values, st.dictionaries(st.sampled_from(KEYS), values, max_size=6))


def _events(namespace: type) -> list[str]:
    return sorted(name[3:] for name in dir(namespace)
                  if name.startswith("on_") and name not in ("on_connect", "on_disconnect"))


def _rows() -> dict[str, int]:
    tables = Model.metadata.tables
    query = union_all(*(select(literal(name), select(func.count()).select_from(tables[name]).scalar_subquery())
                        for name in WRITTEN))
    db.session.expire_all()
    return dict(db.session.execute(query).all())


@pytest.fixture
def chat(app, login_as, user_id):
    site = chat_sites.prepare_new_site(ChatSite(name="模糊测试站点", allowed_origins=ORIGIN))
    db.session.add(site)
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小李", max_chats=3, status=AgentStatus.online)
    db.session.add(profile)
    db.session.commit()
    widget = FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                               auth={"site_key": site.site_key}, flask_test_client=app.test_client())
    [session] = received(widget, "session", "/visitor", 2.0)
    visitor = db.session.scalar(select(Visitor).where(Visitor.uid == session["visitor_id"]))
    conversation = Conversation(site_id=site.id, visitor_id=visitor.id, agent_id=profile.id,
                                status=ConversationStatus.active)
    db.session.add(conversation)
    db.session.commit()
    console = FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as("agent"))
    assert console.is_connected("/agent")
    # A payload every event would take as well-formed, so that one hostile field reaches deep.
    base = {"conversation_id": conversation.id, "text": "您好", "client_msg_id": "fuzz-1", "status": "online",
            "score": 5, "comment": "很好", "last_message_id": 0, "url": ORIGIN + "/pricing", "title": "价格",
            "referrer": "https://www.baidu.com/s?wd=代账", "email": "fuzz@example.com", "name": "张三",
            "phone": "13800000000", "message": "请回电", "accepted": True, "note": False, "typing": True,
            "agent_id": profile.id, "to_agent_id": profile.id, "visitor_id": visitor.id}
    return {"/visitor": widget, "/agent": console, "base": base}


@pytest.mark.parametrize("namespace, event", [("/visitor", e) for e in _events(VisitorNamespace)]
                         + [("/agent", e) for e in _events(AgentNamespace)])
def test_random_payloads_never_break_an_event(chat, caplog, namespace, event):
    client = chat[namespace]
    caplog.set_level(logging.ERROR, logger="app.sockets")

    base = chat["base"]
    near_valid = st.builds(lambda key, value: {**base, key: value}, st.sampled_from(sorted(base)), values)

    schema = SCHEMAS[(namespace, event)]

    def malformed(payload: object) -> bool:
        """Whether the guard must refuse *payload*: a field of the event's schema of the wrong type."""
        return isinstance(payload, dict) and any(
            payload.get(name) is not None and field.problem(payload[name]) is not None
            for name, field in schema.items())

    def check(payload: object) -> None:
        before = _rows()
        ack = client.emit(event, payload, namespace=namespace, callback=True)
        client.get_received(namespace)  # drop what the event sent
        assert client.is_connected(namespace), f"{event} {payload!r:.200} dropped the connection"
        failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not failures, f"{event} {payload!r:.200}: {failures}"
        assert ack in (None, []) or isinstance(ack, dict), f"{event} answered {ack!r:.200}"  # typing: no ack
        if malformed(payload):
            assert isinstance(ack, dict) and "error" in ack, f"{event} took the malformed {payload!r:.200}"
        if isinstance(ack, dict) and "error" in ack:
            assert _rows() == before, f"refused {event} {payload!r:.200} wrote rows"

    for key in sorted(base):  # each field of a well-formed payload replaced by each hostile value
        for value in HOSTILE:
            check({**base, key: value})

    @given(payload=st.one_of(payloads, near_valid))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def send(payload: object) -> None:
        check(payload)

    send()
