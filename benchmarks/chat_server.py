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

    from benchmarks import chat_probe

    probe = chat_probe.start(run.ASYNC_MODE)
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
            if probe is not None:
                probe.flush()

    threading.Thread(target=report, daemon=True).start()
    profile_path = os.environ.get("BENCH_PROFILE")
    if profile_path:  # SIGUSR1 starts a profile of the hub's thread, SIGUSR2 writes it out
        import collections
        import cProfile
        import json
        import signal

        import socketio

        profiler = cProfile.Profile()
        sent: collections.Counter = collections.Counter()  # packets sent, by event (and ack)
        counting = [False]
        send_packet = socketio.Server._send_packet

        def counted(self, eio_sid, pkt):  # noqa: ANN001, ANN202
            if counting[0]:
                name = pkt.data[0] if pkt.packet_type == 2 and pkt.data else f"type {pkt.packet_type}"
                sent[f"{pkt.namespace} {name}"] += 1
            return send_packet(self, eio_sid, pkt)

        socketio.Server._send_packet = counted
        manager_emit = socketio.Manager.emit

        def counted_emit(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None,  # noqa: ANN001, ANN202
                         **kwargs):  # noqa: ANN003
            if counting[0] and not callback and namespace in self.rooms:
                skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
                sent[f"{namespace} {event}"] += sum(1 for sid, _ in self.get_participants(namespace, to or room)
                                                    if sid not in skip)
            return manager_emit(self, event, data, namespace, room=room, skip_sid=skip_sid, callback=callback,
                                to=to, **kwargs)

        socketio.Manager.emit = counted_emit

        def begin(*_: object) -> None:
            counting[0] = True
            profiler.enable()

        signal.signal(signal.SIGUSR1, begin)

        def dump(*_: object) -> None:
            profiler.disable()
            counting[0] = False
            profiler.dump_stats(profile_path)
            Path(profile_path + ".sent").write_text(json.dumps(sent.most_common()))

        signal.signal(signal.SIGUSR2, dump)
    run.patch_for_async_mode = lambda: None
    sys.argv = ["run.py", *sys.argv[1:]]
    run.main()


if __name__ == "__main__":
    main()
