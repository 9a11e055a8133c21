"""Shared pieces of the ledger screens: menu category, row-level scope, form errors."""

from __future__ import annotations

from flask import abort
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.extensions import db
from app.models.ledger import LedgerBook, Voucher
from app.permissions import client_in_scope
from app.services.errors import DomainError
from app.services.inputs import parse_id
from app.views.current_client import clients_with_books, picked_client, remember

__all__ = ["LEDGER_MENU", "books_in_scope", "field_errors", "picked_client", "row_id", "scoped_book",
           "scoped_voucher"]

LEDGER_MENU = dict(category="Ledger", category_label=_l("Ledger"), category_icon="fa-book")


def row_id(value: object) -> int | None:
    """A primary key typed in a URL or form (``"12"`` or ``12``), or ``None`` for anything else."""
    return parse_id(value)


def scoped_book(client_id: int) -> LedgerBook:
    """The books of *client_id*, or 404 when the client is outside the user's scope or has none.

    An Accountant asking for another accountant's client gets the same 404 as for a client that
    does not exist, so the screens do not reveal which clients exist.
    """
    if row_id(client_id) is None or not client_in_scope(client_id):
        abort(404)
    book = db.session.scalar(select(LedgerBook).where(LedgerBook.client_id == client_id))
    if book is None:
        abort(404)
    remember(client_id)  # a screen opened for a client makes it the current one
    return book


def books_in_scope() -> list[tuple[int, str]]:
    """``(client id, client name)`` of every client with books the user may see, by name."""
    return [(client.id, client.name) for client in clients_with_books()]



def scoped_voucher(pk: int) -> Voucher:
    """Voucher *pk*, or 404 when there is none or its client is outside the user's scope."""
    voucher = db.session.get(Voucher, pk) if row_id(pk) is not None else None
    if voucher is None or not client_in_scope(voucher.client_id):
        abort(404)
    return voucher


def field_errors(exc: DomainError) -> dict[str, list[str]]:
    """The refusal's messages by field (``"_"`` for the whole request), after rolling back."""
    db.session.rollback()
    return exc.errors
