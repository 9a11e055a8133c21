"""The browser tests' own rule: without Chromium they skip on a workstation and fail under CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import conftest as e2e


@pytest.mark.parametrize("ci", ["", "0", "false"])
def test_missing_chromium_skips_with_a_message_outside_ci(monkeypatch, tmp_path, ci) -> None:
    monkeypatch.setattr(e2e, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.setenv("CI", ci)

    with pytest.raises(pytest.skip.Exception) as outcome:
        e2e._require_browser()

    assert str(outcome.value) == (f"browser tests skipped: {tmp_path / 'chromium'} is missing "
                                  "(scripts/setup.sh --test installs it)")


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_chromium_fails_under_ci(monkeypatch, tmp_path, ci) -> None:
    monkeypatch.setattr(e2e, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.setenv("CI", ci)

    with pytest.raises(pytest.fail.Exception) as outcome:
        e2e._require_browser()

    assert str(outcome.value) == f"CI is set and {tmp_path / 'chromium'} is missing: run scripts/setup.sh --test"


def test_present_chromium_and_playwright_let_the_tests_run(monkeypatch, tmp_path) -> None:
    pytest.importorskip("playwright.sync_api")
    browser = tmp_path / "chromium"
    browser.write_text("")
    monkeypatch.setattr(e2e, "CHROMIUM", Path(browser))
    monkeypatch.setenv("CI", "true")

    assert e2e._require_browser() is None
