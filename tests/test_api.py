"""REST API: JWT login, validation errors naming the field, row-level rules, money as strings."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models.contracts import Contract, ContractStatus
from app.models.crm import Client
from tests.factories import credit_code, make_client, make_contract


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_login_gives_a_token_and_bad_password_401(app):
    c = app.test_client()
    assert c.post("/api/v1/security/login", json={"username": "manager", "password": "wrong",
                                                  "provider": "db"}).status_code == 401
    assert c.get("/api/v1/client/").status_code == 401


def test_openapi_spec_lists_the_resources(app, api_token):
    spec = app.test_client().get("/api/v1/_openapi", headers=api_token("manager")).json
    paths = spec["paths"]
    assert {"/api/v1/client/", "/api/v1/contract/", "/api/v1/document/upload"} <= set(paths)


def test_create_client_with_credit_code(app, api_token, session):
    response = app.test_client().post("/api/v1/client/", headers=api_token("manager"), json={
        "name": "接口客户有限公司", "credit_code": credit_code(), "taxpayer_type": "general", "status": "active"})
    assert response.status_code == 201, response.json
    assert session.get(Client, response.json["id"]).name == "接口客户有限公司"


def test_bad_credit_code_is_422_naming_the_field(app, api_token, session):
    before = _count(session, Client)
    response = app.test_client().post("/api/v1/client/", headers=api_token("manager"), json={
        "name": "坏代码公司", "credit_code": "91350100M000100Y44", "taxpayer_type": "general", "status": "active"})
    assert response.status_code == 422
    assert "credit_code" in response.json["errors"]
    assert _count(session, Client) == before


def test_accountant_api_sees_own_clients_only(app, api_token):
    own = make_client(name="接口自己的", accountant=app.appbuilder.sm.find_user(username="accountant"))
    other = make_client(name="接口别人的")
    headers = api_token("accountant")
    c = app.test_client()
    names = [row["name"] for row in c.get("/api/v1/client/", headers=headers).json["result"]]
    assert names == ["接口自己的"]
    assert c.get(f"/api/v1/client/{own.id}", headers=headers).status_code == 200
    assert c.get(f"/api/v1/client/{other.id}", headers=headers).status_code == 404
    assert c.put(f"/api/v1/client/{other.id}", headers=headers, json={"notes": "x"}).status_code == 404
    assert c.get(f"/api/v1/client/{other.id}/balance", headers=headers).status_code == 404


def test_id_number_masked_for_reviewer_in_api(app, api_token):
    client = make_client()
    whole = client.legal_rep_id_number
    reviewer = app.test_client().get(f"/api/v1/client/{client.id}", headers=api_token("reviewer")).json
    manager = app.test_client().get(f"/api/v1/client/{client.id}", headers=api_token("manager")).json
    assert reviewer["result"]["legal_rep_id_number"].endswith(whole[-4:])
    assert whole not in reviewer["result"]["legal_rep_id_number"]
    assert manager["result"]["legal_rep_id_number"] == whole


def test_contract_fee_must_be_a_string_with_two_decimals(app, api_token, session):
    client = make_client()
    body = {"client": client.id, "number": "API-1", "service_type": "bookkeeping", "billing_cycle": "monthly",
            "start_date": "2026-01-01", "end_date": "2026-12-31"}
    c = app.test_client()
    headers = api_token("manager")
    assert c.post("/api/v1/contract/", headers=headers, json={**body, "monthly_fee": 500.5}).status_code == 422
    bad = c.post("/api/v1/contract/", headers=headers, json={**body, "monthly_fee": "500.555"})
    assert bad.status_code == 422 and "monthly_fee" in bad.json["errors"]
    dates = c.post("/api/v1/contract/", headers=headers, json={**body, "monthly_fee": "500.00",
                                                                "end_date": "2025-01-01"})
    assert dates.status_code == 422 and "end_date" in dates.json["errors"]
    assert _count(session, Contract) == 0
    ok = c.post("/api/v1/contract/", headers=headers, json={**body, "monthly_fee": "500.50"})
    assert ok.status_code == 201, ok.json
    got = c.get(f"/api/v1/contract/{ok.json['id']}", headers=headers).json["result"]
    assert got["monthly_fee"] == "500.50" and got["status"] == "draft"


def test_contract_transitions_over_api(app, api_token, session):
    contract = make_contract(make_client())
    c = app.test_client()
    headers = api_token("manager")
    url = f"/api/v1/contract/{contract.id}/transition"
    assert c.post(url, headers=headers, json={"action": "terminate", "reason": "x"}).status_code == 409
    assert c.post(url, headers=headers, json={"action": "activate"}).json["status"] == "active"
    no_reason = c.post(url, headers=headers, json={"action": "terminate"})
    assert no_reason.status_code == 422 and "reason" in no_reason.json["errors"]
    changed = c.post(url, headers=headers, json={"action": "change", "reason": "调价",
                                                 "changes": {"monthly_fee": "720.00"}})
    assert changed.json["status"] == "changed"
    assert c.put(f"/api/v1/contract/{contract.id}", headers=headers,
                 json={"notes": "x"}).status_code == 409  # a live contract is amended by "change"
    session.expire_all()
    assert str(session.get(Contract, contract.id).monthly_fee) == "720.00"


def test_accountant_cannot_create_or_transition_contracts(app, api_token):
    client = make_client(accountant=app.appbuilder.sm.find_user(username="accountant"))
    contract = make_contract(client, status=ContractStatus.active)
    headers = api_token("accountant")
    c = app.test_client()
    assert c.post(f"/api/v1/contract/{contract.id}/transition", headers=headers,
                  json={"action": "expire"}).status_code == 403
    assert c.get(f"/api/v1/contract/{contract.id}/balance", headers=headers).json["due"] == "0.00"


def test_duplicate_credit_code_and_contract_number_are_422_naming_the_field(app, api_token, session):
    existing = make_client()
    contract = make_contract(existing)
    c = app.test_client()
    headers = api_token("manager")
    dup = c.post("/api/v1/client/", headers=headers, json={
        "name": "重复", "credit_code": existing.credit_code, "taxpayer_type": "general", "status": "active"})
    assert dup.status_code == 422 and "credit_code" in dup.json["errors"]
    dup = c.post("/api/v1/contract/", headers=headers, json={
        "client": existing.id, "number": contract.number, "service_type": "bookkeeping", "monthly_fee": "1.00",
        "billing_cycle": "monthly", "start_date": "2026-01-01", "end_date": "2026-12-31"})
    assert dup.status_code == 422 and "number" in dup.json["errors"]
    assert _count(session, Client) == 1 and _count(session, Contract) == 1


# --- related-field choices (_info) follow the row-level rule -----------------------------------


def _choices(info: dict, section: str, field: str) -> dict[int, str]:
    column = next(c for c in info[section] if c["name"] == field)
    return {value["id"]: value["value"] for value in column["values"]}


def test_accountant_info_offers_only_their_clients_and_only_themselves(app, api_token, user_id):
    sm = app.appbuilder.sm
    own = make_client(name="自己的客户有限公司", accountant=sm.find_user(username="accountant"))
    other = make_client(name="别人的客户有限公司", accountant=sm.find_user(username="accountant2"))
    c = app.test_client()
    for headers in (api_token("accountant"), None):
        if headers is None:  # the browser session gets the same answer
            c.post("/login/", data={"username": "accountant", "password": "Test-Pass-2026xy"})
        contract_info = c.get("/api/v1/contract/_info", headers=headers or {})
        assert contract_info.status_code == 200
        clients = _choices(contract_info.json, "add_columns", "client")
        assert own.id in clients and other.id not in clients
        assert _choices(contract_info.json, "edit_columns", "client").keys() == clients.keys()

        client_info = c.get("/api/v1/client/_info", headers=headers or {})
        assert client_info.status_code == 200
        assert set(_choices(client_info.json, "edit_columns", "accountant")) == {user_id("accountant")}


def test_manager_info_offers_every_client_and_the_accountants(app, api_token, user_id):
    sm = app.appbuilder.sm
    own = make_client(accountant=sm.find_user(username="accountant"))
    other = make_client(accountant=sm.find_user(username="accountant2"))
    headers = api_token("manager")
    clients = _choices(app.test_client().get("/api/v1/contract/_info", headers=headers).json, "add_columns", "client")
    assert {own.id, other.id} <= clients.keys()
    accountants = _choices(app.test_client().get("/api/v1/client/_info", headers=headers).json,
                           "add_columns", "accountant")
    assert set(accountants) == {user_id("accountant"), user_id("accountant2")}  # not the manager, admin, agents


def test_accountant_client_form_offers_only_themselves_as_accountant(app, login_as, user_id):
    own = make_client(accountant=app.appbuilder.sm.find_user(username="accountant"))
    page = login_as("accountant").get(f"/clientmodelview/edit/{own.id}").get_data(as_text=True)
    assert f'value="{user_id("accountant")}"' in page
    assert f'value="{user_id("accountant2")}"' not in page
