"""The voucher entry form (录入凭证) in Chromium: rows, running totals, the balance indicator,
the memo copied down, and saving through the real server.

The demo accountant (李会计) enters vouchers for the demo client 上海明远商贸有限公司, whose books
are open for this month. The UI is the default, Simplified Chinese; expected texts come from the
project's own catalog, so they are what the user reads.
"""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale
from babel.support import Translations
from sqlalchemy import func, select

from app.models.crm import Client
from app.models.ledger import Voucher, VoucherLine, VoucherWord

from .conftest import ROOT, BrowserWatch, LiveServer

CLIENT = "上海明远商贸有限公司"
OFFICE = "560202 办公费"
CASH = "1001 库存现金"
BANK = "100201 工商银行"
# Where the screenshot of the filled-in form goes: $E2E_SCREENSHOT_DIR when set, else the test's tmp_path.
SCREENSHOT_DIR = os.environ.get("E2E_SCREENSHOT_DIR")
CATALOG = Translations.load(str(ROOT / "translations"), [Locale.parse("zh_CN")])


def _(msgid: str, **values: Any) -> str:
    text = CATALOG.gettext(msgid)
    return text % values if values else text


def open_form(page: Any) -> None:
    """New voucher → pick the client → the entry form."""
    page.goto("/ledger/vouchers/add")
    page.select_option("#client_id", label=CLIENT)
    with page.expect_navigation():
        page.click("#pick-client [type=submit]")
    assert page.locator("#voucher-client").inner_text() == CLIENT


def rows(page: Any) -> Any:
    return page.locator("#voucher-lines tbody tr.voucher-line")


def fill_row(page: Any, index: int, account: str = "", debit: str = "", credit: str = "", memo: str = "") -> None:
    row = rows(page).nth(index)
    if memo:
        row.locator(".line-memo").fill(memo)
    row.locator(".line-account").fill(account)
    row.locator(".line-debit").fill(debit)
    row.locator(".line-credit").fill(credit)


def row_values(page: Any) -> list[tuple[str, str, str, str]]:
    """(memo, account, debit, credit) of every row, as the inputs hold them."""
    return [tuple(row.locator(sel).input_value() for sel in (".line-memo", ".line-account", ".line-debit",
                                                            ".line-credit"))
            for row in rows(page).all()]


def totals(page: Any) -> tuple[str, str, str, str]:
    """(debit total, credit total, indicator class, indicator text) as shown under the rows."""
    indicator = page.locator("#balance-indicator")
    return (page.locator("#sum-debit").inner_text(), page.locator("#sum-credit").inner_text(),
            indicator.get_attribute("class"), indicator.inner_text())


def voucher_count(server: LiveServer) -> int:
    return server.scalar(select(func.count()).select_from(Voucher))


def line_count(server: LiveServer) -> int:
    return server.scalar(select(func.count()).select_from(VoucherLine))


def next_number(server: LiveServer, period: int) -> int:
    latest = server.scalar(select(func.max(Voucher.number)).join(Client, Client.id == Voucher.client_id)
                           .where(Client.name == CLIENT, Voucher.period == period, Voucher.word == VoucherWord.ji))
    return (latest or 0) + 1


BALANCED = ("label label-success", _("Balanced"))


def unbalanced(difference: str) -> tuple[str, str]:
    return ("label label-danger", f"{_('Difference')} {difference}")


def test_form_opens_with_four_empty_rows_and_zero_totals(page: Any, watch: BrowserWatch) -> None:
    open_form(page)

    assert rows(page).count() == 4
    assert row_values(page) == [("", "", "", "")] * 4
    assert totals(page) == ("0.00", "0.00", *unbalanced("0.00"))
    assert page.locator("#word").input_value() == "记"
    assert watch.problems() == []


def test_add_row_copies_the_memo_down_and_remove_keeps_two_rows(page: Any, watch: BrowserWatch) -> None:
    open_form(page)
    fill_row(page, 3, memo="购买办公用品", account=OFFICE, debit="10")

    page.click("#line-add")

    assert rows(page).count() == 5
    assert row_values(page)[4] == ("购买办公用品", "", "", "")
    assert page.evaluate("document.activeElement.classList.contains('line-account')")
    assert page.evaluate("document.activeElement.closest('tr') === document.querySelectorAll('tr.voucher-line')[4]")

    # Removing rows down to two; the last two are cleared, not removed.
    for remaining in (4, 3, 2):
        rows(page).nth(0).locator(".line-remove").click()
        assert rows(page).count() == remaining
    assert row_values(page)[0] == ("购买办公用品", OFFICE, "10", "")
    assert totals(page)[:2] == ("10.00", "0.00")
    rows(page).nth(0).locator(".line-remove").click()
    assert rows(page).count() == 2
    assert row_values(page) == [("", "", "", ""), ("购买办公用品", "", "", "")]
    assert totals(page)[:2] == ("0.00", "0.00")
    assert watch.problems() == []


def test_typing_amounts_updates_totals_and_the_balance_indicator(page: Any, watch: BrowserWatch) -> None:
    open_form(page)

    fill_row(page, 0, account=OFFICE, debit="1,000.50")
    assert totals(page) == ("1000.50", "0.00", *unbalanced("1000.50"))

    fill_row(page, 1, account=CASH, credit="1000.5")
    assert totals(page) == ("1000.50", "1000.50", *BALANCED)

    rows(page).nth(1).locator(".line-credit").fill("1200")
    assert totals(page) == ("1000.50", "1200.00", *unbalanced("-199.50"))

    # An amount the server would refuse is flagged on its cell and left out of the totals.
    debit_cell = rows(page).nth(2).locator("td").nth(2)
    for refused in ("12.345", "-200.50", "abc"):
        rows(page).nth(2).locator(".line-debit").fill(refused)
        assert "has-warning" in debit_cell.get_attribute("class"), refused
        assert totals(page)[:3] == ("1000.50", "1200.00", "label label-danger"), refused
    rows(page).nth(2).locator(".line-debit").fill("199.50")
    assert "has-warning" not in (debit_cell.get_attribute("class") or "")
    assert totals(page) == ("1200.00", "1200.00", *BALANCED)

    # Full-width digits from a Chinese input method count, as the server accepts them.
    rows(page).nth(3).locator(".line-credit").fill("１２.５０")
    assert "has-warning" not in (rows(page).nth(3).locator("td").nth(3).get_attribute("class") or "")
    assert totals(page) == ("1200.00", "1212.50", *unbalanced("-12.50"))
    assert watch.problems() == []


def test_memo_copies_down_from_the_summary_and_the_row_above(page: Any, watch: BrowserWatch) -> None:
    open_form(page)
    page.fill("#summary", "购买办公用品")

    rows(page).nth(0).locator(".line-memo").focus()
    rows(page).nth(1).locator(".line-memo").focus()
    rows(page).nth(1).locator(".line-memo").fill("现金支付")
    rows(page).nth(2).locator(".line-memo").focus()
    rows(page).nth(0).locator(".line-memo").focus()  # a memo already there is kept

    memos = [values[0] for values in row_values(page)]
    assert memos == ["购买办公用品", "现金支付", "现金支付", ""]
    assert watch.problems() == []


def test_typing_in_a_copied_memo_replaces_it_and_tab_keeps_it(page: Any, watch: BrowserWatch) -> None:
    open_form(page)
    page.fill("#summary", "购买办公用品")

    rows(page).nth(0).locator(".line-memo").click()
    page.keyboard.type("报销差旅费")
    rows(page).nth(0).locator(".line-remove").focus()
    page.keyboard.press("Tab")  # into the second row's memo: the memo above is copied and kept
    page.keyboard.press("Tab")

    assert [values[0] for values in row_values(page)][:2] == ["报销差旅费", "报销差旅费"]
    assert page.evaluate("document.activeElement.classList.contains('line-account')")
    assert watch.problems() == []


def test_rows_holding_only_a_copied_memo_are_left_out(page: Any, live_server: LiveServer,
                                                       watch: BrowserWatch) -> None:
    """Adding a row, or tabbing through an unused row, copies a memo into it; saving skips such rows."""
    vouchers, lines = voucher_count(live_server), line_count(live_server)
    open_form(page)
    page.fill("#date", date.today().isoformat())
    page.fill("#summary", "支付快递费")
    for index in range(4):  # Tab-like visits: each memo copies the one above
        rows(page).nth(index).locator(".line-memo").focus()
    fill_row(page, 0, account=OFFICE, debit="45")
    fill_row(page, 1, account=CASH, credit="45")
    page.click("#line-add")
    assert [values[0] for values in row_values(page)] == ["支付快递费"] * 5

    with page.expect_navigation():
        page.click("#voucher-form button[name=next][value=show]")

    assert "/ledger/vouchers/show/" in page.url, page.locator(".help-block, .alert").all_inner_texts()
    shown = [row.locator("td").all_inner_texts() for row in page.locator("#voucher-lines tbody tr").all()]
    assert shown == [["1", "支付快递费", OFFICE, "45.00", ""], ["2", "支付快递费", CASH, "", "45.00"]]
    assert (voucher_count(live_server), line_count(live_server)) == (vouchers + 1, lines + 2)
    assert watch.problems() == []


def test_unbalanced_voucher_shows_the_server_error_and_keeps_the_rows(page: Any, live_server: LiveServer,
                                                                       watch: BrowserWatch) -> None:
    vouchers, lines = voucher_count(live_server), line_count(live_server)
    open_form(page)
    page.fill("#date", date.today().isoformat())
    page.fill("#summary", "购买办公用品")
    fill_row(page, 0, account=OFFICE, debit="300.00", memo="购买办公用品")
    fill_row(page, 1, account=CASH, credit="250", memo="现金支付")

    with page.expect_navigation():
        page.click("#voucher-form button[name=next][value=show]")

    assert page.locator(".alert-danger", has_text=_("The voucher was not saved.")).count() == 1
    message = _("Debits (%(debit)s) and credits (%(credit)s) do not balance; the difference is %(diff)s.",
                debit="300.00", credit="250.00", diff="50.00")
    assert page.locator("#errors-lines").inner_text() == message
    assert row_values(page) == [("购买办公用品", OFFICE, "300.00", ""), ("现金支付", CASH, "", "250"),
                                ("", "", "", ""), ("", "", "", "")]
    assert page.locator("#summary").input_value() == "购买办公用品"
    assert totals(page) == ("300.00", "250.00", *unbalanced("50.00"))
    assert (voucher_count(live_server), line_count(live_server)) == (vouchers, lines)
    assert watch.problems() == []


def test_debit_and_credit_on_one_row_is_refused_by_the_server(page: Any, live_server: LiveServer,
                                                               watch: BrowserWatch) -> None:
    """The form does not clear the other side of a row; the server names the row instead."""
    vouchers = voucher_count(live_server)
    open_form(page)
    page.fill("#date", date.today().isoformat())
    page.fill("#summary", "购买办公用品")
    fill_row(page, 0, account=OFFICE, debit="80", credit="80")
    fill_row(page, 1, account=CASH, credit="80")
    assert totals(page)[:2] == ("80.00", "160.00")

    with page.expect_navigation():
        page.click("#voucher-form button[name=next][value=show]")

    first = rows(page).nth(0)
    assert first.locator(".help-block").all_inner_texts() == [_("A line has a debit or a credit, not both.")]
    assert "has-error" in first.locator("td").nth(3).get_attribute("class")
    assert row_values(page)[:2] == [("", OFFICE, "80", "80"), ("", CASH, "", "80")]
    assert rows(page).nth(1).locator(".help-block").count() == 0
    assert voucher_count(live_server) == vouchers
    assert watch.problems() == []


def test_balanced_voucher_is_saved_and_shown(page: Any, live_server: LiveServer, watch: BrowserWatch,
                                             tmp_path: Path) -> None:
    today = date.today()
    number = next_number(live_server, today.year * 100 + today.month)
    vouchers = voucher_count(live_server)
    open_form(page)
    page.fill("#date", today.isoformat())
    page.fill("#summary", "购买办公用品")
    page.fill("#attachments", "2")
    rows(page).nth(0).locator(".line-memo").focus()  # the summary is copied into the first memo
    fill_row(page, 0, account=OFFICE, debit="1,280.40")
    fill_row(page, 1, account=CASH, credit="280.40", memo="现金支付")
    fill_row(page, 2, account=BANK, credit="１０００")
    assert totals(page) == ("1280.40", "1280.40", *BALANCED)
    page.screenshot(path=str(Path(SCREENSHOT_DIR or tmp_path) / "voucher_form.png"), full_page=True)

    with page.expect_navigation():
        page.click("#voucher-form button[name=next][value=show]")

    label = f"记-{number}"
    assert "/ledger/vouchers/show/" in page.url
    assert page.locator("#voucher-label").inner_text() == label
    period = f"{today.year:04d}-{today.month:02d}"
    assert page.locator(".alert-success").inner_text().strip().endswith(
        _("Voucher %(period)s %(label)s saved.", period=period, label=label))
    shown = [row.locator("td").all_inner_texts() for row in page.locator("#voucher-lines tbody tr").all()]
    assert shown == [["1", "购买办公用品", OFFICE, "1280.40", ""], ["2", "现金支付", CASH, "", "280.40"],
                     ["3", "", BANK, "", "1000.00"]]
    assert page.locator("#total-debit").inner_text() == "1280.40"
    assert page.locator("#total-credit").inner_text() == "1280.40"
    assert voucher_count(live_server) == vouchers + 1
    total = live_server.scalar(select(Voucher.total).where(Voucher.id == int(page.url.rstrip("/").rsplit("/", 1)[1])))
    assert Decimal(total) == Decimal("1280.40")

    # Editing the draft: the form opens with its lines and the totals already added up.
    with page.expect_navigation():
        page.click(f"#voucher-actions a:has-text('{_('Edit')}')")
    assert row_values(page) == [("购买办公用品", OFFICE, "1280.40", ""), ("现金支付", CASH, "", "280.40"),
                                ("", BANK, "", "1000.00"), ("", "", "", "")]
    assert totals(page) == ("1280.40", "1280.40", *BALANCED)
    assert watch.problems() == []


def test_the_watch_reports_script_errors_and_csp_violations(page: Any, watch: BrowserWatch) -> None:
    """The "no errors" assertions above mean something: the watch sees both kinds."""
    open_form(page)
    with page.expect_console_message(lambda message: "CSP violation" in message.text):
        page.evaluate("""() => {
            const script = document.createElement("script");
            script.textContent = "window.inlineRan = true;";
            document.body.appendChild(script);
        }""")
    with page.expect_event("pageerror"):
        page.evaluate("() => { setTimeout(() => { throw new Error('deliberate failure'); }, 0); }")

    assert page.evaluate("window.inlineRan === undefined")
    problems = watch.problems()
    assert any("CSP violation: script-src" in p for p in problems), problems
    assert any("page error" in p and "deliberate failure" in p for p in problems), problems
