"""Default grants for canned replies, invitation rules, chat files.

Agents keep their own canned replies and search them from the console; Managers also make shared
ones (``can_share``) and configure the automatic invitation rules. Chat files check the chat
permission themselves (visitors use them too).
"""

from __future__ import annotations

_CRUD = ("can_list", "can_show", "can_add", "can_edit", "can_delete")
_CANNED = [(perm, "CannedReplyModelView") for perm in _CRUD] + [("can_canned", "ChatCannedView")]

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": _CANNED + [("can_share", "CannedReplyModelView")]
    + [(perm, "InvitationRuleModelView") for perm in _CRUD],
    "Agent": list(_CANNED),
}
