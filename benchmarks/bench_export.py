"""`meshtop export` of a 5,000-service mesh in each format: meshtop's own time (build the
snapshot from the sources' answers, grade it, render the format) and its peak memory
(tracemalloc, in a run of its own so tracing does not slow the timed runs); and the whole
command, start to end, as a user runs it (`--demo`, so the simulated source is in it).

Budget (issue 8): under 2 s and 300 MB for any format.

    .venv/bin/python benchmarks/bench_export.py [--services 5000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import subprocess
import sys
import time
import tracemalloc

from bench_snapshot import NOW, build, median_ms  # the script's own folder is on the path

from meshtop.cli import tune_gc
from meshtop.export import FORMATS, renderer
from meshtop.report import Report
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tune_gc()
    sim = Simulation(generated(args.services, seed=1), clock=lambda: NOW.timestamp())
    traffic = asyncio.run(sim.metrics.traffic(60))
    workloads = list(asyncio.run(sim.control_plane.workloads()))
    routes = list(asyncio.run(sim.control_plane.routes()))
    snapshot = build(traffic, workloads, routes)
    print(f"{platform.processor() or platform.machine()}, Python {sys.version.split()[0]}")
    print(f"{args.services} services: {len(snapshot.nodes)} nodes, {len(snapshot.edges)} edges\n")
    print("| format | own time (ms) | peak memory (MiB) | output (MB) | whole command (s) |")
    print("|---|---:|---:|---:|---:|")
    for fmt in FORMATS:
        render = renderer(fmt)

        def own(render=render) -> str:  # type: ignore[no-untyped-def]
            return render(Report(build(traffic, workloads, routes)))

        size = len(own().encode())
        took = median_ms(own, args.repeat)
        tracemalloc.start()
        own()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "meshtop", "export", "--demo", "--services",
             str(args.services), "-f", fmt, "-o", "/dev/null"],
            check=True,
        )  # fmt: skip
        whole = time.perf_counter() - started
        print(f"| {fmt} | {took:.0f} | {peak / 2**20:.0f} | {size / 1e6:.1f} | {whole:.2f} |")


if __name__ == "__main__":
    main()
