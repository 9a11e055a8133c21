"""Filing records (申报记录): each client's filing of each tax for each period.

A record is made **pending** (待申报) for every tax of a client's profile whose period ends before
the filing month: :func:`generate_month` for ``2026-04`` makes the March records of monthly
filers, the 2026-Q1 records of quarterly filers (in January, April, July and October) and, in
January, the previous year's records of yearly filers. Its due date is the calendar's deadline of
the filing month (app/services/tax_calendar.py). In May, every client that files 企业所得税 also
gets the previous year's annual settlement (汇算清缴, period ``2025``), due on 31 May. Generating a
month again makes nothing new.

The life of a record:

* **pending → filed** (已申报, :func:`file_return`): a 零申报 is explicit — the zero flag, and no
  amount or ``0``; any other return needs the tax amount, greater than zero (a return of no tax
  is filed as a zero return). Who and when are kept; the 申报表 may be named from the client's
  archives, or uploaded with the step (:class:`Evidence`), which archives it for the client.
* **filed → paid** (已缴款, :func:`record_payment`): only a return that is not a zero return, with
  the amount paid, greater than zero; the 缴款凭证 is named or uploaded as the 申报表 is.
* Evidence uploaded with a step is archived (档案, type tax form, the filing's month as its period
  for a monthly filing) in the same commit as the step: a step refused writes no document, and a
  refused upload refuses the step. Naming a document and uploading one at once is refused.
* nothing goes back except :func:`reopen` with a reason: paid → filed (the payment is cleared),
  filed → pending (the filing is cleared). The reason stays on the record; every change of a
  record is in the audit log.

A record is **open** while it is pending, or filed with tax to pay; an open record is overdue
the day after its due date (:func:`overdue`) and listed as due soon from 7 days before
(:func:`due_soon`).

Errors: ``NotFound`` (no such record or document), ``ValidationFailed`` naming the field,
``TransitionNotAllowed`` (the state does not allow the step), ``Conflict`` (generated at the
same time by another request).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.crm import Client, ClientStatus
from app.models.documents import Document, DocumentType
from app.models.tax import ClientTaxFiling, FilingPeriod, TaxKind
from app.models.tax_filing import FilingStatus, TaxFiling
from app.services import documents
from app.services.accounting import money, parse_amount, parse_period
from app.services.errors import Conflict, DomainError, NotFound, TransitionNotAllowed, ValidationFailed
from app.services.tax_calendar import deadline

DUE_SOON_DAYS = 7
ANNUAL_SETTLEMENT_DUE = (5, 31)  # 企业所得税法 第五十四条: the annual return within five months of the year's end
REASON_MAX = 500
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


def period_filed_in(kind: FilingPeriod, year: int, month: int) -> str | None:
    """The period of a *kind* filer whose filings are due in (*year*, *month*), or ``None``:
    monthly ``2026-03`` in 2026-04; quarterly ``2026-Q1`` in 2026-04 (``2025-Q4`` in 2026-01);
    yearly ``2025`` in 2026-01."""
    if kind is FilingPeriod.monthly:
        return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"
    if kind is FilingPeriod.quarterly:
        if month not in (1, 4, 7, 10):
            return None
        return f"{year - 1:04d}-Q4" if month == 1 else f"{year:04d}-Q{(month - 1) // 3}"
    return f"{year - 1:04d}" if month == 1 else None


def generate_month(session: Session, month: object, accountant_id: int | None = None) -> list[TaxFiling]:
    """Make the pending records due in *month* (``YYYY-MM``) for every active client (of
    *accountant_id* when given) from the taxes of its profile (and, in May, the annual 企业所得税
    settlement of the year before), skipping those that exist; commit
    and return the new ones (none the second time). Raises ``ValidationFailed`` naming ``month``
    or ``Conflict``."""
    label = parse_period(month, "month")
    year, number = divmod(label, 100)
    due = deadline(session, year, number).due
    stmt = (select(ClientTaxFiling).join(Client, Client.id == ClientTaxFiling.client_id)
            .where(Client.status == ClientStatus.active).order_by(ClientTaxFiling.client_id, ClientTaxFiling.id))
    if accountant_id is not None:
        stmt = stmt.where(Client.accountant_id == accountant_id)
    profiles = list(session.scalars(stmt))
    wanted = [(row.client_id, row.tax, row.period, period, due) for row in profiles
              if (period := period_filed_in(row.period, year, number)) is not None]
    if number == ANNUAL_SETTLEMENT_DUE[0]:  # 企业所得税汇算清缴 of the year before, by 31 May
        settlement_due = date(year, *ANNUAL_SETTLEMENT_DUE)
        wanted += [(row.client_id, row.tax, FilingPeriod.yearly, f"{year - 1:04d}", settlement_due)
                   for row in profiles if row.tax is TaxKind.corporate_income]
    if not wanted:
        return []
    existing = set(session.execute(select(TaxFiling.client_id, TaxFiling.tax, TaxFiling.period).where(
        TaxFiling.client_id.in_({w[0] for w in wanted}), TaxFiling.period.in_({w[3] for w in wanted}))).all())
    made = [TaxFiling(client_id=client_id, tax=tax, period_kind=kind, period=period, due=day,
                      status=FilingStatus.pending, zero_return=False)
            for client_id, tax, kind, period, day in wanted if (client_id, tax, period) not in existing]
    session.add_all(made)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(str(_l("The records of this month were being made at the same time; try again."))) from None
    return made


@contextlib.contextmanager
def _step(session: Session) -> Iterator[None]:
    """A step refused after its record was locked rolls back, which also releases the lock."""
    try:
        yield
    except DomainError:
        session.rollback()
        raise


def _filing(session: Session, filing_id: int) -> TaxFiling:
    filing = session.scalar(select(TaxFiling).where(TaxFiling.id == filing_id).with_for_update()) \
        if isinstance(filing_id, int) and 0 < filing_id < 2**31 else None
    if filing is None:
        raise NotFound(str(_l("No such filing.")), "id")
    return filing


@dataclass(frozen=True)
class Evidence:
    """A file uploaded with a step (the 申报表 or the 缴款凭证), archived for the filing's client
    under *upload_dir* (at most *max_bytes*) with *title*."""

    upload_dir: str | Path
    max_bytes: int
    filename: str
    stream: BinaryIO
    title: str


def _evidence(session: Session, filing: TaxFiling, document_id: object, field: str) -> int | None:
    if document_id in (None, ""):
        return None
    document = session.get(Document, document_id) if isinstance(document_id, int) and \
        not isinstance(document_id, bool) and 0 < document_id < 2**31 else None
    if document is None or document.client_id != filing.client_id:
        raise ValidationFailed({field: [str(_l("Name a document archived for this client."))]})
    return document.id


def _one_evidence(document_id: object, upload: Evidence | None, field: str) -> None:
    if upload is not None and document_id not in (None, ""):
        raise ValidationFailed({field: [str(_l(
            "Choose a document from the archives or upload one, not both."))]})


def _archive(session: Session, filing: TaxFiling, upload: Evidence | None, user_id: int | None,
             staged: list[documents.StagedFile]) -> int | None:
    """Archive *upload* for the filing's client (not committed); its file waits in *staged*."""
    if upload is None:
        return None
    document, file = documents.stage_document(
        session, upload.upload_dir, upload.max_bytes, client_id=filing.client_id, filename=upload.filename,
        stream=upload.stream, doc_type=DocumentType.tax_form, title=upload.title,
        period=filing.period if _MONTH.match(filing.period) else None, uploaded_by_id=user_id)
    staged.append(file)
    return document.id


@contextlib.contextmanager
def _with_files(staged: list[documents.StagedFile]) -> Iterator[None]:
    """Files of documents archived by a step are placed after its commit, discarded without it."""
    try:
        yield
    except BaseException:
        for file in staged:
            file.discard()
        raise
    for file in staged:
        file.place()


def _amount(value: object, field: str) -> Decimal:
    if isinstance(value, float):
        raise ValidationFailed({field: [str(_l("Amounts must be given as strings, not numbers."))]})
    amount = parse_amount(value, field)
    if amount <= 0:
        raise ValidationFailed({field: [str(_l("The amount must be greater than zero."))]})
    return amount


def file_return(session: Session, filing_id: int, user_id: int | None, zero_return: object,
                tax_amount: object = None, return_document_id: object = None,
                upload: Evidence | None = None) -> TaxFiling:
    """pending → filed (rules in the module docstring), with the 申报表 named by
    *return_document_id* or archived from *upload*; commit and return the record. Raises
    ``NotFound``, ``TransitionNotAllowed`` or ``ValidationFailed`` (``zero_return``, ``tax_amount``,
    ``return_document_id``, ``file``) and then writes nothing."""
    staged: list[documents.StagedFile] = []
    with _with_files(staged), _step(session):
        _one_evidence(return_document_id, upload, "return_document_id")
        filing = _filing(session, filing_id)
        if filing.status is not FilingStatus.pending:
            raise TransitionNotAllowed(str(_l("This return is filed already; reopen it to file it again.")), "status")
        if not isinstance(zero_return, bool):
            raise ValidationFailed({"zero_return": [str(_l("Say whether this is a zero return (true or false)."))]})
        if zero_return:
            blank = tax_amount is None or (isinstance(tax_amount, str) and not tax_amount.strip())
            if not blank and (isinstance(tax_amount, float) or parse_amount(tax_amount, "tax_amount") != 0):
                raise ValidationFailed({"tax_amount": [str(_l("A zero return has no tax amount."))]})
            amount = Decimal("0.00")
        else:
            blank = tax_amount is None or (isinstance(tax_amount, str) and not tax_amount.strip())
            if blank:
                raise ValidationFailed({"tax_amount": [str(_l("Give the tax amount of the return."))]})
            if not isinstance(tax_amount, float) and parse_amount(tax_amount, "tax_amount") == 0:
                raise ValidationFailed({"tax_amount": [str(_l(
                    "A return with no tax is filed as a zero return (零申报)."))]})
            amount = _amount(tax_amount, "tax_amount")
        document = _evidence(session, filing, return_document_id, "return_document_id") or \
            _archive(session, filing, upload, user_id, staged)
        filing.status, filing.zero_return, filing.tax_amount = FilingStatus.filed, zero_return, amount
        filing.filed_at, filing.filed_by_id, filing.return_document_id = utcnow(), user_id, document
        session.commit()
    return filing


def record_payment(session: Session, filing_id: int, user_id: int | None, paid_amount: object,
                   receipt_document_id: object = None, upload: Evidence | None = None) -> TaxFiling:
    """filed → paid (rules in the module docstring), with the 缴款凭证 named by
    *receipt_document_id* or archived from *upload*; commit and return the record. Raises
    ``NotFound``, ``TransitionNotAllowed`` or ``ValidationFailed`` (``paid_amount``,
    ``receipt_document_id``, ``file``) and then writes nothing."""
    staged: list[documents.StagedFile] = []
    with _with_files(staged), _step(session):
        _one_evidence(receipt_document_id, upload, "receipt_document_id")
        filing = _filing(session, filing_id)
        if filing.status is FilingStatus.pending:
            raise TransitionNotAllowed(str(_l("File the return before recording its payment.")), "status")
        if filing.status is FilingStatus.paid:
            raise TransitionNotAllowed(str(_l("This tax is paid already.")), "status")
        if filing.zero_return:
            raise TransitionNotAllowed(str(_l("A zero return has no tax to pay.")), "status")
        amount = _amount(paid_amount, "paid_amount")
        document = _evidence(session, filing, receipt_document_id, "receipt_document_id") or \
            _archive(session, filing, upload, user_id, staged)
        filing.status, filing.paid_amount = FilingStatus.paid, amount
        filing.paid_at, filing.paid_by_id, filing.receipt_document_id = utcnow(), user_id, document
        session.commit()
    return filing


def reopen(session: Session, filing_id: int, reason: object) -> TaxFiling:
    """One step back with a reason: paid → filed (payment cleared), filed → pending (filing
    cleared); commit and return the record. Raises ``NotFound``, ``TransitionNotAllowed`` (a pending
    record) or ``ValidationFailed`` naming ``reason``."""
    with _step(session):
        filing = _filing(session, filing_id)
        text = reason.strip() if isinstance(reason, str) else ""
        if not text or len(text) > REASON_MAX:
            raise ValidationFailed({"reason": [str(_l("Give the reason for reopening (up to %(n)d characters).",
                                                      n=REASON_MAX))]})
        if filing.status is FilingStatus.pending:
            raise TransitionNotAllowed(str(_l("This return is not filed yet; there is nothing to reopen.")), "status")
        if filing.status is FilingStatus.paid:
            filing.status = FilingStatus.filed
            filing.paid_amount = filing.paid_at = filing.paid_by_id = filing.receipt_document_id = None
        else:
            filing.status, filing.zero_return = FilingStatus.pending, False
            filing.tax_amount = filing.filed_at = filing.filed_by_id = filing.return_document_id = None
        filing.reopen_reason = text
        session.commit()
    return filing


def _open():  # noqa: ANN202
    return or_(TaxFiling.status == FilingStatus.pending,
               and_(TaxFiling.status == FilingStatus.filed, TaxFiling.zero_return.is_(False)))


def _scoped(stmt, accountant_id: int | None):  # noqa: ANN001, ANN202
    if accountant_id is None:
        return stmt
    return stmt.where(TaxFiling.client_id.in_(select(Client.id).where(Client.accountant_id == accountant_id)))


def overdue(session: Session, as_of: date, accountant_id: int | None = None) -> list[TaxFiling]:
    """Open records whose due date is before *as_of* (of *accountant_id*'s clients when given),
    the oldest first."""
    stmt = select(TaxFiling).where(_open(), TaxFiling.due < as_of).order_by(TaxFiling.due, TaxFiling.id)
    return list(session.scalars(_scoped(stmt, accountant_id)))


def due_soon(session: Session, as_of: date, accountant_id: int | None = None,
             days: int = DUE_SOON_DAYS) -> list[TaxFiling]:
    """Open records due from *as_of* to *days* days later, both included, the soonest first."""
    stmt = select(TaxFiling).where(_open(), TaxFiling.due >= as_of, TaxFiling.due <= as_of + timedelta(days=days)) \
        .order_by(TaxFiling.due, TaxFiling.id)
    return list(session.scalars(_scoped(stmt, accountant_id)))


def parse_filters(args: dict) -> dict:
    """The list filters from a query (``client_id``, ``tax``, ``status``, ``accountant_id``,
    ``period``) as values; raises ``ValidationFailed`` naming the bad ones."""
    from app.services.inputs import parse_id

    errors: dict[str, list[str]] = {}
    found: dict = {}
    for name in ("client_id", "accountant_id"):
        raw = args.get(name)
        if raw not in (None, ""):
            found[name] = parse_id(raw)
            if found[name] is None:
                errors[name] = [str(_l("A whole number from %(n)d.", n=1))]
    for name, enum_cls in (("tax", TaxKind), ("status", FilingStatus)):
        raw = args.get(name)
        if raw not in (None, ""):
            try:
                found[name] = enum_cls(raw)
            except ValueError:
                errors[name] = [str(_l("Not a valid choice."))]
    raw = args.get("period")
    if raw not in (None, ""):
        text = str(raw).strip()
        if not (_MONTH.match(text) or _QUARTER.match(text) or _YEAR.match(text)):
            errors["period"] = [str(_l("A period is written YYYY-MM, YYYY-Qn or YYYY as the tax is filed."))]
        found["period"] = text
    if errors:
        raise ValidationFailed(errors)
    return found


def filings_query(filters: dict, accountant_scope: int | None = None):  # noqa: ANN201
    """A select of records matching *filters* (from :func:`parse_filters`) within the scope of
    *accountant_scope* (``None``: every client), the latest due first."""
    stmt = select(TaxFiling).join(Client, Client.id == TaxFiling.client_id)
    if accountant_scope is not None:
        stmt = stmt.where(Client.accountant_id == accountant_scope)
    if "client_id" in filters:
        stmt = stmt.where(TaxFiling.client_id == filters["client_id"])
    if "accountant_id" in filters:
        stmt = stmt.where(Client.accountant_id == filters["accountant_id"])
    for name in ("tax", "status", "period"):
        if name in filters:
            stmt = stmt.where(getattr(TaxFiling, name) == filters[name])
    return stmt.order_by(TaxFiling.due.desc(), Client.name, TaxFiling.tax, TaxFiling.id)


def _utc(value) -> str | None:  # noqa: ANN001
    return f"{value.isoformat(timespec='seconds')}Z" if value else None


def filing_json(filing: TaxFiling) -> dict:
    """A record as the API writes it (amounts as strings, times in UTC)."""
    return {
        "id": filing.id, "client_id": filing.client_id, "client_name": filing.client.name,
        "tax": filing.tax.value, "period": filing.period, "period_kind": filing.period_kind.value,
        "due": filing.due.isoformat(), "status": filing.status.value, "zero_return": filing.zero_return,
        "tax_amount": money(filing.tax_amount) if filing.tax_amount is not None else None,
        "paid_amount": money(filing.paid_amount) if filing.paid_amount is not None else None,
        "filed_at": _utc(filing.filed_at), "filed_by": filing.filed_by.username if filing.filed_by else None,
        "paid_at": _utc(filing.paid_at), "paid_by": filing.paid_by.username if filing.paid_by else None,
        "return_document_id": filing.return_document_id, "receipt_document_id": filing.receipt_document_id,
        "reopen_reason": filing.reopen_reason,
    }
