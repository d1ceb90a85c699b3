"""The console's heap kept out of the collector's way (meshtop.tui.heap): what lives on is
frozen after each snapshot, still freed when nothing refers to it, and garbage in cycles
is collected once the frozen heap has grown."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from meshtop.tui.heap import LOOK_EVERY_S, FrozenHeap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.collect()


def cycles(n: int) -> list[Node]:
    """`n` pairs of objects that refer to each other: once the list is dropped, garbage
    that only the collector can free."""
    out = []
    for _ in range(n):
        a, b = Node(), Node()
        a.other, b.other = b, a
        out.append(a)
    return out


def test_settle_moves_what_lives_out_of_the_collectors_way(collector: None) -> None:
    now = [0.0]
    heap = FrozenHeap(clock=lambda: now[0])
    kept = [Node() for _ in range(1000)]
    before = gc.get_freeze_count()
    heap.settle()
    assert gc.get_freeze_count() >= before + len(kept)
    assert gc.get_count()[0] < 100  # a young pass has nothing of it to read


def test_frozen_objects_still_go_when_nothing_refers_to_them(collector: None) -> None:
    heap = FrozenHeap(clock=lambda: 0.0)
    kept = [Node() for _ in range(1000)]
    gone = weakref.ref(kept[0])
    heap.settle()
    frozen = gc.get_freeze_count()
    del kept
    assert gone() is None  # freed by its reference count, no pass needed
    assert gc.get_freeze_count() <= frozen - 1000


def test_cycles_are_collected_once_the_frozen_heap_has_grown(collector: None) -> None:
    """Cycles frozen while alive, dropped after: the young passes never read them."""
    now = [0.0]
    heap = FrozenHeap(clock=lambda: now[0], growth=1.05)
    heap.settle()  # the first size
    base = gc.get_freeze_count()
    few = cycles(10)
    small = weakref.ref(few[0])
    now[0] += LOOK_EVERY_S
    heap.settle()
    del few
    assert heap.collections == 0
    many = cycles(base // 10)  # 20% more objects
    big = weakref.ref(many[0])
    heap.settle()
    del many
    gc.collect()  # a pass of what is not frozen finds none of them
    assert small() is not None and big() is not None
    heap.settle()
    assert heap.collections == 0, "looked again before LOOK_EVERY_S"
    now[0] += LOOK_EVERY_S
    heap.settle()
    assert heap.collections == 1
    assert big() is None and small() is None
    assert gc.get_freeze_count() < base * 1.05  # the count starts again from here
