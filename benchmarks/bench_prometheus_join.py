"""Parse and join a refresh's Prometheus answers for about 5,000 edges.

The three answers (requests by edge and outcome, latency buckets, TCP) are built from a
generated mesh in exactly the shape the HTTP API returns, both reporters for sidecar
traffic, every latency bucket (as a first refresh asks for them; later ones leave out
those far above the quantiles), then timed as meshtop handles them: decoding each body
(`wire.decode`), then `join`.
The server's own time is not in it. Prints medians; the budget is 150 ms for 5,000 edges.

    .venv/bin/python benchmarks/bench_prometheus_join.py [--services 2000] [--repeat 9]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from typing import Any

from meshtop.cli import tune_gc
from meshtop.model import Protocol
from meshtop.sim.exposition import DURATION_BUCKETS_MS, istio_labels
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated
from meshtop.sources.dialects import ISTIO
from meshtop.sources.prometheus import EDGE, SEPARATOR, join, snapshot_queries
from meshtop.sources.prometheus.wire import decode

T = 1_800_000_000.0


def _body(samples: list[dict[str, Any]]) -> bytes:
    return json.dumps(  # compact, as Prometheus writes it
        {"status": "success", "data": {"resultType": "vector", "result": samples}},
        separators=(",", ":"),
    ).encode()


def edge_of(labels: dict[str, str]) -> str:
    return SEPARATOR.join(labels.get(x, "") for x in ISTIO.edge_labels())


def answers(services: int) -> tuple[dict[str, bytes], int]:
    sim = Simulation(generated(services, seed=1), clock=lambda: T)
    requests, latency, tcp = [], [], []
    # the labels each query groups by, so the bodies are what Prometheus would send
    outcome = ("reporter", "response_code", "grpc_response_status", "response_flags",
               "connection_security_policy")  # fmt: skip
    flows = sim.flows()
    for flow in flows:
        for reporter in flow.reporters:
            labels = dict(istio_labels(flow, reporter))
            if flow.protocol is Protocol.TCP:
                continue
            for o in flow.outcomes:
                full = {**labels, "response_code": o.code, "grpc_response_status": o.grpc_status,
                        "response_flags": o.flags}  # fmt: skip
                metric = {EDGE: edge_of(full), **{k: full[k] for k in outcome}}
                requests.append({"metric": metric, "value": [T, str(o.rps)]})
        ends = {EDGE: edge_of(dict(istio_labels(flow, flow.reporters[0]))),
                "reporter": flow.reporters[0]}  # fmt: skip
        if flow.protocol is Protocol.TCP:
            tcp_rates = (("request_bytes", flow.request_bps), ("response_bytes", flow.response_bps),
                         ("opened", flow.rate))  # fmt: skip
            for name, v in tcp_rates:
                tcp.append({"metric": {**ends, "metric": name}, "value": [T, str(v)]})
        else:  # the buckets' rates, by edge and reporter, as meshtop asks for them
            for le in (*DURATION_BUCKETS_MS, math.inf):
                latency.append({"metric": {**ends, "le": "+Inf" if le == math.inf else f"{le:g}"},
                                "value": [T, str(flow.rate * flow.cdf(le))]})  # fmt: skip
    bodies = {"requests": _body(requests), "latency": _body(latency), "tcp": _body(tcp)}
    return bodies, len(flows)


def once(bodies: dict[str, bytes]) -> int:
    """What meshtop does with the three answers: decode each body, join them."""
    decoded = {k: decode(v)["data"]["result"] for k, v in bodies.items()}
    return len(join(ISTIO, decoded).edges)


def measure(bodies: dict[str, bytes], repeat: int) -> list[float]:
    once(bodies)  # warm up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        once(bodies)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    bodies, n_flows = answers(args.services)
    times_default_gc = measure(bodies, args.repeat)
    tune_gc()  # as `meshtop` does at start-up
    times = measure(bodies, args.repeat)

    edges = once(bodies)
    series = sum(len(json.loads(v)["data"]["result"]) for v in bodies.values())
    size_mb = sum(len(v) for v in bodies.values()) / 1e6
    print(f"python {platform.python_version()}, {platform.machine()}, repeat {args.repeat}")
    print(f"{args.services} services, {n_flows} simulated edges -> {edges} edges joined")
    print(f"{series} series in {size_mb:.1f} MB of JSON")
    print(
        f"queries per refresh: {len(snapshot_queries(ISTIO, 60))} (+1 once, to detect the dialect)"
    )
    print(f"parse + join: median {statistics.median(times):.1f} ms, min {min(times):.1f} ms")
    print(
        f"  with Python's default GC settings: median {statistics.median(times_default_gc):.1f} ms"
    )


if __name__ == "__main__":
    main()
