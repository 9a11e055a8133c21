"""The landing page, the desk (工作台): what needs attention today, for each of the user's roles.

The tiles and their rules are app/services/desk.py's; each tile is a count with a link to the list
that shows exactly those rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app, g, redirect, url_for
from flask_appbuilder import IndexView, expose
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import func, select

from app.extensions import db
from app.models.contracts import Contract
from app.models.crm import Client, ClientStatus
from app.permissions import scoped_accountant_id
from app.services import chat_analytics, desk, reminders, tax_filings
from app.services.accounting import period_label
from app.services.contracts import LIVE, renewals_due
from app.views.labels import enum_label
from app.views.work_board import ANY, board_for


@dataclass
class Tile:
    key: str
    label: object
    count: int
    url: str
    warn: bool = False  # shown red when not zero
    text: object = None  # shown instead of the count (a mean, a share)
    more: str | None = None  # a second link: a live figure's analytics for today


def _manager_tiles(today: date, counted: dict[str, int], renewals: int | None) -> list[Tile]:
    month = period_label(desk.working_month(today))
    tiles = [
        Tile("overdue-filings", _l("Overdue filings"), len(reminders.manager_items(db.session, today)),
             url_for("TaxFilingView.overdue"), True),
        Tile("overdue-fees", _l("Overdue fees"), counted["overdue_fees"],
             url_for("FeeBillModelView.list", _flt_0_unpaid=today.isoformat()), True),
        Tile("to-review", _l("Vouchers waiting for review"), counted["to_review"],
             url_for("VoucherModelView.list", _flt_0_state="draft", books="all")),
        Tile("not-closed", _l("Periods of %(month)s not closed", month=month), counted["not_closed"],
             url_for("WorkBoardView.show", period=month, open="close")),
    ]
    if renewals is not None:
        tiles.append(Tile("ending", _l("Contracts ending in %(n)d days",
                                       n=current_app.config["RENEWAL_WINDOW_DAYS"]), renewals,
                          url_for("RenewalView.list")))
    return tiles


def _live_tiles(counted: dict[str, int]) -> list[Tile]:
    return [
        Tile("chats-waiting", _l("Chats waiting"), counted["chats_waiting"], url_for("AgentConsoleView.index")),
        Tile("agents-online", _l("Agents online"), counted["agents_online"],
             url_for("AgentProfileModelView.list", _flt_0_status="online")),
    ]


def _chat_tiles(counted: dict[str, int]) -> list[Tile]:
    """Today's chats: each figure of the day opens the analytics section that breaks it down for
    today; the chats waiting and the agents online open the live lists (the console, the agents)
    and, by a second link, their analytics for today (the queue, the agents)."""
    tz = current_app.config.get("TZ_DISPLAY", "Asia/Shanghai")
    local_today = datetime.now(ZoneInfo(tz)).date()
    figures = chat_analytics.today_figures(db.session, local_today, tz)
    day = {"date_from": local_today.isoformat(), "date_to": local_today.isoformat()}

    def link(section: str) -> str:
        return url_for("ChatAnalyticsView.show", section=section, **day)

    mean = figures.first_response_mean
    return [
        Tile("chats-today", _l("Chats today"), figures.chats, link("hours")),
        *(replace(tile, more=link("queue" if tile.key == "chats-waiting" else "agents"))
          for tile in _live_tiles(counted)),
        Tile("first-response-today", _l("Mean first response today"), 0, link("agents"),
             text="—" if mean is None else _l("%(n)s seconds", n=f"{mean:.0f}")),
        Tile("csat-today", _l("Satisfied today (rated 4–5)"), 0, link("agents"),
             text="—" if figures.csat is None else f"{figures.csat * 100:.0f}%"),
        Tile("missed-today", _l("Chats missed today"), figures.missed, link("queue"), True),
    ]


def _accountant_tiles(today: date, user_id: int, counted: dict[str, int]) -> list[Tile]:
    month = period_label(desk.working_month(today))
    overdue, due = reminders.accountant_items(db.session, user_id, today)
    board = board_for({"period": month, "accountant_id": user_id, "q": "", "open": ANY}, today)
    week = tax_filings.due_soon(db.session, today, user_id)
    return [
        Tile("my-board", _l("My clients with steps to do in %(month)s", month=month), len(board.rows),
             url_for("WorkBoardView.show", period=month, open=ANY, accountant_id=user_id)),
        Tile("my-drafts", _l("Drafts to fix"), counted["my_drafts"],
             url_for("VoucherModelView.list", _flt_0_state="draft", books="all")),
        Tile("my-overdue", _l("My overdue filings"), len(overdue),
             url_for("TaxFilingView.overdue", accountant_id=user_id), True),
        Tile("my-due-3", _l("My filings due in %(n)d days", n=reminders.DUE_DAYS), len(due),
             url_for("TaxFilingView.due_soon", days=reminders.DUE_DAYS, accountant_id=user_id)),
        Tile("my-due-7", _l("My filings due in %(n)d days", n=tax_filings.DUE_SOON_DAYS), len(week),
             url_for("TaxFilingView.due_soon", accountant_id=user_id)),
    ]


class DeskIndexView(IndexView):
    permission_label = lazy_pgettext("view menu", "Desk")  # on the role screens
    index_template = "home.html"

    @expose("/")
    def index(self):  # noqa: ANN201
        user = getattr(g, "user", None)
        if user is None or not user.is_authenticated:
            return redirect(self.appbuilder.get_url_for_login)
        sm = self.appbuilder.sm
        ctx: dict = {"appbuilder": self.appbuilder}
        today = date.today()
        if sm.has_access("can_list", "ClientModelView"):
            scope = scoped_accountant_id()
            clients = select(func.count(Client.id)).where(Client.status == ClientStatus.active)
            if scope is not None:
                clients = clients.where(Client.accountant_id == scope)
            ctx["active_clients"] = db.session.scalar(clients)
        renewals = None
        if sm.has_access("can_list", "ContractModelView"):
            scope = scoped_accountant_id()
            live = select(func.count(Contract.id)).where(Contract.status.in_(LIVE))
            if scope is not None:
                live = live.join(Client).where(Client.accountant_id == scope)
            ctx["live_contracts"] = db.session.scalar(live)
            ctx["renewals"] = renewals_due(db.session, today, current_app.config["RENEWAL_WINDOW_DAYS"],
                                           accountant_id=scope)
            renewals = len(ctx["renewals"])
        roles = desk.desk_roles([role.name for role in user.roles])
        counted = desk.counts(db.session, today, roles, user.id)
        desks = []
        if desk.MANAGER in roles:
            if sm.has_access("can_list", "ChatAnalyticsView"):
                desks.append((_l("Manager"), _manager_tiles(today, counted, renewals)))
                desks.append((_l("Live chat today"), _chat_tiles(counted)))
            else:
                desks.append((_l("Manager"), _manager_tiles(today, counted, renewals) + _live_tiles(counted)))
        if desk.ACCOUNTANT in roles:
            desks.append((_l("Accountant"), _accountant_tiles(today, user.id, counted)))
        if desk.REVIEWER in roles:
            desks.append((_l("Reviewer"), [Tile("to-review", _l("Vouchers to review"), counted["to_review"],
                                                 url_for("VoucherModelView.list", _flt_0_state="draft",
                                                         books="all"))]))
        if desk.AGENT in roles:
            desks.append((_l("Agent"), [Tile("my-chats", _l("My open chats"), counted["my_chats"],
                                              url_for("AgentConsoleView.index"))]))
        ctx["desks"] = desks
        ctx["enum_label"] = enum_label
        return self.render_template(self.index_template, **ctx)
