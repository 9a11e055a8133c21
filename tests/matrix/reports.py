"""Permission matrix entries for the PDF downloads (merged by tests/test_permissions.py)."""

from __future__ import annotations

READERS = {"admin", "manager", "accountant", "reviewer"}

# view (endpoint class) → method → roles allowed, as in tests/test_permissions.py
EXPECTED: dict[str, dict[str, set[str]]] = {
    "ReportPdfApi": {
        "document": set(READERS),
        "tax_worksheet": set(READERS),
        "transcript": READERS | {"agent"},
        "job": READERS | {"agent"},
        "job_file": READERS | {"agent"},
    },
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    """Primary keys the matrix uses in URLs (view name → pk): the transcript takes a
    conversation id; an unknown one answers 404 to those allowed, 403 to the others."""
    return {}
