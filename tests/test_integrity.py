"""Referential integrity: both databases enforce foreign keys, and a SQLite database written
before they did is put right by the migration."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models.contracts import Contract
from app.models.crm import Client, ClientContact, ServiceRecord
from tests.factories import (
    credit_code,
    make_client,
    make_contact,
    make_contract,
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


# --- databases written before SQLite enforced keys -------------------------------------------

T = "2026-01-01 00:00:00"


def test_upgrade_gives_rows_pointing_at_nothing_what_their_key_says(app, second_app, tmp_path):
    """A SQLite database written while keys were off: the contacts and service records of a
    deleted client go (CASCADE), a client's deleted accountant is cleared (SET NULL), and a
    contract of the deleted client is kept (RESTRICT: only a backup can bring its client back)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL always enforced its keys")
    from flask_migrate import upgrade

    from app.services.bootstrap import MIGRATIONS

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

