"""PDF downloads: statements, vouchers, ledgers, the 小企业会计准则 statements and chat transcripts.

``GET /reports/<document>.pdf?client_id=&period=YYYY-MM`` (or ``from=``/``to=``; the
detail ledger also ``account_code=``), ``GET /reports/tax-worksheet.pdf?client_id=&period=``
(``YYYY-MM`` or ``YYYY-Qn``) and ``GET /reports/transcript/<conversation_id>.pdf``.
Browser session or JWT bearer token. Answers:

- 200 with the PDF (``Content-Disposition: attachment``) for a small document, or from the
  cache for a closed period (``X-Report-Cache: hit``);
- 202 for a document with more rows than ``REPORTS_SYNC_MAX_ROWS``: JSON ``{job_id, job_url}``
  (``Location`` is the job URL) — or, for a browser that asked for HTML, a page with a progress
  bar that polls the job and offers the download;
- 503 (``Retry-After``) when no report worker could render a small document in time;
- 400 for a bad parameter (``{"message": {field: [text]}}``), 404 for an unknown document,
  a client outside the user's scope (an accountant sees their own clients only) or a
  conversation the user may not read (``chat_inbox.transcript_access``: supervisors, and agents who
  took part in it or serve its site; internal notes only for supervisors and its owner or invitees);
- 401 / 403 from the permission check.

``GET /reports/jobs/<job_id>`` → the job's JSON (its owner only), ``…/file`` → the PDF.
"""

from __future__ import annotations

import json
import unicodedata
from urllib.parse import quote

from flask import Flask, Response, current_app, g, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from markupsafe import Markup

from app.errors import api_safe as safe
from app.extensions import db
from app.permissions import current_user_id
from app.security import SUPERVISE
from app.services import chat_inbox
from app.services.accounting import parse_period
from app.services.errors import DomainError, ValidationFailed
from app.services.inputs import parse_id
from app.views.current_client import client_param
from app.views.ledger_reports import month_range
from app.workers import WorkerError
from reports import documents, jobs
from reports.render import Document, env, render_html

MAX_MONTHS = 120
def _user_name() -> str:
    return documents.person(current_app.appbuilder.sm.current_user)


def _client_id(args) -> int:  # noqa: ANN001
    return client_param(args.get("client_id"))


def _voucher_id(args) -> int | None:  # noqa: ANN001
    """``voucher_id``, optional: one voucher of the ``vouchers`` document (a whole number)."""
    raw = (args.get("voucher_id") or "").strip()
    if not raw:
        return None
    voucher_id = parse_id(raw)
    if voucher_id is None:
        raise ValidationFailed({"voucher_id": [str(_l("The voucher id is a whole number."))]})
    return voucher_id


def _months(args) -> tuple[int, int]:  # noqa: ANN001
    """``period=YYYY-MM`` or ``from=YYYY-MM&to=YYYY-MM`` as ``YYYYMM`` integers."""
    start, end = month_range(args)  # the same rule as the report screens and the JSON reports
    ranged = bool((args.get("from") or "").strip())
    first, last = parse_period(start, "from" if ranged else "period"), parse_period(end, "to" if ranged else "period")
    if last < first:
        raise ValidationFailed({"to": [str(_l("The end of the range is before its start."))]})
    if (last // 100 - first // 100) * 12 + last % 100 - first % 100 >= MAX_MONTHS:
        raise ValidationFailed({"to": [str(_l("A range covers at most %(n)d months.", n=MAX_MONTHS))]})
    return first, last


def attachment(filename: str) -> str:
    """``Content-Disposition`` for a download named *filename*: plain when it is ASCII, else an
    ASCII fallback and the UTF-8 name (RFC 6266); headers cannot carry other text as is."""
    plain = filename.replace("\\", "_").replace('"', "_")
    if plain.isascii():
        return f'attachment; filename="{plain}"'
    fallback = unicodedata.normalize("NFKD", plain).encode("ascii", "ignore").decode("ascii") or "report.pdf"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _pdf(data: bytes, filename: str, cache: str) -> Response:
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = attachment(filename)
    response.headers["X-Report-Cache"] = cache
    return response


def _weight(document: Document) -> int:
    """Rows the renderer lays out (a voucher counts its lines plus its header and signatures)."""
    if document.kind == "vouchers":
        return sum(len(sheet.voucher.lines) + 5 for sheet in document.rows)
    return len(document.rows)


def _wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]


class ReportPdfApi(BaseApi):
    """PDF documents for download; large ones render as background jobs."""
    permission_label = lazy_pgettext("view menu", "PDF reports")  # on the role screens

    route_base = "/reports"
    resource_name = "reports_pdf"
    allow_browser_login = True
    openapi_spec_tag = "PDF reports"

    def _error(self, exc: DomainError) -> Response:
        db.session.rollback()
        status = 400 if isinstance(exc, ValidationFailed) else exc.status_code
        return self.response(status, message=exc.errors)

    def _deliver(self, document: Document) -> Response:
        if _weight(document) > documents.sync_limit():
            size = documents.chunk_rows()
            if document.kind == "vouchers":
                size = max(1, size // 8)
            job_id = jobs.start(document, current_user_id(), size)
            return self._accepted(job_id, document)
        html, style = render_html(document), document.style()
        db.session.rollback()  # everything is read: no transaction (nor pooled connection) while a worker renders
        try:
            data = jobs.render(html, style)
        except WorkerError as exc:
            self.log_worker_error(exc)
            response = self.response(503, message={"_": [str(_l(
                "The PDF could not be made right now: the report workers are busy or stopped. Try again shortly."))]})
            response.headers["Retry-After"] = "10"
            return response
        if document.cache_key:
            jobs.keep(document.cache_key, data)
        return _pdf(data, document.filename, "miss" if document.cache_key else "off")

    @staticmethod
    def log_worker_error(exc: WorkerError) -> None:
        current_app.logger.warning("PDF not rendered: %s: %s", type(exc).__name__, exc)

    def _accepted(self, job_id: str, document: Document) -> Response:
        job_url = url_for("ReportPdfApi.job", job_id=job_id)
        if _wants_html():
            page = env().get_template("job.html").render(
                title=document.title, subtitle=f"{document.client_name} {document.subtitle}", job_url=job_url,
                nonce=g.get("csp_nonce", ""), texts=Markup(json.dumps({  # noqa: S704 - JSON of our own strings
                    "done": _("Ready."), "failed": _("The document could not be rendered."),
                    "pages": _("%(n)s pages done", n="{n}"),
                    "pages_of": _("%(n)s of %(total)s pages done", n="{n}", total="{total}"),
                    "download": _("Download the PDF")},
                    ensure_ascii=False).replace("</", "<\\/")))
            response = Response(page, status=202, mimetype="text/html")
        else:
            response = self.response(202, job_id=job_id, job_url=job_url, status="queued")
        response.headers["Location"] = job_url
        return response

    @expose("/<document>.pdf", methods=["GET"])
    @protect()
    @safe
    @permission_name("download")
    def document(self, document: str):  # noqa: ANN201
        """A PDF document of one client
        ---
        get:
          parameters:
          - {in: path, name: document, required: true, schema: {type: string,
             enum: [statement, vouchers, trial-balance, general-ledger, detail-ledger, balance-sheet,
                    income-statement]}}
          - {in: query, name: client_id, required: true, schema: {type: integer}}
          - {in: query, name: period, schema: {type: string, example: "2026-03"}}
          - {in: query, name: from, schema: {type: string}}
          - {in: query, name: to, schema: {type: string}}
          - {in: query, name: account_code, schema: {type: string}}
          - {in: query, name: voucher_id, schema: {type: integer}, description: "vouchers: only this voucher"}
          responses:
            200: {description: "the PDF", content: {application/pdf: {}}}
            202: {description: "rendering in the background: job_id, job_url"}
            400: {description: "a bad parameter"}
            503: {description: "the report workers are busy or stopped; try again"}
            404: {$ref: '#/components/responses/404'}
        """
        if document not in documents.DOCUMENTS:
            return self.response(404, message={"document": [str(_l("No such document."))]})
        try:
            client_id = _client_id(request.args)
            start, end = _months(request.args)
            account_code = (request.args.get("account_code") or "").strip()[:40]
            if document == "detail-ledger" and not account_code:
                raise ValidationFailed({"account_code": [str(_l("Give an account code."))]})
            voucher_id = _voucher_id(request.args) if document == "vouchers" else None
            key = None
            if document != "statement":
                first = end if document in ("balance-sheet", "income-statement") else start
                extra = account_code if document == "detail-ledger" else f"v{voucher_id}" if voucher_id else ""
                key = documents.cache_key(db.session, client_id, document, first, end, extra)
                cached = jobs.cached(key) if key else None
                if cached:
                    return _pdf(cached, f"{document}-{client_id}.pdf", "hit")
            built = documents.BUILDERS[document](db.session, client_id, start, end, _user_name(),
                                                 account_code=account_code, voucher_id=voucher_id)
            built.cache_key = key
        except DomainError as exc:
            return self._error(exc)
        return self._deliver(built)

    @expose("/tax-worksheet.pdf", methods=["GET"])
    @protect()
    @safe
    @permission_name("download")
    def tax_worksheet(self):  # noqa: ANN201
        """The tax worksheet (税费计算表) of one client and period
        ---
        get:
          parameters:
          - {in: query, name: client_id, required: true, schema: {type: integer}}
          - {in: query, name: period, required: true, schema: {type: string, example: "2026-Q1"}}
          responses:
            200: {description: "the PDF", content: {application/pdf: {}}}
            400: {description: "a bad parameter"}
            503: {description: "the report workers are busy or stopped; try again"}
            404: {$ref: '#/components/responses/404'}
        """
        try:
            client_id = _client_id(request.args)
            built = documents.tax_worksheet(db.session, client_id, request.args.get("period", ""), _user_name())
        except DomainError as exc:
            return self._error(exc)
        return self._deliver(built)

    @expose("/transcript/<int:pk>.pdf", methods=["GET"])
    @protect()
    @safe
    @permission_name("transcript")
    def transcript(self, pk: int):  # noqa: ANN201
        """The agency's copy of a chat transcript (notes marked for those who may read them, whispers left out)
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: "the PDF", content: {application/pdf: {}}}
            202: {description: "rendering in the background: job_id, job_url"}
            404: {$ref: '#/components/responses/404'}
        """
        try:  # the reader of the conversation, and its internal notes, as on the history screen
            access = chat_inbox.transcript_access(db.session, pk, current_user_id(),
                                                  current_app.appbuilder.sm.can(SUPERVISE))
            built = documents.transcript(db.session, pk, _user_name(), internal=access.internal)
        except DomainError as exc:
            return self._error(exc)
        return self._deliver(built)

    def _own_job(self, job_id: str) -> dict | None:
        if len(job_id) != 32 or not all(c in "0123456789abcdef" for c in job_id):
            return None
        record = jobs.job_state(job_id)
        if record is None or record.get("user_id") != current_user_id():
            return None
        return record

    @expose("/jobs/<job_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("job")
    def job(self, job_id: str):  # noqa: ANN201
        """A background render: status, progress and, when done, the download URL
        ---
        get:
          parameters:
          - {in: path, name: job_id, required: true, schema: {type: string}}
          responses:
            200: {description: "status (queued, running, done, failed), chunks_done, chunks_total, pages_done,
                  pages_total (when known ahead), progress (0 to 1), download_url when done"}
            404: {$ref: '#/components/responses/404'}
        """
        record = self._own_job(job_id)
        if record is None:
            return self.response(404, message={"job_id": [str(_l("No such job."))]})
        done = record.get("status") == "done"
        answer = {name: record.get(name) for name in ("status", "title", "chunks_total", "chunks_done",
                                                       "pages_done", "pages_total", "pages", "error")}
        if record.get("pages_total"):  # pages planned ahead: progress by pages
            part, total = record.get("pages_done", 0), int(record["pages_total"])
        else:
            part, total = record.get("chunks_done", 0), max(1, int(record.get("chunks_total") or 1))
        answer.update(job_id=job_id, progress=1.0 if done else round(min(part, total) / total * 0.95, 3))
        if done:
            answer["download_url"] = url_for("ReportPdfApi.job_file", job_id=job_id)
        return self.response(200, **answer)

    @expose("/jobs/<job_id>/file", methods=["GET"])
    @protect()
    @safe
    @permission_name("job")
    def job_file(self, job_id: str):  # noqa: ANN201
        """The PDF of a finished background render
        ---
        get:
          parameters:
          - {in: path, name: job_id, required: true, schema: {type: string}}
          responses:
            200: {description: "the PDF", content: {application/pdf: {}}}
            404: {$ref: '#/components/responses/404'}
        """
        record = self._own_job(job_id)
        data = jobs.job_file(job_id) if record and record.get("status") == "done" else None
        if data is None:
            return self.response(404, message={"job_id": [str(_l("No such file."))]})
        return _pdf(data, record.get("filename") or "report.pdf", "job")  # type: ignore[union-attr]


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the PDF download API (``/reports/...``)."""
    appbuilder.add_api(ReportPdfApi)
