"""Filing reminders (报税提醒): who must be told of which filings, on a given day.

Rules:

- An **accountant** is told of the open filings of their own clients that are overdue (due before
  today) or due within ``DUE_DAYS`` days (today included); "open" is as in ``tax_filings``: not
  yet filed, or filed with tax to pay and not yet paid.
- A **manager** is told of every client's overdue filings (the agency's late list).
- Only active users are told.
- Nothing to tell, no mail: a day without due or overdue filings sends nothing.

``digests`` computes the lists (two statements for the filings, one for the users); the desk shows
the same lists (``accountant_items``, ``manager_items``). Sending is ``app.reminder_mail``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.models.tax_filing import TaxFiling
from app.services import tax_filings

DUE_DAYS = 3
ACCOUNTANT_ROLE = "Accountant"
MANAGER_ROLE = "Manager"


@dataclass
class Digest:
    """What one user is told: *overdue* and *due* (soon) filings, each the oldest first."""

    user_id: int
    name: str
    email: str | None
    role: str  # ACCOUNTANT_ROLE or MANAGER_ROLE
    overdue: list[TaxFiling] = field(default_factory=list)
    due: list[TaxFiling] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.overdue and not self.due


def accountant_items(session: Session, accountant_id: int, today: date) -> tuple[list[TaxFiling], list[TaxFiling]]:
    """``(overdue, due within DUE_DAYS days)`` of *accountant_id*'s clients on *today*."""
    return (tax_filings.overdue(session, today, accountant_id),
            tax_filings.due_soon(session, today, accountant_id, days=DUE_DAYS))


def manager_items(session: Session, today: date) -> list[TaxFiling]:
    """Every client's overdue filings on *today*."""
    return tax_filings.overdue(session, today)


def _people(session: Session) -> list[tuple[object, str]]:
    """Active users holding the accountant or the manager role, with that role (a user holding
    both gets both digests)."""
    from flask_appbuilder.security.sqla.models import User

    users = session.scalars(select(User).where(User.active.is_(True)).options(selectinload(User.roles))
                            .order_by(User.id)).all()
    return [(user, role.name) for user in users for role in user.roles
            if role.name in (ACCOUNTANT_ROLE, MANAGER_ROLE)]


def digests(session: Session, today: date) -> list[Digest]:
    """Each accountant's and manager's digest for *today* that has something in it."""
    overdue = tax_filings.overdue(session, today)
    due = tax_filings.due_soon(session, today, days=DUE_DAYS)
    clients = {f.client_id for f in overdue + due}
    if clients:  # the clients and their accountants, in one statement
        from app.models.crm import Client

        session.scalars(select(Client).where(Client.id.in_(clients))).all()
    result = []
    for user, role in _people(session):
        name = " ".join(x for x in (user.first_name, user.last_name) if x) or user.username
        digest = Digest(user.id, name, user.email or None, role)
        if role == ACCOUNTANT_ROLE:
            digest.overdue = [f for f in overdue if f.client.accountant_id == user.id]
            digest.due = [f for f in due if f.client.accountant_id == user.id]
        else:
            digest.overdue = list(overdue)
        if not digest.empty:
            result.append(digest)
    return result
