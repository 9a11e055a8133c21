"""Work inside one client: the current set of books (当前账套) kept across the ledger screens, and
the PDFs linked from the pages they belong to (client, contract, voucher, chat transcript)."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from app.models.contracts import ContractStatus
from app.models.crm import Client
from tests.factories import make_books, make_client, make_contract, make_voucher
from tests.test_reports_pdf import conversation, pdf_text, report_store  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("report_store")


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


@pytest.fixture
def accountant(app):
    return app.appbuilder.sm.find_user(username="accountant")


@pytest.fixture
def two_books(accountant, user_id):
    """Two clients of ``accountant`` with books, one draft voucher each (different summaries)."""
    first = make_books(make_client(accountant=accountant, name="甲账套有限公司"))
    second = make_books(make_client(accountant=accountant, name="乙账套有限公司"))
    make_voucher(first, user_id("accountant"), summary="甲公司收款")
    make_voucher(second, user_id("accountant"), summary="乙公司收款")
    return first, second


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def location(response) -> str:
    assert response.status_code in (302, 303), response.status_code
    return response.headers["Location"]


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def switch(browser, client_id: object, next_url: str = "/ledger/vouchers/list/"):
    page = browser.get("/ledger/vouchers/list/", follow_redirects=True).get_data(as_text=True)
    return browser.post("/ledger/current/", data={"csrf_token": csrf(page), "client_id": str(client_id),
                                                   "next": next_url})


# --- the current set of books -----------------------------------------------------------------


def test_without_a_current_client_each_ledger_screen_asks_for_one(two_books, login_as):
    browser = login_as("accountant")
    for url in ("/ledger/accounts/", "/ledger/opening/", "/ledger/periods/", "/ledger/vouchers/add"):
        page = text(browser.get(url))
        assert 'id="pick-client"' in page and "甲账套有限公司" in page and "乙账套有限公司" in page, url
    listing = browser.get("/ledger/vouchers/list/")
    assert listing.status_code == 200
    assert "甲公司收款" in text(listing) and "乙公司收款" in text(listing)


def test_a_client_picked_once_is_kept_by_every_ledger_screen(two_books, login_as):
    first, second = two_books
    browser = login_as("accountant")
    assert 'id="book-title"' in text(browser.get(f"/ledger/accounts/{second.client_id}"))

    for screen in ("accounts", "opening", "periods"):
        assert location(browser.get(f"/ledger/{screen}/")).endswith(f"/ledger/{screen}/{second.client_id}")
    form = text(browser.get("/ledger/vouchers/add"))
    assert 'id="pick-client"' not in form and "乙账套有限公司" in form
    report = location(browser.get("/ledger/reports/trial-balance?from=2026-01&to=2026-01"))
    assert f"client_id={second.client_id}" in report and "from=2026-01" in report
    worksheet = location(browser.get("/tax/worksheet/?period=2026-01"))
    assert f"client_id={second.client_id}" in worksheet and "period=2026-01" in worksheet
    listing = browser.get("/ledger/vouchers/list/")
    assert "乙公司收款" in text(listing) and "甲公司收款" not in text(listing)
    assert 'id="current-client"' in text(listing)
    import_page = text(browser.get("/voucherimport/"))
    assert re.search(rf'<option selected value="{second.client_id}">|<option value="{second.client_id}" selected',
                     import_page)

    # Opening another client's screen makes it the current one.
    browser.get(f"/ledger/reports/balance-sheet?client_id={first.client_id}&period=2026-01")
    assert location(browser.get("/ledger/periods/")).endswith(f"/ledger/periods/{first.client_id}")
    browser.get(f"/ledger/vouchers/list/?_flt_0_client={second.client_id}")
    assert location(browser.get("/ledger/opening/")).endswith(f"/ledger/opening/{second.client_id}")


def test_the_switcher_changes_or_clears_the_current_client(two_books, login_as):
    first, second = two_books
    browser = login_as("accountant")
    browser.get(f"/ledger/accounts/{first.client_id}")
    page = text(browser.get(f"/ledger/accounts/{first.client_id}"))
    assert re.search(rf'<option value="{first.client_id}" selected>甲账套有限公司', page)
    # Switching from a per-book screen returns to that screen, on the new client.
    moved = switch(browser, second.client_id, next_url="/ledger/accounts/")
    assert location(moved).endswith("/ledger/accounts/")
    assert location(browser.get("/ledger/accounts/")).endswith(f"/ledger/accounts/{second.client_id}")

    cleared = switch(browser, "")
    assert location(cleared).endswith("/ledger/vouchers/list/")
    assert 'id="pick-client"' in text(browser.get("/ledger/periods/"))
    listing = text(browser.get("/ledger/vouchers/list/"))
    assert "甲公司收款" in listing and "乙公司收款" in listing


def test_the_switcher_refuses_clients_outside_the_scope_and_foreign_next_urls(app, two_books, login_as):
    first, _ = two_books
    other = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="manager"), name="别人的公司"))
    browser = login_as("accountant")
    browser.get(f"/ledger/accounts/{first.client_id}")
    for refused in (other.client_id, "abc", "99999999"):
        assert switch(browser, refused).status_code == 404
    assert location(browser.get("/ledger/periods/")).endswith(f"/ledger/periods/{first.client_id}")
    for foreign in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        assert location(switch(browser, first.client_id, next_url=foreign)).endswith("/ledger/vouchers/list/")


def test_the_switcher_needs_the_csrf_token(app, two_books, login_as, monkeypatch):
    first, second = two_books
    browser = login_as("accountant")
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    browser.get(f"/ledger/accounts/{first.client_id}")
    refused = browser.post("/ledger/current/", data={"client_id": str(second.client_id)})
    assert refused.status_code in (400, 303)
    assert location(browser.get("/ledger/periods/")).endswith(f"/ledger/periods/{first.client_id}")
    assert location(switch(browser, second.client_id)).endswith("/ledger/vouchers/list/")
    assert location(browser.get("/ledger/periods/")).endswith(f"/ledger/periods/{second.client_id}")


def test_a_current_client_that_leaves_the_scope_is_dropped(app, session, two_books, login_as):
    first, _ = two_books
    browser = login_as("accountant")
    browser.get(f"/ledger/accounts/{first.client_id}")
    client = session.get(Client, first.client_id)
    client.accountant_id = app.appbuilder.sm.find_user(username="manager").id
    session.commit()
    page = text(browser.get("/ledger/periods/"))
    assert 'id="pick-client"' in page and "甲账套有限公司" not in page
    assert browser.get(f"/ledger/periods/{first.client_id}").status_code == 404


def test_the_choice_is_per_user_session(two_books, login_as):
    first, _ = two_books
    one, two = login_as("accountant"), login_as("accountant")
    one.get(f"/ledger/accounts/{first.client_id}")
    assert 'id="pick-client"' in text(two.get("/ledger/accounts/"))


# --- the PDFs, linked from their pages --------------------------------------------------------


def _href(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}" href="([^"]+)"', page)
    assert match, element_id
    return html.unescape(match.group(1))


def test_statement_pdf_from_the_client_and_the_contract_pages(app, session, accountant, login_as):
    client = make_client(accountant=accountant, name="对账单测试有限公司")
    contract = make_contract(client, status=ContractStatus.active)
    browser = login_as("accountant")
    from_client = _href(text(browser.get(f"/clientmodelview/show/{client.id}")), "statement-pdf")
    from_contract = _href(text(browser.get(f"/contractmodelview/show/{contract.id}")), "statement-pdf")
    assert from_client == from_contract
    assert f"client_id={client.id}" in from_client
    _, pages = pdf_text(browser.get(from_client))
    assert "对账单测试有限公司" in " ".join(pages)


def test_the_voucher_pdf_holds_that_voucher_only(two_books, login_as, session, user_id):
    first, _ = two_books
    other = make_voucher(first, user_id("accountant"), summary="另一张凭证", day="2026-01-20")
    browser = login_as("reviewer")
    voucher_id = session.scalar(select(type(other).id).where(type(other).summary == "甲公司收款"))
    link = _href(text(browser.get(f"/ledger/vouchers/show/{voucher_id}")), "voucher-pdf")
    response = browser.get(link)
    _, pages = pdf_text(response)
    printed = " ".join(pages)
    assert "甲公司收款" in printed and "另一张凭证" not in printed
    response.headers["Content-Disposition"].encode("latin-1")  # a real server sends only latin-1 headers


def test_a_download_name_in_chinese_is_sent_in_latin1_with_the_utf8_name_beside():
    from app.views.reports import attachment

    header = attachment("凭证-付-2.pdf")
    header.encode("latin-1")
    assert header == "attachment; filename=\"--2.pdf\"; filename*=UTF-8''%E5%87%AD%E8%AF%81-%E4%BB%98-2.pdf"
    assert attachment('a"b.pdf') == 'attachment; filename="a_b.pdf"'


def test_a_voucher_pdf_with_a_bad_or_foreign_voucher_id_is_refused(app, two_books, login_as, session):
    first, second = two_books
    browser = login_as("accountant")
    from app.models.ledger import Voucher

    foreign = session.scalar(select(Voucher.id).where(Voucher.book_id == second.id))
    base = f"/reports/vouchers.pdf?client_id={first.client_id}&period=2026-01"
    assert browser.get(f"{base}&voucher_id={foreign}").status_code == 404
    bad = browser.get(f"{base}&voucher_id=x")
    assert bad.status_code == 400 and "voucher_id" in bad.json["errors"]


def test_the_transcript_pdf_from_the_chat_history(app, conversation, login_as):  # noqa: F811
    browser = login_as("manager")
    link = _href(text(browser.get(f"/chat/history/{conversation.id}")), "transcript-pdf")
    _, pages = pdf_text(browser.get(link))
    assert "每月五百元。" in " ".join(pages)


def test_no_pdf_links_for_those_who_may_not_download(app, session, login_as, conversation):  # noqa: F811
    sm = app.appbuilder.sm
    role = sm.find_role("Manager")
    for name in ("can_download", "can_transcript"):
        sm.del_permission_role(role, sm.find_permission_view_menu(name, "ReportPdfApi"))
    client = make_client(name="无权下载有限公司")
    browser = login_as("manager")
    assert 'id="statement-pdf"' not in text(browser.get(f"/clientmodelview/show/{client.id}"))
    assert 'id="transcript-pdf"' not in text(browser.get(f"/chat/history/{conversation.id}"))
