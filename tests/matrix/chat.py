"""Permission matrix entries for the live-chat administration (merged by tests/test_permissions.py)."""

from __future__ import annotations

from app.extensions import db
from app.models.chat import AgentGroup, AgentProfile, ChatBlock, ChatSite
from app.services.chat_sites import prepare_new_site

A, M = "admin", "manager"
NOBODY: set[str] = set()


def _crud(**extra: set[str]) -> dict[str, set[str]]:
    view = {"list": {A, M}, "show": {A, M}, "add": {A, M}, "edit": {A, M}, "delete": {A, M},
            "export_csv": {A}, "download": {A}}
    view.update(extra)
    return view


EXPECTED: dict[str, dict[str, set[str]]] = {
    "ChatSiteModelView": _crud(regenerate={A, M}),
    "AgentGroupModelView": _crud(),
    "AgentProfileModelView": _crud(),
    "ChatBlockModelView": _crud(),
}


def objects(app, session, user_id) -> dict[str, int]:  # noqa: ANN001, ARG001
    site = prepare_new_site(ChatSite(name="矩阵站点", allowed_origins="https://www.example.com"))
    group = AgentGroup(site=site, name="售前")
    agent = AgentProfile(user_id=user_id("agent"), display_name="小张", groups=[group])
    block = ChatBlock(site=site, ip_range="203.0.113.0/24")
    db.session.add_all([site, group, agent, block])
    db.session.commit()
    return {"ChatSiteModelView": site.id, "AgentGroupModelView": group.id, "AgentProfileModelView": agent.id,
            "ChatBlockModelView": block.id}
