"""The books and statements: REST API (``/api/v1/reports/...``) and screens (``/ledger/reports/...``).

Thin: parameters are read here, the numbers come from ``app.services.ledger_reports``. A client
outside the user's scope (or unknown) answers 404; a bad parameter answers 422 with a message
naming it, as the rest of the API does. Amounts travel as strings.
"""

from __future__ import annotations

from itertools import zip_longest

from flask import Flask, abort, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext

from app.errors import api_safe as safe
from app.extensions import db
from app.services import ledger_reports as svc
from app.services.accounting import money, parse_period, period_label, year_start
from app.services.errors import DomainError, NotFound, ValidationFailed
from app.services.inputs import parse_count
from app.views.current_client import client_param, clients_with_books, open_on_current, remember
from app.views.pdf_links import document_url

TRUE = ("1", "true", "yes", "on")


# --- parameters -----------------------------------------------------------------------------


def _client_id(args) -> int:  # noqa: ANN001
    return client_param(args.get("client_id"))


def month_range(args) -> tuple[str, str]:  # noqa: ANN001
    """``period=YYYY-MM`` (one month) or ``from=YYYY-MM&to=YYYY-MM``, as given (not yet parsed).
    Raises ``ValidationFailed`` naming the missing field."""
    period, start, end = (args.get(name, "").strip() for name in ("period", "from", "to"))
    if start or end:
        if not start:
            raise ValidationFailed({"from": [str(_l("Give the first month of the range (YYYY-MM)."))]})
        if not end:
            raise ValidationFailed({"to": [str(_l("Give the last month of the range (YYYY-MM)."))]})
        return start, end
    if not period:
        raise ValidationFailed({"period": [str(_l("Give a period (YYYY-MM) or a range from= and to=."))]})
    return period, period


def _period(args) -> str:  # noqa: ANN001
    period = args.get("period", "").strip()
    if not period:
        raise ValidationFailed({"period": [str(_l("Give a period (YYYY-MM)."))]})
    return period


def _level(args) -> int | None:  # noqa: ANN001
    raw = args.get("level", "").strip()
    if not raw:
        return None
    level = parse_count(raw, 0, 9)
    if not level:
        raise ValidationFailed({"level": [str(_l("The level is a whole number from 1 to 9."))]})
    return level


def _flag(args, name: str, default: bool) -> bool:  # noqa: ANN001
    raw = args.get(name)
    return default if raw in (None, "") else raw.strip().lower() in TRUE


# --- JSON shapes ----------------------------------------------------------------------------


def _amount(value) -> str | None:  # noqa: ANN001
    return None if value is None else money(value)


def _balance(value) -> dict:  # noqa: ANN001
    return {"direction": svc.direction_of(value), "balance": money(abs(value))}


COLUMNS = ("opening_debit", "opening_credit", "debit", "credit", "closing_debit", "closing_credit")


def trial_balance_json(report: svc.TrialBalance) -> dict:
    return {
        "client_id": report.client_id, "from": period_label(report.from_period), "to": period_label(report.to_period),
        "rows": [{"code": row.code, "name": row.name, "level": row.level, "is_leaf": row.is_leaf,
                  **{name: money(v) for name, v in zip(COLUMNS, row.columns, strict=True)}} for row in report.rows],
        "totals": {name: money(v) for name, v in zip(COLUMNS, report.totals, strict=True)},
        "balanced": report.balanced,
    }


def general_ledger_json(client_id: int, start: int, end: int, accounts: list[svc.GeneralLedgerAccount]) -> dict:
    return {
        "client_id": client_id, "from": period_label(start), "to": period_label(end),
        "accounts": [{"code": a.code, "name": a.name, "opening": _balance(a.opening),
                      "months": [{"period": period_label(m.period), "debit": money(m.debit), "credit": money(m.credit),
                                  "ytd_debit": money(m.ytd_debit), "ytd_credit": money(m.ytd_credit),
                                  **_balance(m.balance)} for m in a.months]} for a in accounts],
    }


def detail_ledger_json(report: svc.DetailLedger) -> dict:
    return {
        "client_id": report.client_id, "account_code": report.account_code, "account_name": report.account_name,
        "from": period_label(report.from_period), "to": period_label(report.to_period),
        "rows": [{"kind": r.kind, "period": period_label(r.period), "date": r.date.isoformat() if r.date else None,
                  "voucher_id": r.voucher_id, "voucher": r.voucher, "account_code": r.account_code,
                  "summary": r.summary, "debit": money(r.debit), "credit": money(r.credit), **_balance(r.balance)}
                 for r in report.rows],
    }


def statement_json(report: svc.Statement, first: str, second: str) -> dict:
    return {"client_id": report.client_id, "period": period_label(report.period),
            "lines": [{"line": ln.line, "item": ln.item, first: _amount(ln.first), second: _amount(ln.second)}
                      for ln in report.lines]}


def _unclosed_json(part: svc.UnclosedProfit | None) -> dict | None:
    if part is None:
        return None
    return {"line": part.line, "amount": money(part.amount), "from": period_label(part.from_period),
            "to": period_label(part.to_period), "note": part.note}


def balance_sheet_json(report: svc.Statement) -> dict:
    """The statement's lines, and ``unclosed_profit``: per column, the profit not yet carried
    forward that its 未分配利润 line holds (``null`` where every month counted is closed)."""
    end, start = report.unclosed
    return {**statement_json(report, "end", "year_start"),
            "unclosed_profit": {"end": _unclosed_json(end), "year_start": _unclosed_json(start)}}


def _general_ledger(args, client_id: int) -> tuple[int, int, list[svc.GeneralLedgerAccount]]:  # noqa: ANN001
    start, end = month_range(args)
    accounts = svc.general_ledger(db.session, client_id, start, end, hide_zero=_flag(args, "hide_zero", True))
    return parse_period(start, "from"), parse_period(end, "to"), accounts


# --- API ------------------------------------------------------------------------------------


class LedgerReportApi(BaseApi):
    """Read-only reports over a client's books; JWT or browser login."""
    permission_label = lazy_pgettext("view menu", "Ledger reports")  # on the role screens

    resource_name = "reports"
    allow_browser_login = True
    openapi_spec_tag = "Ledger reports"

    def _answer(self, build):  # noqa: ANN001, ANN202
        return self.response(200, **build(request.args))

    @expose("/trial-balance", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def trial_balance(self):  # noqa: ANN201
        """Trial balance (科目余额表)
        ---
        get:
          parameters:
          - {in: query, name: client_id, required: true, schema: {type: integer}}
          - {in: query, name: period, schema: {type: string, example: "2026-03"}}
          - {in: query, name: from, schema: {type: string}}
          - {in: query, name: to, schema: {type: string}}
          - {in: query, name: level, schema: {type: integer}}
          - {in: query, name: hide_zero, schema: {type: boolean}}
          responses:
            200: {description: "rows with opening, period and closing debit and credit, totals"}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        def build(args) -> dict:  # noqa: ANN001
            client_id = _client_id(args)
            start, end = month_range(args)
            return trial_balance_json(svc.trial_balance(db.session, client_id, start, end, level=_level(args),
                                                        hide_zero=_flag(args, "hide_zero", False)))
        return self._answer(build)

    @expose("/general-ledger", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def general_ledger(self):  # noqa: ANN201
        """General ledger (总账)
        ---
        get:
          parameters:
          - {in: query, name: client_id, required: true, schema: {type: integer}}
          - {in: query, name: period, schema: {type: string}}
          - {in: query, name: from, schema: {type: string}}
          - {in: query, name: to, schema: {type: string}}
          responses:
            200: {description: "per first-level account: opening, then per month debit, credit, year to date"}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        def build(args) -> dict:  # noqa: ANN001
            client_id = _client_id(args)
            return general_ledger_json(client_id, *_general_ledger(args, client_id))
        return self._answer(build)

    @expose("/ledger", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def ledger(self):  # noqa: ANN201
        """Detail ledger of one account (明细账)
        ---
        get:
          parameters:
          - {in: query, name: client_id, required: true, schema: {type: integer}}
          - {in: query, name: account_code, required: true, schema: {type: string}}
          - {in: query, name: period, schema: {type: string}}
          - {in: query, name: from, schema: {type: string}}
          - {in: query, name: to, schema: {type: string}}
          responses:
            200: {description: "opening, lines with running balance, month and year-to-date totals"}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        def build(args) -> dict:  # noqa: ANN001
            client_id = _client_id(args)
            start, end = month_range(args)
            return detail_ledger_json(svc.detail_ledger(db.session, client_id, args.get("account_code"), start, end))
        return self._answer(build)

    @expose("/balance-sheet", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def balance_sheet(self):  # noqa: ANN201
        """Balance sheet (资产负债表, 会小企01表)
        ---
        get:
          parameters:
          - {in: query, name: client_id, required: true, schema: {type: integer}}
          - {in: query, name: period, required: true, schema: {type: string}}
          responses:
            200: {description: "lines with end and year_start amounts; unclosed_profit per column or null"}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        def build(args) -> dict:  # noqa: ANN001
            client_id = _client_id(args)
            return balance_sheet_json(svc.balance_sheet(db.session, client_id, _period(args)))
        return self._answer(build)

    @expose("/income-statement", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def income_statement(self):  # noqa: ANN201
        """Income statement (利润表, 会小企02表)
        ---
        get:
          parameters:
          - {in: query, name: client_id, required: true, schema: {type: integer}}
          - {in: query, name: period, required: true, schema: {type: string}}
          responses:
            200: {description: "lines with period and ytd amounts"}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        def build(args) -> dict:  # noqa: ANN001
            client_id = _client_id(args)
            return statement_json(svc.income_statement(db.session, client_id, _period(args)), "period", "ytd")
        return self._answer(build)


# --- screens --------------------------------------------------------------------------------


REPORTS = (  # endpoint, menu name, label
    ("trial_balance", "Trial balance", _l("Trial balance")),
    ("general_ledger", "General ledger", _l("General ledger")),
    ("detail_ledger", "Detail ledger", _l("Detail ledger")),
    ("balance_sheet", "Balance sheet", _l("Balance sheet")),
    ("income_statement", "Income statement", _l("Income statement")),
)


class LedgerReportView(BaseView):
    """Screens of the books and statements: choose a client and a month or a range."""
    permission_label = lazy_pgettext("view menu", "Ledger reports")  # on the role screens

    route_base = "/ledger/reports"
    default_view = "trial_balance"

    def _page(self, endpoint: str, build, **context):  # noqa: ANN001, ANN003, ANN202
        """Render *endpoint*'s template; *build(args, client_id)* returns the report context."""
        args = request.args
        title = next(label for ep, _, label in REPORTS if ep == endpoint)
        context.update(reports=REPORTS, endpoint=endpoint, title=title, clients=clients_with_books(), args=args,
                       error=None, client_id=None, money=money, period_label=period_label, detail_url=detail_url)
        status = 200
        on_current = open_on_current(f"LedgerReportView.{endpoint}")  # inside the current set of books (当前账套)
        if on_current is not None:
            return on_current
        if args.get("client_id"):
            try:
                client_id = context["client_id"] = _client_id(args)
                merged = args.to_dict()
                if not any(args.get(name) for name in ("period", "from", "to")):
                    latest = svc.latest_period(db.session, client_id)
                    first = max(year_start(latest), svc.get_books(db.session, client_id).start_period)
                    merged.update(period=period_label(latest), to=period_label(latest), **{"from": period_label(first)})
                context["args"] = merged
                context.update(build(merged, client_id))
                remember(client_id)
                context["pdf_url"] = pdf_url(endpoint, merged)
            except NotFound:
                abort(404)
            except DomainError as exc:
                db.session.rollback()
                context["error"], status = exc.message, 422
        return self.render_template(f"ledger_reports/{endpoint}.html", **context), status

    @expose("/trial-balance")
    @has_access
    @permission_name("list")
    def trial_balance(self):  # noqa: ANN201
        def build(args: dict, client_id: int) -> dict:
            report = svc.trial_balance(db.session, client_id, *month_range(args), level=_level(args),
                                       hide_zero=_flag(args, "hide_zero", True))
            return {"report": report}
        return self._page("trial_balance", build)

    @expose("/general-ledger")
    @has_access
    @permission_name("list")
    def general_ledger(self):  # noqa: ANN201
        def build(args: dict, client_id: int) -> dict:
            start, end, accounts = _general_ledger(args, client_id)
            return {"accounts": accounts, "start": start, "end": end}
        return self._page("general_ledger", build)

    @expose("/detail-ledger")
    @has_access
    @permission_name("list")
    def detail_ledger(self):  # noqa: ANN201
        def build(args: dict, client_id: int) -> dict:
            if not args.get("account_code"):
                return {}
            return {"report": svc.detail_ledger(db.session, client_id, args.get("account_code"), *month_range(args))}
        return self._page("detail_ledger", build)

    @expose("/balance-sheet")
    @has_access
    @permission_name("list")
    def balance_sheet(self):  # noqa: ANN201
        def build(args: dict, client_id: int) -> dict:
            report = svc.balance_sheet(db.session, client_id, _period(args))
            assets = [ln for ln in report.lines if ln.line <= 30]
            claims = [ln for ln in report.lines if ln.line > 30]
            return {"report": report, "pairs": list(zip_longest(assets, claims))}
        return self._page("balance_sheet", build)

    @expose("/income-statement")
    @has_access
    @permission_name("list")
    def income_statement(self):  # noqa: ANN201
        def build(args: dict, client_id: int) -> dict:
            return {"report": svc.income_statement(db.session, client_id, _period(args))}
        return self._page("income_statement", build)


# The PDF of each screen (/reports/<document>.pdf) and the parameters it takes from the screen's.
PDF_DOCUMENTS = {
    "trial_balance": ("trial-balance", ("period", "from", "to")),
    "general_ledger": ("general-ledger", ("period", "from", "to")),
    "detail_ledger": ("detail-ledger", ("period", "from", "to", "account_code")),
    "balance_sheet": ("balance-sheet", ("period",)),
    "income_statement": ("income-statement", ("period",)),
}


def pdf_url(endpoint: str, args: dict) -> str | None:
    """The PDF download of the report on screen, for users who may download PDFs; else None."""
    document, names = PDF_DOCUMENTS[endpoint]
    return document_url(document, client_id=args.get("client_id"), **{name: args.get(name) for name in names})


def detail_url(client_id: int, code: str, start: int, end: int) -> str:
    return url_for("LedgerReportView.detail_ledger", client_id=client_id, account_code=code,
                   **{"from": period_label(start), "to": period_label(end)})


def register(app: Flask, appbuilder: AppBuilder) -> None:
    """Add the report screens (menu "Ledger") and the reports API to *appbuilder*."""
    ledger = dict(category="Ledger", category_label=_l("Ledger"), category_icon="fa-book")
    _, name, label = REPORTS[0]
    view = appbuilder.add_view(LedgerReportView, name, label=label, icon="fa-table", **ledger)
    icons = {"general_ledger": "fa-book", "detail_ledger": "fa-list-alt", "balance_sheet": "fa-balance-scale",
             "income_statement": "fa-line-chart"}
    for endpoint, name, label in REPORTS[1:]:
        appbuilder.add_link(name, href=f"LedgerReportView.{endpoint}", label=label, icon=icons[endpoint],
                            baseview=view, **ledger)
    appbuilder.add_api(LedgerReportApi)
