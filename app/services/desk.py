"""The desk (工作台首页): what each role has to do today, as counts of rows that a list shows.

Tiles by role (a user with several roles gets the tiles of each; an Admin the Manager's):

* **Manager** — the overdue filings of every client (``reminders.manager_items``: the manager's
  reminder mail), the overdue fees (bills due before today that payments do not reach,
  ``work_board.unpaid_bills``), the vouchers waiting for review (drafts), the active clients whose
  working month is not closed, the live contracts ending within the renewal window; and, in a row
  of their own (在线客服 today), today's chats, the chats waiting in the queue, the agents online,
  today's mean first response, share of satisfied ratings and missed chats
  (``chat_analytics.today_figures``), each day's figure linking to the chat analytics for today.
* **Accountant** — on their own clients: the working month's board rows with a step still to do,
  the drafts to fix, the overdue filings and those due within 3 days (``reminders.accountant_items``:
  the accountant's reminder mail) and those due within 7 days.
* **Reviewer** — the vouchers to review (every draft).
* **Agent** — their open chats.

The **working month** is the month before today's: its books are closed and its taxes filed by
this month's deadline, so it is the month the board shows on the desk.

The counts that are plain counts are read in one statement (:func:`counts`), however many tiles.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from app.models.chat import AgentProfile, AgentStatus, Conversation, ConversationStatus
from app.models.crm import Client, ClientStatus
from app.models.ledger import LedgerBook, Period, PeriodStatus, Voucher, VoucherState
from app.services.accounting import period_of, previous_period
from app.services.work_board import unpaid_bills

MANAGER, ACCOUNTANT, REVIEWER, AGENT, ADMIN = "Manager", "Accountant", "Reviewer", "Agent", "Admin"


def working_month(today: date) -> int:
    """The month before *today*'s, as ``YYYYMM``."""
    return previous_period(period_of(today))


def desk_roles(role_names: list[str]) -> list[str]:
    """The desks a user with *role_names* sees, in order (an Admin sees the Manager's)."""
    names = set(role_names)
    if ADMIN in names:
        names.add(MANAGER)
    return [role for role in (MANAGER, ACCOUNTANT, REVIEWER, AGENT) if role in names]


def _drafts(accountant_id: int | None):  # noqa: ANN202
    stmt = select(func.count(Voucher.id)).where(Voucher.state == VoucherState.draft)
    if accountant_id is not None:
        stmt = stmt.where(Voucher.client_id.in_(select(Client.id).where(Client.accountant_id == accountant_id)))
    return stmt.scalar_subquery()


def _not_closed(month: int):  # noqa: ANN202
    closed = exists().where(LedgerBook.client_id == Client.id, Period.book_id == LedgerBook.id,
                            Period.period == month, Period.status == PeriodStatus.closed)
    return select(func.count(Client.id)).where(Client.status == ClientStatus.active, ~closed).scalar_subquery()


def counts(session: Session, today: date, roles: list[str], user_id: int) -> dict[str, int]:
    """The plain counts of the tiles of *roles* (from :func:`desk_roles`) for *user_id* on *today*,
    in one statement: ``overdue_fees``, ``to_review``, ``not_closed``, ``chats_waiting``,
    ``agents_online`` (Manager), ``my_drafts`` (Accountant), ``to_review`` (Reviewer),
    ``my_chats`` (Agent)."""
    wanted = {}
    if MANAGER in roles:
        wanted["overdue_fees"] = select(func.count()).select_from(unpaid_bills(today).subquery()).scalar_subquery()
        wanted["to_review"] = _drafts(None)
        wanted["not_closed"] = _not_closed(working_month(today))
        wanted["chats_waiting"] = select(func.count(Conversation.id)).where(
            Conversation.status == ConversationStatus.queued).scalar_subquery()
        wanted["agents_online"] = select(func.count(AgentProfile.id)).where(
            AgentProfile.active.is_(True), AgentProfile.status == AgentStatus.online).scalar_subquery()
    if ACCOUNTANT in roles:
        wanted["my_drafts"] = _drafts(user_id)
    if REVIEWER in roles:
        wanted["to_review"] = _drafts(None)
    if AGENT in roles:
        wanted["my_chats"] = select(func.count(Conversation.id)).join(
            AgentProfile, AgentProfile.id == Conversation.agent_id).where(
            AgentProfile.user_id == user_id, Conversation.status == ConversationStatus.active).scalar_subquery()
    if not wanted:
        return {}
    row = session.execute(select(*(value.label(key) for key, value in wanted.items()))).one()
    return {key: int(getattr(row, key) or 0) for key in wanted}
