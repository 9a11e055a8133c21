"""Archive rules (档案): which files are accepted, where they are stored, who may read them.

Accepted types are recognised by extension AND content signature: PDF, PNG, JPEG, GIF, WebP,
XLSX and OFD (both ZIP containers, checked for their marker entries). Files live under
``UPLOAD_DIR`` (inside instance/, never under static) with random names; the original name is
kept only as metadata. A rejected upload stores nothing: the file is written to a temporary
name, the row is committed, and only then is the file moved into place.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.models.documents import Document, DocumentType
from app.private_files import private_dir, write_private
from app.services.errors import ValidationFailed

PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class FileKind:
    extensions: tuple[str, ...]
    content_type: str


KINDS = {
    "pdf": FileKind((".pdf",), "application/pdf"),
    "png": FileKind((".png",), "image/png"),
    "jpeg": FileKind((".jpg", ".jpeg"), "image/jpeg"),
    "gif": FileKind((".gif",), "image/gif"),
    "webp": FileKind((".webp",), "image/webp"),
    "xlsx": FileKind((".xlsx",), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "ofd": FileKind((".ofd",), "application/ofd"),
}
ALLOWED_EXTENSIONS = sorted({ext for kind in KINDS.values() for ext in kind.extensions})


def sniff(head: bytes, data_for_zip: BinaryIO | None) -> str | None:
    """Return the kind of a file from its first bytes (and ZIP directory), or None."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"PK\x03\x04") and data_for_zip is not None:
        try:
            with zipfile.ZipFile(data_for_zip) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            return None
        if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
            return "xlsx"
        if "OFD.xml" in names:
            return "ofd"
    return None


def safe_filename(name: str) -> str:
    """Keep the base name only, without path separators or control characters."""
    name = os.path.basename((name or "").replace("\\", "/"))
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    if len(name) > 255:  # shorten the stem: the extension decides whether the type is allowed
        suffix = Path(name).suffix[:16]
        name = name[: 255 - len(suffix)] + suffix
    return name or "file"


def check_upload(filename: str, data: bytes, max_bytes: int) -> FileKind:
    """Validate an upload; return its kind or raise ``ValidationFailed`` on the ``file`` field.

    Rules: not empty, at most *max_bytes*, an allowed extension, and content matching it.
    """
    if not data:
        raise ValidationFailed({"file": [str(_l("The file is empty."))]})
    if len(data) > max_bytes:
        raise ValidationFailed({"file": [str(_l("The file is larger than %(mb)s MB.",
                                                 mb=round(max_bytes / 1024 / 1024, 1)))]})
    ext = Path(filename).suffix.lower()
    if ext not in ALLOWED_EXTENSIONS:
        raise ValidationFailed({"file": [str(_l("File type not allowed. Allowed: %(types)s.",
                                                 types=", ".join(ALLOWED_EXTENSIONS)))]})
    kind_name = sniff(data[:16], io.BytesIO(data))
    kind = KINDS.get(kind_name or "")
    if kind is None or ext not in kind.extensions:
        raise ValidationFailed({"file": [str(_l("The file's content does not match its type."))]})
    return kind


@dataclass
class StagedFile:
    """An accepted upload written under a temporary name, waiting for its row to be committed."""

    temp: Path
    final: Path

    def place(self) -> None:
        """Move the file into place (after the commit that holds its row)."""
        self.temp.replace(self.final)

    def discard(self) -> None:
        """Remove the temporary file (the row was not committed)."""
        self.temp.unlink(missing_ok=True)


def stage_document(
    session: Session,
    upload_dir: str | Path,
    max_bytes: int,
    *,
    client_id: int,
    filename: str,
    stream: BinaryIO,
    doc_type: DocumentType | str,
    title: str | None = None,
    contract_id: int | None = None,
    period: str | None = None,
    note: str | None = None,
    uploaded_by_id: int | None = None,
) -> tuple[Document, StagedFile]:
    """Validate an upload, write it under a temporary name and add its row to *session*, flushed
    but not committed: the caller commits (with whatever else belongs to the same change) and then
    calls ``place()``, or ``discard()`` when it does not commit.

    Raises ``ValidationFailed`` (nothing written, no file) for a bad type, size, period, or a
    contract that belongs to another client.
    """
    from app.models.contracts import Contract
    from app.models.crm import Client

    data = stream.read(max_bytes + 1)
    filename = safe_filename(filename)
    kind = check_upload(filename, data, max_bytes)
    errors: dict[str, list[str]] = {}
    try:
        doc_type = DocumentType(getattr(doc_type, "value", doc_type))
    except ValueError:
        errors["doc_type"] = [str(_l("Not a valid value."))]
    if period and not PERIOD_RE.match(period):
        errors["period"] = [str(_l("The period must look like 2026-01."))]
    if session.get(Client, client_id) is None:
        errors["client_id"] = [str(_l("No such client."))]
    if contract_id is not None:
        contract = session.get(Contract, contract_id)
        if contract is None or contract.client_id != client_id:
            errors["contract_id"] = [str(_l("The contract does not belong to this client."))]
    if errors:
        raise ValidationFailed(errors)

    directory = private_dir(upload_dir)  # archives are the server user's alone (0700 / 0600)
    stored_name = f"{uuid.uuid4().hex}{kind.extensions[0]}"
    staged = StagedFile(directory / f".{stored_name}.part", directory / stored_name)
    write_private(staged.temp, data)
    try:
        document = Document(
            client_id=client_id, contract_id=contract_id, period=period or None, doc_type=doc_type,
            title=((title or "").strip() or filename)[:200], original_filename=filename,
            stored_name=stored_name, content_type=kind.content_type, size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(), uploaded_by_id=uploaded_by_id, note=note,
        )
        session.add(document)
        session.flush()
    except Exception:
        staged.discard()
        raise
    return document, staged


def store_document(
    session: Session,
    upload_dir: str | Path,
    max_bytes: int,
    *,
    client_id: int,
    filename: str,
    stream: BinaryIO,
    doc_type: DocumentType | str,
    title: str | None = None,
    contract_id: int | None = None,
    period: str | None = None,
    note: str | None = None,
    uploaded_by_id: int | None = None,
) -> Document:
    """Validate and store an uploaded document; commit its row, then place the file.

    Raises ``ValidationFailed`` (nothing stored) for a bad type, size, period, or a contract
    that belongs to another client.
    """
    try:
        document, staged = stage_document(
            session, upload_dir, max_bytes, client_id=client_id, filename=filename, stream=stream,
            doc_type=doc_type, title=title, contract_id=contract_id, period=period, note=note,
            uploaded_by_id=uploaded_by_id)
    except ValidationFailed:
        raise
    except Exception:
        session.rollback()
        raise
    try:
        session.commit()
    except Exception:
        session.rollback()
        staged.discard()
        raise
    staged.place()
    return document


def document_path(upload_dir: str | Path, document: Document) -> Path:
    """Where the file of *document* lives; the stored name is ours, never the user's."""
    return Path(upload_dir) / document.stored_name


def delete_document_file(upload_dir: str | Path, document: Document) -> None:
    document_path(upload_dir, document).unlink(missing_ok=True)
