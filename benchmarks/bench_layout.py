"""Graph layout time (`meshtop/layout/`) for generated meshes, and for the issue's budget
case of 1,000 nodes and 1,500 edges. Medians; the layout runs only when the topology
changes, never on a change of numbers. Issue 17's scale case is 2,000 services.

    .venv/bin/python benchmarks/bench_layout.py [--repeat 5] [--services 100 1000 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform

from bench_snapshot import median_ms  # the script's own folder is on the path

from meshtop.cli import tune_gc
from meshtop.layout import COMPACT, FULL, Density, layout
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated


def run(
    snapshot: MeshSnapshot,
    nodes: list[str],
    edges: list[tuple[str, str]],
    repeat: int,
    density: Density = FULL,
) -> float:
    def once() -> None:
        layout(
            nodes,
            edges,
            label=lambda n: snapshot.nodes[n].label,
            group=lambda n: snapshot.nodes[n].namespace,
            density=density,
        )

    once()  # warm up
    return median_ms(once, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--services", type=int, nargs="+", default=[100, 1000, 2000])
    args = parser.parse_args()
    tune_gc()
    print(f"python {platform.python_version()}, {platform.machine()}, repeat {args.repeat}\n")
    print("| mesh | nodes | edges | layout, full (ms) | compact (ms) |")
    print("|---|---:|---:|---:|---:|")
    for services in args.services:
        sim = Simulation(generated(services, seed=1), clock=lambda: 1.8e9)
        snap = asyncio.run(refresh(sim.clusters))
        used = sorted({n for e in snap.edges for n in e.key})
        edges = [e.key for e in snap.edges]
        ms = run(snap, used, edges, args.repeat)
        compact = run(snap, used, edges, args.repeat, COMPACT)
        print(
            f"| generated {services} services | {len(used):,} | {len(edges):,} | {ms:.0f} "
            f"| {compact:.0f} |"
        )
        if services == 1000:
            # the budget case: 1,000 nodes, 1,500 edges
            nodes = used[:1000]
            keep = set(nodes)
            some = [e for e in edges if e[0] in keep and e[1] in keep][:1500]
            ms = run(snap, nodes, some, args.repeat)
            compact = run(snap, nodes, some, args.repeat, COMPACT)
            print(
                f"| budget case (from the 1,000) | {len(nodes):,} | {len(some):,} | {ms:.0f} "
                f"| {compact:.0f} |"
            )


if __name__ == "__main__":
    main()
