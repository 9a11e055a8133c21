"""Default grants for the chat knowledge base.

Managers keep the entries (screen and API) and see the questions the bot could not answer;
Agents read the entries (and search them from the console, with the chat permission).
"""

from __future__ import annotations

_CRUD = ("can_list", "can_show", "can_add", "can_edit", "can_delete")
_API_WRITE = ("can_get", "can_info", "can_post", "can_put", "can_delete")

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": [(perm, "FaqEntryModelView") for perm in _CRUD] + [(perm, "ChatFaqApi") for perm in _API_WRITE]
    + [("can_list", "FaqUnansweredView")],
    "Agent": [("can_list", "FaqEntryModelView"), ("can_show", "FaqEntryModelView"),
              ("can_get", "ChatFaqApi"), ("can_info", "ChatFaqApi")],
}
