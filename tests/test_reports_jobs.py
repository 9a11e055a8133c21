"""Large documents render as background jobs: 202 with a job URL, progress, a download link,
chunks rendered apart and merged with the page numbers of the whole document.

Locally the chunks go to a process pool; with ``TEST_REDIS_URL`` they go to RQ, and the test
runs an RQ worker in burst mode to process them.
"""

from __future__ import annotations

import io
import time

import pytest
from pypdf import PdfReader

from reports import jobs
from tests import test_ledger_reports as ledger_books
from tests import test_reports_pdf as pdf_tests
from tests.test_reports_pdf import assert_numbered, plain, url

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
    assert state["pages"] == state["pages_done"] >= 2
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
