"""Contract rules: lifecycle, amendments with reasons, fee billing, payments and balances.

Lifecycle (合同状态)::

    draft ──activate──> active ──change──> changed ──change──> changed
                          │                   │
                          ├──terminate──> terminated <──terminate──┤
                          └──expire─────> expired   <──expire──────┘

A reason is required to change or terminate. Only drafts are edited freely; an active or
changed contract is amended through ``change_contract`` so that the history says why.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from app.models.contracts import (
    BillingCycle,
    Contract,
    ContractChange,
    ContractStatus,
    FeeBill,
    Payment,
    ServiceType,
)
from app.services.accounting import CENT, check_total, exact_sums, parse_amount
from app.services.audit import current_actor
from app.services.errors import TransitionNotAllowed, ValidationFailed

S = ContractStatus
ALLOWED_TRANSITIONS: dict[ContractStatus, set[ContractStatus]] = {
    S.draft: {S.active},
    S.active: {S.changed, S.terminated, S.expired},
    S.changed: {S.changed, S.terminated, S.expired},
    S.terminated: set(),
    S.expired: set(),
}
LIVE = (S.active, S.changed)
CHANGEABLE_FIELDS = ("service_type", "monthly_fee", "billing_cycle", "end_date", "notes")


def parse_money(value: object, field: str = "amount", allow_zero: bool = True) -> Decimal:
    """Parse a money amount given as a string or Decimal (never a float).

    Rule: at most 2 decimal places and 16 before the point (``accounting.parse_amount``), not
    negative (and not zero unless *allow_zero*). Raises ``ValidationFailed`` naming *field*.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationFailed({field: [str(_l("Not a valid amount."))]})
    amount = parse_amount(value, field, allow_negative=True)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ValidationFailed({field: [str(_l("The amount must be greater than zero."))
                                        if not allow_zero else str(_l("The amount cannot be negative."))]})
    return amount


def validate_contract(contract: Contract) -> None:
    """Check the fields of a contract before it is saved; raise ``ValidationFailed``."""
    errors: dict[str, list[str]] = {}
    if contract.start_date and contract.end_date and contract.end_date < contract.start_date:
        errors["end_date"] = [str(_l("The end date must not be before the start date."))]
    if contract.monthly_fee is not None:
        try:
            contract.monthly_fee = parse_money(contract.monthly_fee, "monthly_fee")
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)


def prepare_new_contract(session: Session, contract: Contract) -> None:
    """A new contract, before it is saved (screen and API): it starts as a draft with a number no
    other contract has and valid fields, and its history begins. Raises ``ValidationFailed``."""
    contract.status = S.draft
    _check_number(session, contract)
    validate_contract(contract)
    record_creation(contract)


def prepare_contract_edit(session: Session, contract: Contract) -> None:
    """An edited contract, before it is saved: only a draft is edited directly (a live one is
    amended by a change, which keeps its history). Raises ``TransitionNotAllowed`` (409) and
    ``ValidationFailed``."""
    if contract.status != S.draft:
        raise TransitionNotAllowed({"status": [str(_l(
            "Only draft contracts are edited directly; use Change to amend a live contract."))]})
    _check_number(session, contract)
    validate_contract(contract)


def check_contract_deletable(contract: Contract) -> None:
    """Only a draft contract is deleted (a live one is terminated). Raises ``TransitionNotAllowed``."""
    if contract.status != S.draft:
        raise TransitionNotAllowed({"status": [str(_l("Only draft contracts can be deleted."))]})


def _check_number(session: Session, contract: Contract) -> None:
    with session.no_autoflush:
        clash = session.scalar(select(Contract.id).where(Contract.number == contract.number,
                                                         Contract.id != (contract.id or -1)))
    if clash is not None:
        raise ValidationFailed({"number": [str(_l("This contract number is already used."))]})


def check_payment_allowed(session: Session, payment: Payment) -> None:
    """A payment (new or edited, before it is saved) belongs to a contract that is not a draft.
    Raises ``ValidationFailed``."""
    contract = payment.contract or (session.get(Contract, payment.contract_id) if payment.contract_id else None)
    _check_takes_payments(contract)


def _check_takes_payments(contract: Contract | None) -> None:
    if contract is not None and contract.status == S.draft:
        raise ValidationFailed({"contract": [str(_l("A draft contract cannot take payments."))]})


def _history(contract: Contract, from_status: S | None, to_status: S, reason: str | None,
             details: dict | None = None) -> None:
    actor = current_actor()
    contract.changes.append(
        ContractChange(
            from_status=from_status.value if from_status else None,
            to_status=to_status.value,
            reason=reason,
            details=json.dumps(details, ensure_ascii=False, default=str) if details else None,
            changed_by_id=actor.user_id,
        )
    )


def _transition(contract: Contract, target: S, reason: str | None) -> None:
    if target not in ALLOWED_TRANSITIONS[contract.status]:
        raise TransitionNotAllowed(
            {"status": [str(_l("A contract cannot go from %(a)s to %(b)s.",
                               a=status_label(contract.status), b=status_label(target)))]}
        )
    if target in (S.changed, S.terminated) and not (reason or "").strip():
        raise ValidationFailed({"reason": [str(_l("A reason is required."))]})
    previous = contract.status
    contract.status = target
    _history(contract, previous, target, (reason or "").strip() or None)


def record_creation(contract: Contract) -> None:
    """Start the history of a new contract (called when a draft is first saved)."""
    _history(contract, None, contract.status or S.draft, None)


def activate_contract(session: Session, contract: Contract) -> Contract:
    """draft → active. Raises ``TransitionNotAllowed`` from any other state."""
    _transition(contract, S.active, None)
    session.commit()
    return contract


def terminate_contract(session: Session, contract: Contract, reason: str) -> Contract:
    """active/changed → terminated, with a required reason."""
    _transition(contract, S.terminated, reason)
    session.commit()
    return contract


def expire_contract(session: Session, contract: Contract) -> Contract:
    """active/changed → expired."""
    _transition(contract, S.expired, None)
    session.commit()
    return contract


def change_contract(session: Session, contract: Contract, reason: str, **new_values: object) -> Contract:
    """Amend a live contract (active/changed → changed) with a required reason.

    ``new_values`` may hold ``service_type``, ``monthly_fee`` (string), ``billing_cycle``,
    ``end_date`` and ``notes``; the history records every field's old and new value.
    Raises ``ValidationFailed`` for unknown fields, bad values or no actual change.
    """
    unknown = set(new_values) - set(CHANGEABLE_FIELDS)
    if unknown:
        raise ValidationFailed({k: [str(_l("This field cannot be changed."))] for k in unknown})
    coerced: dict[str, object] = {}
    errors: dict[str, list[str]] = {}
    for key, value in new_values.items():
        if value is None or value == "":
            continue
        try:
            if key == "monthly_fee":
                value = parse_money(value, "monthly_fee")
            elif key == "service_type" and not isinstance(value, ServiceType):
                value = ServiceType(value)
            elif key == "billing_cycle" and not isinstance(value, BillingCycle):
                value = BillingCycle(value)
            elif key == "end_date" and not isinstance(value, date):
                value = date.fromisoformat(str(value))
        except ValidationFailed as exc:
            errors.update(exc.errors)
            continue
        except ValueError:
            errors[key] = [str(_l("Not a valid value."))]
            continue
        coerced[key] = value
    if "end_date" in coerced and coerced["end_date"] < contract.start_date:
        errors["end_date"] = [str(_l("The end date must not be before the start date."))]
    if errors:
        raise ValidationFailed(errors)
    details = {k: [getattr(contract, k), v] for k, v in coerced.items() if getattr(contract, k) != v}
    if not details:
        raise ValidationFailed({"_": [str(_l("Nothing was changed."))]})
    if S.changed not in ALLOWED_TRANSITIONS[contract.status]:
        raise TransitionNotAllowed(
            {"status": [str(_l("A contract cannot go from %(a)s to %(b)s.",
                               a=status_label(contract.status), b=status_label(S.changed)))]}
        )
    if not (reason or "").strip():
        raise ValidationFailed({"reason": [str(_l("A reason is required."))]})
    previous = contract.status
    for key, value in coerced.items():
        setattr(contract, key, value)
    contract.status = S.changed
    _history(contract, previous, S.changed, reason.strip(),
             {k: [_plain(v[0]), _plain(v[1])] for k, v in details.items()})
    session.commit()
    return contract


def _plain(value: object) -> object:
    return getattr(value, "value", value) if not isinstance(value, Decimal | date) else str(value)


def status_label(status: ContractStatus) -> str:
    return str(CONTRACT_STATUS_LABELS[status])


CONTRACT_STATUS_LABELS = {
    S.draft: _l("Draft"),
    S.active: lazy_pgettext("contract status", "Active"),
    S.changed: _l("Changed"),
    S.terminated: _l("Terminated"),
    S.expired: _l("Expired"),
}


# --- billing ----------------------------------------------------------------------------------

def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def billing_periods(contract: Contract, through: date) -> list[tuple[date, date]]:
    """Billing periods of *contract* that start on or before *through* (and before its end)."""
    periods = []
    step = contract.billing_cycle.months
    start = contract.start_date
    index = 0
    while start <= through and start <= contract.end_date:
        end = min(_add_months(contract.start_date, step * (index + 1)) - timedelta(days=1),
                  contract.end_date)
        periods.append((start, end))
        index += 1
        start = _add_months(contract.start_date, step * index)
    return periods


def bill_contract(session: Session, contract: Contract, through: date, due_days: int = 15) -> list[FeeBill]:
    """Create the fee bills of *contract* for every period starting on or before *through*.

    Rule: a live (active/changed) contract is billed ``monthly_fee × months in the cycle``
    per period (pro rata for a shorter last period, by whole months); periods already billed
    are skipped, so billing twice is harmless. Raises ``ValidationFailed`` for a contract
    that is not live, or when a bill would exceed the largest amount (``check_total``; then no
    bill is written).
    """
    if contract.status not in LIVE:
        raise ValidationFailed({"status": [str(_l("Only active contracts are billed."))]})
    existing = set(session.scalars(select(FeeBill.period_start).where(FeeBill.contract_id == contract.id)))
    due = [(start, end, (contract.monthly_fee * _months_between(start, end)).quantize(CENT))
           for start, end in billing_periods(contract, through) if start not in existing]
    for _start, _end, amount in due:  # every bill checked before any is written
        check_total(amount, "monthly_fee")
    created = []
    for start, end, amount in due:
        bill = FeeBill(contract_id=contract.id, period_start=start, period_end=end, amount=amount,
                       billed_on=start,
                       due_date=start + timedelta(days=due_days))
        session.add(bill)
        created.append(bill)
    session.commit()
    return created


def _months_between(start: date, end: date) -> int:
    """Months covered by [start, end], a started month counting whole; at least one."""
    after = end + timedelta(days=1)
    months = (after.year - start.year) * 12 + after.month - start.month
    if after.day > start.day:
        months += 1
    return max(months, 1)


def record_payment(session: Session, contract: Contract, amount: object, received_on: date,
                   method: str | None = None, reference: str | None = None,
                   note: str | None = None) -> Payment:
    """Record money received against a contract; amount is a positive string/Decimal."""
    value = parse_money(amount, "amount", allow_zero=False)
    _check_takes_payments(contract)
    payment = Payment(contract_id=contract.id, amount=value, received_on=received_on,
                      method=method, reference=reference, note=note)
    session.add(payment)
    session.commit()
    return payment


@dataclass(frozen=True)
class Balance:
    billed: Decimal
    paid: Decimal

    @property
    def due(self) -> Decimal:
        return self.billed - self.paid


def _sum(session: Session, stmt) -> Decimal:  # noqa: ANN001
    return Decimal(session.scalar(stmt) or 0).quantize(CENT)


@exact_sums
def contract_balance(session: Session, contract_id: int, as_of: date | None = None) -> Balance:
    """Billed, paid and due for one contract (aggregated in SQL)."""
    billed = select(func.sum(FeeBill.amount)).where(FeeBill.contract_id == contract_id)
    paid = select(func.sum(Payment.amount)).where(Payment.contract_id == contract_id)
    if as_of:
        billed = billed.where(FeeBill.billed_on <= as_of)
        paid = paid.where(Payment.received_on <= as_of)
    return Balance(_sum(session, billed), _sum(session, paid))


@exact_sums
def client_balance(session: Session, client_id: int, as_of: date | None = None) -> Balance:
    """A client's balance due over all its contracts: Σ bills − Σ payments (in SQL)."""
    billed = (select(func.sum(FeeBill.amount)).join(Contract, FeeBill.contract_id == Contract.id)
              .where(Contract.client_id == client_id))
    paid = (select(func.sum(Payment.amount)).join(Contract, Payment.contract_id == Contract.id)
            .where(Contract.client_id == client_id))
    if as_of:
        billed = billed.where(FeeBill.billed_on <= as_of)
        paid = paid.where(Payment.received_on <= as_of)
    return Balance(_sum(session, billed), _sum(session, paid))


# --- renewals and expiry ------------------------------------------------------------------------

def renewals_due(session: Session, today: date, within_days: int = 30,
                 accountant_id: int | None = None) -> list[Contract]:
    """Live contracts ending between *today* and *today + within_days* (续约提醒), with their
    clients loaded (the lists show each contract's client)."""
    from app.models.crm import Client

    stmt = (select(Contract).options(joinedload(Contract.client)).where(Contract.status.in_(LIVE))
            .where(Contract.end_date >= today)
            .where(Contract.end_date <= today + timedelta(days=within_days))
            .order_by(Contract.end_date))
    if accountant_id is not None:
        stmt = stmt.join(Client, Contract.client_id == Client.id).where(Client.accountant_id == accountant_id)
    return list(session.scalars(stmt))


def expire_due_contracts(session: Session, today: date) -> int:
    """Mark every live contract whose end date has passed as expired; return how many."""
    due = list(session.scalars(select(Contract).where(Contract.status.in_(LIVE))
                               .where(Contract.end_date < today)))
    for contract in due:
        _transition(contract, S.expired, None)
    session.commit()
    return len(due)
