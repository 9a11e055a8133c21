"""API writes made with the browser session, in Chromium against the real server.

A page on another port of the same host is the same *site* for the browser: it sends the
SameSite=Lax session cookie with a form that page posts to the API. The server refuses such a
write (403) and nothing changes. The application's own page (the Swagger UI) sends the page's
CSRF token with its calls, so its writes go through.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from app.models.ledger import Voucher, VoucherState

from .conftest import BrowserWatch, LiveServer


def _draft_voucher(live_server: LiveServer) -> int:
    """A draft voucher of the demo books that the reviewer may review (someone else made it)."""
    voucher_id = live_server.scalar(select(Voucher.id).where(Voucher.state == VoucherState.draft)
                                    .order_by(Voucher.id).limit(1))
    assert voucher_id, "the demo data has no draft voucher"
    return voucher_id


def test_a_form_from_another_port_of_the_host_cannot_review_a_voucher(open_page, live_server: LiveServer):
    voucher_id = _draft_voucher(live_server)
    server = urlsplit(live_server.url)
    evil = f"http://{server.hostname}:{(server.port or 80) + 1}/evil.html"
    page = open_page("reviewer")
    page.route(evil, lambda route: route.fulfill(content_type="text/html", body=f"""<!doctype html>
        <form id="f" method="post" action="{live_server.url}/api/v1/voucher/{voucher_id}/review">
          <input name="x" value="1"></form>
        <script>document.getElementById("f").submit();</script>"""))
    with page.expect_response(f"{live_server.url}/api/v1/voucher/{voucher_id}/review") as answer:
        page.goto(evil)
    assert answer.value.status == 403
    assert live_server.scalar(select(Voucher.state).where(Voucher.id == voucher_id)) == VoucherState.draft


def test_the_api_docs_page_sends_the_csrf_token_with_its_calls(open_page, live_server: LiveServer,
                                                               watch: BrowserWatch):
    page: Any = open_page("reviewer")
    page.goto("/swagger/v1")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    statuses = page.evaluate("""async () => {
        const url = location.origin + "/api/v1/voucher/987654321/review";
        const bare = await fetch(url, {method: "POST", credentials: "same-origin"});
        const request = ui.getConfigs().requestInterceptor({url: url, headers: {}});
        const sent = await fetch(request.url, {method: "POST", credentials: "same-origin",
                                               headers: request.headers});
        return [bare.status, sent.status];
    }""")
    assert statuses == [403, 404]  # with the page's token the API answers the request itself
    assert [p for p in watch.problems() if "Failed to load resource" not in p] == []  # no CSP or script error
