"""Live-chat tools: canned replies (快捷回复), invitation rules (自动邀请), chat file upload and download.

* Canned replies: Admin and Manager (permission ``can_share``) see and edit every reply and make
  shared ones; an Agent sees the shared ones and their own, and creates, edits and deletes only
  their own (others' are 404 to edit or delete). ``GET /chat/canned?q=`` is the console's search.
* Invitation rules: Admin and Manager.
* ``POST /chat/files`` and ``GET /chat/files/<id>``: a plain blueprint, because visitors (not signed
  in) use it too. A visitor proves who they are with the site key and their visitor token from an
  Origin the site allows (answered with CORS headers for that Origin); an agent with the session
  cookie and the CSRF token in the ``X-CSRFToken`` header.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request, send_file
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import has_access_api
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import BooleanField, IntegerField, TextAreaField
from wtforms import ValidationError as FormValidationError
from wtforms.validators import NumberRange, Optional

from app.extensions import csrf, db, socketio
from app.models.chat import CannedReply, ChatSite, InvitationRule
from app.permissions import current_user_id
from app.security import CHAT, SUPERVISE
from app.services import chat, chat_files, chat_sites, chat_tools
from app.services.errors import AccessDenied, DomainError, ValidationFailed
from app.services.inputs import parse_id
from app.sockets.rooms import conversation_room, visitor_room
from app.sockets.visitor import visitor_allowed
from app.views.chat_admin import CATEGORY
from app.views.common import DeskModelView, EagerInterface

SHARE = ("can_share", "CannedReplyModelView")


def _can_share() -> bool:
    return current_app.appbuilder.sm.can(SHARE)


class OwnOrSharedFilter(BaseFilter):
    """Row-level rule: users who may not share see only the shared replies and their own."""

    name = "own or shared"
    arg_name = "ownorshared"

    def apply(self, query, value):  # noqa: ANN001, ANN201, ARG002
        if _can_share():
            return query
        return query.filter(chat_tools.visible_replies_query(current_user_id()))


class CannedReplyModelView(DeskModelView):
    datamodel = EagerInterface(CannedReply, options=(joinedload(CannedReply.site), joinedload(CannedReply.owner)))
    list_title = _l("Canned replies")
    show_title = _l("Canned reply")
    add_title = _l("Add canned reply")
    edit_title = _l("Edit canned reply")
    base_filters = [["id", OwnOrSharedFilter, lambda: None]]
    base_order = ("shortcut", "asc")
    list_columns = ["shortcut", "title", "category", "site", "owner"]
    search_columns = ["shortcut", "title", "category", "text", "site"]
    show_columns = ["shortcut", "title", "category", "site", "text", "owner", "updated_at"]
    add_columns = edit_columns = ["shortcut", "title", "category", "site", "text", "shared"]
    label_columns = {"shortcut": _l("Shortcut"), "title": _l("Title"), "category": _l("Category"),
                     "site": _l("Site"), "text": _l("Text"), "owner": _l("Owner"), "shared": _l("Shared"),
                     "updated_at": _l("Updated")}
    description_columns = {
        "shortcut": _l("Typed as /shortcut in the chat: 1 to 30 letters, digits, _ or -."),
        "site": _l("Blank: every site."),
        "text": _l("{visitor_name} and {agent_name} are filled in when the reply is inserted in a chat "
                   "(a visitor who gave no name is called “Visitor”)."),
        "shared": _l("Shared replies are offered to every agent (managers only). Otherwise the reply is yours."),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "text": TextAreaField(_l("Text"), render_kw={"rows": 5}),
        "shared": BooleanField(_l("Shared")),
    }
    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        # A blank owner is what makes a reply shared: say so instead of showing nothing.
        self.formatters_columns["owner"] = lambda owner: owner if owner is not None else _l("Shared")
        # Not a screen of its own: the permission to make and edit shared replies.
        if SHARE[0] not in self.base_permissions:
            self.base_permissions.append(SHARE[0])

    def prefill_form(self, form, pk) -> None:  # noqa: ANN001
        item = db.session.get(CannedReply, pk)
        if item is not None and "shared" in form:
            form.shared.data = item.owner_id is None

    def _refuse_foreign(self, pk) -> None:  # noqa: ANN001
        item = self.datamodel.get(pk, self._base_filters)
        if item is not None and not chat_tools.may_edit_reply(item, current_user_id(), _can_share()):
            abort(404)

    def _edit(self, pk):  # noqa: ANN001, ANN201
        self._refuse_foreign(pk)
        return super()._edit(pk)

    def _delete(self, pk):  # noqa: ANN001, ANN201
        self._refuse_foreign(pk)
        return super()._delete(pk)

    def pre_add(self, item: CannedReply) -> None:
        chat_tools.assign_owner(item, current_user_id(), _can_share(), bool(getattr(item, "shared", False)))
        chat_tools.validate_canned_reply(db.session, item)

    def pre_update(self, item: CannedReply) -> None:
        if not chat_tools.may_edit_reply(item, current_user_id(), _can_share()):
            raise AccessDenied({"_": [str(_l("You may edit only your own canned replies."))]})
        self.pre_add(item)

    def pre_delete(self, item: CannedReply) -> None:
        if not chat_tools.may_edit_reply(item, current_user_id(), _can_share()):
            raise AccessDenied({"_": [str(_l("You may delete only your own canned replies."))]})


class InvitationRuleModelView(DeskModelView):
    datamodel = EagerInterface(InvitationRule, options=(joinedload(InvitationRule.site),))
    list_title = _l("Invitation rules")
    show_title = _l("Invitation rule")
    add_title = _l("Add invitation rule")
    edit_title = _l("Edit invitation rule")
    base_order = ("priority", "asc")
    list_columns = ["site", "name", "priority", "url_pattern", "min_seconds_on_page", "active"]
    search_columns = ["site", "name", "message", "url_pattern", "active"]
    add_columns = edit_columns = ["site", "name", "message", "min_seconds_on_page", "url_pattern",
                                  "referrer_pattern", "keyword_pattern", "returning_only", "min_page_views",
                                  "priority", "active"]
    show_columns = add_columns + ["updated_at"]
    label_columns = {"site": _l("Site"), "name": _l("Name"), "message": _l("Invitation text"),
                     "min_seconds_on_page": _l("Seconds on the page at least"), "url_pattern": _l("Page address"),
                     "referrer_pattern": _l("Came from"), "keyword_pattern": _l("Search keyword contains"),
                     "returning_only": _l("Returning visitors only"), "min_page_views": _l("Pages viewed at least"),
                     "priority": _l("Priority"), "active": lazy_pgettext("enabled", "Active"),
                     "updated_at": _l("Updated")}
    description_columns = {
        "url_pattern": _l("One pattern per line, * matches anything, e.g. */pricing*. Blank: any page."),
        "referrer_pattern": _l("Pattern over the referring address, e.g. *baidu.com*. Blank: anywhere."),
        "priority": _l("Rules with lower numbers are tried first; each invites a visitor at most once per visit."),
        "min_page_views": _l("Pages viewed in this visit."),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "message": TextAreaField(_l("Invitation text"), render_kw={"rows": 3}),
        "url_pattern": TextAreaField(_l("Page address"), validators=[Optional()], render_kw={"rows": 2}),
        "min_seconds_on_page": IntegerField(_l("Seconds on the page at least"),
                                            validators=[Optional(), NumberRange(min=0, max=86400)]),
        "min_page_views": IntegerField(_l("Pages viewed at least"),
                                       validators=[Optional(), NumberRange(min=0, max=10000)]),
        "priority": IntegerField(_l("Priority"), default=100, validators=[NumberRange(min=0, max=100000)]),
        "returning_only": BooleanField(_l("Returning visitors only")),
        "active": BooleanField(lazy_pgettext("enabled", "Active"), default=True),
    }

    def pre_add(self, item: InvitationRule) -> None:
        chat_tools.validate_rule(item)

    pre_update = pre_add


class ChatCannedView(BaseView):
    """The console's JSON: canned replies matching what the agent typed."""
    permission_label = lazy_pgettext("view menu", "Canned replies in the console")  # on the role screens

    route_base = "/chat"
    default_view = "canned"

    @expose("/canned")
    @has_access_api
    def canned(self) -> Response:
        try:
            replies = chat_tools.search_replies(db.session, current_user_id(), request.args.get("q"))
        except DomainError as exc:
            return jsonify(message=exc.message, errors=exc.errors), 400
        return jsonify(replies=[chat_tools.reply_payload(reply) for reply in replies])


# --- files ------------------------------------------------------------------------------------

files = Blueprint("chat_files", __name__, url_prefix="/chat/files")
_FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def _error(exc: DomainError, origin: str | None = None) -> Response:
    status = 400 if isinstance(exc, ValidationFailed) else exc.status_code
    return _cors(jsonify(message=exc.message, errors=exc.errors), origin), status


def _cors(response: Response, origin: str | None) -> Response:
    """Let the page at *origin* (already checked against the site) read the answer."""
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers.add("Vary", "Origin")
    return response


def _origin_of_some_site(origin: str | None) -> str | None:
    if not origin:
        return None
    sites = db.session.scalars(select(ChatSite).where(ChatSite.active.is_(True)))
    return origin if any(chat_sites.origin_allowed(site, origin) for site in sites) else None


def _fan_out(message) -> dict:  # noqa: ANN001
    """Stored first; now both sides hear of it like any message (the sender's tabs too)."""
    payload = chat.message_payload(message)
    conversation = db.session.get(chat.Conversation, message.conversation_id)
    socketio.emit("message", payload, to=visitor_room(conversation.visitor_id), namespace="/visitor")
    socketio.emit("message", payload, to=conversation_room(conversation.id), namespace="/agent")
    return payload


def _visitor_upload() -> Response:
    origin = request.headers.get("Origin")
    try:
        visitor = chat.known_visitor(db.session, secret_key=current_app.config["SECRET_KEY"],
                                     site_key=request.form.get("site_key"), origin=origin,
                                     token=request.form.get("visitor_token"), ip=request.remote_addr)
    except AccessDenied as exc:
        # A page of a site that may use the chat hears why; any other page hears nothing (no CORS).
        return _error(exc, origin if "origin" not in exc.errors and "site_key" not in exc.errors else None)
    site, uid = visitor.site, visitor.uid
    if not visitor_allowed(site.id, uid):  # an upload counts like a socket event against the visitor's rate
        return _cors(jsonify(message=str(_l("Too many requests: please wait a moment.")), errors={}), origin), 429
    upload = request.files.get("file")
    try:
        message = chat_files.post_visitor_file(
            db.session, current_app.config["CHAT_UPLOAD_DIR"], current_app.config["CHAT_UPLOAD_MAX_BYTES"],
            visitor.id, upload.filename if upload else None, upload.stream if upload else None)
    except DomainError as exc:
        db.session.rollback()
        return _error(exc, origin)
    return _cors(jsonify(message=_fan_out(message)), origin), 201


def _agent_upload() -> Response:
    if not current_user.is_authenticated:
        return _error(AccessDenied({"_": [str(_l("Please sign in."))]}))
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except (CSRFError, FormValidationError):
            return _error(AccessDenied({"_": [str(_l("The form expired: reload the page."))]}))
    if not current_app.appbuilder.sm.can(CHAT):
        return _error(AccessDenied({"_": [str(_l("You may not chat."))]}))
    upload = request.files.get("file")
    conversation_id = request.form.get("conversation_id")
    errors = {}
    if upload is None:
        errors["file"] = [str(_l("Choose a file to send."))]
    if parse_id(conversation_id) is None:
        errors["conversation_id"] = [str(_l("conversation_id is a whole number."))]
    if errors:
        return _error(ValidationFailed(errors))
    agent = chat.agent_for_user(db.session, current_user.id)
    try:
        message = chat_files.post_agent_file(
            db.session, current_app.config["CHAT_UPLOAD_DIR"], current_app.config["CHAT_UPLOAD_MAX_BYTES"],
            agent, conversation_id, upload.filename, upload.stream)
    except DomainError as exc:
        db.session.rollback()
        return _error(exc)
    return jsonify(message=_fan_out(message)), 201


@files.route("", methods=["POST", "OPTIONS"])
def upload() -> Response:
    """Send a file into a chat (visitor: ``site_key`` + ``visitor_token``; agent: session +
    ``X-CSRFToken`` + ``conversation_id``): 201 ``{message}``, or 400/401/403/404/409 ``{message, errors}``."""
    if request.method == "OPTIONS":
        return _cors(Response(status=204), _origin_of_some_site(request.headers.get("Origin")))
    if "site_key" in request.form:
        return _visitor_upload()
    return _agent_upload()


@files.route("/<int:pk>", methods=["GET", "OPTIONS"])
def download(pk: int) -> Response:
    """A chat file, by its link (``?k=<link token>`` from the message payload: the visitor) or for
    the conversation's agents, supervisors and Admin; 404 for anyone else. Images inline, other
    files as attachments."""
    origin = request.headers.get("Origin")
    if request.method == "OPTIONS":
        return _cors(Response(status=204), _origin_of_some_site(origin))
    try:
        if "k" in request.args:
            attachment = chat_files.attachment_for_link(db.session, current_app.config["SECRET_KEY"], pk,
                                                        request.args.get("k"))
            site = db.session.get(chat.Conversation, attachment.conversation_id).site
            origin = origin if origin and chat_sites.origin_allowed(site, origin) else None
        elif current_user.is_authenticated:
            sm = current_app.appbuilder.sm
            if not (sm.can(CHAT) or sm.can(SUPERVISE)):
                return _error(AccessDenied({"_": [str(_l("You may not chat."))]}))
            attachment = chat_files.attachment_for_user(db.session, pk, current_user.id, sm.can(SUPERVISE))
            origin = None
        else:
            return _error(AccessDenied({"_": [str(_l("Please sign in."))]}))
    except DomainError as exc:
        return _error(exc)
    path = chat_files.file_path(current_app.config["CHAT_UPLOAD_DIR"], attachment)
    if not path.is_file():
        abort(404)
    image = chat_files.is_image(attachment)
    mimetype = attachment.content_type + ("; charset=utf-8" if attachment.content_type.startswith("text/") else "")
    response = send_file(path, mimetype=mimetype, as_attachment=not image, download_name=attachment.filename,
                         max_age=0, conditional=False, etag=False)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = _FILE_CSP
    response.headers["Referrer-Policy"] = "no-referrer"  # the link token is in the address
    response.headers["Cache-Control"] = "private, no-store"
    return _cors(response, origin)


def register(app: Flask, appbuilder: AppBuilder) -> None:
    """Add the canned-reply and invitation-rule screens, the canned-reply search and the file routes."""
    appbuilder.add_view(CannedReplyModelView, "Canned replies", label=_l("Canned replies"), icon="fa-bolt",
                        **CATEGORY)
    appbuilder.add_view(InvitationRuleModelView, "Invitation rules", label=_l("Invitation rules"),
                        icon="fa-hand-paper-o", **CATEGORY)
    appbuilder.add_view_no_menu(ChatCannedView)
    csrf.exempt(files)  # agents' uploads check the X-CSRFToken header themselves; visitors have no session
    app.register_blueprint(files)
