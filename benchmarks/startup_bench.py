"""How long ``python run.py`` takes until it serves: a fresh start and a restart.

    .venv/bin/python benchmarks/startup_bench.py [--runs 5] [--mode gevent] [--database-url URL]

Each run starts ``run.py`` as ``make run`` does (demo data, the given async mode; ``DEMO_HOST_PORT=0``),
on a free port, with a new temporary instance folder:

- fresh: on an empty database (migrations, permissions and roles, the demo data with a year of
  vouchers), from the process start to the first ``200`` of ``GET /health`` (polled every 20 ms);
- restart: the same again on the database the fresh start left (nothing to migrate or seed).

Besides the wall-clock time, each start reports the CPU time the server process used until it
answered (user + system, from /proc; without the PDF worker processes it spawns): on a busy
machine the wall-clock time grows with the load, the CPU time much less.

The server's modules are compiled to bytecode first, as ``make run``'s set-up does. The server is
stopped after each measurement. The database is a new SQLite file per run, or,
with ``--database-url`` naming a PostgreSQL scratch database, that database emptied before each
fresh start (its contents are destroyed). Prints min / median / max of each, with the load average
before and after: figures from a busy machine are not comparable with a quiet one.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import empty_postgres, free_port  # noqa: E402 - after the path

TIMEOUT = 600.0
BYTECODE = ("app", "reports", "migrations", "run.py")  # what scripts/setup.sh compiles


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process *pid* so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_start(env: dict[str, str], log: Path) -> tuple[float, float]:
    """Seconds from starting ``run.py`` until ``/health`` answers 200, and the CPU seconds the
    server used until then; the server is then stopped."""
    port = free_port()
    with log.open("a") as out:
        began = time.perf_counter()
        process = subprocess.Popen([sys.executable, "run.py", "--host", "127.0.0.1", "--port", str(port)],  # noqa: S603
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        while not _answers(f"http://127.0.0.1:{port}/health"):
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}; see {log}")
            if time.perf_counter() - began > TIMEOUT:
                raise SystemExit(f"the server did not answer in {TIMEOUT:.0f} s; see {log}")
            time.sleep(0.02)
        return time.perf_counter() - began, _cpu_seconds(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _summary(name: str, values: list[float]) -> str:
    return (f"{name:<12} min {min(values):6.2f} s   median {statistics.median(values):6.2f} s   "
            f"max {max(values):6.2f} s   ({', '.join(f'{v:.2f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", default="gevent", choices=["gevent", "eventlet", "threading"])
    parser.add_argument("--database-url", help="a PostgreSQL scratch database (emptied); default: SQLite files")
    args = parser.parse_args()

    print("command:", shlex.join([".venv/bin/python", "benchmarks/startup_bench.py", *sys.argv[1:]]))
    # make run's set-up (scripts/setup.sh) compiles the server's modules ahead; so does this, or
    # every start would compile them again where PYTHONDONTWRITEBYTECODE is set.
    subprocess.run([sys.executable, "-m", "compileall", "-q", *BYTECODE], cwd=ROOT, check=True,  # noqa: S603
                   stdout=subprocess.DEVNULL)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    fresh, restart, fresh_cpu, restart_cpu = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        for run in range(args.runs):
            folder = Path(tmp) / f"run{run}"
            folder.mkdir()
            database = args.database_url or f"sqlite:///{folder / 'desk.db'}"
            if args.database_url:
                empty_postgres(args.database_url)
            env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SOCKETIO_MESSAGE_QUEUE")}
            env.update(ASYNC_MODE=args.mode, INSTANCE_PATH=str(folder / "instance"), DATABASE_URL=database,
                       DEMO_HOST_PORT="0", DEMO_PASSWORD="Bench-Pass-2026xy", PYTHONUNBUFFERED="1")  # noqa: S106 - demo
            log = folder / "server.log"
            for walls, cpus in ((fresh, fresh_cpu), (restart, restart_cpu)):
                wall, cpu = time_start(env, log)
                walls.append(wall)
                cpus.append(cpu)
            print(f"run {run + 1}: fresh {fresh[-1]:.2f} s (CPU {fresh_cpu[-1]:.2f} s), "
                  f"restart {restart[-1]:.2f} s (CPU {restart_cpu[-1]:.2f} s), "
                  f"load average {os.getloadavg()[0]:.2f}", flush=True)
    print(_summary("fresh", fresh))
    print(_summary("restart", restart))
    print(_summary("fresh CPU", fresh_cpu))
    print(_summary("restart CPU", restart_cpu))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
