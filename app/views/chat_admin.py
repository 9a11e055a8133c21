"""Live-chat administration: sites (with the snippet to paste), agent groups, agent profiles, blocks.

Only Admin and Manager edit these. The identity secret is shown on the site's page (the host
site's developers need it to compute identity hashes) but never in lists, exports or the audit log.
"""

from __future__ import annotations

from flask import Flask, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy.orm import joinedload, selectinload
from wtforms import IntegerField, TextAreaField
from wtforms.validators import DataRequired, NumberRange, Optional

from app.extensions import db
from app.models.chat import (
    AgentGroup,
    AgentProfile,
    AgentStatus,
    ButtonPosition,
    ChatBlock,
    ChatSite,
    PrechatMode,
    RoutingMode,
    SendKey,
)
from app.services import chat_sites
from app.services.errors import DomainError
from app.views.common import DeskModelView, EagerInterface
from app.views.labels import LabelledEnumField, enum_formatter

CATEGORY = dict(category="Live chat", category_label=_l("Live chat"), category_icon="fa-comments")

SITE_LABELS = {
    "name": _l("Name"), "site_key": _l("Site key"), "identity_secret": _l("Identity secret"),
    "allowed_origins": _l("Allowed origins"), "welcome_text": _l("Welcome text"),
    "warning_banner": _l("Warning banner"), "theme_color": _l("Theme colour"),
    "button_position": _l("Button position"), "business_hours": _l("Business hours"),
    "offline_form": _l("Offline message form"), "active": lazy_pgettext("enabled", "Active"),
    "groups": lazy_pgettext("agent groups", "Groups"),
    "snippet": _l("Code to paste"),
    "auto_reply_seconds": _l("Auto reply after (seconds)"), "auto_reply_text": _l("Auto reply text"),
    "prechat_name": _l("Pre-chat form: name"), "prechat_phone": _l("Pre-chat form: phone"),
    "prechat_email": _l("Pre-chat form: email"), "prechat_question": _l("Pre-chat form: question"),
}
PRECHAT_COLUMNS = ["prechat_name", "prechat_phone", "prechat_email", "prechat_question"]


class ChatSiteModelView(DeskModelView):
    datamodel = SQLAInterface(ChatSite)
    list_title = _l("Sites")
    show_title = _l("Site")
    add_title = _l("Add site")
    edit_title = _l("Edit site")
    list_columns = ["name", "allowed_origins", "active"]
    search_columns = ["name", "allowed_origins", "active"]
    add_columns = edit_columns = ["name", "allowed_origins", "welcome_text", "warning_banner", "theme_color",
                                  "button_position", "business_hours", "offline_form", "auto_reply_seconds",
                                  "auto_reply_text", *PRECHAT_COLUMNS, "active"]
    show_columns = ["name", "site_key", "identity_secret", "allowed_origins", "welcome_text",
                    "warning_banner", "theme_color", "button_position", "business_hours", "offline_form",
                    "auto_reply_seconds", "auto_reply_text", *PRECHAT_COLUMNS, "active"]
    label_columns = SITE_LABELS
    description_columns = {
        "allowed_origins": _l("One per line, scheme and host (and port), e.g. https://www.example.com; "
                              "https://*.example.com allows its subdomains."),
        "business_hours": _l("One line per opening, e.g. \"mon-fri 09:00-18:00\"; blank means always open."),
        "theme_color": _l("#RRGGBB"),
        "warning_banner": _l("Shown above the chat, e.g. a reminder not to send passwords."),
        "auto_reply_seconds": _l("When no agent has answered this many seconds after a chat starts, the "
                                 "auto reply is sent once; 0 turns it off."),
        "auto_reply_text": _l("Blank: a standard text asking the visitor to wait a moment."),
        "prechat_name": _l("Asked in the widget before a new chat starts; a required field must be "
                           "filled in before the visitor can write. The question becomes the chat's first message."),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "allowed_origins": TextAreaField(_l("Allowed origins"), render_kw={"rows": 3}),
        "business_hours": TextAreaField(_l("Business hours"), render_kw={"rows": 3}),
        "auto_reply_seconds": IntegerField(_l("Auto reply after (seconds)"), default=60,
                                           validators=[Optional(), NumberRange(min=0, max=3600)]),
        "button_position": LabelledEnumField(ButtonPosition, label=_l("Button position"),
                                             validators=[DataRequired()], default=ButtonPosition.right),
        **{column: LabelledEnumField(PrechatMode, label=SITE_LABELS[column], validators=[DataRequired()],
                                     default=PrechatMode.off) for column in PRECHAT_COLUMNS},
    }
    formatters_columns = {"button_position": enum_formatter(ButtonPosition),
                          **{column: enum_formatter(PrechatMode) for column in PRECHAT_COLUMNS}}
    show_template = "chat_site_show.html"

    def pre_add(self, item: ChatSite) -> None:
        chat_sites.prepare_new_site(item)
        chat_sites.validate_site(item)

    def pre_update(self, item: ChatSite) -> None:
        chat_sites.validate_site(item)

    def render_template(self, template, **kwargs):  # noqa: ANN001, ANN003, ANN201
        if template == self.show_template and kwargs.get("pk") is not None:
            site = db.session.get(ChatSite, kwargs["pk"])
            if site is not None:
                kwargs["snippet"] = str(chat_sites.snippet(site, request.host_url))  # shown as text, escaped
        return super().render_template(template, **kwargs)

    @expose("/regenerate/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("regenerate")
    def regenerate(self, pk: int):  # noqa: ANN201
        site = db.session.get(ChatSite, pk)
        if site is None:
            return "", 404
        chat_sites.regenerate_keys(db.session, site)
        flash(str(_l("New keys made: update the snippet and the identity hashes on the website.")), "warning")
        return redirect(url_for("ChatSiteModelView.show", pk=pk))


class AgentGroupModelView(DeskModelView):
    datamodel = EagerInterface(AgentGroup, options=(joinedload(AgentGroup.site),))
    list_title = _l("Agent groups")
    list_columns = ["site", "name", "priority", "routing", "is_default"]
    search_columns = ["site", "name", "routing", "is_default"]
    add_columns = edit_columns = ["site", "name", "url_patterns", "priority", "routing",
                                  "accept_timeout_seconds", "is_default", "agents"]
    show_columns = add_columns
    label_columns = {"site": _l("Site"), "name": _l("Name"), "url_patterns": _l("URL rules"),
                     "priority": _l("Priority"), "routing": _l("Routing"),
                     "accept_timeout_seconds": _l("Seconds to accept"), "is_default": _l("Default group"),
                     "agents": _l("Agents")}
    description_columns = {
        "url_patterns": _l("One pattern per line, * matches anything, e.g. */tax/*. Visitors on matching pages "
                           "go to this group; lower priority numbers are tried first."),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "url_patterns": TextAreaField(_l("URL rules"), render_kw={"rows": 3}),
        "accept_timeout_seconds": IntegerField(_l("Seconds to accept"), default=30,
                                               validators=[NumberRange(min=5, max=600)]),
        "routing": LabelledEnumField(RoutingMode, label=_l("Routing"), validators=[DataRequired()],
                                     default=RoutingMode.least_busy),
    }
    formatters_columns = {"routing": enum_formatter(RoutingMode)}


class AgentProfileModelView(DeskModelView):
    datamodel = EagerInterface(AgentProfile, options=(joinedload(AgentProfile.user),
                                                        selectinload(AgentProfile.groups).joinedload(AgentGroup.site)),
                               related={"groups": (joinedload(AgentGroup.site),)})
    list_title = _l("Agents")
    list_columns = ["display_name", "user", "groups", "max_chats", "status", "active"]
    search_columns = ["display_name", "user", "groups", "status", "active"]
    add_columns = edit_columns = ["user", "display_name", "avatar_url", "groups", "languages", "max_chats",
                                  "greeting", "active"]
    show_columns = add_columns + ["send_key", "status", "last_seen_at"]  # the send key: the agent's own choice
    label_columns = {"user": _l("User"), "display_name": _l("Display name"), "avatar_url": _l("Avatar URL"),
                     "groups": lazy_pgettext("agent groups", "Groups"), "languages": _l("Languages"),
                     "max_chats": _l("Max concurrent chats"),
                     "greeting": _l("Personal greeting"), "active": lazy_pgettext("enabled", "Active"),
                     "status": _l("Status"), "send_key": _l("Send key"),
                     "last_seen_at": _l("Last seen")}
    add_form_extra_fields = edit_form_extra_fields = {
        "max_chats": IntegerField(_l("Max concurrent chats"), default=5, validators=[NumberRange(min=1, max=50)]),
    }
    formatters_columns = {"status": enum_formatter(AgentStatus), "send_key": enum_formatter(SendKey)}

    def pre_add(self, item: AgentProfile) -> None:
        if item.avatar_url and not item.avatar_url.startswith(("https://", "http://", "/")):
            raise DomainError({"avatar_url": [str(_l("The avatar is a web address (https://...)."))]})
        if not (item.display_name or "").strip():
            raise DomainError({"display_name": [str(_l("The agent needs a display name."))]})

    pre_update = pre_add


class ChatBlockModelView(DeskModelView):
    datamodel = EagerInterface(ChatBlock, options=(joinedload(ChatBlock.site),))
    list_title = _l("Blocked visitors")
    base_order = ("created_at", "desc")
    list_columns = ["site", "visitor_uid", "ip_range", "expires_at", "reason"]
    search_columns = ["site", "visitor_uid", "ip_range", "expires_at"]
    add_columns = edit_columns = ["site", "visitor_uid", "ip_range", "expires_at", "reason"]
    show_columns = add_columns
    label_columns = {"site": _l("Site"), "visitor_uid": _l("Visitor id"), "ip_range": _l("IP address or range"),
                     "expires_at": _l("Expires (UTC)"), "reason": _l("Reason")}
    description_columns = {"site": _l("Blank: every site."), "expires_at": _l("Blank: never.")}
    add_form_extra_fields = edit_form_extra_fields = {
        "reason": TextAreaField(_l("Reason"), validators=[Optional()], render_kw={"rows": 2}),
    }

    def pre_add(self, item: ChatBlock) -> None:
        item.visitor_uid = (item.visitor_uid or "").strip() or None
        item.ip_range = (item.ip_range or "").strip() or None
        chat_sites.validate_block(item)
        from app.permissions import current_user_id

        item.created_by_id = item.created_by_id or current_user_id()

    pre_update = pre_add


# A site's page lists its groups (the departments its visitors are routed to).
ChatSiteModelView.related_views = [AgentGroupModelView]


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the live-chat administration screens."""
    appbuilder.add_view(ChatSiteModelView, "Sites", label=_l("Sites"), icon="fa-globe", **CATEGORY)
    appbuilder.add_view(AgentGroupModelView, "Agent groups", label=_l("Agent groups"), icon="fa-users", **CATEGORY)
    appbuilder.add_view(AgentProfileModelView, "Agents", label=_l("Agents"), icon="fa-headphones", **CATEGORY)
    appbuilder.add_view(ChatBlockModelView, "Blocked visitors", label=_l("Blocked visitors"), icon="fa-ban",
                        **CATEGORY)

