"""Work a request does in the web server process itself (on the hub, under gevent or eventlet):
sign-in and the largest ledger report screens, against demo data.

Builds the demo data (``seed_demo``: users, clients, a year of books) in a temporary SQLite
database (or ``--database-url``), then times each request through the Flask test client, in one
process. On SQLite every statement blocks the process, so each figure is how long the server's
other users would wait behind that request (on PostgreSQL the database waits are cooperative and
only the Python part blocks). For the PDF downloads, the rendering itself is done by a worker
process (``benchmarks/pdf_bench.py``): their CPU column is what the request still costs the
server (the SQL, the templates, the hand-over).

Prints min / median / max milliseconds of ``--repeat`` runs after one warm-up, the median CPU
time of this process (what blocks the hub even on PostgreSQL) and the load average; asserts
nothing.

    .venv/bin/python benchmarks/hub_bench.py [--repeat N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models.ledger import LedgerBook, Voucher, VoucherLine  # noqa: E402
from app.services.bootstrap import prepare_database  # noqa: E402
from app.services.demo import seed_demo  # noqa: E402
from reports import jobs  # noqa: E402

PASSWORD = "Bench-Pass-2026xy"  # noqa: S105 - the demo users of a temporary database


def _config(url: str, folder: Path) -> dict:
    return {"INSTANCE_PATH": str(folder / "instance"), "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench-secret-key-of-at-least-32-bytes-long", "WTF_CSRF_ENABLED": False,
            "ASYNC_MODE": "threading", "AUTH_RATE_LIMITED": False, "RATELIMIT_ENABLED": False,
            "MFA_REQUIRED_ROLES": [], "REDIS_URL": None, "SOCKETIO_MESSAGE_QUEUE": None,
            "RATELIMIT_STORAGE_URI": "memory://", "DEMO_PASSWORD": PASSWORD, "DEMO_HOST_PORT": 0}


def timed(call: Callable[[], object], repeat: int) -> tuple[list[float], list[float]]:
    """Milliseconds of each of *repeat* calls (after one warm-up call): elapsed, and CPU time of
    this process (the part that blocks the hub even when the database waits cooperatively)."""
    call()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    try:
        app = create_app(_config(args.database_url or f"sqlite:///{folder / 'bench.db'}", folder))
        with app.app_context():
            prepare_database(app)
            seed_demo(app)
            client_id, lines = db.session.execute(
                select(Voucher.client_id, func.count(VoucherLine.id))
                .join(VoucherLine, VoucherLine.voucher_id == Voucher.id)
                .group_by(Voucher.client_id).order_by(func.count(VoucherLine.id).desc())).first()
            start = db.session.scalar(select(LedgerBook.start_period).where(LedgerBook.client_id == client_id))
        year, month = date.today().year, date.today().month
        first, last = f"{start // 100}-{start % 100:02d}", f"{year}-{month:02d}"
        web = app.test_client()

        def sign_in() -> None:  # a new browser each time: a signed-in one is only redirected
            response = app.test_client().post("/login/", data={"username": "manager", "password": PASSWORD})
            assert response.status_code == 302, response.status_code

        def page(url: str) -> Callable[[], None]:
            def get() -> None:
                response = web.get(url)
                assert response.status_code == 200, (url, response.status_code)
            return get

        rows = []
        load_before = os.getloadavg()
        rows.append(("sign-in: POST /login/ (scrypt password check)", timed(sign_in, args.repeat)))
        sign_in_for_pages = web.post("/login/", data={"username": "manager", "password": PASSWORD})
        assert sign_in_for_pages.status_code == 302
        query = f"client_id={client_id}&from={first}&to={last}"
        for name, url in (
                ("trial balance, the whole year", f"/ledger/reports/trial-balance?{query}"),
                ("general ledger, the whole year", f"/ledger/reports/general-ledger?{query}"),
                ("detail ledger 1001, the whole year", f"/ledger/reports/detail-ledger?{query}&account_code=1001"),
                ("detail ledger 1002 (with sub-accounts), the whole year",
                 f"/ledger/reports/detail-ledger?{query}&account_code=1002"),
                ("balance sheet", f"/ledger/reports/balance-sheet?client_id={client_id}&period={last}"),
                ("income statement", f"/ledger/reports/income-statement?client_id={client_id}&period={last}")):
            rows.append((f"{name}: GET", timed(page(url), args.repeat)))

        def pdf(url: str, status: int) -> Callable[[], None]:
            def get() -> None:
                response = web.get(url, headers={"Accept": "application/json"})
                assert response.status_code == status, (url, response.status_code)
            return get

        with app.app_context():
            jobs.warm_pool()
        rows.append(("trial balance PDF, the whole year: GET (rendered in a worker)",
                     timed(pdf(f"/reports/trial-balance.pdf?{query}", 200), args.repeat)))
        rows.append(("vouchers PDF, the whole year: GET until the 202 (chunks' HTML)",
                     timed(pdf(f"/reports/vouchers.pdf?{query}", 202), args.repeat)))
        print(f"demo books of client {client_id}: {lines} voucher lines, {first} to {last}")
        print(f"{'measurement':<64} {'p50 ms':>9} {'min ms':>9} {'max ms':>9} {'CPU p50':>9}")
        for name, (times, cpu) in rows:
            print(f"{name:<64} {statistics.median(times):>9.1f} {min(times):>9.1f} {max(times):>9.1f} "
                  f"{statistics.median(cpu):>9.1f}")
        print(f"load average (1 min) before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
        jobs.shutdown_pool()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
