"""Security manager: roles, login with a second factor, login auditing and rate limits.

The roles and what each may do (the defaults written by ``sync_roles``; an Admin may refine
them later in the Roles screen):

* **Admin**: everything (Flask-AppBuilder grants the Admin role every permission).
* **Manager**: every business screen and API, the audit log; not user or role administration.
* **Accountant**: the clients assigned to them only (others are 404), their contacts, bank
  accounts, service records, archives; contracts and fees read-only.
* **Reviewer**: reads every client, contact, service record and archive; no contracts, no
  personal data (masked).
* **Agent**: the chat console (later); no books, no contracts, no clients.
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
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.security.forms import LoginForm_db
from flask_appbuilder.security.schemas import login_post
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.sqla.models import Role, User
from flask_appbuilder.security.utils import is_null_password
from flask_appbuilder.security.views import AuthDBView, UserDBModelView
from flask_appbuilder.utils.base import get_safe_redirect
from flask_babel import lazy_gettext as _l
from flask_jwt_extended import create_access_token, create_refresh_token
from flask_login import login_user
from marshmallow import ValidationError
from sqlalchemy.orm import selectinload

from app.grants import merged as merged_grants
from app.permission_cache import CachedPermissions
from app.services import audit, mfa, users

MFA_PENDING_SECONDS = 300

# Permission names that are not tied to one view.
ALL_CLIENTS = ("can_access", "AllClients")  # no row-level filter on clients
SENSITIVE = ("can_read", "ClientSensitiveData")  # unmasked ID and bank account numbers
CHAT = ("can_chat", "LiveChat")  # answer visitors in the agent console
SUPERVISE = ("can_supervise", "LiveChat")  # watch any live chat and whisper to its agent

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


class DeskAuthDBView(AuthDBView):
    """Password login; users enrolled in MFA then pass through the one-time-code step."""

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
                flash(str(self.invalid_login_message), "warning")
                return redirect(self.appbuilder.get_url_for_login_with(next_url))
            if mfa.is_enabled(sm.session, user.id):
                session["mfa_pending"] = {"uid": user.id, "at": time.time(), "next": next_url}
                return redirect(url_for("MFAView.verify"))
            complete_login(user, next_url)
            return redirect(session.pop("_after_login", next_url))
        return self.render_template(
            self.login_template, title=self.title, form=form, appbuilder=self.appbuilder
        )


def complete_login(user, next_url: str) -> None:  # noqa: ANN001
    """Log *user* in; if a role of theirs requires MFA and they are not enrolled, they
    are held on the enrolment page until they are."""
    session.pop("mfa_pending", None)
    login_user(user, remember=False)
    session.permanent = True
    session["_seen"] = time.time()
    sm = current_app.appbuilder.sm
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
            return self.response_400(message="Request payload is not a JSON object")
        payload = dict(request.json)
        otp = payload.pop("otp", None)
        try:
            login_payload = login_post.load(payload)
        except ValidationError as error:
            return self.response_400(message=error.messages)
        if login_payload["provider"] != API_SECURITY_PROVIDER_DB:
            return self.response_400(message="Unsupported provider")
        sm = self.appbuilder.sm
        user = sm.auth_user_db(login_payload["username"], login_payload["password"])
        if not user:
            return self.response_401()
        actor = audit.Actor(user.id, user.username, client_ip())
        if mfa.is_enabled(sm.session, user.id):
            if not isinstance(otp, str) or not mfa.verify(sm.session, user.id, otp):
                audit.record_event(sm.session, "mfa_failure", actor=actor, summary="api")
                sm.session.commit()
                return self.response(401, message=str(_l("A valid one-time code (otp) is required.")))
            audit.record_event(sm.session, "login_success", actor=actor, summary="api")
            sm.session.commit()
        elif mfa.is_required([r.name for r in user.roles], current_app.config["MFA_REQUIRED_ROLES"]):
            return self.response(
                401, message=str(_l("Two-factor enrolment is required: sign in to the web application first."))
            )
        resp = {API_SECURITY_ACCESS_TOKEN_KEY: create_access_token(identity=str(user.id), fresh=True)}
        if login_payload.get("refresh"):
            resp[API_SECURITY_REFRESH_TOKEN_KEY] = create_refresh_token(identity=str(user.id))
        return self.response(200, **resp)


class DeskUserDBModelView(UserDBModelView):
    """FAB's user screen; its detail page also offers Admin the two-factor reset."""

    show_template = "user_show.html"
    class_permission_name = "UserDBModelView"  # the permissions keep FAB's name

    def pre_delete(self, item) -> None:  # noqa: ANN001
        """A user whom other rows still name under a refusing key (the user accounts they created
        or last changed) is not deleted; the message says what holds them (Conflict)."""
        from app.services.integrity import refuse_held_delete

        super().pre_delete(item)
        refuse_held_delete(self.datamodel.session, item, item.username)


class DeskSecurityManager(CachedPermissions, SecurityManager):
    """FAB's security manager with the desk's login, audit and MFA, and permission checks read
    once per request (``app.permission_cache``)."""

    authdbview = DeskAuthDBView
    userdbmodelview = DeskUserDBModelView
    security_api = DeskSecurityApi

    def __init__(self, appbuilder) -> None:  # noqa: ANN001
        super().__init__(appbuilder)
        from app.views.common import EagerInterface  # not at the top: it imports this module

        # The user list shows each user's roles (and groups), the role list each role's
        # permissions: loaded with the page, not one statement per row.
        self.userdbmodelview.datamodel = EagerInterface(
            self.user_model, options=(selectinload(User.roles), selectinload(User.groups)))
        self.rolemodelview.datamodel = EagerInterface(self.role_model, options=(selectinload(Role.permissions),))

    def auth_user_db(self, username, password):  # noqa: ANN001, ANN201
        """Authenticate by password and write a login_success / login_failure audit row.

        A user enrolled in two-factor authentication is not signed in yet: the row says
        ``password_ok``, and ``login_success`` follows once the second factor is checked.
        """
        user = self._user_with_password(username, password)
        name = (username or "")[:256]
        if user:
            actor = audit.Actor(user.id, user.username, client_ip())
            action = "password_ok" if mfa.is_enabled(self.session, user.id) else "login_success"
            audit.record_event(self.session, action, actor=actor, summary=name)
        else:
            known = self.find_user(username=name) if name else None
            actor = audit.Actor(known.id if known else None, name, client_ip())
            audit.record_event(self.session, "login_failure", actor=actor, summary=name)
        self.session.commit()
        return user

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

    def register_views(self) -> None:
        super().register_views()
        if self.is_auth_limited:
            for view in self.appbuilder.baseviews:
                if isinstance(view, DeskSecurityApi):
                    self.limiter.limit(self.auth_rate_limit, methods=["POST"])(view.blueprint)

    # --- helpers used by views -------------------------------------------------------------

    def can(self, permission: tuple[str, str]) -> bool:
        """True when the current user (session or JWT) holds *permission* = (perm, view)."""
        return bool(self.has_access(*permission))
