"""The agent console (客服工作台) in Chromium against the real server: a visitor on the demo site —
driven from Python over ``/visitor`` with python-socketio — browses and writes; the demo agent
(agent1, 客服一号) sees them in the live list, takes the chat, replies, and the visitor receives the
reply. What the visitor typed (message, page title) is an XSS payload that must stay inert text.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import socketio
from sqlalchemy import select, text

from app.models.chat import ChatSite
from app.services.demo_chat import DEMO_SITE_NAME

from .conftest import ROOT, BrowserWatch, LiveServer

ORIGIN = "http://127.0.0.1:5001"  # an origin the demo site allows
XSS = "<img src=x onerror=alert(1)>"
SOCKETIO_CLIENT = ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
# Where the screenshot of the console goes: $E2E_SCREENSHOT_DIR when set, else the test's tmp_path.
SCREENSHOT_DIR = os.environ.get("E2E_SCREENSHOT_DIR")

pytestmark = pytest.mark.usefixtures("no_chat_left_open")


def _serve_socketio_client(page: Any) -> None:
    """The console loads the Socket.IO client from /widget/socket.io.min.js; should the server not
    serve it, the npm package's copy stands in."""

    def handle(route: Any) -> None:
        response = route.fetch()
        if response.ok:
            route.fulfill(response=response)
        else:
            route.fulfill(path=str(SOCKETIO_CLIENT), content_type="application/javascript")

    page.route("**/widget/socket.io.min.js", handle)


class Visitor:
    """A widget connection from Python, collecting the events it receives."""

    def __init__(self, server: LiveServer, site_key: str) -> None:
        self.events: list[tuple[str, Any]] = []
        self.client = socketio.Client(reconnection=False)
        for name in ("session", "message", "agent_joined", "closed", "error", "invite"):
            self.client.on(name, self._collect(name), namespace="/visitor")
        self.client.connect(server.url, namespaces=["/visitor"], headers={"Origin": ORIGIN},
                            auth={"site_key": site_key, "language": "zh-CN"},
                            wait_timeout=10)

    def _collect(self, name: str) -> Any:  # noqa: ANN401
        return lambda data=None: self.events.append((name, data))

    def call(self, event: str, data: dict) -> Any:  # noqa: ANN401
        return self.client.call(event, data, namespace="/visitor", timeout=10)

    def wait_for(self, name: str, test: Any, seconds: float = 10.0) -> Any:  # noqa: ANN401
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for event, data in list(self.events):
                if event == name and test(data):
                    return data
            time.sleep(0.1)
        raise AssertionError(f"no {name} event; received {self.events}")

    def close(self) -> None:
        self.client.disconnect()


def test_an_agent_takes_a_chat_and_visitor_text_stays_inert(open_page: Any, live_server: LiveServer,
                                                            watch: BrowserWatch, tmp_path: Path) -> None:
    site_key = live_server.scalar(select(ChatSite.site_key).where(ChatSite.name == DEMO_SITE_NAME))
    assert site_key, "the demo chat site is seeded with the demo data"
    page = open_page("agent1")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _serve_socketio_client(page)
    page.goto("/chat/console/")
    page.wait_for_selector("#console-connection.label-success")
    page.select_option("#console-status", "online")

    visitor = Visitor(live_server, site_key)
    try:
        visitor.call("page_view", {"url": "https://www.example.com/pricing", "title": XSS})
        row = page.locator("#visitors .visitor-row").filter(has_text=XSS)
        row.wait_for()
        assert row.locator(".visitor-title").inner_text() == XSS

        ack = visitor.call("message", {"client_msg_id": str(uuid.uuid4()), "text": XSS})
        conversation_id = ack["conversation_id"]
        take = page.locator(f'.offer-row[data-conversation-id="{conversation_id}"] .offer-accept, '
                            f'.queue-row[data-conversation-id="{conversation_id}"] .queue-accept')
        take.first.click()

        pane = page.locator(f'.chat-pane[data-conversation-id="{conversation_id}"]')
        pane.locator(".chat-visitor .chat-text").first.wait_for()
        assert pane.locator(".chat-visitor .chat-text").first.inner_text() == XSS
        visitor.wait_for("agent_joined", lambda data: data["conversation_id"] == conversation_id)

        pane.locator(".chat-input").fill("您好，请问有什么可以帮您？")
        pane.locator(".chat-input").press("Enter")
        reply = visitor.wait_for("message", lambda data: data.get("sender_type") == "agent")
        assert (reply["text"], reply["conversation_id"]) == ("您好，请问有什么可以帮您？", conversation_id)
        pane.locator(".chat-agent .chat-text").filter(has_text="您好，请问有什么可以帮您？").wait_for()
        assert pane.locator(".chat-input").input_value() == ""

        visitor.call("typing", {"draft": XSS + " 草稿"})
        draft = pane.locator(".chat-draft-text")
        draft.filter(has_text="草稿").wait_for()
        assert draft.inner_text() == XSS + " 草稿"

        page.locator("#visitors .visitor-row").filter(has_text=XSS).locator("button").first.click()
        page.locator("#visitor-details .visitor-detail-title").wait_for()
        assert page.locator("#visitor-details .visitor-detail-title").inner_text() == XSS
        assert page.locator("#visitor-details .visitor-trail li").count() == 1
        page.screenshot(path=str(Path(SCREENSHOT_DIR or tmp_path) / "chat_console.png"), full_page=True)
    finally:
        visitor.close()

    assert page.locator("#chat-console img").count() == 0  # the payload never became an element
    assert dialogs == []
    assert watch.problems() == []


# A 1×1 transparent PNG.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                    "0000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")


def test_canned_reply_note_file_and_close(open_page: Any, live_server: LiveServer, watch: BrowserWatch) -> None:
    site_key = live_server.scalar(select(ChatSite.site_key).where(ChatSite.name == DEMO_SITE_NAME))
    page = open_page("agent1")
    _serve_socketio_client(page)
    page.goto("/chat/console/")
    page.wait_for_selector("#console-connection.label-success")
    page.select_option("#console-status", "online")

    visitor = Visitor(live_server, site_key)
    try:
        visitor.call("page_view", {"url": "https://www.example.com/", "title": "首页"})
        conversation_id = visitor.call("message", {"client_msg_id": str(uuid.uuid4()), "text": "多少钱？"})[
            "conversation_id"]
        page.locator(f'.offer-row[data-conversation-id="{conversation_id}"] .offer-accept, '
                     f'.queue-row[data-conversation-id="{conversation_id}"] .queue-accept').first.click()
        pane = page.locator(f'.chat-pane[data-conversation-id="{conversation_id}"]')
        text = pane.locator(".chat-input")
        text.wait_for()

        # A canned reply: "/pri" lists the demo's shared "price" reply; Tab puts its text in.
        text.fill("/pri")
        pane.locator(".canned-item").filter(has_text="/price").wait_for()
        text.press("Tab")
        assert text.input_value().startswith("小规模纳税人代理记账每月 300 元起")
        text.press("Enter")
        visitor.wait_for("message", lambda data: data.get("sender_type") == "agent"
                         and data["text"].startswith("小规模纳税人代理记账"))

        # Its variables are filled in: the visitor gave no name, the agent's is 客服一号.
        text.fill("/hi")
        pane.locator(".canned-item").filter(has_text="/hi").wait_for()
        text.press("Tab")
        assert text.input_value() == "访客您好，我是示范代账的在线客服客服一号，很高兴为您服务。请问有什么可以帮您？"
        text.fill("")

        # An internal note stays with the agents; the next reply reaches the visitor.
        pane.locator(".chat-note-toggle").check()
        text.fill("老客户，报价可以优惠")
        text.press("Enter")
        pane.locator(".chat-note .chat-text").filter(has_text="老客户").wait_for()
        pane.locator(".chat-note-toggle").uncheck()
        text.fill("还有别的问题吗？")
        text.press("Enter")
        visitor.wait_for("message", lambda data: data.get("text") == "还有别的问题吗？")
        assert [data for name, data in visitor.events if name == "message" and "老客户" in data.get("text", "")] == []

        # A picture: uploaded over HTTP, shown as a thumbnail, delivered to the visitor.
        pane.locator(".chat-file").set_input_files({"name": "报价单.png", "mimeType": "image/png", "buffer": PNG})
        pane.locator(".chat-attachment img").wait_for()
        sent = visitor.wait_for("message", lambda data: bool(data.get("attachment")))
        assert sent["attachment"]["filename"] == "报价单.png"

        pane.locator(".chat-close").click()
        visitor.wait_for("closed", lambda data: data == {"conversation_id": conversation_id, "by": "agent"})
        pane.locator(".chat-drop").wait_for()  # closed: the tab may now be put away
        assert text.is_disabled() and pane.locator(".chat-send").is_disabled()
    finally:
        visitor.close()
    assert watch.problems() == []


# Counts the console's beeps and desktop notifications, and lets the test hide the tab.
NOTIFY_PROBE = """
window.__beeps = 0; window.__notes = []; window.__hidden = false;
const RealAudio = window.AudioContext;
window.AudioContext = class extends RealAudio {
  createOscillator() { window.__beeps += 1; return super.createOscillator(); }
};
window.Notification = function (title, options) { window.__notes.push([title, (options || {}).body || ""]); };
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
Object.defineProperty(document, "hidden", {get: function () { return window.__hidden; }});
"""


def _until(page: Any, expression: str, timeout: float = 15.0) -> None:
    """Poll *expression* from here: the console's CSP forbids the eval that ``wait_for_function``
    needs once it has to poll (the new-chat notice comes a tick after the visitor's ack)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"{expression} still false after {timeout} s"
        time.sleep(0.1)


def test_new_chats_sound_and_a_hidden_console_shows_a_desktop_notification(
        open_page: Any, live_server: LiveServer) -> None:
    site_key = live_server.scalar(select(ChatSite.site_key).where(ChatSite.name == DEMO_SITE_NAME))
    page = open_page("agent1")
    page.context.add_init_script(NOTIFY_PROBE)
    _serve_socketio_client(page)
    page.goto("/chat/console/")
    page.wait_for_selector("#console-connection.label-success")
    page.select_option("#console-status", "online")
    page.locator(".console-title").click()  # a user gesture lets the page make sound

    first = Visitor(live_server, site_key)
    second = Visitor(live_server, site_key)
    try:
        first.call("message", {"client_msg_id": str(uuid.uuid4()), "text": "在吗？"})
        _until(page, "window.__beeps > 0")
        assert page.evaluate("window.__notes") == []  # the console is on screen: sound only

        page.evaluate("window.__hidden = true")  # the agent switched to another tab
        second.call("message", {"client_msg_id": str(uuid.uuid4()), "text": "请问报税怎么收费"})
        _until(page, "window.__notes.length > 0")
        titles = [title for title, _ in page.evaluate("window.__notes")]
        assert "新的对话请求" in titles
    finally:
        first.close()
        second.close()


class Console:
    """A console connection of a signed-in agent driven from Python (``/agent``)."""

    def __init__(self, server: LiveServer, cookie: str) -> None:
        self.events: list[tuple[str, Any]] = []
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", lambda event, data=None: self.events.append((event, data)), namespace="/agent")
        self.client.connect(server.url, namespaces=["/agent"], headers={"Cookie": cookie}, wait_timeout=10)

    def call(self, event: str, data: dict) -> Any:  # noqa: ANN401
        return self.client.call(event, data, namespace="/agent", timeout=10)

    def wait_for(self, name: str, test: Any, seconds: float = 15.0) -> Any:  # noqa: ANN401
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for event, data in list(self.events):
                if event == name and test(data):
                    return data
            time.sleep(0.1)
        raise AssertionError(f"no {name} event; received {[e for e, _ in self.events]}")

    def close(self) -> None:
        try:
            self.call("status", {"status": "offline"})
        finally:
            self.client.disconnect()


def _cookie(page: Any, live_server: LiveServer) -> str:
    host = live_server.url.split("//", 1)[1].split(":", 1)[0]
    return "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies()
                     if c["domain"].lstrip(".") == host)


def _agent_id(live_server: LiveServer, username: str) -> int:
    return live_server.scalar(text("SELECT a.id FROM chat_agent a JOIN ab_user u ON u.id = a.user_id "
                                   "WHERE u.username = :name"), name=username)


def test_an_invited_agent_who_then_receives_the_chat_by_transfer_can_end_it_without_a_reload(
        open_page: Any, live_server: LiveServer, watch: BrowserWatch) -> None:
    site_key = live_server.scalar(select(ChatSite.site_key).where(ChatSite.name == DEMO_SITE_NAME))
    page = open_page("agent2")
    _serve_socketio_client(page)
    page.goto("/chat/console/")
    page.wait_for_selector("#console-connection.label-success")
    page.select_option("#console-status", "away")  # the chat goes to agent1 first

    owner_tab = open_page("agent1")
    owner_tab.goto("/chat/console/")
    owner = Console(live_server, _cookie(owner_tab, live_server))
    owner_tab.close()
    visitor = Visitor(live_server, site_key)
    try:
        assert owner.call("status", {"status": "online"}) == {"status": "online"}
        conversation_id = visitor.call("message", {"client_msg_id": str(uuid.uuid4()), "text": "想问问注册公司"})[
            "conversation_id"]
        owner.wait_for("chat_offer", lambda data: data["conversation_id"] == conversation_id)
        assert owner.call("accept", {"conversation_id": conversation_id})["conversation_id"] == conversation_id

        page.select_option("#console-status", "online")
        time.sleep(0.5)
        assert owner.call("invite_agent", {"conversation_id": conversation_id,
                                           "agent_id": _agent_id(live_server, "agent2")}) == {"ok": True}
        page.locator("#chat-invites .chat-invite-row button").click()
        pane = page.locator(f'.chat-pane[data-conversation-id="{conversation_id}"]')
        pane.locator(".chat-leave").wait_for()
        tab = page.locator(f'.chat-tab[data-conversation-id="{conversation_id}"]')
        tab.filter(has_text="访客").wait_for()
        assert "undefined" not in tab.inner_text() and "undefined" not in pane.locator(".chat-title").inner_text()

        moved = owner.call("transfer", {"conversation_id": conversation_id,
                                        "to_agent_id": _agent_id(live_server, "agent2")})
        assert moved.get("ok"), moved
        pane.locator(".chat-close").wait_for()
        pane.locator(".chat-transfer").wait_for()
        assert pane.locator(".chat-leave").count() == 0
        assert "undefined" not in tab.inner_text() and "undefined" not in pane.locator(".chat-title").inner_text()

        pane.locator(".chat-close").click()
        visitor.wait_for("closed", lambda data: data == {"conversation_id": conversation_id, "by": "agent"})
        assert page.locator(".console-alert.alert-danger").count() == 0
    finally:
        page.select_option("#console-status", "offline")  # later tests' chats go to agent1
        _until_true(lambda: live_server.scalar(text(
            "SELECT a.status FROM chat_agent a JOIN ab_user u ON u.id = a.user_id WHERE u.username = 'agent2'"))
            == "offline")
        visitor.close()
        owner.close()
    assert watch.problems() == []


def _until_true(test: Any, timeout: float = 10.0) -> None:  # noqa: ANN401
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, "still false"
        time.sleep(0.1)


def _alerts(page: Any, words: str) -> int:
    return page.locator(".console-alert", has_text=words).count()


def test_the_console_keeps_a_reply_typed_offline_shows_each_error_once_in_order_and_the_current_page(
        open_page: Any, live_server: LiveServer) -> None:
    site_key = live_server.scalar(select(ChatSite.site_key).where(ChatSite.name == DEMO_SITE_NAME))
    page = open_page("agent1")
    _serve_socketio_client(page)
    page.goto("/chat/console/")
    page.wait_for_selector("#console-connection.label-success")
    page.select_option("#console-status", "online")

    visitor = Visitor(live_server, site_key)
    try:
        visitor.call("page_view", {"url": "https://www.example.com/a", "title": "第一页"})
        first = f"第一句 {uuid.uuid4().hex[:6]}"
        conversation_id = visitor.call("message", {"client_msg_id": str(uuid.uuid4()), "text": first})[
            "conversation_id"]
        page.locator(f'.offer-row[data-conversation-id="{conversation_id}"] .offer-accept, '
                     f'.queue-row[data-conversation-id="{conversation_id}"] .queue-accept').first.click()
        pane = page.locator(f'.chat-pane[data-conversation-id="{conversation_id}"]')
        pane.locator(".chat-message", has_text="您好，我是客服一号").wait_for()
        # The visitor's first message comes before the agent's greeting, as they were stored.
        texts = pane.locator(".chat-message .chat-text").all_inner_texts()
        assert texts.index(first) < texts.index("您好，我是客服一号，请问有什么可以帮您？"), texts
        ids = [int(i) for i in pane.locator(".chat-message[data-message-id]:not([data-message-id=''])")
               .evaluate_all("nodes => nodes.map(n => n.dataset.messageId)")]
        assert ids == sorted(ids)

        # The header follows the visitor to their next page.
        assert "第一页" in pane.locator(".chat-toolbar").inner_text()
        visitor.call("page_view", {"url": "https://www.example.com/b", "title": "第二页"})
        pane.locator(".chat-page", has_text="第二页").wait_for()

        # A refused action is reported once (the ack and the error event are one refusal).
        page.locator('#visitors .visitor-row:has(.label-success) button').first.click()
        page.locator("#visitor-details .visitor-invite-form button").click()
        page.locator(".console-alert", has_text="访客已在会话中。").first.wait_for()
        time.sleep(1.0)
        assert _alerts(page, "访客已在会话中。") == 1

        # Offline: the badge says the console reconnects (never "refused"); a reply waits and goes later.
        page.context.set_offline(True)
        badge = page.locator("#console-connection")
        page.locator("#console-connection.label-warning").wait_for()
        reply = f"断网时的回复 {uuid.uuid4().hex[:6]}"
        pane.locator(".chat-input").fill(reply)
        pane.locator(".chat-input").press("Enter")
        pane.locator(".chat-message.chat-pending", has_text=reply).wait_for()
        assert pane.locator(".chat-input").input_value() == ""
        time.sleep(3.0)  # a few failed reconnection attempts
        assert badge.inner_text() == "连接已断开，正在重连…"
        page.context.set_offline(False)
        page.locator("#console-connection.label-success").wait_for(timeout=20_000)
        sent = visitor.wait_for("message", lambda data: data.get("text") == reply, seconds=20)
        assert sent["sender_type"] == "agent"
        pane.locator(f'.chat-message[data-message-id="{sent["id"]}"]', has_text=reply).wait_for()
        assert pane.locator(".chat-message", has_text=reply).count() == 1
        assert pane.locator(".chat-pending").count() == 0
        pane.locator(".chat-close").click()  # an open chat counts against agent1's limit
        visitor.wait_for("closed", lambda data: data["conversation_id"] == conversation_id)
    finally:
        visitor.close()


def test_the_inviting_agent_gets_the_chat_open_with_the_invitation_when_the_visitor_accepts(
        open_page: Any, live_server: LiveServer) -> None:
    site_key = live_server.scalar(select(ChatSite.site_key).where(ChatSite.name == DEMO_SITE_NAME))
    page = open_page("agent1")
    _serve_socketio_client(page)
    page.goto("/chat/console/")
    page.wait_for_selector("#console-connection.label-success")
    page.select_option("#console-status", "online")

    visitor = Visitor(live_server, site_key)
    try:
        title = f"价格页 {uuid.uuid4().hex[:6]}"
        visitor.call("page_view", {"url": "https://www.example.com/price", "title": title})
        page.locator("#visitors .visitor-row", has_text=title).locator("button").first.click()
        words = f"您好，需要帮您看看代账方案吗？{uuid.uuid4().hex[:4]}"
        page.locator("#visitor-details .visitor-invite-form input").fill(words)
        page.locator("#visitor-details .visitor-invite-form button").click()
        invited = visitor.wait_for("invite", lambda data: data.get("text") == words)
        ack = visitor.call("invite_response", {"invitation_id": invited["invitation_id"], "accepted": True})
        conversation_id = ack["conversation_id"]
        # Without a reload, and before the visitor writes anything: the chat has its tab (other chats
        # of agent1 may be open, and one of them on screen), with the invitation in it.
        tab = page.locator(f'.chat-tab[data-conversation-id="{conversation_id}"]')
        tab.wait_for()
        tab.locator("a").click()
        pane = page.locator(f'.chat-pane[data-conversation-id="{conversation_id}"]')
        pane.locator(".chat-message", has_text=words).wait_for()
        assert tab.count() == 1
        pane.locator(".chat-close").click()  # an open chat counts against agent1's limit
        visitor.wait_for("closed", lambda data: data["conversation_id"] == conversation_id)
    finally:
        visitor.close()
        page.select_option("#console-status", "offline")


def test_the_send_key_chosen_in_the_console_follows_a_reload_and_ctrl_enter_mode_keeps_enter_for_new_lines(
        open_page: Any, live_server: LiveServer, watch: BrowserWatch) -> None:
    site_key = live_server.scalar(select(ChatSite.site_key).where(ChatSite.name == DEMO_SITE_NAME))
    page = open_page("agent1")
    _serve_socketio_client(page)
    page.goto("/chat/console/")
    page.wait_for_selector("#console-connection.label-success")
    page.select_option("#console-status", "online")

    visitor = Visitor(live_server, site_key)
    try:
        conversation_id = visitor.call("message", {"client_msg_id": str(uuid.uuid4()), "text": "请问怎么收费？"})[
            "conversation_id"]
        page.locator(f'.offer-row[data-conversation-id="{conversation_id}"] .offer-accept, '
                     f'.queue-row[data-conversation-id="{conversation_id}"] .queue-accept').first.click()
        pane = page.locator(f'.chat-pane[data-conversation-id="{conversation_id}"]')
        pane.locator(".chat-input").wait_for()
        assert pane.locator(".chat-send-hint").inner_text() == "Enter 发送 · Shift+Enter 换行"

        page.select_option("#console-send-key", "ctrl_enter")
        pane.locator(".chat-send-hint", has_text="Ctrl+Enter 发送").wait_for()
        page.reload()  # stored on the agent's profile: the choice is still there
        page.wait_for_selector("#console-connection.label-success")
        assert page.locator("#console-send-key").input_value() == "ctrl_enter"
        page.locator(f'.chat-tab[data-conversation-id="{conversation_id}"] a').click()  # (other chats may be open)
        pane.locator(".chat-input").wait_for()
        assert pane.locator(".chat-send-hint").inner_text() == "Ctrl+Enter 发送 · Enter 换行"

        text = pane.locator(".chat-input")
        text.fill("第一行")
        text.press("Enter")  # a new line, not a message
        text.type("第二行")
        assert text.input_value() == "第一行\n第二行"
        text.press("Control+Enter")
        sent = visitor.wait_for("message", lambda data: data.get("sender_type") == "agent")
        assert sent["text"] == "第一行\n第二行"
        assert [d for n, d in visitor.events if n == "message" and d.get("text") == "第一行"] == []
    finally:
        page.select_option("#console-send-key", "enter")  # as the other tests expect
        page.locator(".chat-send-hint", has_text="Enter 发送 · Shift").first.wait_for(state="attached")
        visitor.close()
    assert watch.problems() == []
