"""Demo tax work: the demo clients' tax profiles and this year's filing records, seeded for a fixed
day (2026-12-06) so that the expectations do not depend on the day the suite runs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from app.models.tax_filing import FilingStatus, TaxFiling
from app.services import reminders, tax_worksheet
from app.services.demo import seed_business_data
from app.services.demo_tax import seed_tax_data

TODAY = date(2026, 12, 6)


def _filings(session) -> list[TaxFiling]:
    session.expire_all()
    return list(session.scalars(select(TaxFiling).order_by(TaxFiling.due, TaxFiling.id)))


def test_the_demo_year_is_filed_and_paid_but_one_late_return_and_the_coming_deadline(app, session):
    seed_business_data(app, TODAY)
    filings = _filings(session)
    open_ = [(f.client.name, f.tax.value, f.period, f.due.isoformat()) for f in filings
             if f.status is FilingStatus.pending]
    assert open_ == [("上海明远商贸有限公司", "individual_income", "2026-10", "2026-11-16")] + [
        ("上海明远商贸有限公司", tax, "2026-11", "2026-12-15")
        for tax in ("vat", "urban_maintenance", "education", "local_education", "individual_income")]
    assert [(f.client.name, f.tax.value) for f in reminders.manager_items(session, TODAY)] == [
        ("上海明远商贸有限公司", "individual_income")]
    # No books with us: every return of 苏州安泰 is a zero return, never paid.
    anta = [f for f in filings if f.client.name == "苏州安泰餐饮管理有限公司"]
    assert anta and all(f.status is FilingStatus.filed and f.zero_return for f in anta)


def test_filed_amounts_are_those_of_the_tax_worksheet(app, session):
    seed_business_data(app, TODAY)
    august = {f.tax.value: f for f in _filings(session)
              if f.client.name == "上海明远商贸有限公司" and f.period == "2026-08"}
    sheet = tax_worksheet.worksheet(session, august["vat"].client_id, "2026-08")
    expected = {line.tax.value: line.amount for line in sheet.lines}
    for tax in ("vat", "urban_maintenance", "education", "local_education"):
        assert august[tax].status is FilingStatus.paid
        assert august[tax].tax_amount == august[tax].paid_amount == expected[tax] > Decimal("0")


def test_seeding_twice_makes_nothing(app, session):
    seed_business_data(app, TODAY)
    count = session.scalar(select(func.count()).select_from(TaxFiling))
    assert count > 0
    assert seed_tax_data(app, TODAY) == 0
    assert session.scalar(select(func.count()).select_from(TaxFiling)) == count
