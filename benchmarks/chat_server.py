"""The desk's server (``run.py``) counting the SQL statements it sends, for
``benchmarks/chat_load.py``: every 0.25 s the count so far is written to the file named by
``BENCH_STATS`` (a SQLAlchemy ``before_cursor_execute`` listener on every engine).

    BENCH_STATS=/path/to/stats python benchmarks/chat_server.py --port 5124 --no-demo
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    import run

    run.patch_for_async_mode()  # first, as run.main does
    import threading
    import time

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    statements = [0]

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(*args: object) -> None:
        statements[0] += 1

    path = os.environ["BENCH_STATS"]

    def report() -> None:
        while True:
            time.sleep(0.25)  # cooperative under gevent and eventlet (patched)
            Path(path + ".tmp").write_text(str(statements[0]))
            os.replace(path + ".tmp", path)

    threading.Thread(target=report, daemon=True).start()
    run.patch_for_async_mode = lambda: None
    sys.argv = ["run.py", *sys.argv[1:]]
    run.main()


if __name__ == "__main__":
    main()
