"""Permission matrix entries for canned replies, invitation rules, chat files (merged by tests/test_permissions.py)."""

from __future__ import annotations

import io

from sqlalchemy import select

from app.extensions import db
from app.models.chat import (
    AgentProfile,
    CannedReply,
    ChatSite,
    Conversation,
    ConversationStatus,
    InvitationRule,
    Visitor,
)
from app.services import chat_files
from app.services.chat_sites import prepare_new_site

A, M, G = "admin", "manager", "agent"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _crud(who: set[str]) -> dict[str, set[str]]:
    return {"list": set(who), "show": set(who), "add": set(who), "edit": set(who), "delete": set(who),
            "export_csv": {A}, "download": {A}}


EXPECTED: dict[str, dict[str, set[str]]] = {
    "CannedReplyModelView": _crud({A, M, G}),
    "InvitationRuleModelView": _crud({A, M}),
    "ChatCannedView": {"canned": {A, M, G}},
    # Visitors use the files too (with their token); signed-in users need the chat or supervise permission.
    "chat_files": {"upload": {A, M, G}, "download": {A, M, G}},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    agent = db.session.scalar(select(AgentProfile).where(AgentProfile.user_id == user_id("agent")))
    if agent is None:
        agent = AgentProfile(user_id=user_id("agent"), display_name="小张")
        db.session.add(agent)
    site = prepare_new_site(ChatSite(name="工具矩阵站点", allowed_origins="https://www.example.com"))
    db.session.add(site)
    db.session.flush()
    visitor = Visitor(site_id=site.id, uid="matrix-visitor")
    db.session.add(visitor)
    db.session.flush()
    conversation = Conversation(site_id=site.id, visitor_id=visitor.id, agent_id=agent.id,
                                status=ConversationStatus.active)
    reply = CannedReply(owner_id=user_id("agent"), shortcut="hello", text="您好")
    rule = InvitationRule(site_id=site.id, name="定价页", message="需要帮助吗？")
    db.session.add_all([conversation, reply, rule])
    db.session.commit()
    message = chat_files.post_agent_file(db.session, app.config["CHAT_UPLOAD_DIR"], 1024 * 1024, agent,
                                         conversation.id, "a.png", io.BytesIO(PNG))
    return {"CannedReplyModelView": reply.id, "InvitationRuleModelView": rule.id,
            "chat_files": message.attachment_id}
