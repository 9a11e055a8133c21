"""Speed of the PDF downloads against raw WeasyPrint and wkhtmltopdf on the same HTML.

Builds, in a temporary SQLite database (or ``--database-url``), one client with a statement of
account that fits one page and books whose account 1001 has ``--lines`` posted lines (default
2,000) over six months, all closed. Then times, in the same run:

* the one-page statement through ``GET /reports/statement.pdf`` (the whole request: the PDF is
  rendered by a local worker process while the request waits), and raw single-process
  WeasyPrint and wkhtmltopdf on the same HTML;
* the detail ledger of 1001 through ``GET /reports/detail-ledger.pdf`` — a background job whose
  chunks render in the local worker processes (``REPORTS_WORKERS``, default 3: background jobs
  take all but one) — from the request to the finished PDF, and raw single-process WeasyPrint
  and wkhtmltopdf on the whole document's HTML;
* the cached repeat of that ledger (a closed period): the whole request.

The detail ledger prints as ruled fixed-width lines (``reports/lines.py``), not as an HTML
table, and takes ``REPORTS_CHUNK_ROWS`` × ``LINE_CHUNK_FACTOR`` rows a chunk.

Goals: one page p50 ≤ 250 ms; the 2,000-line ledger ≤ 3× wkhtmltopdf; cached repeat ≤ 50 ms.
Prints its figures and the load average before and after; asserts nothing.

    .venv/bin/python benchmarks/pdf_bench.py [--lines N] [--repeat N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models.contracts import Contract, ContractStatus  # noqa: E402
from app.models.crm import Client, TaxpayerType  # noqa: E402
from app.models.ledger import Account, Voucher, VoucherKind, VoucherLine, VoucherState, VoucherWord  # noqa: E402
from app.services import books, periods  # noqa: E402
from app.services import contracts as contract_svc  # noqa: E402
from app.services.accounting import next_period  # noqa: E402
from app.services.bootstrap import prepare_database  # noqa: E402
from app.services.users import create_user  # noqa: E402
from reports import documents, jobs, pdf  # noqa: E402
from reports.render import render_html, split  # noqa: E402

PASSWORD = "Bench-Pass-2026xy"  # noqa: S105 - a throwaway user of a temporary database
MONTHS = 6
START = 202601


def _config(url: str, folder: Path) -> dict:
    return {"TESTING": True, "INSTANCE_PATH": str(folder / "instance"), "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench-secret-key-of-at-least-32-bytes-long", "WTF_CSRF_ENABLED": False,
            "ASYNC_MODE": "threading", "AUTH_RATE_LIMITED": False, "RATELIMIT_ENABLED": False,
            "MFA_REQUIRED_ROLES": [], "REDIS_URL": None, "SOCKETIO_MESSAGE_QUEUE": None,
            "RATELIMIT_STORAGE_URI": "memory://", "REPORTS_SYNC_MAX_ROWS": 400, "REPORTS_CHUNK_ROWS": 250}


def _credit_code(n: int) -> str:
    from tests.factories import credit_code

    return credit_code(n)


def build(lines: int) -> tuple[int, int]:
    """A client with a one-page statement (a contract, bills, a payment) and books whose 1001
    has *lines* posted lines over six closed months; returns (client id, manager user id)."""
    session = db.session
    tag = int(time.time()) % 10**6
    client = Client(name="基准测试有限公司", credit_code=_credit_code(tag), taxpayer_type=TaxpayerType.general)
    session.add(client)
    session.commit()
    contract = Contract(client_id=client.id, number=f"HT-B-{tag}", service_type="bookkeeping",
                        monthly_fee=Decimal("800.00"), billing_cycle="monthly", start_date=date(2026, 1, 1),
                        end_date=date(2026, 12, 31))
    contract_svc.validate_contract(contract)
    contract_svc.record_creation(contract)
    session.add(contract)
    session.commit()
    contract_svc.activate_contract(session, contract)
    contract_svc.bill_contract(session, contract, through=date(2026, 6, 1))
    contract_svc.record_payment(session, contract, "2400.00", date(2026, 3, 5), method="转账", reference="B-1")
    assert contract.status == ContractStatus.active
    book = books.open_books(session, client.id, "2026-01")
    books.set_opening_balance(session, book.id, "1001", debit="100000")
    books.set_opening_balance(session, book.id, "3001", credit="100000")
    ids = dict(session.execute(select(Account.code, Account.id).where(Account.book_id == book.id)).all())
    voucher_id = (session.scalar(select(func.max(Voucher.id))) or 0) + 1
    line_id = (session.scalar(select(func.max(VoucherLine.id))) or 0) + 1
    per_month = -(-lines // MONTHS)
    vouchers, entries, made, period = [], [], 0, START
    while made < lines:
        for number in range(1, per_month + 1):
            if made >= lines:
                break
            income = made % 3 != 0
            amount = Decimal(100 + made % 977) + Decimal(made % 100) / 100
            cash = (ids["1001"], amount, 0) if income else (ids["1001"], 0, amount)
            other = (ids["5001"], 0, amount) if income else (ids["5602"], amount, 0)
            day = date(period // 100, period % 100, 1 + number % 28)
            vouchers.append(dict(id=voucher_id, book_id=book.id, client_id=client.id, period=period,
                                 word=VoucherWord.ji, number=number, date=day,
                                 summary="销售收款" if income else "现金支付费用", attachments=1, total=amount,
                                 state=VoucherState.posted, kind=VoucherKind.normal))
            for line_no, (account_id, debit, credit) in enumerate((cash, other), start=1):
                entries.append(dict(id=line_id, voucher_id=voucher_id, line_no=line_no, book_id=book.id,
                                    period=period, posted=True, carry_forward=False, account_id=account_id,
                                    debit=debit, credit=credit))
                line_id += 1
            voucher_id += 1
            made += 1
        period = next_period(period)
    session.execute(insert(Voucher), vouchers)
    session.execute(insert(VoucherLine), entries)
    session.commit()
    month = START
    for _ in range(MONTHS):
        periods.close_period(session, client.id, month, None)
        month = next_period(month)
    return client.id, book.id


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds of each of *repeat* calls (after one warm-up call)."""
    call()
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def wkhtmltopdf(html: str, landscape: bool, folder: Path) -> Callable[[], object]:
    source = folder / ("wide.html" if landscape else "page.html")
    source.write_text(html, encoding="utf-8")
    command = ["wkhtmltopdf", "--quiet", "--encoding", "utf-8", "-s", "A4",
               *(["-O", "Landscape"] if landscape else []), str(source), str(folder / "out.pdf")]
    return lambda: subprocess.run(command, check=True, capture_output=True)  # noqa: S603


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="pdf-bench-"))
    try:
        app = create_app(_config(args.database_url or f"sqlite:///{folder / 'bench.db'}", folder))
        with app.app_context():
            prepare_database(app)
            create_user(app, "pdf-manager", PASSWORD, ["Manager"], first_name="基准")
            client_id, _book_id = build(args.lines)
            jobs.warm_pool()  # as run.py does at start: the workers are up before the first request
        web = app.test_client()
        assert web.post("/login/", data={"username": "pdf-manager", "password": PASSWORD}).status_code == 302
        statement_url = f"/reports/statement.pdf?client_id={client_id}&from=2026-01&to=2026-06"
        ledger_url = f"/reports/detail-ledger.pdf?client_id={client_id}&account_code=1001&from=2026-01&to=2026-06"
        has_wk = shutil.which("wkhtmltopdf") is not None
        rows = []
        load_before = os.getloadavg()

        # one-page statement: the whole request, then raw renderers on its HTML
        def statement() -> None:
            response = web.get(statement_url)
            assert response.status_code == 200 and pdf.page_count(response.data) == 1, response.status_code

        rows.append(("statement, 1 page: GET /reports/statement.pdf", timed(statement, args.repeat)))
        with app.test_request_context():
            doc = documents.statement(db.session, client_id, START, 202606, "基准")
            page_html, page_style = render_html(doc), doc.style()
            ledger = documents.detail_ledger(db.session, client_id, START, 202606, "基准", account_code="1001")
            ledger_html, ledger_style = render_html(ledger), ledger.style()
        rows.append(("statement, 1 page: raw WeasyPrint, one process",
                     timed(lambda: pdf.html_to_pdf(page_html, page_style), args.repeat)))
        rows.append(("statement, 1 page: the same HTML through a local worker",
                     timed(lambda: jobs.render(page_html, page_style), args.repeat)))
        if has_wk:
            rows.append(("statement, 1 page: wkhtmltopdf", timed(wkhtmltopdf(page_html, False, folder), args.repeat)))

        # the 2,000-line ledger: a background job in the local pool, from request to finished PDF
        def ledger_job() -> None:
            shutil.rmtree(folder / "instance" / "report_cache", ignore_errors=True)  # render, do not hit the cache
            response = web.get(ledger_url, headers={"Accept": "application/json"})
            assert response.status_code == 202, response.status_code
            while True:
                state = web.get(response.json["job_url"]).json
                if state["status"] == "done":
                    return
                assert state["status"] != "failed", state
                time.sleep(0.05)

        ledger_runs = max(1, args.repeat)
        with app.test_request_context():
            chunk_count = len(split(ledger, ledger.chunk_rows or documents.chunk_rows()).htmls)
        rows.append((f"detail ledger, {args.lines} lines: GET (job, {chunk_count} chunks merged)",
                     timed(ledger_job, ledger_runs)))
        pages = pdf.page_count(pdf.html_to_pdf(ledger_html, ledger_style)[0])
        rows.append((f"detail ledger, {args.lines} lines ({pages} pages): raw WeasyPrint, one process",
                     timed(lambda: pdf.html_to_pdf(ledger_html, ledger_style), ledger_runs)))
        if has_wk:
            rows.append((f"detail ledger, {args.lines} lines: wkhtmltopdf",
                         timed(wkhtmltopdf(ledger_html, True, folder), ledger_runs)))

        # the cached repeat (every month is closed)
        def cached() -> None:
            response = web.get(ledger_url)
            assert response.status_code == 200 and response.headers["X-Report-Cache"] == "hit"

        rows.append(("detail ledger, cached repeat: GET", timed(cached, args.repeat * 2)))
        jobs.shutdown_pool()
        print(f"{'measurement':<78} {'p50 ms':>9} {'min ms':>9} {'max ms':>9}")
        for name, times in rows:
            print(f"{name:<78} {statistics.median(times):>9.1f} {min(times):>9.1f} {max(times):>9.1f}")
        print(f"load average (1 min) before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
