"""Archive screens (档案): upload, list, permission-checked download."""

from __future__ import annotations

from flask import current_app, flash, redirect, request, send_file, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from app.extensions import db
from app.models.contracts import Contract
from app.models.crm import Client
from app.models.documents import Document, DocumentType
from app.permissions import current_user_id, scoped_accountant_id
from app.services import documents as svc
from app.services.audit import record_event
from app.services.errors import DomainError
from app.services.inputs import parse_id
from app.views.common import DeskModelView, EagerInterface, format_datetime, get_or_404, scope_filters, target_id
from app.views.labels import ENUM_LABELS, LabelledEnumField, enum_formatter


def _size(value: int | None) -> str:
    if value is None:
        return ""
    if value < 1024:
        return f"{value} B"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} KB"
    return f"{value / 1024 / 1024:.1f} MB"


class UploadForm(FlaskForm):
    client_id = SelectField(_l("Client"), coerce=int, validators=[DataRequired()])
    contract_id = SelectField(_l("Contract"), coerce=lambda v: int(v) if v else None,
                              validators=[Optional()])
    doc_type = SelectField(_l("Document type"), validators=[DataRequired()])
    period = StringField(_l("Period"), validators=[
        Optional(), Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", message=_l("The period must look like 2026-01."))])
    title = StringField(_l("Title"), validators=[Optional(), Length(max=200)])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])
    file = FileField(_l("File"), validators=[FileRequired()])


def _client_choices() -> list[tuple[int, str]]:
    stmt = select(Client.id, Client.name).order_by(Client.name)
    scope = scoped_accountant_id()
    if scope is not None:
        stmt = stmt.where(Client.accountant_id == scope)
    return [(row.id, row.name) for row in db.session.execute(stmt)]


def _contract_choices() -> list[tuple[str, str]]:
    stmt = select(Contract.id, Contract.number, Client.name).join(Client).order_by(Contract.number)
    scope = scoped_accountant_id()
    if scope is not None:
        stmt = stmt.where(Client.accountant_id == scope)
    return [("", "—")] + [(str(r.id), f"{r.number} ({r.name})") for r in db.session.execute(stmt)]


class DocumentModelView(DeskModelView):
    datamodel = EagerInterface(Document, options=(joinedload(Document.client), joinedload(Document.contract),
                                                    joinedload(Document.uploaded_by)))
    base_filters = scope_filters()
    base_order = ("created_at", "desc")
    list_columns = ["title", "client", "doc_type", "period", "contract", "size_bytes", "uploaded_by",
                    "created_at", "download"]
    show_columns = ["title", "client", "contract", "doc_type", "period", "original_filename",
                    "content_type", "size_bytes", "sha256", "uploaded_by", "created_at", "note", "download"]
    edit_columns = ["title", "doc_type", "period", "contract", "note"]
    search_columns = ["title", "client", "doc_type", "period", "contract", "uploaded_by", "created_at"]
    label_columns = {"title": _l("Title"), "client": _l("Client"), "doc_type": _l("Document type"),
                     "period": _l("Period"), "contract": _l("Contract"), "size_bytes": _l("Size"),
                     "uploaded_by": _l("Uploaded by"), "created_at": _l("Uploaded"),
                     "original_filename": _l("File name"), "content_type": _l("Content type"),
                     "sha256": "SHA-256", "note": _l("Note"), "download": _l("Download")}
    formatters_columns = {"doc_type": enum_formatter(DocumentType), "size_bytes": _size, "created_at": format_datetime}
    edit_form_extra_fields = {
        "doc_type": LabelledEnumField(DocumentType, label=_l("Document type"), validators=[DataRequired()]),
        "period": StringField(_l("Period"), validators=[Optional(), Regexp(
            r"^\d{4}-(0[1-9]|1[0-2])$", message=_l("The period must look like 2026-01."))]),
    }
    edit_form_query_rel_fields = {"contract": scope_filters()}
    list_title = _l("Archives")
    show_title = _l("Document")
    edit_title = _l("Edit document")

    def pre_update(self, item) -> None:  # noqa: ANN001
        if item.contract is not None and item.contract.client_id != target_id(item, "client"):
            raise DomainError({"contract": [str(_l("The contract does not belong to this client."))]})

    def post_delete(self, item) -> None:  # noqa: ANN001
        svc.delete_document_file(current_app.config["UPLOAD_DIR"], item)

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):  # noqa: ANN201
        form = UploadForm()
        form.client_id.choices = _client_choices()
        form.contract_id.choices = _contract_choices()
        form.doc_type.choices = [(k.value, v) for k, v in ENUM_LABELS[DocumentType].items()]
        if request.method == "GET" and parse_id(request.args.get("client_id")) is not None:
            form.client_id.data = parse_id(request.args["client_id"])
        if form.validate_on_submit():
            upload = form.file.data
            try:
                document = svc.store_document(
                    db.session, current_app.config["UPLOAD_DIR"], current_app.config["UPLOAD_MAX_BYTES"],
                    client_id=form.client_id.data, filename=upload.filename, stream=upload.stream,
                    doc_type=form.doc_type.data, title=form.title.data, contract_id=form.contract_id.data,
                    period=form.period.data or None, note=form.note.data or None,
                    uploaded_by_id=current_user_id(),
                )
                flash(str(_l("Document uploaded.")), "success")
                return redirect(url_for("DocumentModelView.show", pk=document.id))
            except DomainError as exc:
                db.session.rollback()
                for field, messages in exc.errors.items():
                    key = {"client": "client_id", "contract": "contract_id"}.get(field, field)
                    if key in form:
                        form[key].errors = list(form[key].errors) + messages
                    else:
                        flash("; ".join(messages), "danger")
        return self.render_template("document_upload.html", form=form, title=_l("Upload document"),
                                    allowed=", ".join(svc.ALLOWED_EXTENSIONS),
                                    max_mb=round(current_app.config["UPLOAD_MAX_BYTES"] / 1048576, 1))

    @expose("/download/<int:pk>")
    @has_access
    def download(self, pk: int):  # noqa: ANN201
        document = get_or_404(Document, pk)
        return send_document(document)


def send_document(document: Document):  # noqa: ANN201
    """Stream a stored document as an attachment and audit the download."""
    path = svc.document_path(current_app.config["UPLOAD_DIR"], document)
    if not path.is_file():
        from flask import abort

        abort(404)
    record_event(db.session, "download", object_type="document", object_id=document.id,
                 summary=document.title)
    db.session.commit()
    return send_file(path, mimetype=document.content_type, as_attachment=True,
                     download_name=document.original_filename, max_age=0)
