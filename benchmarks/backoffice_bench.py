"""Back-office pages under several users at once: pages/s, p50 / p99 and SQL statements per page.

Starts the real server (``run.py`` in its default async mode, one process) on a free port with an
empty database in a temporary folder, so that it seeds the demo data; ``DEMO_HOST_PORT=0``,
``MFA_REQUIRED_ROLES`` empty (Admin and Manager sign in with a password alone) and a login rate
limit high enough for the benchmark's own sign-ins. Then, for each ``--users`` count (default
4 and 8), ``--runs`` times (default 5): that many users, each a thread with its own session
over loopback, signed in as admin, manager, accountant, reviewer (and, from the fifth user on,
again and as agent1), cycle through a page mix of their role for ``--seconds`` (default 20).
A run reports the pages answered per second (all users together), p50 and p99 of the time a
page took, the server process's CPU time per page (from ``/proc``: less sensitive than the
times to other programs on a shared machine), and any page that did not answer 200.

The SQL statements per page are counted in this process (a ``before_cursor_execute`` listener
on the engine, the Flask test client, the same database and code) for every page of the mix.

Prints the figures, min / median / max over the runs, and the load average before and after;
asserts nothing.

    .venv/bin/python benchmarks/backoffice_bench.py [--users 4 8] [--runs 5] [--seconds 20]
        [--database-url URL] [--redis-url URL] [--source DIR]

``--database-url`` must name an empty database (default: SQLite in the temporary folder);
``--source`` runs another checkout of the code (e.g. an export of an earlier commit) with the
same script.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Bench-Pass-2026xy"  # noqa: S105 - the demo users of a temporary database
ROLES = ["admin", "manager", "accountant", "reviewer", "accountant", "manager", "reviewer", "agent1"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(folder: Path, args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "SOCKETIO_MESSAGE_QUEUE", "ASYNC_MODE", "PORT", "HOST")}
    env.update(INSTANCE_PATH=str(folder / "instance"), DEMO_HOST_PORT="0", DEMO_PASSWORD=PASSWORD,
               MFA_REQUIRED_ROLES="", AUTH_RATE_LIMIT="1000 per minute", PYTHONUNBUFFERED="1",
               DATABASE_URL=args.database_url or f"sqlite:///{folder / 'bench.db'}")
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    return env


def start_server(source: Path, env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        # A session of its own, so that stopping it also stops its PDF worker processes.
        proc = subprocess.Popen([sys.executable, "run.py", "--host", "127.0.0.1", "--port", str(port)],  # noqa: S603
                                cwd=source, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 900  # the first start migrates and seeds a year of books
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server stopped (exit {proc.returncode}); see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(1)
    stop_server(proc)
    raise SystemExit(f"the server did not answer /health within 15 minutes; see {log}")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the server and the processes it started (its process group)."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            try:  # the workers of the group, should any outlive the server
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return


# --- the page mix -----------------------------------------------------------------------------


def page_mix(ids: dict[str, int]) -> dict[str, list[str]]:
    """Each role's pages, a page listed twice is opened twice as often."""
    today = date.today()
    year, period = today.year, f"{today.year}-{today.month:02d}"
    c, ct, v = ids["client"], ids["contract"], ids["voucher"]
    span = f"client_id={c}&from={year}-01&to={period}"
    books = [f"/ledger/vouchers/list/?client_id={c}", f"/ledger/vouchers/list/?client_id={c}",
             f"/ledger/vouchers/show/{v}", f"/ledger/reports/trial-balance?{span}",
             f"/ledger/reports/balance-sheet?client_id={c}&period={period}",
             f"/ledger/reports/income-statement?client_id={c}&period={period}", f"/ledger/periods/{c}"]
    office = ["/", "/clientmodelview/list/", "/clientmodelview/list/", f"/clientmodelview/show/{c}",
              "/contactmodelview/list/", "/documentmodelview/list/"]
    fees = ["/contractmodelview/list/", f"/contractmodelview/show/{ct}", "/feebillmodelview/list/",
            "/paymentmodelview/list/", "/renewals/"]
    return {
        "accountant": office + fees + books + [
            f"/ledger/vouchers/add?client_id={c}", f"/ledger/reports/general-ledger?{span}",
            f"/ledger/reports/detail-ledger?{span}&account=1002", f"/ledger/accounts/{c}",
            f"/ledger/opening/{c}", "/ledger/books/", "/bankaccountmodelview/list/",
            "/servicerecordmodelview/list/"],
        "reviewer": office + books + ["/servicerecordmodelview/list/", "/ledger/books/"],
        "manager": office + fees + books[:4] + [
            "/auditlogmodelview/list/", "/chatsitemodelview/list/", "/agentprofilemodelview/list/",
            "/chat/history/", "/leavemessagemodelview/list/"],
        "admin": ["/", "/users/list/", "/roles/list/", "/auditlogmodelview/list/", "/clientmodelview/list/",
                  "/contractmodelview/list/", "/chatblockmodelview/list/", "/cannedreplymodelview/list/",
                  f"/clientmodelview/show/{c}", "/invitationrulemodelview/list/"],
        "agent1": ["/", "/chat/history/", "/leavemessagemodelview/list/", "/chatvisitormodelview/list/",
                   "/cannedreplymodelview/list/", "/chat/console/"],
    }


def demo_ids_and_statements(source: Path, env: dict[str, str]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """The demo rows the pages open, and the SQL statements of every page of the mix, by role."""
    sys.path.insert(0, str(source))
    os.environ.update({k: v for k, v in env.items() if k not in ("ASYNC_MODE",)})
    from sqlalchemy import event, select

    from app import create_app
    from app.extensions import db
    from app.models.contracts import Contract
    from app.models.crm import Client
    from app.models.ledger import LedgerBook, Voucher

    app = create_app({"ASYNC_MODE": "threading", "WTF_CSRF_ENABLED": False, "AUTH_RATE_LIMITED": False,
                      "RATELIMIT_ENABLED": False})
    with app.app_context():
        accountant = app.appbuilder.sm.find_user(username="accountant")
        client_id = db.session.scalar(select(LedgerBook.client_id).join(Client, Client.id == LedgerBook.client_id)
                                      .where(Client.accountant_id == accountant.id).order_by(Client.id).limit(1))
        ids = {"client": client_id,
               "contract": db.session.scalar(select(Contract.id).where(Contract.client_id == client_id).limit(1)),
               "voucher": db.session.scalar(select(Voucher.id).where(Voucher.client_id == client_id)
                                            .order_by(Voucher.id.desc()).limit(1))}
        engine = db.engine
    counted: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: counted.append(a[2]))
    statements: dict[str, dict[str, int]] = {}
    for role, pages in page_mix(ids).items():
        client = app.test_client()
        response = client.post("/login/", data={"username": role, "password": PASSWORD})
        assert response.status_code == 302, (role, response.status_code)
        for page in dict.fromkeys(pages):
            with app.app_context():
                counted.clear()
                response = client.get(page)
            statements.setdefault(role, {})[page] = len(counted) if response.status_code == 200 else -1
    with app.app_context():
        db.engine.dispose()
    return ids, statements


# --- the load ---------------------------------------------------------------------------------


def sign_in(base: str, username: str) -> requests.Session:
    web = requests.Session()
    form = web.get(f"{base}/login/", timeout=60).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    response = web.post(f"{base}/login/", data={"username": username, "password": PASSWORD,
                                                "csrf_token": token.group(1) if token else ""},
                        allow_redirects=False, timeout=60)
    if response.status_code != 302 or "/login" in response.headers.get("Location", ""):
        raise SystemExit(f"{username} could not sign in: {response.status_code}")
    return web


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process *pid* has used (Linux ``/proc``), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    users: int
    seconds: float
    times: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    cpu: float | None = None  # the server's CPU seconds during the run

    @property
    def cpu_ms_per_page(self) -> float:
        return (self.cpu or 0.0) * 1000 / max(len(self.times), 1)

    @property
    def pages_per_second(self) -> float:
        return len(self.times) / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def run_load(base: str, sessions: list[tuple[str, requests.Session]], mix: dict[str, list[str]],
             seconds: float, seed: int, server_pid: int) -> Run:
    run = Run(users=len(sessions), seconds=seconds)
    lock = threading.Lock()
    start = threading.Barrier(len(sessions) + 1)
    stop_at: list[float] = []

    def user(number: int, role: str, web: requests.Session) -> None:
        pages = list(mix[role])
        random.Random(seed * 100 + number).shuffle(pages)
        start.wait()
        i = 0
        while time.monotonic() < stop_at[0]:
            page = pages[i % len(pages)]
            i += 1
            began = time.perf_counter()
            try:
                response = web.get(base + page, timeout=120, allow_redirects=False)
                status = response.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            took = time.perf_counter() - began
            with lock:
                if status == 200:
                    run.times.append(took)
                else:
                    key = f"{status} {page}"
                    run.failures[key] = run.failures.get(key, 0) + 1

    threads = [threading.Thread(target=user, args=(n, role, web)) for n, (role, web) in enumerate(sessions)]
    for thread in threads:
        thread.start()
    stop_at.append(time.monotonic() + seconds)
    cpu_before = cpu_seconds(server_pid)
    start.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    run.seconds = time.monotonic() - began  # the last pages started before the deadline count too
    cpu_after = cpu_seconds(server_pid)
    if cpu_before is not None and cpu_after is not None:
        run.cpu = cpu_after - cpu_before
    return run


def git_commit(source: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True,  # noqa: S603, S607
                              text=True, timeout=10).stdout.strip() or "not a git checkout"
    except OSError:
        return "unknown"


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url")
    parser.add_argument("--source", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="backoffice-bench-"))
    env = server_env(folder, args)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    print(f"load average before: {load_average()}  (1, 5, 15 min; {os.cpu_count()} CPUs)", flush=True)
    server = start_server(args.source.resolve(), env, port, folder / "server.log")
    try:
        print(f"server up at {base} ({env.get('ASYNC_MODE', 'default async mode')}, "
              f"{env['DATABASE_URL'].split(':')[0]}{', Redis' if args.redis_url else ''})", flush=True)
        ids, statements = demo_ids_and_statements(args.source.resolve(), env)
        print(f"code: {Path(sys.modules['app'].__file__).parent.parent} (git {git_commit(args.source)})")
        print("\nSQL statements per page (in-process count, same database and code):")
        for role, pages in statements.items():
            print(f"  {role}: " + ", ".join(f"{page} {n}" for page, n in pages.items()))
        every = [n for pages in statements.values() for n in pages.values() if n >= 0]
        print(f"  all pages of the mix: min / median / max = {spread(every, '{:.0f}')}")
        mix = page_mix(ids)
        sessions = [(role, sign_in(base, role)) for role in ROLES[:max(args.users)]]
        print(f"\n{'users':>5} {'run':>3} {'pages/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'pages':>6} "
              f"{'CPU ms/page':>11}  {'load':>14}  failures")
        summary = []
        for users in args.users:
            runs = []
            for number in range(1, args.runs + 1):
                run = run_load(base, sessions[:users], mix, args.seconds, number, server.pid)
                runs.append(run)
                print(f"{users:>5} {number:>3} {run.pages_per_second:>8.1f} {run.percentile(0.5):>8.0f} "
                      f"{run.percentile(0.99):>8.0f} {len(run.times):>6} {run.cpu_ms_per_page:>11.1f}  "
                      f"{load_average():>14}  {run.failures or ''}", flush=True)
            summary.append((users, runs))
        print("\nmin / median / max over the runs:")
        for users, runs in summary:
            print(f"  {users} users: pages/s {spread([r.pages_per_second for r in runs])}, "
                  f"p50 ms {spread([r.percentile(0.5) for r in runs], '{:.0f}')}, "
                  f"p99 ms {spread([r.percentile(0.99) for r in runs], '{:.0f}')}, "
                  f"server CPU ms per page {spread([r.cpu_ms_per_page for r in runs])}")
        print(f"load average after: {load_average()}")
    finally:
        stop_server(server)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
