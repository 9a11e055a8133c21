"""CLI: create-admin, seed-demo (idempotent), expire-contracts, sync-roles."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from app.models.contracts import ContractStatus
from app.models.crm import Client
from app.models.documents import Document
from tests.factories import make_client, make_contract


def test_create_admin_makes_a_user_with_the_admin_role(app):
    result = app.test_cli_runner().invoke(args=["create-admin", "--username", "boss", "--email", "b@x.cn",
                                                "--password", "Strong-Pass-2026ab"])
    assert result.exit_code == 0, result.output
    user = app.appbuilder.sm.find_user(username="boss")
    assert [r.name for r in user.roles] == ["Admin"]


def test_create_admin_refuses_a_weak_password_and_writes_nothing(app):
    result = app.test_cli_runner().invoke(args=["create-admin", "--username", "weak", "--password", "password"])
    assert result.exit_code != 0
    assert app.appbuilder.sm.find_user(username="weak") is None


def test_seed_demo_is_idempotent_and_assigns_a_client_to_the_accountant(app, session):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "clients created: 4" in first.output
    clients = session.scalar(select(func.count()).select_from(Client))
    second = runner.invoke(args=["seed-demo"])
    assert "clients created: 0" in second.output
    assert session.scalar(select(func.count()).select_from(Client)) == clients
    accountant = app.appbuilder.sm.find_user(username="accountant")
    assigned = session.scalars(select(Client).where(Client.accountant_id == accountant.id)).all()
    unassigned = session.scalars(select(Client).where(Client.accountant_id.is_(None))).all()
    assert assigned and unassigned
    assert session.scalar(select(func.count()).select_from(Document)) == 3


def test_expire_contracts_command(app, session):
    contract = make_contract(make_client(), status=ContractStatus.active, start_date=date(2025, 1, 1),
                             end_date=date.today() - timedelta(days=1))
    result = app.test_cli_runner().invoke(args=["expire-contracts"])
    assert "1 contract(s) expired" in result.output
    session.expire_all()
    assert contract.status == ContractStatus.expired


def test_sync_roles_reset_restores_defaults(app, session):
    sm = app.appbuilder.sm
    reviewer = sm.find_role("Reviewer")
    reviewer.permissions = []
    session.commit()
    result = app.test_cli_runner().invoke(args=["sync-roles", "--reset"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    names = {(p.permission.name, p.view_menu.name) for p in sm.find_role("Reviewer").permissions}
    assert ("can_list", "ClientModelView") in names and ("can_list", "ContractModelView") not in names
