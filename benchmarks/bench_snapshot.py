"""Snapshot build and JSON export for simulated meshes of 100, 1,000 and 5,000 services.

meshtop's own time is what it does with the sources' answers: joining them into a
snapshot, building the topology graph, grading health, and rendering JSON. The simulated
sources' time (standing in for a backend) is reported beside it, not counted in it.
Prints a Markdown table of medians; peak memory comes from a separate tracemalloc run so
that tracing does not slow the timed runs. Also times `meshtop --help` start-up.

    .venv/bin/python benchmarks/bench_snapshot.py [--sizes 100,1000,5000] [--repeat 9]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime

from meshtop.cli import tune_gc
from meshtop.export import renderer
from meshtop.health import grade
from meshtop.mesh import build_snapshot
from meshtop.model import MeshSnapshot
from meshtop.report import Report
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated
from meshtop.sources.protocols import Traffic

NOW = datetime(2027, 1, 15, tzinfo=UTC)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def build(traffic: Traffic, workloads: list, routes: list) -> MeshSnapshot:  # type: ignore[type-arg]
    snapshot = build_snapshot(
        generated_at=NOW,
        window_s=60,
        workloads=(*workloads, *traffic.nodes),
        edges=traffic.edges,
        routes=routes,
        sources={},
    )
    _ = snapshot.graph
    grade(snapshot)
    return snapshot


def bench_size(services: int, repeat: int) -> dict[str, float]:
    sim = Simulation(generated(services, seed=1), clock=lambda: NOW.timestamp())
    traffic = asyncio.run(sim.metrics.traffic(60))
    workloads = list(asyncio.run(sim.control_plane.workloads()))
    routes = list(asyncio.run(sim.control_plane.routes()))
    render = renderer("json")
    snapshot = build(traffic, workloads, routes)

    source_ms = median_ms(lambda: asyncio.run(sim.metrics.traffic(60)), repeat)
    build_ms = median_ms(lambda: build(traffic, workloads, routes), repeat)
    export_ms = median_ms(lambda: render(Report(snapshot)), repeat)

    tracemalloc.start()
    render(Report(build(traffic, workloads, routes)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "services": services,
        "nodes": len(snapshot.nodes),
        "edges": len(snapshot.edges),
        "source_ms": source_ms,
        "build_ms": build_ms,
        "export_ms": export_ms,
        "peak_mib": peak / 2**20,
    }


def startup_ms(repeat: int) -> tuple[float, float]:
    def run(args: list[str]) -> None:
        subprocess.run(args, check=True, capture_output=True)

    bare = median_ms(lambda: run([sys.executable, "-c", "pass"]), repeat)
    help_ = median_ms(lambda: run([sys.executable, "-m", "meshtop", "--help"]), repeat)
    return help_, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    tune_gc()  # as `meshtop` does at start-up
    print(f"python {platform.python_version()}, {platform.machine()}, repeat {args.repeat}\n")
    print(
        "| services | nodes | edges | simulated source (ms) | snapshot build (ms) "
        "| JSON export (ms) | build + export (ms) | peak memory (MiB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        r = bench_size(size, args.repeat)
        print(
            f"| {r['services']:,} | {r['nodes']:,} | {r['edges']:,} | {r['source_ms']:.1f} "
            f"| {r['build_ms']:.1f} | {r['export_ms']:.1f} | {r['build_ms'] + r['export_ms']:.1f} "
            f"| {r['peak_mib']:.1f} |"
        )
    help_ms, bare_ms = startup_ms(args.repeat)
    print(f"\n`meshtop --help`: {help_ms:.0f} ms median; bare `python -c pass`: {bare_ms:.0f} ms")


if __name__ == "__main__":
    main()
