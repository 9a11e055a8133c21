"""Default grants for the chat analytics (统计分析): Managers read the screen and the API (Admin has
every permission anyway); no other role."""

from __future__ import annotations

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": [("can_list", "ChatAnalyticsView"), ("can_get", "ChatAnalyticsApi")],
}
