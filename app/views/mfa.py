"""Two-factor authentication screens: enrol, verify at login, recovery codes, reset."""

from __future__ import annotations

import time

import segno
from flask import abort, current_app, flash, g, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from app.extensions import db
from app.security import MFA_PENDING_SECONDS, client_ip, complete_login, failed_sign_in
from app.services import audit, mfa, signin


class CodeForm(FlaskForm):
    code = StringField(lazy_pgettext("one-time password", "Code"), validators=[DataRequired(), Length(max=20)],
                       render_kw={"autocomplete": "one-time-code", "autofocus": True})


def _logged_in_user():  # noqa: ANN202
    user = getattr(g, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return user


class MFAView(BaseView):
    """Every signed-in user manages their own second factor here (no extra permission)."""
    permission_label = _l("Two-factor authentication")  # on the role screens

    route_base = "/mfa"
    default_view = "setup"

    def create_blueprint(self, appbuilder, endpoint=None, static_folder=None):  # noqa: ANN001, ANN201
        blueprint = super().create_blueprint(appbuilder, endpoint=endpoint, static_folder=static_folder)
        sm = appbuilder.sm
        if sm.sign_in_limited:
            # A six-digit code is easier to guess than a password: the same limit per address,
            # counting wrong codes (``failed_sign_in``).
            sm.limiter.limit(sm.auth_rate_limit, methods=["POST"], deduct_when=failed_sign_in)(blueprint)
        return blueprint

    def _render(self, template: str, **kwargs):  # noqa: ANN003, ANN202
        return self.render_template(template, appbuilder=self.appbuilder, **kwargs)

    @expose("/verify", methods=["GET", "POST"])
    def verify(self):  # noqa: ANN201
        pending = session.get("mfa_pending")
        if not pending or time.time() - pending.get("at", 0) > MFA_PENDING_SECONDS:
            session.pop("mfa_pending", None)
            return redirect(self.appbuilder.get_url_for_login)
        form = CodeForm()
        if form.validate_on_submit():
            sm = self.appbuilder.sm
            user = sm.get_user_by_id(pending["uid"])
            policy = signin.Policy.from_config(current_app.config)
            # A wrong code counts towards the account's lock like a wrong password; a locked
            # account is refused without looking at the code.
            locked = user is not None and signin.is_locked(db.session, user.id, policy)
            if (user is not None and user.is_active and not locked
                    and mfa.verify(db.session, user.id, form.code.data)):
                actor = audit.Actor(user.id, user.username, client_ip())
                audit.record_event(db.session, "mfa_success", actor=actor)
                audit.record_event(db.session, "login_success", actor=actor, summary=user.username)
                signin.record_success(db.session, user.id)
                db.session.commit()
                complete_login(user, pending.get("next") or "")
                return redirect(pending.get("next") or self.appbuilder.get_url_for_index)
            username = user.username if user else None
            audit.record_event(db.session, "mfa_failure", actor=audit.Actor(pending["uid"], username, client_ip()),
                               changes={"locked": True} if locked else None)
            if user is not None and user.is_active and not locked:
                locked = signin.record_failure(db.session, user.id, username, policy, client_ip())
            db.session.commit()
            g.sign_in_failed = True
            if locked:
                session.pop("mfa_pending", None)
                flash(str(signin.LOCKED_MESSAGE), "warning")
                return redirect(self.appbuilder.get_url_for_login)
            flash(str(_l("That code is not valid. Try again.")), "warning")
        return self._render("mfa_verify.html", form=form, title=_l("Two-factor authentication"))

    @expose("/setup", methods=["GET", "POST"])
    def setup(self):  # noqa: ANN201
        user = _logged_in_user()
        if user is None:
            return redirect(self.appbuilder.get_url_for_login)
        enrolment = mfa.get_enrolment(db.session, user.id)
        if enrolment and enrolment.enabled:
            return self._render("mfa_status.html", title=_l("Two-factor authentication"),
                                remaining=mfa.remaining_recovery_codes(db.session, user.id),
                                required=self._required(user), form=CodeForm())
        form = CodeForm()
        if request.method == "POST" and form.validate_on_submit() and enrolment:
            codes = mfa.confirm_enrolment(db.session, user.id, form.code.data)
            if codes:
                audit.record_event(db.session, "mfa_enrolled")
                db.session.commit()
                session.pop("mfa_enrol_required", None)
                return self._render("mfa_codes.html", codes=codes, title=_l("Recovery codes"))
            g.sign_in_failed = True
            flash(str(_l("That code is not valid. Try again.")), "warning")
            secret = enrolment.secret
        else:
            secret = mfa.pending_secret(db.session, user.id)
        uri = mfa.provisioning_uri(secret, user.username, current_app.config["MFA_ISSUER"])
        # segno draws the QR code as SVG paths; no text from the user reaches the markup.
        qr = Markup(segno.make(uri, error="m").svg_inline(scale=5))  # noqa: S704
        return self._render("mfa_setup.html", form=form, secret=secret, uri=uri, qr=qr,
                            required=self._required(user), title=_l("Set up two-factor authentication"))

    @expose("/recovery-codes", methods=["POST"])
    def recovery_codes(self):  # noqa: ANN201
        user = _logged_in_user()
        if user is None:
            return redirect(self.appbuilder.get_url_for_login)
        form = CodeForm()
        if form.validate_on_submit() and mfa.verify(db.session, user.id, form.code.data):
            codes = mfa.regenerate_recovery_codes(db.session, user.id)
            audit.record_event(db.session, "mfa_recovery_codes")
            db.session.commit()
            return self._render("mfa_codes.html", codes=codes, title=_l("Recovery codes"))
        g.sign_in_failed = True
        flash(str(_l("That code is not valid. Try again.")), "warning")
        return redirect(url_for("MFAView.setup"))

    @expose("/disable", methods=["POST"])
    def disable(self):  # noqa: ANN201
        user = _logged_in_user()
        if user is None:
            return redirect(self.appbuilder.get_url_for_login)
        if self._required(user):
            flash(str(_l("Your role requires two-factor authentication.")), "warning")
            return redirect(url_for("MFAView.setup"))
        form = CodeForm()
        if form.validate_on_submit() and mfa.verify(db.session, user.id, form.code.data):
            mfa.reset(db.session, user.id)
            audit.record_event(db.session, "mfa_disabled")
            db.session.commit()
            flash(str(_l("Two-factor authentication is off.")), "info")
        else:
            g.sign_in_failed = True
            flash(str(_l("That code is not valid. Try again.")), "warning")
        return redirect(url_for("MFAView.setup"))

    @staticmethod
    def _required(user) -> bool:  # noqa: ANN001
        return mfa.is_required([r.name for r in user.roles], current_app.config["MFA_REQUIRED_ROLES"])


def mfa_enrolled(user_id: int | str) -> bool:
    """For templates: whether the user with *user_id* has two-factor authentication on."""
    try:
        return mfa.is_enabled(db.session, int(user_id))
    except (TypeError, ValueError):
        return False


class MFAAdminView(BaseView):
    """Admin: reset a user's second factor (lost phone)."""
    permission_label = lazy_pgettext("view menu", "Users' two-factor authentication")  # on the role screens

    route_base = "/mfa-admin"
    base_permissions = ["can_reset"]

    @expose("/reset/<int:user_id>", methods=["POST"])
    @has_access
    def reset(self, user_id: int):  # noqa: ANN201
        user = self.appbuilder.sm.get_user_by_id(user_id)
        if user is None:
            abort(404)
        mfa.reset(db.session, user_id)
        audit.record_event(db.session, "mfa_reset", object_type="ab_user", object_id=user_id,
                           summary=user.username)
        db.session.commit()
        flash(str(_l("Two-factor authentication was reset for %(user)s.", user=user.username)), "info")
        return redirect(request.referrer or self.appbuilder.get_url_for_index)

