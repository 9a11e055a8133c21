"""The agent console page (客服工作台) and the JSON it loads (visitors, queue, chats, visitor details,
client card, a conversation's messages).

Who may use it: signed-in users holding ``can_chat`` on ``LiveChat`` (roles Agent and Manager) —
the page also needs the console's own ``can_list`` (which puts it in the menu). The JSON endpoints
answer 401 when signed out and 403 without the chat permission; what they return is scoped in
``app.services.chat_console`` (a visitor of a site the user does not serve, or a conversation they
are not in, is a 404).
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import Flask, abort, current_app, jsonify, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from app.extensions import db
from app.models.chat import ConversationStatus
from app.security import CHAT, SUPERVISE
from app.services import chat_console
from app.services.errors import DomainError
from app.views import chat_crm
from app.views.labels import ENUM_LABELS


def _viewer() -> chat_console.Viewer:
    sm = current_app.appbuilder.sm
    return chat_console.viewer(db.session, current_user.id, bool(sm.can(SUPERVISE)))


def _json_access(view: Any) -> Any:  # noqa: ANN401
    """401 for anonymous callers, 403 without the chat permission, domain errors as JSON."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        if not current_user.is_authenticated:
            return jsonify(message=str(_l("Please sign in."))), 401
        if not current_app.appbuilder.sm.can(CHAT):
            return jsonify(message=str(_l("You may not use the live chat."))), 403
        try:
            return view(*args, **kwargs)
        except DomainError as exc:
            db.session.rollback()
            return jsonify(message=exc.message, errors=exc.errors), exc.status_code

    return wrapper


STATUSES = (("online", _l("Online")), ("away", _l("Away")), ("offline", _l("Offline")),
            ("invisible", _l("Invisible")))
SOCKETIO_CLIENT = "/widget/socket.io.min.js"

# Every text console.js shows, translated here (the script has no catalog of its own).
STRINGS = {
    "connected": _l("Connected"), "disconnected": _l("Disconnected — reconnecting…"),
    "refused": _l("The chat server refused the connection."),
    "accept": _l("Accept"), "decline": _l("Decline"), "details": _l("Details"), "invite": _l("Invite"),
    "watch": _l("Watch"), "unwatch": _l("Stop watching"), "close_chat": _l("Close chat"),
    "block_visitor": _l("Block visitor"),
    "block_confirm": _l("Block this visitor on this site and end the chat? An Admin can lift the block on the "
                        "blocked visitors screen."),
    "visitor_blocked": _l("The visitor is blocked and the chat has ended."),
    "close_tab": _l("Close tab"), "transfer": _l("Transfer"), "invite_agent": _l("Invite colleague"),
    "send": _l("Send"), "note": _l("Internal note"), "whisper": _l("Whisper to the agent"),
    "attach": _l("Send a file"), "seconds_left": _l("%(n)s s left"), "waited": _l("waited %(t)s"),
    "position": _l("No. %(n)s"), "on_site": _l("on site %(t)s"), "visits": _l("visit %(n)s"),
    "chatting": _l("in chat"), "typing": _l("Visitor is typing:"), "closed_by": _l("The chat was closed (%(by)s)."),
    "by_visitor": _l("by the visitor"), "by_agent": _l("by the agent"), "by_system": _l("by the system"),
    "read_only": _l("Watching: read-only. Whispers reach only the agent."),
    "no_visitors": _l("No visitors online."), "no_queue": _l("Nobody is waiting."), "no_offers": _l("No offers."),
    "no_live": _l("No live chats."), "visitor": _l("Visitor"), "you": _l("You"), "sending": _l("Sending…"),
    "sender_note": _l("Note"), "sender_whisper": _l("Whisper"), "sender_system": _l("System"),
    "sender_bot": _l("Assistant (bot)"), "faq": _l("Knowledge base"), "faq_search": _l("Search the knowledge base"),
    "faq_insert": _l("Insert"), "faq_none": _l("Nothing found in the knowledge base."),
    "transfer_to": _l("Transfer to"), "agent": _l("Agent"), "group": _l("Group"),
    "transfer_note": _l("Note for the colleague"),
    "transferred": _l("The chat was transferred."), "transferred_to_you": _l("%(name)s transferred a chat to you."),
    "invited_you": _l("%(name)s invites you into a chat."), "invite_sent": _l("Invitation sent."),
    "invite_text": _l("Hello! Can I help you?"), "invite_visitor": _l("Invite to chat"),
    "invitation_accepted": _l("The visitor accepted your invitation."),
    "invitation_declined": _l("The visitor declined your invitation."),
    "offer_withdrawn": _l("The chat offer was withdrawn."),
    "being_offered": _l("Offered"),
    "left_message": _l("%(name)s left a message."),
    "cancel": _l("Cancel"), "new_chat": _l("New chat request"), "new_message": _l("New message"),
    "upload_failed": _l("The file could not be sent."), "page": _l("Page"), "title": _l("Title"),
    "location": _l("Location"), "browser": _l("Browser"),
    "device": _l("Device"), "language": _l("Language"), "first_seen": _l("First seen"), "name": _l("Name"),
    "email": _l("Email"), "phone": _l("Phone"), "site": _l("Site"), "trail": _l("Pages visited"),
    "past_chats": _l("Past chats"), "client_card": _l("Client"), "credit_code": _l("Credit code"),
    "taxpayer_type": _l("Taxpayer type"), "contracts": _l("Active contracts"), "balance_due": _l("Balance due"),
    "latest_closed": _l("Latest closed month"), "none_closed": _l("none closed yet"),
    "service_records": _l("Recent service"), "contact": _l("Contact"), "messages": _l("messages"),
    "rating": _l("Rating"), "per_month": _l("%(fee)s / month"),
    "load": _l("%(load)s/%(max)s chats"), "status_online": _l("Online"), "status_away": _l("Away"),
    "status_offline": _l("Offline"), "status_invisible": _l("Invisible"), "direct": _l("Direct visit"),
    "error": _l("Something went wrong."), "team_empty": _l("No team messages yet."),
    "notifications_on": _l("Notifications on"),
    "choose": _l("— choose —"), "joined": _l("%(name)s joined the chat."),
    "left": _l("%(name)s left the chat."), "leave": _l("Leave chat"),
    "hint_enter": _l("Enter sends · Shift+Enter: new line"),
    "hint_ctrl_enter": _l("Ctrl+Enter sends · Enter: new line"),
    # read receipts, the emoji picker, the unread total in the browser tab's title
    "read_receipt": lazy_pgettext("message receipt", "Read"), "emoji": _l("Emoji"),
    "title_new_messages": _l("(%(n)s) New messages"),
    "topics": _l("Topics"), "set_topics": _l("Set topics"), "save": _l("Save"), "no_topics": _l("none yet"),
    "no_topic_list": _l("No topics to choose from yet: a manager adds them under Live chat → Conversation topics."),
    "links": _l("Quick links"), "links_search": _l("Search quick links"), "links_none": _l("No quick links."),
    # a live chat's status, as "conversation_" + the stored value
    **{f"conversation_{status.value}": label for status, label in ENUM_LABELS[ConversationStatus].items()},
}
STRINGS.update(chat_crm.STRINGS)  # the visitor card's actions, from visitor to client


def _include_ip() -> bool:
    return not current_app.config.get("TRACKING_TRUNCATE_IP", True)


class AgentConsoleView(BaseView):
    """客服工作台: live visitors, the queue, offers, the agent's chats, the team room and (for
    supervisors) every live chat, kept current over the ``/agent`` socket."""

    route_base = "/chat/console"
    default_view = "index"
    method_permission_name = {"index": "list"}
    base_permissions = ["can_list"]

    @expose("/")
    @has_access
    def index(self):  # noqa: ANN201
        if not current_app.appbuilder.sm.can(CHAT):
            abort(403)
        who = _viewer()
        name = getattr(current_user, "first_name", "") or current_user.username
        console_config = {
            "state": chat_console.console_state(db.session, who, name, "", _include_ip()),
            "strings": {key: str(value) for key, value in STRINGS.items()},
            "urls": {"state": url_for("AgentConsoleView.state"),
                     "visitor": url_for("AgentConsoleView.visitor", pk=0).rsplit("/", 1)[0] + "/",
                     "conversation": url_for("AgentConsoleView.conversation", pk=0).rsplit("/", 1)[0] + "/",
                     "canned": "/chat/canned", "files": "/chat/files", "links": "/chat/links/"},
            "csrf_token": generate_csrf(),
        }
        return self.render_template("chat/console.html", who=who, console_config=console_config,
                                    statuses=[(value, str(label)) for value, label in STATUSES],
                                    socketio_client=SOCKETIO_CLIENT)

    @expose("/state")
    @_json_access
    def state(self):  # noqa: ANN201
        name = getattr(current_user, "first_name", "") or current_user.username
        q = request.args.get("q", "", type=str)
        return jsonify(chat_console.console_state(db.session, _viewer(), name, q, _include_ip()))

    @expose("/visitor/<int:pk>")
    @_json_access
    def visitor(self, pk: int):  # noqa: ANN201
        details = chat_console.visitor_details(db.session, _viewer(), pk, _include_ip())
        return jsonify(chat_crm.add_to_visitor_details(details, pk))

    @expose("/conversation/<int:pk>")
    @_json_access
    def conversation(self, pk: int):  # noqa: ANN201
        return jsonify(chat_console.conversation_detail(db.session, _viewer(), pk))


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the agent console to the "Live chat" menu."""
    appbuilder.add_view(AgentConsoleView, "Agent console", label=_l("Agent console"), icon="fa-comments-o",
                        category="Live chat", category_label=_l("Live chat"), category_icon="fa-comments")
