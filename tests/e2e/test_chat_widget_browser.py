"""The chat widget in Chromium on another origin, answered by an agent over ``/agent``.

The host pages are the demo host page (``app.demo_host``) served on free loopback ports by this
module (the live server's own demo host port may be taken by another run); the demo site is told
to allow one of them for the duration of the module, the other stays unknown to it. The agent is
``agent1`` signed in through the login form and driven from Python with a python-socketio client
carrying that session cookie.
"""

from __future__ import annotations

import base64
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import insert, literal, select, text
from werkzeug.serving import make_server

from app.demo_host import make_demo_host
from app.services.demo_chat import DEMO_SITE_NAME

pytestmark = pytest.mark.usefixtures("no_chat_left_open")

WIDGET = "#bookkeeping-desk-chat"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
WAIT = 15.0


@pytest.fixture(scope="module")
def site_key(live_server: Any) -> str:
    key = live_server.scalar(text("SELECT site_key FROM chat_site WHERE name = :name"), name=DEMO_SITE_NAME)
    assert key, "the demo chat site was not seeded"
    return key


@pytest.fixture(scope="module")
def hosts(live_server: Any, site_key: str) -> Iterator[dict[str, str]]:
    """Origins serving demo host pages: ``allowed`` and ``unknown_key`` (allowed by the demo site,
    the latter embedding a site key that does not exist) and ``other`` (not allowed)."""
    servers, origins = [], {}
    for name, key in (("allowed", site_key), ("unknown_key", "no-such-site-key"), ("other", site_key)):
        server = make_server("127.0.0.1", 0, make_demo_host(live_server.url, key), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        origins[name] = f"http://127.0.0.1:{server.server_port}"
    update = text("UPDATE chat_site SET allowed_origins = :o WHERE site_key = :k")
    before = live_server.scalar(text("SELECT allowed_origins FROM chat_site WHERE site_key = :k"), k=site_key)
    with live_server.engine.begin() as conn:
        conn.execute(update, {"o": f"{before}\n{origins['allowed']}\n{origins['unknown_key']}", "k": site_key})
    yield origins
    with live_server.engine.begin() as conn:
        conn.execute(update, {"o": before, "k": site_key})
    for server in servers:
        server.shutdown()


@pytest.fixture
def roomy(live_server: Any) -> Iterator[None]:
    """agent1 may hold 50 chats for the test: earlier tests of the run leave chats open or offered,
    and at the demo's limit of 5 a new chat would wait in the queue (or show the offline form)."""
    change = text("UPDATE chat_agent SET max_chats = :n "
                  "WHERE user_id = (SELECT id FROM ab_user WHERE username = 'agent1')")
    before = live_server.scalar(text("SELECT max_chats FROM chat_agent "
                                     "WHERE user_id = (SELECT id FROM ab_user WHERE username = 'agent1')"))
    with live_server.engine.begin() as conn:
        conn.execute(change, {"n": 50})
    yield
    with live_server.engine.begin() as conn:
        conn.execute(change, {"n": before})


class Agent:
    """A console connection of a signed-in agent: every event it receives is kept in order."""

    def __init__(self, url: str, cookie: str) -> None:
        import socketio

        self.events: queue.Queue = queue.Queue()
        self.seen: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self._record, namespace="/agent")
        self.client.connect(url, namespaces=["/agent"], headers={"Cookie": cookie}, wait_timeout=WAIT)

    def _record(self, event: str, data: Any = None) -> None:
        self.events.put((event, data))

    def call(self, event: str, data: dict) -> Any:
        return self.client.call(event, data, namespace="/agent", timeout=WAIT)

    def wait_for(self, predicate: Callable[[str, Any], bool]) -> tuple[str, Any]:
        """The first event (seen before or arriving within the wait) that *predicate* accepts."""
        with self.lock:
            for item in self.seen:
                if predicate(*item):
                    return item
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                item = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            with self.lock:
                self.seen.append(item)
            if predicate(*item):
                return item
        raise AssertionError(f"no such event within {WAIT} s; got {[e for e, _ in self.seen]}")

    def close(self) -> None:
        try:
            self.call("status", {"status": "offline"})
        finally:
            self.client.disconnect()


@pytest.fixture
def agent(live_server: Any, sign_in: Callable[[str], dict]) -> Iterator[Agent]:
    host = urlsplit(live_server.url).hostname
    cookies = [c for c in sign_in("agent1")["cookies"] if c["domain"].lstrip(".") == host]
    console = Agent(live_server.url, "; ".join(f"{c['name']}={c['value']}" for c in cookies))
    assert console.call("status", {"status": "online"}) == {"status": "online"}
    yield console
    console.close()


@pytest.fixture
def visitor(open_page: Callable[..., Any], hosts: dict[str, str]) -> Callable[[str], Any]:
    """``visitor("allowed")``: a signed-out tab on the home page of that demo host."""

    def _open(which: str = "allowed") -> Any:
        tab = open_page(None)
        tab.goto(f"{hosts[which]}/")
        return tab

    return _open


def _bubbles(tab: Any, words: str) -> Any:
    return tab.locator(f"{WIDGET} .msg .bubble", has_text=words)


def _settled(tab: Any, words: str) -> Any:
    return tab.locator(f"{WIDGET} .msg[data-id]:not(.pending) .bubble", has_text=words)


def _send(tab: Any, words: str) -> None:
    tab.locator(f"{WIDGET} .compose textarea").fill(words)
    tab.locator(f"{WIDGET} .compose textarea").press("Enter")


def _stored(live_server: Any, words: str) -> int:
    return live_server.scalar(text("SELECT count(*) FROM chat_message WHERE text = :t"), t=words)


def test_visitor_chats_with_an_agent_resumes_after_reload_and_delivers_what_was_typed_offline(
        visitor: Callable[..., Any], agent: Agent, live_server: Any, watch: Any) -> None:
    from playwright.sync_api import expect

    tab = visitor()
    launcher = tab.locator(f"{WIDGET} .launcher")
    expect(launcher).to_be_visible(timeout=WAIT * 1000)
    launcher.click()
    expect(tab.locator(f"{WIDGET} .welcome")).to_contain_text("欢迎来到示范代账")
    expect(tab.locator(f"{WIDGET} .banner")).to_contain_text("温馨提示")

    question = f"你好，<b>想问代账价格</b> {uuid.uuid4().hex[:6]}"
    _send(tab, question)
    expect(_settled(tab, question)).to_have_count(1)
    assert _stored(live_server, question) == 1

    event, data = agent.wait_for(lambda e, d: e in ("chat_offer", "chat_request") and isinstance(d, dict))
    conversation_id = data["conversation_id"]
    accepted = agent.call("accept", {"conversation_id": conversation_id})
    assert [m["text"] for m in accepted["messages"] if m["sender_type"] == "visitor"] == [question]
    expect(tab.locator(f"{WIDGET} .msg.system")).to_contain_text(["客服一号"])

    answer = "<i>您好</i>，小规模纳税人每月 300 元起。"
    ack = agent.call("message", {"conversation_id": conversation_id, "client_msg_id": uuid.uuid4().hex,
                                 "text": answer})
    assert ack["id"]
    reply = _bubbles(tab, answer)
    expect(reply).to_have_count(1)
    assert reply.inner_text() == answer  # shown as text: no <i> element made of it
    assert tab.locator(f"{WIDGET} .bubble i, {WIDGET} .bubble b").count() == 0
    expect(tab.locator(f"{WIDGET} .msg:not(.mine) .meta", has_text="客服一号")).to_have_count(1)

    # An image goes over HTTP to the desk and shows inline for both sides.
    tab.locator(f"{WIDGET} .compose input[type=file]").set_input_files(
        {"name": "发票.png", "mimeType": "image/png", "buffer": base64.b64decode(PNG)})
    image = tab.locator(f"{WIDGET} .msg.mine .bubble img")
    expect(image).to_have_count(1)
    assert "/chat/files/" in image.get_attribute("src") and "?k=" in image.get_attribute("src")  # a file link
    tab.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=image.element_handle())
    event, data = agent.wait_for(lambda e, d: e == "message" and isinstance(d, dict) and d.get("attachment"))
    assert data["attachment"]["filename"] == "发票.png"

    # Reload: the same visitor, the conversation's history back in the panel (still open).
    tab.reload()
    expect(_settled(tab, question)).to_have_count(1)
    expect(_bubbles(tab, answer)).to_have_count(1)
    expect(tab.locator(f"{WIDGET} .bubble img")).to_have_count(1)

    # Offline: the message waits in the outbox and is delivered once after the connection is back.
    tab.context.set_offline(True)
    expect(tab.locator(f"{WIDGET} .status")).to_be_visible()
    offline_words = f"断网时写的消息 {uuid.uuid4().hex[:6]}"
    _send(tab, offline_words)
    expect(tab.locator(f"{WIDGET} .msg.pending .bubble", has_text=offline_words)).to_have_count(1)
    assert _stored(live_server, offline_words) == 0
    tab.context.set_offline(False)
    agent.wait_for(lambda e, d: e == "message" and isinstance(d, dict) and d.get("text") == offline_words)
    expect(_settled(tab, offline_words)).to_have_count(1)
    expect(_bubbles(tab, offline_words)).to_have_count(1)
    assert _stored(live_server, offline_words) == 1
    assert tab.evaluate("Object.keys(localStorage).filter(k => k.endsWith(':outbox'))"
                        ".map(k => JSON.parse(localStorage[k]).length)") == [0]

    # After another reload nothing is sent twice and every message shows once.
    tab.reload()
    expect(_settled(tab, offline_words)).to_have_count(1)
    expect(_settled(tab, question)).to_have_count(1)
    assert _stored(live_server, offline_words) == 1
    assert not [p for p in watch.problems() if p.startswith("page error")]


def test_messages_sent_faster_than_the_limit_wait_in_the_outbox_and_all_arrive_once(
        visitor: Callable[..., Any], agent: Agent, live_server: Any) -> None:
    from playwright.sync_api import expect

    tab = visitor()
    tab.locator(f"{WIDGET} .launcher").click(timeout=WAIT * 1000)
    run = uuid.uuid4().hex[:6]
    words = [f"连发第{n}条 {run}" for n in range(1, 36)]
    for text_ in words:  # 35 messages within a few seconds: over the limit of 30 events per 10 s
        _send(tab, text_)
    # Refused ones carry retry_after: they stay in the outbox, are sent again, and all get stored.
    for text_ in words:
        expect(_settled(tab, text_)).to_have_count(1, timeout=60_000)
    assert [_stored(live_server, text_) for text_ in words] == [1] * 35
    assert tab.locator(f"{WIDGET} .msg.failed").count() == 0
    assert tab.evaluate("Object.keys(localStorage).filter(k => k.endsWith(':outbox'))"
                        ".map(k => JSON.parse(localStorage[k]).length)") == [0]
    # Ending the chat right after the burst ends it (were it still over the limit, the refusal
    # would carry retry_after and the widget would ask again, as it does for a message).
    tab.locator(f"{WIDGET} .head button", has_text="结束对话").click()
    expect(tab.locator(f"{WIDGET} .rate-form")).to_have_count(1, timeout=30_000)


def _end(tab: Any) -> None:
    """The visitor ends the chat (an open chat counts against its agent's limit of chats)."""
    from playwright.sync_api import expect

    tab.locator(f"{WIDGET} .head button", has_text="结束对话").click()
    expect(tab.locator(f"{WIDGET} .rate-form")).to_have_count(1)


def test_messages_over_the_limit_are_kept_across_a_reload_and_each_arrives_once(
        visitor: Callable[..., Any], agent: Agent, live_server: Any, roomy: None) -> None:
    from playwright.sync_api import expect

    tab = visitor()
    tab.locator(f"{WIDGET} .launcher").click(timeout=WAIT * 1000)
    run = uuid.uuid4().hex[:6]
    words = [f"刷新前连发第{n}条 {run}" for n in range(1, 36)]
    for text_ in words:
        _send(tab, text_)
    tab.reload()  # some are refused (retry_after) and still in the outbox: they must not be lost
    deadline = time.monotonic() + 60
    while sum(_stored(live_server, text_) for text_ in words) < len(words) and time.monotonic() < deadline:
        time.sleep(0.5)
    tab.reload()
    for text_ in words:
        expect(_settled(tab, text_)).to_have_count(1, timeout=30_000)
    assert [_stored(live_server, text_) for text_ in words] == [1] * 35
    assert tab.locator(f"{WIDGET} .msg.failed").count() == 0


def test_a_page_on_an_origin_the_site_does_not_allow_shows_no_widget(visitor: Callable[..., Any],
                                                                      site_key: str) -> None:
    tab = visitor("other")
    tab.wait_for_function(f"window.__bookkeepingDeskWidgets && window.__bookkeepingDeskWidgets[{site_key!r}] "
                          "=== 'refused'", timeout=30_000)
    assert tab.locator(WIDGET).count() == 0


def test_an_unknown_site_key_shows_no_widget(visitor: Callable[..., Any]) -> None:
    tab = visitor("unknown_key")
    tab.wait_for_function("window.__bookkeepingDeskWidgets && window.__bookkeepingDeskWidgets['no-such-site-key'] "
                          "=== 'refused'")
    assert tab.locator(WIDGET).count() == 0


def test_an_agents_invitation_pops_up_and_accepting_opens_the_chat(visitor: Callable[..., Any],
                                                                    agent: Agent) -> None:
    from playwright.sync_api import expect

    tab = visitor()
    expect(tab.locator(f"{WIDGET} .launcher")).to_be_visible(timeout=WAIT * 1000)
    expect(tab.locator(f"{WIDGET} .panel")).to_be_hidden()
    marker = tab.evaluate("location.href")
    _, update = agent.wait_for(lambda e, d: e == "visitor_update" and isinstance(d, dict)
                               and d.get("current_url") == marker)
    words = "<b>您好</b>！需要帮您看看代账方案吗？"
    invited = agent.call("invite", {"visitor_id": update["id"], "text": words})
    assert invited.get("invitation_id"), invited

    popup = tab.locator(f"{WIDGET} .invite")
    expect(popup.locator(".invite-text")).to_have_text(words)
    popup.locator("button.primary").click()
    expect(popup).to_have_count(0)
    expect(tab.locator(f"{WIDGET} .panel")).to_be_visible()
    _, response = agent.wait_for(lambda e, d: e == "invite_response" and isinstance(d, dict)
                                 and d.get("invitation_id") == invited["invitation_id"])
    assert response["accepted"] is True


def test_with_no_agent_online_a_visitor_on_a_phone_leaves_a_message(visitor: Callable[..., Any],
                                                                     live_server: Any) -> None:
    from playwright.sync_api import expect

    tab = visitor()
    tab.set_viewport_size({"width": 390, "height": 700})  # a phone: the panel takes the whole screen
    tab.locator(f"{WIDGET} .launcher").click(timeout=WAIT * 1000)
    form = tab.locator(f"{WIDGET} form.offline-form")
    expect(form).to_be_visible()
    box = tab.locator(f"{WIDGET} .panel").bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 700)
    expect(tab.locator(f"{WIDGET} .compose")).to_be_hidden()
    words = f"想咨询注册公司的流程 {uuid.uuid4().hex[:6]}"
    form.locator("input[name=name]").fill("陈先生")
    form.locator("textarea[name=text]").fill(words)
    form.locator("button.primary").click()
    expect(form.locator(".err")).to_have_text("请留下手机号码或电子邮箱。")
    form.locator("input[name=phone]").fill("13800001234")
    form.locator("button.primary").click()
    expect(form.locator(".left")).to_have_text("留言已收到，我们会尽快联系您。")
    assert live_server.scalar(text("SELECT count(*) FROM chat_leave_message WHERE text = :t AND phone = :p"),
                              t=words, p="13800001234") == 1


def test_with_no_agent_online_the_widget_shows_the_bots_answer_above_the_form(visitor: Callable[..., Any],
                                                                              live_server: Any) -> None:
    from playwright.sync_api import expect

    from app.services.demo_chat import FAQ_ENTRIES

    price = next(answer for category, _, _, answer in FAQ_ENTRIES if category == "代账价格")
    tab = visitor()
    tab.locator(f"{WIDGET} .launcher").click(timeout=WAIT * 1000)
    form = tab.locator(f"{WIDGET} form.offline-form")
    ask = tab.locator(f"{WIDGET} form.ask")
    expect(form).to_be_visible()
    question = f"代账一个月多少钱？{uuid.uuid4().hex[:6]}"
    ask.locator("input").fill(question)
    ask.locator("button.primary").click()
    answer = tab.locator(f"{WIDGET} .msg.bot")
    expect(answer.locator(".bubble")).to_have_text(price, timeout=WAIT * 1000)
    expect(answer.locator(".meta")).to_contain_text("智能助手")
    expect(form).to_be_visible()  # the form stays, below the answer
    assert answer.bounding_box()["y"] < form.bounding_box()["y"]
    answer.locator("button.handoff").click()  # 转人工 with nobody online: the form, with the question
    expect(form.locator("textarea[name=text]")).to_have_value(question)
    expect(tab.locator(f"{WIDGET} .msg.system .bubble", has_text="请在下方留言")).to_have_count(1)


def _console(live_server: Any, sign_in: Callable[[str], dict], username: str) -> Agent:
    host = urlsplit(live_server.url).hostname
    cookies = [c for c in sign_in(username)["cookies"] if c["domain"].lstrip(".") == host]
    console = Agent(live_server.url, "; ".join(f"{c['name']}={c['value']}" for c in cookies))
    assert console.call("status", {"status": "online"}) == {"status": "online"}
    return console


def _take(tab: Any, agent: Agent, words: str, server: Any) -> int:
    """The visitor in *tab* writes *words*; agent1 accepts the chat. Returns its id."""
    from playwright.sync_api import expect

    tab.locator(f"{WIDGET} .launcher").click(timeout=WAIT * 1000)
    _send(tab, words)
    expect(_settled(tab, words)).to_have_count(1)
    conversation_id = server.scalar(text("SELECT conversation_id FROM chat_message WHERE text = :t"), t=words)
    agent.wait_for(lambda e, d: e in ("chat_offer", "chat_request") and isinstance(d, dict)
                   and d.get("conversation_id") == conversation_id)
    accepted = agent.call("accept", {"conversation_id": conversation_id})
    assert accepted.get("conversation_id") == conversation_id, accepted
    return conversation_id


def test_the_served_by_and_transfer_lines_show_once_and_are_still_there_after_a_reload(
        visitor: Callable[..., Any], agent: Agent, live_server: Any, sign_in: Callable[[str], dict],
        roomy: None) -> None:
    from playwright.sync_api import expect

    tab = visitor()
    conversation_id = _take(tab, agent, f"请问怎么收费 {uuid.uuid4().hex[:6]}", live_server)
    served = tab.locator(f"{WIDGET} .msg.system .bubble", has_text="客服一号 为您服务")
    expect(served).to_have_count(1)

    second = _console(live_server, sign_in, "agent2")
    try:
        agent2_id = live_server.scalar(text(
            "SELECT a.id FROM chat_agent a JOIN ab_user u ON u.id = a.user_id WHERE u.username = 'agent2'"))
        moved = agent.call("transfer", {"conversation_id": conversation_id, "to_agent_id": agent2_id})
        assert moved.get("ok"), moved
        transfer_lines = tab.locator(f"{WIDGET} .msg.system .bubble", has_text="客服二号")
        expect(transfer_lines).to_have_count(1)
        expect(transfer_lines).to_have_text("您的会话已转接给 客服二号。")

        tab.reload()
        expect(tab.locator(f"{WIDGET} .msg.system .bubble", has_text="客服一号 为您服务")).to_have_count(1)
        expect(tab.locator(f"{WIDGET} .msg.system .bubble", has_text="客服二号")).to_have_count(1)
        _end(tab)
    finally:
        second.close()


def test_ending_the_chat_in_one_tab_ends_it_in_the_others_and_a_failed_transcript_mail_says_so_in_words(
        visitor: Callable[..., Any], agent: Agent, hosts: dict[str, str], live_server: Any, roomy: None) -> None:
    from playwright.sync_api import expect

    tab = visitor()
    _take(tab, agent, f"两个标签页 {uuid.uuid4().hex[:6]}", live_server)
    other = tab.context.new_page()
    other.goto(f"{hosts['allowed']}/")
    expect(other.locator(f"{WIDGET} .head button", has_text="结束对话")).to_be_visible(timeout=WAIT * 1000)

    tab.locator(f"{WIDGET} .head button", has_text="结束对话").click()
    expect(tab.locator(f"{WIDGET} .rate-form")).to_have_count(1)
    expect(other.locator(f"{WIDGET} .msg.system .bubble", has_text="对话已结束")).to_have_count(1)
    expect(other.locator(f"{WIDGET} .rate-form")).to_have_count(1)
    expect(other.locator(f"{WIDGET} .head button", has_text="结束对话")).to_be_hidden()

    # No mail server listens on the demo's: the visitor reads why in words, not an exception's name.
    form = tab.locator(f"{WIDGET} .transcript-form")
    form.locator("input[type=email]").fill("visitor@example.com")
    form.locator("button.primary").click()
    expect(form.locator(".err")).to_have_text("聊天记录暂时无法发送，请稍后再试。")


@pytest.fixture
def prechat_host(live_server: Any, site_key: str) -> Iterator[dict[str, str]]:
    """A chat site of its own (a copy of the demo site, so that other tests' chats are untouched)
    whose pre-chat form asks for the name (required), the phone (optional) and the question
    (required), served by agent1's group, embedded by a demo host page. Put away afterwards."""
    from app.models.chat import AgentGroup, ChatSite

    server = make_server("127.0.0.1", 0, lambda environ, respond: [], threaded=True)  # for its port
    origin = f"http://127.0.0.1:{server.server_port}"
    key = f"prechat-{uuid.uuid4().hex}"
    sites, groups = ChatSite.__table__, AgentGroup.__table__
    chosen = {"name": f"售前表单测试 {key[-6:]}", "site_key": key, "allowed_origins": origin,
              "welcome_text": None, "prechat_name": "required", "prechat_phone": "optional",
              "prechat_email": "off", "prechat_question": "required"}
    columns = [c.name for c in sites.columns if c.name != "id"]
    copy = select(*[literal(chosen[c]).label(c) if c in chosen else sites.c[c] for c in columns]).where(
        sites.c.site_key == site_key)
    with live_server.engine.begin() as conn:
        conn.execute(insert(sites).from_select(columns, copy))
        site_id = conn.execute(select(sites.c.id).where(sites.c.site_key == key)).scalar()
        group_id = conn.execute(insert(groups).values(site_id=site_id, name="售前", is_default=True)
                                .returning(groups.c.id)).scalar()
        conn.execute(text("INSERT INTO chat_agent_group_member (agent_id, group_id) SELECT id, :g FROM chat_agent "
                          "WHERE user_id = (SELECT id FROM ab_user WHERE username = 'agent1')"), {"g": group_id})
    server.server_close()  # (never served: its port is the new site's origin)
    host = make_server("127.0.0.1", server.server_port, make_demo_host(live_server.url, key), threaded=True)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    yield {"origin": origin, "key": key}
    host.shutdown()
    with live_server.engine.begin() as conn:
        conn.execute(text("DELETE FROM chat_agent_group_member WHERE group_id = :g"), {"g": group_id})
        conn.execute(text("UPDATE chat_site SET active = :no WHERE id = :s"), {"no": False, "s": site_id})


def test_the_sites_pre_chat_form_refuses_an_empty_required_field_and_the_agent_sees_the_details(
        open_page: Callable[..., Any], prechat_host: dict[str, str], agent: Agent, live_server: Any,
        watch: Any) -> None:
    from playwright.sync_api import expect

    tab = open_page(None)
    tab.goto(f"{prechat_host['origin']}/")
    tab.locator(f"{WIDGET} .launcher").click(timeout=WAIT * 1000)
    form = tab.locator(f"{WIDGET} form.prechat-form")
    expect(form).to_be_visible()
    expect(tab.locator(f"{WIDGET} .compose")).to_be_hidden()  # no chat before the form
    # Labelled fields, the required ones marked for screen readers too; the email is not asked.
    name, phone, question = (form.get_by_label(label) for label in ("您的称呼", "手机号码", "您想咨询的问题"))
    expect(name).to_be_focused()
    expect(name).to_have_attribute("aria-required", "true")
    expect(form.locator("input[name=email]")).to_have_count(0)
    words = f"小规模纳税人代账怎么收费？{uuid.uuid4().hex[:6]}"
    question.fill(words)
    phone.fill("138")
    form.locator("button.primary").click()
    expect(form.locator("#bd-prechat-name-error")).to_have_text("请填写您的称呼。")
    expect(form.locator("#bd-prechat-phone-error")).to_have_text("这不是有效的电话号码。")
    expect(name).to_have_attribute("aria-invalid", "true")
    assert _stored(live_server, words) == 0  # refused by the server: nothing written

    name.fill("赵女士")
    phone.fill("13800001111")
    form.locator("button.primary").click()
    expect(form).to_be_hidden()
    expect(_settled(tab, words)).to_have_count(1)  # the question is the chat's first message
    expect(tab.locator(f"{WIDGET} .compose")).to_be_visible()
    assert _stored(live_server, words) == 1
    tab.reload()
    tab.locator(f"{WIDGET} .launcher").click(timeout=WAIT * 1000)
    expect(_settled(tab, words)).to_have_count(1)
    expect(tab.locator(f"{WIDGET} form.prechat-form")).to_be_hidden()  # not asked again

    console = open_page("agent1")
    console.goto("/chat/console/")
    row = console.locator("#visitors .visitor-row").filter(has_text="赵女士")
    row.locator("button", has_text="详细情况").click(timeout=WAIT * 1000)
    details = console.locator("#visitor-details")
    expect(details.locator(".visitor-detail-name")).to_have_text("赵女士")
    expect(details).to_contain_text("13800001111")
    assert [p for p in watch.problems() if "/favicon.ico" not in p] == []  # (the host page has no icon)
