"""Demo data: users for every role, clients, contracts, bills, payments, archives, books and the
demo chat site (``app.services.demo_chat``).

Run on first start by ``run.py`` (unless ``--no-demo``) and by ``flask seed-demo``. Idempotent:
users, clients or books that already exist are left alone. The books are made by
``app.services.demo_ledger``.
"""

from __future__ import annotations

import io
import os
from datetime import date, timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models.contracts import BillingCycle, Contract, ServiceType
from app.models.crm import (
    BankAccount,
    Client,
    ClientContact,
    ClientStatus,
    ServiceRecord,
    Tag,
    TaxpayerType,
)
from app.models.documents import DocumentType
from app.services import contracts as contract_svc
from app.services.audit import SYSTEM, acting_as
from app.services.clients import credit_code_check_char
from app.services.documents import store_document
from app.services.errors import ValidationFailed
from app.services.users import check_password, generate_password

DEMO_USERS = [
    ("admin", ["Admin"], "系统", "管理员"),
    ("manager", ["Manager"], "王", "经理"),
    ("accountant", ["Accountant"], "李", "会计"),
    ("reviewer", ["Reviewer"], "赵", "审核"),
    ("agent1", ["Agent"], "客服", "一号"),
    ("agent2", ["Agent"], "客服", "二号"),
]


def make_credit_code(first17: str) -> str:
    return first17 + credit_code_check_char(first17)


def make_id_number(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF (ASCII text) for demo archives."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def seed_users(app: Flask, password: str | None = None) -> tuple[str, list[str]]:
    """Create the demo users that do not exist yet, all with one password (checked against the
    password rule: ``ValidationFailed``); return (password, created usernames)."""
    password = password or app.config.get("DEMO_PASSWORD") or generate_password()
    check_password(password)
    created = []
    sm = app.appbuilder.sm
    hashed = None
    for username, roles, first, last in DEMO_USERS:
        if sm.find_user(username=username):
            continue
        # One hash for all: hashing is slow on purpose, and these users share a password anyway.
        hashed = hashed or generate_password_hash(
            password, method=app.config.get("FAB_PASSWORD_HASH_METHOD", "scrypt"),
            salt_length=app.config.get("FAB_PASSWORD_HASH_SALT_LENGTH", 16))
        if not sm.add_user(username, first, last, f"{username}@demo.bookkeeping-desk.invalid",
                           [sm.find_role(name) for name in roles], hashed_password=hashed):
            raise ValidationFailed({"username": [f"could not create {username}"]})
        created.append(username)
    return password, created


def seed_business_data(app: Flask, today: date | None = None) -> int:
    """Create demo clients with contacts, contracts, bills, payments and documents, then their books
    (``seed_ledger_data``; books that exist are left alone, so databases seeded before the ledger get them)
    and their tax profiles and this year's filing records (``seed_tax_data``, likewise).

    Returns the number of clients created (0 when the demo clients already exist).
    """
    today = today or date.today()
    from app.services.demo_ledger import seed_ledger_data
    from app.services.demo_tax import seed_tax_data

    created = _seed_clients(app, today)
    seed_ledger_data(app, today)
    seed_tax_data(app, today)
    return created


def _seed_clients(app: Flask, today: date) -> int:
    sm = app.appbuilder.sm
    accountant = sm.find_user(username="accountant")
    manager = sm.find_user(username="manager")
    if db.session.scalar(select(Client.id).where(Client.credit_code == make_credit_code("91310000MA1K00001"))):
        return 0
    with acting_as(SYSTEM):
        tags = {name: Tag(name=name) for name in ("重点客户", "新客户", "零申报")}
        db.session.add_all(tags.values())
        specs = [
            ("上海明远商贸有限公司", "91310000MA1K00001", TaxpayerType.general, accountant, ["重点客户"],
             "张明远", ClientStatus.active),
            ("杭州青禾科技有限公司", "91330100MA2H00002", TaxpayerType.small_scale, accountant, ["新客户"],
             "陈青禾", ClientStatus.active),
            ("苏州安泰餐饮管理有限公司", "91320500MA1M00003", TaxpayerType.small_scale, None, ["零申报"],
             "刘安泰", ClientStatus.active),
            ("北京华信咨询服务有限公司", "91110105MA0100004", TaxpayerType.general, None, [],
             "周华信", ClientStatus.suspended),
        ]
        clients = []
        for i, (name, code17, ttype, acct, tag_names, rep, status) in enumerate(specs, start=1):
            client = Client(
                name=name, credit_code=make_credit_code(code17), taxpayer_type=ttype,
                legal_rep_name=rep, legal_rep_id_number=make_id_number(f"31010119800101{i:03d}"),
                registered_address=f"{name[:2]}市示范路{i}号", office_address=f"{name[:2]}市创业园{i}栋",
                business_scope="企业管理咨询；商务信息咨询；技术服务。", accountant=acct, status=status,
                tags=[tags[t] for t in tag_names], notes="演示数据",
            )
            client.contacts.append(ClientContact(name=f"{rep[0]}财务", position="财务主管",
                                                 phone=f"1380000{i:04d}", email=f"finance{i}@example.com",
                                                 wechat=f"wx_demo_{i}", is_primary=True))
            client.bank_accounts.append(BankAccount(bank_name="中国工商银行", is_basic=True,
                                                    account_number=f"62220210010000{i:05d}"))
            db.session.add(client)
            clients.append(client)
        db.session.flush()
        for client in clients:
            db.session.add(ServiceRecord(client_id=client.id, subject="月度记账与纳税申报",
                                         description="完成上月凭证录入、增值税及附加税申报。",
                                         result="已完成", performed_by_id=(accountant or manager).id))
        db.session.commit()

        year_start = date(today.year, 1, 1)
        contracts = [
            Contract(client_id=clients[0].id, number=f"HT-{today.year}-001", service_type=ServiceType.bookkeeping,
                     monthly_fee="800.00", billing_cycle=BillingCycle.quarterly, start_date=year_start,
                     end_date=date(today.year, 12, 31)),
            Contract(client_id=clients[1].id, number=f"HT-{today.year}-002", service_type=ServiceType.bookkeeping,
                     monthly_fee="500.00", billing_cycle=BillingCycle.monthly, start_date=year_start,
                     end_date=today + timedelta(days=20)),
            Contract(client_id=clients[2].id, number=f"HT-{today.year}-003", service_type=ServiceType.tax_filing,
                     monthly_fee="300.00", billing_cycle=BillingCycle.yearly, start_date=year_start,
                     end_date=date(today.year, 12, 31)),
            Contract(client_id=clients[3].id, number=f"HT-{today.year}-004",
                     service_type=ServiceType.business_registration, monthly_fee="1500.00",
                     billing_cycle=BillingCycle.monthly, start_date=today, end_date=today + timedelta(days=90)),
        ]
        for contract in contracts:
            contract_svc.validate_contract(contract)
            contract_svc.record_creation(contract)
            db.session.add(contract)
        db.session.commit()
        for contract in contracts[:3]:
            contract_svc.activate_contract(db.session, contract)
            contract_svc.bill_contract(db.session, contract, today)
        contract_svc.record_payment(db.session, contracts[0], "2400.00", year_start + timedelta(days=10),
                                    method="银行转账", reference="DEMO-001")
        contract_svc.record_payment(db.session, contracts[1], "1500.00", year_start + timedelta(days=40),
                                    method="微信支付", reference="DEMO-002")
        contract_svc.change_contract(db.session, contracts[2], "客户增加季度申报服务，调整月费",
                                     monthly_fee="350.00")

        upload_dir = Path(app.config["UPLOAD_DIR"])
        for i, client in enumerate(clients[:3], start=1):
            store_document(db.session, upload_dir, app.config["UPLOAD_MAX_BYTES"], client_id=client.id,
                           filename=f"contract-{i}.pdf", stream=io.BytesIO(minimal_pdf(f"Contract {i}")),
                           doc_type=DocumentType.contract, title=f"{client.name} 代理记账合同",
                           contract_id=contracts[i - 1].id, period=f"{today.year}-01")
    return len(clients)


def write_credentials(app: Flask, password: str, usernames: list[str]) -> Path:
    path = Path(app.config["INSTANCE_PATH"]) / "demo-credentials.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("Bookkeeping Desk demo users\n")
        for name in usernames:
            handle.write(f"{name}\t{password}\n")
    return path


def seed_demo(app: Flask) -> dict:
    """Seed users, business data and the demo chat site; return what was created (password only if
    users were) and the demo chat site's key."""
    from app.services.demo_chat import seed_demo_chat

    password, created = seed_users(app)
    clients = seed_business_data(app)
    site_key = seed_demo_chat(app)
    result = {"users": created, "clients": clients, "password": password if created else None, "site_key": site_key}
    if created:
        result["credentials_file"] = str(write_credentials(app, password, [u[0] for u in DEMO_USERS]))
    return result
