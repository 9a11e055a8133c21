"""Default grants for leads (线索) and the agent console's actions from visitor to client.

- Manager: the leads screen and API (read, edit, delete, move, convert to a client), and in the
  console: make a lead of a visitor, add a visitor as a client's contact.
- Agent: the leads screen and API (read, edit, move; converting makes or picks a client, which is
  a Manager's), the same two console actions, and ``can_find_clients`` on ``LiveChat``: the
  console's client search finds every client by name or credit code, so that an agent can add a
  visitor as the contact of whichever client they work for. It widens no screen's rows (unlike
  ``AllClients``): a user who is both Accountant and Agent still sees only their own clients'
  books.
- Sending a client's statement into a chat needs the statement download (``can_download`` on
  ``ReportPdfApi``: Manager, Accountant, Reviewer by default) on a client in the user's scope.
"""

from __future__ import annotations

SCREEN = "LeadModelView"
API = "LeadApi"
CONSOLE = [("can_create_lead", "LiveChat"), ("can_link_contact", "LiveChat"), ("can_find_clients", "LiveChat")]
WORK = [("can_list", SCREEN), ("can_show", SCREEN), ("can_edit", SCREEN), ("can_transition", SCREEN),
        ("can_get", API), ("can_info", API), ("can_put", API), ("can_transition", API)]
MANAGE = [("can_delete", SCREEN), ("can_convert", SCREEN), ("can_delete", API), ("can_convert", API)]

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": WORK + MANAGE + CONSOLE,
    "Agent": WORK + CONSOLE,
}
