"""``/agent`` events from visitor to client (访客转客户), mixed into ``AgentNamespace``. Thin: check the
permission, call app/services/chat_crm.py, emit.

Events in: ``lead_create {visitor_id, conversation_id?, name, company?, phone?, email?, question?}``
(ack ``{created, lead}``), ``client_search {q}`` (ack ``{results: [{id, name, credit_code}]}``),
``contact_attach {visitor_id, client_id, name, position?, phone?, email?}`` (ack ``{contact_id,
client_id, client_name, visitor_id}``), ``statement_send {conversation_id}`` (ack ``{message}``, or
``{job_id, status: "rendering"}`` for a statement long enough to be a background job).
Events out: ``message`` (the statement, to the conversation's agents and its visitor), and for a
background statement that failed, ``error {event: "statement_send", …}`` to the user's consoles.

The statement is rendered by the report workers (``reports.jobs``), never on the socket hub: a
short one while the handler waits for its worker (with no database transaction open), a long
one as a background job whose end a background task waits for.
"""

from __future__ import annotations

import logging
from datetime import date

from flask import current_app, g
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.extensions import db, socketio
from app.models.chat import ChatMessage, Conversation
from app.permissions import chat_client_scope, may_download_statement
from app.security import CONTACTS_FROM_CHAT, LEADS_FROM_CHAT, SUPERVISE
from app.services import audit, chat, chat_console, chat_crm, leads
from app.services.accounting import period_label
from app.services.errors import AccessDenied, DomainError
from app.sockets.guard import refusal
from app.sockets.rooms import conversation_room, user_room, visitor_room
from app.workers import WorkerError

log = logging.getLogger(__name__)
JOB_POLL_SECONDS = 1.0
RENDER_RETRY_SECONDS = 10


def _as_user() -> None:
    """FAB's permission checks read ``g.user``, which a socket event's context lacks until set
    (as the page's request would set it)."""
    if g.get("user") is None:
        g.user = current_user._get_current_object()


def _require(permission: tuple[str, str], message: object) -> None:
    _as_user()
    if not current_app.appbuilder.sm.can(permission):
        raise AccessDenied({"_": [str(message)]})


def _viewer() -> chat_console.Viewer:
    return chat_console.viewer(db.session, current_user.id, bool(current_app.appbuilder.sm.can(SUPERVISE)))


def fan_out(message: ChatMessage) -> dict:
    """Send a stored message to the conversation's agents and its visitor; return its payload."""
    payload = chat.message_payload(message)
    conversation = db.session.get(Conversation, message.conversation_id)
    socketio.emit("message", payload, to=conversation_room(conversation.id), namespace="/agent")
    socketio.emit("message", payload, to=visitor_room(conversation.visitor_id), namespace="/visitor")
    return payload


def statement_filename(client_name: str, start: int, end: int) -> str:
    """``客户对账单-上海明远商贸有限公司-2026-01-2026-05.pdf``: what the visitor sees and downloads."""
    from reports.documents import TITLES

    name = client_name.replace("/", "_").replace("\\", "_")
    return f"{TITLES['statement']}-{name}-{period_label(start)}-{period_label(end)}.pdf"


class CrmEvents:
    """Handlers ``on_<event>`` for the visitor card's actions (see docs/socket-protocol.md)."""

    def on_lead_create(self, data=None):  # noqa: ANN001, ANN201
        """A lead of the visitor (one per visitor: the existing one comes back, ``created`` false)."""
        data = data if isinstance(data, dict) else {}
        _require(LEADS_FROM_CHAT, _l("You may not create leads."))
        lead, created = chat_crm.create_lead(db.session, _viewer(), data.get("visitor_id"), data,
                                             data.get("conversation_id"))
        return {"created": created, "lead": leads.lead_json(lead)}

    def on_client_search(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        _require(CONTACTS_FROM_CHAT, _l("You may not add visitors as client contacts."))
        return {"results": chat_crm.search_clients(db.session, data.get("q"), chat_client_scope())}

    def on_contact_attach(self, data=None):  # noqa: ANN001, ANN201
        data = data if isinstance(data, dict) else {}
        _require(CONTACTS_FROM_CHAT, _l("You may not add visitors as client contacts."))
        contact = chat_crm.attach_contact(db.session, _viewer(), data.get("visitor_id"), data.get("client_id"),
                                          data, chat_client_scope())
        return {"contact_id": contact.id, "client_id": contact.client_id, "client_name": contact.client.name,
                "visitor_id": data.get("visitor_id")}

    def on_statement_send(self, data=None):  # noqa: ANN001, ANN201
        """The client's latest statement into the chat, rendered by the report workers."""
        from reports import documents, jobs
        from reports.render import render_html

        data = data if isinstance(data, dict) else {}
        _as_user()
        agent = self._agent()
        conversation, client = chat_crm.statement_conversation(db.session, agent, data.get("conversation_id"))
        if not may_download_statement(client.id):
            raise AccessDenied({"_": [str(_l("Your role may not download this client's statement."))]})
        start, end = chat_crm.statement_months(date.today())
        document = documents.statement(db.session, client.id, start, end, documents.person(current_user))
        filename = statement_filename(client.name, start, end)
        target = (conversation.id, client.id, current_user.id)
        if len(document.rows) > documents.sync_limit():
            job_id = jobs.start(document, current_user.id, documents.chunk_rows())
            db.session.rollback()
            actor = audit.current_actor()
            socketio.start_background_task(_send_when_rendered, current_app._get_current_object(), job_id, target,
                                           filename, actor)
            return {"job_id": job_id, "status": "rendering"}
        html, style = render_html(document), document.style()
        db.session.rollback()  # everything is read: no transaction (nor pooled connection) while a worker renders
        try:
            pdf = jobs.render(html, style)
        except WorkerError as exc:
            log.warning("statement not rendered: %s: %s", type(exc).__name__, exc)
            return refusal("statement_send", str(_l(
                "The statement could not be made right now: the report workers are busy. Try again shortly.")),
                retry_after=RENDER_RETRY_SECONDS)
        message = chat_crm.post_statement(db.session, current_app.config["CHAT_UPLOAD_DIR"], self._agent(),
                                          target[0], target[1], filename, pdf)
        return {"message": fan_out(message)}


def _send_when_rendered(app, job_id: str, target: tuple[int, int, int], filename: str,  # noqa: ANN001
                        actor: audit.Actor) -> None:
    """A background task: wait (cooperatively) for the statement's background job, then send it
    into the chat as the agent; a failure goes to the agent's consoles as an ``error`` event."""
    from reports import jobs

    conversation_id, client_id, user_id = target
    with app.app_context(), audit.acting_as(actor):
        try:
            while True:
                state = jobs.job_state(job_id) or {"status": "failed", "error": "gone"}
                if state["status"] in ("done", "failed"):
                    break
                socketio.sleep(JOB_POLL_SECONDS)
            pdf = jobs.job_file(job_id) if state["status"] == "done" else None
            if pdf is None:
                raise DomainError(str(_l("The statement could not be made. Please try again.")))
            message = chat_crm.post_statement(db.session, app.config["CHAT_UPLOAD_DIR"],
                                              chat.agent_for_user(db.session, user_id), conversation_id, client_id,
                                              filename, pdf)
            fan_out(message)
        except DomainError as exc:
            db.session.rollback()
            socketio.emit("error", {"event": "statement_send", "message": exc.message, "errors": exc.errors},
                          to=user_room(user_id), namespace="/agent")
        except Exception:  # noqa: BLE001 - logged, and the agent hears that it failed
            db.session.rollback()
            log.exception("statement job %s was not sent into the chat", job_id)
            message = str(_l("The statement could not be made. Please try again."))
            socketio.emit("error", {"event": "statement_send", "message": message, "errors": {"_": [message]}},
                          to=user_room(user_id), namespace="/agent")
        finally:
            db.session.remove()

