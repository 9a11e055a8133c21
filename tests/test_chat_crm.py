"""From visitor to client in the agent console: a lead or a client contact made from a visitor's
card in one click (prefilled from what the visitor gave), the filing status of an identified
client contact, and the client's latest statement PDF sent into the chat — each permission-checked,
validated (a bad payload writes nothing) and audited."""

from __future__ import annotations

import io
import json
import re
from datetime import date, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models.chat import (
    AgentProfile,
    AgentStatus,
    ChatAttachment,
    ChatMessage,
    ChatSite,
    Conversation,
    LeaveMessage,
    Visitor,
)
from app.models.contracts import ContractStatus
from app.models.crm import ClientContact
from app.models.leads import Lead, LeadStatus
from app.models.security import AuditLog
from app.models.tax import FilingPeriod, TaxKind
from app.models.tax_filing import FilingStatus, TaxFiling
from app.services import chat_files, chat_sites
from app.services import contracts as contract_svc
from reports import jobs
from tests.factories import make_client, make_contact, make_contract
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"


@pytest.fixture(scope="module", autouse=True)
def _pool_stops():
    """The report workers (started by the first statement) stop after this module."""
    yield
    jobs.shutdown_pool()


@pytest.fixture
def site(app):
    site = chat_sites.prepare_new_site(ChatSite(name="示范代账官网", allowed_origins=ORIGIN))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def agents(app, user_id):
    """客服小张 (the Agent role) and 主管 (the Manager role, who may also download statements)."""
    db.session.add_all([AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=5),
                        AgentProfile(user_id=user_id("manager"), display_name="主管", max_chats=5)])
    db.session.commit()


def _visitor(app, site):
    return FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                             auth={"site_key": site.site_key}, flask_test_client=app.test_client())


def _agent(app, login_as, username="agent"):
    return FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as(username))


def _chat(app, site, login_as, username="agent", text="小规模纳税人代账多少钱？"):
    """A visitor who gave their details in the pre-chat form writes; *username* takes the chat."""
    site.prechat_name = site.prechat_phone = site.prechat_question = "optional"
    agent = _agent(app, login_as, username)
    for profile in db.session.scalars(select(AgentProfile)):  # the chat is offered to *username* alone
        profile.status = AgentStatus.online if profile.user.username == username else AgentStatus.away
    db.session.commit()
    visitor = _visitor(app, site)
    visitor.emit("page_view", {"url": "https://www.example.com/pricing?utm_source=baidu", "title": "价格"},
                 namespace="/visitor", callback=True)
    ack = visitor.emit("prechat", {"client_msg_id": "q1", "name": "赵女士", "phone": "13800001111",
                                   "question": text}, namespace="/visitor", callback=True)
    conversation_id = ack["message"]["conversation_id"]
    assert "error" not in agent.emit("accept", {"conversation_id": conversation_id}, namespace="/agent",
                                     callback=True)
    visitor.get_received("/visitor")
    visitor_id = db.session.get(Conversation, conversation_id).visitor_id
    return visitor, agent, conversation_id, visitor_id


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _audit(action: str) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


# --- the visitor card ---------------------------------------------------------------------------


def test_the_visitor_card_is_prefilled_from_what_the_visitor_gave_and_offers_both_actions(
        app, site, agents, login_as):
    _, _, conversation_id, visitor_id = _chat(app, site, login_as)
    card = login_as("agent").get(f"/chat/console/visitor/{visitor_id}").json
    assert card["crm"]["prefill"] == {
        "name": "赵女士", "phone": "13800001111", "email": None, "question": "小规模纳税人代账多少钱？",
        "site_name": "示范代账官网", "source_url": "https://www.example.com/pricing?utm_source=baidu",
        "conversation_id": conversation_id}
    assert card["crm"]["lead"] is None
    assert card["crm"]["can"] == {"create_lead": True, "link_contact": True}
    assert card["client"] is None


def test_the_console_page_carries_the_texts_of_the_actions_beside_its_own(app, agents, login_as):
    page = login_as("agent").get("/chat/console/").get_data(as_text=True)
    config = json.loads(re.search(r'<script type="application/json" id="console-config">(.*?)</script>', page,
                                  re.S).group(1))
    strings = config["strings"]
    assert (strings["position"], strings["contact_position"]) == ("第 %(n)s 位", "职务")  # the queue's own kept
    assert (strings["create_lead"], strings["add_contact"], strings["send_statement"]) == (
        "创建线索", "添加为客户联系人", "发送最新报表")


def test_a_left_message_fills_in_what_the_visitor_record_lacks(app, site, agents, login_as):
    visitor = Visitor(site_id=site.id, uid="v-left")
    db.session.add(visitor)
    db.session.flush()
    db.session.add(LeaveMessage(site_id=site.id, visitor_id=visitor.id, name="钱先生", email="qian@example.com",
                                text="想注册一家公司"))
    db.session.commit()
    prefill = login_as("agent").get(f"/chat/console/visitor/{visitor.id}").json["crm"]["prefill"]
    assert (prefill["name"], prefill["email"], prefill["phone"], prefill["question"]) == (
        "钱先生", "qian@example.com", None, "想注册一家公司")


# --- leads ----------------------------------------------------------------------------------------


def test_an_agent_creates_a_lead_from_a_chat_and_asking_again_returns_the_same_lead(
        app, site, agents, login_as, user_id):
    _, agent, conversation_id, visitor_id = _chat(app, site, login_as)
    ack = agent.emit("lead_create", {"visitor_id": visitor_id, "conversation_id": conversation_id, "name": " 赵女士 ",
                                     "company": "杭州小禾电子商务有限公司", "phone": "138 0000 1111",
                                     "question": "小规模纳税人代账多少钱？"}, namespace="/agent", callback=True)
    assert ack["created"] is True, ack
    lead = db.session.get(Lead, ack["lead"]["id"])
    assert (lead.name, lead.company, lead.phone, lead.email, lead.question, lead.status) == (
        "赵女士", "杭州小禾电子商务有限公司", "13800001111", None, "小规模纳税人代账多少钱？", LeadStatus.new)
    # Where it came from is the visitor's, never the request's.
    assert (lead.site_id, lead.visitor_id, lead.conversation_id, lead.owner_id, lead.source_url) == (
        site.id, visitor_id, conversation_id, user_id("agent"), "https://www.example.com/pricing?utm_source=baidu")
    assert ack["lead"]["status_label"] == "新线索"
    [created] = [r for r in _audit("create") if r.object_type == "crm_lead"]
    assert (created.object_id, created.username) == (str(lead.id), "agent")

    # Once per visitor: asking again (another agent, other details) returns the same lead, unchanged.
    again = _agent(app, login_as, "manager").emit("lead_create", {"visitor_id": visitor_id, "name": "别的名字"},
                                                  namespace="/agent", callback=True)
    assert again["created"] is False and again["lead"]["id"] == lead.id and again["lead"]["name"] == "赵女士"
    assert _count(Lead) == 1
    card = login_as("agent").get(f"/chat/console/visitor/{visitor_id}").json
    assert card["crm"]["lead"] == {"id": lead.id, "name": "赵女士", "status": "new", "status_label": "新线索",
                                   "url": f"/leadmodelview/show/{lead.id}"}


@pytest.mark.parametrize("payload", [
    {"visitor_id": "1"}, {"visitor_id": 10**20}, {"visitor_id": 2**31}, {"visitor_id": 999999}, {"visitor_id": True},
    {"name": ""}, {"name": "  "}, {"name": "x" * 101}, {"name": 5}, {"name": "赵\u0000女士"},
    {"phone": "abc"}, {"email": "not-an-address"}, {"company": "x" * 201}, {"question": "x" * 2001},
    {"conversation_id": "1"}, {"conversation_id": 999999}, {"conversation_id": "other"},
])
def test_a_bad_lead_request_gets_an_error_and_writes_nothing(app, site, agents, login_as, payload):
    _, agent, conversation_id, visitor_id = _chat(app, site, login_as)
    if payload.get("conversation_id") == "other":  # a chat of another visitor
        _, _, other_id, _ = _chat(app, site, login_as, text="另一位访客")
        payload = {"conversation_id": other_id}
    sent = {"visitor_id": visitor_id, "name": "赵女士", **payload}
    ack = agent.emit("lead_create", sent, namespace="/agent", callback=True)
    assert "error" in ack and ack["errors"], ack
    assert received(agent, "error", "/agent", 1)[-1]["event"] == "lead_create"
    assert _count(Lead) == 0 and _count(AuditLog, AuditLog.object_type == "crm_lead") == 0


def test_a_visitor_on_a_site_the_agent_does_not_serve_gets_no_lead(app, site, agents, login_as):
    from app.models.chat import AgentGroup

    other = chat_sites.prepare_new_site(ChatSite(name="别的站点", allowed_origins="https://other.example"))
    db.session.add(other)
    db.session.flush()
    group = AgentGroup(site_id=site.id, name="售前", is_default=True)
    group.agents.append(db.session.scalar(select(AgentProfile).where(AgentProfile.display_name == "客服小张")))
    db.session.add_all([group, Visitor(site_id=other.id, uid="elsewhere", name="孙先生")])
    db.session.commit()
    stranger = db.session.scalar(select(Visitor.id).where(Visitor.uid == "elsewhere"))
    ack = _agent(app, login_as).emit("lead_create", {"visitor_id": stranger, "name": "孙先生"}, namespace="/agent",
                                     callback=True)
    assert ack["errors"] == {"visitor_id": ["访客不存在。"]}
    assert _count(Lead) == 0


def test_a_client_contact_gets_no_lead(app, site, agents, login_as):
    _, agent, _, visitor_id = _chat(app, site, login_as)
    client = make_client(name="上海明远商贸有限公司")
    db.session.get(Visitor, visitor_id).contact_id = make_contact(client, name="赵女士").id
    db.session.commit()
    ack = agent.emit("lead_create", {"visitor_id": visitor_id, "name": "赵女士"}, namespace="/agent", callback=True)
    assert ack["error"] == "此访客已是上海明远商贸有限公司的联系人，无需创建线索。"
    assert _count(Lead) == 0


def test_without_the_permission_an_agent_makes_no_lead_and_no_contact(app, site, agents, login_as):
    sm = app.appbuilder.sm
    role = sm.find_role("Agent")
    for permission in ("can_create_lead", "can_link_contact"):
        sm.del_permission_role(role, sm.find_permission_view_menu(permission, "LiveChat"))
    _, agent, _, visitor_id = _chat(app, site, login_as)
    client = make_client()
    assert agent.emit("lead_create", {"visitor_id": visitor_id, "name": "赵女士"}, namespace="/agent",
                      callback=True)["error"] == "您无权创建线索。"
    for event, payload in (("client_search", {"q": "测试"}),
                           ("contact_attach", {"visitor_id": visitor_id, "client_id": client.id, "name": "赵女士"})):
        assert agent.emit(event, payload, namespace="/agent", callback=True)["error"] == \
            "您无权将访客添加为客户联系人。"
    assert _count(Lead) == 0 and _count(ClientContact) == 0
    card = login_as("agent").get(f"/chat/console/visitor/{visitor_id}").json
    assert card["crm"]["can"] == {"create_lead": False, "link_contact": False}


# --- client contacts ------------------------------------------------------------------------------


def test_clients_are_found_by_part_of_the_name_or_credit_code_taken_literally(app, site, agents, login_as):
    ours = make_client(name="上海明远商贸有限公司")
    make_client(name="杭州青禾科技有限公司")
    make_client(name="百分之百_咨询有限公司")
    agent = _agent(app, login_as)
    found = agent.emit("client_search", {"q": "明远"}, namespace="/agent", callback=True)["results"]
    assert found == [{"id": ours.id, "name": "上海明远商贸有限公司", "credit_code": ours.credit_code}]
    by_code = agent.emit("client_search", {"q": ours.credit_code[-6:].lower()}, namespace="/agent", callback=True)
    assert [r["id"] for r in by_code["results"]] == [ours.id]
    assert [r["name"] for r in agent.emit("client_search", {"q": "_"}, namespace="/agent",
                                          callback=True)["results"]] == ["百分之百_咨询有限公司"]
    for bad in ({"q": ""}, {"q": " "}, {"q": "x" * 101}, {"q": 7}, {}):
        assert "error" in agent.emit("client_search", bad, namespace="/agent", callback=True), bad


def test_an_agent_adds_the_visitor_as_a_contact_of_a_client_and_the_card_shows_the_client(
        app, site, agents, login_as):
    _, agent, _, visitor_id = _chat(app, site, login_as)
    client = make_client(name="上海明远商贸有限公司")
    ack = agent.emit("contact_attach", {"visitor_id": visitor_id, "client_id": client.id, "name": "赵女士",
                                        "position": "出纳", "phone": "13800001111"}, namespace="/agent", callback=True)
    assert ack["client_name"] == "上海明远商贸有限公司", ack
    contact = db.session.get(ClientContact, ack["contact_id"])
    assert (contact.client_id, contact.name, contact.position, contact.phone, contact.is_primary) == (
        client.id, "赵女士", "出纳", "13800001111", False)
    assert db.session.get(Visitor, visitor_id).contact_id == contact.id
    [linked] = _audit("chat_contact_linked")
    assert (linked.object_type, linked.object_id, linked.username) == ("chat_visitor", str(visitor_id), "agent")
    assert json.loads(linked.changes) == {"contact_id": [None, contact.id], "client_id": [None, client.id]}
    assert [r.object_id for r in _audit("create") if r.object_type == "client_contact"] == [str(contact.id)]

    card = login_as("agent").get(f"/chat/console/visitor/{visitor_id}").json
    assert card["client"]["name"] == "上海明远商贸有限公司"
    assert card["client"]["contact"] == {"name": "赵女士", "position": "出纳"}
    assert card["client"]["can_send_statement"] is False  # an Agent may not download statements
    # Adding again is refused: the visitor is a contact already.
    again = agent.emit("contact_attach", {"visitor_id": visitor_id, "client_id": client.id, "name": "赵女士"},
                       namespace="/agent", callback=True)
    assert again["error"] == "此访客已是上海明远商贸有限公司的联系人。"
    assert _count(ClientContact) == 1


def test_a_verified_visitor_is_recognised_as_the_new_contact_on_the_next_visit(app, site, agents, login_as):
    token_id = "site-user-42"
    visitor = FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                                auth={"site_key": site.site_key, "user_id": token_id,
                                      "user_hash": chat_sites.identity_hash(site.identity_secret, token_id)},
                                flask_test_client=app.test_client())
    assert visitor.is_connected("/visitor")
    visitor_id = db.session.scalar(select(Visitor.id).where(Visitor.external_user_id == token_id))
    client = make_client()
    ack = _agent(app, login_as).emit("contact_attach", {"visitor_id": visitor_id, "client_id": client.id,
                                                        "name": "周先生"}, namespace="/agent", callback=True)
    assert db.session.get(ClientContact, ack["contact_id"]).chat_user_id == token_id


@pytest.mark.parametrize("payload", [
    {"client_id": "1"}, {"client_id": 10**20}, {"client_id": 999999}, {"client_id": None},
    {"visitor_id": 10**20}, {"visitor_id": 999999}, {"name": ""}, {"name": "王\u0000五"}, {"phone": "12"},
    {"email": "a@b"}, {"position": "x" * 101},
])
def test_a_bad_contact_request_gets_an_error_and_writes_nothing(app, site, agents, login_as, payload):
    _, agent, _, visitor_id = _chat(app, site, login_as)
    client = make_client()
    sent = {"visitor_id": visitor_id, "client_id": client.id, "name": "赵女士", **payload}
    ack = agent.emit("contact_attach", sent, namespace="/agent", callback=True)
    assert "error" in ack, ack
    assert _count(ClientContact) == 0 and db.session.get(Visitor, visitor_id).contact_id is None
    assert _audit("chat_contact_linked") == []


def test_a_client_outside_the_users_scope_cannot_be_found_or_chosen(app, site, agents, login_as, user_id):
    """An accountant who chats sees only their own clients (the rows of the client screens)."""
    sm = app.appbuilder.sm
    sm.add_permission_role(sm.find_role("Accountant"), sm.find_permission_view_menu("can_chat", "LiveChat"))
    sm.add_permission_role(sm.find_role("Accountant"), sm.find_permission_view_menu("can_link_contact", "LiveChat"))
    db.session.add(AgentProfile(user_id=user_id("accountant"), display_name="会计兼客服", max_chats=5))
    db.session.commit()
    own = make_client(name="自己的客户有限公司", accountant=sm.find_user(username="accountant"))
    other = make_client(name="别人的客户有限公司")
    _, _, _, visitor_id = _chat(app, site, login_as, "accountant")
    agent = _agent(app, login_as, "accountant")
    found = agent.emit("client_search", {"q": "客户有限公司"}, namespace="/agent", callback=True)["results"]
    assert [r["id"] for r in found] == [own.id]
    ack = agent.emit("contact_attach", {"visitor_id": visitor_id, "client_id": other.id, "name": "赵女士"},
                     namespace="/agent", callback=True)
    assert ack["errors"] == {"client_id": ["该客户不存在。"]}
    assert _count(ClientContact) == 0


def test_an_accountant_who_is_also_an_agent_finds_every_client_in_the_console_but_keeps_their_own_books(
        app, site, agents, login_as, user_id):
    """Finding clients from a chat widens no screen: the client list stays the accountant's own."""
    sm = app.appbuilder.sm
    user = sm.find_user(username="accountant")
    user.roles.append(sm.find_role("Agent"))
    db.session.add(AgentProfile(user_id=user.id, display_name="会计兼客服", max_chats=5))
    db.session.commit()
    own = make_client(name="自己的客户有限公司", accountant=user)
    other = make_client(name="别人的客户有限公司")
    found = _agent(app, login_as, "accountant").emit("client_search", {"q": "客户有限公司"}, namespace="/agent",
                                                     callback=True)["results"]
    assert {r["id"] for r in found} == {own.id, other.id}
    listing = login_as("accountant").get("/clientmodelview/list/").get_data(as_text=True)
    assert "自己的客户有限公司" in listing and "别人的客户有限公司" not in listing
    assert login_as("accountant").get(f"/clientmodelview/show/{other.id}").status_code == 404


# --- filing status ---------------------------------------------------------------------------------


def test_an_identified_client_contacts_card_shows_overdue_and_this_months_filings(app, site, agents, login_as):
    _, _, _, visitor_id = _chat(app, site, login_as)
    client = make_client(name="上海明远商贸有限公司")
    db.session.get(Visitor, visitor_id).contact_id = make_contact(client).id
    today = date.today()
    first = today.replace(day=1)
    last_month = (first - timedelta(days=1)).replace(day=1)

    def filing(tax, period, due, status=FilingStatus.pending, zero=False):  # noqa: ANN001, ANN202
        db.session.add(TaxFiling(client_id=client.id, tax=tax, period_kind=FilingPeriod.monthly, period=period,
                                 due=due, status=status, zero_return=zero))

    filing(TaxKind.individual_income, "2020-01", first - timedelta(days=40))  # overdue for long
    filing(TaxKind.vat, f"{last_month:%Y-%m}", today)  # due today: this month's, not overdue yet
    filing(TaxKind.stamp, "2020-02", first - timedelta(days=30), FilingStatus.filed, zero=True)  # done
    filing(TaxKind.education, "2020-03", first - timedelta(days=20), FilingStatus.paid)  # done
    db.session.commit()
    card = login_as("manager").get(f"/chat/console/visitor/{visitor_id}").json["client"]
    assert [(f["tax"], f["status"], f["overdue"]) for f in card["filings"]] == [
        ("个人所得税（代扣代缴）", "待申报", True), ("增值税", "待申报", False)]
    assert card["filings_url"] == f"/taxfilings/?client_id={client.id}"
    assert card["can_send_statement"] is True
    agent_card = login_as("agent").get(f"/chat/console/visitor/{visitor_id}").json["client"]
    assert len(agent_card["filings"]) == 2 and agent_card["filings_url"] is None  # no filing list for agents


# --- the latest statement -------------------------------------------------------------------------


def _client_with_fees():
    client = make_client(name="上海明远商贸有限公司")
    contract = make_contract(client, monthly_fee="800.00", start_date=date(date.today().year, 1, 1),
                             end_date=date(date.today().year, 12, 31))
    contract_svc.activate_contract(db.session, contract)
    contract_svc.bill_contract(db.session, contract, date.today())
    assert contract.status == ContractStatus.active
    return client


def test_a_manager_sends_the_clients_latest_statement_into_the_chat_and_the_visitor_can_download_it(
        app, site, agents, login_as):
    visitor, agent, conversation_id, visitor_id = _chat(app, site, login_as, "manager")
    client = _client_with_fees()
    db.session.get(Visitor, visitor_id).contact_id = make_contact(client).id
    db.session.commit()
    ack = agent.emit("statement_send", {"conversation_id": conversation_id}, namespace="/agent", callback=True)
    message = ack["message"]
    year, month = date.today().year, date.today().month
    assert message["attachment"]["filename"] == f"客户对账单-上海明远商贸有限公司-{year}-01-{year}-{month:02d}.pdf"
    assert (message["sender_type"], message["sender_name"], message["attachment"]["content_type"]) == (
        "agent", "主管", "application/pdf")
    [heard] = [m for m in received(visitor, "message", "/visitor", 5) if m.get("attachment")]
    assert heard["id"] == message["id"]
    # The visitor downloads it by its link: the statement of that client.
    pdf = app.test_client().get(heard["attachment"]["url"], headers={"Origin": ORIGIN})
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "上海明远商贸有限公司" in text
    stored = db.session.get(ChatAttachment, message["attachment"]["id"])
    assert chat_files.file_path(app.config["CHAT_UPLOAD_DIR"], stored).read_bytes() == pdf.data
    [event] = _audit("chat_statement_sent")
    assert (event.object_type, event.object_id, event.username) == ("chat_conversation", str(conversation_id),
                                                                   "manager")


def test_a_statement_is_refused_for_a_visitor_who_is_no_clients_contact(app, site, agents, login_as):
    _, agent, conversation_id, _ = _chat(app, site, login_as, "manager")
    ack = agent.emit("statement_send", {"conversation_id": conversation_id}, namespace="/agent", callback=True)
    assert ack["error"] == "此访客不是任何客户的联系人，没有可发送的报表。请先将其添加为客户联系人。"
    assert _count(ChatAttachment) == 0 and _audit("chat_statement_sent") == []


def test_an_agent_whose_role_may_not_download_the_statement_cannot_send_it(app, site, agents, login_as):
    _, agent, conversation_id, visitor_id = _chat(app, site, login_as, "agent")
    db.session.get(Visitor, visitor_id).contact_id = make_contact(_client_with_fees()).id
    db.session.commit()
    ack = agent.emit("statement_send", {"conversation_id": conversation_id}, namespace="/agent", callback=True)
    assert ack["error"] == "您的角色无权下载此客户的对账单。"
    assert _count(ChatAttachment) == 0 and _count(ChatMessage, ChatMessage.attachment_id.is_not(None)) == 0
    assert _audit("chat_statement_sent") == []


@pytest.mark.parametrize("payload", [{"conversation_id": "1"}, {"conversation_id": 10**20},
                                     {"conversation_id": 999999}, {"conversation_id": None}, "just text",
                                     {"conversation_id": "mine", "note": "\u0000"}, {"conversation_id": "other"}])
def test_a_bad_statement_request_gets_an_error_and_sends_nothing(app, site, agents, login_as, payload):
    if isinstance(payload, dict) and payload.get("conversation_id") == "other":  # someone else's chat
        _, _, other_id, other_visitor = _chat(app, site, login_as, "agent", text="别人的会话")
        db.session.get(Visitor, other_visitor).contact_id = make_contact(make_client()).id
        db.session.commit()
        payload = {"conversation_id": other_id}
    visitor, agent, conversation_id, visitor_id = _chat(app, site, login_as, "manager")
    db.session.get(Visitor, visitor_id).contact_id = make_contact(make_client()).id
    db.session.commit()
    if isinstance(payload, dict) and payload.get("conversation_id") == "mine":
        payload = {**payload, "conversation_id": conversation_id}
    ack = agent.emit("statement_send", payload, namespace="/agent", callback=True)
    assert "error" in ack, ack
    assert _count(ChatAttachment) == 0 and _audit("chat_statement_sent") == []
    assert [m for m in received(visitor, "message", "/visitor", 0.3) if m.get("attachment")] == []


def test_a_long_statement_is_rendered_as_a_background_job_and_then_sent(app, site, agents, login_as):
    from tests.test_reports_jobs import _run_workers

    visitor, agent, conversation_id, visitor_id = _chat(app, site, login_as, "manager")
    db.session.get(Visitor, visitor_id).contact_id = make_contact(_client_with_fees()).id
    db.session.commit()
    before = {key: app.config[key] for key in ("REPORTS_SYNC_MAX_ROWS", "REPORTS_CHUNK_ROWS")}
    app.config.update(REPORTS_SYNC_MAX_ROWS=0, REPORTS_CHUNK_ROWS=1)
    try:
        ack = agent.emit("statement_send", {"conversation_id": conversation_id}, namespace="/agent", callback=True)
        assert ack["status"] == "rendering" and ack["job_id"], ack
        _run_workers(app)
        [heard] = [m for m in received(visitor, "message", "/visitor", 60) if m.get("attachment")]
    finally:
        app.config.update(before)
    assert heard["attachment"]["content_type"] == "application/pdf"
    assert [m["id"] for m in received(agent, "message", "/agent", 5) if m.get("attachment")] == [heard["id"]]
    assert len(_audit("chat_statement_sent")) == 1
