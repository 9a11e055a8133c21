"""Contracts: lifecycle with enforced transitions, reasons, history, billing and balances."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.contracts import BillingCycle, Contract, ContractChange, ContractStatus, FeeBill, Payment
from app.services import contracts as svc
from app.services.errors import TransitionNotAllowed, ValidationFailed
from tests.factories import make_client, make_contract

S = ContractStatus


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_draft_activates_and_history_records_each_step(session):
    contract = make_contract(make_client())
    svc.activate_contract(session, contract)
    svc.change_contract(session, contract, "客户要求调价", monthly_fee="650.00", end_date="2027-06-30")
    svc.terminate_contract(session, contract, "客户注销")
    steps = [(c.from_status, c.to_status) for c in contract.changes]
    assert steps == [(None, "draft"), ("draft", "active"), ("active", "changed"), ("changed", "terminated")]
    change = contract.changes[2]
    assert change.reason == "客户要求调价"
    assert json.loads(change.details) == {"monthly_fee": ["500.00", "650.00"],
                                          "end_date": ["2026-12-31", "2027-06-30"]}
    assert contract.monthly_fee == Decimal("650.00")


@pytest.mark.parametrize("start,target", [
    (S.draft, S.terminated), (S.draft, S.changed), (S.draft, S.expired),
    (S.terminated, S.active), (S.expired, S.active), (S.terminated, S.changed), (S.active, S.active),
])
def test_disallowed_transitions_are_refused_and_change_nothing(session, start, target):
    contract = make_contract(make_client(), status=start)
    history = len(contract.changes)
    with pytest.raises((TransitionNotAllowed, ValidationFailed)):
        if target == S.active:
            svc.activate_contract(session, contract)
        elif target == S.terminated:
            svc.terminate_contract(session, contract, "理由")
        elif target == S.expired:
            svc.expire_contract(session, contract)
        else:
            svc.change_contract(session, contract, "理由", monthly_fee="999.00")
    session.rollback()
    session.expire_all()
    fresh = session.get(Contract, contract.id)
    assert fresh.status == start and len(fresh.changes) == history


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_termination_and_change_need_a_reason(session, reason):
    contract = make_contract(make_client(), status=S.active)
    with pytest.raises(ValidationFailed) as exc:
        svc.terminate_contract(session, contract, reason)
    assert "reason" in exc.value.errors
    session.rollback()
    with pytest.raises(ValidationFailed):
        svc.change_contract(session, contract, reason, monthly_fee="700.00")
    session.rollback()
    session.expire_all()
    assert session.get(Contract, contract.id).status == S.active


@pytest.mark.parametrize("fee", ["12.345", "-1.00", "abc", "NaN"])
def test_bad_fee_is_refused(session, fee):
    contract = make_contract(make_client(), status=S.active)
    with pytest.raises(ValidationFailed) as exc:
        svc.change_contract(session, contract, "调价", monthly_fee=fee)
    assert "monthly_fee" in exc.value.errors
    session.rollback()
    session.expire_all()
    assert session.get(Contract, contract.id).monthly_fee == Decimal("500.00")


def test_float_amounts_are_refused():
    with pytest.raises(ValidationFailed):
        svc.parse_money(12.5)


def test_billing_per_cycle_and_balance_due(session):
    client = make_client()
    monthly = make_contract(client, status=S.active, monthly_fee="500.00")
    quarterly = make_contract(client, status=S.active, monthly_fee="300.00",
                              billing_cycle=BillingCycle.quarterly)
    assert len(svc.bill_contract(session, monthly, date(2026, 3, 15))) == 3
    assert len(svc.bill_contract(session, monthly, date(2026, 3, 15))) == 0  # billing twice is harmless
    bills = svc.bill_contract(session, quarterly, date(2026, 4, 1))
    assert [(b.period_start, b.period_end, b.amount) for b in bills] == [
        (date(2026, 1, 1), date(2026, 3, 31), Decimal("900.00")),
        (date(2026, 4, 1), date(2026, 6, 30), Decimal("900.00"))]
    svc.record_payment(session, monthly, "1000.00", date(2026, 2, 1))
    balance = svc.client_balance(session, client.id)
    assert (balance.billed, balance.paid, balance.due) == (Decimal("3300.00"), Decimal("1000.00"),
                                                           Decimal("2300.00"))
    assert svc.contract_balance(session, monthly.id).due == Decimal("500.00")


def test_draft_contract_is_not_billed_and_takes_no_payment(session):
    contract = make_contract(make_client())
    with pytest.raises(ValidationFailed):
        svc.bill_contract(session, contract, date(2026, 5, 1))
    with pytest.raises(ValidationFailed):
        svc.record_payment(session, contract, "10.00", date(2026, 5, 1))
    session.rollback()
    assert _count(session, FeeBill) == 0 and _count(session, Payment) == 0


def test_renewals_list_contracts_ending_within_30_days(app, login_as, session):
    today = date.today()
    client = make_client()
    soon = make_contract(client, status=S.active, number="HT-SOON", start_date=date(today.year - 1, 1, 1),
                         end_date=date.fromordinal(today.toordinal() + 10))
    make_contract(client, status=S.active, number="HT-LATER", start_date=date(today.year - 1, 1, 1),
                  end_date=date.fromordinal(today.toordinal() + 90))
    assert [c.number for c in svc.renewals_due(session, today, 30)] == [soon.number]
    page = login_as("manager").get("/renewals/").get_data(as_text=True)
    assert "HT-SOON" in page and "HT-LATER" not in page


def test_expire_due_contracts(session):
    contract = make_contract(make_client(), status=S.active, end_date=date(2026, 1, 31))
    assert svc.expire_due_contracts(session, date(2026, 2, 1)) == 1
    assert contract.status == S.expired


def test_screen_terminate_requires_reason_and_records_it(login_as, session):
    contract = make_contract(make_client(), status=S.active)
    c = login_as("manager")
    c.post(f"/contractmodelview/terminate/{contract.id}", data={"reason": ""})
    session.expire_all()
    assert session.get(Contract, contract.id).status == S.active
    c.post(f"/contractmodelview/terminate/{contract.id}", data={"reason": "客户终止合作"})
    session.expire_all()
    fresh = session.get(Contract, contract.id)
    assert fresh.status == S.terminated and fresh.changes[-1].reason == "客户终止合作"


def test_screen_edit_of_live_contract_is_refused(login_as, session):
    contract = make_contract(make_client(), status=S.active)
    c = login_as("manager")
    response = c.post(f"/contractmodelview/edit/{contract.id}", data={
        "client": contract.client_id, "number": contract.number, "service_type": "bookkeeping",
        "monthly_fee": "1.00", "billing_cycle": "monthly", "start_date": "2026-01-01",
        "end_date": "2026-12-31"}, follow_redirects=True)
    assert response.status_code == 200
    session.expire_all()
    assert session.get(Contract, contract.id).monthly_fee == Decimal("500.00")


def test_screen_add_contract_validates_dates_and_fee(login_as, session):
    client = make_client()
    before = _count(session, Contract)
    c = login_as("manager")
    base = {"client": client.id, "number": "HT-NEW-1", "service_type": "bookkeeping", "monthly_fee": "800.00",
            "billing_cycle": "monthly", "start_date": "2026-03-01", "end_date": "2026-02-01"}
    c.post("/contractmodelview/add", data=base)
    c.post("/contractmodelview/add", data={**base, "end_date": "2027-02-28", "monthly_fee": "8.001"})
    assert _count(session, Contract) == before
    c.post("/contractmodelview/add", data={**base, "end_date": "2027-02-28"})
    created = session.scalar(select(Contract).where(Contract.number == "HT-NEW-1"))
    assert created.status == S.draft and created.monthly_fee == Decimal("800.00")
    assert [ch.to_status for ch in created.changes] == ["draft"]


def test_screen_and_api_refuse_editing_a_live_contract_by_one_rule(login_as, api_token, app, session):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"
    contract = make_contract(make_client(), status=S.active)
    fields = {"client": contract.client_id, "number": contract.number, "service_type": "bookkeeping",
              "monthly_fee": "1.00", "billing_cycle": "monthly", "start_date": "2026-01-01", "end_date": "2026-12-31"}
    page = login_as("manager").post(f"/contractmodelview/edit/{contract.id}", data=fields,
                                    follow_redirects=True).get_data(as_text=True)
    api = app.test_client().put(f"/api/v1/contract/{contract.id}", headers=api_token("manager"),
                                json={"monthly_fee": "1.00"})
    message = "Only draft contracts are edited directly; use Change to amend a live contract."
    assert message in page
    assert api.status_code == 409 and api.json == {"message": message, "errors": {"status": [message]}}
    session.expire_all()
    assert session.get(Contract, contract.id).monthly_fee == Decimal("500.00")


def test_contract_page_shows_balance_and_allowed_actions(login_as, session):
    contract = make_contract(make_client(), status=S.active)
    svc.bill_contract(session, contract, date(2026, 2, 1))
    page = login_as("manager").get(f"/contractmodelview/show/{contract.id}").get_data(as_text=True)
    assert 'id="balance-due">1000.00<' in page
    assert f"/contractmodelview/terminate/{contract.id}" in page
    assert f"/contractmodelview/activate/{contract.id}" not in page
    accountant_page = login_as("accountant").get(f"/contractmodelview/show/{contract.id}")
    assert accountant_page.status_code == 404  # not the accountant's client


def test_history_count_matches(session):
    contract = make_contract(make_client(), status=S.changed)
    assert _count(session, ContractChange) == len(contract.changes) == 3
