"""Background renders of large documents: chunks rendered in parallel, merged, numbered.

The web process builds the document's HTML in chunks (SQL and Jinja are fast; WeasyPrint's
layout is the slow part), records a job, and hands the chunks to workers:

- with ``REDIS_URL``: one RQ job per chunk on the queue ``reports`` and a merge job that
  depends on them all (``rq worker reports`` on any machine sharing Redis runs them; the
  workers need neither the database nor the application, only this package);
- without: a local ``ProcessPoolExecutor`` (spawn context, ``REPORTS_WORKERS`` processes, at
  most 2 by default) whose completion callbacks record progress and submit the merge.

Chunks of a document that plans its pages (the ruled-line ledgers) print their own page
numbers and are only joined; others are numbered at the merge (``reports.pdf``).

Either way the job record (status, chunks and pages done, error) and the finished PDF live in
the store (``reports.store``), which the job JSON view reads. Job record fields: ``id``,
``user_id``, ``title``, ``filename``, ``status`` (queued | running | done | failed),
``chunks_total``, ``chunks_done``, ``pages_done``, ``pages_total`` (when planned), ``pages``
(when done), ``error``.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from flask import current_app

from reports import pdf
from reports.render import Chunks, Document, split
from reports.store import STALE_AFTER, FileStore, RedisStore, store_for

QUEUE = "reports"
_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def current_store() -> RedisStore | FileStore:
    """The app's store (one Redis client per app)."""
    ext = current_app.extensions
    if "reports_store" not in ext:
        ext["reports_store"] = store_for(current_app.config.get("REDIS_URL"), current_app.config["INSTANCE_PATH"])
    return ext["reports_store"]


def _pool() -> ProcessPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            workers = int(current_app.config.get("REPORTS_WORKERS", 2))
            _POOL = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_follow_parent, initargs=(os.getpid(),))
        return _POOL


def _follow_parent(parent: int) -> None:
    """In a worker: exit when the web process that started the pool is gone (killed servers
    must not leave orphan workers behind)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def _warm() -> int:
    """In a worker: import WeasyPrint, load the fonts and lay out a line, so that the first
    real chunk does not pay for it."""
    pdf.html_to_pdf("<!DOCTYPE html><html><body><p>0 汉</p></body></html>", pdf.PageStyle())
    return 1


def warm_pool() -> None:
    """Start the local workers now (at server start) rather than on the first job: spawning a
    worker and importing WeasyPrint costs about a second. Does nothing with ``REDIS_URL`` (RQ
    workers are separate processes). Needs the application context."""
    if current_app.config.get("REDIS_URL"):
        return
    pool = _pool()
    for _ in range(max(1, int(current_app.config.get("REPORTS_WORKERS", 2)))):
        pool.submit(_warm)


def shutdown_pool() -> None:
    """Stop the local workers (tests, process exit)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=True, cancel_futures=True)
            _POOL = None


# --- worker functions (no Flask, no database) ----------------------------------------------


def render_chunk(html: str, style: pdf.PageStyle, numbering: pdf.Numbering | None = None) -> tuple[bytes, int]:
    """One chunk: (pdf, pages); numbered from *numbering* when the document planned its pages,
    else without page numbers (the merge stamps them)."""
    return pdf.html_to_pdf(html, style, numbered=numbering is not None, numbering=numbering)


def rq_render_chunk(job_id: str, index: int, html: str, style: pdf.PageStyle,
                    numbering: pdf.Numbering | None = None) -> int:
    """RQ: render chunk *index* of *job_id*, keep it in Redis and count the progress."""
    from rq import get_current_job

    store = RedisStore(get_current_job().connection)
    store.job_update(job_id, status="running")
    try:
        data, pages = render_chunk(html, style, numbering)
    except Exception as exc:  # the merge job will not run: say so now rather than go stale
        store.job_update(job_id, status="failed", error=str(exc)[:300])
        raise
    store.chunk_put(job_id, index, data)
    store.job_progress(job_id, 1, pages)
    return pages


def rq_merge(job_id: str, count: int, style: pdf.PageStyle, cache_key: str | None,
             plan: list[int] | None = None, htmls: list[str] | None = None) -> int:
    """RQ: merge the chunks of *job_id* (``pdf.merge_chunks``), store (and cache) the PDF."""
    from rq import get_current_job

    store = RedisStore(get_current_job().connection)
    try:
        chunks = [store.chunk_get(job_id, i) for i in range(count)]
        if any(c is None for c in chunks):
            raise RuntimeError("a chunk is missing")
        result = pdf.merge_chunks(chunks, style, plan, htmls)  # type: ignore[arg-type]
    except Exception as exc:
        store.job_update(job_id, status="failed", error=str(exc)[:300])
        raise
    _finish(store, job_id, result, cache_key)
    store.chunks_drop(job_id, count)
    return len(result)


def _finish(store: RedisStore | FileStore, job_id: str, result: bytes, cache_key: str | None) -> None:
    store.file_put(job_id, result)
    if cache_key:
        store.cache_put(cache_key, result)
    store.job_update(job_id, status="done", pages=pdf.page_count(result))


# --- starting a job ---------------------------------------------------------------------------


def start(document: Document, user_id: int | None, chunk_size: int) -> str:
    """Record a job for *document* and hand its chunks to the workers; returns the job id.

    *chunk_size* rows a chunk, unless the document sets its own ``chunk_rows`` (documents whose
    rows are much cheaper to lay out than table rows: fewer chunks, less to merge)."""
    chunks = split(document, document.chunk_rows or chunk_size)
    style = document.style()
    job_id = uuid.uuid4().hex
    store = current_store()
    store.job_create(job_id, {
        "id": job_id, "user_id": user_id, "title": style.metadata.get("Title", document.title),
        "filename": document.filename, "status": "queued", "chunks_total": len(chunks.htmls), "chunks_done": 0,
        "pages_done": 0, "pages_total": sum(chunks.plan) if chunks.plan else None,
        "created_at": time.time(), "updated_at": time.time()})
    redis_url = current_app.config.get("REDIS_URL")
    if redis_url:
        _start_rq(store, job_id, chunks, style, document.cache_key)
    else:
        _start_local(store, job_id, chunks, style, document.cache_key)
    return job_id


def _start_rq(store: RedisStore | FileStore, job_id: str, chunks: Chunks, style: pdf.PageStyle,
              cache_key: str | None) -> None:
    from rq import Queue

    queue = Queue(QUEUE, connection=store.redis)  # type: ignore[union-attr]
    parts = [queue.enqueue(rq_render_chunk, job_id, i, html, style, numbering, job_timeout=600, result_ttl=600)
             for i, (html, numbering) in enumerate(zip(chunks.htmls, chunks.numbering(), strict=True))]
    queue.enqueue(rq_merge, job_id, len(chunks.htmls), style, cache_key, chunks.plan, chunks.merge_htmls,
                  depends_on=parts, job_timeout=600, result_ttl=600)


def _start_local(store: RedisStore | FileStore, job_id: str, chunks: Chunks, style: pdf.PageStyle,
                 cache_key: str | None) -> None:
    pool = _pool()
    count = len(chunks.htmls)
    results: list[bytes | None] = [None] * count
    left = [count]
    lock = threading.Lock()

    def merged(future: Future) -> None:
        try:
            _finish(store, job_id, future.result(), cache_key)
        except Exception as exc:  # noqa: BLE001 - reported in the job, not lost in a thread
            store.job_update(job_id, status="failed", error=str(exc)[:300])

    def chunk_done(index: int, future: Future) -> None:
        try:
            data, pages = future.result()
        except Exception as exc:  # noqa: BLE001
            store.job_update(job_id, status="failed", error=str(exc)[:300])
            return
        results[index] = data
        store.job_progress(job_id, 1, pages)
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            pool.submit(pdf.merge_chunks, list(results), style, chunks.plan,  # type: ignore[arg-type]
                        chunks.merge_htmls).add_done_callback(merged)

    store.job_update(job_id, status="running")
    for index, (html, numbering) in enumerate(zip(chunks.htmls, chunks.numbering(), strict=True)):
        pool.submit(render_chunk, html, style, numbering).add_done_callback(lambda f, i=index: chunk_done(i, f))


def job_state(job_id: str) -> dict[str, Any] | None:
    """The job record, with ``failed`` for a job that stopped making progress."""
    record = current_store().job_get(job_id)
    if record and record.get("status") in ("queued", "running") \
            and time.time() - record.get("updated_at", 0) > STALE_AFTER:
        record["status"], record["error"] = "failed", "no progress"
    return record
