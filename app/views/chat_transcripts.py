"""A visitor's transcript download (下载聊天记录) from the widget.

``POST /chat/transcript`` (multipart or form: ``site_key``, ``visitor_token``, ``conversation_id``?,
``language``?, ``user_id``/``user_hash``?) from an Origin the site allows, with no cookies: the
visitor proves who they are with their widget token, exactly as for a file upload
(``chat.known_visitor``: the site key, the page's Origin, blocks), and counts against their rate
(``CHAT_VISITOR_RATE``). Only their own conversations (``chat_history.visitor_conversation``), by
default the latest; the visitor's copy has no internal notes or whispers. The PDF is rendered by a
report worker, never in the server process (``reports.jobs``):

- 200 ``application/pdf`` (``Content-Disposition: attachment``) for a transcript of up to
  ``REPORTS_SYNC_MAX_ROWS`` messages;
- 202 ``{job_id, job_url}`` for a longer one, rendered as a background job; ``GET job_url``
  (``/chat/transcript/jobs/<job_id>?k=<link token>``) answers its progress and, once done,
  ``download_url`` (``…/file?k=…``). The link token is signed for that job and visitor and expires
  after a day: the visitor's lasting token never appears in an address;
- 422 a bad field, 403 not this site's page or a blocked visitor, 404 no such conversation of
  theirs, 429 too fast (or too many downloads in an hour), 503 the report workers are busy.
Every answer carries CORS headers for an Origin that some active site allows (errors included,
so that the widget can show why).
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify, request, url_for
from flask_appbuilder import AppBuilder
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import TooManyRequests

from app.extensions import csrf, db
from app.services import chat, chat_history, chat_sites
from app.services.errors import AccessDenied, NotFound, ValidationFailed
from app.services.inputs import parse_id
from app.sockets.visitor import visitor_allowed
from app.views.chat_tools_admin import _origin_of_some_site
from app.views.reports import _pdf, _weight
from app.workers import WorkerError
from reports import documents, jobs
from reports.render import render_html

bp = Blueprint("chat_transcripts", __name__, url_prefix="/chat/transcript")
JOB_ID_CHARS = frozenset("0123456789abcdef")


@bp.after_request
def _cors(response: Response) -> Response:
    """Let a page of an allowed site read the answer (the PDF's name too); never with cookies."""
    origin = _origin_of_some_site(request.headers.get("Origin"))
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Expose-Headers"] = "Content-Disposition"
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers.add("Vary", "Origin")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _conversation_id() -> int | None:
    raw = (request.form.get("conversation_id") or "").strip()
    if not raw:
        return None
    value = parse_id(raw)
    if value is None:
        raise ValidationFailed({"conversation_id": [str(_l("No such item: an id is a whole number from 1 to %(n)d.",
                                                           n=2**31 - 1))]})
    return value


def _language() -> str:
    """The widget's page language: English for ``en…``, else Chinese (as the widget's own texts)."""
    return "en" if (request.form.get("language") or "").lower().startswith("en") else "zh_CN"


def _job_url(job_id: str, visitor_id: int, file: bool = False) -> str:
    token = chat_history.job_link_token(current_app.config["SECRET_KEY"], job_id, visitor_id)
    return url_for("chat_transcripts.job_file" if file else "chat_transcripts.job", job_id=job_id, k=token)


@bp.route("", methods=["POST", "OPTIONS"])
def download() -> Response:
    """The visitor's transcript as a PDF (see the module docstring)."""
    if request.method == "OPTIONS":
        return Response(status=204)
    visitor = chat.known_visitor(db.session, secret_key=current_app.config["SECRET_KEY"],
                                 site_key=request.form.get("site_key"), origin=request.headers.get("Origin"),
                                 token=request.form.get("visitor_token"), ip=request.remote_addr)
    if not visitor_allowed(visitor.site_id, visitor.uid):  # counts like a socket event against the visitor's rate
        raise TooManyRequests()
    verified = chat_sites.verify_identity(visitor.site, request.form.get("user_id") or None,
                                          request.form.get("user_hash"))
    conversation = chat_history.visitor_conversation(db.session, visitor, _conversation_id(), verified)
    chat_history.check_download_allowed(db.session, visitor)
    visitor_id, conversation_id = visitor.id, conversation.id
    author = visitor.name or str(_l("Visitor"))
    with force_locale(_language()):
        document = documents.transcript(db.session, conversation_id, author, visitor_copy=True)
        if _weight(document) > documents.sync_limit():
            job_id = jobs.start(document, None, documents.chunk_rows())
            chat_history.record_download(db.session, visitor, conversation, request.remote_addr)
            job_url = _job_url(job_id, visitor_id)
            response = jsonify(job_id=job_id, job_url=job_url, status="queued")
            response.status_code = 202
            response.headers["Location"] = job_url
            return response
        html, style = render_html(document), document.style()
    db.session.rollback()  # everything is read: no transaction (nor pooled connection) while a worker renders
    try:
        data = jobs.render(html, style)
    except WorkerError as exc:
        current_app.logger.warning("transcript PDF not rendered: %s: %s", type(exc).__name__, exc)
        response = jsonify(message=str(_l("The PDF could not be made right now. Please try again shortly.")),
                           errors={})
        response.status_code, response.headers["Retry-After"] = 503, "10"
        return response
    visitor = db.session.get(chat.Visitor, visitor_id)
    chat_history.record_download(db.session, visitor, db.session.get(chat.Conversation, conversation_id),
                                 request.remote_addr)
    return _pdf(data, document.filename, "off")


def _job_record(job_id: str) -> tuple[dict, int]:
    """The job a visitor's link token names, and the visitor; 403 without a token, 404 otherwise."""
    token = request.args.get("k")
    if not token:
        raise AccessDenied({"_": [str(_l("You cannot use the chat."))]})
    visitor_id = chat_history.job_from_link(current_app.config["SECRET_KEY"], job_id, token) \
        if len(job_id) == 32 and set(job_id) <= JOB_ID_CHARS else None
    record = jobs.job_state(job_id) if visitor_id is not None else None
    if record is None or record.get("user_id") is not None:  # a job of a signed-in user is never a visitor's
        raise NotFound({"job_id": [str(_l("No such job."))]})
    return record, visitor_id


@bp.route("/jobs/<job_id>", methods=["GET", "OPTIONS"])
def job(job_id: str) -> Response:
    """A background transcript's progress: ``{job_id, status, progress, download_url?}``."""
    if request.method == "OPTIONS":
        return Response(status=204)
    record, visitor_id = _job_record(job_id)
    done = record.get("status") == "done"
    total = max(1, int(record.get("chunks_total") or 1))
    answer = {"job_id": job_id, "status": record.get("status"),
              "progress": 1.0 if done else round(min(record.get("chunks_done", 0), total) / total * 0.95, 3)}
    if done:
        answer["download_url"] = _job_url(job_id, visitor_id, file=True)
    return jsonify(answer)


@bp.route("/jobs/<job_id>/file", methods=["GET", "OPTIONS"])
def job_file(job_id: str) -> Response:
    """A background transcript's PDF, once done."""
    if request.method == "OPTIONS":
        return Response(status=204)
    record, _visitor_id = _job_record(job_id)
    data = jobs.job_file(job_id) if record.get("status") == "done" else None
    if data is None:
        raise NotFound({"job_id": [str(_l("No such file."))]})
    return _pdf(data, record.get("filename") or "transcript.pdf", "job")


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """The visitor's transcript routes: a plain blueprint (visitors are not signed in), exempt from
    the CSRF check (they send no cookies; the widget token proves who they are)."""
    csrf.exempt(bp)
    app.register_blueprint(bp)
