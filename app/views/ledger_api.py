"""Ledger REST API (``/api/v1/voucher/...``, ``/api/v1/period/...``) and the voucher import screen.

Thin over ``app.services.vouchers``, ``periods`` and ``voucher_import``: the services hold the
rules, these views parse the request, apply the row-level scope (an Accountant reaches only the
clients assigned to them; any other client or voucher answers 404, as an unknown one does) and
turn domain errors into ``{"message", "errors": {field: [...]}}`` with the error's status (422 bad
input, 404, 409 closed period or wrong state). Money travels as strings. JWT or browser session.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from datetime import datetime

from flask import Flask, Response, abort, current_app, flash, request, send_file
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from marshmallow import Schema, fields
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import FileStorage
from wtforms import SelectField
from wtforms.validators import DataRequired

from app.errors import api_safe as safe
from app.extensions import db
from app.models.crm import Client
from app.models.ledger import Period, PeriodStatus, Voucher, VoucherKind, VoucherState, VoucherWord
from app.permissions import client_in_scope, current_user_id, scoped_accountant_id
from app.services import books, idempotency, periods, vouchers
from app.services import voucher_import as importer
from app.services.accounting import money, parse_period, period_label
from app.services.errors import DomainError, ValidationFailed
from app.services.inputs import ascii_digits, parse_count, parse_id
from app.views.current_client import current_client
from app.views.ledger_screens_common import books_in_scope
from app.workers import WorkerError

MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000
NO_CLIENT = 0  # an id no client can have: answered like an unknown client (404)
DEFAULT_PAGE_SIZE = 25


# --- OpenAPI component schemas (documentation of the JSON shapes) ----------------------------


class VoucherLineIn(Schema):
    account_code = fields.String(required=True, metadata={"example": "1001"})
    debit = fields.String(metadata={"description": "amount as a string, blank or absent for zero",
                                    "example": "100.00"})
    credit = fields.String(metadata={"example": ""})
    memo = fields.String(allow_none=True)


class VoucherIn(Schema):
    client_id = fields.Integer(required=True, metadata={"description": "ignored by PUT unless it differs"})
    date = fields.Date(required=True)
    word = fields.String(metadata={"enum": [w.value for w in VoucherWord], "description": "default 记"})
    summary = fields.String(required=True)
    attachments = fields.Integer(metadata={"description": "number of attached documents, default 0"})
    lines = fields.List(fields.Nested(VoucherLineIn), required=True)
    version = fields.Integer(metadata={"description": "PUT: the version this edit starts from; refused with 409 "
                                                      "when the voucher changed since"})


class VersionIn(Schema):
    version = fields.Integer(metadata={"description": "the version the caller saw; refused with 409 when the "
                                                      "voucher changed since (optional)"})


class VoucherLineOut(Schema):
    line_no = fields.Integer()
    account_code = fields.String()
    account_name = fields.String()
    debit = fields.String(metadata={"example": "100.00"})
    credit = fields.String(metadata={"example": "0.00"})
    memo = fields.String(allow_none=True)


class VoucherSummaryOut(Schema):
    id = fields.Integer()
    client_id = fields.Integer()
    client_name = fields.String()
    period = fields.String(metadata={"example": "2026-01"})
    date = fields.Date()
    word = fields.String()
    number = fields.Integer()
    label = fields.String(metadata={"example": "记-1"})
    summary = fields.String()
    attachments = fields.Integer()
    total = fields.String(metadata={"example": "100.00"})
    state = fields.String(metadata={"enum": [s.value for s in VoucherState]})
    kind = fields.String(metadata={"enum": [k.value for k in VoucherKind]})
    reversal_of = fields.Integer(allow_none=True, metadata={"description": "id of the voucher it reverses"})
    maker = fields.String(allow_none=True)
    reviewer = fields.String(allow_none=True)
    poster = fields.String(allow_none=True)
    reviewed_at = fields.String(allow_none=True, metadata={"description": "UTC, ISO 8601"})
    posted_at = fields.String(allow_none=True)
    version = fields.Integer(metadata={"description": "grows on every change of the content"})
    reviewed_version = fields.Integer(allow_none=True, metadata={"description": "the version the review approved"})
    made_by_system = fields.Boolean(metadata={"description": "generated (carry-forward): no maker"})


class VoucherOut(VoucherSummaryOut):
    lines = fields.List(fields.Nested(VoucherLineOut))


class VoucherCreated(Schema):
    id = fields.Integer()
    number = fields.Integer()
    label = fields.String()
    period = fields.String()


class VoucherPage(Schema):
    count = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer()
    result = fields.List(fields.Nested(VoucherSummaryOut))


class LedgerError(Schema):
    message = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"example": {"lines[1].debit": ["Not a valid amount."]}})


class ImportRowError(Schema):
    row = fields.Integer(metadata={"description": "file row; the header is row 1, 0 is the whole file"})
    field = fields.String()
    message = fields.String()


class ImportFailedOut(Schema):
    message = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"example": {"rows[5].account_code": ["No account 9999 in these books."]}})
    rows = fields.List(fields.Nested(ImportRowError))


class ImportDone(Schema):
    imported = fields.Integer()
    vouchers = fields.List(fields.Nested(VoucherCreated))


class PeriodIn(Schema):
    client_id = fields.Integer(required=True)
    period = fields.String(required=True, metadata={"example": "2026-01"})


class PeriodOut(Schema):
    client_id = fields.Integer()
    period = fields.String()
    status = fields.String(metadata={"enum": [s.value for s in PeriodStatus]})
    carry_forward_voucher_id = fields.Integer(allow_none=True)


class ClosedPeriod(Schema):
    period = fields.String()
    status = fields.String()
    version = fields.Integer()
    closed_at = fields.String(allow_none=True)
    closed_by = fields.String(allow_none=True)


class PeriodList(Schema):
    client_id = fields.Integer()
    start_period = fields.String()
    latest_closed = fields.String(allow_none=True)
    result = fields.List(fields.Nested(ClosedPeriod))


SCHEMAS = (VoucherLineIn, VoucherIn, VersionIn, VoucherLineOut, VoucherSummaryOut, VoucherOut, VoucherCreated,
           VoucherPage,
           LedgerError, ImportRowError, ImportFailedOut, ImportDone, PeriodIn, PeriodOut, ClosedPeriod, PeriodList)


# --- JSON shapes ----------------------------------------------------------------------------


def _utc(value: datetime | None) -> str | None:
    return f"{value.isoformat(timespec='seconds')}Z" if value else None


def _username(user) -> str | None:  # noqa: ANN001
    return user.username if user is not None else None


def voucher_summary(voucher: Voucher) -> dict:
    """A voucher without its lines, as the API writes it."""
    return {
        "id": voucher.id, "client_id": voucher.client_id, "client_name": voucher.client.name,
        "period": period_label(voucher.period), "date": voucher.date.isoformat(), "word": voucher.word.value,
        "number": voucher.number, "label": voucher.label, "summary": voucher.summary,
        "attachments": voucher.attachments, "total": money(voucher.total), "state": voucher.state.value,
        "kind": voucher.kind.value, "reversal_of": voucher.reversal_of_id, "maker": _username(voucher.maker),
        "reviewer": _username(voucher.reviewer), "poster": _username(voucher.poster),
        "reviewed_at": _utc(voucher.reviewed_at), "posted_at": _utc(voucher.posted_at),
        "version": voucher.version, "reviewed_version": voucher.reviewed_version,
        "made_by_system": voucher.made_by_system,
    }


def voucher_json(voucher: Voucher) -> dict:
    """A voucher with its lines (amounts as strings, account code and name)."""
    data = voucher_summary(voucher)
    data["lines"] = [{"line_no": ln.line_no, "account_code": ln.account.code, "account_name": ln.account.name,
                      "debit": money(ln.debit), "credit": money(ln.credit), "memo": ln.memo}
                     for ln in voucher.lines]
    return data


def _created(voucher: Voucher) -> dict:
    return {"id": voucher.id, "number": voucher.number, "label": voucher.label,
            "period": period_label(voucher.period)}


def _client_id(value: object, errors: dict[str, list[str]]) -> int | None:
    """A client id from a body or query; a number out of range is no client (``NO_CLIENT``)."""
    client_id = parse_id(value)
    if client_id is None:
        if isinstance(value, int) and not isinstance(value, bool) or isinstance(value, str) \
                and ascii_digits(value.strip()):
            return NO_CLIENT
        errors["client_id"] = [str(_l("Give the client's id (a whole number)."))]
    return client_id


class LedgerApiBase(BaseApi):
    """Shared by the ledger APIs: JSON body parsing, scope and error shapes."""

    allow_browser_login = True
    openapi_spec_component_schemas = SCHEMAS

    def fail(self, exc: DomainError) -> Response:
        """A refused request: roll back whatever the session holds and answer with the error's status."""
        db.session.rollback()
        return self.response(exc.status_code, message=exc.message, errors=exc.errors)

    def invalid(self, errors: dict[str, list[str]]) -> Response:
        return self.fail(ValidationFailed(errors))

    def body(self) -> dict | None:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else None

    def not_an_object(self) -> Response:
        return self.invalid({"_": [str(_l("The request body must be a JSON object."))]})

    def once(self, scope: str, content: object,
             work: Callable[[Callable[[int, dict], None] | None], tuple[int, dict]],
             failed: Callable[[DomainError], Response] | None = None) -> Response:
        """Answer a POST that may carry an ``Idempotency-Key``: a retry gets the stored answer of
        the first request, with ``Idempotent-Replayed: true``. *work* gets the function that stores
        its answer inside its transaction (``None`` without a key) and returns (status, body); a
        domain error becomes ``failed(error)`` (default ``fail``)."""
        try:
            request_key = idempotency.keyed(current_user_id(), request.headers.get(idempotency.HEADER), scope,
                                            content)
            stored = idempotency.replay(db.session, request_key) if request_key is not None else None
            if stored is None:
                store = (lambda status, body: idempotency.remember(db.session, request_key, status, body)) \
                    if request_key is not None else None
                status, body = work(store)
                return self.response(status, **body)
        except idempotency.Replayed as done:
            stored = done.status, done.body
        except DomainError as exc:
            return (failed or self.fail)(exc)
        response = self.response(stored[0], **stored[1])
        response.headers["Idempotent-Replayed"] = "true"
        return response

    def expected_version(self) -> int | None:
        """The ``version`` of an optional JSON body; raises ``ValidationFailed``."""
        data = json_object_body() if request.get_data() else {}
        return vouchers.parse_version(data.get("version"))


def json_object_body() -> dict:
    """The request's JSON body, which must be an object; raises ``ValidationFailed``."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed({"_": [str(_l("The request body must be a JSON object."))]})
    return data


class VoucherApi(LedgerApiBase):
    """Vouchers (记账凭证): entry, list, review (审核), posting (记账), reversal (红字冲销), import."""
    permission_label = _l("Vouchers")  # on the role screens

    resource_name = "voucher"
    openapi_spec_tag = "Vouchers"

    def _voucher(self, pk: int) -> Voucher | None:
        voucher = db.session.get(Voucher, pk)
        if voucher is None or not client_in_scope(voucher.client_id):
            return None
        return voucher

    @expose("/_info", methods=["GET"])
    @protect()
    @safe
    @permission_name("info")
    def info(self) -> Response:
        """What the current user may do with vouchers, and the allowed words, states and kinds
        ---
        get:
          responses:
            200:
              description: "permissions (e.g. can_review), words, states, kinds"
            401: {$ref: '#/components/responses/401'}
        """
        sm = self.appbuilder.sm
        allowed = sorted(p for p in self.base_permissions if sm.has_access(p, self.class_permission_name))
        return self.response(200, permissions=allowed, words=[w.value for w in VoucherWord],
                             states=[s.value for s in VoucherState], kinds=[k.value for k in VoucherKind])

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get_list(self) -> Response:
        """List vouchers (without lines), filtered and paged
        ---
        get:
          parameters:
          - {in: query, name: client_id, schema: {type: integer}}
          - {in: query, name: period, schema: {type: string, example: "2026-01"}}
          - {in: query, name: word, schema: {type: string, enum: ["记", "收", "付", "转"]}}
          - {in: query, name: state, schema: {type: string, enum: [draft, reviewed, posted]}}
          - {in: query, name: page, description: "from 0", schema: {type: integer, default: 0}}
          - {in: query, name: page_size, schema: {type: integer, default: 25, maximum: 100}}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/VoucherPage'}
            404: {$ref: '#/components/responses/404'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        args, errors = request.args, {}
        stmt = select(Voucher)
        if args.get("client_id"):
            client_id = _client_id(args["client_id"], errors)
            if client_id is not None:
                if not client_in_scope(client_id):
                    return self.response_404()
                stmt = stmt.where(Voucher.client_id == client_id)
        scope = scoped_accountant_id()
        if scope is not None:
            stmt = stmt.where(Voucher.client_id.in_(select(Client.id).where(Client.accountant_id == scope)))
        try:
            if args.get("period"):
                stmt = stmt.where(Voucher.period == parse_period(args["period"]))
        except ValidationFailed as exc:
            errors.update(exc.errors)
        try:
            if args.get("word"):
                stmt = stmt.where(Voucher.word == vouchers.parse_word(args["word"]))
        except ValidationFailed as exc:
            errors.update(exc.errors)
        if args.get("state"):
            if args["state"] not in {s.value for s in VoucherState}:
                errors["state"] = [str(_l("The state is one of draft, reviewed, posted."))]
            else:
                stmt = stmt.where(Voucher.state == VoucherState(args["state"]))
        page_no = parse_count(args.get("page"), 0, MAX_PAGE)
        size = parse_count(args.get("page_size"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if page_no is None:
            errors["page"] = [str(_l("The page is a whole number from 0 to %(n)d.", n=MAX_PAGE))]
        if not size:
            errors["page_size"] = [str(_l("The page size is a whole number from 1 to %(n)d.", n=MAX_PAGE_SIZE))]
        if errors:
            return self.invalid(errors)
        count = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = db.session.scalars(
            stmt.options(selectinload(Voucher.client), selectinload(Voucher.maker), selectinload(Voucher.reviewer),
                         selectinload(Voucher.poster))
            .order_by(Voucher.client_id, Voucher.period, Voucher.word, Voucher.number)
            .offset(page_no * size).limit(size))
        return self.response(200, count=count, page=page_no, page_size=size,
                             result=[voucher_summary(v) for v in rows])

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self, pk: int) -> Response:
        """One voucher with its lines
        ---
        get:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/VoucherOut'}
            404: {$ref: '#/components/responses/404'}
        """
        voucher = self._voucher(pk)
        if voucher is None:
            return self.response_404()
        return self.response(200, **voucher_json(voucher))

    @expose("/", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def post(self) -> Response:
        """Create a draft voucher; it gets the next number of its period and word
        ---
        post:
          parameters:
          - {in: header, name: Idempotency-Key, required: false, schema: {type: string, maxLength: 255},
             description: "a retry with the same key returns the first answer (header Idempotent-Replayed: true) and
               creates nothing; the same key with another request is refused with 422"}
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/VoucherIn'}
          responses:
            201:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/VoucherCreated'}
            404: {$ref: '#/components/responses/404'}
            409:
              description: "the period is closed"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
            422:
              description: "bad input; errors name the field, e.g. lines[1].debit"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        data = self.body()
        if data is None:
            return self.not_an_object()
        errors: dict[str, list[str]] = {}
        client_id = _client_id(data.get("client_id"), errors)
        if errors:
            return self.invalid(errors)
        if not client_in_scope(client_id):
            return self.response_404()

        def create(store: Callable[[int, dict], None] | None) -> tuple[int, dict]:
            voucher = vouchers.save_voucher(db.session, client_id, data, current_user_id(), before_commit=(
                (lambda saved: store(201, _created(saved))) if store else None))
            return 201, _created(voucher)

        return self.once("voucher.create", data, create)

    @expose("/<int:pk>", methods=["PUT"])
    @protect()
    @safe
    @permission_name("put")
    def put(self, pk: int) -> Response:
        """Replace a draft voucher (header and lines)
        ---
        put:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/VoucherIn'}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/VoucherOut'}
            404: {$ref: '#/components/responses/404'}
            409:
              description: "not a draft, generated, or the period is closed"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        voucher = self._voucher(pk)
        if voucher is None:
            return self.response_404()
        data = self.body()
        if data is None:
            return self.not_an_object()
        if "client_id" in data and data["client_id"] != voucher.client_id:
            return self.invalid({"client_id": [str(_l("A voucher cannot move to another client."))]})
        voucher = vouchers.save_voucher(db.session, voucher.client_id, data, current_user_id(), voucher_id=pk)
        return self.response(200, **voucher_json(voucher))

    @expose("/<int:pk>", methods=["DELETE"])
    @protect()
    @safe
    @permission_name("delete")
    def delete(self, pk: int) -> Response:
        """Delete a draft voucher (its number becomes a gap)
        ---
        delete:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema: {$ref: '#/components/schemas/VersionIn'}
          responses:
            200: {description: "deleted"}
            404: {$ref: '#/components/responses/404'}
            409:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        if self._voucher(pk) is None:
            return self.response_404()
        vouchers.delete_voucher(db.session, pk, self.expected_version())
        return self.response(200, message="OK")

    def _transition(self, pk: int, action, status: int = 200) -> Response:  # noqa: ANN001
        """Run ``action(voucher, expected_version)`` on a voucher in scope; the version comes from
        the optional JSON body ``{"version": n}``."""
        voucher = self._voucher(pk)
        if voucher is None:
            return self.response_404()
        result = action(voucher, self.expected_version())
        return self.response(status, **voucher_json(result))

    @expose("/<int:pk>/review", methods=["POST"])
    @protect()
    @safe
    @permission_name("review")
    def review(self, pk: int) -> Response:
        """审核: draft → reviewed; the reviewer must not be the maker
        ---
        post:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema: {$ref: '#/components/schemas/VersionIn'}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/VoucherOut'}
            404: {$ref: '#/components/responses/404'}
            409:
              description: "not a draft, own voucher, or the period is closed"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        return self._transition(pk, lambda v, version: vouchers.review_voucher(
            db.session, v.id, current_user_id(), version))

    @expose("/<int:pk>/unreview", methods=["POST"])
    @protect()
    @safe
    @permission_name("unreview")
    def unreview(self, pk: int) -> Response:
        """反审核: reviewed → draft (until posted)
        ---
        post:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema: {$ref: '#/components/schemas/VersionIn'}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/VoucherOut'}
            404: {$ref: '#/components/responses/404'}
            409:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        return self._transition(pk, lambda v, version: vouchers.unreview_voucher(
            db.session, v.id, current_user_id(), version))

    @expose("/<int:pk>/post", methods=["POST"])
    @protect()
    @safe
    @permission_name("post_voucher")
    def post_voucher(self, pk: int) -> Response:
        """记账: reviewed → posted
        ---
        post:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema: {$ref: '#/components/schemas/VersionIn'}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/VoucherOut'}
            404: {$ref: '#/components/responses/404'}
            409:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        return self._transition(pk, lambda v, version: vouchers.post_voucher(
            db.session, v.id, current_user_id(), version))

    @expose("/<int:pk>/reverse", methods=["POST"])
    @protect()
    @safe
    @permission_name("reverse")
    def reverse(self, pk: int) -> Response:
        """红字冲销: a new draft with the posted voucher's amounts negated
        ---
        post:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    date: {type: string, format: date, description: "default: the original's date"}
          responses:
            201:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/VoucherOut'}
            404: {$ref: '#/components/responses/404'}
            409:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        data = self.body() if request.get_data() else {}
        if data is None:
            return self.not_an_object()
        return self._transition(pk, lambda v, _version: vouchers.reverse_voucher(
            db.session, v.id, current_user_id(), data.get("date")), status=201)

    @expose("/import", methods=["POST"])
    @protect()
    @safe
    @permission_name("import")
    def import_vouchers(self) -> Response:
        """Import draft vouchers from a CSV or XLSX file, all or nothing
        ---
        post:
          parameters:
          - {in: header, name: Idempotency-Key, required: false, schema: {type: string, maxLength: 255},
             description: "a retry with the same key returns the first answer (header Idempotent-Replayed: true) and
               creates nothing; the same key with another request is refused with 422"}
          requestBody:
            required: true
            content:
              multipart/form-data:
                schema:
                  type: object
                  properties:
                    client_id: {type: integer}
                    file: {type: string, format: binary}
          responses:
            201:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/ImportDone'}
            404: {$ref: '#/components/responses/404'}
            413:
              description: "the file (or the workbook once unpacked) is over its size limit; nothing was imported"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/ImportFailedOut'}
            503: {description: "no import worker could read the file right now; try again"}
            422:
              description: "every problem by file row; nothing was imported"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/ImportFailedOut'}
        """
        errors: list[importer.RowError] = []
        problems: dict[str, list[str]] = {}
        client_id = _client_id(request.form.get("client_id", ""), problems)
        errors += [importer.RowError(0, name, msgs[0]) for name, msgs in problems.items()]
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            errors.append(importer.RowError(0, "file", str(_l("Choose a file to import."))))
        if errors:
            return self._import_failed(errors)
        if not client_in_scope(client_id):
            return self.response_404()
        filename, data, limits = _read_upload(upload)
        content = {"client_id": client_id, "filename": filename,
                   "file_sha256": hashlib.sha256(data).hexdigest()}

        def imported(store: Callable[[int, dict], None] | None) -> tuple[int, dict]:
            def answer(saved: list[Voucher]) -> dict:
                return {"imported": len(saved), "vouchers": [_created(v) for v in saved]}

            saved = _import_upload(client_id, filename, data, limits, before_commit=(
                (lambda saved: store(201, answer(saved))) if store else None))
            return 201, answer(saved)

        def failed(exc: DomainError) -> Response:
            if isinstance(exc, importer.ImportFailed):
                return self._import_failed(exc.rows, exc.status_code)
            return self.fail(exc)

        try:
            return self.once("voucher.import", content, imported, failed)
        except WorkerError:
            return self._import_failed([importer.RowError(0, "file", str(_BUSY))], 503)

    def _import_failed(self, rows: list[importer.RowError], status: int = 422) -> Response:
        """The refusal in the API's one shape (``errors`` by ``rows[<file row>].<field>``, or by the
        field alone for the request as a whole), with the same problems as a list under ``rows``."""
        db.session.rollback()
        errors: dict[str, list[str]] = {}
        for error in rows:  # row 0 is the request as a whole: its fields are named plainly
            key = error.field if error.row == 0 else f"rows[{error.row}].{error.field}"
            errors.setdefault(key, []).append(error.message)
        return self.response(status, message="; ".join(str(e) for e in rows), errors=errors,
                             rows=[e.as_dict() for e in rows])


class PeriodApi(LedgerApiBase):
    """Periods: close (结账), reopen (反结账, Manager and Admin only), list the closed months."""
    permission_label = _l("Periods")  # on the role screens

    resource_name = "period"
    openapi_spec_tag = "Periods"

    def _request(self) -> tuple[int | None, object, Response | None]:
        data = self.body()
        if data is None:
            return None, None, self.not_an_object()
        errors: dict[str, list[str]] = {}
        client_id = _client_id(data.get("client_id"), errors)
        if "period" not in data:
            errors["period"] = [str(_l("A period is written YYYY-MM, for example 2026-03."))]
        if errors:
            return None, None, self.invalid(errors)
        if not client_in_scope(client_id):
            return None, None, self.response_404()
        return client_id, data["period"], None

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get_list(self) -> Response:
        """The closed months of a client's books
        ---
        get:
          parameters:
          - {in: query, name: client_id, required: true, schema: {type: integer}}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/PeriodList'}
            404: {$ref: '#/components/responses/404'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        errors: dict[str, list[str]] = {}
        client_id = _client_id(request.args.get("client_id", ""), errors)
        if errors:
            return self.invalid(errors)
        if not client_in_scope(client_id):
            return self.response_404()
        book = books.get_book(db.session, client_id)
        from flask_appbuilder.security.sqla.models import User

        rows = db.session.execute(
            select(Period, User.username).outerjoin(User, User.id == Period.closed_by_id)
            .where(Period.book_id == book.id, Period.status == PeriodStatus.closed).order_by(Period.period)).all()
        latest = periods.latest_closed(db.session, book.id)
        return self.response(200, client_id=client_id, start_period=period_label(book.start_period),
                             latest_closed=period_label(latest) if latest else None,
                             result=[{"period": period_label(p.period), "status": p.status.value,
                                      "version": p.version, "closed_at": _utc(p.closed_at), "closed_by": who}
                                     for p, who in rows])

    @expose("/close", methods=["POST"])
    @protect()
    @safe
    @permission_name("close")
    def close(self) -> Response:
        """结账: close a month (posts the profit-and-loss carry-forward voucher)
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/PeriodIn'}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/PeriodOut'}
            404: {$ref: '#/components/responses/404'}
            409:
              description: "already closed, or errors.period lists every unmet precondition"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        client_id, period, failed = self._request()
        if failed is not None:
            return failed
        result = periods.close_period(db.session, client_id, period, current_user_id())
        return self.response(200, client_id=client_id, period=period_label(result.period),
                             status=PeriodStatus.closed.value,
                             carry_forward_voucher_id=result.carry_forward.id if result.carry_forward else None)

    @expose("/reopen", methods=["POST"])
    @protect()
    @safe
    @permission_name("reopen")
    def reopen(self) -> Response:
        """反结账: reopen the latest closed month (deletes its carry-forward voucher)
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/PeriodIn'}
          responses:
            200:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/PeriodOut'}
            403: {$ref: '#/components/responses/403'}
            404: {$ref: '#/components/responses/404'}
            409:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
            422:
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/LedgerError'}
        """
        client_id, period, failed = self._request()
        if failed is not None:
            return failed
        month = periods.reopen_period(db.session, client_id, period, current_user_id())
        return self.response(200, client_id=client_id, period=period_label(month), status=PeriodStatus.open.value,
                             carry_forward_voucher_id=None)


# --- the import screen ----------------------------------------------------------------------

_BUSY = _l("The file could not be read right now: the import workers are busy or stopped. Try again shortly.")


def _import_upload(client_id: int, filename: str, data: bytes, limits: importer.Limits,
                   before_commit: Callable[[list[Voucher]], None] | None = None) -> list[Voucher]:
    """End the request's transaction while a worker parses the file (read up to the byte limit
    and one byte more), then validate and save in one transaction. Raises what
    ``voucher_import.read_rows`` and ``import_rows`` raise."""
    db.session.rollback()  # nothing held while the worker reads the file
    rows = importer.read_rows(filename, data, limits)
    return importer.import_rows(db.session, client_id, rows, current_user_id(), before_commit)


def _read_upload(upload: FileStorage) -> tuple[str, bytes, importer.Limits]:
    limits = importer.Limits.from_config(current_app.config)
    return upload.filename or "", upload.read(limits.max_bytes + 1), limits



class VoucherImportForm(FlaskForm):
    client_id = SelectField(_l("Client"), coerce=int, validators=[DataRequired()])
    file = FileField(_l("File (.csv or .xlsx)"), validators=[FileRequired()])


class VoucherImportView(BaseView):
    """凭证导入: upload a CSV or XLSX file of voucher lines for a client in scope."""

    route_base = "/voucherimport"
    default_view = "index"

    @expose("/", methods=["GET", "POST"])
    @has_access
    @permission_name("import")
    def index(self) -> tuple[str, int]:
        form = VoucherImportForm()
        form.client_id.choices = books_in_scope()
        if request.method == "GET":
            form.client_id.data = current_client()  # the current set of books (当前账套), if any
        errors: list[importer.RowError] = []
        imported: list[Voucher] = []
        status = 200
        if form.validate_on_submit():
            try:
                imported = _import_upload(form.client_id.data, *_read_upload(form.file.data))
                flash(str(_l("%(n)d vouchers imported.", n=len(imported))), "success")
            except importer.ImportFailed as exc:
                db.session.rollback()
                errors, status = exc.rows, exc.status_code
                flash(str(_l("Nothing was imported: the file has %(n)d problem(s).", n=len(errors))), "danger")
            except DomainError as exc:
                db.session.rollback()
                status = exc.status_code
                flash(exc.message, "danger")
            except WorkerError:
                status = 503
                flash(str(_BUSY), "danger")
        limits = importer.Limits.from_config(current_app.config)
        page = self.render_template("voucher_import.html", form=form, title=_l("Import vouchers"),
                                    errors=errors, imported=imported, max_kb=limits.max_bytes // 1024,
                                    max_rows=limits.max_rows, columns=importer.TEMPLATE_HEADER)
        return page, status

    @expose("/template", methods=["GET"])
    @has_access
    @permission_name("import")
    def template(self) -> Response:
        kind = request.args.get("format", "csv")
        if kind not in importer.FORMATS:
            abort(404)
        mimetype = "text/csv" if kind == "csv" else \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return send_file(io.BytesIO(importer.template(kind)), mimetype=mimetype, as_attachment=True,
                         download_name=f"voucher_import_template.{kind}")


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the voucher and period APIs and the import screen (menu "Ledger")."""
    appbuilder.add_api(VoucherApi)
    appbuilder.add_api(PeriodApi)
    appbuilder.add_view(VoucherImportView, "Import vouchers", label=_l("Import vouchers"), icon="fa-upload",
                        category="Ledger", category_label=_l("Ledger"), category_icon="fa-book")
