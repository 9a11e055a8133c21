"""Default grants for the staffing planner (排班测算): Managers read the screen and the API (Admin
has every permission anyway); no other role."""

from __future__ import annotations

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": [("can_list", "StaffingView"), ("can_get", "StaffingApi")],
}
