"""What one refresh costs Prometheus itself: its own evaluation time and the samples it
reads (`stats=all`) for the snapshot queries a refresh sends (recorded as it sends them,
a refresh as every one after the first is: `bench_backend.record`), over a real
Prometheus scraping a generated mesh. With `--baseline-src DIR`, the queries of another
checkout of meshtop (run there, in a subprocess) are timed against the same server, turn
about, so that the two sets of figures see the same data and the same noise.
`bench_backend.py` sets them beside Kiali's.

    .venv/bin/python benchmarks/bench_prometheus_eval.py [--services 300] [--repeat 15]
        [--baseline-src /tmp/before] [--namespace NS]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench_backend import record  # beside this file: run as benchmarks/bench_prometheus_eval.py

from meshtop.sim.exposition import MeshExposition
from meshtop.sim.server import MetricsServer
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' servers
from tests.integration.prometheus import running_prometheus

WINDOW_S = 60


def queries_of(src: str | None, url: str, at: float, namespaces: tuple[str, ...]) -> list[str]:
    """The queries a refresh of this checkout (or of the one at `src`) sends."""
    sent: list[str] = record(src, url, at, WINDOW_S, namespaces)["sent"]
    return sent


def evaluate(client: httpx.Client, promql: str, at: float) -> tuple[float, int, int]:
    """(evaluation seconds, samples read, series answered) as Prometheus reports them."""
    body = client.get("/api/v1/query", params={"query": promql, "time": at, "stats": "all"}).json()
    assert body["status"] == "success", body
    stats: dict[str, Any] = body["data"]["stats"]
    return (
        float(stats["timings"]["evalTotalTime"]),
        int(stats["samples"]["totalQueryableSamples"]),
        len(body["data"]["result"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--baseline-src", default=None)
    parser.add_argument("--namespace", default=None, help="also time -n NS (default: the first)")
    args = parser.parse_args()
    binary = os.environ.get("MESHTOP_PROMETHEUS_BIN") or shutil.which("prometheus")
    if binary is None:
        sys.exit("no prometheus binary on PATH (or MESHTOP_PROMETHEUS_BIN)")
    sim = Simulation(generated(args.services, seed=1))
    namespace = args.namespace or sorted({f.source.workload.namespace for f in sim.flows()})[1]
    server = MetricsServer(MeshExposition(sim), "127.0.0.1", 0)
    server.start_in_thread()
    target = f"127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as work, running_prometheus([target], Path(work)) as prom:
        client = httpx.Client(base_url=prom.url, timeout=600)  # a heavy query takes seconds
        try:
            time.sleep(WINDOW_S + 5)  # a full window of samples
            at = time.time() - 1
            sets = {"this checkout": None} | (
                {"baseline": args.baseline_src} if args.baseline_src else {}
            )
            edges = len(sim.flows())
            print(f"{args.services} services, {edges} simulated edges; window {WINDOW_S}s; "
                  f"repeat {args.repeat}; Prometheus evalTotalTime")  # fmt: skip
            for scope in ((), (namespace,)):
                queries = {name: queries_of(src, prom.url, at, scope) for name, src in sets.items()}
                times: dict[tuple[str, int], list[float]] = {}
                reads: dict[tuple[str, int], tuple[int, int]] = {}
                for _ in range(args.repeat):
                    for name, qs in queries.items():  # turn about: the same noise for both
                        for q, promql in enumerate(qs):
                            took, samples, series = evaluate(client, promql, at)
                            times.setdefault((name, q), []).append(took * 1000)
                            reads[(name, q)] = (samples, series)
                label = f"-n {namespace}" if scope else "whole mesh"
                for name in queries:
                    parts = [
                        f"{promql.split(' (')[0]} {statistics.median(times[(name, q)]):.1f} ms "
                        f"({reads[(name, q)][0]} samples, {reads[(name, q)][1]} series)"
                        for q, promql in enumerate(queries[name])
                    ]
                    total = sum(
                        statistics.median(times[(name, q)]) for q in range(len(queries[name]))
                    )
                    print(f"{label:>22} | {name:<13} | total {total:.1f} ms | " + "; ".join(parts))
        finally:
            client.close()
            server.shutdown()


if __name__ == "__main__":
    main()
