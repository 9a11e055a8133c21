"""Leads (线索) under 客户: the list and a lead's page in Chinese, editing with the rules, the steps
new → contacted → converted / lost (and reopened), conversion into a contact of a new or existing
client (which also identifies the lead's chat visitor), the same over ``/api/v1/lead/`` — every
refusal writing nothing, every change in the audit log."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models.chat import ChatSite, Visitor
from app.models.crm import Client, ClientContact, TaxpayerType
from app.models.leads import Lead, LeadStatus
from app.models.security import AuditLog
from app.services import chat_sites
from tests.factories import credit_code, make_client


@pytest.fixture
def lead(app):
    site = chat_sites.prepare_new_site(ChatSite(name="示范代账官网", allowed_origins="https://www.example.com"))
    db.session.add(site)
    db.session.flush()
    visitor = Visitor(site_id=site.id, uid="lead-visitor", name="赵女士", external_user_id="web-7")
    db.session.add(visitor)
    db.session.flush()
    lead = Lead(name="赵女士", company="杭州小禾电子商务有限公司", phone="13800001111", question="代账多少钱？",
                site_id=site.id, visitor_id=visitor.id, source_url="https://www.example.com/pricing")
    db.session.add(lead)
    db.session.commit()
    return lead


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _audit_rows(object_type: str) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog).where(AuditLog.object_type == object_type).order_by(AuditLog.id)))


# --- the screen -----------------------------------------------------------------------------------


def test_agents_list_and_open_leads_in_chinese_under_clients(login_as, lead):
    agent = login_as("agent")
    listing = agent.get("/leadmodelview/list/").get_data(as_text=True)
    assert "赵女士" in listing and "新线索" in listing and ">new<" not in listing
    page = agent.get(f"/leadmodelview/show/{lead.id}").get_data(as_text=True)
    assert "杭州小禾电子商务有限公司" in page and "https://www.example.com/pricing" in page
    assert "标记为已联系" in page and "标记为已流失" in page
    assert "转为客户" not in page  # converting makes or picks a client: a Manager's
    assert "转为客户" in login_as("manager").get(f"/leadmodelview/show/{lead.id}").get_data(as_text=True)
    home = agent.get("/leadmodelview/list/").get_data(as_text=True)
    assert 'href="/leadmodelview/list/"' in home  # in the menu


def test_an_edit_keeps_the_rules_and_a_refused_one_writes_nothing(login_as, lead):
    agent = login_as("agent")
    form = {"name": "赵女士", "company": "杭州小禾", "phone": "abc", "email": "", "question": "代账多少钱？",
            "notes": ""}
    before = len(_audit_rows("crm_lead"))
    refused = agent.post(f"/leadmodelview/edit/{lead.id}", data=form, follow_redirects=True).get_data(as_text=True)
    assert "这不是有效的电话号码。" in refused
    db.session.expire_all()
    assert (lead.company, lead.phone) == ("杭州小禾电子商务有限公司", "13800001111")
    assert len(_audit_rows("crm_lead")) == before
    form["phone"] = "0571-88886666"
    assert agent.post(f"/leadmodelview/edit/{lead.id}", data=form).status_code == 302
    db.session.expire_all()
    assert (lead.company, lead.phone) == ("杭州小禾", "0571-88886666")
    assert json.loads(_audit_rows("crm_lead")[-1].changes)["phone"] == ["13800001111", "0571-88886666"]


def test_the_steps_contacted_lost_with_a_reason_and_reopened(login_as, lead):
    agent = login_as("agent")
    url = f"/leadmodelview/transition/{lead.id}"
    assert agent.post(url, data={"status": "contacted"}).status_code == 302
    db.session.expire_all()
    assert lead.status == LeadStatus.contacted
    refused = agent.post(url, data={"status": "lost", "reason": " "}, follow_redirects=True).get_data(as_text=True)
    assert "请填写线索流失的原因" in refused
    db.session.expire_all()
    assert lead.status == LeadStatus.contacted
    agent.post(url, data={"status": "lost", "reason": "已找其他代账公司"})
    db.session.expire_all()
    assert (lead.status, lead.lost_reason) == (LeadStatus.lost, "已找其他代账公司")
    page = agent.post(url, data={"status": "contacted"}, follow_redirects=True).get_data(as_text=True)
    assert "状态为“已流失”的线索不能改为“已联系”。" in page
    agent.post(url, data={"status": "new"})
    db.session.expire_all()
    assert (lead.status, lead.lost_reason) == (LeadStatus.new, None)
    statuses = [json.loads(r.changes).get("status") for r in _audit_rows("crm_lead")[1:]]
    assert statuses == [["new", "contacted"], ["contacted", "lost"], ["lost", "new"]]


def test_a_manager_converts_a_lead_into_a_new_client_whose_contact_is_the_chat_visitor(login_as, lead):
    manager = login_as("manager")
    code = credit_code()
    page = manager.get(f"/leadmodelview/convert/{lead.id}").get_data(as_text=True)
    assert 'value="杭州小禾电子商务有限公司"' in page  # the new client's name starts as the lead's company
    refused = manager.post(f"/leadmodelview/convert/{lead.id}", data={
        "client_id": "", "name": "杭州小禾电子商务有限公司", "credit_code": "123", "taxpayer_type": "small_scale"})
    assert refused.status_code == 200 and "统一社会信用代码" in refused.get_data(as_text=True)
    assert _count(Client) == 0 and _count(ClientContact) == 0
    done = manager.post(f"/leadmodelview/convert/{lead.id}", data={
        "client_id": "", "name": "杭州小禾电子商务有限公司", "credit_code": code, "taxpayer_type": "general"})
    assert done.status_code == 302
    client = db.session.scalar(select(Client).where(Client.credit_code == code))
    assert (client.name, client.taxpayer_type) == ("杭州小禾电子商务有限公司", TaxpayerType.general)
    [contact] = db.session.scalars(select(ClientContact).where(ClientContact.client_id == client.id)).all()
    assert (contact.name, contact.phone, contact.chat_user_id) == ("赵女士", "13800001111", "web-7")
    db.session.expire_all()
    assert (lead.status, lead.client_id) == (LeadStatus.converted, client.id)
    assert db.session.get(Visitor, lead.visitor_id).contact_id == contact.id
    assert [r.action for r in _audit_rows("client")] == ["create"]
    assert [r.action for r in _audit_rows("chat_visitor")] == ["chat_contact_linked"]
    # A converted lead stays converted.
    again = manager.post(f"/leadmodelview/convert/{lead.id}", data={"client_id": str(client.id)},
                         follow_redirects=True).get_data(as_text=True)
    assert "只有新线索或已联系的线索可以转为客户。" in again
    assert _count(Client) == 1 and _count(ClientContact) == 1


# --- the API --------------------------------------------------------------------------------------


def test_the_api_reads_edits_moves_and_converts_a_lead(app, api_token, lead):
    agent, manager = api_token("agent"), api_token("manager")
    client = app.test_client()
    listed = client.get("/api/v1/lead/", headers=agent).json
    assert [row["name"] for row in listed["result"]] == ["赵女士"]
    assert listed["result"][0]["visitor_id"] == lead.visitor_id
    bad = client.put(f"/api/v1/lead/{lead.id}", json={"email": "not-an-address"}, headers=agent)
    assert bad.status_code == 422 and bad.json["errors"]["email"] == ["这不是有效的电子邮件地址。"]
    assert client.put(f"/api/v1/lead/{lead.id}", json={"email": "zhao@example.com"}, headers=agent).status_code == 200
    step = client.post(f"/api/v1/lead/{lead.id}/transition", json={"status": "contacted"}, headers=agent)
    assert step.status_code == 200 and step.json["status"] == "contacted" and step.json["email"] == "zhao@example.com"
    for body, status in (({"status": "won"}, 422), ({"status": "converted"}, 409), ({"status": "lost"}, 422),
                         ("[]", 400)):
        kwargs = {"data": body, "content_type": "application/json"} if isinstance(body, str) else {"json": body}
        answer = client.post(f"/api/v1/lead/{lead.id}/transition", headers=agent, **kwargs)
        assert answer.status_code in (status, 422), (body, answer.json)
        assert answer.status_code == status or body == "[]"
    assert client.post(f"/api/v1/lead/{lead.id}/convert", json={"client_id": 1}, headers=agent).status_code == 403
    existing = make_client(name="上海明远商贸有限公司")
    assert client.post(f"/api/v1/lead/{lead.id}/convert", json={"client_id": 10**20},
                       headers=manager).status_code == 404
    converted = client.post(f"/api/v1/lead/{lead.id}/convert", json={"client_id": existing.id}, headers=manager)
    assert converted.status_code == 200, converted.json
    assert converted.json["client_id"] == existing.id and converted.json["lead"]["status"] == "converted"
    assert _count(ClientContact, ClientContact.client_id == existing.id) == 1
    assert client.get("/api/v1/lead/_info", headers=agent).status_code == 200
    assert client.delete(f"/api/v1/lead/{lead.id}", headers=agent).status_code == 403
    assert client.delete(f"/api/v1/lead/{lead.id}", headers=manager).status_code == 200
    assert _count(Lead) == 0


def test_the_openapi_document_describes_the_lead_api(app, api_token):
    spec = app.test_client().get("/api/v1/_openapi", headers=api_token("manager")).json
    assert {"/api/v1/lead/", "/api/v1/lead/{pk}", "/api/v1/lead/{pk}/transition",
            "/api/v1/lead/{pk}/convert"} <= set(spec["paths"])
    assert "LeadConvertIn" in spec["components"]["schemas"]
