"""Security manager: roles, login with a second factor, login auditing and rate limits.

Sign-in rules beyond Flask-AppBuilder's: sessions live server-side and end on sign-out; password
changes and deactivation end every session and API token (app/services/credentials.py); wrong
passwords and codes lock the account (app/services/signin.py) and, per address, only failed
attempts count towards ``AUTH_RATE_LIMIT``; passwords follow app/services/passwords.py.

The roles and what each may do (the defaults written by ``sync_roles``; an Admin may refine
them later in the Roles screen):

* **Admin**: everything (Flask-AppBuilder grants the Admin role every permission).
* **Manager**: every business screen and API, the audit log; not user or role administration.
* **Accountant**: the clients assigned to them only (others are 404), their contacts, bank
  accounts, service records, archives; contracts and fees read-only.
* **Reviewer**: reads every client, contact, service record and archive; no contracts, no
  personal data (masked).
* **Agent**: the chat console; leads (线索) made from chats; every client's name and credit code
  in the console's client search, to add a visitor as a client's contact (``can_find_clients``
  on ``LiveChat``, which widens no screen's rows: app/grants/leads.py); no books, no contracts,
  no client screens.
"""

from __future__ import annotations

import time

from flask import current_app, flash, g, redirect, request, session, url_for
from flask_appbuilder import expose
from flask_appbuilder.api import safe
from flask_appbuilder.const import (
    API_SECURITY_ACCESS_TOKEN_KEY,
    API_SECURITY_PROVIDER_DB,
    API_SECURITY_REFRESH_TOKEN_KEY,
)
from flask_appbuilder.fields import QuerySelectMultipleField
from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, Select2ManyWidget
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.security.forms import LoginForm_db, roles_or_groups_required
from flask_appbuilder.security.schemas import login_post
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.sqla.models import Role, User
from flask_appbuilder.security.utils import is_null_password
from flask_appbuilder.security.views import (
    AuthDBView,
    PermissionModelView,
    PermissionViewModelView,
    RoleListWidget,
    RoleModelView,
    RoleShowWidget,
    UserDBModelView,
    UserGroupModelView,
    ViewMenuModelView,
)
from flask_appbuilder.utils.base import get_safe_redirect
from flask_appbuilder.widgets import ListWidget
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_jwt_extended import create_access_token, create_refresh_token
from flask_login import login_user
from marshmallow import ValidationError
from sqlalchemy.orm import selectinload
from wtforms import PasswordField
from wtforms.validators import DataRequired

from app.grants import merged as merged_grants
from app.permission_cache import CachedPermissions
from app.services import audit, credentials, mfa, passwords, signin, users
from app.views.account import DeskResetMyPasswordView, DeskResetPasswordView, PasswordPolicy
from app.views.security_labels import (
    permission_label,
    permission_view_label,
    permission_views_text,
    role_label,
    roles_text,
    sorted_permission_views,
    view_menu_label,
)

MFA_PENDING_SECONDS = 300

# Permission names that are not tied to one view.
ALL_CLIENTS = ("can_access", "AllClients")  # no row-level filter on clients
SENSITIVE = ("can_read", "ClientSensitiveData")  # unmasked ID and bank account numbers
CHAT = ("can_chat", "LiveChat")  # answer visitors in the agent console
SUPERVISE = ("can_supervise", "LiveChat")  # watch any live chat and whisper to its agent
LEADS_FROM_CHAT = ("can_create_lead", "LiveChat")  # make a lead of a visitor in the agent console
CONTACTS_FROM_CHAT = ("can_link_contact", "LiveChat")  # make a visitor a contact of a client they see
CLIENTS_IN_CHAT = ("can_find_clients", "LiveChat")  # the console's client search finds every client

READ = ("can_list", "can_show")
WRITE = ("can_list", "can_show", "can_add", "can_edit", "can_delete")
API_READ = ("can_get", "can_info")
API_WRITE = ("can_get", "can_info", "can_post", "can_put", "can_delete")
SELF_SERVICE = [
    ("can_this_form_get", "UserInfoEditView"),
    ("can_this_form_post", "UserInfoEditView"),
    ("can_this_form_get", "ResetMyPasswordView"),
    ("can_this_form_post", "ResetMyPasswordView"),
    ("can_userinfo", "UserDBModelView"),
    ("resetmypassword", "UserDBModelView"),
    ("can_get", "MenuApi"),
]


def _grant(view: str, perms: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    return [(perm, view) for perm in perms]


MANAGER = (
    _grant("ClientModelView", WRITE + ("can_export",))
    + _grant("ContactModelView", WRITE)
    + _grant("BankAccountModelView", WRITE)
    + _grant("ServiceRecordModelView", WRITE)
    + _grant("TagModelView", WRITE)
    + _grant("ContractModelView", WRITE + ("can_export", "can_transition", "can_bill"))
    + _grant("ContractChangeModelView", READ)
    + _grant("FeeBillModelView", WRITE + ("can_export",))
    + _grant("PaymentModelView", WRITE + ("can_export",))
    + _grant("RenewalView", ("can_list",))
    + _grant("DocumentModelView", WRITE + ("can_download",))
    + _grant("AuditLogModelView", READ)
    + _grant("ChatSiteModelView", WRITE + ("can_regenerate",))
    + _grant("AgentGroupModelView", WRITE)
    + _grant("AgentProfileModelView", WRITE)
    + _grant("ChatBlockModelView", WRITE)
    + _grant("ClientApi", API_WRITE)
    + _grant("ContractApi", API_WRITE + ("can_transition",))
    + _grant("DocumentApi", ("can_get", "can_info", "can_put", "can_delete", "can_download", "can_upload"))
    + [ALL_CLIENTS, SENSITIVE, CHAT, SUPERVISE]
)
ACCOUNTANT = (
    _grant("ClientModelView", ("can_list", "can_show", "can_edit", "can_export"))
    + _grant("ContactModelView", WRITE)
    + _grant("BankAccountModelView", WRITE)
    + _grant("ServiceRecordModelView", WRITE)
    + _grant("TagModelView", READ)
    + _grant("ContractModelView", READ)
    + _grant("ContractChangeModelView", READ)
    + _grant("FeeBillModelView", READ)
    + _grant("PaymentModelView", READ)
    + _grant("RenewalView", ("can_list",))
    + _grant("DocumentModelView", WRITE + ("can_download",))
    + _grant("ClientApi", ("can_get", "can_info", "can_put"))
    + _grant("ContractApi", API_READ)
    + _grant("DocumentApi", API_READ + ("can_download", "can_upload", "can_put"))
    + [SENSITIVE]
)
REVIEWER = (
    _grant("ClientModelView", READ)
    + _grant("ContactModelView", READ)
    + _grant("ServiceRecordModelView", READ)
    + _grant("TagModelView", READ)
    + _grant("DocumentModelView", READ + ("can_download",))
    + _grant("ClientApi", API_READ)
    + _grant("DocumentApi", API_READ + ("can_download",))
    + [ALL_CLIENTS]
)
AGENT: list[tuple[str, str]] = [CHAT]

API_DOCS = [("can_get", "OpenApi"), ("can_show", "SwaggerView")]

ROLE_SPEC: dict[str, list[tuple[str, str]]] = {
    "Manager": MANAGER + SELF_SERVICE + API_DOCS,
    "Accountant": ACCOUNTANT + SELF_SERVICE + API_DOCS,
    "Reviewer": REVIEWER + SELF_SERVICE + API_DOCS,
    "Agent": AGENT + SELF_SERVICE,
}
for _role, _grants in merged_grants().items():
    ROLE_SPEC[_role] = ROLE_SPEC[_role] + _grants


def client_ip() -> str | None:
    return request.remote_addr if request else None


def failed_sign_in(response) -> bool:  # noqa: ANN001, ARG001
    """For the per-address sign-in limits: only a refused attempt (wrong password, locked account,
    wrong one-time code) counts, so an office behind one address signing in does not lock itself out."""
    return bool(g.get("sign_in_failed"))


class DeskAuthDBView(AuthDBView):
    """Password login; users enrolled in MFA then pass through the one-time-code step."""
    permission_label = _l("Sign-in")  # on the role screens

    @expose("/login/", methods=["GET", "POST"])
    def login(self):  # noqa: ANN201
        if g.user is not None and g.user.is_authenticated:
            return redirect(self._get_safe_next_url())
        form = LoginForm_db()
        if form.validate_on_submit():
            # Only a given next is checked: FAB warns "Invalid redirect" for a missing one.
            next_arg = request.args.get("next", "")
            next_url = get_safe_redirect(next_arg) if next_arg else self.appbuilder.get_url_for_index
            sm = self.appbuilder.sm
            user = sm.auth_user_db(form.username.data, form.password.data)
            if not user:
                message = signin.LOCKED_MESSAGE if g.get("sign_in_locked") else self.invalid_login_message
                flash(str(message), "warning")
                return redirect(self.appbuilder.get_url_for_login_with(next_url))
            if mfa.is_enabled(sm.session, user.id):
                session["mfa_pending"] = {"uid": user.id, "at": time.time(), "next": next_url}
                return redirect(url_for("MFAView.verify"))
            complete_login(user, next_url)
            return redirect(session.pop("_after_login", next_url))
        return self.render_template(
            self.login_template, title=self.title, form=form, appbuilder=self.appbuilder
        )

    @expose("/logout/")
    def logout(self):  # noqa: ANN201
        """Sign out: this browser session ends server-side too (a copy of its cookie no longer works)."""
        session_id = session.get("_sid")
        response = super().logout()
        sm = self.appbuilder.sm
        credentials.end_session(sm.session, session_id)
        sm.session.commit()
        for key in ("_sid", "_seen", "_after_login", "mfa_enrol_required", "password_change_required"):
            session.pop(key, None)
        return response


def complete_login(user, next_url: str) -> None:  # noqa: ANN001
    """Log *user* in under a new server-side session; if a role of theirs requires MFA and they are
    not enrolled, they are held on the enrolment page until they are; if their password is older
    than ``PASSWORD_MAX_AGE_DAYS``, they are held on the change-password form until it is changed."""
    session.pop("mfa_pending", None)
    sm = current_app.appbuilder.sm
    session_id = credentials.open_session(sm.session, user.id, current_app.config["SESSION_IDLE_MINUTES"] * 60)
    sm.session.commit()
    login_user(user, remember=False)
    session.permanent = True
    session["_sid"] = session_id
    session["_seen"] = time.time()
    if credentials.password_expired(sm.session, user.id, int(current_app.config.get("PASSWORD_MAX_AGE_DAYS") or 0)):
        session["password_change_required"] = True
    else:
        session.pop("password_change_required", None)
    roles = [r.name for r in user.roles]
    if mfa.is_required(roles, current_app.config["MFA_REQUIRED_ROLES"]) and not mfa.is_enabled(
        sm.session, user.id
    ):
        session["mfa_enrol_required"] = True
        session["_after_login"] = url_for("MFAView.setup")
    else:
        session.pop("mfa_enrol_required", None)


class DeskSecurityApi(SecurityApi):
    """JWT login at ``/api/v1/security/login``; users with MFA must also send ``otp``."""
    permission_label = _l("Sign-in")  # on the role screens

    @expose("/login", methods=["POST"])
    @safe
    def login(self):  # noqa: ANN201
        """Login endpoint for the API; returns a JWT and optionally a refresh token
        ---
        post:
          description: >-
            Authenticate and get a JWT access and refresh token. Users enrolled in
            two-factor authentication also send `otp` (a TOTP or a recovery code).
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    username:
                      type: string
                    password:
                      type: string
                    provider:
                      type: string
                      enum:
                      - db
                    refresh:
                      type: boolean
                    otp:
                      type: string
          responses:
            200:
              description: Authentication Successful
            400:
              $ref: '#/components/responses/400'
            401:
              $ref: '#/components/responses/401'
        """
        if not request.is_json or not isinstance(request.json, dict):
            return self.response_400(message=str(_l("The request body is not a JSON object.")))
        payload = dict(request.json)
        otp = payload.pop("otp", None)
        try:
            login_payload = login_post.load(payload)
        except ValidationError as error:
            return self.response_400(message=error.messages)
        if login_payload["provider"] != API_SECURITY_PROVIDER_DB:
            return self.response_400(message={"provider": [str(_l("Only the provider \"db\" is supported."))]})
        sm = self.appbuilder.sm
        user = sm.auth_user_db(login_payload["username"], login_payload["password"])
        if not user:
            if g.get("sign_in_locked"):
                return self.response(401, message=str(signin.LOCKED_MESSAGE))
            return self.response_401()
        actor = audit.Actor(user.id, user.username, client_ip())
        if mfa.is_enabled(sm.session, user.id):
            if not isinstance(otp, str) or not mfa.verify(sm.session, user.id, otp):
                g.sign_in_failed = True
                audit.record_event(sm.session, "mfa_failure", actor=actor, summary="api")
                locked = signin.record_failure(sm.session, user.id, user.username,
                                               signin.Policy.from_config(current_app.config), client_ip())
                sm.session.commit()
                if locked:
                    return self.response(401, message=str(signin.LOCKED_MESSAGE))
                return self.response(401, message=str(_l("A valid one-time code (otp) is required.")))
            audit.record_event(sm.session, "login_success", actor=actor, summary="api")
            signin.record_success(sm.session, user.id)
            sm.session.commit()
        elif mfa.is_required([r.name for r in user.roles], current_app.config["MFA_REQUIRED_ROLES"]):
            return self.response(
                401, message=str(_l("Two-factor enrolment is required: sign in to the web application first."))
            )
        if credentials.password_expired(sm.session, user.id, int(current_app.config.get("PASSWORD_MAX_AGE_DAYS") or 0)):
            return self.response(403, message=str(_l("Your password has expired: change it first.")))
        resp = {API_SECURITY_ACCESS_TOKEN_KEY: create_access_token(identity=str(user.id), fresh=True)}
        if login_payload.get("refresh"):
            resp[API_SECURITY_REFRESH_TOKEN_KEY] = create_refresh_token(identity=str(user.id))
        return self.response(200, **resp)


def _all_roles() -> list:
    return current_app.appbuilder.sm.get_all_roles()


def _all_permission_views() -> list:
    sm = current_app.appbuilder.sm
    return sorted_permission_views(sm.session.query(sm.permissionview_model).all())


def roles_field(label, description, validators=None) -> QuerySelectMultipleField:  # noqa: ANN001
    """FAB's roles select, showing each role by its label (the stored names stay the keys)."""
    return QuerySelectMultipleField(label, description=description, query_func=_all_roles,
                                    get_pk_func=lambda role: role.id, get_label=lambda role: role_label(role.name),
                                    validators=validators or [], widget=Select2ManyWidget())


def permissions_field() -> QuerySelectMultipleField:
    """FAB's permissions select on the role form, each shown as ``客户 — 查看列表``, in that order."""
    return QuerySelectMultipleField(RoleModelView.label_columns["permissions"], query_func=_all_permission_views,
                                    get_pk_func=lambda pv: pv.id, get_label=permission_view_label,
                                    widget=Select2ManyWidget())


def _user_roles_field() -> QuerySelectMultipleField:
    return roles_field(UserDBModelView.label_columns["roles"], UserDBModelView.description_columns["roles"],
                       [roles_or_groups_required])


class DeskUserDBModelView(UserDBModelView):
    """FAB's user screen; its detail page also offers Admin the two-factor reset and the lifting of
    a sign-in lock. A new user's password must pass the password policy. Roles show by their labels."""

    show_template = "user_show.html"
    class_permission_name = "UserDBModelView"  # the permissions keep FAB's name
    # Shown as 是 / 否 and blank, not Python's True / None.
    formatters_columns = {
        "active": lambda value: str(_l("Yes") if value else _l("No")),
        "roles": roles_text,
        **{column: (lambda value: "" if value is None else value)
           for column in ("first_name", "last_name", "email", "last_login", "login_count", "fail_login_count",
                          "created_on", "changed_on", "created_by", "changed_by")},
    }
    add_form_extra_fields = {
        **UserDBModelView.add_form_extra_fields,
        "password": PasswordField(
            _l("Password"), description=passwords.POLICY_HINT,
            validators=[DataRequired(), PasswordPolicy()], widget=BS3PasswordFieldWidget()),
        "roles": _user_roles_field(),
    }
    edit_form_extra_fields = {**(UserDBModelView.edit_form_extra_fields or {}), "roles": _user_roles_field()}

    def pre_delete(self, item) -> None:  # noqa: ANN001
        """A user whom other rows still name under a refusing key (the user accounts they created
        or last changed) is not deleted; the message says what holds them (Conflict)."""
        from app.services.integrity import refuse_held_delete

        super().pre_delete(item)
        refuse_held_delete(self.datamodel.session, item, item.username)


class DeskRoleListWidget(RoleListWidget):
    """FAB's role list, with the columns' formatters applied (role and permission labels)."""

    template = "security/role_list.html"


class DeskRoleShowWidget(RoleShowWidget):
    """FAB's role detail, with the columns' formatters applied (role and permission labels)."""

    template = "security/role_show.html"


class DeskRoleModelView(RoleModelView):
    """FAB's role screen, with labels for the users and groups its search offers; roles and their
    permissions show by what they mean (app/views/security_labels.py)."""

    class_permission_name = "RoleModelView"  # the permissions keep FAB's name
    list_widget = DeskRoleListWidget
    show_widget = DeskRoleShowWidget
    label_columns = {**RoleModelView.label_columns, "user": _l("Users"),
                     "groups": lazy_pgettext("user groups", "Groups")}
    formatters_columns = {"name": role_label, "permissions": permission_views_text}
    add_form_extra_fields = {"permissions": permissions_field()}
    edit_form_extra_fields = {"permissions": permissions_field()}


class DeskUserGroupModelView(UserGroupModelView):
    """FAB's user group screen; the roles show by their labels."""

    class_permission_name = "UserGroupModelView"
    formatters_columns = {"roles": roles_text}
    add_form_extra_fields = {"roles": roles_field(UserDBModelView.label_columns["roles"], "")}
    edit_form_extra_fields = {"roles": roles_field(UserDBModelView.label_columns["roles"], "")}


class DeskPermissionModelView(PermissionModelView):
    """FAB's list of base permissions, by what each allows."""

    class_permission_name = "PermissionModelView"
    formatters_columns = {"name": permission_label}


class DeskViewMenuModelView(ViewMenuModelView):
    """FAB's list of view menus, by the screen, menu entry or data each names."""

    class_permission_name = "ViewMenuModelView"
    formatters_columns = {"name": view_menu_label}


class PermissionViewListWidget(ListWidget):
    """The list of permissions on view menus, each row by what it means: a permission's meaning
    depends on its view (an API's methods), so the widget reads both columns of the row."""

    def __call__(self, **kwargs):  # noqa: ANN003, ANN204
        rows = []
        for row in self.template_args.get("value_columns") or ():
            view, permission = row.get("view_menu"), row.get("permission")
            rows.append({**row, "view_menu": view_menu_label(view.name) if view is not None else "",
                         "permission": (permission_label(permission.name, view.name if view is not None else None)
                                        if permission is not None else "")})
        self.template_args["value_columns"] = rows
        return super().__call__(**kwargs)


class DeskPermissionViewModelView(PermissionViewModelView):
    """FAB's list of permissions on view menus, by what they mean."""

    class_permission_name = "PermissionViewModelView"
    list_widget = PermissionViewListWidget
    list_columns = ["view_menu", "permission"]


class DeskSecurityManager(CachedPermissions, SecurityManager):
    """FAB's security manager with the desk's login, audit and MFA, and permission checks read
    once per request (``app.permission_cache``)."""

    authdbview = DeskAuthDBView
    userdbmodelview = DeskUserDBModelView
    rolemodelview = DeskRoleModelView
    groupmodelview = DeskUserGroupModelView
    permissionmodelview = DeskPermissionModelView
    viewmenumodelview = DeskViewMenuModelView
    permissionviewmodelview = DeskPermissionViewModelView
    security_api = DeskSecurityApi
    resetmypasswordview = DeskResetMyPasswordView
    resetpasswordview = DeskResetPasswordView

    def __init__(self, appbuilder) -> None:  # noqa: ANN001
        super().__init__(appbuilder)
        from app.views.common import EagerInterface  # not at the top: it imports this module

        # The user list shows each user's roles (and groups), the role list each role's
        # permissions: loaded with the page, not one statement per row.
        self.userdbmodelview.datamodel = EagerInterface(
            self.user_model, options=(selectinload(User.roles), selectinload(User.groups)))
        self.rolemodelview.datamodel = EagerInterface(self.role_model, options=(selectinload(Role.permissions),))
        # Any FAB form that still asks for FAB's complexity check gets the desk's policy instead.
        current_app.config["FAB_PASSWORD_COMPLEXITY_VALIDATOR"] = passwords.fab_validator

    # --- sessions and API tokens end on sign-out, password change and deactivation ------------

    def create_login_manager(self, app):  # noqa: ANN001, ANN201
        manager = super().create_login_manager(app)
        manager.user_loader(self.load_session_user)
        return manager

    def load_session_user(self, pk):  # noqa: ANN001, ANN201
        """The user of a browser session (and of a socket connection, which carries its cookie):
        only while the session's server-side record lives (app/services/credentials.py)."""
        user = self.load_user(pk)
        if user is None:
            return None
        idle = current_app.config["SESSION_IDLE_MINUTES"] * 60
        return user if credentials.session_is_live(self.session, session.get("_sid"), user.id, idle) else None

    def create_jwt_manager(self, app):  # noqa: ANN001, ANN201
        manager = super().create_jwt_manager(app)
        manager.additional_claims_loader(self._token_claims)
        manager.token_in_blocklist_loader(self._token_revoked)
        return manager

    def _token_claims(self, identity) -> dict:  # noqa: ANN001
        """Every access and refresh token carries the user's credential version (``cv``)."""
        return {"cv": credentials.version(self.session, int(identity))}

    def _token_revoked(self, _header: dict, payload: dict) -> bool:
        try:
            user_id = int(payload["sub"])
        except (KeyError, TypeError, ValueError):
            return True
        return not credentials.token_is_current(self.session, user_id, payload.get("cv"))

    def auth_user_db(self, username, password):  # noqa: ANN001, ANN201
        """Authenticate by password and write a login_success / login_failure audit row.

        A user enrolled in two-factor authentication is not signed in yet: the row says
        ``password_ok``, and ``login_success`` follows once the second factor is checked.
        A locked account (app/services/signin.py) is refused without checking the password; a
        wrong password counts towards the lock, a right one clears the count. A name that is not an
        active account is answered the same way after as many failures (counted in the rate-limit
        storage), so that the lock message does not tell which names are accounts.
        ``g.sign_in_failed`` and ``g.sign_in_locked`` tell the caller (and the per-address limit)
        what happened.
        """
        name = (username or "")[:256]
        policy = signin.Policy.from_config(current_app.config)
        known = (self.find_user(username=name) or self.find_user(email=name)) if name else None
        account = known is not None and known.is_active
        if (signin.is_locked(self.session, known.id, policy) if account
                else name and signin.name_looks_locked(self.name_counter, name, policy)):
            g.sign_in_failed = g.sign_in_locked = True
            audit.record_event(self.session, "login_failure", actor=audit.Actor(known.id if known else None, name,
                                                                                   client_ip()),
                               summary=name, changes={"locked": True})
            self.session.commit()
            return None
        user = self._user_with_password(username, password)
        if user:
            actor = audit.Actor(user.id, user.username, client_ip())
            action = "password_ok" if mfa.is_enabled(self.session, user.id) else "login_success"
            audit.record_event(self.session, action, actor=actor, summary=name)
            if action == "login_success":  # with a second factor, only the code clears the count
                signin.record_success(self.session, user.id)
        else:
            g.sign_in_failed = True
            actor = audit.Actor(known.id if known else None, name, client_ip())
            audit.record_event(self.session, "login_failure", actor=actor, summary=name)
            if signin.record_failure(self.session, known.id, name, policy, client_ip()) if account \
                    else name and signin.count_name_failure(self.name_counter, name, policy):
                g.sign_in_locked = True
        self.session.commit()
        return user

    @property
    def name_counter(self):  # noqa: ANN201
        """Failures per sign-in name that is not an account, in the rate-limit storage (one client
        per application)."""
        app = current_app._get_current_object()
        counter = app.extensions.get("desk_sign_in_names")
        if counter is None:
            uri = app.config.get("RATELIMIT_STORAGE_URI") or "memory://"
            options = None if uri.startswith("memory://") else app.config.get("RATELIMIT_STORAGE_OPTIONS")
            counter = app.extensions["desk_sign_in_names"] = signin.name_counter(uri, options)
        return counter

    def _user_with_password(self, username, password):  # noqa: ANN001, ANN202
        """Flask-AppBuilder's password sign-in rule (by user name or email; empty passwords and
        inactive users never sign in; an unknown user costs a hash check too, so that timing does
        not tell which names exist; the login statistics are updated), with the hash check done
        by ``users.password_matches``, off the hub under gevent and eventlet."""
        if not username or is_null_password(password):
            return None
        user = self.find_user(username=username) or self.find_user(email=username)
        known = user is not None and user.is_active
        stored = user.password if known else current_app.config["AUTH_DB_FAKE_PASSWORD_HASH_CHECK"]
        matches = users.password_matches(stored, password,
                                         in_worker=current_app.config.get("ASYNC_MODE") != "threading")
        if not known:
            return None
        self.update_user_auth_stat(user, matches)
        return user if matches else None

    def on_user_logout(self, user) -> None:  # noqa: ANN001
        audit.record_event(self.session, "logout",
                           actor=audit.Actor(user.id, user.username, client_ip()))
        self.session.commit()

    @property
    def is_auth_limited(self) -> bool:
        """Off for FAB's own registration, which would count every sign-in; ``register_views``
        limits failed attempts only (``sign_in_limited``)."""
        return False

    @property
    def sign_in_limited(self) -> bool:
        """Whether the sign-in forms are limited per address (``AUTH_RATE_LIMITED``)."""
        return bool(current_app.config.get("AUTH_RATE_LIMITED", True))

    def register_views(self) -> None:
        super().register_views()
        if self.sign_in_limited:
            views = [self.auth_view] + [v for v in self.appbuilder.baseviews if isinstance(v, DeskSecurityApi)]
            for view in views:
                self.limiter.limit(self.auth_rate_limit, methods=["POST"], deduct_when=failed_sign_in)(view.blueprint)

    # --- helpers used by views -------------------------------------------------------------

    def can(self, permission: tuple[str, str]) -> bool:
        """True when the current user (session or JWT) holds *permission* = (perm, view)."""
        return bool(self.has_access(*permission))
