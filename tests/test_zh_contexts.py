"""One English word, two meanings: each screen shows the Chinese of its own meaning (zh_CN).

"From" is a date (起始日期) in the chat history, a sender (来自) in the transcript and a status
(原状态) in the contract history; "Closed" is 已结账 for a period and 已结束 / 已关闭 for a chat
and a left message; "Code" is 科目编码 on the accounts and 验证码 for two-factor sign-in;
"Account" is 会计科目 in a voucher and 账户 in the user menu; "Show" is 查询 on a report form and
查看 on FAB's record buttons.
"""

from __future__ import annotations

from datetime import date, datetime

from app.models.chat import (
    AgentProfile,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationStatus,
    LeaveMessage,
    LeaveMessageStatus,
    SenderType,
    Visitor,
)
from app.models.contracts import ContractStatus
from app.services import chat_sites, periods
from app.services import contracts as contract_svc
from tests.factories import make_books, make_client, make_contract, make_voucher
from tests.test_reports_pdf import pdf_text, report_store  # noqa: F401 - report_store: autouse fixture
from tests.test_zh_raw_values import visible_text


def _page(client, url: str) -> str:  # noqa: ANN001
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return visible_text(response.get_data(as_text=True))


def _closed_chat(session, user_id) -> Conversation:  # noqa: ANN001
    site = chat_sites.prepare_new_site(ChatSite(name="官网", allowed_origins="https://example.com"))
    session.add(site)
    session.flush()
    visitor = Visitor(site_id=site.id, uid="w" * 20, name="李女士")
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小王")
    session.add_all([visitor, profile])
    session.flush()
    chat = Conversation(site_id=site.id, visitor_id=visitor.id, agent_id=profile.id, status=ConversationStatus.closed,
                        queued_at=datetime(2026, 3, 2, 1), closed_at=datetime(2026, 3, 2, 2))
    session.add(chat)
    session.flush()
    session.add(ChatMessage(conversation_id=chat.id, sender_type=SenderType.visitor, text="请问报税怎么收费？"))
    session.add(LeaveMessage(site_id=site.id, visitor_id=visitor.id, name="李女士", email="li@example.com",
                             text="请回电", status=LeaveMessageStatus.closed))
    session.commit()
    return chat


def test_the_chat_screens_say_ended_and_dates_where_the_english_says_closed_and_from(
        app, session, user_id, login_as) -> None:
    chat = _closed_chat(session, user_id)
    manager = login_as("manager")

    history = _page(manager, "/chat/history/")
    assert "已结束" in history  # the conversation's status
    assert "起始日期" in history and "截止日期" in history  # the date range
    assert "已结账" not in history and "原状态" not in history and "新状态" not in history

    transcript = _page(manager, f"/chat/history/{chat.id}")
    assert "结束时间" in transcript and "已结账" not in transcript

    left = _page(manager, "/leavemessagemodelview/list/")
    assert "已关闭" in left and "已结账" not in left


def test_the_transcript_pdf_heads_the_sender_column_from_not_old_status(app, session, user_id, login_as) -> None:
    chat = _closed_chat(session, user_id)
    _, pages = pdf_text(login_as("manager").get(f"/reports/transcript/{chat.id}.pdf"))
    text = " ".join(pages)
    assert "来自" in text and "请问报税怎么收费？" in text
    assert "原状态" not in text


def test_the_contract_history_keeps_old_and_new_status(app, session, login_as) -> None:
    contract = make_contract(make_client(), ContractStatus.active)
    contract_svc.change_contract(session, contract, "调整月费", monthly_fee="600.00")
    page = _page(login_as("manager"), "/contractchangemodelview/list/")
    assert "原状态" in page and "新状态" in page
    assert "起始日期" not in page


def test_accounts_and_opening_balances_head_the_code_column_account_code(app, session, login_as) -> None:
    book = make_books(start="2026-01")
    accountant = login_as("manager")
    for url in (f"/ledger/accounts/{book.client_id}", f"/ledger/opening/{book.client_id}"):
        page = _page(accountant, url)
        assert "科目编码" in page, url
        assert "验证码" not in page, url
    assert "启用" in _page(accountant, f"/ledger/accounts/{book.client_id}")  # "Active": in use


def test_a_closed_period_is_still_closed_books(app, session, login_as, user_id) -> None:
    book = make_books(start="2026-01")
    periods.close_period(session, book.client_id, "2026-01", user_id("manager"))
    page = _page(login_as("manager"), f"/ledger/periods/{book.client_id}")
    assert "已结账" in page and "已结束" not in page


def test_the_two_factor_form_asks_for_a_verification_code(app, login_as) -> None:
    page = _page(login_as("accountant"), "/mfa/setup")
    assert "验证码" in page and "科目编码" not in page


def test_a_voucher_heads_its_lines_with_the_ledger_account_and_the_menu_keeps_the_user_account(
        app, session, login_as, user_id) -> None:
    book = make_books(start=f"{date.today().year}-01")
    voucher = make_voucher(book, user_id("accountant"), day=f"{date.today().year}-01-15")
    page = _page(login_as("manager"), f"/ledger/vouchers/show/{voucher.id}")
    assert "会计科目" in page
    menu = login_as("manager").get("/").get_data(as_text=True)
    assert "账户" in menu  # the user's menu (two-factor authentication is under it)


def test_report_forms_say_query_and_record_buttons_say_view(app, session, login_as) -> None:
    book = make_books(start="2026-01")  # and its client, listed with a show button
    manager = login_as("manager")
    report = manager.get(f"/ledger/reports/trial-balance?client_id={book.client_id}&from=2026-01&to=2026-01")
    assert report.status_code == 200
    assert '<button type="submit" class="btn btn-primary">查询</button>' in report.get_data(as_text=True)
    listing = manager.get("/clientmodelview/list/").get_data(as_text=True)
    assert '<span class="sr-only">查看</span>' in listing  # FAB's show button
    assert '<span class="sr-only">查询</span>' not in listing


def test_fabs_screens_say_yes_cancel_ok_and_user_groups_in_chinese(app, login_as) -> None:
    admin = login_as("admin")
    users = admin.get("/users/list/").get_data(as_text=True)
    text = visible_text(users)
    assert "是" in text and "True" not in text.split()  # the "active" column
    assert '<button type="button" class="btn btn-default" data-dismiss="modal">取消</button>' in users
    assert 'id="modal-confirm-ok" class="btn btn-danger danger">确定</a>' in users  # FAB's delete confirmation
    roles = visible_text(admin.get("/roles/list/").get_data(as_text=True)).split()
    assert "用户组" in roles and "Groups" not in roles and "User" not in roles  # the search's fields
    sites = visible_text(admin.get("/chatsitemodelview/add").get_data(as_text=True))
    assert "客服分组" in sites  # a chat site's agent groups, not the users' groups
