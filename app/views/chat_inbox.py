"""Live-chat history: conversations with search and transcripts, visitors with their trails, and
left messages (留言) with assignment and replies by email.

Who sees what: users with ``can_supervise`` on ``LiveChat`` (Admin, Manager) see every site; other
users (agents) see only the sites they serve — the sites of their agent groups, every site when
they are in no group, nothing without an agent profile. A transcript is read by whoever
``chat_inbox.transcript_access`` allows (the same rule as its PDF); notes and whispers show only to
supervisors and to the agents who owned the conversation or were invited into it.
"""

from __future__ import annotations

from datetime import date

from flask import Flask, abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models.chat import (
    ChatSite,
    Conversation,
    ConversationStatus,
    LeaveMessage,
    LeaveMessageStatus,
    SenderType,
    Visitor,
)
from app.permissions import current_user_id
from app.security import SUPERVISE
from app.services import chat_inbox, chat_topics, tracking
from app.services.errors import NotFound
from app.services.inputs import MAX_ID, parse_count, parse_id
from app.views.common import DeskModelView, EagerInterface, format_datetime
from app.views.labels import ENUM_LABELS
from app.views.pdf_links import transcript_url

CATEGORY = dict(category="Live chat", category_label=_l("Live chat"), category_icon="fa-comments")

STATUS_LABELS = ENUM_LABELS[LeaveMessageStatus]
CONVERSATION_STATUS_LABELS = ENUM_LABELS[ConversationStatus]
SENDER_LABELS = ENUM_LABELS[SenderType]


def sees_all_chats() -> bool:
    """Supervisors (Admin, Manager) see the history and left messages of every site."""
    return current_app.appbuilder.sm.can(SUPERVISE)


def visible_site_ids() -> set[int] | None:
    """``None`` for every site, else the ids of the sites the current user serves."""
    if sees_all_chats():
        return None
    return chat_inbox.agent_site_ids(db.session, current_user_id())


class SiteScopeFilter(BaseFilter):
    """Row-level rule: agents see only rows of the sites they serve (models with ``site_id``, and the
    sites themselves in filter choices)."""

    name = "site scope"
    arg_name = "sitescope"

    def apply(self, query, value):  # noqa: ANN001, ANN201, ARG002
        site_ids = visible_site_ids()
        if site_ids is None:
            return query
        column = self.model.id if self.model is ChatSite else self.model.site_id
        return query.filter(column.in_(list(site_ids) or [-1]))


def _in_scope(site_id: int) -> bool:
    site_ids = visible_site_ids()
    return site_ids is None or site_id in site_ids


def _status_label(value) -> str:  # noqa: ANN001
    if value is None or value == "":
        return ""
    if not isinstance(value, LeaveMessageStatus):
        value = LeaveMessageStatus(str(value).split(".")[-1])
    return str(STATUS_LABELS[value])


def _short(text: str | None, length: int = 60) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= length else text[:length] + "…"


# --- left messages ----------------------------------------------------------------------------


class LeaveMessageModelView(DeskModelView):
    """留言: messages visitors left, to assign, answer and close."""

    datamodel = EagerInterface(LeaveMessage, options=(joinedload(LeaveMessage.site),
                                                        joinedload(LeaveMessage.assigned_to)))
    base_permissions = ["can_list", "can_show", "can_export", "can_assign", "can_reply"]
    base_filters = [["id", SiteScopeFilter, lambda: None]]
    base_order = ("created_at", "desc")
    list_title = _l("Left messages")
    show_title = _l("Left message")
    list_columns = ["created_at", "site", "name", "phone", "email", "text", "status", "assigned_to"]
    show_columns = ["created_at", "site", "visitor", "name", "phone", "email", "text", "page_url", "status",
                    "assigned_to", "reply_text", "replied_at", "replied_by"]
    search_columns = ["status", "site", "created_at", "name", "phone", "email", "text"]
    search_form_query_rel_fields = {"site": [["id", SiteScopeFilter, lambda: None]]}
    csv_columns = ["created_at", "site", "name", "phone", "email", "text", "status", "assigned_to", "reply_text",
                   "replied_at", "replied_by"]
    label_columns = {"created_at": _l("Left at"), "site": _l("Site"), "visitor": _l("Visitor"), "name": _l("Name"),
                     "phone": _l("Phone"), "email": _l("Email"), "text": _l("Message"), "page_url": _l("Page"),
                     "status": _l("Status"), "assigned_to": _l("Assigned to"), "reply_text": _l("Reply"),
                     "replied_at": _l("Replied at"), "replied_by": _l("Replied by")}
    formatters_columns = {"created_at": format_datetime, "replied_at": format_datetime, "status": _status_label}
    show_template = "chat_inbox/leave_message_show.html"

    def render_template(self, template, **kwargs):  # noqa: ANN001, ANN003, ANN201
        if template == self.show_template and kwargs.get("pk") is not None:
            kwargs["message"] = self._message(int(kwargs["pk"]))
            kwargs["chat_users"] = chat_inbox.chat_users(db.session, current_app.config.get("AUTH_ROLE_ADMIN",
                                                                                             "Admin"))
            kwargs["statuses"] = list(STATUS_LABELS.items())
            sm = self.appbuilder.sm
            kwargs["can_assign"] = sm.has_access("can_assign", self.class_permission_name)
            kwargs["can_reply"] = sm.has_access("can_reply", self.class_permission_name)
        return super().render_template(template, **kwargs)

    def _message(self, pk: int) -> LeaveMessage:
        message = db.session.get(LeaveMessage, pk)
        if message is None or not _in_scope(message.site_id):
            abort(404)
        return message

    def _back(self, pk: int):  # noqa: ANN202
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))

    @expose("/assign/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("assign")
    def assign(self, pk: int):  # noqa: ANN201
        """Assign to a user who answers chats, and/or set the status."""
        self._message(pk)
        # A refusal goes back to the message's page with its reason (app.errors).
        if request.form.get("user_id"):
            user_id = parse_id(request.form["user_id"]) or -1
            chat_inbox.assign_leave_message(db.session, pk, user_id, current_app.config.get("AUTH_ROLE_ADMIN", "Admin"))
        if request.form.get("status"):
            chat_inbox.set_leave_message_status(db.session, pk, request.form["status"])
        flash(str(_l("Saved.")), "success")
        return self._back(pk)

    @expose("/reply/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("reply")
    def reply(self, pk: int):  # noqa: ANN201
        """Email the reply (or record the phone follow-up) and mark the message replied."""
        self._message(pk)
        _, emailed = chat_inbox.reply_leave_message(db.session, pk, current_user_id(),
                                                    request.form.get("reply_text"), current_app.config)
        flash(str(_l("Reply sent by email.") if emailed else _l("Phone follow-up recorded.")), "success")
        return self._back(pk)


# --- visitors ---------------------------------------------------------------------------------


class ChatVisitorModelView(DeskModelView):
    """访客: visitors of the chat sites, each with their page trail and conversations."""

    datamodel = EagerInterface(Visitor, options=(joinedload(Visitor.site),))
    base_permissions = ["can_list", "can_show"]
    base_filters = [["id", SiteScopeFilter, lambda: None]]
    base_order = ("last_seen_at", "desc")
    list_title = _l("Visitors")
    show_title = _l("Visitor")
    list_columns = ["last_seen_at", "site", "uid", "name", "visits", "page_views", "current_url", "country", "city",
                    "online"]
    show_columns = ["uid", "site", "name", "email", "phone", "external_user_id", "first_seen_at", "last_seen_at",
                    "visits", "page_views", "online", "current_url", "browser", "os", "device", "language",
                    "screen", "country", "region", "city", "anonymised_at"]
    search_columns = ["site", "uid", "name", "email", "phone", "last_seen_at", "country", "city", "online"]
    search_form_query_rel_fields = {"site": [["id", SiteScopeFilter, lambda: None]]}
    label_columns = {"uid": _l("Visitor id"), "site": _l("Site"), "name": _l("Name"), "email": _l("Email"),
                     "phone": _l("Phone"), "external_user_id": _l("User id (verified)"),
                     "first_seen_at": _l("First seen"), "last_seen_at": _l("Last seen"), "visits": _l("Visits"),
                     "page_views": _l("Page views"), "online": _l("Online"), "current_url": _l("Current page"),
                     "browser": _l("Browser"), "os": _l("Operating system"), "device": _l("Device"),
                     "language": _l("Language"), "screen": _l("Screen"), "country": _l("Country"),
                     "region": _l("Region"), "city": _l("City"), "anonymised_at": _l("Anonymised at")}
    formatters_columns = {"first_seen_at": format_datetime, "last_seen_at": format_datetime,
                          "anonymised_at": format_datetime}
    show_template = "chat_inbox/visitor_show.html"

    def render_template(self, template, **kwargs):  # noqa: ANN001, ANN003, ANN201
        if template == self.show_template and kwargs.get("pk") is not None:
            visitor = db.session.get(Visitor, int(kwargs["pk"]))
            if visitor is None or not _in_scope(visitor.site_id):
                abort(404)
            kwargs["trail"] = tracking.visit_trail(db.session, visitor.id)
            kwargs["conversations"] = list(db.session.scalars(select(Conversation).where(
                Conversation.visitor_id == visitor.id).order_by(Conversation.id.desc())))
            kwargs["format_datetime"] = format_datetime
            kwargs["status_labels"] = CONVERSATION_STATUS_LABELS
        return super().render_template(template, **kwargs)


# --- conversation history ---------------------------------------------------------------------


def _int_arg(name: str, low: int | None = None, high: int | None = None) -> int | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    number = parse_count(raw, 0)
    if number is None or (low is not None and number < low) or (high is not None and number > high):
        flash(str(_l("Ignored a filter that is not valid: %(name)s.", name=name)), "warning")
        return None
    return number


def _date_arg(name: str) -> date | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        flash(str(_l("Ignored a filter that is not valid: %(name)s.", name=name)), "warning")
        return None


class ConversationHistoryView(BaseView):
    """会话记录: past and current conversations, searched over their messages, with transcripts."""

    route_base = "/chat/history"
    default_view = "list"
    base_permissions = ["can_list", "can_show"]
    page_size = 25

    @expose("/")
    @has_access
    def list(self):  # noqa: ANN201
        site_ids = visible_site_ids()
        q = (request.args.get("q") or "").strip()[:200]
        filters = {"site_id": _int_arg("site_id"), "agent_id": _int_arg("agent_id"),
                   "date_from": _date_arg("date_from"), "date_to": _date_arg("date_to"),
                   "rating": _int_arg("rating", 1, 5), "topic_id": _int_arg("topic_id", 1, MAX_ID)}
        page = _int_arg("page") or 0
        result = chat_inbox.search_conversations(
            db.session, q, **filters, site_ids=site_ids, include_internal=site_ids is None, page=page,
            page_size=self.page_size, tz=current_app.config.get("TZ_DISPLAY", "Asia/Shanghai"))
        _load_rows(result.conversations)
        first_texts = _first_visitor_texts([c.id for c in result.conversations])
        topics = chat_topics.topics_of(db.session, [c.id for c in result.conversations])
        sites = db.session.scalars(select(ChatSite).order_by(ChatSite.name)).all()
        sites = [site for site in sites if site_ids is None or site.id in site_ids]
        pages = max((result.total + self.page_size - 1) // self.page_size, 1)
        args = {k: v for k, v in request.args.items() if k != "page"}
        return self.render_template(
            "chat_inbox/history.html", result=result, q=q, filters=filters, sites=sites,
            agents=chat_inbox.site_agents(db.session, site_ids), page=page, pages=pages, args=args,
            format_datetime=format_datetime, status_labels=CONVERSATION_STATUS_LABELS,
            snippet=lambda c: _short(first_texts.get(c.id, ""), 80), all_topics=chat_topics.all_topics(db.session),
            topics_of=lambda c: topics.get(c.id, []))

    @expose("/<int:pk>")
    @has_access
    @permission_name("show")
    def transcript(self, pk: int):  # noqa: ANN201
        try:  # who reads it, and its internal notes: one rule with the PDF (chat_inbox.transcript_access)
            access = chat_inbox.transcript_access(db.session, pk, current_user_id(), sees_all_chats())
        except NotFound:
            abort(404)
        conversation, internal = access.conversation, access.internal
        messages = chat_inbox.transcript_messages(db.session, conversation.id, internal=internal)
        return self.render_template(
            "chat_inbox/transcript.html", conversation=conversation, messages=messages, internal=internal,
            format_datetime=format_datetime, status_labels=CONVERSATION_STATUS_LABELS, sender_labels=SENDER_LABELS,
            SenderType=SenderType, pdf_url=transcript_url(conversation.id),
            topics=chat_topics.topics_of(db.session, [conversation.id]).get(conversation.id, []))


def _load_rows(conversations: list[Conversation]) -> None:
    """Load the site, visitor and agent of a page of conversations with one statement, so that
    the rows do not load them one by one while the page renders."""
    if conversations:
        db.session.scalars(
            select(Conversation).where(Conversation.id.in_([c.id for c in conversations]))
            .options(joinedload(Conversation.site), joinedload(Conversation.visitor), joinedload(Conversation.agent))
            .execution_options(populate_existing=True)).unique().all()


def _first_visitor_texts(conversation_ids: list[int]) -> dict[int, str]:
    """The first message each visitor wrote in *conversation_ids*, with one statement."""
    if not conversation_ids:
        return {}
    message = chat_inbox.ChatMessage
    first = (select(func.min(message.id)).where(message.conversation_id.in_(conversation_ids),
                                                message.sender_type == SenderType.visitor)
             .group_by(message.conversation_id))
    rows = db.session.execute(select(message.conversation_id, message.text).where(message.id.in_(first)))
    return {conversation_id: text or "" for conversation_id, text in rows}


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the history and left-message screens to the Live chat menu."""
    appbuilder.add_view(ConversationHistoryView, "Conversations", label=_l("Conversations"), icon="fa-history",
                        **CATEGORY)
    appbuilder.add_view(ChatVisitorModelView, "Chat visitors", label=_l("Visitors"), icon="fa-user-secret",
                        **CATEGORY)
    appbuilder.add_view(LeaveMessageModelView, "Left messages", label=_l("Left messages"), icon="fa-envelope",
                        **CATEGORY)
