"""The month's work board (月度工作台): the steps ticked by hand.

Most cells of the board are derived from the books, the filing records and the fee bills
(app/services/work_board.py) and stored nowhere. A step the data cannot say — the client's
documents received (资料收齐) — is a ``WorkBoardTick``: one row per client, month and step, with
who ticked it and when; unticking deletes the row (both are in the audit log).
"""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Audited, utcnow
from app.models.crm import Client


class WorkBoardTick(Audited, Model):
    """A step of one client's month done by hand: who and when."""

    __tablename__ = "work_board_tick"
    __table_args__ = (UniqueConstraint("client_id", "period", "step", name="uq_work_board_tick"),)
    __audit_ignore__ = ()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), nullable=False, index=True)
    period: Mapped[int] = mapped_column(Integer, nullable=False)  # YYYYMM
    step: Mapped[str] = mapped_column(String(20), nullable=False)
    ticked_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    ticked_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    client: Mapped[Client] = relationship(Client)
    ticked_by: Mapped[User | None] = relationship(User)

    def __repr__(self) -> str:
        return f"{self.client_id} {self.period} {self.step}"
