"""Conversation topics (对话主题) and quick links (常用链接): their screens, their REST APIs
(``/api/v1/chat_topic/``, ``/api/v1/quick_link/``) and the console's link search (``GET /chat/links``).

* Admin and Manager add, edit and delete both lists; Agents read them (screens and APIs) and use
  them in the console: topics through the ``set_topics`` socket event, links through
  ``/chat/links``. Every change is in the audit log (the models are audited).
* The rules are in ``app.services.chat_topics`` and ``app.services.chat_links``: the screens and
  the APIs check the same ones. A topic still filed on conversations is not deleted (409, the
  message says how many): deactivate it.
* The link API names the site by ``site_id`` only (a nested object is a 422, never created).
* An Agent's lists show the links of the sites they serve and those for every site.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import has_access_api
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import or_
from sqlalchemy.orm import joinedload
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import NumberRange, Optional

from app.extensions import db
from app.models.chat_topics import ChatTopic, QuickLink
from app.services import chat_links, chat_topics
from app.services.inputs import parse_id
from app.views.api import DeskApi
from app.views.chat_admin import CATEGORY
from app.views.chat_faq import ForeignKeyConverter
from app.views.chat_inbox import visible_site_ids
from app.views.common import DeskModelView, EagerInterface, format_datetime

TOPIC_LABELS = {"name": _l("Topic"), "description": _l("Description"), "sort_order": _l("Sort order"),
                "active": lazy_pgettext("enabled", "Active"), "updated_at": _l("Updated")}
TOPIC_DESCRIPTIONS = {
    "name": _l("What a conversation was about, e.g. 报税问题. Agents choose topics in the console."),
    "sort_order": _l("Lower numbers are listed first."),
    "active": _l("Only active topics are offered to agents; a topic in use cannot be deleted, deactivate it."),
}
LINK_LABELS = {"title": _l("Title"), "url": _l("Address"), "site": _l("Site"), "site_id": _l("Site"),
               "sort_order": _l("Sort order"), "active": lazy_pgettext("enabled", "Active"),
               "updated_at": _l("Updated")}
LINK_DESCRIPTIONS = {
    "url": _l("An address starting with http:// or https://: agents insert it into a reply with one click."),
    "site": _l("Blank: every site."),
    "site_id": _l("Blank: every site."),
    "sort_order": _l("Lower numbers are listed first."),
}


# --- topics -------------------------------------------------------------------------------------


class ChatTopicModelView(DeskModelView):
    datamodel = EagerInterface(ChatTopic)
    list_title = _l("Conversation topics")
    show_title = _l("Conversation topic")
    add_title = _l("Add conversation topic")
    edit_title = _l("Edit conversation topic")
    base_order = ("sort_order", "asc")
    list_columns = ["name", "description", "sort_order", "active", "updated_at"]
    search_columns = ["name", "description", "active"]
    show_columns = ["name", "description", "sort_order", "active", "updated_at"]
    add_columns = edit_columns = ["name", "description", "sort_order", "active"]
    label_columns = TOPIC_LABELS
    description_columns = TOPIC_DESCRIPTIONS
    formatters_columns = {"updated_at": format_datetime}
    add_form_extra_fields = edit_form_extra_fields = {
        "name": StringField(_l("Topic"), render_kw={"maxlength": chat_topics.MAX_NAME}),
        "sort_order": IntegerField(_l("Sort order"), default=100,
                                   validators=[NumberRange(min=0, max=chat_topics.MAX_SORT)]),
        "active": BooleanField(lazy_pgettext("enabled", "Active"), default=True),
    }

    def pre_add(self, item: ChatTopic) -> None:
        chat_topics.validate_topic(db.session, item)

    pre_update = pre_add


TOPIC_COLUMNS = ["id", "name", "description", "sort_order", "active", "updated_at"]
TOPIC_WRITE = ["name", "description", "sort_order", "active"]


class ChatTopicApi(DeskApi):
    """``/api/v1/chat_topic/``: the conversation topics (Manager and Admin write, Agents read)."""

    resource_name = "chat_topic"
    datamodel = EagerInterface(ChatTopic)
    base_filters = []
    list_columns = show_columns = TOPIC_COLUMNS
    add_columns = edit_columns = TOPIC_WRITE
    search_columns = ["name", "active"]
    order_columns = ["id", "name", "sort_order", "updated_at"]
    label_columns = TOPIC_LABELS
    description_columns = TOPIC_DESCRIPTIONS

    def pre_add(self, item: ChatTopic) -> None:
        chat_topics.validate_topic(db.session, item)

    pre_update = pre_add


# --- quick links --------------------------------------------------------------------------------


class ServedSiteOrEveryFilter(BaseFilter):
    """Row-level rule: agents list the links of the sites they serve and those for every site."""

    name = "served site or every site"
    arg_name = "servedsiteorevery"

    def apply(self, query, value):  # noqa: ANN001, ANN201, ARG002
        site_ids = visible_site_ids()
        if site_ids is None:
            return query
        return query.filter(or_(QuickLink.site_id.is_(None), QuickLink.site_id.in_(sorted(site_ids) or [0])))


class QuickLinkModelView(DeskModelView):
    datamodel = EagerInterface(QuickLink, options=(joinedload(QuickLink.site),))
    list_title = _l("Quick links")
    show_title = _l("Quick link")
    add_title = _l("Add quick link")
    edit_title = _l("Edit quick link")
    base_filters = [["id", ServedSiteOrEveryFilter, lambda: None]]
    base_order = ("sort_order", "asc")
    list_columns = ["title", "url", "site", "sort_order", "active"]
    search_columns = ["title", "url", "site", "active"]
    show_columns = ["title", "url", "site", "sort_order", "active", "updated_at"]
    add_columns = edit_columns = ["title", "url", "site", "sort_order", "active"]
    label_columns = LINK_LABELS
    description_columns = LINK_DESCRIPTIONS
    formatters_columns = {"updated_at": format_datetime}
    add_form_extra_fields = edit_form_extra_fields = {
        "title": StringField(_l("Title"), render_kw={"maxlength": chat_links.MAX_TITLE}),
        "url": StringField(_l("Address"), render_kw={"maxlength": chat_links.MAX_URL,
                                                      "placeholder": "https://"}),
        "sort_order": IntegerField(_l("Sort order"), default=100,
                                   validators=[Optional(), NumberRange(min=0, max=chat_links.MAX_SORT)]),
        "active": BooleanField(lazy_pgettext("enabled", "Active"), default=True),
    }

    def pre_add(self, item: QuickLink) -> None:
        chat_links.validate_link(db.session, item)

    pre_update = pre_add


LINK_COLUMNS = ["id", "site_id", "site.name", "title", "url", "sort_order", "active", "updated_at"]
LINK_WRITE = ["site_id", "title", "url", "sort_order", "active"]


class QuickLinkApi(DeskApi):
    """``/api/v1/quick_link/``: the quick links (Manager and Admin write, Agents read)."""

    resource_name = "quick_link"
    model2schemaconverter = ForeignKeyConverter
    datamodel = EagerInterface(QuickLink)
    base_filters = [["id", ServedSiteOrEveryFilter, lambda: None]]
    list_columns = show_columns = LINK_COLUMNS
    add_columns = edit_columns = LINK_WRITE
    search_columns = ["title", "url", "active"]
    order_columns = ["id", "title", "sort_order", "updated_at"]
    label_columns = LINK_LABELS
    description_columns = LINK_DESCRIPTIONS

    def pre_add(self, item: QuickLink) -> None:
        chat_links.validate_link(db.session, item)

    pre_update = pre_add


class ChatLinksView(BaseView):
    """The console's JSON: the quick links an agent may insert into a reply."""
    permission_label = lazy_pgettext("view menu", "Quick links in the console")  # on the role screens

    route_base = "/chat/links"
    default_view = "links"

    @expose("/")
    @has_access_api
    def links(self) -> Response:
        """``GET /chat/links?site_id=&q=`` → ``{links: [{id, title, url, site_id}]}``: the active links of
        the sites the user serves (of *site_id* only, when given) and those for every site."""
        raw_site = request.args.get("site_id")
        site_id = parse_id(raw_site) if raw_site else None
        if raw_site and site_id is None:
            site_id = 0  # names no site: only the links for every site
        found = chat_links.search_links(db.session, visible_site_ids(), site_id, request.args.get("q"))
        return jsonify(links=[chat_links.link_payload(link) for link in found])


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the topic and quick-link screens, their APIs and the console's link search."""
    appbuilder.add_view(ChatTopicModelView, "Conversation topics", label=_l("Conversation topics"), icon="fa-tags",
                        **CATEGORY)
    appbuilder.add_view(QuickLinkModelView, "Quick links", label=_l("Quick links"), icon="fa-link", **CATEGORY)
    appbuilder.add_api(ChatTopicApi)
    appbuilder.add_api(QuickLinkApi)
    appbuilder.add_view_no_menu(ChatLinksView)
