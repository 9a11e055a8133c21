"""Files and images in a chat: ``POST /chat/files`` by a visitor (site key + visitor token from an
allowed Origin) or an agent (session + CSRF header), type sniffing, the size limit, the fan-out to
both sides, and ``GET /chat/files/<id>`` only for the people in the conversation."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models.base import utcnow
from app.models.chat import (
    AgentProfile,
    AgentStatus,
    ChatAttachment,
    ChatBlock,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationParticipant,
    ConversationStatus,
    ParticipantRole,
    SenderType,
    Visitor,
)
from app.services import chat_files, chat_sites
from app.services.users import create_user
from tests.conftest import PASSWORD
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def _office(part: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(part, "<document/>")
    return out.getvalue()


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture(autouse=True)
def upload_dir(app, tmp_path) -> Path:
    app.config["CHAT_UPLOAD_DIR"] = str(tmp_path / "chat-files")  # restored after each test
    return tmp_path / "chat-files"


@pytest.fixture
def site(app):
    site = chat_sites.prepare_new_site(ChatSite(name="演示站点", allowed_origins=ORIGIN))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def agent_profile(app, user_id):
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=3, status=AgentStatus.online)
    db.session.add(profile)
    db.session.commit()
    return profile


class Chat:
    """A visitor's open conversation served by the agent, with both sockets connected."""

    def __init__(self, app, site, agent_profile, login_as) -> None:
        self.widget = FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                                        auth={"site_key": site.site_key}, flask_test_client=app.test_client())
        [session] = received(self.widget, "session", "/visitor", 2.0)
        self.token = session["visitor_token"]
        self.visitor = db.session.scalar(select(Visitor).where(Visitor.uid == session["visitor_id"]))
        self.conversation = Conversation(site_id=site.id, visitor_id=self.visitor.id, agent_id=agent_profile.id,
                                         status=ConversationStatus.active)
        db.session.add(self.conversation)
        db.session.commit()
        self.agent_http = login_as("agent")
        self.console = FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=self.agent_http)
        assert self.console.is_connected("/agent")
        self.site = site
        self.app = app

    def visitor_upload(self, data: bytes = PNG, name: str = "发票.png", origin: str = ORIGIN, token: str | None = None):
        return self.app.test_client().post("/chat/files", headers={"Origin": origin}, data={
            "site_key": self.site.site_key, "visitor_token": token or self.token,
            "file": (io.BytesIO(data), name)}, content_type="multipart/form-data")

    def agent_upload(self, data: bytes = PNG, name: str = "报价.png", client=None, headers=None):
        return (client or self.agent_http).post("/chat/files", headers=headers or {}, data={
            "conversation_id": str(self.conversation.id), "file": (io.BytesIO(data), name)},
            content_type="multipart/form-data")


@pytest.fixture
def chat(app, site, agent_profile, login_as) -> Chat:
    return Chat(app, site, agent_profile, login_as)


# --- upload -----------------------------------------------------------------------------------


def test_a_visitor_sends_an_image_and_the_agent_receives_it(chat, upload_dir):
    response = chat.visitor_upload()
    assert response.status_code == 201
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    payload = response.get_json()["message"]
    assert (payload["sender_type"], payload["text"], payload["conversation_id"]) == (
        "visitor", "发票.png", chat.conversation.id)
    assert {k: payload["attachment"][k] for k in ("filename", "content_type", "size")} == {
        "filename": "发票.png", "content_type": "image/png", "size": len(PNG)}
    [heard] = received(chat.console, "message", "/agent", 2.0)
    assert heard["attachment"]["id"] == payload["attachment"]["id"]
    assert [m["id"] for m in received(chat.widget, "message", "/visitor", 2.0)] == [payload["id"]]
    attachment = db.session.get(ChatAttachment, payload["attachment"]["id"])
    stored = upload_dir / attachment.storage_name
    assert stored.read_bytes() == PNG and attachment.sha256 == hashlib.sha256(PNG).hexdigest()
    assert "发票" not in attachment.storage_name
    assert db.session.get(ChatMessage, payload["id"]).attachment_id == attachment.id


def test_chat_files_are_readable_by_the_server_user_only(chat, upload_dir):
    import os
    import stat

    old_umask = os.umask(0o022)  # the usual umask would make them world-readable
    try:
        response = chat.visitor_upload()
    finally:
        os.umask(old_umask)
    assert response.status_code == 201
    attachment = db.session.get(ChatAttachment, response.get_json()["message"]["attachment"]["id"])
    assert stat.S_IMODE((upload_dir / attachment.storage_name).stat().st_mode) == 0o600
    assert stat.S_IMODE(upload_dir.stat().st_mode) == 0o700


def test_an_agent_sends_a_pdf_and_the_visitor_receives_it(chat):
    response = chat.agent_upload(PDF, "报价单.pdf")
    assert response.status_code == 201, response.get_json()
    payload = response.get_json()["message"]
    assert (payload["sender_type"], payload["sender_name"], payload["attachment"]["content_type"]) == (
        "agent", "客服小张", "application/pdf")
    [heard] = received(chat.widget, "message", "/visitor", 2.0)
    assert heard["attachment"]["filename"] == "报价单.pdf"
    db.session.expire_all()
    assert db.session.get(Conversation, chat.conversation.id).first_response_at is not None


REFUSED = [
    (b"<html><script>alert(1)</script></html>", "cute.png"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "logo.png"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "logo.svg"),
    (b"<!DOCTYPE html><p>hi</p>", "notes.txt"),
    (b"  <script>alert(1)</script>", "data.csv"),
    (PNG, "picture.pdf"),
    (PDF, "report.exe"),
    (b"MZ\x90\x00\x03\x00\x00\x00", "setup.exe"),
    (_office("other/thing.xml"), "table.xlsx"),
    (b"\xff\xfe\x00\x00binary", "notes.txt"),
]


@pytest.mark.parametrize(("data", "name"), REFUSED)
def test_a_file_is_recognised_by_its_content_and_markup_is_never_accepted(data, name):
    assert chat_files.sniff(data, name) is None


@pytest.mark.parametrize(("data", "name", "content_type"), [
    (PNG, "a.png", "image/png"),
    (b"GIF89a\x01\x00\x01\x00", "a.gif", "image/gif"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "photo.JPG", "image/jpeg"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "a.webp", "image/webp"),
    (PDF, "a.pdf", "application/pdf"),
    (_office("word/document.xml"), "合同.docx", chat_files.DOCX.content_type),
    (_office("xl/workbook.xml"), "科目余额表.xlsx", chat_files.XLSX.content_type),
    ("日期,金额\n2026-01-01,100\n".encode(), "流水.csv", "text/csv"),
    ("请帮我核对这张发票".encode(), "说明.txt", "text/plain"),
])
def test_allowed_types_are_recognised_by_their_content(data, name, content_type):
    assert chat_files.sniff(data, name).content_type == content_type


@pytest.mark.parametrize(("data", "name"), [REFUSED[0], (b"", "empty.txt")])
def test_files_of_a_refused_type_are_not_stored(chat, upload_dir, data, name):
    response = chat.visitor_upload(data, name)
    assert response.status_code == 400
    assert response.get_json()["errors"]["file"]
    assert _count(ChatAttachment) == 0 and _count(ChatMessage) == 0
    assert not upload_dir.exists() or list(upload_dir.iterdir()) == []


def test_an_agent_sends_a_spreadsheet(chat):
    response = chat.agent_upload(_office("xl/workbook.xml"), "科目余额表.xlsx")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["message"]["attachment"]["content_type"] == chat_files.XLSX.content_type


def test_a_file_over_the_size_limit_is_refused(app, chat, upload_dir):
    app.config["CHAT_UPLOAD_MAX_BYTES"] = 64
    response = chat.visitor_upload(PNG + b"\x00" * 64)
    assert response.status_code == 400 and "MB" in response.get_json()["errors"]["file"][0]
    assert _count(ChatAttachment) == 0
    assert not upload_dir.exists() or list(upload_dir.iterdir()) == []


def test_a_path_in_the_file_name_is_dropped(chat):
    response = chat.visitor_upload(PNG, "../../etc/收据.png")
    assert response.get_json()["message"]["attachment"]["filename"] == "收据.png"


def test_a_visitor_without_an_open_conversation_writes_a_message_first(chat):
    chat.conversation.status = ConversationStatus.closed
    db.session.commit()
    response = chat.visitor_upload()
    assert response.status_code == 409
    assert _count(ChatAttachment) == 0


@pytest.mark.parametrize("case", ["other origin", "forged token", "unknown site"])
def test_a_visitor_upload_needs_the_sites_origin_and_a_genuine_token(chat, case):
    if case == "other origin":
        response = chat.visitor_upload(origin="https://evil.example")
    elif case == "forged token":
        response = chat.visitor_upload(token=chat.token[:-3] + "abc")
    else:
        response = chat.app.test_client().post("/chat/files", headers={"Origin": ORIGIN}, data={
            "site_key": "nope", "visitor_token": chat.token, "file": (io.BytesIO(PNG), "a.png")})
    assert response.status_code == 403
    assert _count(ChatAttachment) == 0


def test_a_blocked_visitor_cannot_upload_either(chat):
    """The widget's connection and its uploads are admitted by one rule: a block stops both."""
    db.session.add(ChatBlock(site_id=chat.site.id, visitor_uid=chat.visitor.uid, reason="spam"))
    db.session.commit()
    response = chat.visitor_upload()
    assert response.status_code == 403
    assert _count(ChatAttachment) == 0


def test_the_preflight_answers_only_an_origin_of_a_site(chat):
    allowed = chat.app.test_client().options("/chat/files", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = chat.app.test_client().options("/chat/files", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_an_agent_may_send_only_into_their_own_conversation(app, chat, login_as, user_id):
    create_user(app, "agent2", PASSWORD, ["Agent"], first_name="agent2")
    other = AgentProfile(user_id=user_id("agent2"), display_name="客服小李")
    db.session.add(other)
    db.session.commit()
    stranger = login_as("agent2")
    assert chat.agent_upload(client=stranger).status_code == 403
    assert chat.agent_upload(client=login_as("accountant")).status_code == 403
    assert _count(ChatAttachment) == 0
    db.session.add(ConversationParticipant(conversation_id=chat.conversation.id, user_id=user_id("agent2"),
                                           role=ParticipantRole.invited))
    db.session.commit()
    assert chat.agent_upload(client=stranger).status_code == 201  # an invited agent writes too


def test_an_agent_upload_needs_the_csrf_header(app, chat):
    app.config["WTF_CSRF_ENABLED"] = True
    assert chat.agent_upload().status_code == 403
    assert _count(ChatAttachment) == 0
    page = chat.agent_http.get("/cannedreplymodelview/add").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    assert chat.agent_upload(headers={"X-CSRFToken": token}).status_code == 201


# --- download ---------------------------------------------------------------------------------


def test_the_visitor_downloads_their_image_inline_with_strict_headers(chat):
    attachment = chat.agent_upload().get_json()["message"]["attachment"]
    assert chat.token not in attachment["url"]  # the link carries its own token, not the visitor's
    response = chat.app.test_client().get(attachment["url"], headers={"Origin": ORIGIN})
    assert response.status_code == 200 and response.data == PNG
    assert response.mimetype == "image/png"
    assert response.headers["Content-Disposition"].startswith("inline")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_a_document_is_always_downloaded_as_an_attachment(chat):
    attachment_id = chat.visitor_upload(b"a,b\n1,2\n", "data.csv").get_json()["message"]["attachment"]["id"]
    response = chat.agent_http.get(f"/chat/files/{attachment_id}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.mimetype == "text/csv"


def test_only_the_people_in_the_conversation_download_its_files(app, chat, site, login_as, user_id):
    attachment = chat.visitor_upload().get_json()["message"]["attachment"]
    attachment_id, link = attachment["id"], attachment["url"]
    url = f"/chat/files/{attachment_id}"
    another = chat.visitor_upload(name="另一张.png").get_json()["message"]["attachment"]
    create_user(app, "agent2", PASSWORD, ["Agent"], first_name="agent2")
    db.session.add(AgentProfile(user_id=user_id("agent2"), display_name="客服小李"))
    db.session.commit()
    other_widget = FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                                     auth={"site_key": site.site_key}, flask_test_client=app.test_client())
    [other] = received(other_widget, "session", "/visitor", 2.0)
    anonymous = app.test_client()
    outcomes = {
        "visitor": anonymous.get(link).status_code,
        "visitor token": anonymous.get(f"{url}?t={chat.token}").status_code,  # not a file link
        "other visitor's token": anonymous.get(f"{url}?k={other['visitor_token']}").status_code,
        "another file's link": anonymous.get(f"{url}?k={another['url'].split('?k=')[1]}").status_code,
        "garbage token": anonymous.get(f"{url}?k=garbage").status_code,
        "no token": anonymous.get(url).status_code,
        "owner agent": chat.agent_http.get(url).status_code,
        "other agent": login_as("agent2").get(url).status_code,
        "supervisor": login_as("manager").get(url).status_code,
        "admin": login_as("admin").get(url).status_code,
        "accountant": login_as("accountant").get(url).status_code,
        "no such file": chat.agent_http.get(f"/chat/files/{attachment_id + 1000}").status_code,
    }
    assert outcomes == {"visitor": 200, "visitor token": 403, "other visitor's token": 404,
                        "another file's link": 404, "garbage token": 404, "no token": 403,
                        "owner agent": 200, "other agent": 404, "supervisor": 200, "admin": 200,
                        "accountant": 403, "no such file": 404}
    # an agent invited in who has left since took part: they keep the files, as the transcript
    conversation_id = db.session.get(ChatAttachment, attachment_id).conversation_id
    db.session.add(ConversationParticipant(conversation_id=conversation_id, user_id=user_id("agent2"),
                                           role=ParticipantRole.invited, left_at=utcnow()))
    db.session.commit()
    assert login_as("agent2").get(url).status_code == 200


def test_a_visitor_file_message_is_resent_with_its_attachment(chat):
    payload = chat.visitor_upload().get_json()["message"]
    ack = chat.widget.emit("resume", {"last_message_id": 0}, namespace="/visitor", callback=True)
    assert ack["resent"] >= 1
    resent = [m for m in received(chat.widget, "message", "/visitor", 2.0) if m["id"] == payload["id"]]
    assert resent and resent[-1]["attachment"]["id"] == payload["attachment"]["id"]
    assert db.session.get(ChatMessage, payload["id"]).sender_type == SenderType.visitor


def test_visitor_uploads_count_against_the_visitors_rate_limit(app, chat):
    app.config["CHAT_VISITOR_RATE"] = "2 per minute"
    assert [chat.visitor_upload().status_code for _ in range(3)] == [201, 201, 429]
    assert _count(ChatAttachment) == 2


def test_a_file_link_expires_and_names_one_file_only(app):
    secret = app.config["SECRET_KEY"]
    token = chat_sites.file_link_token(secret, 42)
    assert chat_sites.attachment_id_from_link(secret, token) == 42
    assert chat_sites.attachment_id_from_link(secret, token, max_age=-1) is None  # expired
    assert chat_sites.attachment_id_from_link("another-secret-key-of-32-bytes-or-more", token) is None
    assert chat_sites.attachment_id_from_link(secret, chat_sites.visitor_token(secret, "s", "v")) is None
    assert chat_sites.attachment_id_from_link(secret, None) is None
