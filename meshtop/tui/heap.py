"""The console's heap and Python's garbage collector (issue 17).

The collector's passes hold the interpreter's lock: every thread waits, the screen's
too. A pass over the whole heap of a console showing 20,000 services (about a million
tracked objects: the simulator's plan, the layout, the snapshot, the tables' rows) took
0.3-0.6 s of CPU, once every minute or two; a young pass grew with the collector's
thresholds (gen1 up to 146 ms at 50,000 allocations x 20). What a refresh makes is freed
by reference counting when the next replaces it: the collector finds next to nothing.

So, in the console: young passes kept small (`THRESHOLDS`); after each snapshot is taken
in, everything that lives on is moved out of the collector's way (`gc.freeze`), so that
a full pass reads only what was made since; frozen objects still go when nothing refers
to them, and only garbage in reference cycles would stay. What the frozen heap holds is
counted now and then (`LOOK_EVERY_S`: counting walks it, 10 ms a million objects); once
it has grown to twice what it held after the first snapshot, one full pass collects the
cycles there are, and the count starts again from there. Measured in
benchmarks/RESULTS.md."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

# young passes: gen0 every 20,000 allocations net, gen1 every fourth of those (a gen1 pass
# at 20,000 services: 32-44 ms of CPU), a full pass (of what is not frozen) every 20 gen1
THRESHOLDS = (20_000, 4, 20)
LOOK_EVERY_S = 30.0
GROWTH = 2.0  # the frozen heap's growth over its first size that asks for a full pass


class FrozenHeap:
    """`start()` as the console starts (the collector is the process's: not in a test's
    headless console), `settle()` after each snapshot is taken in."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, growth: float = GROWTH) -> None:
        self._clock = clock
        self._growth = growth
        self._base = 0  # objects frozen after the first snapshot, or the last full pass
        self._looked = 0.0
        self.collections = 0  # full passes this asked for

    def start(self) -> None:
        gc.set_threshold(*THRESHOLDS)

    def settle(self) -> None:
        gc.freeze()
        now = self._clock()
        if self._base and now - self._looked < LOOK_EVERY_S:
            return
        self._looked = now
        held = gc.get_freeze_count()
        if not self._base:
            self._base = held
        elif held > self._growth * self._base:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.collections += 1
            self._base = gc.get_freeze_count()
