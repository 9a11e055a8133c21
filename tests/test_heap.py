"""The server's garbage collector settings (app/heap.py): start-up's objects and the survivors of
each full collection are frozen, so a full collection walks only what is new; every
``GC_FULL_SECONDS`` everything is unfrozen once, so garbage cycles among frozen objects are freed."""

from __future__ import annotations

import gc
import weakref

import pytest

from app.heap import Refreeze, settle


@pytest.fixture
def clean_gc():
    yield
    for hook in [h for h in gc.callbacks if isinstance(h, Refreeze)]:
        gc.callbacks.remove(hook)
    gc.unfreeze()


class Node:
    pass


def _cycles(n: int) -> list:
    kept = []
    for _ in range(n):
        a, b = Node(), Node()
        a.other, b.other = b, a
        kept.append(a)
    return kept


def test_settle_freezes_what_is_alive_and_each_full_collection_freezes_its_survivors(clean_gc):
    hook = settle(full_seconds=900)
    assert hook is not None and hook in gc.callbacks
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # the test process's modules, at least
    kept = _cycles(500)
    gc.collect()  # a full collection: its 1,000 surviving nodes are frozen after it
    assert gc.get_freeze_count() >= frozen + 1000 and hook.freezes == 1
    assert all(gc.is_tracked(node) for node in kept)


def test_once_a_period_everything_is_unfrozen_for_one_full_collection_which_frees_frozen_cycles(clean_gc):
    now = [0.0]
    hook = Refreeze(60, clock=lambda: now[0])
    gc.callbacks.append(hook)
    dropped = _cycles(300)
    watch = [weakref.ref(node) for node in dropped]
    gc.collect()  # frozen with the rest
    assert hook.freezes == 1
    del dropped  # garbage cycles now, but frozen: a full collection does not see them
    gc.collect()
    assert all(ref() is not None for ref in watch)
    now[0] = 61.0
    gc.collect()  # the period is over: everything is unfrozen after this collection...
    assert hook.unfrozen and gc.get_freeze_count() == 0
    gc.collect()  # ...and the next full collection frees the cycles
    assert all(ref() is None for ref in watch)
    assert not hook.unfrozen and hook.full == 1 and hook.next_full == 121.0
    assert gc.get_freeze_count() > 0  # freezing again
