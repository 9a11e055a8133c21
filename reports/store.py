"""Where rendered PDFs and background jobs live: Redis when ``REDIS_URL`` is set, otherwise
files under the instance folder (``report_cache/``, ``report_jobs/``). Never only in process
memory, so that any web process (and any RQ worker sharing Redis) sees the same jobs.

Neither store imports Flask: RQ workers build a ``RedisStore`` from their own connection.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CACHE_TTL = 30 * 24 * 3600  # a cached PDF of a closed month: 30 days
JOB_TTL = 24 * 3600  # a job and its PDF: one day
STALE_AFTER = 15 * 60  # a job with no progress for this long is reported failed
PREFIX = "reports:"


class RedisStore:
    """Cache entries and jobs in Redis (keys ``reports:cache:<key>``, ``reports:job:<id>``...)."""

    def __init__(self, connection) -> None:  # noqa: ANN001
        self.redis = connection

    # cache
    def cache_get(self, key: str) -> bytes | None:
        return self.redis.get(f"{PREFIX}cache:{key}")

    def cache_put(self, key: str, pdf: bytes) -> None:
        self.redis.set(f"{PREFIX}cache:{key}", pdf, ex=CACHE_TTL)

    # jobs
    def job_create(self, job_id: str, record: dict[str, Any]) -> None:
        self.redis.set(f"{PREFIX}job:{job_id}", json.dumps(record), ex=JOB_TTL)

    def job_update(self, job_id: str, **fields: Any) -> None:
        key = f"{PREFIX}job:{job_id}"
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    record = json.loads(raw) if raw else {}
                    record.update(fields, updated_at=time.time())
                    pipe.multi()
                    pipe.set(key, json.dumps(record), ex=JOB_TTL)
                    pipe.execute()
                    return
                except Exception as exc:  # noqa: BLE001 - WatchError: another worker wrote first
                    if type(exc).__name__ != "WatchError":
                        raise

    def job_progress(self, job_id: str, chunks: int, pages: int) -> None:
        key = f"{PREFIX}job:{job_id}:progress"
        with self.redis.pipeline() as pipe:
            pipe.hincrby(key, "chunks_done", chunks).hincrby(key, "pages_done", pages).expire(key, JOB_TTL)
            pipe.execute()

    def job_get(self, job_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(f"{PREFIX}job:{job_id}")
        if not raw:
            return None
        record = json.loads(raw)
        progress = self.redis.hgetall(f"{PREFIX}job:{job_id}:progress")
        for name in ("chunks_done", "pages_done"):
            record[name] = int(progress.get(name.encode(), progress.get(name, 0)) or 0)
        return record

    def chunk_put(self, job_id: str, index: int, pdf: bytes) -> None:
        self.redis.set(f"{PREFIX}job:{job_id}:chunk:{index}", pdf, ex=JOB_TTL)

    def chunk_get(self, job_id: str, index: int) -> bytes | None:
        return self.redis.get(f"{PREFIX}job:{job_id}:chunk:{index}")

    def chunks_drop(self, job_id: str, count: int) -> None:
        self.redis.delete(*[f"{PREFIX}job:{job_id}:chunk:{i}" for i in range(count)])

    def file_put(self, job_id: str, pdf: bytes) -> None:
        self.redis.set(f"{PREFIX}job:{job_id}:pdf", pdf, ex=JOB_TTL)

    def file_get(self, job_id: str) -> bytes | None:
        return self.redis.get(f"{PREFIX}job:{job_id}:pdf")


class FileStore:
    """The same operations over files under *root* (single-machine installs without Redis).

    Writes go to a temporary file (mode 0600, in folders of mode 0700) then ``os.replace`` so a
    reader never sees half a file;
    job updates in one process are serialised by a lock.
    """

    _lock = threading.Lock()

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def _path(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        if not path.parent.is_dir():  # folders 0700 (the files are mkstemp's 0600): the server user's alone
            for folder in reversed([f for f in (path.parent, *path.parent.parents) if not f.exists()]):
                with contextlib.suppress(FileExistsError):
                    folder.mkdir(mode=0o700)
        return path

    def _write(self, path: Path, data: bytes) -> None:
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def cache_get(self, key: str) -> bytes | None:
        path = self._path("report_cache", f"{key}.pdf")
        try:
            if time.time() - path.stat().st_mtime > CACHE_TTL:
                return None
        except FileNotFoundError:
            return None
        return self._read(path)

    def cache_put(self, key: str, pdf: bytes) -> None:
        self._write(self._path("report_cache", f"{key}.pdf"), pdf)

    def job_create(self, job_id: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._write(self._path("report_jobs", f"{job_id}.json"), json.dumps(record).encode())

    def job_update(self, job_id: str, **fields: Any) -> None:
        with self._lock:
            path = self._path("report_jobs", f"{job_id}.json")
            record = json.loads(self._read(path) or b"{}")
            record.update(fields, updated_at=time.time())
            self._write(path, json.dumps(record).encode())

    def job_progress(self, job_id: str, chunks: int, pages: int) -> None:
        with self._lock:
            path = self._path("report_jobs", f"{job_id}.json")
            record = json.loads(self._read(path) or b"{}")
            record["chunks_done"] = record.get("chunks_done", 0) + chunks
            record["pages_done"] = record.get("pages_done", 0) + pages
            record["updated_at"] = time.time()
            self._write(path, json.dumps(record).encode())

    def job_get(self, job_id: str) -> dict[str, Any] | None:
        raw = self._read(self._path("report_jobs", f"{job_id}.json"))
        return json.loads(raw) if raw else None

    def chunk_put(self, job_id: str, index: int, pdf: bytes) -> None:
        self._write(self._path("report_jobs", f"{job_id}.chunk{index}"), pdf)

    def chunk_get(self, job_id: str, index: int) -> bytes | None:
        return self._read(self._path("report_jobs", f"{job_id}.chunk{index}"))

    def chunks_drop(self, job_id: str, count: int) -> None:
        for index in range(count):
            self._path("report_jobs", f"{job_id}.chunk{index}").unlink(missing_ok=True)

    def file_put(self, job_id: str, pdf: bytes) -> None:
        self._write(self._path("report_jobs", f"{job_id}.pdf"), pdf)

    def file_get(self, job_id: str) -> bytes | None:
        return self._read(self._path("report_jobs", f"{job_id}.pdf"))


def finish_job(store: RedisStore | FileStore, job_id: str, pdf: bytes, cache_key: str | None, pages: int) -> None:
    """Keep the finished PDF of *job_id* (and cache it under *cache_key*), then mark it done."""
    store.file_put(job_id, pdf)
    if cache_key:
        store.cache_put(cache_key, pdf)
    store.job_update(job_id, status="done", pages=pages)


def store_for(redis_url: str | None, instance_path: str) -> RedisStore | FileStore:
    """Redis when *redis_url* is set, else files under *instance_path*."""
    if redis_url:
        from redis import Redis

        # an unreachable Redis fails fast instead of holding the request (see reports.jobs)
        return RedisStore(Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=10))
    return FileStore(instance_path)
