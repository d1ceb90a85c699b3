"""The console's heap and Python's garbage collector (issue 17).

The collector's passes hold the interpreter's lock: every thread waits, the screen's
too. A pass over the whole heap of a console showing 20,000 services (about a million
tracked objects: the simulator's plan, the layout, the snapshot, the tables' rows) took
0.3-0.6 s of CPU, once every minute or two; a young pass grew with the collector's
thresholds (gen1 up to 146 ms at 50,000 allocations x 20). What a refresh makes is freed
by reference counting when the next replaces it: the collector finds next to nothing.

So, in the console: young passes kept small and gen1 passes rare (`THRESHOLDS`); after
each snapshot is taken in while the main screen alone shows, everything that lives on is
moved out of the collector's way (`gc.freeze`), so that a full pass reads only what was
made since; frozen objects still go when nothing refers to them, and only garbage in
reference cycles would stay. A screen on top (a detail, a dialog) is not frozen: it goes
as it closes, its widgets in cycles. Once the interpreter's allocated blocks
(`sys.getallocatedblocks`, well under a millisecond) have doubled since the first
snapshots, one full pass collects the cycles there are, and the count starts again from
there. The first size is the largest in the first `WARM_S` (a console's first uses, the
edge table's rows and the first detail, double it: a full pass for them, 217 ms at 2,000
services and 713 ms at 20,000, would find nothing to free). The growth is the least of
the last `SEEN` snapshots' counts: a refresh's decoded answers come and go (against a
hostile Prometheus, 23,000 series every refresh), and the count at their peak against
one at their trough asked for a full pass every 30 s, 1.1-1.5 s each. Measured
in benchmarks/RESULTS.md."""

from __future__ import annotations

import gc
import sys
import time
from collections import deque
from collections.abc import Callable

# young passes: gen0 every 20,000 allocations net (at 2,000 services, 50,000 made passes
# of up to 40 ms); gen1 every 50th of those, as what lives on is frozen after each
# snapshot anyway (a gen1 pass reads what lived through a gen0 pass since: at 20,000
# services every fourth gen0 pass took 25-40 ms for it, 1.8% of a core); a full pass (of
# what is not frozen) every 20 gen1
THRESHOLDS = (20_000, 50, 20)
GROWTH = 2.0  # the heap's growth over its first size that asks for a full pass
SEEN = 8  # snapshots whose least count of blocks is the heap's size
WARM_S = 120.0  # from the first snapshot: the heap's first size is its largest by then


class FrozenHeap:
    """`start()` as the console starts (the collector is the process's: not in a test's
    headless console), `settle()` after each snapshot is taken in."""

    def __init__(
        self,
        growth: float = GROWTH,
        seen: int = SEEN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._growth = growth
        self._clock = clock
        self._counts: deque[int] = deque(maxlen=seen)  # the last snapshots' blocks
        self._base = 0  # the heap's first size, or its size after the last full pass
        self._warm_until = 0.0  # the first size is the largest until then
        self.collections = 0  # full passes this asked for
        self._held = 0  # refreshes being made (`hold`): the collector off meanwhile

    def start(self) -> None:
        gc.set_threshold(*THRESHOLDS)

    def hold(self) -> None:
        """A refresh starts: what it makes (the answers, the snapshot, its grades) lives
        until the next one replaces it, and a pass over it finds nothing to free (gen0
        passes of 15-44 ms every few hundred milliseconds of a refresh at 20,000
        services, holding every thread): no pass until it is frozen (`settle`), or the
        refresh has failed (`release`)."""
        self._held += 1
        gc.disable()

    def release(self) -> None:
        """No snapshot to settle (the refresh failed, or a screen is on top): the
        collector as ever, once no other refresh holds it."""
        self._held = max(0, self._held - 1)
        if not self._held:
            gc.enable()

    def settle(self) -> None:
        gc.freeze()
        self._held = 0
        gc.enable()
        now = self._clock()
        if not self._warm_until:
            self._warm_until = now + WARM_S
        self._counts.append(sys.getallocatedblocks())
        if len(self._counts) < (self._counts.maxlen or 1):
            return
        held = min(self._counts)
        if not self._base or now < self._warm_until:
            self._base = max(self._base, held)
        elif held > self._growth * self._base:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.collections += 1
            self._counts.clear()
            self._base = 0  # the size again after the next snapshots
