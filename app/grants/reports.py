"""Default grants for the PDF downloads: Manager, Accountant (own clients, by row scope) and
Reviewer download every document; Agent only chat transcripts (of chats they took part in, a
row rule in the view). Everyone who may start a background render may follow their own jobs."""

from __future__ import annotations

VIEW = "ReportPdfApi"
DOCUMENTS = [("can_download", VIEW), ("can_transcript", VIEW), ("can_job", VIEW)]

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": list(DOCUMENTS),
    "Accountant": list(DOCUMENTS),
    "Reviewer": list(DOCUMENTS),
    "Agent": [("can_transcript", VIEW), ("can_job", VIEW)],
}
