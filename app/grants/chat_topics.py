"""Default grants for conversation topics and quick links.

Managers keep both lists (screens and APIs); Agents read them, set topics on their chats (the
chat permission) and insert quick links from the console.
"""

from __future__ import annotations

_CRUD = ("can_list", "can_show", "can_add", "can_edit", "can_delete")
_API_WRITE = ("can_get", "can_info", "can_post", "can_put", "can_delete")
_READ = [(perm, view) for view in ("ChatTopicModelView", "QuickLinkModelView") for perm in ("can_list", "can_show")] \
    + [(perm, api) for api in ("ChatTopicApi", "QuickLinkApi") for perm in ("can_get", "can_info")]

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": [(perm, view) for view in ("ChatTopicModelView", "QuickLinkModelView") for perm in _CRUD]
    + [(perm, api) for api in ("ChatTopicApi", "QuickLinkApi") for perm in _API_WRITE]
    + [("can_links", "ChatLinksView")],
    "Agent": _READ + [("can_links", "ChatLinksView")],
}
