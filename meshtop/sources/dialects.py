"""How each mesh names its telemetry: metric names, the labels that identify both ends
of a call, which proxy reports it, and what counts as an error. Each dialect is data;
the Prometheus source builds every query from it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from meshtop.errors import UsageError


@dataclass(frozen=True, slots=True)
class Peer:
    """The labels naming one end of a call. Empty strings: the mesh has no such label."""

    cluster: str
    namespace: str
    workload: str
    app: str
    version: str
    other_workloads: tuple[str, ...] = ()  # more labels naming the workload, by its kind

    def labels(self) -> tuple[str, ...]:
        own = (self.cluster, self.namespace, self.workload, self.app, self.version)
        return tuple(x for x in (*own, *self.other_workloads) if x)

    def workloads(self) -> tuple[str, ...]:
        """The labels that may name the workload, by its kind: a proxy writes one, the
        others absent. Istio's `*_workload` alone; Linkerd's `deployment`, then
        `statefulset` and `daemonset`."""
        return (self.workload, *self.other_workloads)


class Errors(enum.Enum):
    CODES = "codes"  # HTTP 5xx, a non-OK gRPC status, or no response (code 0)
    CLASSIFICATION = "classification"  # the proxy's own verdict: classification="failure"


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    requests: str  # counter of requests (or responses)
    duration: str  # latency histogram, without `_bucket`
    source: Peer
    destination: Peer
    # Which proxies report a request, best first: one edge is counted from one of them.
    reporter_label: str
    http_reporters: tuple[str, ...]
    tcp_reporters: tuple[str, ...]
    service: str  # the host called
    service_name: str
    service_namespace: str
    protocol: str  # label with http / grpc / tcp ("" where the metric says nothing)
    code: str
    grpc_status: str
    flags: str
    errors: Errors
    failure_label: str  # for Errors.CLASSIFICATION
    mtls_label: str
    mtls_value: str
    mtls_reporters: tuple[str, ...]  # reporters whose mtls label is meaningful
    tcp_request_bytes: str  # counter of bytes from source to destination
    tcp_response_bytes: str  # and back
    tcp_opened: str
    # The identities each side proved, as the proxies that know them label a request.
    source_principal: str = ""
    destination_principal: str = ""
    extra_selector: str = ""  # always in the selector, e.g. Linkerd's direction="outbound"
    tcp_selector: str = ""
    unknown: str = "unknown"  # the value a proxy writes for a peer it cannot name

    def peer(self, side: str) -> Peer:
        """The labels of one end of a call: `source`, or else `destination`."""
        return self.source if side == "source" else self.destination

    def edge_labels(self) -> tuple[str, ...]:
        """Both ends of a call (cluster, namespace, workload, app, version) and the host
        called: what names an edge and its nodes."""
        ends = [x for p in (self.source, self.destination) for x in p.labels()]
        return tuple(dict.fromkeys([*ends, *(x for x in (self.service, self.service_name) if x)]))


_ISTIO_SOURCE = Peer(
    "source_cluster", "source_workload_namespace", "source_workload", "source_app", "source_version"
)
_ISTIO_DESTINATION = Peer(
    "destination_cluster",
    "destination_workload_namespace",
    "destination_workload",
    "destination_app",
    "destination_version",
)

ISTIO = Dialect(
    name="istio",
    requests="istio_requests_total",
    duration="istio_request_duration_milliseconds",
    source=_ISTIO_SOURCE,
    destination=_ISTIO_DESTINATION,
    reporter_label="reporter",
    # The client's proxy sees failures the server never does (no route, no healthy
    # upstream, connection failures); the server's is all we have for unmeshed clients.
    http_reporters=("source", "destination"),
    tcp_reporters=("source", "destination"),
    service="destination_service",
    service_name="destination_service_name",
    service_namespace="destination_service_namespace",
    protocol="request_protocol",
    code="response_code",
    grpc_status="grpc_response_status",
    flags="response_flags",
    errors=Errors.CODES,
    failure_label="",
    mtls_label="connection_security_policy",
    mtls_value="mutual_tls",
    mtls_reporters=("destination",),  # only the server side knows how it was secured
    # Istio counts at the server's side: received during the request, sent in the response.
    tcp_request_bytes="istio_tcp_received_bytes_total",
    tcp_response_bytes="istio_tcp_sent_bytes_total",
    tcp_opened="istio_tcp_connections_opened_total",
    source_principal="source_principal",
    destination_principal="destination_principal",
)

# Ambient: waypoints report HTTP once (reporter="waypoint"); ztunnel reports TCP.
AMBIENT = replace(
    ISTIO,
    name="ambient",
    # Waypoints first; sidecars where a mesh mixes both (one reporter per edge still).
    http_reporters=("waypoint", "source", "destination"),
    tcp_reporters=("source", "destination"),
    mtls_reporters=("waypoint", "destination"),
)

LINKERD = Dialect(
    name="linkerd",
    requests="response_total",
    duration="response_latency_ms",
    # Linkerd's Prometheus (linkerd-viz) adds namespace and deployment from the pod.
    source=Peer("", "namespace", "deployment", "", "", ("statefulset", "daemonset")),
    destination=Peer(
        "", "dst_namespace", "dst_deployment", "", "", ("dst_statefulset", "dst_daemonset")
    ),
    reporter_label="direction",
    http_reporters=("outbound",),
    tcp_reporters=("outbound",),
    service="authority",
    service_name="dst_service",
    service_namespace="",
    protocol="",
    code="status_code",
    grpc_status="grpc_status",
    flags="",
    errors=Errors.CLASSIFICATION,
    failure_label="classification",
    mtls_label="tls",
    mtls_value="true",
    mtls_reporters=("outbound",),
    # The client's proxy towards the server (peer="dst") writes the request.
    tcp_request_bytes="tcp_write_bytes_total",
    tcp_response_bytes="tcp_read_bytes_total",
    tcp_opened="tcp_open_total",
    destination_principal="server_id",  # the server's identity, on outbound TLS
    tcp_selector='peer="dst"',
    unknown="",
)

DIALECTS = {d.name: d for d in (ISTIO, AMBIENT, LINKERD)}
AUTO = "auto"


def dialect(name: str) -> Dialect:
    if name not in DIALECTS:
        raise UsageError(f"unknown dialect {name!r}; choose auto, {', '.join(DIALECTS)}")
    return DIALECTS[name]


# One cheap query tells which dialect a backend holds: which of these metrics exist,
# and which reporters they carry.
DETECT_QUERY = (
    'group by (__name__, reporter) ({__name__=~"istio_requests_total|istio_tcp_sent_bytes_total"})'
    ' or group by (__name__, direction) ({__name__="response_total", direction="outbound"})'
)


def detect(series: list[dict[str, str]]) -> Dialect | None:
    """The dialect whose metrics `DETECT_QUERY` found, or None."""
    names = {(s.get("__name__"), s.get("reporter") or s.get("direction")) for s in series}
    if ("istio_requests_total", "waypoint") in names:
        return AMBIENT
    if any(n in ("istio_requests_total", "istio_tcp_sent_bytes_total") for n, _ in names):
        return ISTIO
    if ("response_total", "outbound") in names:
        return LINKERD
    return None
