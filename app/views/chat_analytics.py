"""Chat analytics (在线客服 → 统计分析, ``/chat/analytics/``), its JSON and CSV API and its charts.

``ChatAnalyticsApi``: ``GET /api/v1/chat/analytics/<table>`` with the filters ``date_from``,
``date_to``, ``site_id``, ``group_id``, ``agent_id`` (and ``by``, ``limit`` for ``sources``)
answers the table as JSON, or with ``format=csv`` as a CSV file (UTF-8 with a byte-order mark so
that spreadsheet programs read the Chinese; a text cell starting with = + - @ is prefixed with
an apostrophe so that it is never run as a formula). ``ChatAnalyticsView`` shows one table at a
time (``section``) with its pygal charts (``app.services.chat_charts``); the hour-of-week heatmaps
are tables with shaded cells.

Both read only (nothing is written, so nothing is audited). Managers and Admins.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, Response, current_app, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from marshmallow import Schema, fields
from sqlalchemy import select

from app.errors import api_safe as safe
from app.extensions import db
from app.models.chat import AgentGroup, AgentProfile, ChatSite
from app.services import chat_analytics as svc
from app.services import chat_charts as charts
from app.services.errors import ValidationFailed
from app.views.chat_admin import CATEGORY
from app.views.common import csv_cell
from app.views.ledger_api import LedgerError
from app.views.reports import attachment
from app.views.staffing import WEEKDAYS
from app.workers import WorkerError
from reports import documents, jobs
from reports.render import render_html

SECTIONS = {
    "agents": _l("Agents"), "hours": _l("Chats by hour"), "queue": _l("Queue and abandonment"),
    "sources": _l("Visitor sources"), "visits": _l("Visits"),
}
SOURCE_LABELS = {
    "referrer": _l("Referring site"), "search": _l("Search engine and keyword"), "landing": _l("Landing page"),
    "campaign": _l("Campaign (UTM)"), "region": _l("Region"),
}
SOURCE_DETAIL = {"search": _l("Keyword"), "campaign": _l("utm_source"), "region": _l("Province or region")}
AGENT_COLUMNS = (
    ("agent", _l("Agent"), "text"), ("chats", _l("Chats"), "int"), ("messages", _l("Messages sent"), "int"),
    ("first_response_mean", _l("First response, mean (s)"), "sec"),
    ("first_response_p90", _l("First response, p90 (s)"), "sec"),
    ("handle_mean", _l("Handle time, mean (s)"), "sec"), ("rated", _l("Rated chats"), "int"),
    ("csat", _l("Satisfied (rated 4–5)"), "pct"), ("rating_mean", _l("Mean rating"), "num"),
    ("transfers", _l("Transfers out"), "int"), ("offers", _l("Offers"), "int"),
    ("missed_offers", _l("Offers missed"), "int"), ("hours_seen", _l("Hours seen working"), "int"),
    ("online_seconds", _l("Hours online"), "hours"), ("away_seconds", _l("Hours away"), "hours"),
    ("occupancy", _l("Occupancy"), "pct"),
)
QUEUE_COLUMNS = (("from", _l("Waited from (s)"), "int"), ("to", _l("to (s)"), "int"),
                 ("answered", _l("Answered"), "int"), ("abandoned", _l("Left the queue"), "int"))
HOUR_COLUMNS = (("weekday", _l("Weekday"), "weekday"), ("hour", _l("Hour"), "int"))


def _source_columns(by: str) -> tuple:
    columns = [("source", SOURCE_LABELS[by], "text")]
    if by in SOURCE_DETAIL:
        columns.append(("detail", SOURCE_DETAIL[by], "text"))
    return (*columns, ("visitors", _l("Visitors"), "int"), ("chatted", _l("Visitors who chatted"), "int"),
            ("chats", _l("Chats"), "int"), ("identified", _l("Identified clients"), "int"),
            ("conversion", _l("Conversion"), "pct"))


def columns_of(data: dict) -> tuple:
    """The ``(key, label, kind)`` columns of a table as ``svc.table`` answers it."""
    name = data["table"]
    if name == "agents":
        return AGENT_COLUMNS
    if name == "queue":
        return QUEUE_COLUMNS
    if name == "sources":
        return _source_columns(data["by"])
    return (*HOUR_COLUMNS, (name if name == "visits" else "chats", SECTIONS[name], "int"))


def cell_text(value: object, kind: str) -> str:
    """A cell as text: a share as a percentage, a weekday by name, nothing as empty."""
    if value is None:
        return ""
    if kind == "pct":
        return f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]
    if kind == "weekday":
        return str(WEEKDAYS[int(value)])  # type: ignore[call-overload]
    if kind == "sec":
        return f"{float(value):.1f}"  # type: ignore[arg-type]
    if kind == "hours":  # kept in seconds, shown in hours
        return f"{float(value) / 3600:.1f}"  # type: ignore[arg-type]
    return str(value)


def csv_file(data: dict) -> Response:
    """The table as a CSV download (UTF-8 with BOM; formula-like text cells neutralised)."""
    columns = columns_of(data)
    out = io.StringIO()
    out.write("\ufeff")  # lets spreadsheet programs read UTF-8 Chinese text
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([str(label) for _, label, _ in columns])
    for row in data["rows"]:
        writer.writerow([csv_cell(cell_text(row.get(key), kind)) if kind == "text" else cell_text(row.get(key), kind)
                         for key, _, kind in columns])
    name = f"chat_analytics_{data['table']}_{data['filters']['date_from']}_{data['filters']['date_to']}.csv"
    return Response(out.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename={name}"})


def _tz() -> str:
    return current_app.config.get("TZ_DISPLAY", "Asia/Shanghai")


def _today():  # noqa: ANN202
    return datetime.now(ZoneInfo(_tz())).date()


# --- API ------------------------------------------------------------------------------------------


class ChatAnalyticsOut(Schema):
    table = fields.String(metadata={"description": "the table's name", "example": "agents"})
    filters = fields.Dict(keys=fields.String(), values=fields.String(),
                          metadata={"description": "the filters used (dates as YYYY-MM-DD, ids as text)"})
    by = fields.String(metadata={"description": "sources only: what the visitors are grouped by"})
    rows = fields.List(fields.Dict(), metadata={"description": "the table's rows (seconds, shares from 0 to 1)"})
    summary = fields.Dict(metadata={"description": "queue only: chats, answered, abandoned, unanswered, wait_mean, "
                                                   "wait_p90, within_20, within_60, patience_mean"})


class ChatAnalyticsApi(BaseApi):
    """Chat analytics tables as JSON or CSV."""
    permission_label = _l("Chat analytics")  # on the role screens

    allow_browser_login = True
    route_base = "/api/v1/chat/analytics"
    resource_name = "chat_analytics"
    openapi_spec_tag = "Chat analytics"
    openapi_spec_component_schemas = (LedgerError, ChatAnalyticsOut)

    @expose("/<table>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self, table: str) -> Response:
        """One table of the chat analytics over a range of days
        ---
        get:
          description: >-
            agents (per agent: chats, messages, first response mean and p90, handle time, CSAT,
            transfers, missed offers, hours seen working, occupancy), hours (chats per hour of the
            week), queue (waits and abandonment: a histogram of the answered waits and of the
            leavers' patience, with a summary), sources (visitors by the source of their first page
            in the range, their chats and identified clients) or visits (visits per hour of the
            week). Days are in the display time zone; p90 is the nearest rank. format=csv answers a
            CSV file instead. A bad filter is a 422 naming the field.
          parameters:
          - {in: path, name: table, required: true, schema: {type: string,
             enum: [agents, hours, queue, sources, visits]}}
          - {in: query, name: date_from, schema: {type: string, format: date},
             description: "first day (default: 27 days before date_to)"}
          - {in: query, name: date_to, schema: {type: string, format: date}, description: "last day (default: today)"}
          - {in: query, name: site_id, schema: {type: integer, minimum: 1}}
          - {in: query, name: group_id, schema: {type: integer, minimum: 1}}
          - {in: query, name: agent_id, schema: {type: integer, minimum: 1}}
          - {in: query, name: by, schema: {type: string, enum: [referrer, search, landing, campaign, region],
             default: referrer}, description: sources only}
          - {in: query, name: limit, schema: {type: integer, minimum: 1, maximum: 1000, default: 50},
             description: "sources only: the most visited rows"}
          - {in: query, name: format, schema: {type: string, enum: [json, csv], default: json}}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/ChatAnalyticsOut'}
                text/csv:
                  schema: {type: string}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        kind = request.args.get("format") or "json"
        if kind not in ("json", "csv"):
            raise ValidationFailed({"format": [str(_l("Either json or csv."))]})
        svc.read_table(table)
        filters = svc.read_filters(request.args, _today())
        svc.check_filters(db.session, filters)
        data = svc.table(db.session, table, filters, _tz(), request.args)
        if kind == "csv":
            return csv_file(data)
        return self.response(200, **data)


# --- screen ------------------------------------------------------------------------------------------


def _hours_labels() -> list[str]:
    return [f"{hour:02d}" for hour in range(24)]


def _heatmap(rows: list[dict], key: str) -> dict:
    """The hour-of-week cells as a 7 × 24 grid with each cell's share of the busiest (for shading)."""
    grid = [[0] * 24 for _ in range(7)]
    for row in rows:
        grid[row["weekday"]][row["hour"]] = row[key]
    top = max((max(line) for line in grid), default=0)
    return {"grid": grid, "top": top, "by_hour": [sum(grid[d][h] for d in range(7)) for h in range(24)]}


def _charts(data: dict) -> list[Markup]:
    """The pygal charts of a section."""
    name, rows = data["table"], data["rows"]
    no_data = gettext("No data")
    if name == "agents":
        names = [row["agent"] for row in rows]
        return [charts.bars(gettext("Chats of each agent"), names, [(gettext("Chats"), [r["chats"] for r in rows])],
                            horizontal=True, no_data=no_data),
                charts.bars(gettext("First response (seconds)"), names, [
                    (gettext("Mean"), [r["first_response_mean"] for r in rows]),
                    (gettext("p90"), [r["first_response_p90"] for r in rows])], horizontal=True, counts=False,
                    no_data=no_data)]
    if name in ("hours", "visits"):
        heat = _heatmap(rows, "chats" if name == "hours" else "visits")
        label = gettext("Chats") if name == "hours" else gettext("Visits")
        return [charts.line(gettext("By hour of the day (all weekdays)"), _hours_labels(),
                            [(label, heat["by_hour"])], no_data=no_data)]
    if name == "queue":
        labels = [f"{b['from']}–{b['to']}" if b["to"] is not None else f"{b['from']}+" for b in rows]
        return [charts.bars(gettext("Waits and patience (seconds)"), labels, [
            (gettext("Answered after"), [b["answered"] for b in rows]),
            (gettext("Left the queue after"), [b["abandoned"] for b in rows])], no_data=no_data)]
    labels = [row["source"] or gettext("(none)") for row in rows[:15]]
    return [charts.bars(gettext("Visitors and chats by source"), labels, [
        (gettext("Visitors"), [r["visitors"] for r in rows[:15]]),
        (gettext("Chats"), [r["chats"] for r in rows[:15]])], horizontal=True, no_data=no_data)]


class ChatAnalyticsView(BaseView):
    """统计分析: the chat's figures over a range of days, one section at a time."""

    route_base = "/chat/analytics"
    default_view = "show"

    @expose("/")
    @has_access
    @permission_name("list")
    def show(self):  # noqa: ANN201
        section = request.args.get("section") or "agents"
        if section not in SECTIONS:
            section = "agents"
        try:
            filters = svc.read_filters(request.args, _today())
            svc.check_filters(db.session, filters)
            by, limit = svc.read_source(request.args)
        except ValidationFailed as exc:
            flash(exc.message, "danger")
            filters, (by, limit) = svc.read_filters({}, _today()), svc.read_source({})
        data = svc.table(db.session, section, filters, _tz(), {"by": by, "limit": str(limit)})
        heat = _heatmap(data["rows"], "chats" if section == "hours" else "visits") \
            if section in ("hours", "visits") else None
        sites = db.session.execute(select(ChatSite.id, ChatSite.name).order_by(ChatSite.name)).all()
        groups = db.session.execute(select(AgentGroup.id, AgentGroup.name, ChatSite.name)
                                    .join(ChatSite, ChatSite.id == AgentGroup.site_id)
                                    .order_by(ChatSite.name, AgentGroup.name)).all()
        agents = db.session.execute(select(AgentProfile.id, AgentProfile.display_name)
                                    .order_by(AgentProfile.display_name)).all()
        csv_args = {**filters.query(), "format": "csv", **({"by": by, "limit": str(svc.MAX_LIMIT)}
                                                           if section == "sources" else {})}
        return self.render_template(
            "chat/analytics.html", csv_url=url_for("ChatAnalyticsApi.get", table=section, **csv_args),
            data=data, section=section, sections=SECTIONS, filters=filters, by=by,
            sources=SOURCE_LABELS, columns=columns_of(data), cell=cell_text, heat=heat, weekdays=WEEKDAYS,
            charts=_charts(data), sites=sites, groups=groups, agents=agents, title=_l("Chat analytics"))


    @expose("/report.pdf")
    @has_access
    @permission_name("list")
    def pdf(self):  # noqa: ANN201
        """The analytics of the filters as a PDF (every section; sources by referring site, search
        and region), rendered in a report worker; a bad filter or busy workers flash and go back."""
        try:
            filters = svc.read_filters(request.args, _today())
            svc.check_filters(db.session, filters)
        except ValidationFailed as exc:
            flash(exc.message, "danger")
            return redirect(url_for("ChatAnalyticsView.show"))
        document = documents.chat_analytics(_scope_text(filters), f"{filters.date_from} – {filters.date_to}",
                                            g.user.get_full_name() or g.user.username, _pdf_sections(filters),
                                            cell=cell_text, weekdays=WEEKDAYS, none_text=gettext("(none)"))
        html, style = render_html(document), document.style()
        db.session.rollback()  # everything is read: no transaction held while a worker renders
        try:
            data = jobs.render(html, style)
        except WorkerError as exc:
            current_app.logger.warning("PDF not rendered: %s: %s", type(exc).__name__, exc)
            flash(gettext("The PDF could not be made right now: the report workers are busy or stopped. "
                          "Try again shortly."), "danger")
            return redirect(url_for("ChatAnalyticsView.show", **filters.query()))
        response = Response(data, mimetype="application/pdf")
        response.headers["Content-Disposition"] = attachment(document.filename)
        return response


def _scope_text(filters: svc.Filters) -> str:
    """The site, group and agent the filters name, in words."""
    parts = []
    for model, key, every in ((ChatSite, "site_id", _l("Every site")), (AgentGroup, "group_id", _l("Every group")),
                              (AgentProfile, "agent_id", _l("Every agent"))):
        value = getattr(filters, key)
        row = db.session.get(model, value) if value is not None else None
        parts.append(str(every) if row is None else (getattr(row, "name", None) or row.display_name))
    return " / ".join(parts)


def _pdf_sections(filters: svc.Filters) -> list[dict]:
    """Every section of the screen for the PDF, with its charts."""
    sections = []
    tz = _tz()
    for name in ("agents", "hours", "queue", "visits"):
        data = svc.table(db.session, name, filters, tz)
        section = {"title": str(SECTIONS[name]), "charts": _charts(data), "rows": data["rows"],
                   "columns": columns_of(data)}
        if name in ("hours", "visits"):
            section["heat"] = _heatmap(data["rows"], "chats" if name == "hours" else "visits")
        if name == "queue":
            summary = data["summary"]
            section["summary"] = [
                (gettext("Chats started"), summary["chats"]), (gettext("Answered"), summary["answered"]),
                (gettext("Left the queue"), summary["abandoned"]),
                (gettext("Otherwise unanswered"), summary["unanswered"]),
                (gettext("Wait before an answer"), "—" if summary["wait_mean"] is None else gettext(
                    "mean %(mean)s s, p90 %(p90)s s", mean=summary["wait_mean"], p90=summary["wait_p90"])),
                (gettext("Answered within 20 s"), cell_text(summary["within_20"], "pct") or "—"),
                (gettext("Mean patience"), "—" if summary["patience_mean"] is None else gettext(
                    "%(n)s seconds", n=summary["patience_mean"]))]
        sections.append(section)
    for by in ("referrer", "search", "region"):
        data = svc.table(db.session, "sources", filters, tz, {"by": by, "limit": "20"})
        sections.append({"title": f"{SECTIONS['sources']}: {SOURCE_LABELS[by]}", "charts": _charts(data),
                         "rows": data["rows"], "columns": columns_of(data)})
    return sections


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the chat analytics (menu 在线客服) and its API."""
    appbuilder.add_view(ChatAnalyticsView, "Chat analytics", label=_l("Chat analytics"), icon="fa-bar-chart",
                        **CATEGORY)
    appbuilder.add_api(ChatAnalyticsApi)

