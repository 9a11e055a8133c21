"""The staffing planner (在线客服 → 排班测算, ``/chat/staffing/``) and its API.

``StaffingApi``: ``GET /api/v1/staffing?arrival_rate_per_hour=&aht_seconds=&target_level=&target_seconds=``
(optional ``patience_seconds``, ``chats_per_agent``) answers the fewest agents that meet the
target in one interval by Erlang C, with its service level, mean wait and occupancy, and under
``erlang_a`` the same by Erlang A when a patience is given. ``StaffingView`` shows each hour of
the week from the chat's history (``app.services.staffing_history``): arrivals, handle time, the
agents needed by Erlang C and A, the agents seen working then and what they gave.

Both read only (nothing is written, so nothing is audited). Managers and Admins.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, Response, current_app, flash, request
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields
from sqlalchemy import select

from app.errors import api_safe as safe
from app.extensions import db
from app.models.chat import AgentGroup, ChatSite
from app.services import staffing
from app.services import staffing_history as history_svc
from app.services.errors import ValidationFailed
from app.views.chat_admin import CATEGORY
from app.views.ledger_api import LedgerError

WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
            _l("Sunday"))


# --- API ------------------------------------------------------------------------------------------


class StaffingPlanOut(Schema):
    agents = fields.Integer(metadata={"description": "the fewest agents that meet the target", "example": 14})
    service_level = fields.Float(metadata={"description": "share of visitors answered within target_seconds",
                                           "example": 0.888350})
    avg_wait_seconds = fields.Float(metadata={"description": "mean wait of every visitor, in seconds",
                                              "example": 7.836})
    occupancy = fields.Float(metadata={"description": "share of the agents' chat slots in use", "example": 0.714286})


class StaffingAbandonOut(StaffingPlanOut):
    wait_probability = fields.Float(metadata={"description": "share of visitors who wait at all"})
    abandon_probability = fields.Float(metadata={"description": "share of visitors who leave before an answer"})


class StaffingOut(StaffingPlanOut):
    erlang_a = fields.Nested(StaffingAbandonOut, metadata={
        "description": "with patience_seconds: the same by Erlang A (visitors who wait may leave)"})


class StaffingApi(BaseApi):
    """The staffing planner: agents needed for one interval (Erlang C, and Erlang A with a patience)."""
    permission_label = _l("Staffing planner")  # on the role screens

    allow_browser_login = True
    route_base = "/api/v1"
    resource_name = "staffing"
    openapi_spec_tag = "Staffing planner"
    openapi_spec_component_schemas = (LedgerError, StaffingPlanOut, StaffingAbandonOut, StaffingOut)

    @expose("/staffing", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self) -> Response:
        """The fewest agents that answer a share of visitors within a time, for one interval
        ---
        get:
          description: >-
            Erlang C (M/M/n) for one interval; with patience_seconds also Erlang A (M/M/n+M) under
            erlang_a. Numbers are written with digits and at most one decimal point. Input out of
            range, or a target that 10000 chat slots cannot meet, is a 422 naming the field.
          parameters:
          - {in: query, name: arrival_rate_per_hour, required: true, schema: {type: number, minimum: 0,
             maximum: 10000, example: 200}, description: visitors starting a chat per hour}
          - {in: query, name: aht_seconds, required: true, schema: {type: number, minimum: 0,
             exclusiveMinimum: true, maximum: 86400, example: 180}, description: mean handle time of a chat, in seconds}
          - {in: query, name: target_level, required: true, schema: {type: number, minimum: 0,
             exclusiveMinimum: true, maximum: 1, exclusiveMaximum: true, example: 0.8},
             description: share to answer within target_seconds}
          - {in: query, name: target_seconds, required: true, schema: {type: number, minimum: 0, maximum: 3600,
             example: 20}}
          - {in: query, name: patience_seconds, schema: {type: number, minimum: 0, exclusiveMinimum: true,
             maximum: 86400, example: 60}, description: "mean patience of a waiting visitor: adds erlang_a"}
          - {in: query, name: chats_per_agent, schema: {type: integer, minimum: 1, maximum: 20, default: 1},
             description: chats an agent serves at once (each is a server of the queue)}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/StaffingOut'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        return self.response(200, **staffing.plan_interval(staffing.read_interval(request.args)))


# --- screen ------------------------------------------------------------------------------------------


def _tz() -> str:
    return current_app.config.get("TZ_DISPLAY", "Asia/Shanghai")


class StaffingView(BaseView):
    """排班测算: each hour of the week from the chat's history, and the agents it needs."""

    route_base = "/chat/staffing"
    default_view = "show"

    @expose("/")
    @has_access
    @permission_name("list")
    def show(self):  # noqa: ANN201
        today = datetime.now(ZoneInfo(_tz())).date()
        try:
            filters = history_svc.read_filters(request.args, today)
            history_svc.check_filters(db.session, filters)
        except ValidationFailed as exc:
            flash(exc.message, "danger")
            filters = history_svc.read_filters({}, today)
        result = history_svc.plan(history_svc.history(db.session, filters, _tz()))
        sites = db.session.execute(select(ChatSite.id, ChatSite.name).order_by(ChatSite.name)).all()
        groups = db.session.execute(select(AgentGroup.id, AgentGroup.name, ChatSite.name)
                                    .join(ChatSite, ChatSite.id == AgentGroup.site_id)
                                    .order_by(ChatSite.name, AgentGroup.name)).all()
        return self.render_template(
            "chat/staffing.html", result=result, filters=filters, sites=sites, groups=groups, weekdays=WEEKDAYS,
            rows=[row for row in result.rows if row.active], min_handled=history_svc.MIN_HANDLED,
            title=_l("Staffing planner"))


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the staffing planner (menu 在线客服) and its API."""
    appbuilder.add_view(StaffingView, "Staffing planner", label=_l("Staffing planner"), icon="fa-calculator",
                        **CATEGORY)
    appbuilder.add_api(StaffingApi)
