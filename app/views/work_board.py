"""The month's work board (税务 → 月度工作台, ``/workboard/``) and its API.

``WorkBoardView`` shows the board of a month (``?period=YYYY-MM``, by default last month: the
month whose books are closed and whose taxes are filed this month)
with filters: accountant (for those who see every client), a part of the client's name and a step
still to do (``open=close`` …). Each cell links to where the step is done; the documents-received
cell is ticked and unticked by hand (``POST /workboard/tick``). ``WorkBoardApi``:
``GET /api/v1/work_board?period=YYYY-MM[&accountant_id=]``.

The rules are app/services/work_board.py's. An Accountant sees and ticks their own clients (another
client answers 404), a Manager every client; a Reviewer reads.
"""

from __future__ import annotations

from datetime import date

from flask import Flask, Response, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from marshmallow import Schema, fields
from sqlalchemy import select

from app.errors import api_safe as safe
from app.extensions import db
from app.models.crm import Client
from app.permissions import current_user_id, scoped_accountant_id
from app.services import work_board as svc
from app.services.accounting import period_label
from app.services.desk import working_month
from app.services.errors import ValidationFailed
from app.services.inputs import parse_id
from app.services.timefmt import to_display
from app.views.ledger_api import LedgerError

STEP_LABELS = {"documents": _l("Documents received"), "bookkeeping": _l("Books kept"),
               "review": _l("Vouchers reviewed"), "close": _l("Period close"), "filing": _l("Taxes filed"),
               "payment": _l("Tax payment"), "fee": _l("Fee collected")}
STATE_LABELS = {svc.DONE: _l("Done"), svc.TODO: _l("To do"), svc.NA: _l("Not applicable")}
NOT_STARTED = _l("Not started")
ANY = "any"  # the rows with any step to do
LATE_LABELS = {svc.LATE: _l("Late"), svc.DUE_SOON: _l("Due soon")}


def board_filters(args: dict) -> dict:
    """``period`` (``YYYY-MM``, default the working month: last month, whose books are closed and
    taxes filed this month), ``accountant_id``, ``q`` (a part of the client's
    name) and ``open`` (a step still to do, or ``any``) from a query. Raises ``ValidationFailed``."""
    errors: dict[str, list[str]] = {}
    found: dict = {"period": period_label(working_month(date.today())), "accountant_id": None, "q": "", "open": None}
    raw = args.get("period")
    if raw not in (None, ""):
        try:
            found["period"] = period_label(svc.parse_board_period(raw))
        except ValidationFailed as exc:
            errors.update(exc.errors)
    raw = args.get("accountant_id")
    if raw not in (None, ""):
        found["accountant_id"] = parse_id(raw)
        if found["accountant_id"] is None:
            errors["accountant_id"] = [str(_l("A whole number from %(n)d.", n=1))]
    found["q"] = str(args.get("q") or "").strip()[:100]
    raw = args.get("open")
    if raw not in (None, ""):
        if raw not in (*svc.STEPS, ANY):
            errors["open"] = [str(_l("Not a valid choice."))]
        found["open"] = raw
    if errors:
        raise ValidationFailed(errors)
    return found


def board_for(filters: dict, today: date | None = None) -> svc.Board:
    """The board of *filters* in the signed-in user's scope, narrowed to the rows whose ``open``
    step is still to do."""
    board = svc.compute(db.session, filters["period"], today or date.today(), scope=scoped_accountant_id(),
                        accountant_id=filters["accountant_id"], name=filters["q"])
    if filters["open"] == ANY:
        board.rows = [r for r in board.rows if r.open_steps()]
    elif filters["open"]:
        board.rows = [r for r in board.rows if r.cells[filters["open"]].state == svc.TODO]
    return board


# --- API ------------------------------------------------------------------------------------


class CellOut(Schema):
    state = fields.String(metadata={"enum": [svc.DONE, svc.TODO, svc.NA]})
    by = fields.String(allow_none=True, metadata={"description": "who did it, where the data says"})
    at = fields.String(allow_none=True, metadata={"description": "when (UTC), where the data says"})
    late = fields.String(allow_none=True, metadata={"enum": [svc.LATE, svc.DUE_SOON, None]})


class BoardRowOut(Schema):
    client_id = fields.Integer()
    client_name = fields.String()
    accountant = fields.String(allow_none=True)
    cells = fields.Dict(keys=fields.String(metadata={"enum": list(svc.STEPS)}), values=fields.Nested(CellOut))


class BoardOut(Schema):
    period = fields.String(metadata={"example": "2026-03"})
    deadline = fields.String(metadata={"example": "2026-04-20", "description": "the month's filing deadline"})
    deadline_source = fields.String(metadata={"enum": ["official", "estimated"]})
    rows = fields.List(fields.Nested(BoardRowOut))


class WorkBoardApi(BaseApi):
    """The month's work board: each client's steps, derived from the data."""
    permission_label = _l("Work board")  # on the role screens

    allow_browser_login = True
    route_base = "/api/v1"
    resource_name = "work_board"
    openapi_spec_tag = "Work board"
    openapi_spec_component_schemas = (LedgerError, CellOut, BoardRowOut, BoardOut)

    @expose("/work_board", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self) -> Response:
        """The work board of a month: a row per client in the user's scope, a cell per step
        ---
        get:
          parameters:
          - {in: query, name: period, schema: {type: string, example: "2026-03"}, description: default last month}
          - {in: query, name: accountant_id, schema: {type: integer}}
          - {in: query, name: q, schema: {type: string}, description: a part of the client's name}
          - {in: query, name: open, schema: {type: string, enum: [documents, bookkeeping, review, close, filing,
             payment, fee, any]}, description: only the rows where this step (any step) is still to do}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/BoardOut'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        return self.response(200, **svc.board_json(board_for(board_filters(request.args))))


# --- screen -----------------------------------------------------------------------------------


def cell_link(step: str, client_id: int, period: str) -> str | None:
    """Where a step of a client's month is done."""
    if step in ("bookkeeping", "review"):
        return url_for("VoucherModelView.list", _flt_0_client=client_id, _flt_0_period=period)
    if step == "close":
        return url_for("LedgerPeriodView.list", pk=client_id)
    if step in ("filing", "payment"):
        return url_for("TaxFilingView.list", client_id=client_id)
    if step == "fee":
        return url_for("FeeBillModelView.list", _flt_0_client=client_id)
    return None


class WorkBoardView(BaseView):
    """月度工作台: clients × the steps of the month."""

    route_base = "/workboard"
    default_view = "show"

    @expose("/")
    @has_access
    @permission_name("list")
    def show(self):  # noqa: ANN201
        try:
            filters = board_filters(request.args)
        except ValidationFailed as exc:
            flash(exc.message, "danger")
            filters = board_filters({})
        board = board_for(filters)
        accountants = []
        if scoped_accountant_id() is None:
            from flask_appbuilder.security.sqla.models import User

            accountants = db.session.execute(select(User.id, User.username).where(
                User.id.in_(select(Client.accountant_id).where(Client.accountant_id.is_not(None))))
                .order_by(User.username)).all()
        can_tick = self.appbuilder.sm.has_access("can_tick", self.class_permission_name)
        return self.render_template(
            "work_board.html", board=board, filters=filters, accountants=accountants, can_tick=can_tick,
            steps=svc.STEPS, manual=svc.MANUAL_STEPS, step_labels=STEP_LABELS, state_labels=STATE_LABELS,
            late_labels=LATE_LABELS, not_started=NOT_STARTED, cell_link=cell_link, to_display=to_display,
            title=_l("Work board"))

    @expose("/tick", methods=["POST"])
    @has_access
    @permission_name("tick")
    def tick(self):  # noqa: ANN201
        """Tick (``done=y``) or untick a step done by hand, then back to the board."""
        form = request.form
        if form.get("done") == "y":
            svc.tick(db.session, form.get("client_id"), form.get("period"), form.get("step"), current_user_id(),
                     scope=scoped_accountant_id())
            flash(str(_l("Ticked.")), "success")
        else:
            svc.untick(db.session, form.get("client_id"), form.get("period"), form.get("step"),
                       scope=scoped_accountant_id())
            flash(str(_l("Unticked.")), "success")
        back = {k: v for k, v in (("period", form.get("period")), ("q", form.get("q")),
                                  ("accountant_id", form.get("accountant_id"))) if v}
        return redirect(url_for("WorkBoardView.show", **back), code=303)


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the work board (menu 税务) and its API."""
    appbuilder.add_view(WorkBoardView, "Work board", label=_l("Work board"), icon="fa-th", category="Tax",
                        category_label=lazy_pgettext("menu", "Tax"), category_icon="fa-calculator")
    appbuilder.add_api(WorkBoardApi)
