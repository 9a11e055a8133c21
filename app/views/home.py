"""The landing page: what needs attention today, for the signed-in user's role."""

from __future__ import annotations

from datetime import date

from flask import current_app, g, redirect
from flask_appbuilder import IndexView, expose
from sqlalchemy import func, select

from app.extensions import db
from app.models.contracts import Contract
from app.models.crm import Client, ClientStatus
from app.permissions import scoped_accountant_id
from app.services.contracts import LIVE, renewals_due
from app.views.labels import enum_label


class DeskIndexView(IndexView):
    index_template = "home.html"

    @expose("/")
    def index(self):  # noqa: ANN201
        user = getattr(g, "user", None)
        if user is None or not user.is_authenticated:
            return redirect(self.appbuilder.get_url_for_login)
        sm = self.appbuilder.sm
        ctx: dict = {"appbuilder": self.appbuilder}
        if sm.has_access("can_list", "ClientModelView"):
            scope = scoped_accountant_id()
            clients = select(func.count(Client.id)).where(Client.status == ClientStatus.active)
            if scope is not None:
                clients = clients.where(Client.accountant_id == scope)
            ctx["active_clients"] = db.session.scalar(clients)
        if sm.has_access("can_list", "ContractModelView"):
            scope = scoped_accountant_id()
            live = select(func.count(Contract.id)).where(Contract.status.in_(LIVE))
            if scope is not None:
                live = live.join(Client).where(Client.accountant_id == scope)
            ctx["live_contracts"] = db.session.scalar(live)
            ctx["renewals"] = renewals_due(db.session, date.today(),
                                           current_app.config["RENEWAL_WINDOW_DAYS"], accountant_id=scope)
        ctx["enum_label"] = enum_label
        return self.render_template(self.index_template, **ctx)
