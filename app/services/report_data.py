"""Data for the printed documents that no other service produces: the client statement of
account (客户对账单), the vouchers of a period range (记账凭证) and a chat transcript (聊天记录).

Rules:
- Statement of account for the dates *start*..*end*: the opening balance due (bills billed
  before *start* minus payments received before it), the bills billed and the payments received
  in the range, the closing balance due, and the ageing of what is unpaid at *end*: payments are
  applied to the oldest bills first (先进先出), and each bill's unpaid rest is put in a bucket by
  the days past its due date at *end* (not yet due, 1–30, 31–60, 61–90, over 90). Sums are SQL
  aggregates; only the allocation walks the client's bills.
- Vouchers: every voucher of the client's books in the months *from*..*to* (drafts included,
  each printed with its state), ordered by month, word and number, with its totals and the
  amount in Chinese capitals (大写).
- Transcript: the messages of one conversation in order. ``internal=False`` (what a visitor may
  see) leaves out internal notes and supervisor whispers; ``internal=True`` (the agency's copy,
  which the PDF download is) keeps notes, marked as such, and still leaves out whispers, which
  are meant for one agent only.
- Errors: ``NotFound`` for an unknown client, books or conversation; ``ValidationFailed`` for a
  bad range (end before start).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.models.chat import ChatMessage, SenderType
from app.models.contracts import Contract, FeeBill, Payment
from app.models.crm import Client
from app.models.ledger import Voucher, VoucherLine
from app.services import books, chat
from app.services.accounting import exact_sums
from app.services.errors import NotFound, ValidationFailed

ZERO = Decimal("0.00")
AGEING_BUCKETS = ("not_due", "d1_30", "d31_60", "d61_90", "over_90")


# --- statement of account (客户对账单) ---------------------------------------------------------


@dataclass(frozen=True)
class StatementEntry:
    day: date
    kind: str  # bill | payment
    contract: str
    text: str
    billed: Decimal
    paid: Decimal
    balance: Decimal  # balance due after this entry


@dataclass
class AccountStatement:
    client_id: int
    client_name: str
    start: date
    end: date
    contracts: list[Contract]
    opening: Decimal
    entries: list[StatementEntry]
    billed: Decimal
    paid: Decimal
    ageing: dict[str, Decimal] = field(default_factory=dict)

    @property
    def closing(self) -> Decimal:
        return self.opening + self.billed - self.paid

    @property
    def unpaid(self) -> Decimal:
        return sum(self.ageing.values(), ZERO)


def _money(value: object) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


def _client(session: Session, client_id: int) -> Client:
    client = session.get(Client, client_id) if isinstance(client_id, int) and not isinstance(client_id, bool) \
        else None
    if client is None:
        raise NotFound({"client_id": [str(_l("No such client."))]})
    return client


def ageing_bucket(days_past_due: int) -> str:
    """The ageing bucket of an amount *days_past_due* days after its due date."""
    if days_past_due <= 0:
        return "not_due"
    if days_past_due <= 30:
        return "d1_30"
    if days_past_due <= 60:
        return "d31_60"
    return "d61_90" if days_past_due <= 90 else "over_90"


@exact_sums
def account_statement(session: Session, client_id: int, start: date, end: date) -> AccountStatement:
    """客户对账单 of *client_id* from *start* to *end* (both included). Raises ``NotFound`` and
    ``ValidationFailed``."""
    client = _client(session, client_id)
    if end < start:
        raise ValidationFailed({"to": [str(_l("The end of the range is before its start."))]})
    of_client = Contract.client_id == client_id
    opening_billed = session.scalar(select(func.sum(FeeBill.amount)).join(Contract, FeeBill.contract_id == Contract.id)
                                    .where(of_client, FeeBill.billed_on < start))
    opening_paid = session.scalar(select(func.sum(Payment.amount)).join(Contract, Payment.contract_id == Contract.id)
                                  .where(of_client, Payment.received_on < start))
    opening = _money(opening_billed) - _money(opening_paid)
    bills = session.execute(
        select(FeeBill.billed_on, Contract.number, FeeBill.period_start, FeeBill.period_end, FeeBill.amount)
        .join(Contract, FeeBill.contract_id == Contract.id)
        .where(of_client, FeeBill.billed_on >= start, FeeBill.billed_on <= end)).all()
    payments = session.execute(
        select(Payment.received_on, Contract.number, Payment.method, Payment.reference, Payment.amount)
        .join(Contract, Payment.contract_id == Contract.id)
        .where(of_client, Payment.received_on >= start, Payment.received_on <= end)).all()
    moves = [(day, 0, number, str(_l("Service fee %(start)s to %(end)s", start=p_start.isoformat(),
                                      end=p_end.isoformat())), _money(amount), ZERO)
             for day, number, p_start, p_end, amount in bills]
    moves += [(day, 1, number, " ".join(x for x in (str(_l("Payment received")), method, reference) if x),
               ZERO, _money(amount)) for day, number, method, reference, amount in payments]
    moves.sort(key=lambda m: (m[0], m[1], m[2]))
    balance, entries = opening, []
    for day, order, number, text, billed, paid in moves:
        balance += billed - paid
        entries.append(StatementEntry(day, "bill" if order == 0 else "payment", number, text, billed, paid, balance))
    contracts = list(session.scalars(select(Contract).where(of_client, Contract.start_date <= end,
                                                            Contract.end_date >= start).order_by(Contract.number)))
    return AccountStatement(client.id, client.name, start, end, contracts, opening, entries,
                            sum((e.billed for e in entries), ZERO), sum((e.paid for e in entries), ZERO),
                            _ageing(session, client_id, end))


def _ageing(session: Session, client_id: int, end: date) -> dict[str, Decimal]:
    """Unpaid amounts at *end* by bucket, payments applied to the oldest bills first."""
    paid = _money(session.scalar(select(func.sum(Payment.amount)).join(Contract, Payment.contract_id == Contract.id)
                                 .where(Contract.client_id == client_id, Payment.received_on <= end)))
    buckets = dict.fromkeys(AGEING_BUCKETS, ZERO)
    bills = session.execute(select(FeeBill.due_date, FeeBill.amount).join(Contract, FeeBill.contract_id == Contract.id)
                            .where(Contract.client_id == client_id, FeeBill.billed_on <= end)
                            .order_by(FeeBill.due_date, FeeBill.id))
    for due_date, amount in bills:
        amount = _money(amount)
        applied = min(paid, amount)
        paid -= applied
        if amount - applied:
            key = ageing_bucket((end - due_date).days)
            buckets[key] += amount - applied
    return buckets


# --- vouchers (记账凭证) -----------------------------------------------------------------------


@dataclass(frozen=True)
class VoucherSheet:
    voucher: Voucher
    debit: Decimal
    credit: Decimal


def vouchers_for_print(session: Session, client_id: int, start: int, end: int,
                       voucher_id: int | None = None) -> list[VoucherSheet]:
    """The vouchers of *client_id*'s books in the months *start*..*end* with their totals; only
    voucher *voucher_id* when given. Raises ``NotFound`` for a client without books, and for a
    *voucher_id* that is not one of that client's vouchers in those months."""
    _client(session, client_id)
    book = books.get_book(session, client_id)
    query = select(Voucher).where(Voucher.book_id == book.id, Voucher.period >= start, Voucher.period <= end)
    if voucher_id is not None:
        query = query.where(Voucher.id == voucher_id)
    items = session.scalars(
        query
        .options(selectinload(Voucher.lines).selectinload(VoucherLine.account), selectinload(Voucher.maker),
                 selectinload(Voucher.reviewer), selectinload(Voucher.poster))
        .order_by(Voucher.period, Voucher.word, Voucher.number))
    sheets = []
    for voucher in items:
        debit = sum((_money(ln.debit) for ln in voucher.lines), ZERO)
        credit = sum((_money(ln.credit) for ln in voucher.lines), ZERO)
        sheets.append(VoucherSheet(voucher, debit, credit))
    if voucher_id is not None and not sheets:
        raise NotFound({"voucher_id": [str(_l("No such voucher."))]})
    return sheets


# --- chat transcript (聊天记录) ----------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptLine:
    at: datetime
    sender: str  # visitor | agent | system | note
    name: str
    text: str
    attachment: str | None


def transcript_lines(session: Session, conversation_id: int, internal: bool = True) -> list[TranscriptLine]:
    """The conversation's messages in order (see the module rules for notes and whispers).
    Raises ``NotFound``."""
    chat.get_conversation(session, conversation_id)
    kinds = [SenderType.visitor, SenderType.agent, SenderType.system, SenderType.bot]
    if internal:
        kinds.append(SenderType.note)
    messages = session.scalars(
        select(ChatMessage).where(ChatMessage.conversation_id == conversation_id, ChatMessage.sender_type.in_(kinds))
        .options(selectinload(ChatMessage.attachment)).order_by(ChatMessage.id))
    return [TranscriptLine(m.created_at, m.sender_type.value, m.sender_name or "", m.text,
                           getattr(m.attachment, "filename", None) if m.attachment_id else None)
            for m in messages]
