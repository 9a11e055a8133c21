"""Browser tests: the real server (``run.py`` with demo data) driven by Playwright and Debian's Chromium.

The server is the run's shared one (``tests.servers.demo_server``): ``run.py`` in a subprocess on
a free port, with a temp instance folder and a known ``DEMO_PASSWORD``, on the same kind of database
as the rest of the run: a SQLite file in the temp folder, or, when ``TEST_DATABASE_URL`` names
PostgreSQL, a database of its own beside that one (``<name>_e2e``), because the unit tests' fixture
resets every table of the test database after each test. ``TEST_REDIS_URL``, when set, gives the
server its ``REDIS_URL`` (``tests.servers.server_redis_url``). Tests serve their own host pages
(the demo host page also runs).

Chromium is ``/usr/bin/chromium`` (``scripts/setup.sh --test`` installs it); nothing is downloaded.
Without it (or without the playwright package) the tests are skipped with a message, unless ``CI``
is set: then that is a failure. The server runs in the default async mode, as ``make run`` starts it.

Fixtures: ``live_server``, ``browser``, ``sign_in(username)``, ``open_page(username)`` (several
users in one test, e.g. an agent and a visitor), ``page`` (the accountant) and ``watch``: the page
errors, console errors and CSP violations of every tab the test opened, listed by ``problems()``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers import DemoServer

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Every document logs its CSP violations, so a blocked script or style shows up as a console error.
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " blocked " + (event.blockedURI || "inline")
    + " at " + event.sourceFile + ":" + event.lineNumber);
});
"""


OPEN_CONTEXTS = pytest.StashKey[list]()
WIDGET_STATE = """() => {
  const host = document.querySelector("#bookkeeping-desk-chat");
  const root = host && (host.shadowRoot || host);
  if (!root) return null;
  const shown = (selector) => { const el = root.querySelector(selector); return el ? !el.closest("[hidden]") : null; };
  const status = root.querySelector(".status");
  return {panel: shown(".panel"), compose: shown(".compose"), offline_form: shown(".offline-form"),
          status: status ? status.textContent : null, registry: window.__bookkeepingDeskWidgets || null};
}"""


def _ci() -> bool:
    return os.environ.get("CI", "") not in ("", "0", "false", "False", "FALSE", "no")


def _unavailable(reason: str) -> None:
    if _ci():
        pytest.fail(f"CI is set and {reason}: run scripts/setup.sh --test", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason} (scripts/setup.sh --test installs it)")


def _require_browser() -> None:
    """Skip (or, under CI, fail) before anything starts when Chromium or playwright is missing."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the real server in Chromium (tests/e2e)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """A failed browser test's report also shows what the desk and the tabs were doing: the end of
    the server's log, the agents' presence as stored, and the state of each tab's chat widget."""
    report = yield
    if report.when != "call" or not report.failed:
        return report
    server = item.funcargs.get("live_server") if hasattr(item, "funcargs") else None
    if server is not None:
        try:
            lines = server.log.read_text(errors="replace").splitlines()[-40:]
            report.sections.append(("desk server log (last 40 lines)", "\n".join(lines)))
            from sqlalchemy import text

            with server.engine.connect() as conn:
                agents = conn.execute(text(
                    "SELECT u.username, a.status, a.last_seen_at, a.max_chats FROM chat_agent a "
                    "JOIN ab_user u ON u.id = a.user_id ORDER BY u.username")).all()
            from datetime import UTC, datetime

            stored = [f"now (UTC): {datetime.now(UTC):%Y-%m-%d %H:%M:%S}", *map(str, agents)]
            report.sections.append(("chat agents as stored", "\n".join(stored)))
        except Exception as exc:  # noqa: BLE001 - a diagnostic must not hide the failure
            report.sections.append(("desk server state", f"unavailable: {exc!r}"))
    states = []
    for context in item.stash.get(OPEN_CONTEXTS, []):
        for tab in context.pages:
            try:
                states.append(f"{tab.url}: {tab.evaluate(WIDGET_STATE)}")
            except Exception as exc:  # noqa: BLE001
                states.append(f"{tab.url}: unavailable ({exc!r})")
    if states:
        report.sections.append(("chat widget state of each tab", "\n".join(states)))
    return report


@pytest.fixture(autouse=True)
def _fresh_database() -> Iterator[None]:
    """The browser tests do not touch the unit tests' database (overrides the reset in tests/conftest.py)."""
    yield


LiveServer = DemoServer  # url, password, database_url, log, engine, scalar(): what the browser tests use


@pytest.fixture(scope="session")
def live_server(demo_server: DemoServer) -> DemoServer:
    """The shared ``run.py`` on demo data (``tests.servers.demo_server``), once Chromium is there."""
    _require_browser()
    return demo_server


@pytest.fixture
def no_chat_left_open(live_server: LiveServer) -> None:
    """The test starts with no open chat on the shared server. A chat an earlier test left open
    counts against agent1's limit, and one left offered to agent1 times out in a later test,
    which (as the desk's rule for a missed offer) sets agent1 away: the widget then shows the
    leave-a-message form instead of the chat."""
    from sqlalchemy import text

    with live_server.engine.begin() as conn:
        conn.execute(text("UPDATE chat_conversation SET status = 'closed', closed_at = CURRENT_TIMESTAMP, "
                          "closed_by = 'system', offer_expires_at = NULL "
                          "WHERE status IN ('queued', 'offered', 'active')"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, launched once per session."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def sign_in(browser: Any, live_server: LiveServer) -> Callable[[str], dict]:
    """``sign_in(username)``: the cookies of that demo user, signed in once per session through the
    login form (logins are rate limited). For users without two-factor enrolment: accountant,
    reviewer, agent1, agent2 (Admin and Manager are sent to enrol first)."""
    states: dict[str, dict] = {}

    def _state(username: str) -> dict:
        if username not in states:
            context = browser.new_context()
            tab = context.new_page()
            tab.goto(f"{live_server.url}/login/")
            tab.fill("input[name=username]", username)
            tab.fill("input[name=password]", live_server.password)
            with tab.expect_navigation():
                tab.click("form [type=submit]")
            assert "/login" not in tab.url, tab.content()[:2000]
            states[username] = context.storage_state()
            context.close()
        return states[username]

    return _state


@dataclass
class BrowserWatch:
    """What went wrong in the browser while a test ran: uncaught errors, console errors, CSP violations."""

    messages: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("pageerror", lambda error: self.messages.append(f"page error: {error}"))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        self.messages.append(f"console error: {message.text} ({where})")

    def problems(self) -> list[str]:
        return list(self.messages)


@pytest.fixture
def watch() -> BrowserWatch:
    return BrowserWatch()


@pytest.fixture
def open_page(browser: Any, live_server: LiveServer, sign_in: Callable[[str], dict],
              watch: BrowserWatch, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``open_page("reviewer")`` (``None``: signed out): a tab of its own browser context, in the
    default UI language, watched for errors; closed after the test."""
    contexts: list[Any] = []
    request.node.stash[OPEN_CONTEXTS] = contexts

    def _open(username: str | None = "accountant") -> Any:
        context = browser.new_context(storage_state=sign_in(username) if username else None,
                                      base_url=live_server.url, locale="zh-CN",
                                      viewport={"width": 1280, "height": 800})
        contexts.append(context)
        context.set_default_timeout(10_000)
        context.add_init_script(CSP_WATCH)
        tab = context.new_page()
        watch.attach(tab)
        return tab

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page: Callable[..., Any]) -> Any:
    """A tab signed in as ``accountant``."""
    return open_page("accountant")
