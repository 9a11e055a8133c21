"""Files and images sent in a chat (文件/图片): checked, stored, and downloadable only by the people in
the conversation.

Rules:
- Allowed are PNG, JPEG, GIF and WebP images, PDF, Word (.docx) and Excel (.xlsx) documents and
  plain text (.txt, .csv). The type is recognised from the content (magic bytes, the parts of an
  Office file, text that is UTF-8 and not markup) and must agree with the file name's extension;
  anything else (HTML or SVG renamed to .png, an executable, an empty file) is refused.
- A file has at most ``max_bytes`` bytes. It is stored under a random name with its SHA-256; the
  original name is kept only for display and download.
- A visitor sends into their open conversation (the chat starts with a message); an agent into a
  conversation they may write in (its owner while active, or an invited agent who has not
  left), never a closed one. The file becomes a message whose
  text is the file name.
- Downloads: the conversation's visitor (by their visitor token), its owner agent, agents who took
  part, supervisors and Admin. Anyone else is told the file does not exist.
Errors: ``ValidationFailed`` (type, size, name), ``AccessDenied``, ``NotFound``, ``Conflict``.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import (
    AgentProfile,
    ChatAttachment,
    ChatMessage,
    Conversation,
    ConversationStatus,
    SenderType,
    Visitor,
)
from app.private_files import private_dir, write_private
from app.services import chat, chat_sites
from app.services.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from app.services.inputs import parse_id


@dataclass(frozen=True)
class FileKind:
    content_type: str
    extensions: tuple[str, ...]
    image: bool = False


PNG = FileKind("image/png", (".png",), True)
JPEG = FileKind("image/jpeg", (".jpg", ".jpeg"), True)
GIF = FileKind("image/gif", (".gif",), True)
WEBP = FileKind("image/webp", (".webp",), True)
PDF = FileKind("application/pdf", (".pdf",))
DOCX = FileKind("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (".docx",))
XLSX = FileKind("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",))
TXT = FileKind("text/plain", (".txt",))
CSV = FileKind("text/csv", (".csv",))
KINDS = (PNG, JPEG, GIF, WEBP, PDF, DOCX, XLSX, TXT, CSV)
ALLOWED_EXTENSIONS = tuple(ext for kind in KINDS for ext in kind.extensions)
# Text that a browser could take for markup is never accepted as .txt/.csv.
_MARKUP = (b"<!doctype", b"<html", b"<script", b"<svg", b"<?xml", b"<body", b"<iframe", b"<head")


def _office_kind(data: bytes) -> FileKind | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "word/document.xml" in names:
        return DOCX
    if "xl/workbook.xml" in names:
        return XLSX
    return None


def _text_kind(data: bytes, extension: str) -> FileKind | None:
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if any(unicodedata.category(c) == "Cc" and c not in "\t\r\n\f" for c in text):
        return None
    head = text.lstrip()[:1024].lower().encode()
    if any(marker in head for marker in _MARKUP):
        return None
    return CSV if extension == ".csv" else TXT


def sniff(data: bytes, filename: str) -> FileKind | None:
    """The allowed kind of a file, recognised from its content and agreeing with the extension of
    *filename*; ``None`` for anything else."""
    extension = os.path.splitext(filename)[1].lower()
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        kind = PNG
    elif data.startswith(b"\xff\xd8\xff"):
        kind = JPEG
    elif data.startswith((b"GIF87a", b"GIF89a")):
        kind = GIF
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = WEBP
    elif data.startswith(b"%PDF-"):
        kind = PDF
    elif data.startswith(b"PK\x03\x04"):
        kind = _office_kind(data)
    elif extension in (".txt", ".csv"):
        kind = _text_kind(data, extension)
    else:
        kind = None
    if kind is None or extension not in kind.extensions:
        return None
    return kind


def clean_filename(filename: object) -> str:
    """The name shown for a file: its last path part without control characters, at most 255
    characters (the extension kept). Raises ``ValidationFailed`` for a missing name."""
    name = filename if isinstance(filename, str) else ""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    if not name:
        raise ValidationFailed({"file": [str(_l("Choose a file to send."))]})
    if len(name) > 255:
        stem, extension = os.path.splitext(name)
        name = stem[:255 - len(extension)] + extension
    return name


def read_limited(stream: BinaryIO, max_bytes: int) -> bytes:
    """Read an upload, refusing it (``ValidationFailed``) when it is empty or larger than *max_bytes*."""
    data = stream.read(max_bytes + 1)
    if not data:
        raise ValidationFailed({"file": [str(_l("The file is empty."))]})
    if len(data) > max_bytes:
        raise ValidationFailed({"file": [str(_l("The file is larger than %(n)s MB.",
                                                n=f"{max_bytes / 1024 / 1024:g}"))]})
    return data


def checked_upload(filename: object, stream: BinaryIO, max_bytes: int) -> tuple[str, bytes, FileKind]:
    """Name, content and kind of an upload that passed every check. Raises ``ValidationFailed``."""
    name = clean_filename(filename)
    data = read_limited(stream, max_bytes)
    kind = sniff(data, name)
    if kind is None:
        raise ValidationFailed({"file": [str(_l(
            "This type of file cannot be sent. Allowed: images (PNG, JPEG, GIF, WebP), PDF, Word, Excel, "
            "text and CSV files."))]})
    return name, data, kind


def _store(session: Session, upload_dir: str, conversation: Conversation, sender_type: SenderType,
           name: str, data: bytes, kind: FileKind, user_id: int | None, sender_name: str | None) -> ChatMessage:
    folder = private_dir(upload_dir)  # chat files are the server user's alone (0700 / 0600)
    storage_name = secrets.token_hex(20) + kind.extensions[0]
    path = folder / storage_name
    temporary = folder / (storage_name + ".part")
    write_private(temporary, data)
    os.replace(temporary, path)
    try:
        attachment = ChatAttachment(conversation_id=conversation.id, uploaded_by=sender_type,
                                    uploader_user_id=user_id, filename=name, content_type=kind.content_type,
                                    size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                                    storage_name=storage_name, created_at=utcnow())
        session.add(attachment)
        session.flush()
        message = ChatMessage(conversation_id=conversation.id, sender_type=sender_type, sender_user_id=user_id,
                              sender_name=sender_name, text=name, attachment_id=attachment.id,
                              created_at=attachment.created_at)
        session.add(message)
        if sender_type == SenderType.visitor:
            conversation.last_visitor_message_at = message.created_at
        elif conversation.first_response_at is None:
            conversation.first_response_at = message.created_at
        session.commit()
    except Exception:
        session.rollback()
        path.unlink(missing_ok=True)
        raise
    return message


def post_visitor_file(session: Session, upload_dir: str, max_bytes: int, visitor_id: int, filename: object,
                      stream: BinaryIO) -> ChatMessage:
    """A visitor sends a file into their open conversation. Commits.

    Raises ``ValidationFailed`` (type, size, name), ``NotFound`` (unknown visitor) and ``Conflict``
    (no open conversation: the visitor writes a message first).
    """
    name, data, kind = checked_upload(filename, stream, max_bytes)
    visitor = session.get(Visitor, visitor_id)
    if visitor is None:
        raise NotFound({"visitor": [str(_l("No such visitor."))]})
    conversation = chat.open_conversation(session, visitor)
    if conversation is None:
        raise Conflict({"conversation_id": [str(_l("Start the chat with a message before sending a file."))]})
    return _store(session, upload_dir, conversation, SenderType.visitor, name, data, kind, None, None)


def post_agent_file(session: Session, upload_dir: str, max_bytes: int, agent: AgentProfile | None,
                    conversation_id: object, filename: object, stream: BinaryIO) -> ChatMessage:
    """An agent sends a file into an active conversation they own or were invited into. Commits.

    Raises ``ValidationFailed`` (type, size, name, conversation id), ``AccessDenied`` (no active
    agent profile, or not their conversation), ``NotFound`` and ``Conflict`` (not active).
    """
    if agent is None or not agent.active:
        raise AccessDenied({"_": [str(_l("You have no active agent profile."))]})
    conversation_id = parse_id(conversation_id)
    if conversation_id is None:
        raise ValidationFailed({"conversation_id": [str(_l("conversation_id is a whole number."))]})
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound({"conversation_id": [str(_l("No such conversation."))]})
    if conversation.status == ConversationStatus.closed:
        raise Conflict({"conversation_id": [str(_l("This conversation is closed."))]})
    if not chat.is_writer(session, agent, conversation):
        raise AccessDenied({"conversation_id": [str(_l("This is not your conversation."))]})
    name, data, kind = checked_upload(filename, stream, max_bytes)
    return _store(session, upload_dir, conversation, SenderType.agent, name, data, kind, agent.user_id,
                  agent.display_name)


def post_agent_document(session: Session, upload_dir: str, agent: AgentProfile, conversation: Conversation,
                        filename: str, data: bytes) -> ChatMessage:
    """A document the desk made (a statement PDF) sent by *agent* into *conversation*, which the
    caller checked they may write in: stored and sent like an uploaded file, after the same checks
    of its name and content. Commits (with whatever the caller added to the transaction).

    Raises ``ValidationFailed`` (name, not an allowed file)."""
    name = clean_filename(filename)
    kind = sniff(data, name)
    if kind is None or not data:
        raise ValidationFailed({"file": [str(_l("This type of file cannot be sent."))]})
    return _store(session, upload_dir, conversation, SenderType.agent, name, data, kind, agent.user_id,
                  agent.display_name)


def _not_found() -> NotFound:
    return NotFound({"file": [str(_l("No such file."))]})


def attachment_for_link(session: Session, secret_key: str, attachment_id: int, token: object) -> ChatAttachment:
    """The attachment, when *token* is a genuine, unexpired link token for it
    (``chat_sites.file_link_token``). Raises ``NotFound`` otherwise (never telling whether the
    file exists)."""
    if chat_sites.attachment_id_from_link(secret_key, token) != attachment_id:
        raise _not_found()
    attachment = session.get(ChatAttachment, attachment_id)
    if attachment is None:
        raise _not_found()
    return attachment


def attachment_for_user(session: Session, attachment_id: int, user_id: int, sees_every_chat: bool) -> ChatAttachment:
    """The attachment, for a user who may see its conversation: supervisors and Admin
    (*sees_every_chat*), the owner agent and agents who took part (``chat.Part.ever``, as for the
    transcript). Raises ``NotFound`` otherwise."""
    attachment = session.get(ChatAttachment, attachment_id)
    if attachment is None:
        raise _not_found()
    if sees_every_chat:
        return attachment
    conversation = session.get(Conversation, attachment.conversation_id)
    if not chat.takes_part(session, conversation, user_id, chat.Part.ever):
        raise _not_found()
    return attachment


def file_path(upload_dir: str, attachment: ChatAttachment) -> Path:
    """Where an attachment is stored (its random name never leaves the folder)."""
    return Path(upload_dir) / os.path.basename(attachment.storage_name)


def is_image(attachment: ChatAttachment) -> bool:
    return attachment.content_type in (PNG.content_type, JPEG.content_type, GIF.content_type, WEBP.content_type)
