"""Links, read receipts (已读) and the unread count in Chromium: a visitor in the widget on the demo
host page and agent1 in the agent console (or, for the launcher's count, driven from Python over
``/agent``).

Whether a page is visible is the test's to say: every tab gets ``document.hidden`` and
``document.visibilityState`` from ``window.__hidden`` (``window.__setHidden(true)`` also fires
``visibilitychange``), so a headless tab is never taken for a hidden one or the other way round.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from tests.e2e import test_chat_widget_browser as widget_tests
from tests.e2e.test_chat_console_browser import _serve_socketio_client
from tests.e2e.test_chat_widget_browser import WAIT, WIDGET, Agent, _send, _settled, _take

# The widget tests' fixtures: agent1 over /agent (``agent``), the demo host pages (``hosts``).
agent, hosts, site_key = widget_tests.agent, widget_tests.hosts, widget_tests.site_key

pytestmark = pytest.mark.usefixtures("no_chat_left_open")

VISIBILITY = """
window.__hidden = false;
Object.defineProperty(document, "hidden", {configurable: true, get: function () { return window.__hidden; }});
Object.defineProperty(document, "visibilityState", {configurable: true,
  get: function () { return window.__hidden ? "hidden" : "visible"; }});
window.__setHidden = function (hidden) {
  window.__hidden = hidden;
  document.dispatchEvent(new Event("visibilitychange"));
};
"""


def _tab(open_page: Callable[..., Any], username: str | None) -> Any:
    tab = open_page(username)
    tab.context.add_init_script(VISIBILITY)
    return tab


def test_links_are_clickable_and_read_receipts_show_both_ways_also_after_a_reload(
        open_page: Callable[..., Any], hosts: dict[str, str], live_server: Any, watch: Any) -> None:
    from playwright.sync_api import expect

    console = _tab(open_page, "agent1")
    _serve_socketio_client(console)
    console.goto("/chat/console/")
    console.wait_for_selector("#console-connection.label-success")
    console.select_option("#console-status", "online")

    tab = _tab(open_page, None)
    tab.goto(f"{hosts['allowed']}/")
    tab.locator(f"{WIDGET} .launcher").click(timeout=WAIT * 1000)
    run = uuid.uuid4().hex[:6]
    words = (f"价格表见 https://example.com/price?a=1&b=2。别点 javascript:alert(1) 和 data:text/html,x "
             f"（或 http://127.0.0.1/x). {run}")
    _send(tab, words)
    expect(_settled(tab, run)).to_have_count(1)
    mine = tab.locator(f"{WIDGET} .msg.mine .bubble a")
    expect(mine).to_have_count(2)  # javascript: and data: stay text
    assert [mine.nth(i).get_attribute("href") for i in range(2)] == [
        "https://example.com/price?a=1&b=2", "http://127.0.0.1/x"]
    assert tab.locator(f"{WIDGET} .msg.mine .receipt").count() == 0  # nobody has read it yet

    conversation_id = live_server.scalar(text("SELECT conversation_id FROM chat_message WHERE text = :t"), t=words)
    console.locator(f'.offer-row[data-conversation-id="{conversation_id}"] .offer-accept, '
                    f'.queue-row[data-conversation-id="{conversation_id}"] .queue-accept').first.click()
    pane = console.locator(f'.chat-pane[data-conversation-id="{conversation_id}"]')
    question = pane.locator(".chat-visitor .chat-text").filter(has_text=run)
    expect(question).to_have_text(words)  # the whole text, as text
    links = question.locator("a")
    expect(links).to_have_count(2)
    assert [links.nth(i).get_attribute(name) for i in range(2) for name in ("href", "target", "rel")] == [
        "https://example.com/price?a=1&b=2", "_blank", "noopener noreferrer",
        "http://127.0.0.1/x", "_blank", "noopener noreferrer"]

    # The agent has the chat open on a visible console: the visitor sees 已读 under their message.
    expect(tab.locator(f"{WIDGET} .msg.mine .receipt")).to_have_text(["已读"])

    reply = "报价单：https://example.com/quote_(2026).pdf，请查收"
    pane.locator(".chat-input").fill(reply)
    pane.locator(".chat-input").press("Enter")
    answer = tab.locator(f"{WIDGET} .msg:not(.mine) .bubble", has_text="报价单")
    expect(answer).to_have_text(reply)
    expect(answer.locator("a")).to_have_attribute("href", "https://example.com/quote_(2026).pdf")
    expect(answer.locator("a")).to_have_attribute("rel", "noopener noreferrer")
    # The widget is open on a visible page: the agent sees 已读 under the reply.
    expect(pane.locator(".chat-agent .chat-receipt")).to_have_text(["已读"])

    # Both come back after a reload.
    tab.reload()
    expect(tab.locator(f"{WIDGET} .msg.mine .receipt")).to_have_text(["已读"])
    console.reload()
    pane = console.locator(f'.chat-pane[data-conversation-id="{conversation_id}"]')
    expect(pane.locator(".chat-agent .chat-receipt")).to_have_text(["已读"])
    expect(console.locator(f'.chat-tab[data-conversation-id="{conversation_id}"] .chat-unread')).to_have_text("")
    assert live_server.scalar(text("SELECT agent_read_up_to IS NOT NULL AND visitor_read_up_to IS NOT NULL "
                                   "FROM chat_conversation WHERE id = :c"), c=conversation_id)
    assert [p for p in watch.problems() if "/favicon.ico" not in p] == []


def test_the_minimised_widget_counts_unread_replies_on_its_launcher_and_flashes_a_hidden_pages_title(
        agent: Agent, open_page: Callable[..., Any], hosts: dict[str, str], live_server: Any) -> None:
    from playwright.sync_api import expect

    tab = _tab(open_page, None)
    tab.goto(f"{hosts['allowed']}/")
    title = tab.title()
    conversation_id = _take(tab, agent, f"请问记账怎么收费 {uuid.uuid4().hex[:6]}", live_server)
    tab.locator(f"{WIDGET} .head button", has_text="收起").click()
    expect(tab.locator(f"{WIDGET} .panel")).to_be_hidden()

    def reply(words: str) -> int:
        return agent.call("message", {"conversation_id": conversation_id, "client_msg_id": uuid.uuid4().hex,
                                      "text": words})["id"]

    badge = tab.locator(f"{WIDGET} .launcher .badge")
    reply("您好！")
    reply("小规模纳税人每月 300 元起。")
    expect(badge).to_have_text("2")
    assert tab.title() == title  # the page is on screen: its title stays

    tab.evaluate("window.__setHidden(true)")  # the visitor went to another tab
    last = reply("还有什么可以帮您？")
    expect(badge).to_have_text("3")
    expect(tab).to_have_title("(3) 新消息")  # alternating with the page's own title
    tab.evaluate("window.__setHidden(false)")
    expect(tab).to_have_title(title)  # put back exactly

    tab.reload()  # still minimised: the three are still unread
    expect(badge).to_have_text("3")
    tab.locator(f"{WIDGET} .launcher").click()
    expect(badge).to_be_hidden()
    _, read = agent.wait_for(lambda e, d: e == "read" and isinstance(d, dict) and d.get("reader") == "visitor"
                             and d.get("conversation_id") == conversation_id)
    assert read["up_to"] == last
    tab.locator(f"{WIDGET} .head button", has_text="收起").click()
    tab.reload()  # minimised again, but read: nothing counts any more
    expect(tab.locator(f"{WIDGET} .msg:not(.mine) .bubble", has_text="还有什么")).to_have_count(1)
    expect(badge).to_be_hidden()
