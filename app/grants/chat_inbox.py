"""Default grants for chat history and left messages.

Manager: everything here, with the CSV export of left messages. Agent: the history, visitors and
left messages of the sites they serve (row scope in ``app.views.chat_inbox``), assigning and
answering left messages; no export. Admin has every permission anyway.
"""

from __future__ import annotations

HANDLE = [("can_list", "LeaveMessageModelView"), ("can_show", "LeaveMessageModelView"),
          ("can_assign", "LeaveMessageModelView"), ("can_reply", "LeaveMessageModelView"),
          ("can_list", "ConversationHistoryView"), ("can_show", "ConversationHistoryView"),
          ("can_list", "ChatVisitorModelView"), ("can_show", "ChatVisitorModelView")]

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": HANDLE + [("can_export", "LeaveMessageModelView")],
    "Agent": list(HANDLE),
}
