"""Where PDFs are rendered when something is missing: Redis configured but down (rendered by the
local workers, with a warning), and no worker able to render (a clear 503)."""

from __future__ import annotations

import io
import logging
import os
import signal
import time

import pytest
from pypdf import PdfReader

from app import workers
from tests import test_ledger_reports as ledger_books
from tests.test_reports_pdf import url

book, checker, maker = ledger_books.book, ledger_books.checker, ledger_books.maker  # fixtures
LEDGER = dict(account_code="1001", **{"from": "2026-01", "to": "2026-02"})
ROWS = [["2026-03-05", "记", "1", "收到现金", "1001", "10.00", "", ""],
        ["2026-03-05", "记", "1", "收到现金", "5001", "", "10.00", ""]]


@pytest.fixture
def manager(login_as):
    return login_as("manager")


@pytest.fixture
def redis_down(app):
    """``REDIS_URL`` points at a port where nothing listens."""
    app.config["REDIS_URL"] = "redis://127.0.0.1:9/0"
    for name in ("reports_store", "reports_file_store"):
        app.extensions.pop(name, None)
    yield
    for name in ("reports_store", "reports_file_store"):
        app.extensions.pop(name, None)


def _wait(client, job_url: str) -> dict:
    deadline = time.monotonic() + 180
    while True:
        state = client.get(job_url).json
        if state["status"] in ("done", "failed") or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def test_with_redis_down_a_large_pdf_still_renders_in_the_local_workers(app, book, manager, redis_down, caplog,
                                                                         monkeypatch):
    app.config.update(REPORTS_SYNC_MAX_ROWS=3, REPORTS_CHUNK_ROWS=1)
    # Alembic's fileConfig (run by the test database's migrations) disables the loggers that
    # existed before it; the warning is what this test is about.
    monkeypatch.setattr(logging.getLogger("reports.jobs"), "disabled", False)
    with caplog.at_level(logging.WARNING, logger="reports.jobs"):
        response = manager.get(url("detail-ledger", client_id=book.client_id, **LEDGER),
                               headers={"Accept": "application/json"})
    assert response.status_code == 202
    assert any("Redis does not answer" in record.getMessage() for record in caplog.records)
    state = _wait(manager, response.json["job_url"])
    assert state["status"] == "done" and state["chunks_done"] == state["chunks_total"] == 2
    document = manager.get(state["download_url"])
    assert document.status_code == 200 and document.mimetype == "application/pdf"
    assert len(PdfReader(io.BytesIO(document.data)).pages) == state["pages"]


def test_with_redis_down_a_small_pdf_is_rendered_and_served(app, book, manager, redis_down):
    response = manager.get(url("trial-balance", client_id=book.client_id, period="2026-01"))
    assert response.status_code == 200 and response.data.startswith(b"%PDF")


def test_a_small_pdf_with_no_worker_able_to_render_is_a_503(app, book, manager, monkeypatch):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"
    broken = workers.Pool(1, task_seconds=30)

    def cannot_start(slot: int) -> None:
        raise OSError("cannot start")

    pid = broken.call("ping", queue_wait=120)
    monkeypatch.setattr(broken, "_spawn", cannot_start)
    monkeypatch.setattr(workers, "RESPAWN_PAUSE", 0.0)
    monkeypatch.setattr(workers, "_POOL", broken)
    os.kill(pid, signal.SIGKILL)
    try:
        deadline = time.monotonic() + 60
        while broken.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        response = manager.get(url("trial-balance", client_id=book.client_id, period="2026-01"))
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "10"
        assert response.json["errors"] == {"_": [
            "The PDF could not be made right now: the report workers are busy or stopped. Try again shortly."]}
    finally:
        broken.close()


def test_requests_waiting_for_a_worker_hold_no_database_connection(app, book, manager, monkeypatch, api_token):
    from app.extensions import db
    from app.services import voucher_import
    from reports import jobs
    from tests.test_voucher_import import csv_bytes

    held: dict[str, int] = {}
    render, read_rows = jobs.render, voucher_import.read_rows

    def render_noting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        held["pdf"] = db.engine.pool.checkedout()
        return render(*args, **kwargs)

    def read_rows_noting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        held["import"] = db.engine.pool.checkedout()
        return read_rows(*args, **kwargs)

    monkeypatch.setattr(jobs, "render", render_noting)
    monkeypatch.setattr(voucher_import, "read_rows", read_rows_noting)
    client_id, token = book.client_id, api_token("accountant")
    db.session.remove()  # the test's own session holds nothing either
    assert manager.get(url("trial-balance", client_id=client_id, period="2026-01")).status_code == 200
    upload = app.test_client().post("/api/v1/voucher/import", headers=token, content_type="multipart/form-data",
                                    data={"client_id": str(client_id), "file": (io.BytesIO(csv_bytes(ROWS)), "v.csv")})
    assert upload.status_code == 201, upload.json
    assert held == {"pdf": 0, "import": 0}
