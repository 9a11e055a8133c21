"""Links to the PDF downloads (``app.views.reports``) from the screens they belong to: each is
``None`` when the user may not download that kind of PDF, so a screen shows no dead button.
Whether the user may read the particular client or conversation is the download's own check."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from flask import current_app

VIEW = "ReportPdfApi"


def document_url(document: str, permission: str = "can_download", **params: object) -> str | None:
    """``/reports/<document>.pdf?<params>`` (blank parameters left out), or ``None`` without
    *permission* on the PDF downloads."""
    if not current_app.appbuilder.sm.has_access(permission, VIEW):
        return None
    query = urlencode({name: value for name, value in params.items() if value not in (None, "")})
    return f"/reports/{document}.pdf" + (f"?{query}" if query else "")


def statement_url(client_id: int, today: date | None = None) -> str | None:
    """*client_id*'s statement of account (对账单) from January to this month, for the pages of
    the client and of its contracts."""
    today = today or date.today()
    return document_url("statement", client_id=client_id, **{"from": f"{today.year:04d}-01",
                                                              "to": f"{today.year:04d}-{today.month:02d}"})


def voucher_pdf_url(voucher: object) -> str | None:
    """One voucher's PDF (the ``vouchers`` document of its month, that voucher only)."""
    period = voucher.period  # type: ignore[attr-defined]
    return document_url("vouchers", client_id=voucher.client_id,  # type: ignore[attr-defined]
                        period=f"{period // 100:04d}-{period % 100:02d}", voucher_id=voucher.id)  # type: ignore[attr-defined]


def transcript_url(conversation_id: int) -> str | None:
    """A conversation's transcript PDF."""
    return document_url(f"transcript/{conversation_id}", permission="can_transcript")
