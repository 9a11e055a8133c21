"""Permission matrix entries for conversation topics, quick links and the visitor's transcript
download (merged by tests/test_permissions.py)."""

from __future__ import annotations

from app.extensions import db
from app.models.chat_topics import ChatTopic, QuickLink

A, M, G = "admin", "manager", "agent"
NOBODY: set[str] = set()


def _crud(readers: set[str], writers: set[str]) -> dict[str, set[str]]:
    return {"list": set(readers), "show": set(readers), "add": set(writers), "edit": set(writers),
            "delete": set(writers), "export_csv": {A}, "download": {A}}


def _api(readers: set[str], writers: set[str]) -> dict[str, set[str]]:
    return {"get": set(readers), "get_list": set(readers), "info": set(readers), "post": set(writers),
            "put": set(writers), "delete": set(writers)}


EXPECTED: dict[str, dict[str, set[str]]] = {
    "ChatTopicModelView": _crud({A, M, G}, {A, M}),
    "QuickLinkModelView": _crud({A, M, G}, {A, M}),
    "ChatTopicApi": _api({A, M, G}, {A, M}),
    "QuickLinkApi": _api({A, M, G}, {A, M}),
    "ChatLinksView": {"links": {A, M, G}},
    # Visitors download with their widget token; a signed-in user is not a visitor (403 without a token).
    "chat_transcripts": {"download": NOBODY, "job": NOBODY, "job_file": NOBODY},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    topic = ChatTopic(name="报税问题", sort_order=10, active=True)
    link = QuickLink(title="国家税务总局", url="https://www.chinatax.gov.cn/", sort_order=10, active=True)
    db.session.add_all([topic, link])
    db.session.commit()
    return {"ChatTopicModelView": topic.id, "ChatTopicApi": topic.id, "QuickLinkModelView": link.id,
            "QuickLinkApi": link.id}
