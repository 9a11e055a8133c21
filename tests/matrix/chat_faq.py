"""Permission matrix entries for the chat knowledge base (merged by tests/test_permissions.py)."""

from __future__ import annotations

from app.extensions import db
from app.models.chat_faq import FaqEntry
from app.services import chat_faq

A, M, G = "admin", "manager", "agent"

EXPECTED: dict[str, dict[str, set[str]]] = {
    "FaqEntryModelView": {"list": {A, M, G}, "show": {A, M, G}, "add": {A, M}, "edit": {A, M}, "delete": {A, M},
                          "export_csv": {A}, "download": {A}},
    "ChatFaqApi": {"get": {A, M, G}, "get_list": {A, M, G}, "info": {A, M, G}, "post": {A, M}, "put": {A, M},
                   "delete": {A, M}},
    "FaqUnansweredView": {"list": {A, M}},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    entry = FaqEntry(question="报税截止日期？", answer="每月 15 日前。", keywords="报税")
    chat_faq.validate_entry(db.session, entry)
    db.session.add(entry)
    db.session.commit()
    return {"FaqEntryModelView": entry.id, "ChatFaqApi": entry.id}
