"""Clients: credit-code and ID validation, encryption at rest, masking, accountant scope."""

from __future__ import annotations

from sqlalchemy import func, select, text

from app.models.crm import BankAccount, Client
from app.services.clients import credit_code_error, id_number_error, mask
from tests.factories import credit_code, id_number, make_bank_account, make_client


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _form(**overrides) -> dict:
    data = {"name": "新建客户有限公司", "credit_code": credit_code(), "taxpayer_type": "small_scale",
            "status": "active", "legal_rep_name": "赵六", "legal_rep_id_number": id_number(7)}
    data.update(overrides)
    return data


def test_known_valid_credit_codes_pass_and_a_changed_digit_fails():
    assert credit_code_error("91350100M000100Y43") is None  # published example (GB 32100)
    assert credit_code_error("91110000600037341L") is None
    assert credit_code_error("91350100M000100Y44") is not None
    assert credit_code_error("91350100M000100Y4") is not None  # 17 characters
    assert credit_code_error("91350100M000100I43") is not None  # I is not allowed


def test_id_number_check_digit():
    assert id_number_error("11010519491231002X") is None
    assert id_number_error("110105194912310021") is not None
    assert id_number_error("") is None


def test_manager_adds_client_through_the_screen(login_as, session):
    c = login_as("manager")
    response = c.post("/clientmodelview/add", data=_form(name="屏幕新增有限公司"), follow_redirects=True)
    assert response.status_code == 200
    client = session.scalar(select(Client).where(Client.name == "屏幕新增有限公司"))
    assert client is not None and client.legal_rep_id_number == id_number(7)


def test_bad_credit_code_is_a_form_error_and_writes_nothing(login_as, session):
    before = _count(session, Client)
    c = login_as("manager")
    response = c.post("/clientmodelview/add", data=_form(credit_code="91350100M000100Y44"))
    assert response.status_code == 200
    assert "check character" in response.get_data(as_text=True) or "校验" in response.get_data(as_text=True)
    assert _count(session, Client) == before


def test_bad_id_number_is_a_form_error(login_as, session):
    before = _count(session, Client)
    response = login_as("manager").post("/clientmodelview/add", data=_form(legal_rep_id_number="110105194912310021"))
    assert response.status_code == 200
    assert _count(session, Client) == before


def test_id_and_bank_numbers_are_encrypted_at_rest(session):
    client = make_client(legal_rep_id_number=id_number(3))
    make_bank_account(client, number="6222021001000099999")
    raw_id = session.execute(text("SELECT legal_rep_id_number FROM client WHERE id = :i"), {"i": client.id}).scalar()
    raw_bank = session.execute(text("SELECT account_number FROM bank_account WHERE client_id = :i"),
                               {"i": client.id}).scalar()
    assert id_number(3) not in raw_id and raw_id.startswith("gAAAA")
    assert "6222021001000099999" not in raw_bank
    session.expire_all()
    assert session.get(Client, client.id).legal_rep_id_number == id_number(3)


def test_reviewer_sees_masked_id_number_manager_sees_it_whole(app, login_as):
    client = make_client(legal_rep_id_number=id_number(4))
    whole = id_number(4)
    reviewer_page = login_as("reviewer").get(f"/clientmodelview/show/{client.id}").get_data(as_text=True)
    manager_page = login_as("manager").get(f"/clientmodelview/show/{client.id}").get_data(as_text=True)
    assert whole not in reviewer_page and mask(whole) in reviewer_page
    assert whole in manager_page


def test_edit_form_never_renders_the_stored_secret_and_blank_keeps_it(login_as, session):
    client = make_client(legal_rep_id_number=id_number(5))
    c = login_as("manager")
    page = c.get(f"/clientmodelview/edit/{client.id}").get_data(as_text=True)
    assert id_number(5) not in page
    data = _form(name=client.name, credit_code=client.credit_code, legal_rep_id_number="", notes="更新备注")
    c.post(f"/clientmodelview/edit/{client.id}", data=data)
    session.expire_all()
    fresh = session.get(Client, client.id)
    assert fresh.notes == "更新备注" and fresh.legal_rep_id_number == id_number(5)


def test_accountant_sees_only_assigned_clients(app, login_as):
    own = make_client(name="自己的客户", accountant=app.appbuilder.sm.find_user(username="accountant"))
    other = make_client(name="别人的客户", accountant=app.appbuilder.sm.find_user(username="accountant2"))
    c = login_as("accountant")
    listing = c.get("/clientmodelview/list/").get_data(as_text=True)
    assert "自己的客户" in listing and "别人的客户" not in listing
    assert c.get(f"/clientmodelview/show/{own.id}").status_code == 200
    assert c.get(f"/clientmodelview/show/{other.id}").status_code == 404
    assert c.get(f"/clientmodelview/edit/{other.id}").status_code == 404


def test_accountant_cannot_hand_a_client_to_someone_else(app, login_as, session, user_id):
    client = make_client(accountant=app.appbuilder.sm.find_user(username="accountant"))
    c = login_as("accountant")
    c.post(f"/clientmodelview/edit/{client.id}",
           data=_form(name=client.name, credit_code=client.credit_code, accountant=user_id("accountant2")))
    session.expire_all()
    assert session.get(Client, client.id).accountant_id == user_id("accountant")


def test_bank_account_number_is_masked_without_the_personal_data_permission(app, login_as, session):
    client = make_client(accountant=app.appbuilder.sm.find_user(username="accountant"))
    make_bank_account(client, number="6222021001000077777")
    assert "6222021001000077777" in login_as("accountant").get("/bankaccountmodelview/list/").get_data(as_text=True)
    sm = app.appbuilder.sm
    role = sm.find_role("Accountant")
    role.permissions = [p for p in role.permissions if p.view_menu.name != "ClientSensitiveData"]
    session.commit()
    page = login_as("accountant").get("/bankaccountmodelview/list/").get_data(as_text=True)
    assert "6222021001000077777" not in page and mask("6222021001000077777") in page
    assert _count(session, BankAccount) == 1


def test_client_page_shows_its_contacts_contracts_and_documents(app, login_as):
    from app.models.contracts import ContractStatus
    from tests.factories import make_contact, make_contract

    client = make_client(name="主从客户")
    make_contact(client, name="联系人甲")
    make_contract(client, status=ContractStatus.active, number="HT-MD-1")
    page = login_as("manager").get(f"/clientmodelview/show/{client.id}").get_data(as_text=True)
    assert "联系人甲" in page and "HT-MD-1" in page
    reviewer_page = login_as("reviewer").get(f"/clientmodelview/show/{client.id}").get_data(as_text=True)
    assert "联系人甲" in reviewer_page and "HT-MD-1" not in reviewer_page
