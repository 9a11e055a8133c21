"""Every back-office page answers with at most 20 SQL statements, for every role, and a list page
runs as many statements for 30 rows as for 3 (no query per row).

The statements are counted with a ``before_cursor_execute`` listener on the engine, around one
request of the Flask test client; counting is deterministic, so nothing here depends on time.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import event

from app.extensions import db
from app.models.chat import (
    AgentGroup,
    AgentProfile,
    CannedReply,
    ChatBlock,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationStatus,
    InvitationRule,
    LeaveMessage,
    SenderType,
    Visitor,
)
from app.models.chat_faq import FaqEntry, FaqUnanswered
from app.models.chat_topics import ChatTopic, QuickLink, conversation_topic
from app.models.contracts import ContractStatus
from app.models.crm import Tag
from app.models.documents import DocumentType
from app.models.ledger import LedgerBook
from app.services import chat_faq, chat_sites, credentials, mfa
from app.services import contracts as contract_svc
from app.services.demo import minimal_pdf
from app.services.documents import store_document
from app.services.users import create_user
from tests.conftest import PASSWORD
from tests.factories import (
    make_bank_account,
    make_books,
    make_client,
    make_contact,
    make_contract,
    make_service_record,
    make_voucher,
)

LIMIT = 20
_seq = itertools.count(1)


# --- counting ---------------------------------------------------------------------------------


@contextmanager
def counted() -> Iterator[list[str]]:
    """The SQL statements the engine runs inside the block."""
    statements: list[str] = []

    def _count(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001, ARG001
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", _count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", _count)


def statements_of(client, url: str) -> int:  # noqa: ANN001
    """Open *url* as the signed-in user of *client*; the page must answer 200. Each page opens
    without a current set of books (当前账套), as on a first visit, so that a page is counted in
    the same state on both passes."""
    with client.session_transaction() as browser_session:
        browser_session.pop("ledger_client_id", None)
    with counted() as statements:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.data[:300])
    return len(statements)


# --- data -------------------------------------------------------------------------------------


@dataclass
class World:
    """The ids of the first rows of each kind, which the show pages open."""

    ids: dict[str, int] = field(default_factory=dict)


def grow(app, world: World, n: int) -> None:  # noqa: ANN001
    """Add *n* rows of every kind a back-office page lists: clients (the accountant's) with a tag,
    contact, bank account, service record, archive, a contract due for renewal with bills, a
    payment and a change, books with a voucher (and one more voucher in the first client's books);
    agents with profiles, chat sites with groups, visitors with a closed chat, online visitors
    waiting in the queue, left messages, canned replies, invitation rules, knowledge base entries,
    unanswered questions, blocks, roles, conversation topics (one on each closed chat) and quick links."""
    sm = app.appbuilder.sm
    accountant, manager = sm.find_user(username="accountant"), sm.find_user(username="manager")
    agent = sm.find_user(username="agent")
    today = date.today()
    site = db.session.get(ChatSite, world.ids["site"]) if "site" in world.ids else None
    if site is None:
        site = chat_sites.prepare_new_site(ChatSite(name="代账官网", allowed_origins="https://www.example.com"))
        group = AgentGroup(site=site, name="售前", is_default=True)
        db.session.add(AgentProfile(user_id=agent.id, display_name="客服小张", groups=[group]))
        db.session.add(site)
        db.session.commit()
        world.ids.update(site=site.id, user=agent.id)
    group = site.groups[0]
    for _ in range(n):
        i = next(_seq)
        tag = Tag(name=f"标签{i}")
        client = make_client(accountant=accountant, tags=[tag])
        make_contact(client, name=f"联系人{i}", phone=f"1390000{i:04d}")
        make_bank_account(client, number=f"622202100100{i:07d}")
        record = make_service_record(client, performed_by_id=accountant.id)
        contract = make_contract(client, ContractStatus.active, start_date=date(today.year, 1, 1),
                                 end_date=today + timedelta(days=10))
        bill = contract_svc.bill_contract(db.session, contract, date(today.year, 1, 1))[0]
        payment = contract_svc.record_payment(db.session, contract, "100.00", date(today.year, 1, 5),
                                              method="银行转账")
        contract_svc.change_contract(db.session, contract, "调整月费", monthly_fee="550.00")
        document = store_document(db.session, app.config["UPLOAD_DIR"], app.config["UPLOAD_MAX_BYTES"],
                                  client_id=client.id, filename=f"c{i}.pdf", stream=io.BytesIO(minimal_pdf(f"c{i}")),
                                  doc_type=DocumentType.contract, contract_id=contract.id,
                                  uploaded_by_id=accountant.id)
        book = make_books(client, start=f"{today.year}-01")
        voucher = make_voucher(book, accountant.id, day=f"{today.year}-01-15")
        if "book" in world.ids:  # the first client's voucher list grows too
            make_voucher(db.session.get(LedgerBook, world.ids["book"]), accountant.id, day=f"{today.year}-01-16")
        user = create_user(app, f"agent{i}", PASSWORD, ["Agent"], first_name=f"客服{i}")
        db.session.add(AgentProfile(user_id=user.id, display_name=f"客服{i}", groups=[group]))
        other = chat_sites.prepare_new_site(ChatSite(name=f"站点{i}", allowed_origins="https://a.example.com"))
        db.session.add_all([other, AgentGroup(site=other, name=f"组{i}")])
        visitor = Visitor(site_id=site.id, uid=f"v-{i}", name=f"访客{i}", browser="Chrome")
        db.session.add(visitor)
        db.session.flush()
        conversation = Conversation(site_id=site.id, visitor_id=visitor.id, agent_id=site.groups[0].agents[0].id,
                                    group_id=group.id, status=ConversationStatus.closed,
                                    queued_at=datetime(today.year, 1, 2), closed_at=datetime(today.year, 1, 2, 1))
        db.session.add(conversation)
        db.session.flush()
        db.session.add(ChatMessage(conversation_id=conversation.id, sender_type=SenderType.visitor, text="你好"))
        online = Visitor(site_id=site.id, uid=f"o-{i}", online=True, current_url="https://www.example.com/")
        db.session.add(online)
        db.session.flush()
        db.session.add(Conversation(site_id=site.id, visitor_id=online.id, group_id=group.id,
                                    status=ConversationStatus.queued, queued_at=datetime.now(UTC).replace(tzinfo=None)))
        role = sm.add_role(f"角色{i}", [sm.find_permission_view_menu("can_list", "ClientModelView"),
                                      sm.find_permission_view_menu("can_show", "ClientModelView")])
        left = LeaveMessage(site_id=site.id, visitor_id=visitor.id, name=f"留言人{i}", email=f"v{i}@example.com",
                            text="请回电", assigned_to_id=agent.id)
        db.session.add(left)
        db.session.add(CannedReply(owner_id=agent.id, site_id=site.id, shortcut=f"hi{i}", text="您好"))
        db.session.add(InvitationRule(site_id=site.id, name=f"规则{i}", message="需要帮助吗？"))
        faq = FaqEntry(site_id=site.id, question=f"报税问题{i}", answer="每月 15 日前。", keywords="报税")
        chat_faq.validate_entry(db.session, faq)
        db.session.add(faq)
        db.session.add(FaqUnanswered(site_id=site.id, question=f"没答上的问题{i}", question_key=f"没答上的问题{i}"))
        db.session.add(ChatBlock(site_id=site.id, ip_range=f"203.0.113.{i % 250}", created_by_id=manager.id))
        topic = ChatTopic(name=f"主题{i}", sort_order=i)
        link = QuickLink(site_id=site.id if i % 2 else None, title=f"链接{i}", url=f"https://www.example.com/{i}")
        db.session.add_all([topic, link])
        db.session.flush()
        db.session.execute(conversation_topic.insert().values(conversation_id=conversation.id, topic_id=topic.id))
        db.session.commit()
        for name, row in (("client", client), ("contract", contract), ("voucher", voucher),
                          ("contact", client.contacts[0]), ("bank", client.bank_accounts[0]),
                          ("bill", bill), ("payment", payment), ("service", record), ("document", document),
                          ("visitor", visitor), ("conversation", conversation), ("group", group),
                          ("profile", site.groups[0].agents[0]), ("book", book), ("left", left), ("role", role),
                          ("faq", faq), ("topic", topic), ("link", link)):
            world.ids.setdefault(name, row.id)


# --- the pages --------------------------------------------------------------------------------

A, M, C, R, G = "admin", "manager", "accountant", "reviewer", "agent"
EVERYONE = {A, M, C, R, G}
OFFICE = {A, M, C, R}
BOOKS = {A, M, C, R}
FEES = {A, M, C}
CHAT_ADMIN = {A, M}
INBOX = {A, M, G}

# (page, who opens it, whether it lists rows that grow with the data)
PAGES: list[tuple[str, set[str], bool]] = [
    ("/", EVERYONE, True),
    ("/clientmodelview/list/", OFFICE, True),
    ("/clientmodelview/show/{client}", OFFICE, False),
    ("/clientmodelview/add", {A, M}, False),
    ("/contactmodelview/list/", OFFICE, True),
    ("/contactmodelview/show/{contact}", OFFICE, False),
    ("/bankaccountmodelview/list/", FEES, True),
    ("/bankaccountmodelview/show/{bank}", FEES, False),
    ("/servicerecordmodelview/list/", OFFICE, True),
    ("/servicerecordmodelview/show/{service}", OFFICE, False),
    ("/documentmodelview/list/", OFFICE, True),
    ("/documentmodelview/show/{document}", OFFICE, False),
    ("/tagmodelview/list/", OFFICE, True),
    ("/contractmodelview/list/", FEES, True),
    ("/contractmodelview/show/{contract}", FEES, False),
    ("/contractmodelview/add", {A, M}, False),
    ("/contractchangemodelview/list/", FEES, True),
    ("/feebillmodelview/list/", FEES, True),
    ("/feebillmodelview/show/{bill}", FEES, False),
    ("/paymentmodelview/list/", FEES, True),
    ("/paymentmodelview/show/{payment}", FEES, False),
    ("/renewals/", FEES, True),
    ("/ledger/books/", BOOKS, True),
    ("/ledger/vouchers/list/", BOOKS, True),
    ("/ledger/vouchers/list/?client_id={client}", BOOKS, True),
    ("/ledger/vouchers/add?client_id={client}", {A, M, C}, False),
    ("/ledger/vouchers/show/{voucher}", BOOKS, False),
    ("/ledger/vouchers/edit/{voucher}", {A, M, C}, False),
    ("/ledger/vouchers/print/{voucher}", BOOKS, False),
    ("/ledger/accounts/{client}", BOOKS, False),
    ("/ledger/opening/{client}", BOOKS, False),
    ("/ledger/periods/{client}", BOOKS, False),
    ("/ledger/reports/trial-balance?client_id={client}&from={year}-01&to={year}-12", BOOKS, False),
    ("/ledger/reports/general-ledger?client_id={client}&from={year}-01&to={year}-12", BOOKS, False),
    ("/ledger/reports/detail-ledger?client_id={client}&from={year}-01&to={year}-12&account=1001", BOOKS, False),
    ("/ledger/reports/balance-sheet?client_id={client}&period={year}-01", BOOKS, False),
    ("/ledger/reports/income-statement?client_id={client}&period={year}-01", BOOKS, False),
    ("/voucherimport/", {A, M, C}, False),
    ("/workboard/?period={year}-01", OFFICE, True),
    ("/taxfilings/due_soon?days=3", OFFICE, False),
    ("/chatsitemodelview/list/", CHAT_ADMIN, True),
    ("/chatsitemodelview/show/{site}", CHAT_ADMIN, False),
    ("/agentgroupmodelview/list/", CHAT_ADMIN, True),
    ("/agentgroupmodelview/show/{group}", CHAT_ADMIN, False),
    ("/agentprofilemodelview/list/", CHAT_ADMIN, True),
    ("/agentprofilemodelview/show/{profile}", CHAT_ADMIN, False),
    ("/cannedreplymodelview/list/", INBOX, True),
    ("/invitationrulemodelview/list/", CHAT_ADMIN, True),
    ("/chatblockmodelview/list/", CHAT_ADMIN, True),
    ("/chat/history/", INBOX, True),
    ("/chat/history/{conversation}", INBOX, False),
    ("/leavemessagemodelview/list/", INBOX, True),
    ("/leavemessagemodelview/show/{left}", INBOX, False),
    ("/chatvisitormodelview/list/", INBOX, True),
    ("/chatvisitormodelview/show/{visitor}", INBOX, False),
    # The console lists visitors, the queue and chats in a constant number of statements, but not
    # yet the agents: see test_the_agent_console_loads_the_agents_in_a_constant_number_of_statements.
    ("/chat/console/", {A, M, G}, False),
    ("/faqentrymodelview/list/", {A, M, G}, True),
    ("/faqentrymodelview/show/{faq}", {A, M, G}, False),
    ("/faqentrymodelview/edit/{faq}", {A, M}, False),
    ("/faqentrymodelview/add", {A, M}, False),
    ("/chat/faq/unanswered/", {A, M}, True),
    ("/chat/staffing/", {A, M}, True),
    ("/chattopicmodelview/list/", {A, M, G}, True),
    ("/chattopicmodelview/show/{topic}", {A, M, G}, False),
    ("/quicklinkmodelview/list/", {A, M, G}, True),
    ("/quicklinkmodelview/show/{link}", {A, M, G}, False),
    ("/chat/history/?topic_id={topic}", INBOX, True),
    ("/chat/analytics/", {A, M}, True),
    ("/chat/analytics/?section=hours", {A, M}, True),
    ("/chat/analytics/?section=queue", {A, M}, True),
    ("/chat/analytics/?section=sources", {A, M}, True),
    ("/chat/analytics/?section=visits", {A, M}, True),
    ("/auditlogmodelview/list/", {A, M}, True),
    ("/users/list/", {A}, True),
    ("/users/show/{user}", {A}, False),
    ("/users/edit/{user}", {A}, False),
    ("/roles/list/", {A}, True),
    ("/roles/show/{role}", {A}, False),
    ("/users/userinfo/", EVERYONE, False),
    ("/mfa/setup", EVERYONE, False),
]


def _pages_of(role: str, world: World) -> list[tuple[str, bool]]:
    values = {**world.ids, "year": date.today().year}
    return [(page.format(**values), grows) for page, roles, grows in PAGES if role in roles]


@pytest.fixture(autouse=True)
def _session_not_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser session's ``last_seen`` is written once a minute at most: a test that takes over a
    minute on a loaded machine would count that write on one visit of a page and not the other."""
    monkeypatch.setattr(credentials, "TOUCH_SECONDS", 3600)


@pytest.fixture
def world(app) -> World:
    data = World()
    grow(app, data, 3)
    return data


@pytest.mark.parametrize("role", [A, M, C, R, G])
def test_every_page_of_a_role_runs_at_most_20_statements_and_lists_do_not_grow_with_rows(
        app, login_as, world, role):
    client = login_as(role)
    pages = _pages_of(role, world)
    few = {url: statements_of(client, url) for url, _ in pages}
    grow(app, world, 27)
    many = {url: statements_of(client, url) for url, grows in pages if grows}
    over = {url: n for url, n in few.items() if n > LIMIT}
    assert not over, f"{role}: pages over {LIMIT} statements: {over}"
    growing = {url: (few[url], n) for url, n in many.items() if n != few[url]}
    assert not growing, f"{role}: statements with 3 rows vs 30 rows: {growing}"


def test_the_agent_console_loads_the_agents_in_a_constant_number_of_statements(app, login_as, world):
    client = login_as(G)
    few = statements_of(client, "/chat/console/")
    grow(app, world, 27)
    assert statements_of(client, "/chat/console/") == few


def test_the_two_factor_pages_run_at_most_20_statements(app, login_as, user_id):
    client = login_as(C)
    secret = mfa.start_enrolment(db.session, user_id(C))
    assert mfa.confirm_enrolment(db.session, user_id(C), pyotp.TOTP(secret).now())
    assert statements_of(client, "/mfa/setup") <= LIMIT  # enrolled: the status page
    fresh = app.test_client()
    response = fresh.post("/login/", data={"username": C, "password": PASSWORD})
    assert response.headers["Location"].endswith("/mfa/verify")
    assert statements_of(fresh, "/mfa/verify") <= LIMIT


# --- permission checks ------------------------------------------------------------------------


def _permission_reads(statements: list[str]) -> int:
    return sum("ab_permission_view_role" in s for s in statements)


def test_a_page_reads_the_users_permissions_once_however_many_it_checks(login_as):
    client = login_as(M)
    with counted() as statements:
        response = client.get("/clientmodelview/list/")
    assert response.status_code == 200
    assert b"/contractmodelview/list/" in response.data  # the menu was checked item by item
    assert _permission_reads(statements) == 1


def test_a_role_change_takes_effect_on_the_next_request(app, login_as):
    sm = app.appbuilder.sm
    reviewer = login_as(R)
    assert reviewer.get("/contractmodelview/list/").status_code == 403
    assert b"/contractmodelview/list/" not in reviewer.get("/").data
    role, grant = sm.find_role("Reviewer"), sm.find_permission_view_menu("can_list", "ContractModelView")
    sm.add_permission_role(role, grant)
    assert reviewer.get("/contractmodelview/list/").status_code == 200
    assert b"/contractmodelview/list/" in reviewer.get("/").data
    sm.del_permission_role(role, grant)
    assert reviewer.get("/contractmodelview/list/").status_code == 403


def test_a_user_whose_role_is_taken_away_loses_its_pages_on_the_next_request(app, login_as):
    sm = app.appbuilder.sm
    manager = login_as(M)
    assert manager.get("/auditlogmodelview/list/").status_code == 200
    user = sm.find_user(username=M)
    user.roles = [sm.find_role("Agent")]
    sm.update_user(user)
    assert manager.get("/auditlogmodelview/list/").status_code == 403


def test_requests_of_different_users_never_share_permissions(app, login_as):
    accountant, reviewer, agent, anonymous = login_as(C), login_as(R), login_as(G), app.test_client()
    for _ in range(2):  # interleaved, twice: nothing one request learnt carries over to the next
        assert accountant.get("/contractmodelview/list/").status_code == 200
        assert reviewer.get("/contractmodelview/list/").status_code == 403
        assert agent.get("/clientmodelview/list/").status_code == 403
        assert reviewer.get("/clientmodelview/list/").status_code == 200
        assert agent.get("/chat/console/").status_code == 200
        assert accountant.get("/chat/console/").status_code == 403
        response = anonymous.get("/clientmodelview/list/")
        assert response.status_code == 302 and "/login/" in response.headers["Location"]
