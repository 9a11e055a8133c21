"""The agent console (客服工作台): its page and the JSON it loads — who may use it, what each agent
sees (only the sites they serve), the queue in order, unanswered counts, the visitor's details and
client card, a conversation's messages, and visitor text that never becomes HTML."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.extensions import db
from app.models.base import utcnow
from app.models.chat import (
    AgentGroup,
    AgentProfile,
    AgentStatus,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationParticipant,
    ConversationStatus,
    ParticipantRole,
    SenderType,
    Visitor,
)
from app.models.contracts import ContractStatus
from app.models.ledger import Period, PeriodStatus
from app.services import chat_sites, tracking
from app.services import contracts as contract_svc
from app.services.users import create_user
from tests.conftest import PASSWORD
from tests.factories import (
    make_bank_account,
    make_books,
    make_client,
    make_contact,
    make_contract,
    make_service_record,
)

XSS = "<img src=x onerror=alert(1)>"
STATE = "/chat/console/state"


def _site(name: str) -> ChatSite:
    site = chat_sites.prepare_new_site(ChatSite(name=name, allowed_origins="https://www.example.com"))
    db.session.add(site)
    db.session.commit()
    return site


@pytest.fixture
def sites(app):
    """Two sites; the agent serves the first (through its group), not the second."""
    mine, other = _site("我的站点"), _site("别人的站点")
    db.session.add_all([AgentGroup(site=mine, name="售前", is_default=True),
                        AgentGroup(site=other, name="售后", is_default=True)])
    db.session.commit()
    return mine, other


@pytest.fixture
def agent(app, sites, user_id):
    group = db.session.scalar(db.select(AgentGroup).where(AgentGroup.site_id == sites[0].id))
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=3,
                           status=AgentStatus.online, groups=[group])
    db.session.add(profile)
    db.session.commit()
    return profile


@pytest.fixture
def colleague(app, sites):
    """A second agent (agent2) on the other site."""
    user = create_user(app, "agent2", PASSWORD, ["Agent"], first_name="agent2")
    group = db.session.scalar(db.select(AgentGroup).where(AgentGroup.site_id == sites[1].id))
    profile = AgentProfile(user_id=user.id, display_name="客服小李", status=AgentStatus.invisible, groups=[group])
    db.session.add(profile)
    db.session.commit()
    return profile


def _visitor(site: ChatSite, online: bool = True, **values) -> Visitor:
    now = utcnow()
    visitor = Visitor(site_id=site.id, uid=chat_sites.new_visitor_uid(), first_seen_at=now, last_seen_at=now,
                      visits=1, page_views=0, online=online, **values)
    db.session.add(visitor)
    db.session.commit()
    return visitor


def _conversation(visitor: Visitor, status=ConversationStatus.queued, agent: AgentProfile | None = None,
                  queued_ago: int = 0, **values) -> Conversation:
    now = utcnow()
    conversation = Conversation(site_id=visitor.site_id, visitor_id=visitor.id, status=status,
                                queued_at=now - timedelta(seconds=queued_ago), agent_id=agent.id if agent else None,
                                accepted_at=now if status == ConversationStatus.active else None, **values)
    db.session.add(conversation)
    db.session.commit()
    return conversation


def _say(conversation: Conversation, sender: SenderType, text: str, **values) -> ChatMessage:
    message = ChatMessage(conversation_id=conversation.id, sender_type=sender, text=text, created_at=utcnow(),
                          **values)
    db.session.add(message)
    db.session.commit()
    return message


# --- who may use it ---------------------------------------------------------------------------


def test_agents_open_the_console_and_other_roles_are_refused(app, agent, login_as):
    page = login_as("agent").get("/chat/console/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="chat-console"' in html and "console/console.js" in html and "/widget/socket.io.min.js" in html
    assert 'id="console-no-profile"' not in html
    assert login_as("accountant").get("/chat/console/").status_code == 403
    signed_out = app.test_client().get("/chat/console/")
    assert signed_out.status_code == 302 and "/login/" in signed_out.headers["Location"]


@pytest.mark.parametrize("url", [STATE, "/chat/console/visitor/1", "/chat/console/conversation/1"])
def test_the_json_needs_a_sign_in_and_the_chat_permission(app, login_as, url):
    assert app.test_client().get(url).status_code == 401
    for username in ("accountant", "reviewer"):
        response = login_as(username).get(url)
        assert response.status_code == 403 and "message" in response.json


def test_the_console_is_in_the_live_chat_menu_for_agents(app, agent, login_as):
    html = login_as("agent").get("/").get_data(as_text=True)
    assert "/chat/console/" in html
    assert "/chat/console/" not in login_as("accountant").get("/").get_data(as_text=True)


def test_a_manager_without_a_profile_is_told_so_and_still_supervises(app, sites, agent, login_as):
    visitor = _visitor(sites[1])
    conversation = _conversation(visitor, ConversationStatus.active, agent)
    manager = login_as("manager")
    html = manager.get("/chat/console/").get_data(as_text=True)
    assert 'id="console-no-profile"' in html and 'id="supervisor-panel"' in html
    state = manager.get(STATE).json
    assert state["me"]["agent_id"] is None and state["me"]["supervisor"] is True
    assert [row["conversation_id"] for row in state["live"]] == [conversation.id]
    assert [row["agent_name"] for row in state["live"]] == ["客服小张"]


# --- the state --------------------------------------------------------------------------------


def test_the_state_lists_online_visitors_of_my_sites_only(app, sites, agent, login_as):
    mine, other = sites
    browsing = _visitor(mine, name="王女士")
    tracking.record_page_view(db.session, browsing.id, {
        "url": "https://www.example.com/tax?utm_source=wechat", "title": "报税服务",
        "referrer": "https://www.baidu.com/s?wd=%E4%BB%A3%E8%B4%A6"})
    tracking.record_page_view(db.session, browsing.id, {"url": "https://www.example.com/price", "title": "价格"})
    tracking.heartbeat(db.session, browsing.id, now=utcnow() + timedelta(seconds=40))  # 40 s on the price page
    _visitor(mine, online=False)
    _visitor(other)
    chatting = _visitor(mine)
    conversation = _conversation(chatting)

    state = login_as("agent").get(STATE).json
    assert state["me"] == {"agent_id": agent.id, "user_id": agent.user_id, "name": "客服小张", "status": "online",
                           "max_chats": 3, "supervisor": False, "send_key": "enter"}
    rows = {row["id"]: row for row in state["visitors"]}
    assert set(rows) == {browsing.id, chatting.id}
    row = rows[browsing.id]
    assert (row["current_title"], row["page_views"], row["name"]) == ("价格", 2, "王女士")
    assert row["seconds_on_site"] == 40
    assert row["source"]["search_engine"] and row["source"]["keyword"] == "代账"
    assert row["source"]["utm_source"] == "wechat"
    assert row["conversation_id"] is None and rows[chatting.id]["conversation_id"] == conversation.id
    assert state["live"] == []


@pytest.mark.parametrize("q, expected", [("报税", "tax"), ("SHANGHAI", "city"), ("王", "name"), ("/price", "price")])
def test_the_visitor_search_matches_page_title_location_and_name(app, sites, agent, login_as, q, expected):
    mine = sites[0]
    visitors = {
        "tax": _visitor(mine, current_url="https://www.example.com/tax", current_title="报税服务"),
        "city": _visitor(mine, city="Shanghai"),
        "name": _visitor(mine, name="王先生"),
        "price": _visitor(mine, current_url="https://www.example.com/price"),
    }
    client = login_as("agent")
    found = [row["id"] for row in client.get(STATE, query_string={"q": q}).json["visitors"]]
    assert found == [visitors[expected].id]
    by_id = client.get(STATE, query_string={"q": str(visitors["city"].id)}).json["visitors"]
    assert visitors["city"].id in [row["id"] for row in by_id]


def test_the_queue_is_first_come_first_served_with_positions(app, sites, agent, login_as):
    mine, other = sites
    later = _conversation(_visitor(mine), queued_ago=10, entry_url="https://www.example.com/later")
    first = _conversation(_visitor(mine), queued_ago=90, entry_url="https://www.example.com/first")
    _conversation(_visitor(other), queued_ago=300)
    _conversation(_visitor(mine), ConversationStatus.active, agent)
    offered = _conversation(_visitor(mine), ConversationStatus.offered, agent, queued_ago=200)

    queue = login_as("agent").get(STATE).json["queue"]
    # The offered chat waits for its agent, not in line: positions are those the visitors are told.
    assert [(row["conversation_id"], row["position"]) for row in queue] == [
        (offered.id, None), (first.id, 1), (later.id, 2)]
    assert queue[1]["entry_url"] == "https://www.example.com/first" and queue[1]["waited_seconds"] >= 90
    assert queue[1]["status"] == "queued" and queue[1]["group"] is None
    assert queue[0]["status"] == "offered" and queue[0]["offered_to_agent_id"] == agent.id


def test_my_chats_count_the_visitor_messages_not_yet_answered(app, sites, agent, colleague, login_as):
    mine = sites[0]
    answered = _conversation(_visitor(mine), ConversationStatus.active, agent)
    _say(answered, SenderType.visitor, "你好")
    _say(answered, SenderType.agent, "您好")
    waiting = _conversation(_visitor(mine), ConversationStatus.active, agent)
    _say(waiting, SenderType.visitor, "在吗")
    _say(waiting, SenderType.agent, "在")
    _say(waiting, SenderType.visitor, "报税怎么收费")
    _say(waiting, SenderType.visitor, "小规模")
    _conversation(_visitor(mine), ConversationStatus.active, colleague)
    _conversation(_visitor(mine), ConversationStatus.closed, agent)

    chats = login_as("agent").get(STATE).json["chats"]
    assert [(row["conversation_id"], row["unread"], row["role"]) for row in chats] == [
        (answered.id, 0, "owner"), (waiting.id, 2, "owner")]


def test_an_invited_agent_sees_the_chat_among_theirs(app, sites, agent, colleague, login_as, user_id):
    conversation = _conversation(_visitor(sites[0]), ConversationStatus.active, agent)
    db.session.add(ConversationParticipant(conversation_id=conversation.id, user_id=colleague.user_id,
                                           role=ParticipantRole.invited, invited_by_id=agent.user_id))
    db.session.commit()
    chats = login_as("agent2").get(STATE).json["chats"]
    assert [(row["conversation_id"], row["role"]) for row in chats] == [(conversation.id, "invited")]


def test_agents_and_groups_show_load_and_hide_an_invisible_colleague(app, sites, agent, colleague, login_as):
    _conversation(_visitor(sites[0]), ConversationStatus.active, agent)
    _conversation(_visitor(sites[0]), ConversationStatus.offered, agent)
    loner = AgentProfile(user_id=create_user(app, "agent3", PASSWORD, ["Agent"]).id, display_name="无组客服",
                         status=AgentStatus.away)  # no group: serves every site
    db.session.add(loner)
    db.session.commit()

    state = login_as("agent").get(STATE).json
    assert [(a["name"], a["status"], a["load"], a["me"]) for a in state["agents"]] == [
        ("客服小张", "online", 2, True), ("无组客服", "away", 0, False)]
    assert [(g["name"], g["site_name"]) for g in state["groups"]] == [("售前", "我的站点")]
    manager_view = login_as("manager").get(STATE).json["agents"]
    assert ("客服小李", "offline") in [(a["name"], a["status"]) for a in manager_view]


def test_offers_to_me_carry_the_visitor_and_the_deadline(app, sites, agent, login_as):
    expires = utcnow() + timedelta(seconds=30)
    offered = _conversation(_visitor(sites[0], current_title="价格"), ConversationStatus.offered, agent,
                            offer_expires_at=expires)
    [offer] = login_as("agent").get(STATE).json["offers"]
    assert offer["conversation_id"] == offered.id and offer["visitor"]["current_title"] == "价格"
    assert offer["expires_at"] == expires.isoformat() + "Z"


# --- a visitor's details ----------------------------------------------------------------------


def test_visitor_details_have_the_trail_and_past_chats(app, sites, agent, login_as):
    visitor = _visitor(sites[0], name="赵先生", email="zhao@example.com")
    tracking.record_page_view(db.session, visitor.id, {"url": "https://www.example.com/", "title": "首页"})
    tracking.record_page_view(db.session, visitor.id, {"url": "https://www.example.com/tax", "title": "报税"})
    old = _conversation(visitor, ConversationStatus.closed, agent, rating=5)
    _say(old, SenderType.visitor, "问一下")
    _say(old, SenderType.agent, "请讲")
    _say(old, SenderType.note, "老客户")

    details = login_as("agent").get(f"/chat/console/visitor/{visitor.id}").json
    assert (details["visitor"]["name"], details["visitor"]["email"]) == ("赵先生", "zhao@example.com")
    assert details["visitor"]["site_name"] == "我的站点"
    assert [page["title"] for page in details["trail"]] == ["报税", "首页"]
    assert [(c["conversation_id"], c["messages"], c["rating"], c["agent_name"])
            for c in details["conversations"]] == [(old.id, 2, 5, "客服小张")]
    assert details["client"] is None


def test_a_visitor_of_a_site_i_do_not_serve_is_not_found(app, sites, agent, login_as):
    stranger = _visitor(sites[1])
    client = login_as("agent")
    assert client.get(f"/chat/console/visitor/{stranger.id}").status_code == 404
    assert client.get("/chat/console/visitor/999999").status_code == 404
    assert login_as("manager").get(f"/chat/console/visitor/{stranger.id}").status_code == 200


def test_the_client_card_shows_contracts_balance_books_and_service_but_nothing_sensitive(app, sites, agent,
                                                                                       login_as):
    client = make_client(name="上海明远商贸有限公司")
    contact = make_contact(client, name="王五", position="财务", chat_user_id="u-1001")
    make_bank_account(client, number="6222021001000099999")
    contract = make_contract(client, status=ContractStatus.active, monthly_fee="800.00",
                             start_date=date(2026, 1, 1), end_date=date(2026, 12, 31))
    make_contract(client)  # a draft: not shown
    contract_svc.bill_contract(db.session, contract, date(2026, 3, 31))  # three months billed
    contract_svc.record_payment(db.session, contract, "1000.00", date(2026, 2, 1))
    book = make_books(client, start="2026-01")
    db.session.add(Period(book_id=book.id, period=202601, status=PeriodStatus.closed, closed_at=utcnow()))
    db.session.commit()
    make_service_record(client, subject="一月记账完成", result="已报税")
    visitor = _visitor(sites[0], contact_id=contact.id, external_user_id="u-1001")

    response = login_as("agent").get(f"/chat/console/visitor/{visitor.id}")
    card = response.json["client"]
    assert (card["name"], card["credit_code"], card["taxpayer_type"]) == (
        "上海明远商贸有限公司", client.credit_code, "小规模纳税人")
    assert card["contact"] == {"name": "王五", "position": "财务"}
    assert [(c["number"], c["monthly_fee"], c["end_date"]) for c in card["contracts"]] == [
        (contract.number, "800.00", "2026-12-31")]
    assert card["balance"] == {"billed": "2400.00", "paid": "1000.00", "due": "1400.00"}
    assert card["books"] == {"start_period": "2026-01", "latest_closed": "2026-01"}
    assert [(r["subject"], r["result"]) for r in card["service_records"]] == [("一月记账完成", "已报税")]
    body = response.get_data(as_text=True)
    assert client.legal_rep_id_number not in body and "6222021001000099999" not in body


# --- a conversation ---------------------------------------------------------------------------


def test_a_conversation_is_for_its_owner_participants_and_supervisors(app, sites, agent, colleague, login_as):
    create_user(app, "agent3", PASSWORD, ["Agent"])
    conversation = _conversation(_visitor(sites[0]), ConversationStatus.active, agent)
    _say(conversation, SenderType.visitor, "你好")
    _say(conversation, SenderType.note, "内部备注")
    _say(conversation, SenderType.whisper, "注意语气", recipient_user_id=agent.user_id, sender_name="经理")
    url = f"/chat/console/conversation/{conversation.id}"

    owner = login_as("agent").get(url).json
    assert [m["sender_type"] for m in owner["messages"]] == ["visitor", "note", "whisper"]
    assert owner["conversation"]["agent_name"] == "客服小张"
    assert login_as("manager").get(url).status_code == 200
    assert login_as("agent2").get(url).status_code == 404
    assert login_as("agent3").get(url).status_code == 404  # chat permission, no profile, not a supervisor
    db.session.add(ConversationParticipant(conversation_id=conversation.id, user_id=colleague.user_id,
                                           role=ParticipantRole.invited))
    db.session.commit()
    assert [m["text"] for m in login_as("agent2").get(url).json["messages"]] == ["你好", "内部备注", "注意语气"]
    assert login_as("agent").get("/chat/console/conversation/999999").status_code == 404


# --- visitor text stays text ------------------------------------------------------------------


def test_visitor_text_in_the_page_is_never_html(app, sites, agent, login_as):
    visitor = _visitor(sites[0], name=XSS, current_title=XSS, current_url="https://www.example.com/?q=<script>")
    conversation = _conversation(visitor, ConversationStatus.active, agent, entry_url="https://www.example.com/<b>")
    _say(conversation, SenderType.visitor, XSS)
    _conversation(_visitor(sites[0], name=XSS), queued_ago=5)

    html = login_as("agent").get("/chat/console/").get_data(as_text=True)
    assert XSS not in html and "<script>" not in html.split('id="console-config"')[1].split("</script>")[0]
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in html  # present, as JSON text for console.js
    state = login_as("agent").get(STATE)
    assert state.json["visitors"][0]["name"] == XSS  # the JSON carries the text as it was typed
    assert state.headers["Content-Type"].startswith("application/json")
