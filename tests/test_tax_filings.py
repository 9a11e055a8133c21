"""Filing records: a month's pending records from the clients' profiles, the steps pending → filed →
paid and their refusals, reopening with a reason, the overdue and due-in-7-days lists, the API and
the screens with their row scope."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.crm import ClientStatus
from app.models.documents import DocumentType
from app.models.security import AuditLog
from app.models.tax_filing import FilingStatus, TaxFiling
from app.services import tax_filings as svc
from app.services import tax_profile as profile_svc
from app.services.demo import minimal_pdf
from app.services.documents import store_document
from app.services.errors import NotFound, TransitionNotAllowed, ValidationFailed
from tests.factories import make_client


def _count(session, model=TaxFiling) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def clients(app, session):
    """Client ``a`` (accountant): VAT and surcharges monthly, 企业所得税 quarterly, 印花税 yearly;
    client ``b`` (accountant2): VAT quarterly; client ``c``: suspended, VAT monthly."""
    sm = app.appbuilder.sm
    a = make_client(accountant=sm.find_user(username="accountant"), name="甲公司")
    b = make_client(accountant=sm.find_user(username="accountant2"), name="乙公司")
    c = make_client(accountant=sm.find_user(username="accountant"), name="丙公司", status=ClientStatus.suspended)
    profile_svc.set_tax_profile(session, a.id, "monthly", "urban", {
        "vat": "monthly", "urban_maintenance": "monthly", "corporate_income": "quarterly", "stamp": "yearly"})
    profile_svc.set_tax_profile(session, b.id, "quarterly", "urban", {"vat": "quarterly"})
    profile_svc.set_tax_profile(session, c.id, "monthly", "urban", {"vat": "monthly"})
    return {"a": a, "b": b, "c": c}


def _rows(session) -> set[tuple]:
    return {(f.client.name, f.tax.value, f.period, f.due.isoformat(), f.status.value)
            for f in session.scalars(select(TaxFiling))}


def _one(session, client, tax: str = "vat") -> TaxFiling:
    return session.scalar(select(TaxFiling).where(TaxFiling.client_id == client.id, TaxFiling.tax == tax))


# --- generating ------------------------------------------------------------------------------

def test_april_makes_the_march_monthly_and_first_quarter_records_due_on_april_20(session, clients):
    made = svc.generate_month(session, "2026-04")
    assert len(made) == 4
    assert _rows(session) == {
        ("甲公司", "vat", "2026-03", "2026-04-20", "pending"),
        ("甲公司", "urban_maintenance", "2026-03", "2026-04-20", "pending"),
        ("甲公司", "corporate_income", "2026-Q1", "2026-04-20", "pending"),
        ("乙公司", "vat", "2026-Q1", "2026-04-20", "pending"),
    }


def test_generating_a_month_twice_creates_nothing_new(session, clients):
    svc.generate_month(session, "2026-04")
    assert svc.generate_month(session, "2026-04") == []
    assert _count(session) == 4


def test_may_has_the_monthly_records_and_the_annual_corporate_income_settlement(session, clients):
    svc.generate_month(session, "2026-05")
    assert _rows(session) == {("甲公司", "vat", "2026-04", "2026-05-22", "pending"),
                              ("甲公司", "urban_maintenance", "2026-04", "2026-05-22", "pending"),
                              ("甲公司", "corporate_income", "2025", "2026-05-31", "pending")}
    assert svc.generate_month(session, "2026-05") == []


def test_january_makes_last_years_december_fourth_quarter_and_year_records(session, clients):
    svc.generate_month(session, "2027-01")  # 2027: no official dates, estimated 2027-01-15 (a Friday)
    assert _rows(session) == {
        ("甲公司", "vat", "2026-12", "2027-01-15", "pending"),
        ("甲公司", "urban_maintenance", "2026-12", "2027-01-15", "pending"),
        ("甲公司", "corporate_income", "2026-Q4", "2027-01-15", "pending"),
        ("甲公司", "stamp", "2026", "2027-01-15", "pending"),
        ("乙公司", "vat", "2026-Q4", "2027-01-15", "pending"),
    }


def test_an_accountant_makes_only_their_clients_records(app, session, clients, user_id):
    svc.generate_month(session, "2026-04", accountant_id=user_id("accountant2"))
    assert _rows(session) == {("乙公司", "vat", "2026-Q1", "2026-04-20", "pending")}


def test_a_bad_month_is_refused(session, clients):
    with pytest.raises(ValidationFailed) as refused:
        svc.generate_month(session, "2026-13")
    assert "month" in refused.value.errors
    assert _count(session) == 0


# --- the steps -------------------------------------------------------------------------------

@pytest.fixture
def pending(session, clients) -> TaxFiling:
    svc.generate_month(session, "2026-04")
    return _one(session, clients["a"])


@pytest.mark.parametrize(("zero", "amount", "field"), [
    (False, None, "tax_amount"),      # a return that is not a zero return needs its amount
    (False, "0", "tax_amount"),       # no tax: file it as a zero return
    (False, "-5.00", "tax_amount"),
    (False, 12.5, "tax_amount"),      # money is never a float
    (False, "1.234", "tax_amount"),
    (True, "100.00", "tax_amount"),   # a zero return has no amount
    ("yes", "100.00", "zero_return"),
])
def test_filing_refusals_write_nothing(session, pending, user_id, zero, amount, field):
    with pytest.raises(ValidationFailed) as refused:
        svc.file_return(session, pending.id, user_id("accountant"), zero, amount)
    assert field in refused.value.errors
    session.expire_all()
    assert session.get(TaxFiling, pending.id).status is FilingStatus.pending


def test_file_then_pay_keeps_who_when_and_the_amounts(session, pending, user_id):
    filed = svc.file_return(session, pending.id, user_id("accountant"), False, "1234.50")
    assert (filed.status, filed.tax_amount, filed.filed_by.username) == (FilingStatus.filed, Decimal("1234.50"),
                                                                          "accountant")
    assert filed.filed_at is not None
    paid = svc.record_payment(session, pending.id, user_id("manager"), "1240.00")
    assert (paid.status, paid.paid_amount, paid.paid_by.username) == (FilingStatus.paid, Decimal("1240.00"), "manager")


def test_a_zero_return_is_filed_with_its_flag_and_has_nothing_to_pay(session, pending, user_id):
    filed = svc.file_return(session, pending.id, user_id("accountant"), True, "")
    assert (filed.status, filed.zero_return, filed.tax_amount) == (FilingStatus.filed, True, Decimal("0.00"))
    with pytest.raises(TransitionNotAllowed):
        svc.record_payment(session, pending.id, user_id("accountant"), "1.00")


def test_no_step_out_of_order(session, pending, user_id):
    with pytest.raises(TransitionNotAllowed):
        svc.record_payment(session, pending.id, user_id("accountant"), "10.00")
    with pytest.raises(TransitionNotAllowed):
        svc.reopen(session, pending.id, "nothing to reopen")
    svc.file_return(session, pending.id, user_id("accountant"), False, "10.00")
    with pytest.raises(TransitionNotAllowed):
        svc.file_return(session, pending.id, user_id("accountant"), False, "20.00")
    with pytest.raises(ValidationFailed) as refused:
        svc.record_payment(session, pending.id, user_id("accountant"), "")
    assert "paid_amount" in refused.value.errors
    svc.record_payment(session, pending.id, user_id("accountant"), "10.00")
    with pytest.raises(TransitionNotAllowed):
        svc.record_payment(session, pending.id, user_id("accountant"), "10.00")
    with pytest.raises(NotFound):
        svc.file_return(session, 987654, user_id("accountant"), True)


def test_reopen_goes_back_one_step_with_a_reason_in_the_audit_log(session, pending, user_id):
    svc.file_return(session, pending.id, user_id("accountant"), False, "10.00")
    svc.record_payment(session, pending.id, user_id("accountant"), "10.00")
    with pytest.raises(ValidationFailed) as refused:
        svc.reopen(session, pending.id, "   ")
    assert "reason" in refused.value.errors
    back = svc.reopen(session, pending.id, "缴款凭证有误")
    assert (back.status, back.paid_amount, back.paid_at, back.tax_amount) == (FilingStatus.filed, None, None,
                                                                               Decimal("10.00"))
    back = svc.reopen(session, pending.id, "申报表更正")
    assert (back.status, back.tax_amount, back.filed_by_id, back.reopen_reason) == (FilingStatus.pending, None, None,
                                                                                     "申报表更正")
    changes = session.scalars(select(AuditLog.changes).where(AuditLog.object_type == "tax_filing",
                                                             AuditLog.action == "update")).all()
    assert len(changes) == 4
    assert any("缴款凭证有误" in c for c in changes) and any("申报表更正" in c for c in changes)


def test_evidence_must_be_archived_for_the_same_client(app, session, clients, pending, user_id):
    def archive(client):
        return store_document(session, app.config["UPLOAD_DIR"], app.config["UPLOAD_MAX_BYTES"], client_id=client.id,
                              filename="申报表.pdf", stream=io.BytesIO(minimal_pdf("x")),
                              doc_type=DocumentType.tax_form)

    others = archive(clients["b"])
    with pytest.raises(ValidationFailed) as refused:
        svc.file_return(session, pending.id, user_id("accountant"), False, "10.00", others.id)
    assert "return_document_id" in refused.value.errors
    own = archive(clients["a"])
    filed = svc.file_return(session, pending.id, user_id("accountant"), False, "10.00", own.id)
    assert filed.return_document.id == own.id


def _archived(app) -> list[str]:
    """The files in the archives folder (a temporary name left behind would show here too)."""
    from pathlib import Path

    folder = Path(app.config["UPLOAD_DIR"])
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_return_and_the_receipt_are_uploaded_on_the_filing_page_into_the_client_s_archives(
        app, login_as, session, clients):
    from app.models.documents import Document

    svc.generate_month(session, "2026-04")
    vat = _one(session, clients["a"])
    browser = login_as("accountant")
    page = browser.get(f"/taxfilings/show/{vat.id}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'name="return_file"' in page
    return_pdf = minimal_pdf("VAT return 2026-03")
    response = browser.post(f"/taxfilings/file/{vat.id}", content_type="multipart/form-data", data={
        "tax_amount": "1234.50", "return_file": (io.BytesIO(return_pdf), "增值税申报表.pdf")})
    assert response.status_code == 302
    session.expire_all()
    filed = session.get(TaxFiling, vat.id)
    assert (filed.status, filed.tax_amount, filed.filed_by.username) == (FilingStatus.filed, Decimal("1234.50"),
                                                                          "accountant")
    form = filed.return_document
    assert (form.client_id, form.doc_type, form.period, form.title, form.original_filename,
            form.uploaded_by.username) == (clients["a"].id, DocumentType.tax_form, "2026-03", "增值税申报表 2026-03",
                                           "增值税申报表.pdf", "accountant")
    page = browser.get(f"/taxfilings/show/{vat.id}").get_data(as_text=True)
    assert "增值税申报表 2026-03" in page.split('id="return-document"')[1].split("</td>")[0]
    assert browser.get(f"/documentmodelview/download/{form.id}").data == return_pdf  # in the archives
    assert 'name="receipt_file"' in page
    receipt_png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    response = browser.post(f"/taxfilings/pay/{vat.id}", content_type="multipart/form-data", data={
        "paid_amount": "1234.50", "receipt_file": (io.BytesIO(receipt_png), "缴款凭证.png")})
    assert response.status_code == 302
    session.expire_all()
    paid = session.get(TaxFiling, vat.id)
    assert (paid.status, paid.paid_amount, paid.receipt_document.title, paid.receipt_document.doc_type) == (
        FilingStatus.paid, Decimal("1234.50"), "增值税缴款凭证 2026-03", DocumentType.tax_form)
    assert browser.get(f"/documentmodelview/download/{paid.receipt_document.id}").data == receipt_png
    assert _count(session, Document) == 2
    assert len(_archived(app)) == 2


@pytest.mark.parametrize(("form", "field"), [
    ({"tax_amount": "10.00", "return_file": (b"not a pdf at all", "申报表.pdf")}, "file"),  # content is not a PDF
    ({"tax_amount": "", "return_file": (minimal_pdf("x"), "申报表.pdf")}, "tax_amount"),  # the step is refused
])
def test_a_refused_step_or_upload_archives_nothing_and_files_nothing(app, login_as, session, clients, form, field):
    from app.models.documents import Document

    svc.generate_month(session, "2026-04")
    vat = _one(session, clients["a"])
    data = {key: (io.BytesIO(value[0]), value[1]) if isinstance(value, tuple) else value
            for key, value in form.items()}
    page = login_as("accountant").post(f"/taxfilings/file/{vat.id}", content_type="multipart/form-data", data=data,
                                       headers={"Referer": f"http://localhost/taxfilings/show/{vat.id}"},
                                       follow_redirects=True)
    assert 'id="file-form"' in page.get_data(as_text=True)  # back on the page, the refusal shown
    session.expire_all()
    assert session.get(TaxFiling, vat.id).status is FilingStatus.pending
    assert _count(session, Document) == 0
    assert _archived(app) == []
    with pytest.raises(ValidationFailed) as refused:
        upload = svc.Evidence(app.config["UPLOAD_DIR"], app.config["UPLOAD_MAX_BYTES"], form["return_file"][1],
                              io.BytesIO(form["return_file"][0]), "申报表")
        svc.file_return(session, vat.id, None, False, form["tax_amount"], upload=upload)
    assert field in refused.value.errors
    assert _count(session, Document) == 0 and _archived(app) == []


def test_naming_an_archived_document_and_uploading_one_at_once_is_refused(app, session, clients, pending, user_id):
    from app.models.documents import Document

    named = store_document(session, app.config["UPLOAD_DIR"], app.config["UPLOAD_MAX_BYTES"],
                           client_id=clients["a"].id, filename="旧申报表.pdf", stream=io.BytesIO(minimal_pdf("x")),
                           doc_type=DocumentType.tax_form)
    upload = svc.Evidence(app.config["UPLOAD_DIR"], app.config["UPLOAD_MAX_BYTES"], "新申报表.pdf",
                          io.BytesIO(minimal_pdf("y")), "申报表")
    with pytest.raises(ValidationFailed) as refused:
        svc.file_return(session, pending.id, user_id("accountant"), False, "10.00", named.id, upload)
    assert list(refused.value.errors) == ["return_document_id"]
    session.expire_all()
    assert session.get(TaxFiling, pending.id).status is FilingStatus.pending
    assert _count(session, Document) == 1 and len(_archived(app)) == 1


def test_the_api_names_the_receipt_archived_for_the_client(app, api_token, session, clients, pending, user_id):
    svc.file_return(session, pending.id, user_id("accountant"), False, "10.00")
    headers = api_token("accountant")
    upload = app.test_client().post("/api/v1/document/upload", headers=headers, content_type="multipart/form-data",
                                    data={"client_id": str(clients["a"].id), "doc_type": "tax_form",
                                          "title": "缴款凭证", "file": (io.BytesIO(minimal_pdf("r")), "缴款凭证.pdf")})
    assert upload.status_code == 201, upload.get_data(as_text=True)
    paid = app.test_client().post(f"/api/v1/tax/filing/{pending.id}/pay", headers=headers,
                                  json={"paid_amount": "10.00", "receipt_document_id": upload.json["id"]})
    assert paid.status_code == 200, paid.json
    assert (paid.json["status"], paid.json["receipt_document_id"]) == ("paid", upload.json["id"])


# --- the lists -------------------------------------------------------------------------------

def test_overdue_and_due_in_7_days_as_of_a_given_date(session, clients, user_id):
    svc.generate_month(session, "2026-04")  # 4 records due 2026-04-20
    a = clients["a"]
    zero = _one(session, a, "urban_maintenance")
    svc.file_return(session, zero.id, user_id("accountant"), True)
    paid = _one(session, a, "corporate_income")
    svc.file_return(session, paid.id, user_id("accountant"), False, "300.00")
    svc.record_payment(session, paid.id, user_id("accountant"), "300.00")
    unpaid = _one(session, clients["b"])
    svc.file_return(session, unpaid.id, user_id("accountant2"), False, "90.00")
    # open: 甲 VAT (pending) and 乙 VAT (filed, unpaid); the zero return and the paid one are done
    names = lambda rows: sorted((f.client.name, f.tax.value) for f in rows)  # noqa: E731
    open_ = [("乙公司", "vat"), ("甲公司", "vat")]
    assert names(svc.due_soon(session, date(2026, 4, 13))) == open_  # 13th + 7 days = the 20th
    assert names(svc.due_soon(session, date(2026, 4, 12))) == []
    assert names(svc.due_soon(session, date(2026, 4, 20))) == open_
    assert names(svc.overdue(session, date(2026, 4, 20))) == []
    assert names(svc.overdue(session, date(2026, 4, 21))) == open_
    assert names(svc.overdue(session, date(2026, 4, 21), accountant_id=user_id("accountant"))) == [("甲公司", "vat")]


# --- API -------------------------------------------------------------------------------------

def test_api_generate_file_pay_and_reopen(app, api_token, session, clients):
    api = app.test_client()
    headers = api_token("accountant")
    response = api.post("/api/v1/tax/filing/generate", headers=headers, json={"month": "2026-04"})
    assert response.status_code == 200, response.json
    assert (response.json["month"], response.json["created"]) == ("2026-04", 3)  # not 乙公司 of accountant2
    again = api.post("/api/v1/tax/filing/generate", headers=headers, json={"month": "2026-04"})
    assert again.json["created"] == 0
    vat = _one(session, clients["a"])
    response = api.post(f"/api/v1/tax/filing/{vat.id}/file", headers=headers, json={"zero_return": False})
    assert response.status_code == 422
    assert set(response.json) == {"message", "errors"} and "tax_amount" in response.json["errors"]
    response = api.post(f"/api/v1/tax/filing/{vat.id}/file", headers=headers,
                        json={"zero_return": False, "tax_amount": "88.10"})
    assert response.status_code == 200, response.json
    assert response.json["status"] == "filed" and response.json["tax_amount"] == "88.10"
    assert response.json["filed_by"] == "accountant" and response.json["due"] == "2026-04-20"
    response = api.post(f"/api/v1/tax/filing/{vat.id}/file", headers=headers,
                        json={"zero_return": True})
    assert response.status_code == 409
    response = api.post(f"/api/v1/tax/filing/{vat.id}/pay", headers=headers, json={"paid_amount": "88.10"})
    assert response.json["status"] == "paid" and response.json["paid_amount"] == "88.10"
    response = api.post(f"/api/v1/tax/filing/{vat.id}/reopen", headers=headers, json={"reason": "金额有误"})
    assert response.json["status"] == "filed" and response.json["reopen_reason"] == "金额有误"
    listed = api.get("/api/v1/tax/filing?status=filed&tax=vat", headers=headers).json
    assert listed["count"] == 1 and listed["result"][0]["id"] == vat.id
    overdue = api.get("/api/v1/tax/filing/overdue?as_of=2026-04-21", headers=headers).json
    assert [(f["client_name"], f["tax"]) for f in overdue["result"]] == [
        ("甲公司", "vat"), ("甲公司", "urban_maintenance"), ("甲公司", "corporate_income")]
    for bad in ("2026-04-31", "9999-12-31", "20260401"):
        assert api.get(f"/api/v1/tax/filing/due_soon?as_of={bad}", headers=headers).status_code == 422


def test_api_scope_accountants_act_for_their_clients_managers_for_all(app, api_token, session, clients):
    svc.generate_month(session, "2026-04")
    others = _one(session, clients["b"])
    api = app.test_client()
    assert api.get(f"/api/v1/tax/filing/{others.id}", headers=api_token("accountant")).status_code == 404
    assert api.post(f"/api/v1/tax/filing/{others.id}/file", headers=api_token("accountant"),
                    json={"zero_return": True}).status_code == 404
    assert api.post(f"/api/v1/tax/filing/{others.id}/file", headers=api_token("reviewer"),
                    json={"zero_return": True}).status_code == 403
    assert api.get("/api/v1/tax/filing", headers=api_token("accountant")).json["count"] == 3
    assert api.get("/api/v1/tax/filing", headers=api_token("reviewer")).json["count"] == 4
    assert api.get("/api/v1/tax/filing", headers=api_token("agent")).status_code == 403
    session.expire_all()
    assert session.get(TaxFiling, others.id).status is FilingStatus.pending
    response = api.post(f"/api/v1/tax/filing/{others.id}/file", headers=api_token("manager"),
                        json={"zero_return": True})
    assert response.status_code == 200 and response.json["zero_return"] is True


@pytest.mark.parametrize("query", ["tax=beer", "status=done", "client_id=x", "period=2026-3", "page_size=0",
                                   "page=-1"])
def test_api_list_refuses_bad_filters(app, api_token, query):
    response = app.test_client().get(f"/api/v1/tax/filing?{query}", headers=api_token("manager"))
    assert response.status_code == 422
    assert set(response.json) == {"message", "errors"}


# --- screens ---------------------------------------------------------------------------------

def test_screens_list_filter_and_file_a_return(app, login_as, session, clients):
    svc.generate_month(session, "2026-04")
    browser = login_as("accountant")
    menu = browser.get("/taxcalendar/").get_data(as_text=True)  # the 税务 menu of every page
    assert 'href="/taxcalendar/"' in menu
    assert all(link in menu for link in ('href="/taxfilings/"', 'href="/taxfilings/overdue"',
                                         'href="/taxfilings/due_soon"', 'href="/taxratemodelview/list/"'))
    page = browser.get("/taxfilings/").get_data(as_text=True)
    assert "甲公司" in page and "乙公司" not in page
    page = browser.get("/taxfilings/?tax=corporate_income").get_data(as_text=True)
    assert "<td>2026-Q1</td>" in page and "<td>2026-03</td>" not in page
    assert "甲公司" in browser.get("/taxfilings/overdue?as_of=2026-04-21").get_data(as_text=True)
    assert 'id="no-filings"' in browser.get("/taxfilings/due_soon?as_of=2026-04-12").get_data(as_text=True)
    vat = _one(session, clients["a"])
    assert 'id="file-form"' in browser.get(f"/taxfilings/show/{vat.id}").get_data(as_text=True)
    refused = browser.post(f"/taxfilings/file/{vat.id}", data={"tax_amount": ""},
                           headers={"Referer": f"http://localhost/taxfilings/show/{vat.id}"}, follow_redirects=True)
    assert 'id="file-form"' in refused.get_data(as_text=True)
    session.expire_all()
    assert session.get(TaxFiling, vat.id).status is FilingStatus.pending
    assert browser.post(f"/taxfilings/file/{vat.id}", data={"zero_return": "y"}).status_code == 302
    session.expire_all()
    assert session.get(TaxFiling, vat.id).zero_return is True
    others = _one(session, clients["b"])
    assert browser.get(f"/taxfilings/show/{others.id}").status_code == 404


def test_manager_makes_a_month_on_the_screen_and_the_reviewer_only_reads(app, login_as, session, clients):
    assert login_as("manager").post("/taxfilings/generate", data={"month": "2026-04"}).status_code == 302
    assert _count(session) == 4
    reviewer = login_as("reviewer")
    vat = _one(session, clients["a"])
    assert 'id="file-form"' not in reviewer.get(f"/taxfilings/show/{vat.id}").get_data(as_text=True)
    reviewer.post(f"/taxfilings/file/{vat.id}", data={"zero_return": "y"})
    session.expire_all()
    assert session.get(TaxFiling, vat.id).status is FilingStatus.pending


def test_a_client_with_filing_records_is_not_deleted(app, api_token, session, clients):
    svc.generate_month(session, "2026-06")  # 甲公司: VAT and 城建税 for 2026-05
    response = app.test_client().delete(f"/api/v1/client/{clients['a'].id}", headers=api_token("manager"))
    assert response.status_code == 409
    assert "2 条申报记录" in response.json["message"] or "2 tax filings" in response.json["message"]
    assert _count(session) == 2
