"""The simulated mesh's traffic as Istio's standard metrics in the Prometheus text format,
as Envoy sidecars expose them: the full label set, one series per reporting proxy,
Envoy's default latency buckets, `unknown` peers and `connection_security_policy`.
Counters only ever grow: each scrape adds what flowed since the last one."""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable

from meshtop.model import Protocol
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import SimWorkload
from meshtop.sim.traffic import SimEdge

# Istio's default buckets for istio_request_duration_milliseconds.
DURATION_BUCKETS_MS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    300000, 600000, 1800000, 3600000,
)  # fmt: skip

REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"
TCP_SENT = "istio_tcp_sent_bytes_total"
TCP_RECEIVED = "istio_tcp_received_bytes_total"
TCP_OPENED = "istio_tcp_connections_opened_total"
TCP_CLOSED = "istio_tcp_connections_closed_total"

_HELP = {
    REQUESTS: ("counter", "Total requests."),
    DURATION: ("histogram", "Request duration in milliseconds."),
    TCP_SENT: ("counter", "Total bytes sent during request in case of a TCP connection."),
    TCP_RECEIVED: ("counter", "Total bytes received during request in case of a TCP connection."),
    TCP_OPENED: ("counter", "Total TCP connections opened."),
    TCP_CLOSED: ("counter", "Total TCP connections closed."),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _peer(prefix: str, w: SimWorkload, mtls: bool) -> list[tuple[str, str]]:
    """The `source_*` or `destination_*` labels a proxy writes for one side of a call."""
    if not w.sidecar:
        # A peer without a proxy cannot tell the reporting proxy who it is.
        return [
            (f"{prefix}_workload", "unknown"),
            (f"{prefix}_canonical_service", "unknown"),
            (f"{prefix}_canonical_revision", "latest"),
            (f"{prefix}_workload_namespace", "unknown"),
            (f"{prefix}_principal", "unknown"),
            (f"{prefix}_app", "unknown"),
            (f"{prefix}_version", "unknown"),
        ]
    wl = w.workload
    return [
        (f"{prefix}_workload", wl.name),
        (f"{prefix}_canonical_service", wl.app or wl.name),
        (f"{prefix}_canonical_revision", wl.version or "latest"),
        (f"{prefix}_workload_namespace", wl.namespace),
        (f"{prefix}_principal", w.principal if mtls else "unknown"),
        (f"{prefix}_app", wl.app or "unknown"),
        (f"{prefix}_version", wl.version or "unknown"),
    ]


def edge_labels(edge: SimEdge, reporter: str) -> list[tuple[str, str]]:
    """Every label but the per-response ones, in the order Istio's templates list them."""
    mtls = edge.mtls
    src, dst = edge.source, edge.destination
    if reporter == "source":
        policy = "unknown"  # only the server side knows how the connection was secured
    else:
        policy = "mutual_tls" if mtls else "none"
    return [
        ("reporter", reporter),
        *_peer("source", src, mtls),
        ("source_cluster", src.workload.cluster if src.sidecar else "unknown"),
        *_peer("destination", dst, mtls),
        ("destination_service", edge.service_fqdn),
        ("destination_service_name", edge.service_name),
        ("destination_service_namespace", edge.service_namespace),
        ("destination_cluster", dst.workload.cluster if dst.sidecar else "unknown"),
        ("request_protocol", edge.protocol.value),
        ("connection_security_policy", policy),
    ]


def _render_labels(labels: list[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels)


def _lognormal_mean(edge: SimEdge) -> float:
    return edge.median_ms * math.exp(edge.sigma**2 / 2)


class IstioExposition:
    """Accumulates the simulation's traffic into counters and renders them."""

    def __init__(self, sim: Simulation, clock: Callable[[], float] | None = None) -> None:
        self.sim = sim
        self._clock = clock or sim.clock
        self._last = self._clock()
        self._lock = threading.Lock()
        # metric name -> rendered label set -> value
        self._series: dict[str, dict[str, float]] = defaultdict(dict)

    def _add(self, metric: str, labels: str, amount: float) -> None:
        series = self._series[metric]
        series[labels] = series.get(labels, 0.0) + amount

    def advance(self) -> None:
        """Add what flowed between the last call and now, at the current rates."""
        now = self._clock()
        dt = max(0.0, now - self._last)
        self._last = now
        for edge in self.sim.flows():
            for reporter in edge.reporters:
                base = edge_labels(edge, reporter)
                if edge.protocol is Protocol.TCP:
                    labels = _render_labels([*base, ("response_flags", "-")])
                    connections = edge.rate * dt
                    self._add(TCP_OPENED, labels, connections)
                    self._add(TCP_CLOSED, labels, connections)
                    self._add(TCP_SENT, labels, edge.bytes_sent_ps * dt)
                    self._add(TCP_RECEIVED, labels, edge.bytes_received_ps * dt)
                    continue
                for o in edge.outcomes:
                    labels = _render_labels(
                        [
                            *base,
                            ("response_code", o.code),
                            ("grpc_response_status", o.grpc_status),
                            ("response_flags", o.flags),
                        ]
                    )
                    requests = o.rps * dt
                    self._add(REQUESTS, labels, requests)
                    for le in DURATION_BUCKETS_MS:
                        self._add(
                            f"{DURATION}_bucket", f'{labels},le="{le:g}"', requests * edge.cdf(le)
                        )
                    self._add(f"{DURATION}_bucket", f'{labels},le="+Inf"', requests)
                    self._add(f"{DURATION}_sum", labels, requests * _lognormal_mean(edge))
                    self._add(f"{DURATION}_count", labels, requests)

    def render(self) -> str:
        """The text format. Counts are whole, as Envoy's are; they never go down because
        the float totals behind them only grow."""
        with self._lock:
            self.advance()
            out: list[str] = []
            for metric, (kind, help_text) in _HELP.items():
                names = (
                    [f"{metric}_bucket", f"{metric}_sum", f"{metric}_count"]
                    if kind == "histogram"
                    else [metric]
                )
                if not any(self._series.get(n) for n in names):
                    continue
                out.append(f"# HELP {metric} {help_text}")
                out.append(f"# TYPE {metric} {kind}")
                for name in names:
                    for labels, value in self._series.get(name, {}).items():
                        shown = f"{value:.3f}" if name.endswith("_sum") else str(math.floor(value))
                        out.append(f"{name}{{{labels}}} {shown}")
            return "\n".join(out) + "\n"
