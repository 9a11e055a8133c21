"""A returning visitor's earlier conversations (历史对话, the ``history`` event, page by page) and
the transcript they download from the widget (``POST /chat/transcript``, rendered by a report
worker; a long one as a background job) — their own conversations only, never notes or whispers."""

from __future__ import annotations

import io
import time
from datetime import datetime, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models.chat import (
    AgentProfile,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationStatus,
    SenderType,
    Visitor,
)
from app.models.security import AuditLog
from app.services import chat_history, chat_sites
from reports import jobs
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"
OTHER_ORIGIN = "https://evil.example.com"


@pytest.fixture(scope="module", autouse=True)
def _pool_stops():
    """The local report workers start once for this module and stop after it."""
    yield
    jobs.shutdown_pool()


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def site(app):
    site = chat_sites.prepare_new_site(ChatSite(name="示范代账", allowed_origins=ORIGIN))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def agent(app, user_id):
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小张")
    db.session.add(profile)
    db.session.commit()
    return profile


def _visitor(site: ChatSite, uid: str, **fields) -> Visitor:
    visitor = Visitor(site_id=site.id, uid=uid, **fields)
    db.session.add(visitor)
    db.session.commit()
    return visitor


def _token(app, site: ChatSite, visitor: Visitor) -> str:
    return chat_sites.visitor_token(app.config["SECRET_KEY"], site.site_key, visitor.uid)


def _chat(visitor: Visitor, day: int, agent: AgentProfile | None = None, status=ConversationStatus.closed,  # noqa: ANN001
          texts: tuple[str, ...] = ()) -> Conversation:
    started = datetime(2026, 3, day, 2, 0)
    conversation = Conversation(site_id=visitor.site_id, visitor_id=visitor.id, agent_id=agent.id if agent else None,
                                status=status, queued_at=started,
                                closed_at=started + timedelta(minutes=20) if status == ConversationStatus.closed
                                else None)
    db.session.add(conversation)
    db.session.flush()
    lines = [(SenderType.visitor, None, f"第{day}天的问题"), (SenderType.agent, "客服小张", f"第{day}天的回答"),
             (SenderType.note, "客服小张", f"第{day}天的内部备注"), (SenderType.whisper, "主管", f"第{day}天的悄悄话"),
             (SenderType.system, None, "对话已结束")]
    lines += [(SenderType.visitor, None, text) for text in texts]
    for kind, name, text in lines:
        db.session.add(ChatMessage(conversation_id=conversation.id, sender_type=kind, sender_name=name, text=text))
    db.session.commit()
    return conversation


def _widget(app, site: ChatSite, token: str | None = None, **auth) -> FreshSocketClient:
    client = FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                               auth={"site_key": site.site_key, **({"visitor_token": token} if token else {}), **auth},
                               flask_test_client=app.test_client())
    assert client.is_connected("/visitor")
    return client


def _history(widget, payload=None) -> dict:  # noqa: ANN001
    return widget.emit("history", payload if payload is not None else {}, namespace="/visitor", callback=True)


def _texts(conversation: dict) -> list[str]:
    return [m["text"] for m in conversation["messages"]]


# --- earlier conversations ------------------------------------------------------------------------


def test_a_returning_visitor_pages_through_their_closed_conversations_without_internal_messages(
        app, site, agent):
    visitor = _visitor(site, "returning")
    chats = [_chat(visitor, day, agent) for day in (1, 2, 3, 4)]
    current = _chat(visitor, 5, agent, status=ConversationStatus.active)
    stranger = _chat(_visitor(site, "stranger"), 6, agent)
    widget = _widget(app, site, _token(app, site, visitor))
    [session] = received(widget, "session", "/visitor", 2.0)
    assert (session["returning"], session["history"], session["conversation_id"]) == (True, True, current.id)

    first = _history(widget)
    assert [c["conversation_id"] for c in first["conversations"]] == [chats[3].id, chats[2].id, chats[1].id]
    assert first["more"] is True
    newest = first["conversations"][0]
    assert _texts(newest) == ["第4天的问题", "第4天的回答", "对话已结束"]  # no note, no whisper
    assert (newest["started_at"], newest["closed_at"], newest["agent_name"], newest["truncated"]) == (
        "2026-03-04T02:00:00Z", "2026-03-04T02:20:00Z", "客服小张", False)
    assert newest["messages"][1]["sender_type"] == "agent" and newest["messages"][1]["sender_name"] == "客服小张"

    rest = _history(widget, {"before_id": chats[1].id})
    assert [c["conversation_id"] for c in rest["conversations"]] == [chats[0].id]
    assert rest["more"] is False
    seen = first["conversations"] + rest["conversations"]
    assert stranger.id not in [c["conversation_id"] for c in seen] and current.id not in [
        c["conversation_id"] for c in seen]
    assert not any("内部备注" in text or "悄悄话" in text for c in seen for text in _texts(c))


def test_a_new_visitor_has_no_history_and_asking_gives_an_empty_page(app, site, agent):
    _chat(_visitor(site, "someone-else"), 1, agent)
    widget = _widget(app, site)
    [session] = received(widget, "session", "/visitor", 2.0)
    assert session["history"] is False
    assert _history(widget) == {"conversations": [], "more": False}


def test_a_verified_user_sees_the_conversations_of_their_other_browsers_too(app, site, agent):
    site.identity_secret = "s3cret-identity"
    db.session.commit()
    laptop = _visitor(site, "laptop", external_user_id="u-42")
    phone = _visitor(site, "phone")
    other_user = _visitor(site, "other-user", external_user_id="u-43")
    on_laptop, other = _chat(laptop, 1, agent), _chat(other_user, 2, agent)
    on_phone = _chat(phone, 3, agent)
    proof = {"user_id": "u-42", "user_hash": chat_sites.identity_hash("s3cret-identity", "u-42")}
    verified = _widget(app, site, _token(app, site, phone), **proof)
    [session] = received(verified, "session", "/visitor", 2.0)
    assert session["history"] is True
    assert [c["conversation_id"] for c in _history(verified)["conversations"]] == [on_phone.id, on_laptop.id]
    # the same browser without the proof (the user signed out of the host site): its own only
    plain = _widget(app, site, _token(app, site, phone))
    assert [c["conversation_id"] for c in _history(plain)["conversations"]] == [on_phone.id]
    assert other.id not in [c["conversation_id"] for c in _history(verified)["conversations"]]


def test_a_long_earlier_conversation_is_cut_and_says_so(app, site, agent, monkeypatch):
    monkeypatch.setattr(chat_history, "MAX_MESSAGES", 4)
    visitor = _visitor(site, "talkative")
    _chat(visitor, 1, agent, texts=("还有一个问题", "最后一个问题"))
    [conversation] = _history(_widget(app, site, _token(app, site, visitor)))["conversations"]
    assert _texts(conversation) == ["第1天的问题", "第1天的回答", "对话已结束", "还有一个问题"]
    assert conversation["truncated"] is True


@pytest.mark.parametrize("payload, field", [
    ({"before_id": "12"}, "before_id"),
    ({"before_id": 0}, "before_id"),
    ({"before_id": -1}, "before_id"),
    ({"before_id": 2**31}, "before_id"),
    ({"before_id": 2**64}, "before_id"),
    ({"before_id": 1.5}, "before_id"),
    ({"before_id": True}, "before_id"),
    ({"before_id": [1]}, "before_id"),
    ({"before_id": 1, "note": "x\u0000"}, "note"),
    ([1, 2], "_"),
    ("history", "_"),
])
def test_bad_history_payloads_are_refused_with_the_field_named(app, site, agent, payload, field):
    visitor = _visitor(site, "prober")
    _chat(visitor, 1, agent)
    widget = _widget(app, site, _token(app, site, visitor))
    widget.get_received("/visitor")
    ack = _history(widget, payload)
    assert field in ack["errors"], ack
    [error] = [e["args"][0] for e in widget.get_received("/visitor") if e["name"] == "error"]
    assert error["event"] == "history" and field in error["errors"]


def test_an_id_of_another_visitors_conversation_shows_nothing_of_it(app, site, agent):
    mine = _visitor(site, "mine")
    _chat(mine, 1, agent)
    theirs = _chat(_visitor(site, "theirs"), 2, agent)
    widget = _widget(app, site, _token(app, site, mine))
    page = _history(widget, {"before_id": theirs.id + 1})
    assert theirs.id not in [c["conversation_id"] for c in page["conversations"]]


# --- the transcript download ----------------------------------------------------------------------


def _download(app, site: ChatSite, token: str | None, origin: str = ORIGIN, **form):  # noqa: ANN201
    data = {"site_key": site.site_key, **({"visitor_token": token} if token else {}), **form}
    return app.test_client().post("/chat/transcript", data=data, headers={"Origin": origin})


def _pdf_text(response) -> str:  # noqa: ANN001
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/pdf"
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)


def test_a_visitor_downloads_the_transcript_of_their_latest_chat_without_internal_messages(app, site, agent):
    visitor = _visitor(site, "downloader", name="王先生")
    _chat(visitor, 1, agent)
    latest = _chat(visitor, 2, agent, texts=("<b>发票</b>怎么开？",))
    response = _download(app, site, _token(app, site, visitor))
    text = _pdf_text(response)
    assert "第2天的问题" in text and "第2天的回答" in text and "<b>发票</b>怎么开？" in text
    assert "第1天" not in text and "内部备注" not in text and "悄悄话" not in text
    assert "王先生" in text and "示范代账" in text
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Content-Disposition" in response.headers["Access-Control-Expose-Headers"]
    assert response.headers["Content-Disposition"].startswith("attachment;")
    [row] = db.session.scalars(select(AuditLog).where(AuditLog.action == "download")).all()
    assert (row.username, row.object_type, row.object_id) == ("visitor:downloader", "chat_conversation",
                                                              str(latest.id))


def test_a_visitor_downloads_an_earlier_chat_in_english(app, site, agent):
    visitor = _visitor(site, "english")
    first, _ = _chat(visitor, 1, agent), _chat(visitor, 2, agent)
    text = _pdf_text(_download(app, site, _token(app, site, visitor), conversation_id=str(first.id), language="en-GB"))
    assert "第1天的问题" in text and "第2天" not in text
    assert "Chat transcript" in text


def test_only_the_visitors_own_conversations_are_downloaded(app, site, agent):
    visitor = _visitor(site, "honest")
    _chat(visitor, 1, agent)
    theirs = _chat(_visitor(site, "victim"), 2, agent)
    token = _token(app, site, visitor)
    response = _download(app, site, token, conversation_id=str(theirs.id))
    assert response.status_code == 404 and response.json["errors"]["conversation_id"]
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN  # the widget can read why
    assert _download(app, site, token, conversation_id="abc").status_code == 422
    assert _download(app, site, token, conversation_id=str(2**31)).status_code == 422
    assert _download(app, site, None).status_code == 403  # no token: nobody's transcript
    assert _download(app, site, "forged.token").status_code == 403
    refused = _download(app, site, token, origin=OTHER_ORIGIN)  # another website's page
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    nobody = _visitor(site, "no-chats")
    assert _download(app, site, _token(app, site, nobody)).status_code == 404
    assert _count(AuditLog, AuditLog.action == "download") == 0


def test_a_visitor_may_download_a_limited_number_of_transcripts_an_hour(app, site, agent, monkeypatch):
    monkeypatch.setattr(chat_history, "MAX_DOWNLOADS", 1)
    visitor = _visitor(site, "greedy")
    _chat(visitor, 1, agent)
    token = _token(app, site, visitor)
    assert _download(app, site, token).status_code == 200
    response = _download(app, site, token)
    assert response.status_code == 403 and response.json["message"]
    assert _count(AuditLog, AuditLog.action == "download") == 1


def test_a_long_transcript_is_made_in_the_background_and_fetched_with_its_link(app, site, agent):
    app.config.update(REPORTS_SYNC_MAX_ROWS=3, REPORTS_CHUNK_ROWS=2)
    visitor = _visitor(site, "patient")
    conversation = _chat(visitor, 1, agent, texts=("再问一句", "还有一句"))
    response = _download(app, site, _token(app, site, visitor))
    assert response.status_code == 202, response.data[:300]
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    job_url = response.json["job_url"]
    assert "?k=" in job_url and _token(app, site, visitor) not in job_url
    client = app.test_client()
    if app.config.get("REDIS_URL"):
        from rq import Queue, SimpleWorker

        connection = app.extensions["reports_store"].redis
        SimpleWorker([Queue(jobs.QUEUE, connection=connection)], connection=connection).work(burst=True)
    deadline = time.monotonic() + 120
    state = client.get(job_url, headers={"Origin": ORIGIN}).json
    while state["status"] != "done" and time.monotonic() < deadline:
        assert state["status"] in ("queued", "running"), state
        time.sleep(0.2)
        state = client.get(job_url).json
    assert state["status"] == "done" and state["progress"] == 1.0
    text = _pdf_text(client.get(state["download_url"]))
    assert "再问一句" in text and "还有一句" in text and "内部备注" not in text
    job_id = response.json["job_id"]
    assert client.get(f"/chat/transcript/jobs/{job_id}").status_code == 403  # no link token
    assert client.get(f"/chat/transcript/jobs/{job_id}?k=forged").status_code == 404
    other = chat_history.job_link_token(app.config["SECRET_KEY"], "0" * 32, visitor.id)
    assert client.get(f"/chat/transcript/jobs/{job_id}?k={other}").status_code == 404  # another job's link
    assert client.get(f"/chat/transcript/jobs/{job_id}/file").status_code == 403
    [row] = db.session.scalars(select(AuditLog).where(AuditLog.action == "download")).all()
    assert row.object_id == str(conversation.id)
