"""Permission matrix entries for chat history and left messages (merged by tests/test_permissions.py)."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models.chat import AgentGroup, AgentProfile, ChatSite, Conversation, LeaveMessage, Visitor
from app.services.chat_sites import prepare_new_site

A, M, G = "admin", "manager", "agent"
NOBODY: set[str] = set()
HANDLERS = {A, M, G}

EXPECTED: dict[str, dict[str, set[str]]] = {
    "LeaveMessageModelView": {"list": HANDLERS, "show": HANDLERS, "add": NOBODY, "edit": NOBODY, "delete": NOBODY,
                              "export_csv": {A, M}, "download": NOBODY, "assign": HANDLERS, "reply": HANDLERS},
    "ChatVisitorModelView": {"list": HANDLERS, "show": HANDLERS, "add": NOBODY, "edit": NOBODY, "delete": NOBODY,
                             "export_csv": NOBODY, "download": NOBODY},
    "ConversationHistoryView": {"list": HANDLERS, "transcript": HANDLERS},
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    site = prepare_new_site(ChatSite(name="留言矩阵站点", allowed_origins="https://www.example.com"))
    group = AgentGroup(site=site, name="售后")
    db.session.add_all([site, group])
    agent = db.session.scalar(select(AgentProfile).where(AgentProfile.user_id == user_id("agent")))
    if agent is None:
        agent = AgentProfile(user_id=user_id("agent"), display_name="小李")
        db.session.add(agent)
    agent.groups.append(group)
    visitor = Visitor(site=site, uid="matrix-visitor")
    db.session.add(visitor)
    db.session.flush()
    conversation = Conversation(site_id=site.id, visitor_id=visitor.id, agent_id=agent.id)
    left = LeaveMessage(site_id=site.id, visitor_id=visitor.id, name="王五", phone="13800138000", text="请回电")
    db.session.add_all([conversation, left])
    db.session.commit()
    return {"LeaveMessageModelView": left.id, "ChatVisitorModelView": visitor.id,
            "ConversationHistoryView": conversation.id}
