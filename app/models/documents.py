"""Archives (档案): uploaded documents attached to a client."""

from __future__ import annotations

import enum

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from markupsafe import Markup
from sqlalchemy import BigInteger, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Audited, Timestamps
from app.models.contracts import Contract
from app.models.crm import Client


class DocumentType(enum.Enum):
    invoice = "invoice"
    contract = "contract"
    bank_statement = "bank_statement"
    tax_form = "tax_form"
    other = "other"


class Document(Audited, Timestamps, Model):
    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("client.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    contract_id: Mapped[int | None] = mapped_column(
        ForeignKey("contract.id", ondelete="SET NULL"), index=True
    )
    period: Mapped[str | None] = mapped_column(String(7), index=True)  # YYYY-MM
    doc_type: Mapped[DocumentType] = mapped_column(
        Enum(DocumentType, name="document_type", native_enum=False, length=30), nullable=False
    )
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    original_filename: Mapped[str] = mapped_column(String(255), nullable=False)
    stored_name: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)

    client: Mapped[Client] = relationship()
    contract: Mapped[Contract | None] = relationship()
    uploaded_by: Mapped[User | None] = relationship(User)

    def __repr__(self) -> str:
        return self.title

    def download(self) -> Markup:
        """A link to the permission-checked download view (used by the list and show screens)."""
        from flask import url_for
        from flask_babel import gettext

        return Markup('<a href="{}">{}</a>').format(
            url_for("DocumentModelView.download", pk=self.id), gettext("Download"))
