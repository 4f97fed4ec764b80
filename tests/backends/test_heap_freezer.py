"""The controller loop keeps the cluster's objects out of the cyclic collector's full passes: the
heap is frozen after the first pass, and every `every` passes after collecting what was made since
(so cycles dropped meanwhile are still collected)."""

from __future__ import annotations

import gc
import weakref

import pytest

from runai_lite.backends.heap import HeapFreezer


@pytest.fixture
def thawed():
    gc.unfreeze()
    yield
    gc.unfreeze()


class Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_the_heap_is_frozen_after_the_first_pass_and_cycles_made_later_are_collected(thawed):
    heap = HeapFreezer(every=3)
    kept = [Node() for _ in range(100)]
    heap.after_pass()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert all(not any(o is k for o in gc.get_objects()) for k in kept[:3])  # out of every generation
    dropped = Node()
    gone = weakref.ref(dropped)
    del dropped
    heap.after_pass()
    heap.after_pass()
    assert gc.get_freeze_count() == frozen  # not yet: between freezes
    heap.after_pass()  # the third pass since the freeze: collect, then freeze again
    assert gone() is None
    assert gc.get_freeze_count() >= frozen
