"""The work board (月度工作台) and the desk in Chromium, on the demo data: the seven steps in order
as column headings, a row per client of the demo accountant, the documents-received tick, and
no page error. A screenshot of the board goes to $E2E_SCREENSHOT_DIR when set."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from babel import Locale
from babel.support import Translations

from .conftest import ROOT, BrowserWatch

CATALOG = Translations.load(str(ROOT / "translations"), [Locale.parse("zh_CN")])
STEPS = ["资料收齐", "记账", "审核", "结账", "报税", "缴款", "收费"]


def test_the_board_shows_the_steps_in_order_and_ticks_documents(page: Any, watch: BrowserWatch, tmp_path) -> None:  # noqa: ANN001
    page.goto("/workboard/")
    headings = page.locator("#work-board thead th").all_inner_texts()
    assert headings[2:] == STEPS
    rows = page.locator("#work-board tbody tr")
    assert rows.count() >= 1
    first = rows.first.locator('td[data-step="documents"]')
    state = first.get_attribute("data-state")
    first.locator("button").click()
    page.wait_for_load_state()
    after = page.locator("#work-board tbody tr").first.locator('td[data-step="documents"]')
    assert after.get_attribute("data-state") != state  # ticked, or unticked when it was
    shots = Path(os.environ.get("E2E_SCREENSHOT_DIR") or tmp_path)
    page.screenshot(path=str(shots / "work_board.png"), full_page=True)
    page.goto("/")
    assert page.locator("#tile-my-board").count() == 1
    assert watch.problems() == []
