"""PDF downloads: each document's text (extracted with pypdf) against the JSON reports, access
rules, bad input, empty periods, metadata and page numbering.

The books are the hand-computed ones of tests/test_ledger_reports.py (January and February
2026 closed, client 报表测试有限公司 of the user ``accountant``).
"""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from flask_babel import gettext
from pypdf import PdfReader
from sqlalchemy import select

from app.extensions import db
from app.models.chat import ChatMessage, ChatSite, Conversation, ConversationStatus, SenderType, Visitor
from app.models.contracts import ContractStatus
from app.services import contracts as contract_svc
from app.services import periods
from tests import test_ledger_reports as ledger_books
from tests.factories import make_books, make_client, make_contract, make_voucher

book, checker, maker = ledger_books.book, ledger_books.checker, ledger_books.maker  # fixtures


def pdf_text(response) -> tuple[PdfReader, list[str]]:
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    return reader, [page.extract_text() for page in reader.pages]


def plain(text: str) -> str:
    """Text without thousands separators and line breaks, for comparing with JSON amounts."""
    return re.sub(r"\s+", " ", text.replace(",", ""))


def page_labels(app, total: int) -> list[str]:
    with app.test_request_context():
        pattern = gettext("Page {page} of {pages}")
    return [pattern.format(page=i, pages=total) for i in range(1, total + 1)]


def assert_numbered(app, pages: list[str]) -> None:
    for text, label in zip(pages, page_labels(app, len(pages)), strict=True):
        assert label in text


@pytest.fixture(autouse=True)
def report_store(app, tmp_path):
    """A cache and job store of this test's own: files under tmp_path, or Redis with the
    reports' keys cleared."""
    from reports.store import FileStore, RedisStore

    if app.config.get("REDIS_URL"):
        from redis import Redis

        connection = Redis.from_url(app.config["REDIS_URL"])
        for key in connection.scan_iter("reports:*"):
            connection.delete(key)
        store = RedisStore(connection)
    else:
        store = FileStore(tmp_path / "reports")
    app.extensions["reports_store"] = store
    yield store
    app.extensions.pop("reports_store", None)


@pytest.fixture
def manager(login_as):
    return login_as("manager")


def url(document: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/reports/{document}.pdf?{query}"


# --- ledger documents against the JSON reports ----------------------------------------------


def test_trial_balance_pdf_shows_the_json_totals_title_and_metadata(app, book, manager):
    data = manager.get(f"/api/v1/reports/trial-balance?client_id={book.client_id}&period=2026-01&hide_zero=1").json
    reader, pages = pdf_text(manager.get(url("trial-balance", client_id=book.client_id, period="2026-01")))
    text = plain(" ".join(pages))
    assert "报表测试有限公司" in text
    columns = ("opening_debit", "opening_credit", "debit", "credit", "closing_debit", "closing_credit")
    assert " ".join(data["totals"][c] for c in columns) in text  # 71000.00 71000.00 22800.00 ... in one row
    for row in data["rows"]:
        assert row["name"] in text
    with app.test_request_context():
        title = gettext("Trial balance")
    assert reader.metadata.title.startswith(title) and "报表测试有限公司" in reader.metadata.title
    assert reader.metadata.author == "manager"
    assert_numbered(app, pages)


def test_detail_ledger_pdf_lists_every_line_with_the_json_balances(app, book, manager):
    params = dict(client_id=book.client_id, account_code="1001", **{"from": "2026-01", "to": "2026-02"})
    query = "&".join(f"{k}={v}" for k, v in params.items())
    data = manager.get(f"/api/v1/reports/ledger?{query}").json
    _, pages = pdf_text(manager.get(url("detail-ledger", **params)))
    text = plain(" ".join(pages))
    assert "1001 库存现金" in text
    for row in data["rows"]:
        assert row["balance"] in text
        if row["kind"] == "line":
            assert row["voucher"] in text and row["summary"] in text
    assert "-800.00" in text  # the red reversal keeps its sign


def test_general_ledger_pdf_shows_each_months_totals(app, book, manager):
    data = manager.get(f"/api/v1/reports/general-ledger?client_id={book.client_id}&from=2026-01&to=2026-02").json
    _, pages = pdf_text(manager.get(url("general-ledger", client_id=book.client_id, **{"from": "2026-01",
                                                                                      "to": "2026-02"})))
    text = plain(" ".join(pages))
    for account in data["accounts"]:
        assert account["name"] in text
        for month in account["months"]:
            assert f"{month['ytd_debit']}" in text and month["balance"] in text


def test_balance_sheet_and_income_statement_in_the_official_layouts(app, book, manager):
    bs = manager.get(f"/api/v1/reports/balance-sheet?client_id={book.client_id}&period=2026-02").json
    _, pages = pdf_text(manager.get(url("balance-sheet", client_id=book.client_id, period="2026-02")))
    text = plain(" ".join(pages))
    with app.test_request_context():
        form01, form02, unit = (gettext("Form 01 for small enterprises"), gettext("Form 02 for small enterprises"),
                                gettext("Unit: yuan"))
    assert form01 in text and unit in text and "报表测试有限公司" in text and "2026-02-28" in text
    for ln in bs["lines"]:
        if ln["end"] is not None:
            assert f"{ln['item']} {ln['line']} {ln['end']} {ln['year_start']}" in text
    inc = manager.get(f"/api/v1/reports/income-statement?client_id={book.client_id}&period=2026-02").json
    _, pages = pdf_text(manager.get(url("income-statement", client_id=book.client_id, period="2026-02")))
    text = plain(" ".join(pages))
    assert form02 in text
    for ln in inc["lines"]:
        if ln["period"] is not None:
            assert f"{ln['item']} {ln['line']} {ln['ytd']} {ln['period']}" in text


def test_balance_sheet_pdf_of_an_open_month_ties_and_prints_the_note(app, book, manager, maker, checker):
    make_voucher(book, maker, state="posted", reviewer_id=checker, day="2026-03-05", amount="12345.67")
    bs = manager.get(f"/api/v1/reports/balance-sheet?client_id={book.client_id}&period=2026-03").json
    note = bs["unclosed_profit"]["end"]["note"]
    assert note == "含未结转损益 12,345.67（本月尚未结账）"
    _, pages = pdf_text(manager.get(url("balance-sheet", client_id=book.client_id, period="2026-03")))
    assert len(pages) == 1  # still one landscape page
    text = plain(" ".join(pages))
    with app.test_request_context():
        column = gettext("End of period")
    assert f"{column}: {plain(note)}" in text
    lines = {ln["line"]: ln for ln in bs["lines"]}
    assert lines[30]["end"] == lines[53]["end"] == "98595.67"  # 86,250 + 12,345.67
    for n in (30, 52, 53):
        assert f"{lines[n]['item']} {n} {lines[n]['end']} {lines[n]['year_start']}" in text
    assert f"未分配利润 51 {lines[51]['end']}* {lines[51]['year_start']}" in text  # 27145.67, marked
    closed = plain(" ".join(pdf_text(manager.get(url("balance-sheet", client_id=book.client_id,
                                                        period="2026-02")))[1]))
    assert "含未结转损益" not in closed and "未分配利润 51 14800.00 0.00" in closed


def test_balance_sheet_pdf_prints_a_note_for_each_column_on_one_page(app, session, manager, maker, checker):
    from app.services import books

    accountant = app.appbuilder.sm.find_user(username="accountant")
    december = make_books(make_client(accountant=accountant, name="年末测试有限公司"), start="2026-12")
    books.set_opening_balance(session, december.id, "1001", debit="10000")
    books.set_opening_balance(session, december.id, "3001", credit="10000")
    make_voucher(december, maker, state="posted", reviewer_id=checker, day="2026-12-10", amount="1000.00")
    _, pages = pdf_text(manager.get(url("balance-sheet", client_id=december.client_id, period="2027-01")))
    assert len(pages) == 1  # two notes and the signatures still fit the landscape page
    text = plain(" ".join(pages))
    with app.test_request_context():
        end, start = gettext("End of period"), gettext("Start of year")
    assert f"{end}: 含未结转损益 1000.00（2026-12 至本月尚未结账）" in text
    assert f"{start}: 含未结转损益 1000.00（2026-12 尚未结账）" in text
    assert "未分配利润 51 1000.00* 1000.00*" in text
    assert "资产总计 30 11000.00 11000.00" in text and "总计 53 11000.00 11000.00" in text


def test_vouchers_pdf_prints_each_voucher_with_amount_in_words_and_signatures(app, book, manager):
    _, pages = pdf_text(manager.get(url("vouchers", client_id=book.client_id, period="2026-01")))
    text = plain(" ".join(pages))
    assert "壹万壹仟叁佰元整" in text and "11300.00" in text  # 记-1
    for label in ("记-1", "记-2", "记-3", "记-4"):
        assert label in text
    assert "accountant" in text and "reviewer" in text  # maker, reviewer/poster
    assert "销售商品" in text and "购买办公用品" in text


# --- statement of account ---------------------------------------------------------------------


def test_statement_of_account_shows_bills_payments_balance_and_ageing(app, session, manager):
    client = make_client(name="对账单测试有限公司")
    contract = make_contract(client, status=ContractStatus.active, monthly_fee="1000.00",
                             start_date=date(2026, 1, 1), end_date=date(2026, 12, 31))
    contract_svc.bill_contract(session, contract, through=date(2026, 3, 1))  # Jan, Feb, Mar: 3,000
    contract_svc.record_payment(session, contract, "1500.00", date(2026, 2, 10), method="转账", reference="R-1")
    _, pages = pdf_text(manager.get(url("statement", client_id=client.id, **{"from": "2026-02", "to": "2026-03"})))
    text = plain(" ".join(pages))
    assert "对账单测试有限公司" in text and contract.number in text and "R-1" in text
    # opening 1,000 (January's bill) + 2,000 billed − 1,500 paid = 1,500 due
    assert "2026-02-01" in text and "1000.00" in text
    assert "2000.00 1500.00 1500.00" in text
    # ageing at 2026-03-31: January's bill is paid in full, February's half (500 left, 31–60
    # days past its due date 02-16), March's (due 03-16) 15 days past due
    assert "0.00 1000.00 500.00 0.00 0.00 1500.00" in text


def test_a_period_without_data_gives_a_valid_pdf_that_says_so(app, session, manager, book):
    client = make_client(name="空白客户")
    with app.test_request_context():
        no_data = gettext("No data for this period.")
    _, pages = pdf_text(manager.get(url("statement", client_id=client.id, period="2025-06")))
    assert no_data in " ".join(pages)
    _, pages = pdf_text(manager.get(url("vouchers", client_id=book.client_id, period="2026-03")))
    assert no_data in " ".join(pages)


# --- access and input ----------------------------------------------------------------------------


def test_an_accountant_downloads_own_clients_only(app, book, login_as):
    assert login_as("accountant").get(url("trial-balance", client_id=book.client_id, period="2026-01")) \
        .status_code == 200
    other = login_as("accountant2").get(url("trial-balance", client_id=book.client_id, period="2026-01"))
    assert other.status_code == 404 and other.mimetype == "application/json"


def test_agents_and_anonymous_users_cannot_download_ledger_documents(app, book, login_as, client):
    assert login_as("agent").get(url("trial-balance", client_id=book.client_id, period="2026-01")).status_code == 403
    assert client.get(url("trial-balance", client_id=book.client_id, period="2026-01")).status_code == 401


@pytest.mark.parametrize(("query", "status", "field"), [
    ("period=2026-13", 400, "period"),
    ("period=abc", 400, "period"),
    ("", 400, "period"),
    ("from=2026-02&to=2026-01", 400, "to"),
    ("period=2025-12", 400, "from"),  # before the books start
    ("period=2026-01&client_id=x", 400, "client_id"),
    ("period=2026-01&client_id=999999", 404, "client_id"),
])
def test_bad_parameters_get_a_clear_4xx_never_a_500(app, book, manager, query, status, field):
    if "client_id" not in query:
        query = f"client_id={book.client_id}&{query}"
    response = manager.get(f"/reports/trial-balance.pdf?{query}")
    assert response.status_code == status
    assert field in response.json["errors"]


def test_unknown_documents_and_missing_account_codes(app, book, manager):
    assert manager.get(url("cash-flow", client_id=book.client_id, period="2026-01")).status_code == 404
    response = manager.get(url("detail-ledger", client_id=book.client_id, period="2026-01"))
    assert response.status_code == 400 and "account_code" in response.json["errors"]
    response = manager.get(url("detail-ledger", client_id=book.client_id, period="2026-01", account_code="9999"))
    assert response.status_code == 400


def test_a_jwt_bearer_token_downloads_too(app, book, api_token):
    response = app.test_client().get(url("income-statement", client_id=book.client_id, period="2026-01"),
                                     headers=api_token("reviewer"))
    _, pages = pdf_text(response)
    assert "报表测试有限公司" in pages[0]


# --- chat transcript ------------------------------------------------------------------------------


@pytest.fixture
def conversation(app, session, user_id):
    from app.models.chat import AgentProfile
    from app.services import chat_sites

    site = chat_sites.prepare_new_site(ChatSite(name="官网", allowed_origins="https://example.com"))
    session.add(site)
    session.flush()
    visitor = Visitor(site_id=site.id, uid="v" * 20, name="王先生")
    profile = AgentProfile(user_id=user_id("agent"), display_name="客服小张")
    session.add_all([visitor, profile])
    session.flush()
    chat = Conversation(site_id=site.id, visitor_id=visitor.id, agent_id=profile.id,
                        status=ConversationStatus.closed)
    session.add(chat)
    session.flush()
    for kind, name, text in ((SenderType.visitor, None, "<b>你好</b>，请问记账多少钱？"),
                             (SenderType.agent, "客服小张", "每月五百元。"),
                             (SenderType.note, "客服小张", "潜在客户，回访"),
                             (SenderType.whisper, "主管", "报价可以优惠")):
        session.add(ChatMessage(conversation_id=chat.id, sender_type=kind, sender_name=name, text=text,
                                sender_user_id=user_id("agent") if kind in (SenderType.agent, SenderType.note)
                                else None))
    session.commit()
    return chat


def test_transcript_for_an_agent_who_took_part_with_notes_marked_and_no_whispers(app, conversation, login_as):
    _, pages = pdf_text(login_as("agent").get(f"/reports/transcript/{conversation.id}.pdf"))
    text = " ".join(pages)
    with app.test_request_context():
        note = gettext("Internal note")
    assert "<b>你好</b>，请问记账多少钱？" in text  # visitor text printed as text, never markup
    assert "每月五百元。" in text and f"[{note}]" in text and "潜在客户，回访" in text
    assert "报价可以优惠" not in text
    assert "王先生" in text


def _serve_another_site_only(session, user_id) -> None:
    """Put the agent in a group of another site: they no longer serve the conversation's site."""
    from app.models.chat import AgentGroup, AgentProfile
    from app.services import chat_sites

    other = chat_sites.prepare_new_site(ChatSite(name="分站", allowed_origins="https://other.example"))
    session.add(other)
    session.flush()
    group = AgentGroup(site_id=other.id, name="分站客服")
    session.add(group)
    session.flush()
    profile = session.scalar(select(AgentProfile).where(AgentProfile.user_id == user_id("agent")))
    profile.groups.append(group)
    session.commit()


def test_transcripts_of_other_chats_are_hidden_from_agents(app, conversation, login_as, session, user_id):
    conversation.agent_id = None
    session.commit()
    session.query(ChatMessage).filter(ChatMessage.sender_user_id == user_id("agent")).delete()
    session.commit()
    _serve_another_site_only(session, user_id)
    assert login_as("agent").get(f"/reports/transcript/{conversation.id}.pdf").status_code == 404
    assert login_as("manager").get(f"/reports/transcript/{conversation.id}.pdf").status_code == 200
    assert login_as("manager").get("/reports/transcript/987654.pdf").status_code == 404


def test_users_without_chat_rights_cannot_download_transcripts(app, conversation, login_as, api_token):
    """A Reviewer (who sees every client) and an Accountant have no chat rights: no transcript,
    by session or by token, as for a conversation that does not exist."""
    for who in ("reviewer", "accountant"):
        assert login_as(who).get(f"/reports/transcript/{conversation.id}.pdf").status_code == 404
        response = app.test_client().get(f"/reports/transcript/{conversation.id}.pdf", headers=api_token(who))
        assert response.status_code == 404
        assert "潜在客户" not in response.get_data(as_text=True)


def test_an_agent_who_serves_the_site_gets_the_transcript_without_internal_notes(
        app, conversation, login_as, session, user_id):
    conversation.agent_id = None  # not theirs: they read what the visitor saw, as on the history screen
    session.commit()
    session.query(ChatMessage).filter(ChatMessage.sender_user_id == user_id("agent")).update(
        {ChatMessage.sender_user_id: None})
    session.commit()
    _, pages = pdf_text(login_as("agent").get(f"/reports/transcript/{conversation.id}.pdf"))
    text = " ".join(pages)
    assert "每月五百元。" in text
    assert "潜在客户，回访" not in text and "报价可以优惠" not in text

    _, pages = pdf_text(login_as("manager").get(f"/reports/transcript/{conversation.id}.pdf"))
    text = " ".join(pages)
    assert "潜在客户，回访" in text and "报价可以优惠" not in text  # a supervisor reads notes; whispers never print


# --- cache for closed periods -------------------------------------------------------------------


def test_a_closed_period_is_served_from_the_cache_until_it_is_reopened(app, book, manager, session, maker):
    first = manager.get(url("income-statement", client_id=book.client_id, period="2026-02"))
    assert first.status_code == 200 and first.headers["X-Report-Cache"] == "miss"
    again = manager.get(url("income-statement", client_id=book.client_id, period="2026-02"))
    assert again.headers["X-Report-Cache"] == "hit" and again.data == first.data
    periods.reopen_period(session, book.client_id, "2026-02", maker)
    reopened = manager.get(url("income-statement", client_id=book.client_id, period="2026-02"))
    assert reopened.headers["X-Report-Cache"] == "off"
    # the carry-forward voucher is gone: the statement is unchanged, but the cache is not used
    periods.close_period(session, book.client_id, "2026-02", maker)
    closed_again = manager.get(url("income-statement", client_id=book.client_id, period="2026-02"))
    assert closed_again.headers["X-Report-Cache"] == "miss"


def test_a_statement_cached_under_other_line_formulas_is_made_again(app, book, manager, monkeypatch):
    from reports import documents

    cached = manager.get(url("income-statement", client_id=book.client_id, period="2026-02"))
    assert cached.headers["X-Report-Cache"] == "miss"
    monkeypatch.setattr(documents, "_layout_version", lambda: "formulas of another release")
    again = manager.get(url("income-statement", client_id=book.client_id, period="2026-02"))
    assert again.headers["X-Report-Cache"] == "miss"


def test_open_periods_and_statements_are_never_cached(app, book, manager):
    for _ in range(2):
        response = manager.get(url("statement", client_id=book.client_id, period="2026-02"))
        assert response.headers["X-Report-Cache"] == "off"
    db.session.rollback()


def test_quotes_and_markup_in_a_client_name_are_printed_as_text(app, session, manager):
    client = make_client(name='A"}@page{size:A3} <i>公司</i>\\')
    reader, pages = pdf_text(manager.get(url("statement", client_id=client.id, period="2026-01")))
    assert 'A"}@page{size:A3} <i>公司</i>\\' in pages[0]  # in the header and the body, as typed
    assert round(float(reader.pages[0].mediabox.width)) == 595  # still A4 (points)


def test_ruled_ledger_lines_wrap_long_texts_and_keep_rows_whole_across_pages():
    from reports.lines import Column, Grid, paginate, width

    columns = (Column("日期"), Column("摘要", flex=True), Column("余额", "right"))
    rows = [("2026-01-01", "现金支付费用\n第二行", "1,000.00"), ("2026-01-02", "很长的摘要" * 6, "99.00")]
    grid = Grid.fit(columns, rows, 50)
    first, second = grid.row(rows[0]), grid.row(rows[1])
    assert first == [" 2026-01-01   现金支付费用 第二行        1,000.00"]  # the line break is a space
    assert len(second) == 3 and second[0].endswith("99.00") and not second[1].strip().endswith("99.00")
    assert "".join(ch for line in second for ch in line if "\u4e00" <= ch <= "\u9fff") == "很长的摘要" * 6
    assert all(width(line) <= grid.total for line in first + second)
    pages = paginate([("line", first), ("line", second)], 2, 10)
    assert [len(page) for page in pages] == [1, len(second)]  # the wrapped row moved whole to page 2


def test_tax_worksheet_pdf_prints_the_lines_of_the_json_worksheet(app, session, manager, login_as, maker, checker):
    accountant = app.appbuilder.sm.find_user(username="accountant")
    taxed = make_books(make_client(accountant=accountant, name="税费测试有限公司"), start="2026-01")
    make_voucher(taxed, maker, state="posted", reviewer_id=checker, day="2026-03-10", summary="销售",
                 lines=[{"account_code": "1002", "debit": "200000"}, {"account_code": "5001", "credit": "200000"}])
    sheet = manager.get(f"/api/v1/tax/worksheet?client_id={taxed.client_id}&period=2026-03").json
    reader, pages = pdf_text(manager.get(f"/reports/tax-worksheet.pdf?client_id={taxed.client_id}&period=2026-03"))
    text = plain(" ".join(pages))
    with app.test_request_context():
        title = gettext("Tax worksheet")
    assert reader.metadata.title.startswith(title)
    assert "税费测试有限公司" in text and "2026-03 (2026-03-01 – 2026-03-31)" in text
    for ln in sheet["lines"]:
        assert f"{ln['base']} {ln['rate']}%" in text and ln["amount"] in text
    assert sheet["total"] == "2120.00" and "2120.00" in text
    assert "减按1%征收" in text
    assert_numbered(app, pages)
    # the same refusals as the API: a bad period, another accountant's client, an agent
    bad = manager.get(f"/reports/tax-worksheet.pdf?client_id={taxed.client_id}&period=2026-Q1")
    assert bad.status_code == 400 and "period" in bad.json["errors"]
    other = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant2")))
    assert login_as("accountant").get(
        f"/reports/tax-worksheet.pdf?client_id={other.client_id}&period=2026-03").status_code == 404
    assert login_as("agent").get(
        f"/reports/tax-worksheet.pdf?client_id={taxed.client_id}&period=2026-03").status_code in (401, 403)
