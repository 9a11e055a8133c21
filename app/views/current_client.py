"""The current set of books (当前账套): pick a client once and the ledger screens keep it.

As in 用友 and 金蝶, staff work inside one client's books: the chart of accounts, opening
balances, periods, the voucher list, the new-voucher form, the report screens and the import
screen all open on the current client until it is changed.

Rules:

- The current client is kept in the user's own session (signed cookie), never in the server's
  memory, and is checked on every use: a client that left the user's scope or has no books any
  more is dropped, as if none had been chosen.
- Any ledger screen opened for a client (``/ledger/accounts/7``, a report with ``client_id=7``,
  the voucher list filtered by client 7) makes that client the current one.
- The switcher at the top of the ledger screens changes it, or clears it ("all clients"), with a
  POST that carries the CSRF token; a client outside the user's scope is a 404 and changes nothing.
"""

from __future__ import annotations

from flask import Flask, Response, abort, g, redirect, request, session, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import select

from app.extensions import db
from app.models.crm import Client
from app.models.ledger import LedgerBook
from app.permissions import client_in_scope, scoped_accountant_id
from app.services.errors import NotFound, ValidationFailed
from app.services.inputs import ascii_digits, parse_id

SESSION_KEY = "ledger_client_id"


def client_param(value: object) -> int:
    """A ``client_id`` parameter naming a client in the user's scope (an accountant: their own).

    Raises ``ValidationFailed`` when it is blank or not a whole number, ``NotFound`` when no such
    client is in the user's scope (the same answer for one that exists elsewhere).
    """
    raw = str(value or "").strip()
    if not raw:
        raise ValidationFailed({"client_id": [str(_l("Choose a client."))]})
    client_id = parse_id(raw)
    if client_id is None and not ascii_digits(raw):
        raise ValidationFailed({"client_id": [str(_l("The client id is a whole number."))]})
    if client_id is None or not client_in_scope(client_id):
        raise NotFound({"client_id": [str(_l("No such client."))]})
    return client_id


def clients_with_books() -> list[Client]:
    """Every client with books in the user's scope, by name (the pickers of the ledger screens)."""
    stmt = select(Client).join(LedgerBook, LedgerBook.client_id == Client.id).order_by(Client.name)
    scope = scoped_accountant_id()
    if scope is not None:
        stmt = stmt.where(Client.accountant_id == scope)
    return list(db.session.scalars(stmt))


def open_on_current(endpoint: str, **values: object) -> Response | None:
    """For a screen that takes ``client_id`` in its query: a redirect to it on the current client
    when the query names none and one is chosen; a blank ``client_id`` ("—") clears the choice."""
    if "client_id" not in request.args:
        current = current_client()
        if current is not None:
            return redirect(url_for(endpoint, **request.args.to_dict(), **values, client_id=current))
    elif not (request.args.get("client_id") or "").strip():
        forget()
    return None


def _with_books(client_id: int) -> str | None:
    """The name of *client_id* when it has books and is in the user's scope, else ``None``
    (looked up once per request)."""
    known = g.setdefault("ledger_clients_with_books", {})
    if client_id not in known:
        stmt = select(Client.name).join(LedgerBook, LedgerBook.client_id == Client.id).where(Client.id == client_id)
        scope = scoped_accountant_id()
        if scope is not None:
            stmt = stmt.where(Client.accountant_id == scope)
        known[client_id] = db.session.scalar(stmt)
    return known[client_id]


def current_client() -> int | None:
    """The current client's id, or ``None`` when none is chosen (or the chosen one is gone)."""
    client_id = parse_id(session.get(SESSION_KEY))
    if client_id is None:
        return None
    if _with_books(client_id) is None:
        forget()
        return None
    return client_id


def current_client_name() -> tuple[int, str] | None:
    """``(id, name)`` of the current client for the switcher, or ``None``."""
    client_id = parse_id(session.get(SESSION_KEY))
    name = _with_books(client_id) if client_id is not None else None
    if name is None:
        return None
    return client_id, name


def remember(client_id: int) -> None:
    """Make *client_id* the current client (the caller has checked the user's scope)."""
    if session.get(SESSION_KEY) != client_id:
        session[SESSION_KEY] = client_id


def forget() -> None:
    """Clear the current client: the ledger screens ask again."""
    session.pop(SESSION_KEY, None)


def picked_client() -> int | None:
    """The client a ledger screen opens on: the ``client_id`` query argument when there is one
    (a number; whether it is in scope is the screen's check), else the current client."""
    if "client_id" in request.args:
        return parse_id(request.args.get("client_id"))
    return current_client()


def _safe_next(target: str | None) -> str:
    """*target* when it is a path of this site (``/ledger/...``), else the voucher list."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("VoucherModelView.list")


class CurrentClientView(BaseView):
    """``POST /ledger/current/``: ``client_id`` (blank: all clients) and ``next``, the screen to
    return to."""
    permission_label = lazy_pgettext("view menu", "Current set of books")  # on the role screens

    route_base = "/ledger/current"
    default_view = "choose"

    @expose("/", methods=["POST"])
    @has_access
    @permission_name("choose")
    def choose(self):  # noqa: ANN201
        raw = (request.form.get("client_id") or "").strip()
        if not raw:
            forget()
        else:
            client_id = parse_id(raw)
            if client_id is None or _with_books(client_id) is None:
                abort(404)
            remember(client_id)
        return redirect(_safe_next(request.form.get("next")), code=303)


# Screens of one set of books at ``/<pk>``: switching returns to the screen, on the new client.
PER_BOOK_SCREENS = ("LedgerAccountView", "OpeningBalanceView", "LedgerPeriodView")


def switch_target() -> str:
    """Where the switcher returns: the same screen without the client it was opened for (so it
    opens on the new current client); one voucher's page returns to the voucher list."""
    view = (request.endpoint or "").split(".")[0]
    if request.view_args and "pk" in request.view_args:
        return url_for(f"{view}.list") if view in PER_BOOK_SCREENS else url_for("VoucherModelView.list")
    args = {key: value for key, value in request.args.items(multi=True)
            if key != "client_id" and not (key.startswith("_flt_") and key.endswith("_client"))}
    return url_for(request.endpoint, **args) if request.endpoint else url_for("VoucherModelView.list")


def register(app: Flask, appbuilder: AppBuilder) -> None:
    """Add the switcher's endpoint (no menu entry) and the template globals that
    ``ledger/_current_client.html`` reads."""
    from app.views.ledger_screens_common import books_in_scope

    appbuilder.add_view_no_menu(CurrentClientView)
    app.jinja_env.globals.update(ledger_current_client=current_client_name, ledger_clients=books_in_scope,
                                 ledger_switch_target=switch_target)
