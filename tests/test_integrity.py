"""Referential integrity: both databases enforce foreign keys, a client that holds data is never
deleted (409 naming what holds it, from every face), no answer carries the driver's text, and the
API takes related rows by id only."""

from __future__ import annotations

import io
from datetime import date

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models.contracts import Contract, ContractStatus, FeeBill
from app.models.crm import BankAccount, Client, ClientContact, ServiceRecord, Tag
from app.models.documents import Document, DocumentType
from app.models.ledger import LedgerBook, Voucher, VoucherLine
from app.services import contracts as contract_svc
from app.services.documents import store_document
from tests.factories import (
    credit_code,
    make_bank_account,
    make_books,
    make_client,
    make_contact,
    make_contract,
    make_service_record,
    make_voucher,
)

SQL_WORDS = ("DELETE", "FOREIGN KEY", "constraint", "sqlite", "psycopg", "violates", "ledger_", "INSERT", "UPDATE")


@pytest.fixture(autouse=True)
def _chinese(app):
    """Answers are in the default language (zh_CN) with the catalog compiled and loaded afresh."""
    from app.services.i18n import ensure_compiled

    ensure_compiled()
    app.extensions["babel"].instance.domain_instance.cache.clear()


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def _no_driver_text(body: str) -> None:
    for word in SQL_WORDS:
        assert word.lower() not in body.lower(), body


# --- the database enforces the keys -----------------------------------------------------------

def test_a_direct_delete_of_a_referenced_client_is_refused_by_the_database(app, session):
    """SQLite used to accept this and leave the contract pointing at nothing."""
    client = make_client()
    contract = make_contract(client)
    with pytest.raises(IntegrityError):
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM client WHERE id = :id"), {"id": client.id})
    session.expire_all()
    assert session.get(Client, client.id) is not None
    assert session.get(Contract, contract.id).client_id == client.id


def test_a_row_pointing_at_nothing_cannot_be_written(app, session):
    with pytest.raises(IntegrityError):
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO service_record (client_id, subject, performed_at, created_at, updated_at) "
                              "VALUES (999999, 'x', '2026-01-01', '2026-01-01', '2026-01-01')"))
    assert _count(session, ServiceRecord, ServiceRecord.client_id == 999999) == 0


def test_ondelete_cascade_and_set_null_happen_in_the_database(app, session, user_id):
    """A raw delete follows the keys' rules: a client's contacts go with it (CASCADE), and a
    chat visitor who was a contact keeps its chats but loses the link (SET NULL)."""
    from app.models.chat import ChatSite, Visitor

    client = make_client()
    contact = make_contact(client)
    site = ChatSite(name="官网", site_key="integrity-site", identity_secret="s" * 32,
                    allowed_origins="https://example.com")
    session.add(site)
    session.commit()
    visitor = Visitor(site_id=site.id, uid="v-integrity", contact_id=contact.id)
    session.add(visitor)
    session.commit()
    client_id, contact_id, visitor_id = client.id, contact.id, visitor.id
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM client WHERE id = :id"), {"id": client_id})
    session.expunge_all()
    assert session.get(ClientContact, contact_id) is None
    assert session.get(Visitor, visitor_id).contact_id is None


def test_sqlite_connections_enforce_foreign_keys_after_migrations(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("a SQLite setting")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []


# --- deleting a client -----------------------------------------------------------------------

def _with_books(app, session, client, user_id):
    book = make_books(client)
    make_voucher(book, user_id("accountant"))
    make_voucher(book, user_id("accountant"), day="2026-01-16")
    return "1 套账、2 张凭证"


def _with_contract(app, session, client, user_id):
    make_contract(client)
    return "1 份合同"


def _with_bills(app, session, client, user_id):
    contract = make_contract(client, status=ContractStatus.active)
    contract_svc.bill_contract(session, contract, date(2026, 2, 1))
    session.commit()
    return "1 份合同、2 张收费账单"


def _with_document(app, session, client, user_id):
    store_document(session, app.config["UPLOAD_DIR"], app.config["UPLOAD_MAX_BYTES"], client_id=client.id,
                   filename="a.pdf", stream=io.BytesIO(b"%PDF-1.4\n%%EOF\n"), doc_type=DocumentType.invoice,
                   title="存档发票")
    return "1 份档案"


def _with_service_record(app, session, client, user_id):
    make_service_record(client)
    make_service_record(client)
    return "2 条服务记录"


HOLDERS = [_with_books, _with_contract, _with_bills, _with_document, _with_service_record]


def _everything(session, client_id: int) -> dict:
    return {"client": _count(session, Client, Client.id == client_id),
            "books": _count(session, LedgerBook, LedgerBook.client_id == client_id),
            "vouchers": _count(session, Voucher, Voucher.client_id == client_id),
            "lines": _count(session, VoucherLine),
            "contracts": _count(session, Contract, Contract.client_id == client_id),
            "bills": _count(session, FeeBill),
            "documents": _count(session, Document, Document.client_id == client_id),
            "records": _count(session, ServiceRecord, ServiceRecord.client_id == client_id),
            "contacts": _count(session, ClientContact, ClientContact.client_id == client_id)}


@pytest.mark.parametrize("holder", HOLDERS, ids=lambda f: f.__name__[6:])
def test_api_delete_of_a_client_with_data_is_409_naming_it_and_deletes_nothing(
        app, session, api_token, user_id, holder):
    client = make_client(name="有账客户有限公司")
    make_contact(client)
    named = holder(app, session, client, user_id)
    before = _everything(session, client.id)

    response = app.test_client().delete(f"/api/v1/client/{client.id}", headers=api_token("manager"))

    assert response.status_code == 409, response.json
    message = response.json["errors"]["_"][0]
    assert "有账客户有限公司" in message and named in message
    assert "暂停服务" in message and "已停止服务" in message
    _no_driver_text(response.get_data(as_text=True))
    session.expire_all()
    assert _everything(session, client.id) == before


def test_the_refusal_names_every_holder_in_one_sentence(app, session, api_token, user_id):
    client = make_client(name="样板客户有限公司")
    _with_books(app, session, client, user_id)
    _with_bills(app, session, client, user_id)
    response = app.test_client().delete(f"/api/v1/client/{client.id}", headers=api_token("manager"))

    assert response.status_code == 409
    message = response.json["errors"]["_"][0]
    assert message.startswith("客户 样板客户有限公司 有 1 套账、2 张凭证、1 份合同、2 张收费账单")
    assert "暂停服务" in message and "已停止服务" in message


def test_api_delete_of_a_client_without_data_deletes_it_with_its_contacts(app, session, api_token):
    client = make_client()
    contact = make_contact(client)
    account = make_bank_account(client)
    tag = Tag(name="待删除")
    client.tags.append(tag)
    session.commit()
    ids = client.id, contact.id, account.id, tag.id

    response = app.test_client().delete(f"/api/v1/client/{ids[0]}", headers=api_token("manager"))

    assert response.status_code == 200, response.json
    session.expunge_all()
    assert session.get(Client, ids[0]) is None
    assert session.get(ClientContact, ids[1]) is None
    assert session.get(BankAccount, ids[2]) is None
    assert session.get(Tag, ids[3]) is not None


def test_screen_delete_of_a_client_with_books_is_refused_with_the_reason(app, session, login_as, user_id):
    client = make_client(name="屏幕客户有限公司")
    _with_books(app, session, client, user_id)
    before = _everything(session, client.id)

    page = login_as("manager").post(f"/clientmodelview/delete/{client.id}", follow_redirects=True)

    body = page.get_data(as_text=True)
    assert "客户 屏幕客户有限公司 有 1 套账、2 张凭证" in body
    for word in ("FOREIGN KEY", "constraint", "IntegrityError", "ledger_voucher"):
        assert word not in body
    session.expire_all()
    assert _everything(session, client.id) == before


def test_screen_delete_of_a_client_without_data_still_works(app, session, login_as):
    client_id = make_client().id
    response = login_as("manager").post(f"/clientmodelview/delete/{client_id}")
    assert response.status_code == 302
    session.expunge_all()
    assert session.get(Client, client_id) is None


def test_a_delete_the_database_refuses_after_the_check_is_409_without_driver_text(
        app, session, api_token, monkeypatch):
    """A voucher or contract added between the check and the delete (two requests racing): the
    database refuses, and the answer is the same kind of 409, not the SQL."""
    client = make_client()
    make_contract(client)
    monkeypatch.setattr("app.views.api.check_client_deletable", lambda *_: None)  # the check ran too early

    response = app.test_client().delete(f"/api/v1/client/{client.id}", headers=api_token("manager"))

    assert response.status_code == 409
    assert response.json["errors"] == {"_": ["仍有其他记录引用此记录，未删除任何内容。"]}
    _no_driver_text(response.get_data(as_text=True))
    session.expire_all()
    assert session.get(Client, client.id) is not None


def test_an_edit_the_database_refuses_after_the_check_is_422_without_driver_text(
        app, session, api_token, monkeypatch):
    """Two requests giving two clients the same credit code at once: the unique constraint
    refuses the second, and the answer is a 422 in words, not the SQL."""
    taken, client = make_client(), make_client()
    name = client.name
    monkeypatch.setattr("app.views.api._unique", lambda *_: None)  # the check ran before the other commit

    response = app.test_client().put(f"/api/v1/client/{client.id}", headers=api_token("manager"),
                                     json={"credit_code": taken.credit_code, "name": "撞码客户有限公司"})

    assert response.status_code == 422
    assert response.json["errors"]["_"][0].startswith("数据库拒绝了此更改")
    _no_driver_text(response.get_data(as_text=True))
    session.expire_all()
    assert session.get(Client, client.id).name == name


def test_api_delete_of_a_contract_with_bills_is_409_naming_them(app, session, api_token, user_id):
    """Any API delete the database would refuse: a (draft) contract that fee bills refer to."""
    client = make_client()
    contract = make_contract(client)
    session.add(FeeBill(contract_id=contract.id, period_start=date(2026, 1, 1), period_end=date(2026, 1, 31),
                        amount="500.00", billed_on=date(2026, 1, 1), due_date=date(2026, 1, 15)))
    session.commit()

    response = app.test_client().delete(f"/api/v1/contract/{contract.id}", headers=api_token("manager"))

    assert response.status_code == 409, response.json
    assert "1 张收费账单" in response.json["errors"]["_"][0]
    _no_driver_text(response.get_data(as_text=True))
    session.expire_all()
    assert session.get(Contract, contract.id) is not None


# --- related rows by id only ----------------------------------------------------------------

def test_a_nested_accountant_object_is_422_and_creates_no_user(app, session, api_token):
    users, clients = _count(session, User), _count(session, Client)
    response = app.test_client().post("/api/v1/client/", headers=api_token("manager"), json={
        "name": "嵌套客户有限公司", "credit_code": credit_code(), "taxpayer_type": "general", "status": "active",
        "accountant": {"username": "intruder", "first_name": "x", "last_name": "y", "email": "i@example.com",
                       "password": "1", "active": True}})

    assert response.status_code == 422, response.json
    assert "accountant" in response.json["errors"]
    assert response.json["errors"]["accountant"] == ["请填写已有记录的编号（数字），而不是对象。"]
    assert (_count(session, User), _count(session, Client)) == (users, clients)
    assert session.scalar(select(User).where(User.username == "intruder")) is None


def test_a_nested_object_naming_an_existing_id_is_refused_too(app, session, api_token, user_id):
    clients = _count(session, Client)
    response = app.test_client().post("/api/v1/client/", headers=api_token("manager"), json={
        "name": "嵌套客户二有限公司", "credit_code": credit_code(), "taxpayer_type": "general", "status": "active",
        "accountant": {"id": user_id("accountant")}})
    assert response.status_code == 422
    assert _count(session, Client) == clients


def test_an_accountant_id_works_as_before(app, session, api_token, user_id):
    response = app.test_client().post("/api/v1/client/", headers=api_token("manager"), json={
        "name": "按编号客户有限公司", "credit_code": credit_code(), "taxpayer_type": "general", "status": "active",
        "accountant": user_id("accountant")})
    assert response.status_code == 201, response.json
    assert session.get(Client, response.json["id"]).accountant_id == user_id("accountant")


def test_an_id_that_names_nothing_is_422_and_creates_nothing(app, session, api_token):
    users, clients = _count(session, User), _count(session, Client)
    response = app.test_client().post("/api/v1/client/", headers=api_token("manager"), json={
        "name": "无人客户有限公司", "credit_code": credit_code(), "taxpayer_type": "general", "status": "active",
        "accountant": 987654})
    assert response.status_code == 422
    assert "987654" in response.json["errors"]["accountant"][0]
    assert (_count(session, User), _count(session, Client)) == (users, clients)


def test_a_nested_client_object_on_a_contract_is_422_and_creates_no_client(app, session, api_token):
    clients, contracts = _count(session, Client), _count(session, Contract)
    body = {"number": "HT-NEST-1", "service_type": "bookkeeping", "monthly_fee": "300.00",
            "billing_cycle": "monthly", "start_date": "2026-01-01", "end_date": "2026-12-31",
            "client": {"name": "顺手建的客户", "credit_code": credit_code(), "taxpayer_type": "general",
                       "status": "active"}}
    response = app.test_client().post("/api/v1/contract/", headers=api_token("manager"), json=body)
    assert response.status_code == 422, response.json
    assert response.json["errors"]["client"] == ["请填写已有记录的编号（数字），而不是对象。"]
    _no_driver_text(response.get_data(as_text=True))
    assert (_count(session, Client), _count(session, Contract)) == (clients, contracts)


def test_a_nested_client_object_on_a_contract_edit_is_422_and_changes_nothing(app, session, api_token):
    client, other = make_client(), make_client()
    contract = make_contract(client)
    response = app.test_client().put(f"/api/v1/contract/{contract.id}", headers=api_token("manager"),
                                     json={"client": {"id": other.id, "name": "改名"}})
    assert response.status_code == 422, response.json
    session.expire_all()
    assert session.get(Contract, contract.id).client_id == client.id
    assert session.get(Client, other.id).name != "改名"


# --- databases written before SQLite enforced keys -------------------------------------------

T = "2026-01-01 00:00:00"


def test_upgrade_gives_rows_pointing_at_nothing_what_their_key_says(app, second_app, tmp_path):
    """A SQLite database written while keys were off: the contacts and service records of a
    deleted client go (CASCADE), a client's deleted accountant is cleared (SET NULL), and a
    contract of the deleted client is kept (RESTRICT: only a backup can bring its client back)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL always enforced its keys")
    from app.services.bootstrap import MIGRATIONS, upgrade

    old = second_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'old.db'}")
    with old.app_context():
        upgrade(directory=str(MIGRATIONS), revision="0004_chat_work")
        with db.engine.connect() as conn:  # as the application wrote before: keys off
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql("INSERT INTO client (id, name, credit_code, taxpayer_type, status, accountant_id, "
                                 "created_at, updated_at) VALUES (1, '留下的客户', ?, 'general', 'active', 777, ?, ?)",
                                 (credit_code(), T, T))
            for client_id, name in ((1, "留下的联系人"), (2, "孤儿联系人")):
                conn.exec_driver_sql("INSERT INTO client_contact (client_id, name, is_primary, created_at, updated_at) "
                                     "VALUES (?, ?, 0, ?, ?)", (client_id, name, T, T))
            conn.exec_driver_sql("INSERT INTO service_record (client_id, subject, performed_at, created_at, "
                                 "updated_at) VALUES (2, '孤儿记录', ?, ?, ?)", (T, T, T))
            conn.exec_driver_sql("INSERT INTO contract (client_id, number, service_type, monthly_fee, billing_cycle, "
                                 "start_date, end_date, status, created_at, updated_at) VALUES (2, 'HT-ORPHAN', "
                                 "'bookkeeping', 100, 'monthly', '2026-01-01', '2026-12-31', 'draft', ?, ?)", (T, T))
            conn.commit()
            conn.invalidate()

        upgrade(directory=str(MIGRATIONS))

        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("SELECT name FROM client_contact").scalars().all() == ["留下的联系人"]
            assert conn.exec_driver_sql("SELECT count(*) FROM service_record").scalar() == 0
            assert conn.exec_driver_sql("SELECT accountant_id FROM client").scalars().all() == [None]
            assert conn.exec_driver_sql("SELECT number FROM contract").scalars().all() == ["HT-ORPHAN"]
            left = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            assert [(table, parent) for table, _, parent, _ in left] == [("contract", "client")]


def test_screen_delete_of_a_user_other_users_name_is_refused_with_the_reason(app, session, login_as, user_id):
    """FAB's user rows record who created and last changed them, under keys without a delete rule."""
    from app.services.users import create_user

    create_user(app, "temp-maker", "Test-Pass-2026xy", ["Agent"], first_name="temp")
    maker_id = user_id("temp-maker")
    created = session.get(User, user_id("agent"))
    created.changed_by_fk = maker_id
    session.commit()

    page = login_as("admin").post(f"/users/delete/{maker_id}", follow_redirects=True).get_data(as_text=True)

    assert "temp-maker 不能删除：1 个用户账号仍引用它。" in page
    session.expunge_all()
    assert session.get(User, maker_id) is not None


BROKEN_MIGRATION = '''"""leaves a row pointing at nothing

Revision ID: 9999_broken
Revises: HEAD_REVISION
"""
from alembic import op

revision = "9999_broken"
down_revision = "HEAD_REVISION"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("INSERT INTO client_contact (client_id, name, is_primary, created_at, updated_at) "
               "VALUES (424242, 'x', 0, '2026-01-01', '2026-01-01')")


def downgrade():
    pass
'''


def test_a_migration_that_leaves_a_row_pointing_at_nothing_fails(app, second_app, tmp_path, caplog):
    """Migrations run with SQLite's keys off, so they are checked when done; and the connection
    goes back to the application enforcing keys."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL checks every statement itself")
    import shutil

    from app.services.bootstrap import MIGRATIONS, upgrade

    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()  # the broken one comes last
    (scripts / "versions" / "9999_broken.py").write_text(BROKEN_MIGRATION.replace("HEAD_REVISION", head))
    other = second_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'broken.db'}")
    with other.app_context():
        upgrade(directory=str(MIGRATIONS))
        with pytest.raises(SystemExit):  # Flask-Migrate logs the error and exits
            upgrade(directory=str(scripts))
        assert "the migration left rows that refer to missing rows (client_contact -> client: 1)" in caplog.text
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
