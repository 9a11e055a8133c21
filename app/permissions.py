"""Access rules in one place, named for what they allow (row-level scope, personal data)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.security import ALL_CLIENTS, CLIENTS_IN_CHAT, SENSITIVE


def _sm():  # noqa: ANN202
    return current_app.appbuilder.sm


def current_user_id() -> int | None:
    user = _sm().current_user
    return getattr(user, "id", None) if user is not None else None


def sees_all_clients() -> bool:
    """Admin, Manager and Reviewer see every client; an Accountant only their own."""
    return _sm().can(ALL_CLIENTS)


def sees_sensitive() -> bool:
    """Whether ID and bank account numbers are shown unmasked."""
    return _sm().can(SENSITIVE)


def scoped_accountant_id() -> int | None:
    """``None`` when the user sees all clients, else the user id the rows are limited to
    (``-1`` for no user at all, which matches nothing)."""
    if sees_all_clients():
        return None
    return current_user_id() or -1


def client_in_scope(client_id: int | None) -> bool:
    from app.extensions import db
    from app.models.crm import Client

    if client_id is None:
        return False
    scope = scoped_accountant_id()
    stmt = select(Client.id).where(Client.id == client_id)
    if scope is not None:
        stmt = stmt.where(Client.accountant_id == scope)
    return db.session.scalar(stmt) is not None


def may_download_statement(client_id: int | None) -> bool:
    """Whether the user may download *client_id*'s statement of account (对账单): the PDF download
    permission and the client in their scope, as ``/reports/statement.pdf`` checks."""
    return bool(_sm().can(("can_download", "ReportPdfApi"))) and client_in_scope(client_id)


def chat_client_scope() -> int | None:
    """The clients the agent console's client search finds and a visitor may be made a contact
    of: every client (``None``) for users who see every client or may find any client from a
    chat (``can_find_clients`` on ``LiveChat``: Agents, who have no client screens), else the
    user's own clients as on the client screens."""
    if _sm().can(CLIENTS_IN_CHAT):
        return None
    return scoped_accountant_id()
