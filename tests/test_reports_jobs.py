"""Large documents render as background jobs: 202 with a job URL, progress, a download link,
chunks rendered apart and merged with the page numbers of the whole document.

Locally the chunks go to a process pool; with ``TEST_REDIS_URL`` they go to RQ, and the test
runs an RQ worker in burst mode to process them.
"""

from __future__ import annotations

import io
import re
import time

import pytest
from pypdf import PdfReader

from app.services import books as books_svc
from reports import jobs
from tests import test_ledger_reports as ledger_books
from tests import test_reports_pdf as pdf_tests
from tests.factories import make_books, make_client, make_voucher
from tests.test_reports_pdf import assert_numbered, page_labels, plain, url

# fixtures shared with the other report tests
book, checker, maker = ledger_books.book, ledger_books.checker, ledger_books.maker
manager, report_store = pdf_tests.manager, pdf_tests.report_store


@pytest.fixture(scope="module", autouse=True)
def _pool_stops():
    """The local worker processes start once for this module and stop after it."""
    yield
    jobs.shutdown_pool()


@pytest.fixture
def small_jobs(app):
    """Documents over 3 rows render in the background, 1 row a chunk (the detail ledger, whose
    ruled lines are cheaper than table rows, takes ``LINE_CHUNK_FACTOR`` = 4 rows a chunk)."""
    app.config.update(REPORTS_SYNC_MAX_ROWS=3, REPORTS_CHUNK_ROWS=1)


def _run_workers(app) -> None:
    if app.config.get("REDIS_URL"):
        from rq import Queue, SimpleWorker

        connection = app.extensions["reports_store"].redis
        SimpleWorker([Queue(jobs.QUEUE, connection=connection)], connection=connection).work(burst=True)


def _wait(client, job_url: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        state = client.get(job_url).json
        assert state["status"] in ("queued", "running", "done"), state
        if state["status"] == "done" or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


LEDGER = dict(account_code="1001", **{"from": "2026-01", "to": "2026-02"})


def test_a_large_ledger_renders_in_chunks_with_progress_and_right_page_numbers(app, book, manager, small_jobs):
    query = f"client_id={book.client_id}&account_code=1001&from=2026-01&to=2026-02"
    data = manager.get(f"/api/v1/reports/ledger?{query}").json
    response = manager.get(url("detail-ledger", client_id=book.client_id, **LEDGER),
                           headers={"Accept": "application/json"})
    assert response.status_code == 202
    job_url = response.json["job_url"]
    assert response.headers["Location"].endswith(job_url)
    first = manager.get(job_url).json
    assert first["chunks_total"] == 2 and first["status"] in ("queued", "running", "done")  # 7 rows, 4 a chunk
    _run_workers(app)
    state = _wait(manager, job_url)
    assert state["status"] == "done" and state["progress"] == 1.0 and state["chunks_done"] == 2
    assert state["pages"] == state["pages_done"] == state["pages_total"] >= 2  # pages known ahead
    pdf = manager.get(state["download_url"])
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(pdf.data))
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) == state["pages"]
    assert_numbered(app, pages)  # "第 i 页 / 共 n 页" over the whole merged document
    text = plain(" ".join(pages))
    for row in data["rows"]:
        assert row["balance"] in text
    assert "报表测试有限公司" in reader.metadata.title and reader.metadata.author == "manager"


def test_a_browser_gets_a_progress_page_and_the_job_is_its_owners_only(app, book, manager, login_as,
                                                                        small_jobs):
    response = manager.get(url("detail-ledger", client_id=book.client_id, **LEDGER),
                           headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 202 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    job_url = response.headers["Location"]
    assert 'role="progressbar"' in page and job_url.split("/reports/")[-1] in page
    assert "已完成 {n} / {total} 页" in page  # pages done of the planned total, in zh_CN
    reviewer = login_as("reviewer")
    assert reviewer.get(job_url).status_code == 404
    assert reviewer.get(job_url + "/file").status_code == 404
    assert manager.get("/reports/jobs/not-a-job").status_code == 404
    _run_workers(app)
    _wait(manager, job_url)


def test_a_closed_period_job_result_is_cached_for_the_next_download(app, book, manager, small_jobs):
    response = manager.get(url("detail-ledger", client_id=book.client_id, **LEDGER),
                           headers={"Accept": "application/json"})
    _run_workers(app)
    state = _wait(manager, response.json["job_url"])
    again = manager.get(url("detail-ledger", client_id=book.client_id, **LEDGER))
    assert again.status_code == 200 and again.headers["X-Report-Cache"] == "hit"
    assert again.data == manager.get(state["download_url"]).data


def test_merged_chunks_of_different_lengths_are_numbered_as_one_document():
    from reports import pdf

    style = pdf.PageStyle(page_label="第 {page} 页 / 共 {pages} 页", metadata={"Title": "合并测试"})
    long = "".join(f"<p style='break-after: page'>甲 {i}</p>" for i in range(3))
    chunks = [pdf.html_to_pdf(f"<html><body>{body}</body></html>", style, numbered=False)[0]
              for body in (long, "<p>乙 结尾</p>")]
    assert "第 1 页" not in PdfReader(io.BytesIO(chunks[0])).pages[0].extract_text()
    merged = PdfReader(io.BytesIO(pdf.merge_chunks(chunks, style)))
    texts = [page.extract_text() for page in merged.pages]
    assert len(texts) == 4  # 3 pages, then 1
    for number, text in enumerate(texts, start=1):
        assert f"第 {number} 页 / 共 4 页" in text
    assert "甲 0" in texts[0] and "甲 2" in texts[2] and "乙 结尾" in texts[3]
    assert merged.metadata.title == "合并测试"


def test_a_chunk_off_its_page_plan_is_numbered_again_from_the_merge():
    """Chunks that print their own numbers from a plan: joined as they are when they keep to
    it; when one lays out more pages than planned, no wrong number survives the merge."""
    from reports import pdf

    style = pdf.PageStyle(page_label="第 {page} 页 / 共 {pages} 页", metadata={"Title": "计划测试"})
    htmls = [f"<html><body>{body}</body></html>" for body in (
        "".join(f"<p style='break-after: page'>甲 {i}</p>" for i in range(2)) + "<p>甲 2</p>", "<p>乙 结尾</p>")]

    def rendered(plan: list[int]) -> list[bytes]:
        return [pdf.html_to_pdf(html, style, numbering=numbering)[0]
                for html, numbering in zip(htmls, pdf.plan_numbering(plan), strict=True)]

    kept = PdfReader(io.BytesIO(pdf.merge_chunks(rendered([3, 1]), style, [3, 1], htmls)))
    assert [f"第 {n} 页 / 共 4 页" in page.extract_text() for n, page in enumerate(kept.pages, 1)] == [True] * 4
    assert kept.metadata.title == "计划测试"
    off = PdfReader(io.BytesIO(pdf.merge_chunks(rendered([2, 1]), style, [2, 1], htmls)))  # chunk 1 took 3 pages
    texts = [page.extract_text() for page in off.pages]
    assert len(texts) == 4 and "甲 2" in texts[2] and "乙 结尾" in texts[3]
    for number, text in enumerate(texts, start=1):
        assert text.count("第 ") == 1 and f"第 {number} 页 / 共 4 页" in text, text
    with pytest.raises(ValueError):
        pdf.merge_chunks(rendered([2, 1]), style, [2, 1])


def test_a_long_client_name_pushing_the_first_page_over_still_numbers_every_page(app, session, manager, maker,
                                                                                  checker, small_jobs):
    """A title block taller than the page plan allows (a very long client name wraps): the
    background ledger is still numbered "第 i 页 / 共 n 页" exactly once on every page."""
    app.config.update(REPORTS_CHUNK_ROWS=9)  # 36 ledger rows a chunk: the first page of chunk 1 is full
    accountant = app.appbuilder.sm.find_user(username="accountant")
    client = make_client(accountant=accountant, name="长" * 190 + "有限公司")
    book = make_books(client, start="2026-01")
    books_svc.set_opening_balance(session, book.id, "1001", "100000", None)
    books_svc.set_opening_balance(session, book.id, "3001", None, "100000")
    for n in range(70):
        make_voucher(book, maker, state="posted", reviewer_id=checker, day=f"2026-01-{1 + n % 28:02d}",
                     summary=f"现金收款{n}", amount=f"{100 + n}.00")
    response = manager.get(url("detail-ledger", client_id=book.client_id, account_code="1001",
                               **{"from": "2026-01", "to": "2026-01"}), headers={"Accept": "application/json"})
    assert response.status_code == 202
    _run_workers(app)
    state = _wait(manager, response.json["job_url"])
    assert state["status"] == "done" and state["chunks_total"] == 2
    assert state["pages_total"] < state["pages"]  # planned before rendering; the title block took more
    reader = PdfReader(io.BytesIO(manager.get(state["download_url"]).data))
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) == state["pages"]
    labels = page_labels(app, len(pages))
    any_label = re.compile(r"\d+".join(re.escape(part) for part in re.split(r"\d+", labels[0])))
    for text, label in zip(pages, labels, strict=True):
        assert any_label.findall(text) == [label]  # the right number, and no other
    assert "现金收款0" in plain(pages[0]) and "现金收款69" in plain(" ".join(pages))
