"""Tax worksheet (税费计算表) of a client and tax period, and the accrual voucher (计提税金) made from it.

The worksheet reads the posted books (carry-forward lines left out) and the rate rows in force on
the period's last day (``tax_rates.rates_in_force``); nothing here is a constant rate. Rules:

* The period is ``YYYY-MM`` for a client filing VAT monthly, ``YYYY-Qn`` for one filing quarterly
  (the client's tax profile); anything else, or a period ending before the books start, is refused
  (a quarter the books start within counts from their first month).
* Sales (销售额) are the credits less debits of 5001 and 5051 in the period. Output and input VAT
  (销项 / 进项税额) are those of the standard sub-accounts of 222101 应交增值税, where the books
  have them (``books.standard_sub_accounts``: found by code and name, or by name under the same
  first-level account); the 留抵 brought in is the debit balance of 222101 before the period.
* Small-scale taxpayer (小规模纳税人): exempt when the sales are at most the exemption threshold
  of its VAT period (the ``exemption`` row: 100,000 monthly, 300,000 quarterly, inclusive);
  otherwise sales × the ``reduced`` rate while one is in force, else the ``statutory`` rate.
* General taxpayer (一般纳税人): output − input − 留抵 brought in; a negative result is carried
  as 留抵 (``carried_credit``) and the VAT is 0. Without the 进项/销项 sub-accounts the VAT
  cannot be read from the books: it is 0 with a note.
* Surcharges (城市维护建设税 by location, 教育费附加, 地方教育附加) on the VAT payable: the tax is
  base × rate, rounded to the cent; a ``reduction`` row in force for the taxpayer type relieves
  that share of it (rounded to the cent), as the return computes 本期减征额.
* 企业所得税 (quarterly prepayment) when the tax profile files it and the period ends one of its
  periods: the year's 利润总额 to the period's end (income statement line 30) × the
  ``small_low_profit`` rate when the profit is within its threshold, else the ``statutory`` rate,
  less what was accrued to the 应交企业所得税 sub-account earlier in the year; never below 0.
* Amounts are rounded half up to the cent; the total is the sum of the lines' amounts.

The accrual voucher (``accrue``): a draft 转 voucher dated the period's last day, debiting the
5403 sub-account of each surcharge (and 5801 所得税费用 for 企业所得税) and crediting its 2221
sub-account; VAT itself is not expensed. It is made by ``vouchers.save_voucher`` (books lock,
open period, every voucher rule) and reviewed and posted as any voucher. The worksheet it was
made from is kept (``TaxAccrual``, with the rate rows' ids and legal basis). A second accrual of
the same client and period is refused while the first voucher exists (checked under the books
lock, and by a unique index).

Errors: ``NotFound`` (unknown client, no books), ``ValidationFailed`` naming ``period`` (bad,
wrong kind for the VAT period, before the books start, no rate in force) or ``account`` (a
standard sub-account the voucher needs is missing), ``Conflict`` (already accrued).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from app.models.crm import Client, TaxpayerType
from app.models.ledger import Account, OpeningBalance, Voucher, VoucherLine
from app.models.tax import FilingPeriod, LocationClass, TaxAccrual, TaxKind, TaxRate
from app.services import books, ledger_reports, tax_profile, vouchers
from app.services.accounting import CENT, ZERO, exact_sums, last_day_of, money, period_label, year_start
from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.tax_rates import rates_in_force

HUNDRED = Decimal(100)
SALES_CODES = ("5001", "5051")
SURCHARGES = (TaxKind.urban_maintenance, TaxKind.education, TaxKind.local_education)
INCOME_TAX_EXPENSE = "5801"  # 所得税费用
PROFIT_LINE = 30  # 利润总额 on the income statement
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- the period ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaxPeriod:
    """A month (``2026-03``) or a quarter (``2026-Q1``) as months ``first`` to ``last`` (YYYYMM)."""

    label: str
    first: int
    last: int
    kind: FilingPeriod

    @property
    def start(self) -> date:
        return last_day_of(self.first).replace(day=1)

    @property
    def end(self) -> date:
        return last_day_of(self.last)


def parse_tax_period(value: object) -> TaxPeriod:
    """``"2026-03"`` → that month, ``"2026-Q1"`` → January to March. Raises ``ValidationFailed``."""
    text = value.strip() if isinstance(value, str) else ""
    month, quarter = _MONTH.match(text), _QUARTER.match(text)
    if month and 1 <= int(month.group(2)) <= 12 and 1900 <= int(month.group(1)) <= 9999:
        number = int(month.group(1)) * 100 + int(month.group(2))
        return TaxPeriod(period_label(number), number, number, FilingPeriod.monthly)
    if quarter and 1900 <= int(quarter.group(1)) <= 9999:
        year, q = int(quarter.group(1)), int(quarter.group(2))
        return TaxPeriod(f"{year}-Q{q}", year * 100 + 3 * q - 2, year * 100 + 3 * q, FilingPeriod.quarterly)
    raise ValidationFailed({"period": [str(_l("A tax period is written YYYY-MM (a month) or YYYY-Qn (a quarter), "
                                              "for example 2026-03 or 2026-Q1."))]})


def default_period(session: Session, client_id: int) -> str:
    """The period a worksheet screen opens on: the month (or, for a client filing VAT quarterly, the
    quarter) of the latest posted voucher, else of the books' first month. Raises ``NotFound``."""
    latest = ledger_reports.latest_period(session, client_id)
    if tax_profile.tax_profile(session, client_id)["vat_period"] == FilingPeriod.quarterly.value:
        return f"{latest // 100}-Q{(latest % 100 + 2) // 3}"
    return period_label(latest)


# --- the worksheet ---------------------------------------------------------------------------


@dataclass
class WorksheetLine:
    """One tax: its base, the rate applied (percent; ``None`` where the books give the tax, as
    for a general taxpayer's VAT), whether it is exempt, the share relieved (percent), the
    amount and the legal basis of the rate rows used."""

    tax: TaxKind
    base: Decimal
    rate: Decimal | None
    exempt: bool
    reduction: Decimal | None
    amount: Decimal
    basis: str
    rate_ids: list[int] = field(default_factory=list)


@dataclass
class Worksheet:
    client_id: int
    client_name: str
    period: TaxPeriod
    taxpayer_type: TaxpayerType
    vat_period: FilingPeriod
    location_class: LocationClass
    sales: Decimal
    output_vat: Decimal | None
    input_vat: Decimal | None
    carried_credit_in: Decimal  # 上期留抵
    carried_credit: Decimal  # 期末留抵
    lines: list[WorksheetLine]
    rates: list[TaxRate]
    profit_to_date: Decimal | None = None
    income_tax_accrued: Decimal | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    def line(self, tax: TaxKind) -> WorksheetLine | None:
        return next((ln for ln in self.lines if ln.tax is tax), None)


def role_accounts(session: Session, book_id: int) -> dict[str, Account | None]:
    """Each standard sub-account's role (``vat_input``, ``urban_maintenance_payable`` ...) → the account of
    these books that plays it: the one with its code and name, else one with its name under the
    same first-level account (books that named their own sub-accounts), else ``None``."""
    tops = {sub.code[:4] for sub in books.standard_sub_accounts()}
    accounts = list(session.scalars(select(Account).where(
        Account.book_id == book_id, or_(*(Account.code.like(top + "%") for top in tops))).order_by(Account.code)))
    by_code = {a.code: a for a in accounts}
    found: dict[str, Account | None] = {}
    for sub in books.standard_sub_accounts():
        account = by_code.get(sub.code)
        if account is None or account.name != sub.name:
            account = next((a for a in accounts if a.name == sub.name and a.code.startswith(sub.code[:4])
                            and a.level > 1), None)
        found[sub.role] = account
    return found


@dataclass
class _Sums:
    sales: Decimal
    output_vat: Decimal | None
    input_vat: Decimal | None
    carried_in: Decimal
    income_tax_accrued: Decimal | None


def _sums(session: Session, book_id: int, period: TaxPeriod, roles: dict[str, Account | None]) -> _Sums:
    """The books' figures of the worksheet, summed in SQL per account (parents by code prefix)."""
    vat, output, entry = roles.get("vat"), roles.get("vat_output"), roles.get("vat_input")
    income_tax = roles.get("corporate_income_payable")
    prefixes = [*SALES_CODES, *(a.code for a in (vat, output, entry, income_tax) if a is not None)]
    in_period = VoucherLine.period >= period.first
    earlier_this_year = (VoucherLine.period >= year_start(period.last)) & (VoucherLine.period < period.first)
    rows = session.execute(
        select(Account.code,
               func.coalesce(func.sum(case((in_period, VoucherLine.credit - VoucherLine.debit), else_=0)), 0),
               func.coalesce(func.sum(case((~in_period, VoucherLine.debit - VoucherLine.credit), else_=0)), 0),
               func.coalesce(func.sum(case((earlier_this_year, VoucherLine.credit), else_=0)), 0))
        .join(Account, Account.id == VoucherLine.account_id)
        .where(VoucherLine.book_id == book_id, VoucherLine.posted.is_(True), VoucherLine.carry_forward.is_(False),
               VoucherLine.period <= period.last, or_(*(Account.code.like(p + "%") for p in prefixes)))
        .group_by(Account.code)).all()
    openings = session.execute(
        select(Account.code, func.sum(OpeningBalance.debit - OpeningBalance.credit))
        .join(Account, Account.id == OpeningBalance.account_id)
        .where(OpeningBalance.book_id == book_id, Account.code.like((vat.code if vat else "222101") + "%"))
        .group_by(Account.code)).all() if vat is not None else []

    def total(column: int, *codes: str) -> Decimal:
        return sum((Decimal(row[column]) for row in rows if row[0].startswith(codes)), ZERO)

    carried = ZERO
    if vat is not None:
        carried = total(2, vat.code) + sum((Decimal(net or 0) for _, net in openings), ZERO)
    return _Sums(
        sales=_cents(total(1, *SALES_CODES)),
        output_vat=_cents(total(1, output.code)) if output is not None else None,
        input_vat=_cents(-total(1, entry.code)) if entry is not None else None,
        carried_in=_cents(max(carried, ZERO)),
        income_tax_accrued=_cents(total(3, income_tax.code)) if income_tax is not None else None)


def _pick(rows: list[TaxRate], tax: TaxKind, item: str, period: FilingPeriod | None = None) -> TaxRate | None:
    matching = [r for r in rows if r.tax is tax and r.item == item and (r.period is None or r.period is period)]
    # A row for one period (or one location, one taxpayer type) is more precise than one for any.
    matching.sort(key=lambda r: (r.period is None, r.location_class is None, r.taxpayer_type is None))
    return matching[0] if matching else None


def _no_rate(tax: TaxKind, day: date) -> ValidationFailed:
    from app.views.labels import enum_label  # the tax by its name, never its stored value

    return ValidationFailed({"period": [str(_l("No rate of %(tax)s is in force on %(day)s; an Admin adds it on the "
                                               "tax rates screen.", tax=enum_label(tax), day=day.isoformat()))]})


def _basis(*rows: TaxRate | None) -> str:
    return "；".join(dict.fromkeys(r.basis for r in rows if r is not None))


def _vat_line(rows: list[TaxRate], sheet: Worksheet, sums: _Sums) -> WorksheetLine:
    end = sheet.period.end
    if sheet.taxpayer_type is TaxpayerType.small_scale:
        statutory = _pick(rows, TaxKind.vat, "statutory")
        if statutory is None:
            raise _no_rate(TaxKind.vat, end)
        reduced = _pick(rows, TaxKind.vat, "reduced")
        exemption = _pick(rows, TaxKind.vat, "exemption", sheet.vat_period)
        applied = reduced or statutory
        if exemption is not None and exemption.threshold is not None and sums.sales <= exemption.threshold:
            return WorksheetLine(TaxKind.vat, sums.sales, applied.rate, True, None, ZERO, _basis(exemption),
                                 [exemption.id])
        return WorksheetLine(TaxKind.vat, sums.sales, applied.rate, False, None,
                             max(_cents(sums.sales * applied.rate / HUNDRED), ZERO), _basis(applied),
                             [r.id for r in (statutory, reduced) if r is not None])
    general = [r for r in rows if r.tax is TaxKind.vat and r.taxpayer_type is TaxpayerType.general]
    if sums.output_vat is None or sums.input_vat is None:
        sheet.notes.append(str(_l("These books have no 进项税额 / 销项税额 sub-accounts under 应交增值税: the VAT "
                                  "of a general taxpayer cannot be read from them.")))
        return WorksheetLine(TaxKind.vat, sums.sales, None, False, None, ZERO, _basis(*general),
                             [r.id for r in general])
    payable = sums.output_vat - sums.input_vat - sums.carried_in
    sheet.carried_credit = max(-payable, ZERO)
    return WorksheetLine(TaxKind.vat, sums.sales, None, False, None, max(payable, ZERO), _basis(*general),
                         [r.id for r in general])


def _surcharge_line(rows: list[TaxRate], tax: TaxKind, base: Decimal, end: date) -> WorksheetLine:
    statutory = _pick(rows, tax, "statutory")
    if statutory is None:
        raise _no_rate(tax, end)
    relief = _pick(rows, tax, "reduction")
    gross = _cents(base * statutory.rate / HUNDRED)
    share = relief.reduction if relief is not None and relief.reduction is not None else None
    amount = gross - (_cents(gross * share / HUNDRED) if share else ZERO)
    return WorksheetLine(tax, base, statutory.rate, False, share, amount, _basis(statutory, relief if share else None),
                         [r.id for r in (statutory, relief if share else None) if r is not None])


def _ends_filing_period(period: TaxPeriod, every: FilingPeriod) -> bool:
    if every is FilingPeriod.monthly:
        return True
    if every is FilingPeriod.quarterly:
        return period.last % 100 % 3 == 0
    return period.last % 100 == 12


def _income_tax_line(session: Session, rows: list[TaxRate], sheet: Worksheet, sums: _Sums) -> WorksheetLine:
    statement = ledger_reports.income_statement(session, sheet.client_id, period_label(sheet.period.last))
    profit = statement.value(PROFIT_LINE, 1) or ZERO
    sheet.profit_to_date = profit
    sheet.income_tax_accrued = sums.income_tax_accrued or ZERO
    small = _pick(rows, TaxKind.corporate_income, "small_low_profit", FilingPeriod.quarterly)
    statutory = _pick(rows, TaxKind.corporate_income, "statutory")
    applied = small if small is not None and (small.threshold is None or profit <= small.threshold) else statutory
    if applied is None:
        raise _no_rate(TaxKind.corporate_income, sheet.period.end)
    due = _cents(max(profit, ZERO) * applied.rate / HUNDRED) - sheet.income_tax_accrued
    return WorksheetLine(TaxKind.corporate_income, profit, applied.rate, False, None, max(due, ZERO), _basis(applied),
                         [applied.id])


@exact_sums
def worksheet(session: Session, client_id: int, period: object) -> Worksheet:
    """The tax worksheet of *client_id* for *period* (rules in the module docstring). Writes
    nothing. Raises ``NotFound`` and ``ValidationFailed``."""
    tax_period = parse_tax_period(period)
    client = session.get(Client, client_id)
    if client is None:
        raise NotFound({"client_id": [str(_l("No such client."))]})
    book = books.get_book(session, client_id)
    profile = tax_profile.tax_profile(session, client_id)
    vat_period = FilingPeriod(profile["vat_period"])
    if tax_period.kind is not vat_period:
        message = (_l("This client files VAT quarterly: give a quarter, for example 2026-Q1.")
                   if vat_period is FilingPeriod.quarterly else
                   _l("This client files VAT monthly: give a month, for example 2026-03."))
        raise ValidationFailed({"period": [str(message)]})
    if tax_period.last < book.start_period:  # a quarter the books start within is computed from their start
        raise ValidationFailed({"period": [str(_l("The books start in %(start)s.",
                                                  start=period_label(book.start_period)))]})
    location = LocationClass(profile["location_class"])
    rows = rates_in_force(session, tax_period.end, taxpayer_type=client.taxpayer_type, location_class=location)
    roles = role_accounts(session, book.id)
    sums = _sums(session, book.id, tax_period, roles)
    sheet = Worksheet(client.id, client.name, tax_period, client.taxpayer_type, vat_period, location, sums.sales,
                      sums.output_vat, sums.input_vat, sums.carried_in, ZERO, [], [])
    vat = _vat_line(rows, sheet, sums)
    sheet.lines.append(vat)
    sheet.lines.extend(_surcharge_line(rows, tax, vat.amount, tax_period.end) for tax in SURCHARGES)
    income_tax_every = profile["filings"].get(TaxKind.corporate_income.value)
    if income_tax_every and _ends_filing_period(tax_period, FilingPeriod(income_tax_every)):
        sheet.lines.append(_income_tax_line(session, rows, sheet, sums))
    used = {rate_id for line in sheet.lines for rate_id in line.rate_ids}
    sheet.rates = [r for r in rows if r.id in used]
    return sheet


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else money(value)


def worksheet_json(sheet: Worksheet) -> dict:
    """The worksheet as the API answers it: amounts and percentages as strings."""
    return {
        "client_id": sheet.client_id, "period": sheet.period.label, "taxpayer_type": sheet.taxpayer_type.value,
        "vat_period": sheet.vat_period.value, "location_class": sheet.location_class.value,
        "period_start": sheet.period.start.isoformat(), "period_end": sheet.period.end.isoformat(),
        "sales": money(sheet.sales), "output_vat": _amount(sheet.output_vat), "input_vat": _amount(sheet.input_vat),
        "carried_credit_in": money(sheet.carried_credit_in), "carried_credit": money(sheet.carried_credit),
        "profit_to_date": _amount(sheet.profit_to_date), "income_tax_accrued": _amount(sheet.income_tax_accrued),
        "lines": [{"tax": ln.tax.value, "base": money(ln.base), "rate": _amount(ln.rate), "exempt": ln.exempt,
                   "reduction": _amount(ln.reduction), "amount": money(ln.amount), "basis": ln.basis}
                  for ln in sheet.lines],
        "total": money(sheet.total),
        "rates": [{"id": r.id, "tax": r.tax.value, "item": r.item, "rate": money(r.rate),
                   "threshold": _amount(r.threshold), "reduction": _amount(r.reduction),
                   "period": r.period.value if r.period else None,
                   "effective_from": r.effective_from.isoformat(),
                   "effective_to": r.effective_to.isoformat() if r.effective_to else None, "basis": r.basis}
                  for r in sheet.rates],
        "notes": list(sheet.notes),
    }


# --- the accrual voucher ---------------------------------------------------------------------

# tax → (role of the expense account, role of the payable account); the roles are those of
# app/data/accounting/tax_sub_accounts_small_business.csv, "5801" the first-level account.
ACCRUED = {
    TaxKind.urban_maintenance: ("urban_maintenance_expense", "urban_maintenance_payable"),
    TaxKind.education: ("education_expense", "education_payable"),
    TaxKind.local_education: ("local_education_expense", "local_education_payable"),
    TaxKind.corporate_income: (INCOME_TAX_EXPENSE, "corporate_income_payable"),
}


def current_accrual(session: Session, client_id: int, period: str) -> TaxAccrual | None:
    """The accrual of *client_id* for *period* (``2026-03`` / ``2026-Q1``) whose voucher exists."""
    return session.scalar(select(TaxAccrual).where(
        TaxAccrual.client_id == client_id, TaxAccrual.period == period, TaxAccrual.voucher_id.is_not(None)))


def _already(session: Session, accrual: TaxAccrual) -> Conflict:
    voucher = session.get(Voucher, accrual.voucher_id)
    label = voucher.label if voucher is not None else str(accrual.voucher_id)
    return Conflict({"period": [str(_l(
        "The taxes of %(period)s were already accrued by voucher %(voucher)s; delete that draft first to make a "
        "new one.", period=accrual.period, voucher=label))]})


def _accrual_lines(session: Session, book_id: int, sheet: Worksheet) -> list[dict]:
    roles = role_accounts(session, book_id)
    subs = {sub.role: sub for sub in books.standard_sub_accounts()}
    lines: list[dict] = []
    missing: list[str] = []
    for line in sheet.lines:
        if line.tax not in ACCRUED or line.amount <= 0:
            continue
        debit_role, credit_role = ACCRUED[line.tax]
        debit = books.account_by_code(session, book_id, debit_role) if debit_role.isdigit() else roles[debit_role]
        credit = roles[credit_role]
        for account, role in ((debit, debit_role), (credit, credit_role)):
            if account is None:
                missing.append(f"{subs[role].code} {subs[role].name}" if role in subs else role)
        if debit is None or credit is None:
            continue
        memo = debit.name
        lines.append({"account_code": debit.code, "debit": money(line.amount), "credit": None, "memo": memo})
        lines.append({"account_code": credit.code, "debit": None, "credit": money(line.amount), "memo": memo})
    if missing:
        raise ValidationFailed({"account": [str(_l("These books lack the account %(accounts)s; add it first.",
                                                   accounts="、".join(missing)))]})
    # Debits first, then credits, as a voucher is read.
    return [ln for ln in lines if ln["debit"]] + [ln for ln in lines if ln["credit"]]


def accrue(session: Session, client_id: int, period: object, user_id: int | None) -> Voucher:
    """Make the accrual voucher (计提税金) of *client_id* for *period* from its worksheet, as a
    draft made by *user_id*, and keep the worksheet (rules in the module docstring). Commits.
    Raises ``NotFound``, ``ValidationFailed`` (bad period, nothing to accrue, missing account,
    any voucher rule), ``PeriodClosed`` and ``Conflict`` (already accrued)."""
    sheet = worksheet(session, client_id, period)
    existing = current_accrual(session, client_id, sheet.period.label)
    if existing is not None:
        raise _already(session, existing)
    book = books.get_book(session, client_id)
    lines = _accrual_lines(session, book.id, sheet)
    if not lines:
        raise ValidationFailed({"period": [str(_l("Nothing to accrue: every tax of %(period)s on the worksheet is "
                                                  "zero.", period=sheet.period.label))]})
    data = {"date": sheet.period.end.isoformat(), "word": "转", "attachments": 0, "lines": lines,
            "summary": str(_l("Tax accrual for %(period)s", period=sheet.period.label))}
    recorded = json.dumps(worksheet_json(sheet), ensure_ascii=False)

    def keep(voucher: Voucher) -> None:
        # Under the books lock save_voucher took: a concurrent accrual of the period is seen here.
        clash = current_accrual(session, client_id, sheet.period.label)
        if clash is not None:
            raise _already(session, clash)
        session.add(TaxAccrual(client_id=client_id, period=sheet.period.label, period_end=sheet.period.end,
                               voucher_id=voucher.id, total=sheet.total, worksheet=recorded, made_by_id=user_id))
        session.flush()

    return vouchers.save_voucher(session, client_id, data, user_id, before_commit=keep)
