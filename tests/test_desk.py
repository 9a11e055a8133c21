"""The desk (home page): the tiles of each role, hand-counted from data built relative to today,
and each tile's link opening a list of exactly the counted rows."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.chat import AgentGroup, AgentProfile, AgentStatus, ChatSite, Conversation, ConversationStatus, Visitor
from app.models.contracts import ContractStatus, FeeBill
from app.models.ledger import LedgerBook
from app.models.tax import FilingPeriod, TaxKind
from app.models.tax_filing import FilingStatus, TaxFiling
from app.services import chat_sites, desk, periods
from app.services import contracts as contract_svc
from app.services.accounting import period_label
from tests.factories import make_books, make_client, make_contract, make_voucher

TODAY = date.today()
MONTH = period_label(desk.working_month(TODAY))
DAY_IN_MONTH = f"{MONTH}-10"


@pytest.fixture
def world(app):
    """Client 甲 (the accountant's): filings overdue by a day, due in 2 and in 6 days, one filed as a
    zero return 5 days ago; a contract whose second bill is overdue; two drafts in the working
    month. Client 乙 (the manager's): a filing overdue by 3 days, a draft and a posted voucher.
    Client 丙 (the manager's): the working month closed. A chat waiting, an agent online with an
    active chat."""
    sm = app.appbuilder.sm
    accountant, manager = sm.find_user(username="accountant"), sm.find_user(username="manager")
    jia = make_client(accountant=accountant, name="甲公司")
    yi = make_client(accountant=manager, name="乙公司")
    bing = make_client(accountant=manager, name="丙公司")
    taxes = iter(TaxKind)
    for due, status, zero in ((TODAY - timedelta(days=1), FilingStatus.pending, False),
                              (TODAY + timedelta(days=2), FilingStatus.pending, False),
                              (TODAY + timedelta(days=6), FilingStatus.pending, False),
                              (TODAY - timedelta(days=5), FilingStatus.filed, True)):
        db.session.add(TaxFiling(client_id=jia.id, tax=next(taxes), period_kind=FilingPeriod.monthly, period=MONTH,
                                 due=due, status=status, zero_return=zero))
    db.session.add(TaxFiling(client_id=yi.id, tax=TaxKind.vat, period_kind=FilingPeriod.monthly, period=MONTH,
                             due=TODAY - timedelta(days=3), status=FilingStatus.pending, zero_return=False))
    contract = make_contract(jia, ContractStatus.active, start_date=TODAY - timedelta(days=400),
                             end_date=TODAY + timedelta(days=400))
    for n, due in enumerate((TODAY - timedelta(days=10), TODAY - timedelta(days=1), TODAY + timedelta(days=5))):
        start = date(2000 + n, 1, 1)
        db.session.add(FeeBill(contract_id=contract.id, period_start=start, period_end=start + timedelta(days=30),
                               amount="500.00", billed_on=due - timedelta(days=15), due_date=due))
    db.session.commit()
    contract_svc.record_payment(db.session, contract, "500.00", TODAY - timedelta(days=9))  # the first bill
    for client in (jia, yi, bing):
        make_books(client, start=MONTH)
    books = {b.client_id: b for b in db.session.scalars(select(LedgerBook))}
    make_voucher(books[jia.id], accountant.id, day=DAY_IN_MONTH)
    make_voucher(books[jia.id], accountant.id, day=DAY_IN_MONTH)
    make_voucher(books[yi.id], manager.id, day=DAY_IN_MONTH)
    make_voucher(books[yi.id], manager.id, state="posted", reviewer_id=accountant.id, day=DAY_IN_MONTH)
    make_voucher(books[bing.id], manager.id, state="posted", reviewer_id=accountant.id, day=DAY_IN_MONTH)
    periods.close_period(db.session, bing.id, MONTH, manager.id)

    agent = sm.find_user(username="agent")
    site = chat_sites.prepare_new_site(ChatSite(name="官网", allowed_origins="https://www.example.com"))
    group = AgentGroup(site=site, name="售前", is_default=True)
    profile = AgentProfile(user_id=agent.id, display_name="客服小张", groups=[group], status=AgentStatus.online)
    db.session.add_all([site, profile])
    db.session.flush()
    now = datetime.now(UTC).replace(tzinfo=None)
    for uid, status, agent_id in (("v1", ConversationStatus.queued, None),
                                  ("v2", ConversationStatus.active, profile.id)):
        visitor = Visitor(site_id=site.id, uid=uid)
        db.session.add(visitor)
        db.session.flush()
        db.session.add(Conversation(site_id=site.id, visitor_id=visitor.id, group_id=group.id, status=status,
                                    agent_id=agent_id, queued_at=now))
    db.session.commit()
    return {"jia": jia, "yi": yi, "bing": bing}


def _tiles(page: str) -> dict[str, tuple[int, str]]:
    found = re.findall(r'<h3 id="tile-([\w-]+)">(\d+)</h3>\s*<a href="([^"]+)"', page)
    return {key: (int(count), url.replace("&amp;", "&")) for key, count, url in found}


def _record_count(page: str) -> int:
    return int(re.search(r"<strong>[^<]*:</strong>\s*(\d+)", page).group(1))


def _filing_rows(page: str) -> int:
    table = page.split('id="filings"', 1)
    return table[1].split("<tbody>", 1)[1].split("</tbody>")[0].count("<tr>") if len(table) == 2 else 0


def _board_rows(page: str) -> list[str]:
    return re.findall(r'<tr data-client="(\d+)">', page)


def test_the_manager_s_desk_counts_and_links_to_exactly_those_rows(app, login_as, world):
    browser = login_as("manager")
    tiles = _tiles(browser.get("/").get_data(as_text=True))
    assert {key: count for key, (count, _) in tiles.items() if key in (
        "overdue-filings", "overdue-fees", "to-review", "not-closed", "chats-waiting", "agents-online")} == {
        "overdue-filings": 2, "overdue-fees": 1, "to-review": 3, "not-closed": 2, "chats-waiting": 1,
        "agents-online": 1}
    assert _filing_rows(browser.get(tiles["overdue-filings"][1]).get_data(as_text=True)) == 2
    assert _record_count(browser.get(tiles["overdue-fees"][1]).get_data(as_text=True)) == 1
    assert _record_count(browser.get(tiles["to-review"][1]).get_data(as_text=True)) == 3
    board = browser.get(tiles["not-closed"][1]).get_data(as_text=True)
    assert sorted(map(int, _board_rows(board))) == sorted([world["jia"].id, world["yi"].id])
    assert _record_count(browser.get(tiles["agents-online"][1]).get_data(as_text=True)) == 1
    assert "accountant" not in {k.split("-")[0] for k in tiles} and "my-board" not in tiles


def test_the_accountant_s_desk_shows_the_reminder_s_lists_and_links_to_exactly_those_rows(app, login_as, world):
    browser = login_as("accountant")
    tiles = _tiles(browser.get("/").get_data(as_text=True))
    assert {key: count for key, (count, _) in tiles.items() if key.startswith("my-")} == {
        "my-board": 1, "my-drafts": 2, "my-overdue": 1, "my-due-3": 1, "my-due-7": 2}
    assert "overdue-fees" not in tiles and "to-review" not in tiles
    assert _filing_rows(browser.get(tiles["my-overdue"][1]).get_data(as_text=True)) == 1
    assert _filing_rows(browser.get(tiles["my-due-3"][1]).get_data(as_text=True)) == 1
    assert _filing_rows(browser.get(tiles["my-due-7"][1]).get_data(as_text=True)) == 2
    assert _record_count(browser.get(tiles["my-drafts"][1]).get_data(as_text=True)) == 2
    board = browser.get(tiles["my-board"][1]).get_data(as_text=True)
    assert _board_rows(board) == [str(world["jia"].id)]


def test_the_reviewer_and_the_agent_see_their_own_tiles(app, login_as, world):
    reviewer = _tiles(login_as("reviewer").get("/").get_data(as_text=True))
    assert {k: c for k, (c, _) in reviewer.items()} == {"to-review": 3}
    assert _record_count(login_as("reviewer").get(reviewer["to-review"][1]).get_data(as_text=True)) == 3
    agent = _tiles(login_as("agent").get("/").get_data(as_text=True))
    assert {k: c for k, (c, _) in agent.items()} == {"my-chats": 1}


def test_a_user_with_two_roles_sees_the_tiles_of_each(app, login_as, world):
    sm = app.appbuilder.sm
    user = sm.find_user(username="reviewer")
    user.roles.append(sm.find_role("Agent"))
    db.session.commit()
    tiles = _tiles(login_as("reviewer").get("/").get_data(as_text=True))
    assert {k: c for k, (c, _) in tiles.items()} == {"to-review": 3, "my-chats": 0}


def test_the_desk_roles_of_an_admin_are_the_manager_s():
    assert desk.desk_roles(["Admin"]) == ["Manager"]
    assert desk.desk_roles(["Agent", "Accountant"]) == ["Accountant", "Agent"]


def test_the_due_soon_list_takes_a_number_of_days_from_1_to_31(app, login_as, world):
    browser = login_as("manager")
    assert _filing_rows(browser.get("/taxfilings/due_soon?days=2").get_data(as_text=True)) == 1  # today + 2
    assert _filing_rows(browser.get("/taxfilings/due_soon?days=1").get_data(as_text=True)) == 0
    refused = browser.get("/taxfilings/due_soon?days=40").get_data(as_text=True)
    assert "1 到 31 之间的整数。" in refused
    assert _filing_rows(refused) == 2  # the 7 days instead


def test_contracts_ending_within_the_30_day_window_are_the_manager_s_tile_and_its_list(app, login_as, world):
    """Live contracts ending today + 10 and today + 30 are counted; one ending today + 31, a draft
    ending today + 5 and the world's contract ending in 400 days are not."""
    assert app.config["RENEWAL_WINDOW_DAYS"] == 30
    start = TODAY - timedelta(days=300)
    counted = [make_contract(world["yi"], ContractStatus.active, start_date=start, end_date=TODAY + timedelta(days=10)),
               make_contract(world["jia"], ContractStatus.active, start_date=start,
                             end_date=TODAY + timedelta(days=30))]
    make_contract(world["jia"], ContractStatus.active, start_date=start, end_date=TODAY + timedelta(days=31))
    make_contract(world["bing"], ContractStatus.draft, start_date=start, end_date=TODAY + timedelta(days=5))
    browser = login_as("manager")
    page = browser.get("/").get_data(as_text=True)
    tiles = _tiles(page)
    assert tiles["ending"][0] == 2
    assert "30 天内到期的合同" in page.split('id="link-ending"', 1)[1].split("</a>", 1)[0]
    listed = browser.get(tiles["ending"][1]).get_data(as_text=True)
    numbers = re.findall(r'<td><a href="/contractmodelview/show/\d+">([^<]+)</a></td>', listed)
    assert numbers == [c.number for c in counted]  # the soonest first
    assert "ending" not in _tiles(login_as("accountant").get("/").get_data(as_text=True))


def _mail_sections(text: str) -> dict[str, set[tuple[str, ...]]]:
    """``{"overdue": {(client, tax, period, due)}, "due": {...}}`` from a reminder mail's text."""
    sections: dict[str, set[tuple[str, ...]]] = {"overdue": set(), "due": set()}
    current = None
    for line in text.splitlines():
        if line.startswith("逾期申报"):
            current = "overdue"
        elif "天内到期" in line:
            current = "due"
        elif line.startswith("- ") and current:
            client, tax, period, due, _status = line[2:].split(" · ")
            sections[current].add((client, tax, period, due.removeprefix("截止 ")))
    return sections


def _listed(page: str) -> set[tuple[str, ...]]:
    """``(client, tax, period, due)`` of each row of a filing list page."""
    return set(re.findall(r'<td><a href="/taxfilings/show/\d+">([^<]+)</a></td>\s*'
                          r'<td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>', page))


def test_the_desk_shows_the_same_filings_that_the_reminder_mails(app, login_as, world, smtp):
    """The accountant's mail (overdue, due within 3 days) and the manager's (overdue) hold exactly
    the rows of the desk tiles' lists; hand-counted: 甲 VAT due yesterday is overdue, 甲 城建税 due in
    2 days is due, 乙 VAT due 3 days ago is the manager's too."""
    result = app.test_cli_runner().invoke(args=["remind", "--date", TODAY.isoformat()])
    assert result.exit_code == 0, result.output
    sm = app.appbuilder.sm
    mails = {recipients[0]: message.get_body(("plain",)).get_content() for recipients, message in smtp.mails}
    accountant = _mail_sections(mails[sm.find_user(username="accountant").email])
    manager = _mail_sections(mails[sm.find_user(username="manager").email])
    yesterday, in_two, three_ago = (TODAY + timedelta(days=d) for d in (-1, 2, -3))
    assert accountant == {"overdue": {("甲公司", "增值税", MONTH, yesterday.isoformat())},
                          "due": {("甲公司", "城市维护建设税", MONTH, in_two.isoformat())}}
    assert manager == {"overdue": {("甲公司", "增值税", MONTH, yesterday.isoformat()),
                                   ("乙公司", "增值税", MONTH, three_ago.isoformat())}, "due": set()}

    desk = login_as("accountant")
    tiles = _tiles(desk.get("/").get_data(as_text=True))
    assert _listed(desk.get(tiles["my-overdue"][1]).get_data(as_text=True)) == accountant["overdue"]
    assert _listed(desk.get(tiles["my-due-3"][1]).get_data(as_text=True)) == accountant["due"]
    boss = login_as("manager")
    tiles = _tiles(boss.get("/").get_data(as_text=True))
    assert tiles["overdue-filings"][0] == len(manager["overdue"])
    assert _listed(boss.get(tiles["overdue-filings"][1]).get_data(as_text=True)) == manager["overdue"]
