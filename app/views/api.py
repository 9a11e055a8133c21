"""REST API (``/api/v1/...``): clients, contracts and document metadata.

Same validation and row-level rules as the screens: an Accountant's list holds only their
clients and any other id answers 404, and the related-field choices of ``_info`` offer them only
their own clients and, of the users, only themselves (``app.views.common.scope_choices``); a
validation error is a 422 whose message names the field; money is sent and received as strings.
Related rows are named by id only (app/views/api_related.py). A delete that other rows would stop
answers 409 naming them, and no answer ever carries the database driver's text
(app/services/integrity.py).
"""

from __future__ import annotations

from flask import current_app, request
from flask_appbuilder.api import ModelRestApi, expose, protect
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import select

from app.errors import api_safe as safe
from app.errors import refused
from app.extensions import db
from app.models.contracts import Contract
from app.models.crm import Client
from app.models.documents import Document
from app.permissions import client_in_scope, current_user_id, scoped_accountant_id, sees_sensitive
from app.services import contracts as contract_svc
from app.services import documents as document_svc
from app.services.clients import check_client_deletable, credit_code_error, id_number_error, mask
from app.services.errors import DomainError, ValidationFailed
from app.services.inputs import parse_id
from app.services.integrity import refuse_held_delete
from app.services.tax_profile import check_taxpayer_type
from app.views.api_related import IdOnlyConverter
from app.views.clients import AccountantRoleFilter
from app.views.common import EagerInterface, desk_interface, scope_filters


def _ma(check):  # noqa: ANN001, ANN202
    """Wrap a ``str -> error | None`` rule as a marshmallow validator."""

    def validator(value) -> None:  # noqa: ANN001
        error = check(value)
        if error:
            raise ValidationError(error)

    return validator


def _money_string(value) -> None:  # noqa: ANN001
    try:
        contract_svc.parse_money(value, "monthly_fee")
    except ValidationFailed as exc:
        raise ValidationError(exc.message) from None


class DeskApi(ModelRestApi):
    """ModelRestApi that turns domain errors into 4xx with field messages and never
    writes half a request. ``money_fields`` must arrive as JSON strings."""

    allow_browser_login = True
    money_fields: tuple[str, ...] = ()
    base_filters = scope_filters()
    model2schemaconverter = IdOnlyConverter

    def __init__(self) -> None:
        self.datamodel = desk_interface(self.datamodel)
        super().__init__()

    # FAB's PUT and DELETE take any text as the id: a number no row can have would reach the
    # database (a server error) and a GET with it would answer 405. Ids are integers here.
    @expose("/<int:pk>", methods=["PUT"])
    @protect()
    @safe
    @permission_name("put")
    def put(self, pk: int):  # noqa: ANN201
        return self.put_headless(pk)

    put.__doc__ = ModelRestApi.put.__doc__

    def _handle_page_args(self, rison_args: dict):  # noqa: ANN202
        """FAB's paging of a list (``q=(page:..,page_size:..)``), refusing a page below 0 or a page
        size below 1 (422) instead of passing a negative OFFSET to the database."""
        errors = {}
        for key, low in (("page", 0), ("page_size", 1)):
            value = rison_args.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                errors[key] = [str(_l("A whole number from %(n)d.", n=low))]
        if errors:
            raise ValidationFailed(errors)
        return super()._handle_page_args(rison_args)

    def _get_field_info(self, field, filter_rel_field, page=None, page_size=None):  # noqa: ANN001, ANN202
        info = super()._get_field_info(field, filter_rel_field, page=page, page_size=page_size)
        if not self.description_columns.get(field.name):
            info["description"] = ""  # FAB asks gettext for "", which is the catalog's header
        return info

    @expose("/<int:pk>", methods=["DELETE"])
    @protect()
    @safe
    @permission_name("delete")
    def delete(self, pk: int):  # noqa: ANN201
        return self.delete_headless(pk)

    delete.__doc__ = ModelRestApi.delete.__doc__

    def _money_errors(self) -> dict[str, list[str]]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return {}
        errors: dict[str, list[str]] = {}
        for field in self.money_fields:
            if field not in body:
                continue
            if not isinstance(body[field], str):
                errors[field] = [str(_l("Amounts must be given as strings, not numbers."))]
                continue
            try:  # checked before the schema, which would round away a third decimal
                contract_svc.parse_money(body[field], field)
            except ValidationFailed as exc:
                errors.update(exc.errors)
        return errors

    def _guarded(self, call):  # noqa: ANN001, ANN202
        errors = self._money_errors()
        if errors:
            return self.response_422(message=errors)
        try:  # FAB's own methods run under FAB's @safe, which would log a refusal as a failure
            return call()
        except DomainError as exc:
            return refused(exc)

    def post_headless(self):  # noqa: ANN201
        return self._guarded(super().post_headless)

    def put_headless(self, pk):  # noqa: ANN001, ANN201
        return self._guarded(lambda: super(DeskApi, self).put_headless(pk))

    def delete_rule(self, item) -> None:  # noqa: ANN001
        """Raise a domain error when *item* may not be deleted. By default: when other rows still
        refer to it so that the database would refuse (409, the message says which)."""
        refuse_held_delete(db.session, item, str(item))

    def delete_headless(self, pk):  # noqa: ANN001, ANN201
        """FAB's delete with ``pre_delete`` and :meth:`delete_rule` before it; a refusal from them
        or, after a race, from the database is a 4xx in words and deletes nothing."""

        def delete():  # noqa: ANN202
            item = self.datamodel.get(pk, self._base_filters)
            if not item:
                return self.response_404()
            self.pre_delete(item)
            self.delete_rule(item)
            self.datamodel.delete(item)
            self.post_delete(item)
            return self.response(200, message="OK")

        return self._guarded(delete)


CLIENT_COLUMNS = ["id", "name", "credit_code", "taxpayer_type", "status", "accountant.id",
                  "accountant.username", "legal_rep_name", "legal_rep_id_number", "registered_address",
                  "office_address", "business_scope", "notes"]
CLIENT_WRITE = ["name", "credit_code", "taxpayer_type", "status", "accountant", "legal_rep_name",
                "legal_rep_id_number", "registered_address", "office_address", "business_scope", "notes"]


class ClientApi(DeskApi):
    resource_name = "client"
    datamodel = EagerInterface(Client)
    list_columns = CLIENT_COLUMNS
    show_columns = CLIENT_COLUMNS
    add_columns = CLIENT_WRITE
    edit_columns = CLIENT_WRITE
    search_columns = ["name", "credit_code", "status", "taxpayer_type", "accountant"]
    order_columns = ["name", "credit_code", "status"]
    validators_columns = {"credit_code": _ma(credit_code_error), "legal_rep_id_number": _ma(id_number_error)}
    # the same choices as the client screen's form (and, for an Accountant, only themselves)
    add_query_rel_fields = edit_query_rel_fields = {"accountant": [["id", AccountantRoleFilter, None]]}

    def _mask(self, row: dict) -> None:
        if not sees_sensitive() and row.get("legal_rep_id_number"):
            row["legal_rep_id_number"] = mask(row["legal_rep_id_number"])

    def pre_get(self, data: dict) -> None:
        self._mask(data.get("result", {}))

    def pre_get_list(self, data: dict) -> None:
        for row in data.get("result", []):
            self._mask(row)

    def _guard(self, item: Client) -> None:
        if item.credit_code:
            item.credit_code = item.credit_code.strip().upper()
        _unique(Client, "credit_code", item,
                str(_l("A client with this unified social credit code already exists.")))
        scope = scoped_accountant_id()
        if scope is not None and item.accountant_id != scope and getattr(item.accountant, "id", None) != scope:
            raise DomainError({"accountant": [str(_l("You may not assign a client to someone else."))]})
        check_taxpayer_type(db.session, item)

    pre_add = _guard
    pre_update = _guard

    def delete_rule(self, item: Client) -> None:
        check_client_deletable(db.session, item)

    @expose("/<int:pk>/balance", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def balance(self, pk: int):  # noqa: ANN201
        """A client's fees billed, payments received and balance due
        ---
        get:
          parameters:
          - in: path
            schema: {type: integer}
            name: pk
          responses:
            200: {description: "billed, paid and due as strings"}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        if not client_in_scope(pk):
            return self.response_404()
        bal = contract_svc.client_balance(db.session, pk)
        return self.response(200, client_id=pk, billed=str(bal.billed), paid=str(bal.paid), due=str(bal.due))


CONTRACT_COLUMNS = ["id", "client.id", "client.name", "number", "service_type", "monthly_fee",
                    "billing_cycle", "start_date", "end_date", "status", "notes"]
CONTRACT_WRITE = ["client", "number", "service_type", "monthly_fee", "billing_cycle", "start_date",
                  "end_date", "notes"]


class ContractApi(DeskApi):
    resource_name = "contract"
    datamodel = EagerInterface(Contract)
    money_fields = ("monthly_fee",)
    list_columns = CONTRACT_COLUMNS
    show_columns = CONTRACT_COLUMNS
    add_columns = CONTRACT_WRITE
    edit_columns = CONTRACT_WRITE
    search_columns = ["number", "client", "status", "service_type", "end_date"]
    order_columns = ["number", "start_date", "end_date", "status"]
    validators_columns = {"monthly_fee": _money_string}

    def pre_add(self, item: Contract) -> None:
        if not client_in_scope(item.client_id or getattr(item.client, "id", None)):
            raise DomainError({"client": [str(_l("No such client."))]})
        contract_svc.prepare_new_contract(db.session, item)

    def pre_update(self, item: Contract) -> None:
        contract_svc.prepare_contract_edit(db.session, item)

    def pre_delete(self, item: Contract) -> None:
        contract_svc.check_contract_deletable(item)

    @expose("/<int:pk>/transition", methods=["POST"])
    @protect()
    @safe
    @permission_name("transition")
    def transition(self, pk: int):  # noqa: ANN201
        """Move a contract through its lifecycle
        ---
        post:
          parameters:
          - in: path
            schema: {type: integer}
            name: pk
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    action: {type: string, enum: [activate, change, terminate, expire]}
                    reason: {type: string}
                    changes: {type: object}
          responses:
            200: {description: "the new status"}
            404: {$ref: '#/components/responses/404'}
            409: {description: "transition not allowed"}
            422: {$ref: '#/components/responses/422'}
        """
        contract = self.datamodel.get(pk, self._base_filters)
        if contract is None:
            return self.response_404()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message=str(_l("The request body is not a JSON object.")))
        action, reason = body.get("action"), body.get("reason")
        changes = body.get("changes") or {}
        if reason is not None and not isinstance(reason, str):
            return self.response_422(message={"reason": [str(_l("Not a valid text."))]})
        if not isinstance(changes, dict):
            return self.response_422(message={"changes": [str(_l("Not a valid object."))]})
        if "monthly_fee" in changes and not isinstance(changes["monthly_fee"], str):
            return self.response_422(
                message={"monthly_fee": [str(_l("Amounts must be given as strings, not numbers."))]})
        if action == "activate":
            contract_svc.activate_contract(db.session, contract)
        elif action == "terminate":
            contract_svc.terminate_contract(db.session, contract, reason or "")
        elif action == "expire":
            contract_svc.expire_contract(db.session, contract)
        elif action == "change":
            contract_svc.change_contract(db.session, contract, reason or "", **changes)
        else:
            raise ValidationFailed({"action": [str(_l("The action is one of activate, change, terminate, expire."))]})
        return self.response(200, id=contract.id, status=contract.status.value)

    @expose("/<int:pk>/balance", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def balance(self, pk: int):  # noqa: ANN201
        """Fees billed, payments received and balance due of one contract
        ---
        get:
          parameters:
          - in: path
            schema: {type: integer}
            name: pk
          responses:
            200: {description: "billed, paid and due as strings"}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        contract = self.datamodel.get(pk, self._base_filters)
        if contract is None:
            return self.response_404()
        bal = contract_svc.contract_balance(db.session, pk)
        return self.response(200, contract_id=pk, billed=str(bal.billed), paid=str(bal.paid), due=str(bal.due))


def _unique(model, column: str, item, message: str) -> None:  # noqa: ANN001
    """Refuse a duplicate of a unique column with a message naming the field (not a DB error)."""
    value = getattr(item, column)
    with db.session.no_autoflush:
        clash = db.session.scalar(select(model.id).where(getattr(model, column) == value, model.id != (item.id or -1)))
    if clash is not None:
        raise DomainError({column: [message]})


DOCUMENT_COLUMNS = ["id", "client.id", "client.name", "contract.id", "period", "doc_type", "title",
                    "original_filename", "content_type", "size_bytes", "sha256", "uploaded_by.username",
                    "created_at", "note"]


class DocumentApi(DeskApi):
    resource_name = "document"
    datamodel = EagerInterface(Document)
    include_route_methods = {"get", "get_list", "info", "put", "delete", "upload", "download"}
    list_columns = DOCUMENT_COLUMNS
    show_columns = DOCUMENT_COLUMNS
    edit_columns = ["title", "doc_type", "period", "note"]
    search_columns = ["client", "doc_type", "period", "title", "contract"]
    order_columns = ["created_at", "title", "period"]
    validators_columns = {"period": _ma(lambda v: None if (not v or document_svc.PERIOD_RE.match(v))
                                        else str(_l("The period must look like 2026-01.")))}

    def post_delete(self, item: Document) -> None:
        document_svc.delete_document_file(current_app.config["UPLOAD_DIR"], item)

    @expose("/upload", methods=["POST"])
    @protect()
    @safe
    @permission_name("upload")
    def upload(self):  # noqa: ANN201
        """Upload a document (multipart form: file, client_id, doc_type, title?, contract_id?, period?, note?)
        ---
        post:
          requestBody:
            content:
              multipart/form-data:
                schema:
                  type: object
                  properties:
                    file: {type: string, format: binary}
                    client_id: {type: integer}
                    doc_type: {type: string}
                    contract_id: {type: integer}
                    period: {type: string}
                    title: {type: string}
                    note: {type: string}
          responses:
            201: {description: "the new document's id"}
            422: {$ref: '#/components/responses/422'}
        """
        upload = request.files.get("file")
        if upload is None:
            return self.response_422(message={"file": [str(_l("Choose a file to upload."))]})
        form = request.form
        errors = {}
        client_id = parse_id(form.get("client_id", ""))
        if client_id is None:
            errors["client_id"] = [str(_l("Give the client's id (a whole number)."))]
        contract_id = form.get("contract_id") or None
        if contract_id is not None and parse_id(contract_id) is None:
            errors["contract_id"] = [str(_l("The contract id is a whole number."))]
        if errors:
            return self.response_422(message=errors)
        if not client_in_scope(client_id):
            return self.response_404()
        document = document_svc.store_document(
            db.session, current_app.config["UPLOAD_DIR"], current_app.config["UPLOAD_MAX_BYTES"],
            client_id=int(client_id), filename=upload.filename or "", stream=upload.stream,
            doc_type=form.get("doc_type", ""), title=form.get("title"),
            contract_id=int(contract_id) if contract_id else None, period=form.get("period") or None,
            note=form.get("note") or None, uploaded_by_id=current_user_id(),
        )
        return self.response(201, id=document.id, sha256=document.sha256)

    @expose("/<int:pk>/download", methods=["GET"])
    @protect()
    @safe
    @permission_name("download")
    def download(self, pk: int):  # noqa: ANN201
        """Download the stored file of a document
        ---
        get:
          parameters:
          - in: path
            schema: {type: integer}
            name: pk
          responses:
            200: {description: "the file"}
            404: {$ref: '#/components/responses/404'}
        """
        from app.views.documents import send_document

        document = self.datamodel.get(pk, self._base_filters)
        if document is None:
            return self.response_404()
        return send_document(document)

