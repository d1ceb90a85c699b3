"""What a refresh costs the metrics backend, beside what Kiali's graph costs it (issue 17).

A real Prometheus scrapes a generated mesh (`meshtop sim serve`'s exposition, Istio
sidecars) at 200 and 1,000 services; once a window is full the mesh stops being scraped, so
that the server does nothing else while it answers. Then, at one moment:

- **meshtop**: the queries a refresh really sends (`PrometheusMetrics.traffic`, recorded
  as it asks them), the second of two: a refresh as every one after the first is (which
  reporters to ask about which calls, and which buckets, come from the refresh before;
  the first refresh is shown apart, as "1st refresh", where it differs); from this
  checkout and, with `--baseline-src DIR`, from another checkout (built there, in a
  subprocess; its first refresh as "baseline 1st"), whose edges are compared with this
  checkout's, figure by figure. (Only queries are recorded: the first refresh's look at
  the latency buckets' bounds, a label lookup that reads no sample, is not.)
- **Kiali**: the queries Kiali's graph sends for the same graph (rates, p95 and mTLS), per
  namespace, reconstructed from its source (`graph/telemetry/istio/istio.go`: three HTTP
  and three TCP traffic queries; `appender/response_time.go`: two histogram_quantile
  queries; `appender/security_policy.go`: two), with its defaults (a 60s duration,
  idle edges hidden, ambient traffic included): 10 queries per namespace;

each evaluated with `stats=all`, the sets turn about, in a new order each time and each
from a heap Prometheus has just collected, so that they see the same noise.
Per set: Prometheus's own `evalTotalTime` summed over the set's queries (the median over
the repeats), the samples it read (`totalQueryableSamples`), the series answered and the
bytes of the answers; and the ratio to Kiali's set, the median of the per-repeat ratios.
With `-n`: meshtop scoped to one namespace (the one the most edges touch, the costliest
to scope to) against Kiali's graph of that namespace alone.

    .venv/bin/python benchmarks/bench_backend.py [--services 200 1000] [--repeat 9]
        [--scrape-interval 5s] [--window 60] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from meshtop.sim.exposition import MeshExposition
from meshtop.sim.server import MetricsServer
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' servers
from tests.integration.prometheus import running_prometheus

# Run in this checkout or in the baseline's: the queries one refresh sends, in the order
# sent, and the edges it made of the answers.
RECORD = """
import asyncio, json, sys
from meshtop.config import PrometheusConfig
from meshtop.sources.prometheus import PrometheusMetrics
url, at, window, *namespaces = sys.argv[1:]
config = PrometheusConfig(url, dialect="istio", namespaces=tuple(namespaces), timeout_s=600)
source = PrometheusMetrics(config, at=float(at))
sent = []
ask = source._query
def recorded(promql, *args, **kwargs):
    sent.append(promql)
    return ask(promql, *args, **kwargs)
source._query = recorded
figures = ("rps", "error_rate", "client_error_rate", "p50_ms", "p95_ms", "p99_ms", "mtls",
           "tcp_request_bps", "tcp_response_bps", "tcp_connections_per_s")
made = []
for _ in range(2):  # the first refresh, then one as every later refresh is
    del sent[:]
    traffic = asyncio.run(source.traffic(float(window)))
    edges = {f"{e.source} {e.destination}": {f: getattr(e.stats, f) for f in figures}
             for e in traffic.edges}
    made.append({"sent": list(sent), "edges": edges})
print(json.dumps({"first": made[0], **made[1]}))
"""

# Kiali's group-by label lists, as its graph queries write them
_ENDS = (
    "source_cluster,source_workload_namespace,source_workload,source_canonical_service,"
    "source_canonical_revision,destination_cluster,destination_service_namespace,"
    "destination_service,destination_service_name,destination_workload_namespace,"
    "destination_workload,destination_canonical_service,destination_canonical_revision"
)
_PRINCIPALS = _ENDS.replace(
    "source_canonical_revision,", "source_canonical_revision,source_principal,"
).replace("destination_canonical_revision", "destination_canonical_revision,destination_principal")


def kiali_queries(namespace: str, window_s: int) -> list[str]:
    """The queries Kiali's graph sends for one namespace: its traffic (HTTP and TCP), its
    p95 response times and its security policy, as its source writes them."""
    w = f"{window_s}s"
    http_by = f"{_ENDS},request_protocol,response_code,grpc_response_status,response_flags"
    tcp_by = f"app,{_ENDS},response_flags"
    src, dst = 'reporter=~"waypoint|source"', 'reporter=~"waypoint|destination"'
    host = f'"^.+\\\\.{namespace}\\\\..+$"'
    out = []
    for metric, by in (("istio_requests_total", http_by), ("istio_tcp_sent_bytes_total", tcp_by)):
        out += [
            f'sum(rate({metric}{{{src},source_workload_namespace!="{namespace}",'
            'destination_workload_namespace="unknown",destination_workload="unknown",'
            f"destination_service=~{host}}} [{w}])) by ({by}) > 0",
            f'sum(rate({metric}{{{dst},destination_workload_namespace="{namespace}"}} [{w}])) '
            f"by ({by}) > 0",
            f'sum(rate({metric}{{{src},source_workload_namespace="{namespace}"}} [{w}])) '
            f"by ({by}) > 0",
        ]
    bucket = "istio_request_duration_milliseconds_bucket"
    for selector in (
        f'reporter=~"destination|waypoint",destination_service_namespace="{namespace}"',
        f'reporter=~"source|waypoint",source_workload_namespace="{namespace}"',
    ):
        out.append(
            f"histogram_quantile(0.95, sum(rate({bucket}{{{selector}}}[{w}])) "
            f"by (le,{_ENDS},request_protocol)) > 0"
        )
    for selector in (
        f'source_workload_namespace!="{namespace}",destination_service_namespace="{namespace}"',
        f'source_workload_namespace="{namespace}"',
    ):
        out.append(
            " OR ".join(
                f"(sum(rate({metric}{{{dst},{selector}}}[{w}])) by ({_PRINCIPALS},"
                "connection_security_policy) > 0)"
                for metric in ("istio_requests_total", "istio_tcp_sent_bytes_total")
            )
        )
    return out


def record(src: str | None, url: str, at: float, window_s: int, scope: Sequence[str]) -> Any:
    """What one refresh of meshtop (this checkout, or the one at `src`) sends and makes."""
    env = {**os.environ, "PYTHONPATH": src or str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", RECORD, url, repr(at), str(window_s), *scope],
        capture_output=True, text=True, check=True, env=env, cwd=src or None,
    )  # fmt: skip
    return json.loads(out.stdout)


def evaluate(client: httpx.Client, promql: str, at: float) -> tuple[float, int, int, int]:
    """(evaluation seconds, samples read, series answered, bytes of the answer)."""
    response = client.get("/api/v1/query", params={"query": promql, "time": at, "stats": "all"})
    body = response.json()
    assert body["status"] == "success", body
    stats: dict[str, Any] = body["data"]["stats"]
    plain = client.get("/api/v1/query", params={"query": promql, "time": at})
    return (
        float(stats["timings"]["evalTotalTime"]),
        int(stats["samples"]["totalQueryableSamples"]),
        len(body["data"]["result"]),
        len(plain.content),
    )


def collect(client: httpx.Client) -> None:
    """Prometheus's garbage collected now (Go's pprof handler runs the collector first)."""
    client.get("/debug/pprof/heap", params={"gc": "1"}).raise_for_status()


def differences(before: dict[str, Any], after: dict[str, Any]) -> str:
    """How this checkout's edges differ from the baseline's, figure by figure."""
    if set(before) != set(after):
        return f"edges differ: {len(set(before) ^ set(after))} not in both"
    worst: dict[str, float] = {}
    for key, figures in before.items():
        for name, old in figures.items():
            new = after[key][name]
            if old is None or new is None:
                gap = 0.0 if old is new else math.inf
            else:
                gap = abs(new - old) / max(abs(old), 1e-12) if new != old else 0.0
            worst[name] = max(worst.get(name, 0.0), gap)
    shown = ", ".join(f"{k} {v:.1e}" for k, v in worst.items() if v > 0) or "none"
    return f"{len(before)} edges, the same; largest relative difference per figure: {shown}"


def seconds(interval: str) -> float:
    """A Prometheus duration of one unit (`5s`, `1m`, `500ms`) in seconds."""
    for unit, factor in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if interval.endswith(unit) and interval[: -len(unit)].isdigit():
            return int(interval[: -len(unit)]) * factor
    raise ValueError(f"not a duration: {interval!r}")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def run(services: int, args: argparse.Namespace, binary: str, say: Callable[[str], None]) -> None:
    sim = Simulation(generated(services, seed=1))
    flows = sim.flows()
    touching: dict[str, int] = {}
    for f in flows:
        for ns in {f.source.workload.namespace, f.destination.workload.namespace}:
            touching[ns] = touching.get(ns, 0) + 1
    namespaces = sorted(n for n in touching if n not in ("unknown", "external"))
    busiest = max(namespaces, key=lambda n: (touching[n], n))
    server = MetricsServer(MeshExposition(sim), "127.0.0.1", 0)
    server.start_in_thread()
    target = f"127.0.0.1:{server.server_address[1]}"
    with (
        tempfile.TemporaryDirectory() as work,
        running_prometheus([target], Path(work), args.scrape_interval) as prom,
    ):
        url = prom.url
        client = httpx.Client(base_url=url, timeout=600)  # a heavy set takes seconds
        try:
            started = time.time()
            time.sleep(args.window + 10)  # a full window of samples, and a scrape or two
            at = time.time() - 1
            server.shutdown()  # the server answers queries, and nothing else
            # A scrape begun before `at` stamps its samples with its start and is stored
            # only once read whole (106 MB at 1,000 services, seconds under load): wait for
            # it, within its timeout (the interval), else the first set recorded misses it
            # and the next does not (a refresh's figures seen to differ by 12% at one `at`).
            time.sleep(seconds(args.scrape_interval) + 2)
            scrapes = client.get(
                "/api/v1/query",
                params={"query": f"sum_over_time(up[{args.window}s])", "time": at},
            ).json()["data"]["result"]
            say(
                f"\n## {services} services: {len(flows)} simulated edges, {len(namespaces)} "
                f"namespaces; scraped every {args.scrape_interval} for {at - started:.0f}s "
                f"({scrapes[0]['value'][1] if scrapes else 0} good scrapes in the "
                f"{args.window}s window); -n {busiest} ({touching[busiest]} edges touch it)"
            )
            sources = {"meshtop": None} | (
                {"baseline": args.baseline_src} if args.baseline_src else {}
            )
            for scope in ((), (busiest,)):
                made = {name: record(src, url, at, args.window, scope) for name, src in
                        sources.items()}  # fmt: skip
                sets = {name: m["sent"] for name, m in made.items()}
                for name, m in made.items():
                    first = m["first"]["sent"]
                    if first != m["sent"]:
                        sets["1st refresh" if name == "meshtop" else f"{name} 1st"] = first
                sets["kiali"] = [
                    q for ns in (scope or namespaces) for q in kiali_queries(ns, args.window)
                ]
                totals: dict[str, list[float]] = {name: [] for name in sets}
                read: dict[str, tuple[int, int, int]] = {}
                per_query: dict[str, list[list[float]]] = {
                    name: [[] for _ in qs] for name, qs in sets.items()
                }
                turns = random.Random(services)
                for _ in range(args.repeat):
                    # turn about, in a new order each time and each set from a heap just
                    # collected: the same noise for all, and none paying for the garbage
                    # of the set before it (in a fixed order, of two latency queries the
                    # second measured x1.18 of the first; so, x0.90)
                    order = list(sets.items())
                    turns.shuffle(order)
                    for name, queries in order:
                        collect(client)
                        found = [evaluate(client, q, at) for q in queries]
                        totals[name].append(sum(x[0] for x in found))
                        for i, x in enumerate(found):
                            per_query[name][i].append(x[0])
                        read[name] = (
                            sum(x[1] for x in found),
                            sum(x[2] for x in found),
                            sum(x[3] for x in found),
                        )
                label = f"-n {busiest}" if scope else "whole mesh"
                say(f"\n{label}: medians of {args.repeat}, evalTotalTime summed over each set")
                kiali = totals["kiali"]
                for name, queries in sets.items():
                    samples, series, size = read[name]
                    ratio = median([a / b for a, b in zip(totals[name], kiali, strict=True)])
                    say(
                        f"  {name:<12} {len(queries):>4} queries  {median(totals[name]):8.3f} s  "
                        f"{samples:>10,} samples  {series:>7,} series  {size / 1e6:6.2f} MB  "
                        f"x{ratio:.2f} of Kiali's"
                    )
                    if name != "kiali":
                        parts = "; ".join(
                            f"{median(t):.3f} s" for t in per_query[name] if t
                        )  # fmt: skip
                        say(f"               each query: {parts}")
                if "baseline" in made:
                    for which, edges in (("1st refresh", made["meshtop"]["first"]["edges"]),
                                         ("meshtop", made["meshtop"]["edges"])):  # fmt: skip
                        said = differences(made["baseline"]["edges"], edges)
                        say(f"  figures of {which} against the baseline's: {said}")
        finally:
            client.close()
            server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--scrape-interval", default="5s")
    parser.add_argument("--window", type=int, default=60, help="seconds; meshtop's and Kiali's")
    parser.add_argument("--baseline-src", default=None, help="another checkout of meshtop")
    args = parser.parse_args()
    binary = os.environ.get("MESHTOP_PROMETHEUS_BIN") or shutil.which("prometheus")
    if binary is None:
        sys.exit("no prometheus binary on PATH (or MESHTOP_PROMETHEUS_BIN)")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {version.splitlines()[0] if version else binary}; "
        f"window {args.window}s"
    )
    for services in args.services:
        run(services, args, binary, lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
