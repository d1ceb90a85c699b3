"""A namespace's detail's histories against a real Prometheus (issue 17): asked one at a
time, as the detail asked them before, against asked together, N workloads a set
(`PrometheusMetrics.histories`, `BATCH_NAMES`).

A real Prometheus scrapes `meshtop sim serve --services N` every 5 s (`bench_console`'s
`with_prometheus`); once a minute of samples is in, the detail of the namespace with the
most members is fetched as the console fetches it (`detail.fetch`, the detail's window of
15 minutes), each way in turn (each first in turn), at one fixed moment a round. Per
fetch: the time it took, the requests sent, the CPU this process and Prometheus spent,
and the longest wait of a 5 ms ticker on the fetch's event loop (the screen's thread,
waiting for the interpreter's lock while the answers are read); then Prometheus's own
evaluation time and samples read (`stats=all`) for the same queries asked one after
another. The ways' histories are compared, figure by figure, to 1e-9.

With `--dialect linkerd` the simulator writes Linkerd's metrics (its data stores are
StatefulSets) and one more way is measured: a workload matched by its first label alone
(`deployment`, as before 7e3c559, a StatefulSet's history then empty), against by each
kind's label, one selector a label: what asking by three labels costs Prometheus.

    .venv/bin/python benchmarks/bench_histories.py [--services 2000] [--rounds 7]
        [--sizes 4 8 16 64] [--dialect istio|linkerd]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from typing import Any

import httpx
from bench_console import cpu_s, with_prometheus

from meshtop.config import PrometheusConfig
from meshtop.detail import Detail, fetch, subject
from meshtop.history import history_step
from meshtop.mesh import refresh
from meshtop.model import History
from meshtop.sources.dialects import Peer, dialect
from meshtop.sources.prometheus import PrometheusMetrics
from meshtop.sources.prometheus import source as prometheus_source
from meshtop.sources.prometheus.queries import batch_queries
from meshtop.sources.prometheus.source import _batches
from meshtop.sources.protocols import ClusterSources, Pair
from tests.integration.prometheus import same_figures

WINDOW_S = 900.0  # the detail's window (`DETAIL_WINDOW_S`)
TICK_S = 0.005


class OneAtATime:
    """The source as the detail saw it before: one history at a time (no `histories`)."""

    def __init__(self, source: PrometheusMetrics) -> None:
        self._source = source

    async def history(self, source: str | None, destination: str | None, w: float) -> History:
        return await self._source.history(source, destination, w)


async def _timed(metrics: Any, about: Any, prom_pid: int) -> tuple[Detail, dict[str, float]]:
    longest = 0.0
    done = False

    async def tick() -> None:
        nonlocal longest
        while not done:
            t = time.perf_counter()
            await asyncio.sleep(TICK_S)
            longest = max(longest, time.perf_counter() - t - TICK_S)

    ticker = asyncio.ensure_future(tick())
    cpu, prom, wall = time.process_time(), cpu_s(prom_pid), time.perf_counter()
    detail = await fetch(metrics, about, WINDOW_S)
    figures = {
        "wall_ms": 1000 * (time.perf_counter() - wall),
        "cpu_ms": 1000 * (time.process_time() - cpu),
        "prometheus_cpu_ms": 1000 * (cpu_s(prom_pid) - prom),
    }
    done = True
    await ticker
    figures["longest_wait_ms"] = 1000 * longest
    return detail, figures


FIRST_ONLY = "first label only, 8 a set"  # a Linkerd workload by `deployment` alone
ALL_LABELS = Peer.workloads


def _labels(first_only: bool) -> None:
    """Which labels a workload is asked by: all its peer's (as meshtop asks), or the
    first alone (as it asked before 7e3c559)."""
    Peer.workloads = (lambda p: (p.workload,)) if first_only else ALL_LABELS  # type: ignore[method-assign]


def measure(
    url: str, rounds: int, prom_pid: int, sizes: list[int], mesh: str = "istio"
) -> dict[str, Any]:
    live = PrometheusMetrics(PrometheusConfig(url, dialect=mesh))
    snapshot = asyncio.run(refresh(ClusterSources.one(live), window_s=60))
    by_namespace: dict[str, list[str]] = {}
    for n in snapshot.nodes:
        by_namespace.setdefault(n.split("/", 2)[1], []).append(n)
    namespace, members = max(by_namespace.items(), key=lambda kv: len(kv[1]))
    about = subject(snapshot, namespace, (), members)
    out: dict[str, Any] = {"namespace": namespace, "members": len(members), "same": True,
                           "dialect": mesh}  # fmt: skip
    ways = ["one at a time", *(f"together, {n} a set" for n in sizes)]
    if mesh == "linkerd":
        ways.append(FIRST_ONLY)
    runs: dict[str, list[dict[str, float]]] = {way: [] for way in ways}
    for r in range(rounds):
        # a moment the last scrape (of seconds, at 2,000 services) is in by
        at = time.time() - 15
        got = {}
        for i in range(len(ways)):
            way = ways[(i + r) % len(ways)]  # each way first in turn
            source = PrometheusMetrics(PrometheusConfig(url, dialect=mesh), at=at)
            if way == "one at a time":
                metrics: Any = OneAtATime(source)
            else:
                metrics = source
                prometheus_source.BATCH_NAMES = 8 if way == FIRST_ONLY else int(way.split()[1])
            _labels(way == FIRST_ONLY)
            try:
                detail, figures = asyncio.run(_timed(metrics, about, prom_pid))
                figures["requests"] = source.queries_sent
                size = 1 if way == "one at a time" else prometheus_source.BATCH_NAMES
                figures["eval_ms"], figures["samples"] = evaluated(
                    url, about.pairs(), size, at, mesh
                )
            finally:
                _labels(False)
            runs[way].append(figures)
            got[way] = detail
        out["same"] &= all(
            same_figures(got[w].history, got[ways[0]].history) for w in ways if w != FIRST_ONLY
        )
    out["runs"] = runs
    return out


def evaluated(
    url: str, pairs: list[Pair], size: int, at: float, mesh: str = "istio"
) -> tuple[float, int]:
    """Prometheus's own evaluation time (ms) and samples read for the queries the
    histories of `pairs` send, `size` workloads a set (1: one at a time), asked one
    after another with `stats=all`."""
    prometheus_source.BATCH_NAMES = size
    step = history_step(WINDOW_S)
    took, samples = 0.0, 0
    with httpx.Client(timeout=120) as client:
        for batch in _batches(pairs):
            queries = batch_queries(
                dialect(mesh), batch.sources, batch.destinations, WINDOW_S, step
            )
            for key, query in queries.items():
                params: dict[str, Any] = {"query": query, "stats": "all"}
                if key == "window":
                    path, params["time"] = "query", at
                else:
                    path = "query_range"
                    params.update(start=at - WINDOW_S, end=at, step=f"{step:g}s")
                stats = client.get(f"{url}/api/v1/{path}", params=params).json()["data"]["stats"]
                took += 1000 * stats["timings"]["evalTotalTime"]
                samples += stats["samples"]["totalQueryableSamples"]
    return took, samples


def report(services: int, found: dict[str, Any]) -> str:
    lines = [
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        f"{services:,} services ({found['dialect']}), namespace {found['namespace']} "
        f"({found['members']} members), "
        f"a window of {WINDOW_S / 60:g} minutes; medians of {len(found['runs']['one at a time'])}",
        "",
        "| way | wall | requests | this process's CPU | Prometheus's CPU | longest wait, "
        "5 ms ticker | Prometheus's evaluation, one after another | samples read |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, runs in found["runs"].items():

        def med(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        lines.append(
            f"| {name} | {med('wall_ms'):,.0f} ms | {med('requests'):,.0f} | "
            f"{med('cpu_ms'):,.0f} ms | {med('prometheus_cpu_ms'):,.0f} ms | "
            f"{med('longest_wait_ms'):,.1f} ms | {med('eval_ms'):,.0f} ms | "
            f"{med('samples'):,.0f} |"
        )
    lines.append("")
    lines.append(f"the same histories to 1e-9: {'yes' if found['same'] else 'NO'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 64])
    parser.add_argument("--dialect", choices=["istio", "linkerd"], default="istio")
    args = parser.parse_args()
    found: dict[str, Any] = {}

    def go(url: str) -> None:
        found.update(measure(url, args.rounds, seen["prometheus_pid"], args.sizes, args.dialect))

    seen: dict[str, Any] = {}
    with_prometheus(args.services, go, seen, args.dialect)
    print(report(args.services, found))
    if not found["same"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
