"""Earlier conversations, the visitor's transcript download, conversation topics and quick links,
in Chromium against the real server:

- a returning visitor (same browser, so the same visitor token) opens their earlier conversation
  in the widget, and downloads a transcript as a PDF (internal notes left out);
- an agent files a chat under a topic in the console, inserts a quick link into a reply, and finds
  the chat in the history by the topic filter.

The widget runs on a demo host page on another origin (the fixtures of test_chat_widget_browser);
the agent is agent1, driven from Python (widget tests) or in the console page (topic test).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text

from app.models.chat import ChatSite
from app.services.demo_chat import DEMO_SITE_NAME

from .conftest import BrowserWatch, LiveServer
from .test_chat_console_browser import Visitor, _serve_socketio_client
from .test_chat_widget_browser import (  # noqa: F401 - fixtures used by the tests below
    WAIT,
    WIDGET,
    Agent,
    _end,
    _settled,
    agent,
    hosts,
    site_key,
    visitor,
)

pytestmark = pytest.mark.usefixtures("no_chat_left_open")


def _chat_with_a_note(tab: Any, agent: Agent) -> tuple[int, str, str, str]:  # noqa: F811
    """The visitor asks, agent1 takes the chat, answers and writes an internal note; the visitor
    ends the chat. Returns the conversation id and the three texts."""
    from playwright.sync_api import expect

    run = uuid.uuid4().hex[:6]
    question, answer, note = f"想问小规模纳税人报税 {run}", f"每季度申报一次增值税 {run}", f"内部备注老客户 {run}"
    launcher = tab.locator(f"{WIDGET} .launcher")
    expect(launcher).to_be_visible(timeout=WAIT * 1000)
    launcher.click()
    tab.locator(f"{WIDGET} .compose textarea").fill(question)
    tab.locator(f"{WIDGET} .compose textarea").press("Enter")
    expect(_settled(tab, question)).to_have_count(1)
    _, data = agent.wait_for(lambda e, d: e in ("chat_offer", "chat_request") and isinstance(d, dict))
    conversation_id = data["conversation_id"]
    agent.call("accept", {"conversation_id": conversation_id})
    for words, is_note in ((note, True), (answer, False)):
        ack = agent.call("message", {"conversation_id": conversation_id, "client_msg_id": uuid.uuid4().hex,
                                     "text": words, "note": is_note})
        assert ack.get("id"), ack
    expect(tab.locator(f"{WIDGET} .msg .bubble", has_text=answer)).to_have_count(1)
    _end(tab)
    return conversation_id, question, answer, note


def _pdf_text(path: str) -> str:
    from pypdf import PdfReader

    with open(path, "rb") as handle:
        data = handle.read()
    assert data.startswith(b"%PDF")
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_a_returning_visitor_opens_their_earlier_conversation(
        visitor: Callable[..., Any], agent: Agent, watch: BrowserWatch) -> None:  # noqa: F811
    from playwright.sync_api import expect

    tab = visitor()
    conversation_id, question, answer, note = _chat_with_a_note(tab, agent)

    tab.reload()  # the same browser comes back: a new page, the ended chat no longer on show
    entry = tab.locator(f"{WIDGET} .history .history-more")
    expect(entry).to_be_visible(timeout=WAIT * 1000)
    expect(tab.locator(f"{WIDGET} .log > .msg .bubble", has_text=question)).to_have_count(0)
    entry.click()
    earlier = tab.locator(f'{WIDGET} .history-conversation[data-conversation-id="{conversation_id}"]')
    expect(earlier).to_have_count(1)
    expect(earlier.locator(".msg.mine .bubble", has_text=question)).to_have_count(1)
    expect(earlier.locator(".msg .bubble", has_text=answer)).to_have_count(1)
    expect(earlier.locator(".history-date")).to_contain_text("客服一号")
    assert earlier.locator(".msg .bubble", has_text=note).count() == 0
    assert not [p for p in watch.problems() if p.startswith("page error")]


def test_a_visitor_downloads_the_transcript_of_the_chat_they_ended(
        visitor: Callable[..., Any], agent: Agent) -> None:  # noqa: F811
    tab = visitor()
    _, question, answer, note = _chat_with_a_note(tab, agent)
    button = tab.locator(f"{WIDGET} .download-card .transcript-download")
    with tab.expect_download(timeout=60_000) as info:
        button.click()
    download = info.value
    assert download.suggested_filename.endswith(".pdf")
    printed = _pdf_text(download.path())
    assert question in printed and answer in printed
    assert note not in printed


def test_an_agent_files_a_chat_under_a_topic_sends_a_quick_link_and_finds_it_by_topic(
        open_page: Any, live_server: LiveServer, watch: BrowserWatch) -> None:
    demo_key = live_server.scalar(select(ChatSite.site_key).where(ChatSite.name == DEMO_SITE_NAME))
    topic_id = live_server.scalar(text("SELECT id FROM chat_topic WHERE name = '报税问题'"))
    assert topic_id, "the demo topics are seeded with the demo data"
    page = open_page("agent1")
    _serve_socketio_client(page)
    page.goto("/chat/console/")
    page.wait_for_selector("#console-connection.label-success")
    page.select_option("#console-status", "online")

    words = f"季度报税怎么弄 {uuid.uuid4().hex[:6]}"
    guest = Visitor(live_server, demo_key)
    try:
        conversation_id = guest.call("message", {"client_msg_id": str(uuid.uuid4()), "text": words})[
            "conversation_id"]
        page.locator(f'.offer-row[data-conversation-id="{conversation_id}"] .offer-accept, '
                     f'.queue-row[data-conversation-id="{conversation_id}"] .queue-accept').first.click()
        pane = page.locator(f'.chat-pane[data-conversation-id="{conversation_id}"]')
        pane.locator(".chat-topics-edit").click()
        form = pane.locator(".chat-topics-form")
        form.locator(".chat-topic-choice", has_text="报税问题").locator("input").check()
        form.locator(".chat-topics-save").click()
        pane.locator(".chat-topic-list .chat-topic", has_text="报税问题").wait_for()
        assert live_server.scalar(text("SELECT count(*) FROM chat_conversation_topic "
                                       "WHERE conversation_id = :c AND topic_id = :t"),
                                  c=conversation_id, t=topic_id) == 1

        # A quick link goes into the reply with one click and reaches the visitor as sent.
        pane.locator(".chat-links-toggle").click()
        pane.locator(".chat-link-item", has_text="国家税务总局").click()
        reply = pane.locator(".chat-input")
        assert reply.input_value().strip() == "国家税务总局 https://www.chinatax.gov.cn/"
        reply.press("Enter")
        guest.wait_for("message", lambda data: data.get("text") == "国家税务总局 https://www.chinatax.gov.cn/")
        pane.locator(".chat-close").click()
        guest.wait_for("closed", lambda data: data.get("conversation_id") == conversation_id)
    finally:
        guest.close()

    page.goto("/chat/history/")
    page.select_option("#history-topic", str(topic_id))
    page.locator("#history-search button[type=submit]").click()
    row = page.locator("#history tbody tr", has_text=words)
    row.wait_for()
    assert "报税问题" in row.locator(".history-topics").inner_text()
    complaint = live_server.scalar(text("SELECT id FROM chat_topic WHERE name = '投诉'"))
    page.goto(f"/chat/history/?topic_id={complaint}")
    assert page.locator("#history tbody tr", has_text=words).count() == 0
    assert watch.problems() == []
