"""Demo tax work: the demo clients' tax profiles and this year's filing records, so that the
filing lists, the overdue list and the reminders show a realistic month out of the box.

- 上海明远商贸 (general taxpayer, books): VAT, 城建税, 教育费附加 and 地方教育附加 monthly, 个人所得税
  代扣 monthly, 企业所得税 quarterly.
- 杭州青禾科技 (small-scale, books): VAT and the surcharges quarterly, 企业所得税 quarterly.
- 苏州安泰餐饮 (small-scale, no books with us): VAT and the surcharges quarterly, zero returns.

Every record due before today is filed — with the amount of the tax worksheet of the client's books
where there are books, as a 零申报 where the amount is zero — and paid, except the last month's
个人所得税 of 上海明远, left unfiled so that the overdue list has a row. Records due from today on
stay pending (the coming deadline). Seeding is skipped when the demo clients have a tax profile.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.extensions import db
from app.models.crm import Client
from app.models.ledger import LedgerBook
from app.models.tax import ClientTaxProfile, TaxKind
from app.models.tax_filing import FilingStatus, TaxFiling
from app.services import tax_filings, tax_profile, tax_worksheet
from app.services.demo import make_credit_code
from app.services.demo_ledger import one_transaction
from app.services.errors import DomainError

MONTHLY_ALL = {"vat": "monthly", "urban_maintenance": "monthly", "education": "monthly",
               "local_education": "monthly", "individual_income": "monthly", "corporate_income": "quarterly"}
QUARTERLY = {"vat": "quarterly", "urban_maintenance": "quarterly", "education": "quarterly",
             "local_education": "quarterly", "corporate_income": "quarterly"}
PROFILES = (("91310000MA1K00001", "monthly", MONTHLY_ALL), ("91330100MA2H00002", "quarterly", QUARTERLY),
            ("91320500MA1M00003", "quarterly", {"vat": "quarterly", "urban_maintenance": "quarterly"}))
LEFT_OVERDUE = ("91310000MA1K00001", TaxKind.individual_income)


def _sheet_periods(period: str) -> list[str]:
    """The worksheet periods that hold a record's tax: its own, and for a quarter the quarter's
    last month (a monthly VAT filer's worksheet carries the quarterly 企业所得税 there)."""
    if "-Q" in period:
        year, quarter = period.split("-Q")
        return [period, f"{year}-{int(quarter) * 3:02d}"]
    return [period]


def _amount(session: Session, filing: TaxFiling, with_books: set[int], cache: dict) -> Decimal:
    """The tax of *filing* by the client's worksheet; 0 without books or without that tax."""
    if filing.client_id not in with_books:
        return Decimal("0.00")
    if filing.tax is TaxKind.individual_income:  # withheld on the payroll, not in the worksheet
        return Decimal("86.40")
    for period in _sheet_periods(filing.period):
        key = (filing.client_id, period)
        if key not in cache:
            try:
                sheet = tax_worksheet.worksheet(session, filing.client_id, period)
                cache[key] = {line.tax: line.amount for line in sheet.lines}
            except DomainError:
                cache[key] = {}
        if filing.tax in cache[key]:
            return cache[key][filing.tax]
    return Decimal("0.00")


def seed_tax_data(app: Flask, today: date | None = None) -> int:
    """Give the demo clients their tax profiles and this year's filing records (rules in the
    module docstring); returns the number of records made (0 when already seeded)."""
    today = today or date.today()
    accountant = app.appbuilder.sm.find_user(username="accountant")
    clients = {code: db.session.scalar(select(Client).where(Client.credit_code == make_credit_code(code)))
               for code, _, _ in PROFILES}
    if accountant is None or None in clients.values() or db.session.scalar(
            select(ClientTaxProfile.id).where(ClientTaxProfile.client_id.in_([c.id for c in clients.values()]))):
        return 0
    with one_transaction() as session:  # one disk sync; every service still applies its rules
        for code, vat_period, taxes in PROFILES:
            tax_profile.set_tax_profile(session, clients[code].id, vat_period, "urban", taxes)
        made = 0
        for month in range(2, today.month + 1):
            made += len(tax_filings.generate_month(session, f"{today.year:04d}-{month:02d}"))
        cache: dict = {}
        with_books = set(session.scalars(select(LedgerBook.client_id)))
        overdue_client = clients[LEFT_OVERDUE[0]].id
        past = list(session.scalars(select(TaxFiling).where(TaxFiling.due < today).order_by(TaxFiling.due)))
        last_due = max((f.due for f in past), default=None)
        for filing in past:
            if (filing.client_id, filing.tax) == (overdue_client, LEFT_OVERDUE[1]) and filing.due == last_due:
                continue
            amount = _amount(session, filing, with_books, cache)
            if filing.status is FilingStatus.pending:
                tax_filings.file_return(session, filing.id, accountant.id, amount == 0,
                                        None if amount == 0 else str(amount))
            if amount != 0:
                tax_filings.record_payment(session, filing.id, accountant.id, str(amount))
    return made
