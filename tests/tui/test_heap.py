"""The console's heap kept out of the collector's way (meshtop.tui.heap): what lives on is
frozen after each snapshot, still freed when nothing refers to it, and garbage in cycles
is collected once the frozen heap has grown."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Callable, Iterator

import pytest

from meshtop.tui.heap import WARM_S, FrozenHeap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.enable()
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.collect()


def after_warm() -> Callable[[], float]:
    """A clock at 0 for the first snapshot, past `WARM_S` from then on."""
    times = iter([0.0])
    return lambda: next(times, 1e9)


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
    heap = FrozenHeap()
    kept = [Node() for _ in range(1000)]
    before = gc.get_freeze_count()
    heap.settle()
    assert gc.get_freeze_count() >= before + len(kept)
    assert gc.get_count()[0] < 100  # a young pass has nothing of it to read


def test_frozen_objects_still_go_when_nothing_refers_to_them(collector: None) -> None:
    heap = FrozenHeap()
    kept = [Node() for _ in range(1000)]
    gone = weakref.ref(kept[0])
    heap.settle()
    frozen = gc.get_freeze_count()
    del kept
    assert gone() is None  # freed by its reference count, no pass needed
    assert gc.get_freeze_count() <= frozen - 1000


def test_cycles_are_collected_once_the_heap_has_grown(collector: None) -> None:
    """Cycles frozen while alive, dropped after: the young passes never read them; the
    next full pass, once the heap has grown, does."""
    heap = FrozenHeap(growth=1.05, seen=1, clock=after_warm())
    heap.settle()  # the first size
    few = cycles(10)
    heap.settle()
    assert heap.collections == 0  # grown too little
    many = cycles(sys.getallocatedblocks() // 10)  # 20% more blocks at the least
    gone = weakref.ref(many[0])
    heap.settle()  # grown: a full pass (of nothing yet: all alive), then frozen
    assert heap.collections == 1
    del many, few
    gc.collect()  # a pass of what is not frozen: none of them
    assert gone() is not None
    heap.settle()  # the heap's size after the pass, read again
    more = cycles(sys.getallocatedblocks() // 10)
    heap.settle()
    assert heap.collections == 2 and gone() is None
    assert more[0].other is not None  # what lives is kept


def test_a_peak_that_passes_asks_for_no_full_pass(collector: None) -> None:
    """A refresh's decoded answers come and go: the heap's size is the least of the last
    snapshots' counts, not the count at a peak."""
    heap = FrozenHeap(growth=1.05, seen=3, clock=after_warm())
    for _ in range(3):
        heap.settle()  # the first size
    peak = [Node() for _ in range(sys.getallocatedblocks() // 5)]  # no cycles among them
    heap.settle()
    del peak  # gone by their reference counts, frozen or not
    heap.settle()
    heap.settle()
    assert heap.collections == 0
    grown = [Node() for _ in range(sys.getallocatedblocks() // 5)]
    for _ in range(3):
        heap.settle()
    assert heap.collections == 1 and grown[0] is not None


def test_the_first_minutes_growth_is_the_heaps_first_size(collector: None) -> None:
    """A console's first uses (the edge table's rows, a first detail) grow its heap: no
    full pass for them, which would find nothing to free."""
    now = [0.0]
    heap = FrozenHeap(growth=1.05, seen=1, clock=lambda: now[0])
    heap.settle()  # the first snapshot
    used = [Node() for _ in range(sys.getallocatedblocks() // 5)]
    now[0] = WARM_S / 2
    heap.settle()
    assert heap.collections == 0
    now[0] = WARM_S + 1
    heap.settle()
    assert heap.collections == 0  # measured against the size with them
    more = [Node() for _ in range(sys.getallocatedblocks() // 5)]
    heap.settle()
    assert heap.collections == 1 and used[0] is not None and more[0] is not None


def test_a_refresh_being_made_holds_the_collector_until_it_settles(collector: None) -> None:
    """What a refresh makes lives on until the next one: no pass reads it meanwhile."""
    heap = FrozenHeap()
    heap.hold()
    assert not gc.isenabled()
    made = [Node() for _ in range(1000)]
    heap.settle()  # taken in: frozen, and the collector as ever
    assert gc.isenabled()
    assert gc.get_count()[0] < 100 and made


def test_a_failed_refresh_lets_the_collector_go_once_no_other_holds_it(collector: None) -> None:
    heap = FrozenHeap()
    heap.hold()
    heap.hold()  # a refresh asked again (r): the one before is cancelled as it starts
    heap.release()  # the one cancelled
    assert not gc.isenabled()  # the new one still being made
    heap.release()  # it failed too
    assert gc.isenabled()
    heap.release()  # never below none
    heap.hold()
    assert not gc.isenabled()


async def test_the_console_holds_the_collector_while_a_refresh_is_made(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off while a refresh is made, on again once it is taken in, or once it failed."""
    import asyncio

    from meshtop.connect import Sources
    from meshtop.errors import BackendError
    from meshtop.sim.sources import Simulation
    from meshtop.sim.topology import bookinfo
    from meshtop.tui import app as console

    from ..conftest import only

    sim = Simulation(bookinfo(), clock=lambda: 1.8e9)
    app = console.MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    seen: list[bool] = []
    from meshtop.mesh import refresh as real_refresh

    failing: list[Exception] = []

    async def refresh(*args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        if failing:
            raise failing[0]
        return await real_refresh(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(console, "refresh", refresh)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.snapshot is None:
            await asyncio.sleep(0.02)
        app._heap = FrozenHeap()  # the console's, as outside a test
        first = app.snapshot
        app.request_refresh()
        while app.snapshot is first:
            await asyncio.sleep(0.02)
        await pilot.pause()
        assert seen[-1] is False  # held while made
        assert gc.isenabled()  # and let go once taken in
        failing.append(BackendError("gone"))
        app.request_refresh()
        while len(seen) < 3:
            await asyncio.sleep(0.02)
        await pilot.pause()
        assert seen[-1] is False
        assert gc.isenabled()  # the refresh failed: let go
