"""Each client's tax profile (税务档案): VAT period, location class and the taxes it files.

The taxpayer type is the client's own (``Client.taxpayer_type``). Rules of
``set_tax_profile`` (checked all together; a refusal writes nothing):

* the VAT period is monthly or quarterly; a general taxpayer (一般纳税人) files VAT monthly, a
  small-scale taxpayer (小规模纳税人) monthly or quarterly;
* each filed tax is one of ``TaxKind`` and appears once, with a period of monthly, quarterly or
  yearly;
* VAT (增值税) and the surcharges on it (城市维护建设税, 教育费附加, 地方教育附加) are filed with
  the VAT, so their period is the VAT period;
* the quarterly prepayment of 企业所得税 is monthly or quarterly (the annual settlement is not a
  separate row); 个人所得税代扣 is monthly; 印花税 may be monthly, quarterly or yearly.

The same rule holds when the client changes: ``check_taxpayer_type`` refuses making a client
with quarterly VAT a general taxpayer until its VAT period is monthly.

Errors: ``NotFound`` (no such client), ``ValidationFailed`` naming ``vat_period``,
``location_class`` or ``filings`` / ``filings.<tax>``.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.crm import Client, TaxpayerType
from app.models.tax import ClientTaxFiling, ClientTaxProfile, FilingPeriod, LocationClass, TaxKind
from app.services.errors import NotFound, ValidationFailed

WITH_VAT = (TaxKind.vat, TaxKind.urban_maintenance, TaxKind.education, TaxKind.local_education)
ALLOWED_PERIODS: dict[TaxKind, tuple[FilingPeriod, ...]] = {
    TaxKind.corporate_income: (FilingPeriod.monthly, FilingPeriod.quarterly),
    TaxKind.individual_income: (FilingPeriod.monthly,),
    TaxKind.stamp: (FilingPeriod.monthly, FilingPeriod.quarterly, FilingPeriod.yearly),
}


def _client(session: Session, client_id: int) -> Client:
    client = session.get(Client, client_id)
    if client is None:
        raise NotFound(str(_l("No such client.")), "client_id")
    return client


def tax_profile(session: Session, client_id: int) -> dict:
    """The client's profile as plain values: ``{"client_id", "taxpayer_type", "vat_period",
    "location_class", "filings": {tax: period}}``; a client without a saved profile shows the
    defaults (monthly VAT, urban, no filings). Raises ``NotFound``."""
    client = _client(session, client_id)
    profile = session.scalar(select(ClientTaxProfile).where(ClientTaxProfile.client_id == client_id))
    filings = session.scalars(select(ClientTaxFiling).where(ClientTaxFiling.client_id == client_id)
                              .order_by(ClientTaxFiling.id))
    return {
        "client_id": client.id,
        "taxpayer_type": client.taxpayer_type.value,
        "vat_period": (profile.vat_period if profile else FilingPeriod.monthly).value,
        "location_class": (profile.location_class if profile else LocationClass.urban).value,
        "filings": {f.tax.value: f.period.value for f in filings},
    }


def _member(enum_cls, value, field: str, errors: dict[str, list[str]]):  # noqa: ANN001, ANN202
    try:
        return enum_cls(value)
    except ValueError:
        errors.setdefault(field, []).append(str(_l("Not a valid choice.")))
        return None


def check_profile(taxpayer_type: TaxpayerType, vat_period: object, location_class: object,
                  filings: object) -> tuple[FilingPeriod, LocationClass, dict[TaxKind, FilingPeriod]]:
    """Validate a profile for a client of *taxpayer_type* (rules in the module docstring) and
    return it as enums. Raises ``ValidationFailed``."""
    errors: dict[str, list[str]] = {}
    period = _member(FilingPeriod, vat_period, "vat_period", errors)
    location = _member(LocationClass, location_class, "location_class", errors)
    if period is FilingPeriod.yearly:
        errors["vat_period"] = [str(_l("VAT is filed monthly or quarterly."))]
    elif period is FilingPeriod.quarterly and taxpayer_type is TaxpayerType.general:
        errors["vat_period"] = [str(_l("A general taxpayer files VAT monthly."))]
    taxes: dict[TaxKind, FilingPeriod] = {}
    if not isinstance(filings, dict):
        errors["filings"] = [str(_l("Give the taxes filed as an object of tax and period."))]
        filings = {}
    for raw_tax, raw_period in filings.items():
        field = f"filings.{raw_tax}"
        tax = _member(TaxKind, raw_tax, field, errors)
        every = _member(FilingPeriod, raw_period, field, errors)
        if tax is None or every is None:
            continue
        if tax in WITH_VAT:
            if period is not None and every is not period:
                errors[field] = [str(_l("VAT and its surcharges are filed with the VAT period."))]
        elif every not in ALLOWED_PERIODS[tax]:
            errors[field] = [str(_l("This tax is not filed with that period."))]
        taxes[tax] = every
    if errors:
        raise ValidationFailed(errors)
    return period, location, taxes


def set_tax_profile(session: Session, client_id: int, vat_period: object, location_class: object,
                    filings: object) -> dict:
    """Replace the client's tax profile (rules in the module docstring), commit, and return it as
    :func:`tax_profile` does. Raises ``NotFound`` or ``ValidationFailed`` and then writes nothing."""
    client = _client(session, client_id)
    period, location, taxes = check_profile(client.taxpayer_type, vat_period, location_class, filings)
    profile = session.scalar(select(ClientTaxProfile).where(ClientTaxProfile.client_id == client_id))
    if profile is None:
        profile = ClientTaxProfile(client_id=client_id)
        session.add(profile)
    profile.vat_period = period
    profile.location_class = location
    # Row by row through the ORM, so that the audit log records each tax added, changed or dropped.
    existing = {f.tax: f for f in session.scalars(
        select(ClientTaxFiling).where(ClientTaxFiling.client_id == client_id))}
    for tax, filing in existing.items():
        if tax not in taxes:
            session.delete(filing)
        elif filing.period is not taxes[tax]:
            filing.period = taxes[tax]
    session.add_all(ClientTaxFiling(client_id=client_id, tax=tax, period=every)
                    for tax, every in taxes.items() if tax not in existing)
    session.commit()
    return tax_profile(session, client_id)


def check_taxpayer_type(session: Session, client: Client) -> None:
    """Before a client is saved: a general taxpayer files VAT monthly, so a client whose profile
    says quarterly VAT may not become one (change the profile first). Raises ``ValidationFailed``
    naming ``taxpayer_type``."""
    if client.id is None or client.taxpayer_type is None:
        return
    kind = TaxpayerType(getattr(client.taxpayer_type, "value", client.taxpayer_type))
    if kind is not TaxpayerType.general:
        return
    with session.no_autoflush:
        period = session.scalar(select(ClientTaxProfile.vat_period).where(ClientTaxProfile.client_id == client.id))
    if period is FilingPeriod.quarterly:
        raise ValidationFailed({"taxpayer_type": [str(_l(
            "This client files VAT quarterly; a general taxpayer files monthly. Change its tax profile first."))]})
