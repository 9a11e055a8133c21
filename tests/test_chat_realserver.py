"""The chat through real server processes (``run.py`` in the default async mode), driven by python-socketio clients.

Two servers share one database and, through Redis, one Socket.IO message queue: a visitor on
server A and an agent on server B talk to each other, which only works when every event crosses
processes through the queue and every piece of state is in the database.

The servers run on the run's kind of database (a SQLite file, or a ``<name>_rs`` PostgreSQL
database beside ``TEST_DATABASE_URL``). Without ``TEST_REDIS_URL`` only server A starts and the
test that needs two processes is skipped with a message; under ``CI`` the suite's PostgreSQL run
requires Redis (scripts/test.sh), so there it always runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import socketio
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.servers import (
    Events,
    Server,
    drop_database,
    events_client,
    own_database,
    server_env,
    server_redis_url,
    start,
)

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Realserver-Pass-2026"
ORIGIN = "http://127.0.0.1:5001"
WAIT = 10.0

SEED = """
import sys
from app import create_app
from app.extensions import db
from app.models.chat import AgentGroup, AgentProfile, ChatSite
from app.services import chat_sites

app = create_app()
with app.app_context():
    sm = app.appbuilder.sm
    site = chat_sites.prepare_new_site(ChatSite(name="RS", allowed_origins=sys.argv[1]))
    group = AgentGroup(site=site, name="RS group", is_default=True)
    db.session.add_all([site, group])
    for username in ("agent1", "agent2"):
        user = sm.find_user(username=username)
        profile = db.session.query(AgentProfile).filter_by(user_id=user.id).one_or_none()
        if profile is None:
            profile = AgentProfile(user_id=user.id, display_name=username, max_chats=5)
            db.session.add(profile)
        profile.groups.append(group)
    db.session.commit()
    print(site.site_key)
"""


@dataclass
class Servers:
    urls: list[str]
    engine: Engine
    site_key: str
    env: dict = field(repr=False)

    def count(self, sql: str, **params: object) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar() or 0


@pytest.fixture(autouse=True)
def _fresh_database() -> Iterator[None]:
    """These tests use the servers' database, not the unit tests' one (overrides tests/conftest.py)."""
    yield


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("realserver")
    database_url, admin = own_database(tmp, "rs")
    env = server_env(INSTANCE_PATH=str(tmp / "instance"), DATABASE_URL=database_url, DEMO_PASSWORD=PASSWORD,
                     DEMO_HOST_PORT="0")
    redis_url = server_redis_url("rs")
    if redis_url:
        env["REDIS_URL"] = redis_url
    started: list[Server] = []
    engine = create_engine(database_url)
    try:
        started.append(start(env, tmp / "server-a.log"))
        seeded = subprocess.run([sys.executable, "-c", SEED, f"{ORIGIN}\nhttp://localhost:5001"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=300)
        assert seeded.returncode == 0, seeded.stderr
        site_key = seeded.stdout.strip().splitlines()[-1]
        if redis_url:  # a second process, sharing the database and the message queue
            started.append(start(env, tmp / "server-b.log"))
        yield Servers([server.url for server in started], engine, site_key, env)
    finally:
        for server in started:
            server.stop()
        engine.dispose()
        drop_database(database_url, admin)


def visitor(url: str, site_key: str, origin: str = ORIGIN, **auth: object) -> tuple[socketio.Client, Events]:
    events = Events()
    client = events_client("/visitor", events)
    try:
        # (long-polling: the websocket-client library would add an Origin header of its own)
        client.connect(url, namespaces=["/visitor"], headers={"Origin": origin},
                       auth={"site_key": site_key, **auth}, transports=["polling"], wait_timeout=WAIT)
    except socketio.exceptions.ConnectionError as exc:
        raise socketio.exceptions.ConnectionError(f"{exc}: {events.all('connect_error')}") from None
    return client, events


_COOKIES: dict[str, str] = {}  # one sign-in per user (sign-ins are rate limited); valid on both servers


def _cookie(url: str, username: str) -> str:
    if username in _COOKIES:
        return _COOKIES[username]
    http = requests.Session()
    login = http.get(f"{url}/login/", timeout=WAIT)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login.text)
    assert token, login.text[:500]
    answer = http.post(f"{url}/login/", data={"username": username, "password": PASSWORD,
                                              "csrf_token": token.group(1)}, timeout=WAIT)
    assert "/login" not in answer.url, "the agent could not sign in"
    _COOKIES[username] = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    return _COOKIES[username]


def agent(url: str, username: str) -> tuple[socketio.Client, Events]:
    cookie = _cookie(url, username)
    events = Events()
    client = events_client("/agent", events)
    client.connect(url, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"],
                   wait_timeout=WAIT)
    # available for offers; waited for, as events of one connection may be handled out of order
    # (a later "away" must not be overtaken by this "online")
    client.call("status", {"status": "online"}, namespace="/agent", timeout=WAIT)
    return client, events


def _message(client: socketio.Client, text_: str, namespace: str = "/visitor", **extra: object) -> dict:
    return client.call("message", {"client_msg_id": str(uuid.uuid4()), "text": text_, **extra},
                       namespace=namespace, timeout=WAIT)


def test_refused_connections_write_nothing(servers: Servers) -> None:
    before = servers.count("SELECT count(*) FROM chat_visitor")
    with pytest.raises(socketio.exceptions.ConnectionError) as unknown:
        visitor(servers.urls[0], "no-such-key")
    assert "site_key" in str(unknown.value)
    # A page on a website the site does not list: refused before any namespace is reached.
    with pytest.raises(socketio.exceptions.ConnectionError):
        visitor(servers.urls[0], servers.site_key, origin="https://evil.example")
    assert servers.count("SELECT count(*) FROM chat_visitor") == before


def test_a_resent_message_is_stored_once_and_a_reconnect_resumes(servers: Servers) -> None:
    client, events = visitor(servers.urls[0], servers.site_key)
    session = events.wait_for("session")
    first = client.call("message", {"client_msg_id": "same-id-1", "text": "你好，想咨询代理记账"},
                        namespace="/visitor", timeout=WAIT)
    again = client.call("message", {"client_msg_id": "same-id-1", "text": "你好，想咨询代理记账"},
                        namespace="/visitor", timeout=WAIT)
    assert again["id"] == first["id"]
    assert servers.count("SELECT count(*) FROM chat_message WHERE client_msg_id = 'same-id-1'") == 1
    client.disconnect()

    # While the visitor is away, an agent answers twice (accepting offers or taking it from the queue).
    desk, desk_events = agent(servers.urls[-1], "agent1")
    accepted = desk.call("accept", {"conversation_id": first["conversation_id"]}, namespace="/agent", timeout=WAIT)
    assert accepted.get("conversation_id") == first["conversation_id"], accepted
    replies = [_message(desk, f"回复 {n}", namespace="/agent", conversation_id=first["conversation_id"])
               for n in (1, 2)]
    desk.disconnect()

    back, back_events = visitor(servers.urls[0], servers.site_key, visitor_token=session["visitor_token"])
    assert back_events.wait_for("session")["returning"] is True
    resent = back.call("resume", {"last_message_id": first["id"]}, namespace="/visitor", timeout=WAIT)
    texts = [m["text"] for m in back_events.all("message") if m["sender_type"] == "agent"]
    assert resent["resent"] >= 2
    assert texts[-2:] == ["回复 1", "回复 2"]
    assert {m["id"] for m in back_events.all("message")} >= {r["id"] for r in replies}
    back.disconnect()


def test_visitor_and_agent_on_different_processes_talk_through_the_queue(servers: Servers) -> None:
    if len(servers.urls) < 2:
        pytest.skip("two server processes need a shared message queue: set TEST_REDIS_URL")
    desk, desk_events = agent(servers.urls[1], "agent2")
    client, events = visitor(servers.urls[0], servers.site_key)
    events.wait_for("session")

    sent = _message(client, "跨进程的问题")
    conversation_id = sent["conversation_id"]
    # Server B hears of the new chat from server A: an offer to this agent or a request to the site's agents.
    desk_events.wait_for(("chat_offer", "chat_request"), lambda p: p.get("conversation_id") == conversation_id)
    accepted = desk.call("accept", {"conversation_id": conversation_id}, namespace="/agent", timeout=WAIT)
    assert accepted.get("conversation_id") == conversation_id, accepted
    events.wait_for("agent_joined", lambda p: p["conversation_id"] == conversation_id)

    reply = _message(desk, "这里是客服二号", namespace="/agent", conversation_id=conversation_id)
    got = events.wait_for("message", lambda m: m["id"] == reply["id"])
    assert got["text"] == "这里是客服二号" and got["sender_type"] == "agent"

    second = _message(client, "好的，谢谢")
    assert desk_events.wait_for("message", lambda m: m["id"] == second["id"])["text"] == "好的，谢谢"
    client.disconnect()
    desk.disconnect()


def test_a_chat_transferred_across_processes_is_answered_and_rated(servers: Servers) -> None:
    if len(servers.urls) < 2:
        pytest.skip("two server processes need a shared message queue: set TEST_REDIS_URL")
    agents = {"agent1": agent(servers.urls[1], "agent1"), "agent2": agent(servers.urls[0], "agent2")}
    client, events = visitor(servers.urls[0], servers.site_key)
    events.wait_for("session")
    conversation_id = _message(client, "想换个客服")["conversation_id"]
    # Whoever the router offers the chat to takes it (both hear of it: the offer or the request).
    for _name, (_, heard) in agents.items():
        heard.wait_for(("chat_offer", "chat_request"), lambda p: p.get("conversation_id") == conversation_id)
    offered = [name for name, (_, heard) in agents.items()
               if any(p.get("conversation_id") == conversation_id for p in heard.all("chat_offer"))]
    owner = offered[0] if offered else "agent1"
    other = "agent2" if owner == "agent1" else "agent1"
    (first, _), (second, second_events) = agents[owner], agents[other]
    assert first.call("accept", {"conversation_id": conversation_id}, namespace="/agent",
                      timeout=WAIT).get("conversation_id") == conversation_id
    target_id = servers.count("SELECT a.id FROM chat_agent a JOIN ab_user u ON u.id = a.user_id "
                              "WHERE u.username = :name", name=other)

    handed = first.call("transfer", {"conversation_id": conversation_id, "to_agent_id": target_id,
                                     "note": "客户问报税"}, namespace="/agent", timeout=WAIT)
    assert "error" not in handed, handed
    assert events.wait_for("transferred", lambda p: p["conversation_id"] == conversation_id)["name"]
    second_events.wait_for("transferred", lambda p: p["conversation_id"] == conversation_id)
    # The old owner may no longer write; the new one (on the other process) reaches the visitor.
    refused = _message(first, "我还在吗", namespace="/agent", conversation_id=conversation_id)
    assert "error" in refused
    second.call("resume", {"conversation_id": conversation_id, "last_message_id": 0}, namespace="/agent",
                timeout=WAIT)
    reply = _message(second, "我是客服二号", namespace="/agent", conversation_id=conversation_id)
    assert events.wait_for("message", lambda m: m["id"] == reply["id"])["sender_name"]
    # The transfer note is internal: the visitor never got it.
    assert all("客户问报税" not in m["text"] for m in events.all("message"))

    assert client.call("close", {}, namespace="/visitor", timeout=WAIT)["closed"] == conversation_id
    second_events.wait_for("closed", lambda p: p["conversation_id"] == conversation_id)
    rated = client.call("rate", {"score": 5, "comment": "很快"}, namespace="/visitor", timeout=WAIT)
    assert rated == {"conversation_id": conversation_id, "rating": 5}
    assert servers.count("SELECT rating FROM chat_conversation WHERE id = :id", id=conversation_id) == 5
    for c in (client, first, second):
        c.disconnect()


def test_queue_positions_and_an_invitation_cross_processes(servers: Servers) -> None:
    if len(servers.urls) < 2:
        pytest.skip("two server processes need a shared message queue: set TEST_REDIS_URL")
    desks = {name: agent(servers.urls[1], name) for name in ("agent1", "agent2")}
    for desk, _ in desks.values():  # nobody takes chats: visitors queue
        assert desk.call("status", {"status": "away"}, namespace="/agent", timeout=WAIT) == {"status": "away"}
    first, first_events = visitor(servers.urls[0], servers.site_key)
    second, second_events = visitor(servers.urls[0], servers.site_key)
    first_id = _message(first, "排第一")["conversation_id"]
    second_id = _message(second, "排第二")["conversation_id"]
    assert first_events.wait_for("queue", lambda p: p["conversation_id"] == first_id)["position"] == 1
    told = second_events.wait_for("queue", lambda p: p["conversation_id"] == second_id and p["position"] == 2)
    assert told["eta_seconds"] is None  # nobody online: the wait is unknown

    # agent1 comes back: the waiting chats are offered to them first in, first out, and each visitor
    # hears that their turn has come (position 0).
    desk, desk_events = desks["agent1"]
    desk.call("status", {"status": "online"}, namespace="/agent", timeout=WAIT)
    desk_events.wait_for("chat_offer", lambda p: p["conversation_id"] == second_id)
    offered = [p["conversation_id"] for p in desk_events.all("chat_offer")]
    assert offered.index(first_id) < offered.index(second_id)
    assert first_events.wait_for("queue", lambda p: p["conversation_id"] == first_id and p["position"] == 0)
    assert second_events.wait_for("queue", lambda p: p["conversation_id"] == second_id and p["position"] == 0)

    # A proactive invitation from the console on server B reaches the browsing visitor on server A.
    browsing, browsing_events = visitor(servers.urls[0], servers.site_key)
    uid = browsing_events.wait_for("session")["visitor_id"]
    browsing.call("page_view", {"url": "https://www.example.cn/pricing", "title": "价格"}, namespace="/visitor",
                  timeout=WAIT)
    seen = desk_events.wait_for("visitor_update", lambda p: p.get("uid") == uid)
    sent = desk.call("invite", {"visitor_id": seen["id"], "text": "需要帮忙吗？"}, namespace="/agent", timeout=WAIT)
    invitation = browsing_events.wait_for("invite", lambda p: p["invitation_id"] == sent["invitation_id"])
    assert invitation["text"] == "需要帮忙吗？"
    browsing.call("invite_response", {"invitation_id": sent["invitation_id"], "accepted": True},
                  namespace="/visitor", timeout=WAIT)
    answer = desk_events.wait_for("invite_response", lambda p: p["invitation_id"] == sent["invitation_id"])
    assert answer["accepted"] is True
    for client in (first, second, browsing, *(d for d, _ in desks.values())):
        client.disconnect()


def test_a_message_of_a_megabyte_and_a_nul_character_get_an_error_and_the_connection_stays(
        servers: Servers) -> None:
    client, events = visitor(servers.urls[0], servers.site_key)  # (long-polling: one HTTP request per packet)
    events.wait_for("session")
    before = servers.count("SELECT count(*) FROM chat_message")
    huge = client.call("message", {"client_msg_id": str(uuid.uuid4()), "text": "x" * 1_000_000},
                       namespace="/visitor", timeout=WAIT)
    assert huge["errors"] == {"text": ["最多 2000 个字符。"]}
    nul = client.call("message", {"client_msg_id": str(uuid.uuid4()), "text": "发票\x00抬头"}, namespace="/visitor",
                      timeout=WAIT)
    assert nul["errors"] == {"text": ["文本不能包含 NUL 字符。"]}
    beyond = client.call("resume", {"last_message_id": 2**64 + 1}, namespace="/visitor", timeout=WAIT)
    assert list(beyond["errors"]) == ["last_message_id"]
    assert [e["event"] for e in events.all("error")] == ["message", "message", "resume"]
    assert servers.count("SELECT count(*) FROM chat_message") == before
    assert client.connected
    assert "error" not in _message(client, "还在线吗？")
    client.disconnect()


def test_an_agent_note_flag_that_is_not_true_or_false_reaches_nobody(servers: Servers) -> None:
    """(and a megabyte over the console's WebSocket is refused with the length limit too)"""
    with servers.engine.begin() as conn:  # earlier tests left agent1 chats: room for one more; agent2 away
        conn.execute(text("UPDATE chat_agent SET max_chats = 50"))
        conn.execute(text("UPDATE chat_agent SET status = 'away' WHERE user_id = "
                          "(SELECT id FROM ab_user WHERE username = 'agent2')"))
    desk, _ = agent(servers.urls[-1], "agent1")
    client, events = visitor(servers.urls[0], servers.site_key)
    events.wait_for("session")
    conversation_id = _message(client, "请问开票")["conversation_id"]
    assert desk.call("accept", {"conversation_id": conversation_id}, namespace="/agent",
                     timeout=WAIT).get("conversation_id") == conversation_id
    refused = _message(desk, "内部：客户很急", namespace="/agent", conversation_id=conversation_id, note="yes")
    assert refused["errors"] == {"note": ["只能是 true 或 false。"]}
    huge = _message(desk, "y" * 1_000_000, namespace="/agent", conversation_id=conversation_id)
    assert huge["errors"] == {"text": ["最多 2000 个字符。"]}
    reply = _message(desk, "您好，请讲", namespace="/agent", conversation_id=conversation_id, note=False)
    events.wait_for("message", lambda m: m["id"] == reply["id"])
    assert all("客户很急" not in m["text"] for m in events.all("message"))
    for c in (client, desk):
        c.disconnect()


def test_presence_and_the_visitor_rate_limit_are_shared_by_the_processes(servers: Servers) -> None:
    """An agent going online or away on server B changes what a widget on server A shows; a visitor
    with tabs on both servers has one rate limit (counted in Redis), not one per process."""
    if len(servers.urls) < 2:
        pytest.skip("two server processes need a shared message queue: set TEST_REDIS_URL")
    desks = [agent(servers.urls[1], name) for name in ("agent1", "agent2")]
    for desk, _ in desks:
        desk.call("status", {"status": "away"}, namespace="/agent", timeout=WAIT)
    client, events = visitor(servers.urls[0], servers.site_key)
    session = events.wait_for("session")
    desk, _ = desks[1]
    desk.call("status", {"status": "online"}, namespace="/agent", timeout=WAIT)
    assert events.wait_for("availability", lambda p: p["online"] is True)
    desk.call("status", {"status": "away"}, namespace="/agent", timeout=WAIT)
    assert events.wait_for("availability", lambda p: p["online"] is False and
                           len([e for e in events.all("availability") if e["online"] is False]) >= 1)

    # The same visitor in a second tab, on the other server: both tabs count against one limit.
    other, _other_events = visitor(servers.urls[1], servers.site_key, visitor_token=session["visitor_token"])
    accepted = refused = 0
    for n in range(80):
        tab = (client, other)[n % 2]
        ack = tab.call("message", {"client_msg_id": str(uuid.uuid4()), "text": f"第 {n} 条"}, namespace="/visitor",
                       timeout=WAIT)
        if "retry_after" in ack:
            refused += 1
        else:
            accepted += 1
    # CHAT_VISITOR_RATE is 30 per 10 s (the sliding window may let a few of the last window's share
    # through at a window's edge); counted per process, the two tabs would have had 60 and more.
    assert refused > 0 and accepted <= 40, (accepted, refused)
    for c in (client, other, *(d for d, _ in desks)):
        c.disconnect()
