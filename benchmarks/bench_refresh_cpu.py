"""What a steady refresh costs the console's threads behind the screen, by part, at N
simulated services (issue 17: the idle CPU at 20,000 services): a refresh of the same
mesh after another, as the console makes one every 2 s, each part's CPU time (the
process's, `time.process_time`, every thread of it; one part at a time):

- **refresh**: the simulator's walk and the snapshot joined (`mesh.refresh`);
- **grades**: every edge graded with the console's memory (`graphview.grades_of`);
- **view**: the graph's view of it, versioned apps (`graphview.build`, its grades kept);
- **history**: its rates recorded for the stat tab (`Rates._record`).

The terminal, Textual and the frames are not in it (`bench_console.py` measures those).
The console's garbage-collector settings are used (`tune_gc`), and what lives on is frozen
after each refresh, as the console does. To compare two trees, run each tree's copy of
this file: it imports the meshtop of the tree it is in.

    .venv/bin/python benchmarks/bench_refresh_cpu.py [--services 20000] [--refreshes 12]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meshtop import graphview
from meshtop.cli import tune_gc
from meshtop.graphview import ViewOptions, grades_of
from meshtop.health import HealthMemory
from meshtop.mesh import refresh
from meshtop.model.node_stats import Rates
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated
from meshtop.tui.heap import THRESHOLDS

PARTS = ("refresh", "grades", "view", "history")
WARM = 3  # refreshes before the timed ones: the walk planned, the shapes and caches made


def bench(services: int, refreshes: int) -> tuple[dict[str, list[float]], int]:
    """Each part's CPU ms over `refreshes` steady refreshes, and the edges of one."""
    now = [1_800_000_000.0]
    sim = Simulation(generated(services), clock=lambda: now[0])
    memory, rates, options = HealthMemory(), Rates(10), ViewOptions()
    loop = asyncio.new_event_loop()
    tune_gc()
    gc.set_threshold(*THRESHOLDS)  # the console's (`tui.heap`)
    parts: dict[str, list[float]] = {p: [] for p in PARTS}
    edges = 0
    for i in range(WARM + refreshes):
        at = [time.process_time()]
        snapshot = loop.run_until_complete(refresh(sim.clusters))
        at.append(time.process_time())
        grades_of(snapshot, options.thresholds, memory)
        at.append(time.process_time())
        graphview.build(snapshot, options, memory)
        at.append(time.process_time())
        rates._record(snapshot)
        at.append(time.process_time())
        gc.freeze()  # as the console does once a snapshot is taken in
        now[0] += 2.0
        edges = len(snapshot.edges)
        if i >= WARM:
            for part, start, end in zip(PARTS, at, at[1:], strict=False):
                parts[part].append((end - start) * 1000)
    loop.close()
    return parts, edges


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--services", type=int, default=20000)
    parser.add_argument("--refreshes", type=int, default=12)
    opts = parser.parse_args()
    parts, edges = bench(opts.services, opts.refreshes)
    medians = {p: statistics.median(v) for p, v in parts.items()}
    total = [sum(v) for v in zip(*parts.values(), strict=True)]
    print(
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, tree {Path(__file__).parents[1]}"
    )
    print(
        f"{opts.services:,} services, {edges:,} edges: CPU ms, median of {opts.refreshes} refreshes"
    )
    print("| " + " | ".join(PARTS) + " | all |")
    print("|" + "---:|" * (len(PARTS) + 1))
    cells = " | ".join(f"{medians[p]:.0f}" for p in PARTS)
    print(f"| {cells} | {statistics.median(total):.0f} |")


if __name__ == "__main__":
    main()
