"""Tax rates as effective-dated data and each client's tax profile."""

from __future__ import annotations

import importlib.util
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import func, inspect, select

from app.extensions import db
from app.models.crm import TaxpayerType
from app.models.tax import ClientTaxFiling, ClientTaxProfile, LocationClass, TaxKind, TaxRate
from app.services import tax_profile as profile_svc
from app.services.errors import NotFound, ValidationFailed
from app.services.tax_rates import check_rate, rates_in_force
from tests.factories import make_client

SMALL = TaxpayerType.small_scale


def _vat_rates(session, on: date) -> dict[str, Decimal]:
    rows = rates_in_force(session, on, tax=TaxKind.vat, taxpayer_type=SMALL)
    return {f"{r.item}/{r.period.value if r.period else ''}": r.rate for r in rows}


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_seeded_small_scale_vat_is_1_percent_until_2027_end_then_only_the_statutory_3(session):
    on_last_day = _vat_rates(session, date(2027, 12, 31))
    assert on_last_day == {"statutory/": Decimal("3.00"), "reduced/": Decimal("1.00"),
                           "exemption/monthly": Decimal("0.00"), "exemption/quarterly": Decimal("0.00")}
    assert _vat_rates(session, date(2028, 1, 1)) == {"statutory/": Decimal("3.00")}


def test_seeded_exemption_thresholds_and_surcharge_halving(session):
    rows = rates_in_force(session, date(2026, 3, 31), taxpayer_type=SMALL, location_class=LocationClass.county_town)
    by_key = {(r.tax.value, r.item, r.period.value if r.period else None): r for r in rows}
    assert by_key[("vat", "exemption", "monthly")].threshold == Decimal("100000.00")
    assert by_key[("vat", "exemption", "quarterly")].threshold == Decimal("300000.00")
    assert by_key[("urban_maintenance", "statutory", None)].rate == Decimal("5.00")  # county town
    assert by_key[("education", "statutory", None)].rate == Decimal("3.00")
    assert by_key[("local_education", "statutory", None)].rate == Decimal("2.00")
    for tax in ("urban_maintenance", "education", "local_education"):
        assert by_key[(tax, "reduction", None)].reduction == Decimal("50.00")
    assert "2023年第12号" in by_key[("education", "reduction", None)].basis
    # no general-taxpayer row and no other location's rate leaks in
    assert not any(r.taxpayer_type is TaxpayerType.general for r in rows)
    assert [r.rate for r in rows if r.tax is TaxKind.urban_maintenance and r.item == "statutory"] == [Decimal("5.00")]


def test_general_taxpayer_rates_and_no_halving_after_2027(session):
    rows = rates_in_force(session, date(2028, 6, 30), taxpayer_type=TaxpayerType.general,
                          location_class=LocationClass.urban)
    vat = {r.item: (r.rate, r.input_credit) for r in rows if r.tax is TaxKind.vat}
    assert vat == {"goods": (Decimal("13.00"), True), "transport": (Decimal("9.00"), True),
                   "services": (Decimal("6.00"), True)}
    assert not [r for r in rows if r.item == "reduction"]
    assert [r.rate for r in rows if r.tax is TaxKind.urban_maintenance] == [Decimal("7.00")]


def test_small_low_profit_corporate_income_prepayment_at_5_percent(session):
    rows = rates_in_force(session, date(2026, 6, 30), tax=TaxKind.corporate_income)
    small = [r for r in rows if r.item == "small_low_profit"]
    assert [(r.rate, r.period.value, r.threshold) for r in small] == [
        (Decimal("5.00"), "quarterly", Decimal("3000000.00"))]


def _new_rate(**kw) -> TaxRate:
    data = dict(tax=TaxKind.vat, taxpayer_type=SMALL, item="statutory", rate=Decimal("2.00"),
                effective_from=date(2028, 1, 1), basis="新的公告")
    data.update(kw)
    return TaxRate(**data)


def test_a_newer_row_takes_over_once_the_old_one_is_ended(session):
    statutory = session.scalar(select(TaxRate).where(TaxRate.tax == TaxKind.vat, TaxRate.item == "statutory",
                                                     TaxRate.taxpayer_type == SMALL))
    statutory.effective_to = date(2028, 12, 31)
    check_rate(session, statutory)
    newer = _new_rate(effective_from=date(2029, 1, 1))
    check_rate(session, newer)
    session.add(newer)
    session.commit()
    assert _vat_rates(session, date(2028, 12, 31)) == {"statutory/": Decimal("3.00")}
    assert _vat_rates(session, date(2029, 1, 1)) == {"statutory/": Decimal("2.00")}


@pytest.mark.parametrize(("start", "end"), [
    (date(2028, 1, 1), None),               # open-ended row already covers 2028
    (date(2025, 1, 1), date(2026, 1, 1)),   # touches the first day of the seeded row
])
def test_overlapping_row_of_the_same_key_is_refused(session, start, end):
    before = _count(session, TaxRate)
    with pytest.raises(ValidationFailed) as caught:
        check_rate(session, _new_rate(effective_from=start, effective_to=end))
    assert "2026-01-01" in caught.value.errors["effective_from"][0]
    session.rollback()
    assert _count(session, TaxRate) == before


def test_the_same_dates_for_another_key_are_accepted(session):
    check_rate(session, _new_rate(taxpayer_type=TaxpayerType.general, item="goods_new"))
    check_rate(session, _new_rate(effective_from=date(2025, 1, 1), effective_to=date(2025, 12, 31)))


def test_bad_rate_rows_are_refused_naming_the_field(session):
    with pytest.raises(ValidationFailed) as caught:
        check_rate(session, _new_rate(rate=Decimal("101"), reduction=Decimal("-1"), threshold=Decimal("-5"),
                                      basis=" ", effective_to=date(2027, 1, 1)))
    assert set(caught.value.errors) == {"rate", "reduction", "threshold", "basis", "effective_to"}


# --- tax profile ---------------------------------------------------------------------------

def test_small_scale_client_may_file_vat_quarterly_with_its_surcharges(session):
    client = make_client(taxpayer_type=SMALL)
    saved = profile_svc.set_tax_profile(session, client.id, "quarterly", "county_town", {
        "vat": "quarterly", "urban_maintenance": "quarterly", "education": "quarterly",
        "corporate_income": "quarterly", "individual_income": "monthly", "stamp": "yearly"})
    assert saved["vat_period"] == "quarterly"
    assert saved["location_class"] == "county_town"
    assert saved["taxpayer_type"] == "small_scale"
    assert saved["filings"]["stamp"] == "yearly"
    session.expire_all()
    assert profile_svc.tax_profile(session, client.id) == saved
    # saving again replaces the filings
    again = profile_svc.set_tax_profile(session, client.id, "monthly", "urban", {"vat": "monthly"})
    assert again["filings"] == {"vat": "monthly"}
    assert _count(session, ClientTaxFiling) == 1


def test_general_taxpayer_may_not_file_vat_quarterly_and_nothing_is_written(session):
    client = make_client(taxpayer_type=TaxpayerType.general)
    with pytest.raises(ValidationFailed) as caught:
        profile_svc.set_tax_profile(session, client.id, "quarterly", "urban", {"vat": "quarterly"})
    assert list(caught.value.errors) == ["vat_period"]
    assert _count(session, ClientTaxProfile) == 0
    assert _count(session, ClientTaxFiling) == 0


def test_profile_rules_name_each_bad_filing(session):
    client = make_client(taxpayer_type=SMALL)
    with pytest.raises(ValidationFailed) as caught:
        profile_svc.set_tax_profile(session, client.id, "monthly", "suburb", {
            "vat": "monthly", "education": "quarterly", "individual_income": "yearly", "lottery": "monthly"})
    assert set(caught.value.errors) == {"location_class", "filings.education", "filings.individual_income",
                                        "filings.lottery"}
    with pytest.raises(ValidationFailed) as caught:
        profile_svc.set_tax_profile(session, client.id, "yearly", "urban", {})
    assert list(caught.value.errors) == ["vat_period"]
    assert _count(session, ClientTaxProfile) == 0


def test_profile_of_a_missing_client_is_not_found(session):
    with pytest.raises(NotFound):
        profile_svc.tax_profile(session, 987654)


def test_client_without_a_profile_shows_the_defaults(session):
    client = make_client(taxpayer_type=TaxpayerType.general)
    assert profile_svc.tax_profile(session, client.id) == {
        "client_id": client.id, "taxpayer_type": "general", "vat_period": "monthly",
        "location_class": "urban", "filings": {}}


# --- the migration ---------------------------------------------------------------------------


def _migration():
    path = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "0009_tax_rates.py"
    spec = importlib.util.spec_from_file_location("tax_rates_migration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_drops_the_tax_tables_and_recreates_them_seeded(app, session):
    session.commit()
    migration = _migration()
    tables = {"tax_rate", "client_tax_profile", "client_tax_filing"}
    with db.engine.connect() as connection:
        connection.begin()
        with Operations.context(MigrationContext.configure(connection)):
            migration.downgrade()
            assert not tables & set(inspect(connection).get_table_names())
            assert "client" in inspect(connection).get_table_names()
            migration.upgrade()
        assert tables <= set(inspect(connection).get_table_names())
        rates = connection.execute(select(TaxRate.rate, TaxRate.threshold).where(
            TaxRate.tax == TaxKind.vat, TaxRate.item == "exemption").order_by(TaxRate.period)).all()
        assert [tuple(r) for r in rates] == [(Decimal("0.00"), Decimal("100000.00")),
                                             (Decimal("0.00"), Decimal("300000.00"))]
        assert connection.execute(select(func.count()).select_from(TaxRate)).scalar() == len(migration.SEED)
        connection.commit()


def test_each_filing_added_changed_or_dropped_is_in_the_audit_log(session):
    from app.models.security import AuditLog

    client = make_client(taxpayer_type=SMALL)
    profile_svc.set_tax_profile(session, client.id, "monthly", "urban", {"vat": "monthly", "stamp": "yearly"})
    profile_svc.set_tax_profile(session, client.id, "monthly", "urban", {"vat": "monthly", "stamp": "quarterly",
                                                                         "individual_income": "monthly"})
    profile_svc.set_tax_profile(session, client.id, "monthly", "urban", {"vat": "monthly"})
    actions = session.execute(select(AuditLog.action, func.count()).where(AuditLog.object_type == "client_tax_filing")
                              .group_by(AuditLog.action)).all()
    assert dict(actions) == {"create": 3, "update": 1, "delete": 2}
