"""Where documents are rendered: small ones while the request waits, large ones as background
jobs (chunks rendered apart, merged, numbered). Never in the web server process itself.

- Small documents: ``render(html, style)`` hands the finished HTML to a local worker
  (``app.workers``) and waits for the PDF without blocking the server (end the database
  transaction first).
- Large documents: ``start(document, ...)`` builds the chunks' HTML (SQL and Jinja are fast;
  WeasyPrint's layout is the slow part), records a job and hands the chunks over:

  - with ``REDIS_URL``: one RQ job per chunk on the queue ``reports`` and a merge job that
    depends on them all (``python -m reports.worker rq``, or ``rq worker reports``, on any
    machine sharing Redis runs them; they need neither the database nor the application);
  - without, or when Redis does not answer (logged as a warning): the local workers, driven by
    a background task of the server (``socketio.start_background_task``) that waits for each
    chunk, records the progress and has the merge done. Background chunks take at most all
    local workers but one (``Pool.background_slot``).

Chunks of a document that plans its pages (the ruled-line ledgers) print their own page
numbers and are only joined; others are numbered at the merge (``reports.pdf``).

Either way the job record (status, chunks and pages done, error) and the finished PDF live in
the store (``reports.store``), which the job JSON view reads; a job started while Redis was down
lives in the instance folder's file store, where ``job_state`` and ``job_file`` find it too.
Job record fields: ``id``, ``user_id``, ``title``, ``filename``, ``status`` (queued | running |
done | failed), ``chunks_total``, ``chunks_done``, ``pages_done``, ``pages_total`` (when
planned), ``pages`` (when done), ``error``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from flask import current_app

from app import workers
from app.extensions import socketio
from reports import pdf
from reports.render import Chunks, Document, split
from reports.store import STALE_AFTER, FileStore, RedisStore, finish_job, store_for
from reports.worker import rq_merge, rq_render_chunk

QUEUE = "reports"
SYNC_QUEUE_WAIT = 60.0  # a request waits this long for a free worker before "busy"
BACKGROUND_QUEUE_WAIT = 3600.0  # a background chunk waits for its slot, then this long at most
log = logging.getLogger(__name__)


def current_store() -> RedisStore | FileStore:
    """The app's store (one Redis client per app)."""
    ext = current_app.extensions
    if "reports_store" not in ext:
        ext["reports_store"] = store_for(current_app.config.get("REDIS_URL"), current_app.config["INSTANCE_PATH"])
    return ext["reports_store"]


def _file_store() -> FileStore:
    """The instance folder's store: the store itself without Redis, the fallback with it."""
    store = current_store()
    if isinstance(store, FileStore):
        return store
    ext = current_app.extensions
    if "reports_file_store" not in ext:
        ext["reports_file_store"] = FileStore(current_app.config["INSTANCE_PATH"])
    return ext["reports_file_store"]


def _redis_errors() -> tuple[type[Exception], ...]:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout

    return RedisConnectionError, RedisTimeout


def _redis_answers(store: RedisStore) -> bool:
    try:
        store.redis.ping()
        return True
    except _redis_errors() as exc:
        log.warning("Redis does not answer (%s): PDFs render in the local workers", exc)
        return False


def warm_pool() -> None:
    """Start the local workers now (at server start) rather than on the first PDF or import:
    starting a worker and importing WeasyPrint costs about a second. They serve small PDFs and
    imports in every set-up, and background jobs without Redis. Needs the application context."""
    workers.start()


def shutdown_pool() -> None:
    """Stop the local workers (tests, benchmarks); they start again on the next call."""
    workers.shutdown()


# --- the cache -------------------------------------------------------------------------------


def cached(key: str) -> bytes | None:
    """The cached PDF under *key*, or ``None`` (also when Redis does not answer)."""
    try:
        return current_store().cache_get(key)
    except _redis_errors() as exc:
        log.warning("report cache not read: Redis does not answer (%s)", exc)
        return None


def keep(key: str, data: bytes) -> None:
    """Cache *data* under *key* (skipped, with a warning, when Redis does not answer)."""
    try:
        current_store().cache_put(key, data)
    except _redis_errors() as exc:
        log.warning("report not cached: Redis does not answer (%s)", exc)


# --- small documents -----------------------------------------------------------------------------


def render(html: str, style: pdf.PageStyle) -> bytes:
    """The PDF of a small document, rendered by a local worker while the caller waits
    cooperatively. Raises ``app.workers.WorkerError`` when no worker could do it."""
    data, _pages = workers.call("pdf.render", html, style, queue_wait=SYNC_QUEUE_WAIT)
    return data


# --- starting a job ---------------------------------------------------------------------------


def start(document: Document, user_id: int | None, chunk_size: int) -> str:
    """Record a job for *document* and hand its chunks to the workers; returns the job id.

    *chunk_size* rows a chunk, unless the document sets its own ``chunk_rows`` (documents whose
    rows are much cheaper to lay out than table rows: fewer chunks, less to merge)."""
    chunks = split(document, document.chunk_rows or chunk_size)
    style = document.style()
    job_id = uuid.uuid4().hex
    store = current_store()
    use_rq = isinstance(store, RedisStore) and _redis_answers(store)
    if not use_rq:
        store = _file_store()
    store.job_create(job_id, {
        "id": job_id, "user_id": user_id, "title": style.metadata.get("Title", document.title),
        "filename": document.filename, "status": "queued", "chunks_total": len(chunks.htmls), "chunks_done": 0,
        "pages_done": 0, "pages_total": sum(chunks.plan) if chunks.plan else None,
        "created_at": time.time(), "updated_at": time.time()})
    if use_rq:
        _start_rq(store, job_id, chunks, style, document.cache_key)  # type: ignore[arg-type]
    else:
        _start_local(store, job_id, chunks, style, document.cache_key)
    return job_id


def _start_rq(store: RedisStore, job_id: str, chunks: Chunks, style: pdf.PageStyle, cache_key: str | None) -> None:
    from rq import Queue, Worker

    queue = Queue(QUEUE, connection=store.redis)
    parts = [queue.enqueue(rq_render_chunk, job_id, i, html, style, numbering, job_timeout=600, result_ttl=600)
             for i, (html, numbering) in enumerate(zip(chunks.htmls, chunks.numbering(), strict=True))]
    queue.enqueue(rq_merge, job_id, len(chunks.htmls), style, cache_key, chunks.plan, chunks.merge_htmls,
                  depends_on=parts, job_timeout=600, result_ttl=600)
    if not Worker.count(queue=queue):
        log.warning("no RQ worker listens on the queue %r: job %s waits until one starts "
                    "(python -m reports.worker rq)", QUEUE, job_id)


def _start_local(store: RedisStore | FileStore, job_id: str, chunks: Chunks, style: pdf.PageStyle,
                 cache_key: str | None) -> None:
    pool = workers.start()
    store.job_update(job_id, status="running")
    socketio.start_background_task(run_local, pool, store, job_id, chunks.htmls, chunks.numbering(), style,
                                   chunks.plan, chunks.merge_htmls, cache_key)


def run_local(pool: workers.Pool, store: RedisStore | FileStore, job_id: str, htmls: list[str],
              numbering: list[pdf.Numbering | None], style: pdf.PageStyle, plan: list[int] | None,
              merge_htmls: list[str] | None, cache_key: str | None) -> None:
    """A background task of the server: have every chunk rendered (several at a time, each in
    a background slot of the pool), count the progress, have them merged, keep the result.
    Every failure ends in the job record (``failed`` and why), never in a lost thread."""
    try:
        results: list[bytes | None] = [None] * len(htmls)
        todo = list(range(len(htmls)))
        failures: list[BaseException] = []

        def runner() -> None:
            while not failures:
                try:
                    index = todo.pop(0)
                except IndexError:
                    return
                try:
                    with pool.background_slot():
                        data, pages = pool.call("pdf.render", htmls[index], style,
                                                numbered=numbering[index] is not None, numbering=numbering[index],
                                                queue_wait=BACKGROUND_QUEUE_WAIT)
                except BaseException as exc:  # noqa: BLE001 - reported in the job below
                    failures.append(exc)
                    return
                results[index] = data
                store.job_progress(job_id, 1, pages)

        # Wait for the runners with a semaphore each releases: under eventlet the object that
        # start_background_task returns joins at once when its green thread has not started yet.
        finished = threading.Semaphore(0)

        def run_then_release() -> None:
            try:
                runner()
            finally:
                finished.release()

        count = min(len(htmls), pool.size)
        for _ in range(count):
            socketio.start_background_task(run_then_release)
        for _ in range(count):
            finished.acquire()
        if failures:
            raise failures[0]
        with pool.background_slot():
            merged, pages = pool.call("pdf.merge", results, style, plan, merge_htmls, queue_wait=BACKGROUND_QUEUE_WAIT)
        finish_job(store, job_id, merged, cache_key, pages)
    except Exception as exc:  # noqa: BLE001 - the job says why it failed
        log.warning("report job %s failed: %s", job_id, exc)
        store.job_update(job_id, status="failed", error=str(exc)[:300] or type(exc).__name__)


# --- following a job ----------------------------------------------------------------------------


def _stores() -> list[RedisStore | FileStore]:
    store = current_store()
    return [store] if isinstance(store, FileStore) else [store, _file_store()]


def job_state(job_id: str) -> dict[str, Any] | None:
    """The job record, with ``failed`` for a job that stopped making progress."""
    record = None
    for store in _stores():
        try:
            record = store.job_get(job_id)
        except _redis_errors():
            continue
        if record is not None:
            break
    if record and record.get("status") in ("queued", "running") \
            and time.time() - record.get("updated_at", 0) > STALE_AFTER:
        record["status"], record["error"] = "failed", "no progress"
    return record


def job_file(job_id: str) -> bytes | None:
    """The finished PDF of *job_id*, wherever the job ran."""
    for store in _stores():
        try:
            data = store.file_get(job_id)
        except _redis_errors():
            continue
        if data is not None:
            return data
    return None
