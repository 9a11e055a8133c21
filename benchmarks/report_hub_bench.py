"""Does a long report query hold the server? ``/health`` while the year's reports run on the real server.

Builds one client's books with ``--lines`` posted voucher lines (default 1,000,000; the builder of
``ledger_bench.py``) in a new SQLite file (or the PostgreSQL scratch database of
``--database-url``, emptied first), starts ``run.py`` on it as ``make run`` does (default async
mode, demo data, ``DEMO_HOST_PORT=0``), signs in as the demo manager and, ``--repeat`` times each,
asks the API for the year's trial balance and general ledger of that client while another
thread calls ``GET /health`` every 20 ms. Prints, for each report, min / median / max of the
report's time and of the longest ``/health`` answer during it, the median ``/health`` answer,
and the load average before and after. It asserts nothing.

    .venv/bin/python benchmarks/report_hub_bench.py [--lines N] [--repeat 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests.servers import empty_postgres, free_port, sign_in  # noqa: E402 - after the path

PASSWORD = "Bench-Pass-2026xy"  # noqa: S105 - the demo users of a throw-away database
REPORTS = (("trial balance, 12 months", "/api/v1/reports/trial-balance?client_id={c}&from=2026-01&to=2026-12"),
           ("general ledger, 12 months", "/api/v1/reports/general-ledger?client_id={c}&from=2026-01&to=2026-12"))


def _build(url: str, folder: Path, lines: int) -> int:
    import ledger_bench

    from app import create_app
    from app.extensions import db
    from app.services.bootstrap import prepare_database

    app = create_app(ledger_bench._config(url, folder))
    with app.app_context():
        prepare_database(app)
        client_id, _ = ledger_bench.build_books(lines, 2026)
        db.session.remove()
        db.engine.dispose()
    return client_id


def _spread(values: list[float]) -> str:
    return " / ".join(f"{v * 1000:,.0f}" for v in (min(values), statistics.median(values), max(values)))


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", help="a PostgreSQL scratch database (emptied); default: a SQLite file")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="report-hub-"))
    url = args.database_url or f"sqlite:///{folder / 'books.db'}"
    if args.database_url:
        empty_postgres(url)
    began = time.perf_counter()
    client_id = _build(url, folder, args.lines)
    print(f"built {args.lines:,} posted lines in {time.perf_counter() - began:.1f} s ({url.split(':')[0]})")


    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SOCKETIO_MESSAGE_QUEUE", "ASYNC_MODE")}
    env.update(DATABASE_URL=url, INSTANCE_PATH=str(folder / "instance"), DEMO_HOST_PORT="0",
               DEMO_PASSWORD=PASSWORD, MFA_REQUIRED_ROLES="")
    base = f"http://127.0.0.1:{port}"
    with (folder / "server.log").open("w") as log:
        server = subprocess.Popen([sys.executable, "run.py", "--port", str(port)], cwd=ROOT,  # noqa: S603
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if requests.get(base + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit((folder / "server.log").read_text()[-3000:])
            time.sleep(0.1)
        cookie = sign_in(base, "manager", PASSWORD)
        print(f"load average before {_load()}; {args.repeat} runs of each after one warm-up; milliseconds")
        for name, path in REPORTS:
            took, worst, typical = [], [], []
            for run in range(args.repeat + 1):
                done, waits = threading.Event(), []

                def poll(done: threading.Event = done, waits: list = waits) -> None:
                    while not done.is_set():
                        start = time.perf_counter()
                        requests.get(base + "/health", timeout=60)
                        waits.append(time.perf_counter() - start)
                        time.sleep(0.02)

                poller = threading.Thread(target=poll)
                poller.start()
                start = time.perf_counter()
                answer = requests.get(base + path.format(c=client_id), headers={"Cookie": cookie}, timeout=300)
                elapsed = time.perf_counter() - start
                done.set()
                poller.join()
                if answer.status_code != 200:
                    raise SystemExit(f"{name}: {answer.status_code} {answer.text[:300]}")
                if run:  # the first run warms the caches
                    took.append(elapsed)
                    worst.append(max(waits))
                    typical.append(statistics.median(waits))
            print(f"{name:28s} report {_spread(took)}; /health during it: longest {_spread(worst)}, "
                  f"median {statistics.median(typical) * 1000:.0f}")
        print(f"load average after {_load()}")
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
