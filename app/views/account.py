"""Account screens: changing one's password, an Admin's reset, the lifting of a sign-in lock
(screen and API), and the hold on users whose password has expired.

The rules are in app/services/passwords.py, credentials.py and signin.py; these views only map
forms and requests onto them.
"""

from __future__ import annotations

import time

from flask import Flask, abort, current_app, flash, g, jsonify, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.api import BaseApi
from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget
from flask_appbuilder.forms import DynamicForm
from flask_appbuilder.security.decorators import has_access, protect
from flask_appbuilder.security.views import ResetMyPasswordView, ResetPasswordView
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from wtforms import Field, Form, PasswordField, ValidationError
from wtforms.validators import DataRequired, EqualTo

from app.errors import api_safe as safe
from app.extensions import db
from app.services import credentials, passwords, signin
from app.services.errors import DomainError, ValidationFailed
from app.services.inputs import parse_id


class PasswordPolicy:
    """WTForms validator: the password policy, with the form's user name and email when it has them."""

    def __call__(self, form: Form, field: Field) -> None:
        username = getattr(getattr(form, "username", None), "data", None)
        email = getattr(getattr(form, "email", None), "data", None)
        errors = passwords.policy_errors(field.data, username, email)
        if errors:
            raise ValidationError(" ".join(errors))


class ResetUserPasswordForm(DynamicForm):
    """A new password, twice (the policy is checked by the service, with the user's name)."""

    password = PasswordField(_l("New password"), description=passwords.POLICY_HINT,
                             validators=[DataRequired()], widget=BS3PasswordFieldWidget())
    conf_password = PasswordField(_l("Confirm the new password"),
                                  validators=[EqualTo("password", message=_l("Passwords must match"))],
                                  widget=BS3PasswordFieldWidget())


class ChangeMyPasswordForm(DynamicForm):
    """The current password, then the new one twice."""

    current_password = PasswordField(_l("Current password"), validators=[DataRequired()],
                                     widget=BS3PasswordFieldWidget())
    password = PasswordField(_l("New password"), description=passwords.POLICY_HINT,
                             validators=[DataRequired()], widget=BS3PasswordFieldWidget())
    conf_password = PasswordField(_l("Confirm the new password"),
                                  validators=[EqualTo("password", message=_l("Passwords must match"))],
                                  widget=BS3PasswordFieldWidget())


class _PasswordFormView:
    """The form again, with the service's errors on their fields."""

    def _refused(self, form: DynamicForm, error: ValidationFailed):  # noqa: ANN202
        db.session.rollback()
        for name, messages in error.errors.items():
            field = getattr(form, name, None) or form.password
            field.errors = list(messages)
        widgets = self._get_edit_widget(form=form)
        return self.render_template(self.form_template, title=self.form_title, widgets=widgets,
                                    appbuilder=self.appbuilder)


class DeskResetMyPasswordView(_PasswordFormView, ResetMyPasswordView):
    """Change my password: the current one first. Every other session and API token of mine ends;
    this browser stays signed in under a new session."""

    class_permission_name = "ResetMyPasswordView"  # the permissions keep FAB's name
    form = ChangeMyPasswordForm
    form_title = _l("Change password")
    message = _l("Your password was changed. You were signed out everywhere else.")

    def form_post(self, form: DynamicForm):  # noqa: ANN201
        try:
            passwords.change_own(db.session, g.user.id, form.current_password.data, form.password.data,
                                 in_worker=current_app.config.get("ASYNC_MODE") != "threading")
        except ValidationFailed as error:
            return self._refused(form, error)
        session["_sid"] = credentials.open_session(db.session, g.user.id,
                                                   current_app.config["SESSION_IDLE_MINUTES"] * 60)
        db.session.commit()
        session.pop("password_change_required", None)
        flash(str(self.message), "info")
        return None


class DeskResetPasswordView(_PasswordFormView, ResetPasswordView):
    """An Admin sets another user's password; that user's sessions and API tokens end."""

    class_permission_name = "ResetPasswordView"
    form = ResetUserPasswordForm
    message = _l("The password was changed; the user was signed out everywhere.")

    def form_post(self, form: DynamicForm):  # noqa: ANN201
        user_id = parse_id(request.args.get("pk", ""))
        if user_id is None:
            abort(404)
        try:
            passwords.reset_by_admin(db.session, user_id, form.password.data)
        except ValidationFailed as error:
            return self._refused(form, error)
        except DomainError:
            db.session.rollback()
            abort(404)
        db.session.commit()
        if user_id == g.user.id:  # an Admin resetting their own password stays signed in here
            session["_sid"] = credentials.open_session(db.session, user_id,
                                                       current_app.config["SESSION_IDLE_MINUTES"] * 60)
            db.session.commit()
        flash(str(self.message), "info")
        return None


def _policy() -> signin.Policy:
    return signin.Policy.from_config(current_app.config)


class AccountLockView(BaseView):
    """Admin: lift a sign-in lock from the user's detail page."""
    permission_label = lazy_pgettext("view menu", "Sign-in locks")  # on the role screens

    route_base = "/account-lock"
    base_permissions = ["can_lift"]

    @expose("/lift/<int:user_id>", methods=["POST"])
    @has_access
    def lift(self, user_id: int):  # noqa: ANN201
        try:
            signin.lift(db.session, user_id, _policy())
        except DomainError as error:
            db.session.rollback()
            if error.status_code == 404:
                abort(404)
            flash(error.message, "warning")
        else:
            db.session.commit()
            flash(str(_l("The account is unlocked.")), "info")
        return redirect(request.referrer or self.appbuilder.get_url_for_index)


class AccountLockApi(BaseApi):
    """``/api/v1/account_lock/<user_id>``: GET the sign-in lock of a user, DELETE to lift it (Admin)."""

    resource_name = "account_lock"
    class_permission_name = "AccountLockView"
    method_permission_name = {"get": "lift", "delete": "lift"}
    allow_browser_login = True

    @expose("/<int:user_id>", methods=["GET"])
    @protect()
    @safe
    def get(self, user_id: int):  # noqa: ANN201
        """The sign-in lock of a user
        ---
        get:
          parameters:
          - in: path
            name: user_id
            schema:
              type: integer
          responses:
            200:
              description: locked, failed_count, locked_at, locked_until (null while locked means until lifted)
            404:
              $ref: '#/components/responses/404'
        """
        if self.appbuilder.sm.get_user_by_id(user_id) is None:
            return self.response_404()
        state = signin.state(db.session, user_id, _policy())
        return self.response(200, locked=state.locked, failed_count=state.failed_count,
                             locked_at=state.locked_at.isoformat() if state.locked_at else None,
                             locked_until=state.locked_until.isoformat() if state.locked_until else None)

    @expose("/<int:user_id>", methods=["DELETE"])
    @protect()
    @safe
    def delete(self, user_id: int):  # noqa: ANN201
        """Lift the sign-in lock of a user
        ---
        delete:
          parameters:
          - in: path
            name: user_id
            schema:
              type: integer
          responses:
            200:
              description: unlocked
            404:
              $ref: '#/components/responses/404'
            409:
              description: the account is not locked
        """
        signin.lift(db.session, user_id, _policy())  # a refusal is answered by the API's error contract
        db.session.commit()
        return self.response(200, message=str(_l("The account is unlocked.")))


def account_lock(user_id: int | str):  # noqa: ANN201
    """For templates: the sign-in lock state of *user_id* (None for a bad id)."""
    try:
        return signin.state(db.session, int(user_id), _policy())
    except (TypeError, ValueError):
        return None


# --- the hold on a user whose password expired ------------------------------------------------

_ALLOWED_WHILE_EXPIRED = {"DeskResetMyPasswordView.this_form_get", "DeskResetMyPasswordView.this_form_post",
                          "MFAView.setup", "MFAView.verify", "static", "appbuilder.static",
                          "LocaleView.index", "health.health"}


def install_password_expiry_hold(app: Flask) -> None:
    """A user signed in with an expired password (``PASSWORD_MAX_AGE_DAYS``) reaches only the
    change-password form (and sign-out) until the password is changed; the API answers 403."""

    @app.before_request
    def _password_expiry_hold():  # noqa: ANN202
        if not session.get("password_change_required"):
            return None
        seen = session.get("_seen")
        if seen is not None and time.time() - seen > app.config["SESSION_IDLE_MINUTES"] * 60:
            return None  # the idle timeout signs this session out instead
        user = getattr(g, "user", None)
        if user is None or not user.is_authenticated:
            return None
        logout_endpoint = f"{app.appbuilder.sm.auth_view.endpoint}.logout"
        if request.endpoint in _ALLOWED_WHILE_EXPIRED or request.endpoint == logout_endpoint:
            return None
        if request.path.startswith("/api/"):
            return jsonify(message=str(_l("Your password has expired: change it first."))), 403
        flash(str(_l("Your password has expired: choose a new one to go on.")), "warning")
        return redirect(url_for("DeskResetMyPasswordView.this_form_get"))
