"""Default grants for the work board (月度工作台).

Manager and Accountant (their own clients, by row scope) read the board and tick the documents
received; Reviewer reads; Agent nothing.
"""

from __future__ import annotations

SCREEN = "WorkBoardView"
API = "WorkBoardApi"

READ = [("can_list", SCREEN), ("can_get", API)]
ACT = READ + [("can_tick", SCREEN)]

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": ACT,
    "Accountant": ACT,
    "Reviewer": READ,
    "Agent": [],
}
