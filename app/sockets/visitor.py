"""``/visitor``: the widget's namespace. Thin: validate, call ``app.services.chat``, emit.

Connect with ``auth={"site_key", "visitor_token"?, "user_id"?, "user_hash"?, "language"?, "screen"?,
"agent"?, "url"?}``; the server answers ``session {visitor_id, visitor_token, conversation_id, returning,
site, online, prechat}`` and later ``availability {online}``, ``queue {conversation_id, position, eta_seconds}``.
Every event counts against the visitor's rate (``CHAT_VISITOR_RATE``); over it, the event gets an
``error`` with ``retry_after`` and does nothing (so does an event the busy database could not take,
``app.sockets.guard``). Events in:
``message {client_msg_id, text}`` (ack ``{id, client_msg_id, created_at}``; in a queued chat the
knowledge base's bot may answer it, ``app.services.chat_faq``), ``handoff`` (转人工, ack
``{conversation_id, online}``), ``typing {draft}``,
``resume {last_message_id}`` (the read positions, then the later messages), ``read {message_id}``
(read receipts, ``app.sockets.receipts``), ``rate {score, comment}``, ``close``, ``page_view {url, title, referrer,
screen?}`` (ack ``{page_view_id}``), ``heartbeat {}`` (ack ``{page_view_id, seconds}``), ``prechat
{client_msg_id?, name?, phone?, email?, question?}`` (ack ``{ok, message}``), ``history {before_id?}`` (the
visitor's earlier conversations, ``app.sockets.visitor_history``). Events out: ``message``,
``agent_typing``, ``closed``, ``read``, ``error {event, message, errors}``; to the site's agents ``visitor_update``.
"""

from __future__ import annotations

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from flask_socketio import ConnectionRefusedError, Namespace, emit, join_room

from app.extensions import db, socketio
from app.models.base import utcnow
from app.services import (
    chat,
    chat_faq,
    chat_history,
    chat_post,
    chat_prechat,
    chat_visitors,
    presence,
    routing,
    tracking,
)
from app.services.errors import DomainError
from app.sockets import deliver
from app.sockets.fanout import fanout
from app.sockets.guard import connect_guarded, dispatch, guarded, refusal
from app.sockets.ratelimit import visitor_rate
from app.sockets.receipts import VisitorReceiptEvents
from app.sockets.rooms import (
    PAGE_VIEW_KEY,
    SITE_KEY,
    VISITOR_KEY,
    conversation_room,
    error_payload,
    site_agents_room,
    site_visitors_room,
    visitor_room,
)
from app.sockets.visitor_history import IDENTITY_KEY, VisitorHistoryEvents
from app.sockets.visitor_inbox import VisitorInboxEvents
from app.sockets.visitor_tools import VisitorToolEvents

VISITOR_UID_KEY = "desk.visitor_uid"  # request.environ: the rate limit's key
REQUESTED_AGENT_KEY = "desk.requested_agent_id"  # auth "agent": 指定客服, used when a chat opens
ENTRY_URL_KEY = "desk.entry_url"  # auth "url": the page the widget was opened on


def visitor_allowed(site_id: int, uid: str) -> bool:
    """Count one event of a visitor against ``CHAT_VISITOR_RATE`` (``limits`` syntax, e.g. ``30 per
    10 second``; empty: no limit), see ``app.sockets.ratelimit``; False when over the limit."""
    rate = (current_app.config.get("CHAT_VISITOR_RATE") or "").strip()
    if not rate:
        return True
    return visitor_rate(rate, current_app.config.get("RATELIMIT_STORAGE_URI") or "memory://").hit(str(site_id), uid)


def _retry_after() -> int:
    rate = (current_app.config.get("CHAT_VISITOR_RATE") or "").strip()
    return visitor_rate(rate, current_app.config.get("RATELIMIT_STORAGE_URI") or "memory://").retry_after


def after_visitor_message(session, message_id: int, now=None, include_ip: bool = False) -> list:  # noqa: ANN001
    """The work that follows a visitor's message in a new or queued chat, after the ack: routing
    (``routing.after_visitor_message``), then the bot's answer while the chat is still queued."""
    emits = routing.after_visitor_message(session, message_id, now, include_ip)
    reply = chat_faq.answer(session, message_id)
    if reply is not None:
        emits += routing.message_emits(session.get(chat.Conversation, reply.conversation_id), reply)
    return emits


def site_settings(site: chat.ChatSite, assistant: bool = False) -> dict:
    """What the widget needs of its site's settings; *assistant*: the knowledge base has answers
    for the site (the widget then offers to ask the bot while nobody is online); ``prechat_form``
    is the pre-chat form's fields (``chat_prechat.prechat_form``: empty when the site asks nothing)."""
    return {"name": site.name, "welcome_text": site.welcome_text, "warning_banner": site.warning_banner,
            "theme_color": site.theme_color, "button_position": site.button_position.value,
            "offline_form": site.offline_form, "assistant": assistant,
            "prechat_form": chat_prechat.prechat_form(site)}


class VisitorNamespace(VisitorInboxEvents, VisitorToolEvents, VisitorReceiptEvents, VisitorHistoryEvents,
                       Namespace):
    def trigger_event(self, event, *args):  # noqa: ANN001, ANN002, ANN201
        """Every event but connecting and disconnecting counts against the visitor's rate limit; over
        it, the event gets an ``error`` (and an error ack) with ``retry_after`` and nothing is
        stored. Unforeseen failures follow ``app.sockets.guard``."""
        if event in ("connect", "disconnect"):  # (python-socketio logs a failed disconnect with its traceback)
            return super().trigger_event(event, *args)
        handler = getattr(self, "on_" + (event or ""), None)
        if handler is None:
            return None

        def limited(*data):  # noqa: ANN002, ANN202
            uid = request.environ.get(VISITOR_UID_KEY)
            if uid is not None and not visitor_allowed(request.environ[SITE_KEY], uid):
                return refusal(event, str(_l("You are sending too fast. Please wait a moment and try again.")),
                               retry_after=_retry_after())
            return handler(*data)

        return dispatch(self.socketio, guarded(event, limited, self.namespace), event, self.namespace, *args)

    def _visitor_id(self) -> int | None:
        return request.environ.get(VISITOR_KEY)

    def _deliver(self, emits: list) -> None:
        deliver(emits)

    def on_connect(self, auth=None):  # noqa: ANN001, ANN201
        return connect_guarded(self._connect, ConnectionRefusedError)(auth)

    def _connect(self, auth=None):  # noqa: ANN001, ANN202
        auth = auth if isinstance(auth, dict) else {}
        try:
            admitted = chat.connect_visitor(
                db.session, secret_key=current_app.config["SECRET_KEY"], site_key=auth.get("site_key"),
                origin=request.headers.get("Origin"), token=auth.get("visitor_token"), ip=request.remote_addr,
                user_id=auth.get("user_id"), user_hash=auth.get("user_hash"))
        except DomainError as exc:
            db.session.rollback()
            raise ConnectionRefusedError(exc.message, error_payload("connect", exc)) from None
        visitor = admitted.visitor
        request.environ[VISITOR_KEY] = visitor.id
        request.environ[SITE_KEY] = admitted.site.id
        request.environ[VISITOR_UID_KEY] = visitor.uid
        request.environ[IDENTITY_KEY] = admitted.verified
        agent = auth.get("agent")
        if isinstance(agent, int) and not isinstance(agent, bool):
            request.environ[REQUESTED_AGENT_KEY] = agent
        if isinstance(auth.get("url"), str) and auth["url"].startswith(("http://", "https://")):
            request.environ[ENTRY_URL_KEY] = auth["url"][:chat.MAX_URL]
        tracking.record_connection(
            db.session, visitor.id, ip=request.remote_addr, user_agent=request.headers.get("User-Agent"),
            language=auth.get("language"), screen=auth.get("screen"), geoip_db=current_app.config.get("GEOIP_DB"),
            truncate=current_app.config.get("TRACKING_TRUNCATE_IP", True))
        join_room(visitor_room(visitor.id))
        join_room(site_visitors_room(admitted.site.id))
        conversation = chat.open_conversation(db.session, visitor)
        chat_visitors.visitor_connected(db.session, visitor.id, request.sid)  # last: a refusal leaves no row
        online = presence.site_online(db.session, admitted.site, utcnow(), current_app.config.get("TZ_DISPLAY", "UTC"))
        assistant = chat_faq.has_entries(db.session, admitted.site.id)
        emit("session", {"visitor_id": visitor.uid, "visitor_token": admitted.token,
                         "conversation_id": conversation.id if conversation else None,
                         "returning": admitted.returning, "site": site_settings(admitted.site, assistant),
                         "online": online,
                         "prechat": conversation is None and chat_prechat.prechat_pending(admitted.site, visitor),
                         "history": chat_history.has_earlier(db.session, visitor, admitted.verified)})
        if conversation is not None and conversation.status == chat.ConversationStatus.queued:
            for item in routing.joined_queue_emits(db.session, conversation):
                if item.event == "queue":
                    emit(item.event, item.payload)
        return None

    def on_disconnect(self, reason=None) -> None:  # noqa: ANN001, ARG002
        visitor_id = self._visitor_id()
        if visitor_id is not None:  # the last of their connections: their waiting chat ends after a grace
            chat_visitors.visitor_disconnected(db.session, visitor_id, request.sid)

    def on_message(self, data=None):  # noqa: ANN001, ANN201
        """Stored (and committed) first; then the ack, with the conversation's agents and the
        visitor's other tabs told at once; routing and queue notices of a new or queued chat run
        after the ack (``fanout.defer``). Other agents of the site hear nothing of a message in a
        chat that is already offered or taken."""
        data = data if isinstance(data, dict) else {}
        visitor_id = self._visitor_id()
        posted = chat_post.post_visitor_message(
            db.session, visitor_id, data.get("client_msg_id"), data.get("text"),
            entry_url=request.environ.get(ENTRY_URL_KEY),
            requested_agent_id=request.environ.get(REQUESTED_AGENT_KEY), engine=db.engine)
        return self._after_posted(visitor_id, posted)

    def _after_posted(self, visitor_id: int, posted: chat_post.PostedMessage) -> dict:
        """Tell the conversation's agents and the visitor's other tabs of a new message (routing a
        new or queued chat after the ack); the message's ack."""
        payload = posted.payload
        if posted.created:
            socketio.emit("message", payload, to=visitor_room(visitor_id), namespace="/visitor",
                          skip_sid=request.sid)
            socketio.emit("message", payload, to=conversation_room(posted.conversation_id), namespace="/agent")
            if posted.opened or posted.status == chat.ConversationStatus.queued:
                fanout.defer(current_app._get_current_object(), after_visitor_message,  # noqa: SLF001
                             payload["id"], None, not current_app.config.get("TRACKING_TRUNCATE_IP", True))
        return {"id": payload["id"], "client_msg_id": payload["client_msg_id"], "created_at": payload["created_at"],
                "conversation_id": posted.conversation_id}

    def on_prechat(self, data=None):  # noqa: ANN001, ANN201
        """The pre-chat form (``chat_prechat.submit_prechat``): the details are stored on the
        visitor and the site's agents get the ``visitor_update``; the question, when given, goes on
        as the visitor's first message (as ``message`` does)."""
        visitor_id = self._visitor_id()
        result = chat_prechat.submit_prechat(
            db.session, visitor_id, data, entry_url=request.environ.get(ENTRY_URL_KEY),
            requested_agent_id=request.environ.get(REQUESTED_AGENT_KEY), engine=db.engine)
        include_ip = not current_app.config.get("TRACKING_TRUNCATE_IP", True)
        deliver([routing.Emit("visitor_update", tracking.visitor_payload(result.visitor, include_ip=include_ip),
                              site_agents_room(request.environ[SITE_KEY]), "/agent")])
        message = self._after_posted(visitor_id, result.posted) if result.posted is not None else None
        return {"ok": True, "message": message}

    def on_typing(self, data=None):  # noqa: ANN001, ANN201
        draft = data.get("draft") if isinstance(data, dict) else None
        if not isinstance(draft, str) or len(draft) > chat.MAX_TEXT:
            message = str(_l("A draft is text of at most %(n)d characters.", n=chat.MAX_TEXT))
            emit("error", {"event": "typing", "message": message, "errors": {"draft": [message]}})
            return None
        conversation = chat.open_conversation(db.session, db.session.get(chat.Visitor, self._visitor_id()))
        if conversation is not None:
            socketio.emit("visitor_typing", {"conversation_id": conversation.id, "draft": draft},
                          to=conversation_room(conversation.id), namespace="/agent")
        return None

    def on_resume(self, data=None):  # noqa: ANN001, ANN201
        last = data.get("last_message_id", 0) if isinstance(data, dict) else None
        messages = chat.visitor_messages_after(db.session, self._visitor_id(), last)
        self._send_read_positions()  # read receipts (已读) first: the widget marks and counts what it shows
        for message in messages:
            emit("message", chat.message_payload(message))
        return {"resent": len(messages)}

    def on_rate(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        conversation = chat.rate(db.session, self._visitor_id(), data.get("score"), data.get("comment"))
        return {"conversation_id": conversation.id, "rating": conversation.rating}

    def on_close(self, data=None):  # noqa: ANN001, ANN201, ARG002
        visitor = db.session.get(chat.Visitor, self._visitor_id())
        conversation = chat.open_conversation(db.session, visitor) if visitor else None
        if conversation is None:
            return {"closed": None}
        chat.close(db.session, conversation.id, visitor_id=visitor.id)
        closed = {"conversation_id": conversation.id, "by": "visitor"}
        socketio.emit("closed", closed, to=conversation_room(conversation.id), namespace="/agent")
        # the visitor's other tabs end the chat too (this one has the ack)
        socketio.emit("closed", closed, to=visitor_room(visitor.id), namespace="/visitor", skip_sid=request.sid)
        self._deliver(routing.after_close(db.session, conversation,
                                          include_ip=not current_app.config.get("TRACKING_TRUNCATE_IP", True)))
        return {"closed": conversation.id}

    def on_page_view(self, data=None):  # noqa: ANN001, ANN201
        visitor_id = self._visitor_id()
        view = tracking.record_page_view(db.session, visitor_id, data)
        request.environ[PAGE_VIEW_KEY] = view.id  # this tab's page: its heartbeats credit it
        payload = tracking.visitor_payload(db.session.get(chat.Visitor, visitor_id),
                                           include_ip=not current_app.config.get("TRACKING_TRUNCATE_IP", True))
        deliver([routing.Emit("visitor_update", payload, site_agents_room(request.environ[SITE_KEY]), "/agent")])
        self._after_tracking(view.id)
        return {"page_view_id": view.id}

    def on_heartbeat(self, data=None):  # noqa: ANN001, ANN201
        named = tracking.check_heartbeat(data)  # a page of this visitor's (checked by heartbeat)
        view = tracking.heartbeat(db.session, self._visitor_id(), named or request.environ.get(PAGE_VIEW_KEY))
        if view is not None:
            request.environ[PAGE_VIEW_KEY] = view.id
            self._after_tracking(view.id)
        return {"page_view_id": view.id if view else None, "seconds": view.seconds if view else 0}

    def on_handoff(self, data=None):  # noqa: ANN001, ANN201, ARG002
        """转人工: the visitor asks for a person instead of the bot; the chat stays where it is (in
        the queue), the bot stops answering in it, and the site's agents hear of the chat again."""
        visitor = db.session.get(chat.Visitor, self._visitor_id())
        online = presence.site_online(db.session, visitor.site, utcnow(), current_app.config.get("TZ_DISPLAY", "UTC"))
        line = chat_faq.request_agent(db.session, visitor.id, online)
        conversation = chat.open_conversation(db.session, visitor)
        if line is not None:
            deliver(routing.message_emits(conversation, line)
                    + [routing.Emit("chat_request", {"conversation_id": conversation.id},
                                    site_agents_room(conversation.site_id), "/agent")])
        return {"conversation_id": conversation.id, "online": online}
