"""From visitor to client in Chromium against the real server: a visitor writes from the chat
widget on a website; agent1 (客服一号) takes the chat in the console, creates a lead from the
visitor's card, adds the visitor as a contact of the demo client 上海明远商贸 and then sees its
filing status (the demo leaves an overdue 个人所得税); once agent1's role may download statements,
the card offers *发送最新报表* and the statement appears in the visitor's widget as a download."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from app.demo_host import make_demo_host
from app.services.demo_chat import DEMO_SITE_NAME

from .conftest import BrowserWatch, LiveServer

pytestmark = pytest.mark.usefixtures("no_chat_left_open")

WIDGET = "#bookkeeping-desk-chat"
WAIT = 15_000
# Where the screenshot of the console goes: $E2E_SCREENSHOT_DIR when set, else the test's tmp_path.
SCREENSHOT_DIR = os.environ.get("E2E_SCREENSHOT_DIR")
GRANT = text("INSERT INTO ab_user_role (user_id, role_id) SELECT u.id, r.id FROM ab_user u, ab_role r "
             "WHERE u.username = 'agent1' AND r.name = 'Reviewer'")
REVOKE = text("DELETE FROM ab_user_role WHERE user_id = (SELECT id FROM ab_user WHERE username = 'agent1') "
              "AND role_id = (SELECT id FROM ab_role WHERE name = 'Reviewer')")


@pytest.fixture(scope="module")
def host(live_server: LiveServer) -> Iterator[str]:
    """A website embedding the demo site's widget, on an origin the demo site allows for this module."""
    key = live_server.scalar(text("SELECT site_key FROM chat_site WHERE name = :name"), name=DEMO_SITE_NAME)
    server = make_server("127.0.0.1", 0, make_demo_host(live_server.url, key), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_port}"
    before = live_server.scalar(text("SELECT allowed_origins FROM chat_site WHERE site_key = :k"), k=key)
    update = text("UPDATE chat_site SET allowed_origins = :o WHERE site_key = :k")
    with live_server.engine.begin() as conn:
        conn.execute(update, {"o": f"{before}\n{origin}", "k": key})
    yield origin
    with live_server.engine.begin() as conn:
        conn.execute(update, {"o": before, "k": key})
    server.shutdown()


@pytest.fixture
def agent1_alone(live_server: LiveServer) -> Iterator[None]:
    """agent2 is away while the test runs, so that the visitor's chat is offered to agent1."""
    change = text("UPDATE chat_agent SET status = :s "
                  "WHERE user_id = (SELECT id FROM ab_user WHERE username = 'agent2')")
    with live_server.engine.begin() as conn:
        conn.execute(change, {"s": "away"})
    yield
    with live_server.engine.begin() as conn:
        conn.execute(change, {"s": "offline"})


@pytest.fixture
def may_download_statements(live_server: LiveServer) -> Callable[[], None]:
    """``grant()`` gives agent1 the Reviewer role too (which may download every client's statement);
    it is taken back, and what the test made of the demo client removed, after the test."""
    granted: list[bool] = []

    def grant() -> None:
        with live_server.engine.begin() as conn:
            conn.execute(GRANT)
        granted.append(True)

    yield grant
    with live_server.engine.begin() as conn:
        if granted:
            conn.execute(REVOKE)
        conn.execute(text("DELETE FROM client_contact WHERE name = '赵女士（测试）'"))


def test_an_agent_makes_a_lead_then_a_client_contact_sees_the_filings_and_sends_the_statement(
        open_page: Callable[..., Any], live_server: LiveServer, host: str, agent1_alone: None,
        may_download_statements: Callable[[], None], watch: BrowserWatch, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    console = open_page("agent1")
    console.goto("/chat/console/")
    expect(console.locator("#console-connection.label-success")).to_be_visible(timeout=WAIT)
    console.select_option("#console-status", "online")

    visitor = open_page(None)
    visitor.goto(f"{host}/")
    visitor.locator(f"{WIDGET} .launcher").click(timeout=WAIT)
    words = f"你好，我们公司想找代账，怎么收费？{uuid.uuid4().hex[:6]}"
    visitor.locator(f"{WIDGET} .compose textarea").fill(words)
    visitor.locator(f"{WIDGET} .compose textarea").press("Enter")
    expect(visitor.locator(f"{WIDGET} .msg[data-id]:not(.pending) .bubble", has_text=words)).to_have_count(1)
    conversation_id = live_server.scalar(text("SELECT conversation_id FROM chat_message WHERE text = :t"), t=words)
    console.locator(f'.offer-row[data-conversation-id="{conversation_id}"] .offer-accept, '
                    f'.queue-row[data-conversation-id="{conversation_id}"] .queue-accept').first.click(timeout=WAIT)
    pane = console.locator(f'.chat-pane[data-conversation-id="{conversation_id}"]')
    expect(pane.locator(".chat-visitor .chat-text", has_text=words)).to_be_visible(timeout=WAIT)

    # 创建线索: the form starts with the visitor's question; the agent adds the name and phone.
    details = console.locator("#visitor-details")
    pane.locator(".chat-details").click()
    details.locator(".crm-create-lead").click(timeout=WAIT)
    form = details.locator(".crm-lead-form")
    expect(form.locator(".crm-lead-question")).to_have_value(words)
    form.locator(".crm-lead-name").fill("赵女士（测试）")
    form.locator(".crm-lead-phone").fill("13800001111")
    form.locator(".crm-lead-submit").click()
    expect(console.locator(".console-alert", has_text="已创建线索")).to_be_visible(timeout=WAIT)
    expect(details.locator(".crm-lead")).to_contain_text("新线索", timeout=WAIT)
    with live_server.engine.connect() as conn:
        lead = conn.execute(text(
            "SELECT l.name, l.phone, l.question, l.conversation_id, l.status FROM crm_lead l "
            "JOIN chat_conversation c ON c.visitor_id = l.visitor_id WHERE c.id = :c"), {"c": conversation_id}).one()
    assert tuple(lead) == ("赵女士（测试）", "13800001111", words, conversation_id, "new")

    # 添加为客户联系人: found by part of its name; the card then shows the client and its filing status.
    details.locator(".crm-add-contact").click()
    contact = details.locator(".crm-contact-form")
    contact.locator(".crm-client-q").fill("明远")
    contact.locator(".crm-client-result", has_text="上海明远商贸有限公司").click(timeout=WAIT)
    contact.locator(".crm-contact-name").fill("赵女士（测试）")
    contact.locator(".crm-contact-submit").click()
    card = details.locator(".client-card")
    expect(card).to_contain_text("上海明远商贸有限公司", timeout=WAIT)
    expect(card.locator(".client-filings")).to_contain_text("逾期")
    expect(card.locator(".client-filings .filing-overdue").first).to_contain_text("个人所得税")
    expect(card.locator(".client-send-statement")).to_have_count(0)  # the Agent role may not download it

    # With a role that may download the statement, the card offers it and it reaches the widget.
    may_download_statements()
    pane.locator(".chat-details").click()
    send = details.locator(".client-send-statement")
    send.click(timeout=WAIT)
    expect(console.locator(".console-alert", has_text="对账单已发送到会话")).to_be_visible(timeout=60_000)
    download = visitor.locator(f"{WIDGET} .msg .bubble a", has_text="客户对账单-上海明远商贸有限公司")
    expect(download).to_have_count(1, timeout=WAIT)
    assert "/chat/files/" in download.get_attribute("href") and download.get_attribute("href").count("?k=") == 1
    expect(pane.locator(".chat-attachment", has_text="客户对账单")).to_have_count(1)
    console.screenshot(path=str(Path(SCREENSHOT_DIR or tmp_path) / "chat_crm_console.png"), full_page=True)

    pane.locator(".chat-close").click()  # an open chat counts against agent1's limit
    assert [p for p in watch.problems() if "/favicon.ico" not in p] == []
