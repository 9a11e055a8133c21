"""The tax rate screen and API (Admin edits, staff read) and the client's tax profile page and API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.crm import Client, TaxpayerType
from app.models.tax import ClientTaxFiling, ClientTaxProfile, TaxKind, TaxRate
from app.services import tax_profile as profile_svc
from tests.factories import make_client

NEW_RATE = {"tax": "stamp", "item": "purchase_contract", "rate": "0.03", "effective_from": "2026-01-01",
            "basis": "《中华人民共和国印花税法》税目税率表：买卖合同，价款的万分之三"}


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _statutory_small_vat(session) -> TaxRate:
    return session.scalar(select(TaxRate).where(TaxRate.tax == TaxKind.vat, TaxRate.item == "statutory",
                                                TaxRate.taxpayer_type == TaxpayerType.small_scale))


# --- API -------------------------------------------------------------------------------------

def test_admin_adds_a_rate_through_the_api_as_strings(app, api_token, session):
    api = app.test_client()
    response = api.post("/api/v1/tax_rate/", headers=api_token("admin"), json=NEW_RATE)
    assert response.status_code == 201, response.json
    row = session.get(TaxRate, response.json["id"])
    assert (row.tax, row.rate, row.taxpayer_type, row.effective_to) == (TaxKind.stamp, Decimal("0.03"), None, None)
    shown = api.get(f"/api/v1/tax_rate/{row.id}", headers=api_token("reviewer")).json["result"]
    assert shown["rate"] == "0.03"
    assert shown["tax"] == "stamp"


def test_rates_given_as_numbers_are_refused(app, api_token, session):
    before = _count(session, TaxRate)
    response = app.test_client().post("/api/v1/tax_rate/", headers=api_token("admin"), json={**NEW_RATE, "rate": 0.03})
    assert response.status_code == 422
    assert "rate" in response.json["errors"] or "rate" in str(response.json)
    assert _count(session, TaxRate) == before


def test_api_refuses_an_overlapping_rate_and_writes_nothing(app, api_token, session):
    before = _count(session, TaxRate)
    response = app.test_client().post("/api/v1/tax_rate/", headers=api_token("admin"), json={
        "tax": "vat", "taxpayer_type": "small_scale", "item": "statutory", "rate": "2.00",
        "effective_from": "2027-01-01", "basis": "新公告"})
    assert response.status_code == 422
    assert "2026-01-01" in response.json["errors"]["effective_from"][0]
    assert _count(session, TaxRate) == before


def test_api_refuses_a_rate_over_100_percent(app, api_token, session):
    response = app.test_client().post("/api/v1/tax_rate/", headers=api_token("admin"),
                                      json={**NEW_RATE, "rate": "130"})
    assert response.status_code == 422
    assert "rate" in response.json["errors"]


@pytest.mark.parametrize("user", ["manager", "accountant", "reviewer"])
def test_staff_read_rates_but_may_not_change_them(app, api_token, session, user):
    api = app.test_client()
    headers = api_token(user)
    listed = api.get("/api/v1/tax_rate/?page_size=100", headers=headers)
    assert listed.status_code == 200
    assert {"tax": "vat", "item": "reduced", "rate": "1.00", "effective_to": "2027-12-31"}.items() <= \
        next(r for r in listed.json["result"] if r["item"] == "reduced").items()
    row = _statutory_small_vat(session)
    assert api.post("/api/v1/tax_rate/", headers=headers, json=NEW_RATE).status_code == 403
    assert api.put(f"/api/v1/tax_rate/{row.id}", headers=headers, json={"rate": "5.00"}).status_code == 403
    assert api.delete(f"/api/v1/tax_rate/{row.id}", headers=headers).status_code == 403
    session.expire_all()
    assert _statutory_small_vat(session).rate == Decimal("3.00")


def test_agent_may_not_read_rates(app, api_token):
    assert app.test_client().get("/api/v1/tax_rate/", headers=api_token("agent")).status_code == 403


def test_admin_ends_a_rate_through_the_api(app, api_token, session):
    row = _statutory_small_vat(session)
    response = app.test_client().put(f"/api/v1/tax_rate/{row.id}", headers=api_token("admin"),
                                     json={"effective_to": "2028-06-30"})
    assert response.status_code == 200, response.json
    session.expire_all()
    assert session.get(TaxRate, row.id).effective_to == date(2028, 6, 30)


# --- screen ----------------------------------------------------------------------------------

def _form(**overrides) -> dict:
    data = {"tax": "stamp", "taxpayer_type": "", "location_class": "", "period": "", "item": "purchase_contract",
            "rate": "0.03", "threshold": "", "reduction": "", "effective_from": "2026-01-01", "effective_to": "",
            "basis": "印花税法 买卖合同 万分之三"}
    data.update(overrides)
    return data


def test_admin_adds_a_rate_on_the_screen(app, login_as, session):
    browser = login_as("admin")
    response = browser.post("/taxratemodelview/add", data=_form())
    assert response.status_code == 302
    row = session.scalar(select(TaxRate).where(TaxRate.item == "purchase_contract"))
    assert (row.rate, row.taxpayer_type, row.period) == (Decimal("0.03"), None, None)
    page = browser.get("/taxratemodelview/list/").get_data(as_text=True)
    assert "purchase_contract" in page


def test_screen_refuses_an_overlap_with_the_reason(app, login_as, session):
    before = _count(session, TaxRate)
    browser = login_as("admin")
    response = browser.post("/taxratemodelview/add", data=_form(
        tax="vat", taxpayer_type="small_scale", item="reduced", rate="0.50", effective_from="2027-06-01"),
        follow_redirects=True)
    assert "2023-01-01" in response.get_data(as_text=True)
    assert _count(session, TaxRate) == before


@pytest.mark.parametrize("user", ["manager", "accountant", "reviewer"])
def test_staff_see_the_rate_list_but_not_the_add_or_edit_forms(app, login_as, session, user):
    browser = login_as(user)
    page = browser.get("/taxratemodelview/list/")
    assert page.status_code == 200
    assert "2027-12-31" in page.get_data(as_text=True)
    row = _statutory_small_vat(session)
    before = _count(session, TaxRate)
    assert browser.post("/taxratemodelview/add", data=_form()).status_code in (302, 403)
    browser.post(f"/taxratemodelview/edit/{row.id}", data=_form(tax="vat", rate="5.00"))
    session.expire_all()
    assert _count(session, TaxRate) == before
    assert _statutory_small_vat(session).rate == Decimal("3.00")
    assert "/taxratemodelview/add" not in browser.get("/taxratemodelview/add").headers.get("Location", "/x")


# --- the tax profile -------------------------------------------------------------------------

def test_accountant_sets_the_profile_of_their_client_through_the_api(app, api_token, session):
    own = make_client(accountant=app.appbuilder.sm.find_user(username="accountant"))
    api = app.test_client()
    headers = api_token("accountant")
    response = api.put(f"/api/v1/client_tax_profile/{own.id}", headers=headers, json={
        "vat_period": "quarterly", "location_class": "other", "filings": {"vat": "quarterly", "stamp": "yearly"}})
    assert response.status_code == 200, response.json
    assert response.json["filings"] == {"vat": "quarterly", "stamp": "yearly"}
    assert api.get(f"/api/v1/client_tax_profile/{own.id}", headers=api_token("reviewer")).json["vat_period"] == \
        "quarterly"


def test_profile_api_refuses_quarterly_vat_for_a_general_taxpayer(app, api_token, session):
    client = make_client(taxpayer_type=TaxpayerType.general)
    response = app.test_client().put(f"/api/v1/client_tax_profile/{client.id}", headers=api_token("manager"), json={
        "vat_period": "quarterly", "location_class": "urban", "filings": {}})
    assert response.status_code == 422
    assert "vat_period" in response.json["errors"]
    assert _count(session, ClientTaxProfile) == 0


def test_profile_of_another_accountants_client_is_404_and_reviewer_cannot_edit(app, api_token, session):
    other = make_client(accountant=app.appbuilder.sm.find_user(username="accountant2"))
    api = app.test_client()
    body = {"vat_period": "monthly", "location_class": "urban", "filings": {"vat": "monthly"}}
    assert api.get(f"/api/v1/client_tax_profile/{other.id}", headers=api_token("accountant")).status_code == 404
    assert api.put(f"/api/v1/client_tax_profile/{other.id}", headers=api_token("accountant"),
                   json=body).status_code == 404
    assert api.put(f"/api/v1/client_tax_profile/{other.id}", headers=api_token("reviewer"),
                   json=body).status_code == 403
    assert api.get("/api/v1/client_tax_profile/987654", headers=api_token("manager")).status_code == 404
    assert _count(session, ClientTaxFiling) == 0


def test_profile_page_is_linked_from_the_client_and_saves(app, login_as, session):
    client = make_client(taxpayer_type=TaxpayerType.small_scale)
    browser = login_as("manager")
    assert f"/clienttaxprofile/{client.id}" in browser.get(f"/clientmodelview/show/{client.id}").get_data(as_text=True)
    assert browser.get(f"/clienttaxprofile/{client.id}").status_code == 200
    response = browser.post(f"/clienttaxprofile/{client.id}/save", data={
        "vat_period": "quarterly", "location_class": "county_town", "filing_vat": "quarterly",
        "filing_education": "monthly", "filing_stamp": "quarterly"})
    assert response.status_code == 422
    assert _count(session, ClientTaxFiling) == 0
    response = browser.post(f"/clienttaxprofile/{client.id}/save", data={
        "vat_period": "quarterly", "location_class": "county_town", "filing_vat": "quarterly",
        "filing_education": "quarterly", "filing_stamp": "quarterly"})
    assert response.status_code == 302
    filings = dict(session.execute(select(ClientTaxFiling.tax, ClientTaxFiling.period)).all())
    assert {k.value: v.value for k, v in filings.items()} == {"vat": "quarterly", "education": "quarterly",
                                                              "stamp": "quarterly"}


def test_reviewer_sees_the_profile_page_without_a_form_and_cannot_save(app, login_as, session):
    client = make_client()
    browser = login_as("reviewer")
    page = browser.get(f"/clienttaxprofile/{client.id}").get_data(as_text=True)
    assert 'id="tax-profile"' in page
    assert "/save" not in page
    browser.post(f"/clienttaxprofile/{client.id}/save", data={"vat_period": "monthly", "location_class": "urban"})
    assert _count(session, ClientTaxProfile) == 0


def _quarterly_small_client(session):
    client = make_client(taxpayer_type=TaxpayerType.small_scale)
    profile_svc.set_tax_profile(session, client.id, "quarterly", "urban", {"vat": "quarterly"})
    return client


def test_a_client_filing_vat_quarterly_cannot_become_a_general_taxpayer_through_the_api(app, api_token, session):
    client = _quarterly_small_client(session)
    api = app.test_client()
    response = api.put(f"/api/v1/client/{client.id}", headers=api_token("manager"), json={"taxpayer_type": "general"})
    assert response.status_code == 422
    assert "taxpayer_type" in response.json["errors"]
    session.expire_all()
    assert session.get(Client, client.id).taxpayer_type is TaxpayerType.small_scale
    profile_svc.set_tax_profile(session, client.id, "monthly", "urban", {"vat": "monthly"})
    response = api.put(f"/api/v1/client/{client.id}", headers=api_token("manager"), json={"taxpayer_type": "general"})
    assert response.status_code == 200, response.json
    session.expire_all()
    assert session.get(Client, client.id).taxpayer_type is TaxpayerType.general


def test_a_client_filing_vat_quarterly_cannot_become_a_general_taxpayer_on_the_screen(app, login_as, session):
    client = _quarterly_small_client(session)
    browser = login_as("manager")
    page = browser.post(f"/clientmodelview/edit/{client.id}", follow_redirects=True, data={
        "name": client.name, "credit_code": client.credit_code, "taxpayer_type": "general", "status": "active"})
    assert "Change its tax profile first" in page.get_data(as_text=True) or "请先修改其税务档案" in \
        page.get_data(as_text=True)
    session.expire_all()
    assert session.get(Client, client.id).taxpayer_type is TaxpayerType.small_scale


def test_deleting_a_client_with_only_a_tax_profile_removes_the_profile(app, api_token, session):
    client = _quarterly_small_client(session)
    response = app.test_client().delete(f"/api/v1/client/{client.id}", headers=api_token("manager"))
    assert response.status_code == 200, response.json
    assert _count(session, ClientTaxProfile) == 0
    assert _count(session, ClientTaxFiling) == 0
