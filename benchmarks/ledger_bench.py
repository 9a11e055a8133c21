"""Speed of the books and statements over a large set of books, against the bare SQL GROUP BY.

Builds one client's books with ``--lines`` posted voucher lines (default 1,000,000; four lines a
voucher, spread over 24 months) by bulk inserts with SQL core, then times, in the same run:

* the bare SQL baseline: ``SELECT account_id, SUM(debit), SUM(credit) ... GROUP BY account_id``
  over the same lines;
* ``trial_balance`` over the last twelve months and ``balance_sheet`` of the last month (the goal is
  at most 1.5 times the baseline), and for information ``income_statement`` and ``general_ledger``;
* ``save_voucher`` (through the service, one voucher of four lines per call): p50 and p95.

SQLite in a temporary file by default; PostgreSQL with ``--database-url`` (use a scratch database:
the benchmark's rows stay in it). Prints its figures; it asserts nothing.

    .venv/bin/python benchmarks/ledger_bench.py [--lines N] [--database-url URL] [--repeat N] [--saves N]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models.crm import Client, TaxpayerType  # noqa: E402
from app.models.ledger import Account, Voucher, VoucherKind, VoucherLine, VoucherState, VoucherWord  # noqa: E402
from app.services import books, ledger_reports, vouchers  # noqa: E402
from app.services.accounting import next_period  # noqa: E402
from app.services.bootstrap import prepare_database  # noqa: E402
from app.services.demo import make_credit_code  # noqa: E402

START = 202501
MONTHS = 24
LAST = 202612
DEBIT_SIDE = ("100201", "100202", "112201", "112202", "1405", "1601", "5401", "5602", "5603", "22210101")
CREDIT_SIDE = ("5001", "5051", "2202", "2203", "22210102", "1602", "3001", "100201", "1405", "2241")
CHUNK = 20_000


def _config(url: str, folder: Path) -> dict:
    return {"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(folder / "instance"),
            "SECRET_KEY": "benchmark-secret-key-of-at-least-32-bytes", "ASYNC_MODE": "threading",
            "REDIS_URL": None, "SOCKETIO_MESSAGE_QUEUE": None, "RATELIMIT_STORAGE_URI": "memory://",
            "RATELIMIT_ENABLED": False, "UPLOAD_DIR": str(folder / "archives"), "WTF_CSRF_ENABLED": False}


def build_books(total_lines: int, seed: int) -> tuple[int, int]:
    """A client with books from 2025-01 and *total_lines* posted lines; returns (client id, book id)."""
    session = db.session
    tag = int(time.time() * 1000) % 10**9
    client = Client(name=f"基准测试公司{tag}", credit_code=make_credit_code(f"91310000{tag:09d}"),
                    taxpayer_type=TaxpayerType.general)
    session.add(client)
    session.commit()
    book = books.open_books(session, client.id, "2025-01")
    for parent, code, name in (("1002", "100201", "工商银行"), ("1002", "100202", "建设银行"),
                               ("1122", "112201", "客户A"), ("1122", "112202", "客户B")):
        books.add_sub_account(session, book.id, parent, code, name)
    books.set_opening_balance(session, book.id, "100201", debit="1000000")
    books.set_opening_balance(session, book.id, "3001", credit="1000000")
    ids = dict(session.execute(select(Account.code, Account.id).where(Account.book_id == book.id)).all())
    rng = random.Random(seed)
    voucher_id = (session.scalar(select(func.max(Voucher.id))) or 0) + 1
    line_id = (session.scalar(select(func.max(VoucherLine.id))) or 0) + 1
    per_month = -(-total_lines // 4 // MONTHS)
    voucher_rows: list[dict] = []
    line_rows: list[dict] = []
    made, period = 0, START
    conn = session.connection()

    def flush() -> None:
        if voucher_rows:
            conn.execute(insert(Voucher), voucher_rows)
            conn.execute(insert(VoucherLine), line_rows)
            voucher_rows.clear()
            line_rows.clear()

    while made < total_lines:
        for number in range(1, per_month + 1):
            if made >= total_lines:
                break
            a, b = rng.randint(2, 500_000), rng.randint(1, 500_000)
            amounts = [(rng.choice(DEBIT_SIDE), Decimal(a) / 100, 0), (rng.choice(DEBIT_SIDE), Decimal(b) / 100, 0),
                       (rng.choice(CREDIT_SIDE), 0, Decimal(a + b - a // 2) / 100),
                       (rng.choice(CREDIT_SIDE), 0, Decimal(a // 2) / 100)]
            day = date(period // 100, period % 100, 1 + number % 28)
            voucher_rows.append(dict(
                id=voucher_id, book_id=book.id, client_id=client.id, period=period, word=VoucherWord.ji,
                number=number, date=day, summary="基准凭证", attachments=0, total=Decimal(a + b) / 100,
                state=VoucherState.posted, kind=VoucherKind.normal))
            for line_no, (code, debit, credit) in enumerate(amounts, start=1):
                line_rows.append(dict(id=line_id, voucher_id=voucher_id, line_no=line_no, book_id=book.id,
                                      period=period, posted=True, carry_forward=False, account_id=ids[code],
                                      debit=debit, credit=credit))
                line_id += 1
            voucher_id += 1
            made += 4
            if len(line_rows) >= CHUNK:
                flush()
        period = next_period(period)
    flush()
    if db.engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
        for table in ("ledger_voucher", "ledger_voucher_line"):  # constant names, not input
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                              f"(SELECT max(id) FROM {table}))"))
    session.commit()
    with db.engine.connect() as analyze:
        analyze.execute(text("ANALYZE"))
        analyze.commit()
    return client.id, book.id


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    """Wall times of *repeat* runs of *call* in seconds, after one warm-up run."""
    call()
    runs = []
    for _ in range(repeat):
        db.session.expire_all()
        began = time.perf_counter()
        call()
        runs.append(time.perf_counter() - began)
    return runs


def spread(runs: list[float]) -> str:
    """min / median / max in milliseconds."""
    return " / ".join(f"{value * 1000:.1f}" for value in (min(runs), statistics.median(runs), max(runs)))


def baseline(book_id: int) -> Callable[[], object]:
    stmt = text("SELECT account_id, SUM(debit), SUM(credit) FROM ledger_voucher_line "
                "WHERE book_id = :book AND posted = :posted AND period <= :last GROUP BY account_id")
    return lambda: db.session.execute(stmt, {"book": book_id, "posted": True, "last": LAST}).all()


def save_p50(client_id: int, saves: int, maker_id: int | None) -> tuple[float, float]:
    session = db.session
    runs = []
    for n in range(saves):
        data = {"date": "2027-01-15", "word": "记", "summary": f"基准保存 {n}",
                "lines": [{"account_code": "5602", "debit": "10.00"}, {"account_code": "5401", "debit": "5.00"},
                          {"account_code": "100201", "credit": "12.00"},
                          {"account_code": "22210102", "credit": "3.00"}]}
        began = time.perf_counter()
        vouchers.save_voucher(session, client_id, data, maker_id)
        runs.append(time.perf_counter() - began)
    runs.sort()
    return statistics.median(runs), runs[int(len(runs) * 0.95) - 1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    app = create_app(_config(url, folder))
    with app.app_context():
        prepare_database(app)
        print(f"database: {db.engine.dialect.name} {db.engine.dialect.server_version_info}")
        began = time.perf_counter()
        client_id, book_id = build_books(args.lines, args.seed)
        count = db.session.scalar(select(func.count()).select_from(VoucherLine).where(VoucherLine.book_id == book_id))
        print(f"built {count:,} posted lines in {time.perf_counter() - began:.1f} s")
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; min / median / max of "
              f"{args.repeat} runs")
        base_runs = timed(baseline(book_id), args.repeat)
        base = statistics.median(base_runs)
        print(f"{'bare SQL GROUP BY account':32s} {spread(base_runs)} ms")
        session = db.session
        for name, call in (
            ("trial_balance 2026-01..2026-12", lambda: ledger_reports.trial_balance(
                session, client_id, "2026-01", "2026-12")),
            ("balance_sheet 2026-12", lambda: ledger_reports.balance_sheet(session, client_id, "2026-12")),
            ("income_statement 2026-12", lambda: ledger_reports.income_statement(session, client_id, "2026-12")),
            ("general_ledger 2026-01..2026-12", lambda: ledger_reports.general_ledger(
                session, client_id, "2026-01", "2026-12")),
        ):
            runs = timed(call, args.repeat)
            print(f"{name:32s} {spread(runs)} ms  median {statistics.median(runs) / base:5.2f}x baseline")
        p50, p95 = save_p50(client_id, args.saves, None)
        print(f"{'save_voucher (4 lines)':32s} p50 {p50 * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms"
              f"  ({args.saves} saves)")
        print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        db.session.remove()
        db.engine.dispose()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
