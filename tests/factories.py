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


# --- ledger ---------------------------------------------------------------------------------


def make_books(client: Client | None = None, start: str = "2026-01", **client_kw):  # noqa: ANN201
    """Open books for *client* (a new one by default) from *start*; returns the LedgerBook."""
    from app.services import books

    client = client or make_client(**client_kw)
    return books.open_books(db.session, client.id, start)


def line(code: str, debit: str | None = None, credit: str | None = None, memo: str | None = None) -> dict:
    return {"account_code": code, "debit": debit, "credit": credit, "memo": memo}


def voucher_data(day: str = "2026-01-15", amount: str = "100.00", debit_code: str = "1001",
                 credit_code: str = "5001", word: str = "记", summary: str = "收到货款", **kw) -> dict:
    data = {"date": day, "word": word, "summary": summary,
            "lines": [line(debit_code, debit=amount), line(credit_code, credit=amount)]}
    data.update(kw)
    return data


def make_voucher(book, maker_id: int | None, state: str = "draft", reviewer_id: int | None = None,  # noqa: ANN001
                 **data_kw):  # noqa: ANN201
    """Save a voucher (draft), optionally review (by *reviewer_id*) and post it."""
    from app.services import vouchers

    voucher = vouchers.save_voucher(db.session, book.client_id, voucher_data(**data_kw), maker_id)
    if state in ("reviewed", "posted"):
        vouchers.review_voucher(db.session, voucher.id, reviewer_id)
    if state == "posted":
        vouchers.post_voucher(db.session, voucher.id, reviewer_id)
    return voucher
