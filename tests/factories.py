"""Factories for the models: each returns a committed row with sensible defaults."""

from __future__ import annotations

import itertools
from datetime import date

from app.extensions import db
from app.models.contracts import BillingCycle, Contract, ContractStatus, ServiceType
from app.models.crm import BankAccount, Client, ClientContact, ServiceRecord, TaxpayerType
from app.services import contracts as contract_svc
from app.services.demo import make_credit_code, make_id_number

_seq = itertools.count(1)


def credit_code(n: int | None = None) -> str:
    n = next(_seq) if n is None else n
    return make_credit_code(f"9131000{n:010d}")


def id_number(n: int = 1) -> str:
    return make_id_number(f"11010119900101{n:03d}")


def make_client(accountant=None, **kw) -> Client:  # noqa: ANN001
    n = next(_seq)
    values = dict(name=f"测试客户{n}有限公司", credit_code=credit_code(n), taxpayer_type=TaxpayerType.small_scale,
                  legal_rep_name="张三", legal_rep_id_number=id_number(n % 900 + 1),
                  accountant=accountant)
    values.update(kw)
    client = Client(**values)
    db.session.add(client)
    db.session.commit()
    return client


def make_contact(client: Client, **kw) -> ClientContact:
    contact = ClientContact(client_id=client.id, name=kw.pop("name", "王五"), **kw)
    db.session.add(contact)
    db.session.commit()
    return contact


def make_bank_account(client: Client, number: str = "6222021001000012345", **kw) -> BankAccount:
    account = BankAccount(client_id=client.id, bank_name=kw.pop("bank_name", "中国银行"),
                          account_number=number, **kw)
    db.session.add(account)
    db.session.commit()
    return account


def make_service_record(client: Client, **kw) -> ServiceRecord:
    record = ServiceRecord(client_id=client.id, subject=kw.pop("subject", "月度记账"), **kw)
    db.session.add(record)
    db.session.commit()
    return record


def make_contract(client: Client, status: ContractStatus = ContractStatus.draft, **kw) -> Contract:
    n = next(_seq)
    values = dict(client_id=client.id, number=f"HT-T-{n:05d}", service_type=ServiceType.bookkeeping,
                  monthly_fee="500.00", billing_cycle=BillingCycle.monthly, start_date=date(2026, 1, 1),
                  end_date=date(2026, 12, 31))
    values.update(kw)
    contract = Contract(**values)
    contract_svc.validate_contract(contract)
    contract_svc.record_creation(contract)
    db.session.add(contract)
    db.session.commit()
    if status != ContractStatus.draft:
        contract_svc.activate_contract(db.session, contract)
        if status == ContractStatus.terminated:
            contract_svc.terminate_contract(db.session, contract, "test")
        elif status == ContractStatus.expired:
            contract_svc.expire_contract(db.session, contract)
        elif status == ContractStatus.changed:
            contract_svc.change_contract(db.session, contract, "test", monthly_fee="600.00")
    return contract
