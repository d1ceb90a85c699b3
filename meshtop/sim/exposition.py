"""The simulated mesh's traffic in the Prometheus text format, as the mesh's proxies
expose it. `istio`: Envoy sidecars' standard metrics, with the full label set, one series
per reporting proxy, Istio's default latency buckets, `unknown` peers and
`connection_security_policy`. `ambient`: waypoints report HTTP once
(`reporter="waypoint"`), ztunnel reports TCP. `linkerd`: linkerd2-proxy's
`response_total`, `response_latency_ms` and `tcp_*`, with the `namespace`/`deployment`
labels linkerd-viz's Prometheus adds from the pod (`statefulset` or `daemonset` for a
workload of that kind). Counters only ever grow: each scrape
adds what flowed since the last one. A latency histogram counts each request once, in
the one bucket it falls in, as a proxy does: a bucket's count is the whole requests of
its own and every lower bucket, so no bucket grows more between two scrapes than the
one above it (counted each on its own, a bucket's count could, and Prometheus would then
raise the buckets above it: `histogram_quantile` over fewer buckets would differ)."""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from meshtop.model import Protocol
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import SimWorkload
from meshtop.sim.traffic import Outcome, SimEdge

MODES = ("istio", "ambient", "linkerd")

# Istio's default buckets for istio_request_duration_milliseconds.
DURATION_BUCKETS_MS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    300000, 600000, 1800000, 3600000,
)  # fmt: skip
# linkerd2-proxy's buckets for response_latency_ms.
LINKERD_BUCKETS_MS = (
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000,
    5000, 10000, 20000, 30000, 40000, 50000,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Family:
    """A metric family's names: requests, latency histogram and the four TCP counters."""

    requests: str
    duration: str
    buckets: tuple[float, ...]
    tcp_request_bytes: str  # source to destination
    tcp_response_bytes: str  # destination to source
    tcp_opened: str
    tcp_closed: str


ISTIO_FAMILY = Family(
    "istio_requests_total",
    "istio_request_duration_milliseconds",
    DURATION_BUCKETS_MS,
    # Istio counts from the server's side: it *receives* the request bytes and *sends*
    # the response bytes, whichever proxy reports.
    "istio_tcp_received_bytes_total",
    "istio_tcp_sent_bytes_total",
    "istio_tcp_connections_opened_total",
    "istio_tcp_connections_closed_total",
)
LINKERD_FAMILY = Family(
    "response_total",
    "response_latency_ms",
    LINKERD_BUCKETS_MS,
    # from the client's proxy, towards the server (peer="dst"): it writes the request
    "tcp_write_bytes_total",
    "tcp_read_bytes_total",
    "tcp_open_total",
    "tcp_close_total",
)

_HELP = {
    "istio_requests_total": ("counter", "Total requests."),
    "istio_request_duration_milliseconds": ("histogram", "Request duration in milliseconds."),
    "istio_tcp_sent_bytes_total": (
        "counter",
        "Total bytes sent during response in case of a TCP connection.",
    ),
    "istio_tcp_received_bytes_total": (
        "counter",
        "Total bytes received during request in case of a TCP connection.",
    ),
    "istio_tcp_connections_opened_total": ("counter", "Total TCP connections opened."),
    "istio_tcp_connections_closed_total": ("counter", "Total TCP connections closed."),
    "response_total": ("counter", "Total count of HTTP responses."),
    "response_latency_ms": (
        "histogram",
        "Elapsed times between a request's headers being received "
        "and its response stream completing",
    ),
    "tcp_write_bytes_total": ("counter", "Total count of bytes written to peers."),
    "tcp_read_bytes_total": ("counter", "Total count of bytes read from peers."),
    "tcp_open_total": ("counter", "Total count of opened connections"),
    "tcp_close_total": ("counter", "Total count of closed connections"),
}

Labels = list[tuple[str, str]]


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


def istio_labels(edge: SimEdge, reporter: str) -> Labels:
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


# how each kind names its pods (a Deployment's: its ReplicaSet's hash, then the pod's)
_POD_SUFFIX = {"statefulset": "0", "daemonset": "x2x7q"}


def _linkerd_peer(prefix: str, w: SimWorkload) -> Labels:
    wl = w.workload
    return [
        (f"{prefix}namespace", wl.namespace),
        (f"{prefix}{w.kind}", wl.name),  # `deployment`, `statefulset`, `daemonset`
        (f"{prefix}pod", f"{wl.name}-{_POD_SUFFIX.get(w.kind, '5d8f7c9b4-x2x7q')}"),
        (f"{prefix}serviceaccount", w.service_account),
    ]


def linkerd_labels(edge: SimEdge, direction: str) -> Labels:
    """Outbound: the client's proxy names the server (`dst_*`); inbound: the server's
    proxy names only itself. `namespace`/`deployment`/`pod` are the scraped pod's."""
    src, dst = edge.source, edge.destination
    tls = "true" if edge.mtls else "no_identity"
    authority = f"{edge.service_fqdn}:9080" if dst.sidecar else f"{edge.service_fqdn}:443"
    if direction == "outbound":
        labels = [("direction", "outbound"), *_linkerd_peer("", src), ("authority", authority)]
        if dst.sidecar:
            labels += [*_linkerd_peer("dst_", dst), ("dst_service", edge.service_name)]
        labels.append(("tls", tls))
        if edge.mtls:
            identity = f"{dst.service_account}.{dst.workload.namespace}.serviceaccount"
            labels.append(("server_id", f"{identity}.identity.linkerd.cluster.local"))
        else:
            labels.append(("no_tls_reason", "not_provided_by_service_discovery"))
        return labels
    labels = [
        ("direction", "inbound"),
        *_linkerd_peer("", dst),
        ("authority", authority),
        ("tls", tls),
    ]
    if not edge.mtls:
        labels.append(("no_tls_reason", "no_tls_from_remote"))
    return labels


class MeshExposition:
    """Accumulates the simulation's traffic into counters and renders them, in the
    telemetry of `mode` (istio, ambient or linkerd)."""

    def __init__(
        self,
        sim: Simulation,
        mode: str = "istio",
        clock: Callable[[], float] | None = None,
        cluster: str | None = None,
    ) -> None:
        """With `cluster`, only what the proxies of that cluster report: what one
        cluster's own Prometheus scrapes in a multi-cluster mesh."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.sim = sim
        self.mode = mode
        self.cluster = cluster
        self.family = LINKERD_FAMILY if mode == "linkerd" else ISTIO_FAMILY
        self._clock = clock or sim.clock
        self._last = self._clock()
        self._lock = threading.Lock()
        # metric name -> rendered label set -> value
        self._series: dict[str, dict[str, float]] = defaultdict(dict)
        # the latency histogram's label set -> the requests in each bucket of its own
        # (the family's buckets, then above the last): bucket, count, from these
        self._bins: dict[str, list[float]] = {}
        self._les = [f'le="{le:g}"' for le in self.family.buckets] + ['le="+Inf"']

    def _add(self, metric: str, labels: str, amount: float) -> None:
        series = self._series[metric]
        series[labels] = series.get(labels, 0.0) + amount

    def _reporters(self, edge: SimEdge) -> list[tuple[Labels, bool]]:
        """(labels, is_tls) per series that reports this edge in this mode."""
        if self.mode == "linkerd":
            directions = [
                d
                for d, side in (("outbound", edge.source), ("inbound", edge.destination))
                if side.sidecar
            ]
            return [
                (linkerd_labels(edge, d), edge.mtls)
                for d in directions
                if self._here(edge.source if d == "outbound" else edge.destination)
            ]
        reporters = list(edge.reporters)
        if self.mode == "ambient" and edge.protocol is not Protocol.TCP:
            # a waypoint fronts each meshed destination and reports each request once
            reporters = ["waypoint"] if edge.destination.sidecar else []
        return [
            (istio_labels(edge, r), edge.mtls)
            for r in reporters
            if self._here(edge.source if r == "source" else edge.destination)
        ]

    def _here(self, proxy: SimWorkload) -> bool:
        """Whether the proxy beside `proxy` is one this exposition speaks for."""
        return self.cluster is None or proxy.workload.cluster == self.cluster

    def _responses(self, base: Labels, o: Outcome, is_tls: bool) -> Labels:
        if self.mode != "linkerd":
            return [
                *base,
                ("response_code", o.code),
                ("grpc_response_status", o.grpc_status),
                ("response_flags", o.flags),
            ]
        labels = [*base, ("status_code", o.code)]
        if o.grpc_status:
            labels.append(("grpc_status", o.grpc_status))
        return [*labels, ("classification", "failure" if o.is_error else "success")]

    def advance(self) -> None:
        """Add what flowed between the last call and now, at the current rates."""
        now = self._clock()
        dt = max(0.0, now - self._last)
        self._last = now
        f = self.family
        for edge in self.sim.flows():
            # each reporter's histogram of the call alike: its shares worked out once
            shares = _shares(edge, f.buckets) if edge.protocol is not Protocol.TCP else []
            for base, is_tls in self._reporters(edge):
                if edge.protocol is Protocol.TCP:
                    tcp_labels = (
                        [*base, ("response_flags", "-")]
                        if self.mode != "linkerd"
                        else [*base, ("peer", "dst")]
                    )
                    labels = _render_labels(tcp_labels)
                    connections = edge.rate * dt
                    self._add(f.tcp_opened, labels, connections)
                    self._add(f.tcp_closed, labels, connections)
                    self._add(f.tcp_request_bytes, labels, edge.request_bps * dt)
                    self._add(f.tcp_response_bytes, labels, edge.response_bps * dt)
                    continue
                server_side = base[0][1] in ("destination", "inbound")
                for o in edge.outcomes:
                    if server_side and not o.arrived:
                        continue
                    labels = _render_labels(self._responses(base, o, is_tls))
                    requests = o.rps * dt
                    self._add(f.requests, labels, requests)
                    bins = self._bins.get(labels)
                    if bins is None:
                        bins = self._bins[labels] = [0.0] * len(shares)
                    for i, share in enumerate(shares):
                        bins[i] += requests * share
                    self._add(f"{f.duration}_sum", labels, requests * edge.mean_ms())

    def render(self) -> str:
        """The text format. Counts are whole, as Envoy's are; they never go down because
        the float totals behind them only grow."""
        with self._lock:
            self.advance()
            out: list[str] = []
            for metric, (kind, help_text) in _HELP.items():
                histogram = kind == "histogram"
                if histogram and metric != self.family.duration:
                    continue
                if not (self._bins if histogram else self._series.get(metric)):
                    continue
                out.append(f"# HELP {metric} {help_text}")
                out.append(f"# TYPE {metric} {kind}")
                if histogram:
                    out.extend(self._histogram(metric))
                    continue
                for labels, value in self._series[metric].items():
                    out.append(f"{metric}{{{labels}}} {math.floor(value)}")
            return "\n".join(out) + "\n"

    def _histogram(self, metric: str) -> list[str]:
        """The latency histogram's lines: each bucket's whole requests, up to its bound,
        the sum, and the count (+Inf's)."""
        buckets: list[str] = []
        counts: list[str] = []
        for labels, bins in self._bins.items():
            total = 0
            for le, amount in zip(self._les, bins, strict=True):
                total += math.floor(amount)
                buckets.append(f"{metric}_bucket{{{labels},{le}}} {total}")
            counts.append(f"{metric}_count{{{labels}}} {total}")
        sums = self._series[f"{metric}_sum"]
        return [*buckets, *(f"{metric}_sum{{{ls}}} {v:.3f}" for ls, v in sums.items()), *counts]


def _shares(edge: SimEdge, buckets: tuple[float, ...]) -> list[float]:
    """The share of an edge's requests that falls in each bucket of its own (above the
    one below, up to its bound), then above the last bound."""
    below = [edge.cdf(le) for le in buckets]
    # a share is never negative, even where the distribution's float noise says so
    shares = [max(0.0, b - a) for a, b in zip([0.0, *below[:-1]], below, strict=True)]
    return [*shares, max(0.0, 1.0 - below[-1])]
