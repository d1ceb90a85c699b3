"""What several clusters cost meshtop: joining what each cluster's Prometheus said
(`federation.merge_traffic`, the calls between clusters counted once) against building the
snapshot from one aggregated answer, and the graph's layout with cluster boxes against the
same topology drawn in namespace bands alone. A generated mesh spread over 2 and 3 clusters.
Medians, ratios within one run.

    .venv/bin/python benchmarks/bench_clusters.py [--repeat 9]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
from datetime import UTC, datetime

from bench_snapshot import median_ms  # the script's own folder is on the path

from meshtop.cli import tune_gc
from meshtop.federation import merge_traffic
from meshtop.layout import layout
from meshtop.mesh import build_snapshot
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import DEMO_CLUSTERS, generated, spread
from meshtop.sources.protocols import Traffic


def cluster(node: str) -> str:
    return node.split("/", 1)[0]


def measure(services: int, n: int, repeat: int) -> str:
    sim = Simulation(spread(generated(services, seed=1), DEMO_CLUSTERS[:n]), clock=lambda: 1.8e9)
    whole = asyncio.run(sim.metrics.traffic(60))
    nodes = {w.id: w for w in whole.nodes}
    # each cluster's Prometheus: the calls its proxies report, those with an end in it
    parts = {
        c: Traffic(
            [w for w in whole.nodes if w.cluster == c or w.cluster not in DEMO_CLUSTERS],
            [e for e in whole.edges if c in (cluster(e.source), cluster(e.destination))],
        )
        for c in DEMO_CLUSTERS[:n]
    }
    crossing = sum(
        1 for e in whole.edges
        if cluster(e.source) != cluster(e.destination)
        and {cluster(e.source), cluster(e.destination)} <= set(DEMO_CLUSTERS)
    )  # fmt: skip
    merge = median_ms(lambda: merge_traffic(parts), repeat)
    merged = merge_traffic(parts)
    assert len(merged.edges) == len(whole.edges)

    def build() -> None:
        build_snapshot(generated_at=datetime.now(UTC), window_s=60, workloads=merged.nodes,
                       edges=merged.edges, routes=(), sources={})  # fmt: skip

    built = median_ms(build, repeat)
    used = sorted({x for e in whole.edges for x in e.key})
    keys = [e.key for e in whole.edges]
    plain = median_ms(
        lambda: layout(used, keys, label=lambda x: nodes[x].label,
                       group=lambda x: nodes[x].namespace),
        max(3, repeat // 3),
    )  # fmt: skip
    boxed = median_ms(
        lambda: layout(used, keys, label=lambda x: nodes[x].label,
                       group=lambda x: f"{nodes[x].cluster}/{nodes[x].namespace}"),
        max(3, repeat // 3),
    )  # fmt: skip
    return (f"| {services:,} | {n} | {len(nodes):,} | {len(whole.edges):,} | {crossing} | "
            f"{merge:.1f} | {built:.1f} | {plain:.0f} | {boxed:.0f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    tune_gc()
    print(f"python {platform.python_version()}, {platform.machine()}, repeat {args.repeat}\n")
    print("| services | clusters | nodes | edges | crossing | merge (ms) | build (ms) "
          "| layout, bands (ms) | layout, clusters (ms) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for services in (200, 1000):
        for n in (2, 3):
            print(measure(services, n, args.repeat))


if __name__ == "__main__":
    main()
