"""The answers of a refresh and of an edge's history turned into edges, nodes and
points: which node each end of a call is, one reporter per edge, errors by the mesh's
own verdict. The loops here run once per series, tens of thousands of times per refresh."""

from __future__ import annotations

import ipaddress
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from meshtop.history import Answer, Points, history_step, point_times, summarize
from meshtop.model import (
    Edge,
    EdgeStats,
    History,
    NodeMark,
    Protocol,
    WindowSummary,
    Workload,
    counts_as_error,
    error_kind,
)
from meshtop.sources.dialects import Dialect, Errors
from meshtop.sources.prometheus.latency import edge_quantiles
from meshtop.sources.prometheus.queries import (
    DEFAULT_CLUSTER,
    EDGE,
    EXTERNAL_CLUSTERS,
    QUANTILES,
    SEPARATOR,
)
from meshtop.sources.protocols import Pair, Traffic
from meshtop.turns import giving_way

_MESH_HOST = re.compile(r"^([^.:]+)\.([^.:]+)\.svc(?:\.[^:]+)?(?::[0-9]+)?$")


def _mesh_host(host: str) -> tuple[str, str] | None:
    """(service, namespace) of a host inside the mesh (`reviews.bookinfo.svc`, with any
    cluster domain and port), or None for a host outside it."""
    found = _MESH_HOST.match(host)
    return (found[1], found[2]) if found else None


def _named(labels: Mapping[str, str], among: Sequence[str]) -> str:
    """The workload the first of these labels names (Linkerd's `deployment`, else
    `statefulset`, `daemonset`: `Peer.workloads`), "" for none."""
    return next((found for label in among if (found := labels.get(label))), "")


def _node(d: Dialect, labels: Mapping[str, str], side: str) -> Workload:
    peer = d.peer(side)
    name = _named(labels, peer.workloads())
    namespace = labels.get(peer.namespace, "")
    cluster = labels.get(peer.cluster, "") if peer.cluster else ""
    if cluster in ("", "unknown") and side == "destination" and d.source.cluster:
        # no proxy answered: the client's proxy did, in the client's cluster
        cluster = labels.get(d.source.cluster, "")
    if cluster in ("", "unknown"):
        cluster = DEFAULT_CLUSTER
    if name and name != "unknown":
        return Workload(
            cluster,
            namespace or "unknown",
            name,
            app=_known(labels.get(peer.app, "")) or name,
            version=_known(labels.get(peer.version, "")),
        )
    if side == "source":
        if _known(namespace) and not _known(labels.get(peer.app, "")):
            return Workload.unnamed(cluster, namespace)  # a namespace, but no name
        return Workload.unknown()
    # A destination no workload answered for: a host outside the mesh (through a
    # ServiceEntry or the PassthroughCluster), or a mesh service with nothing behind it.
    host = _known(labels.get(d.service, ""))
    service_name = _known(labels.get(d.service_name, ""))
    if not host or host in EXTERNAL_CLUSTERS:
        host = service_name
    if not host:
        # The client's proxy could not tell where the call went (no route): an unknown
        # destination of its own, in the namespace it is known in, else the caller's.
        where = (
            _known(namespace)
            or _known(labels.get(d.service_namespace, "") if d.service_namespace else "")
            or _known(labels.get(d.source.namespace, ""))
            or "unknown"
        )
        return Workload.unknown_destination(cluster, where)
    mesh = _mesh_host(host)
    if mesh is not None:
        return Workload.service(cluster, mesh[1], mesh[0])
    bare, colon, port = host.rpartition(":")
    if colon and port.isdigit() and not bare.endswith(":"):  # Linkerd's authority has a port
        host = bare
    return Workload.external(host, NodeMark.RAW_IP if _is_ip(host) else None)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _known(value: str) -> str:
    return "" if value in ("unknown", "") else value


class _Seen:
    """What one reporter said about one edge."""

    __slots__ = ("codes", "errors", "flags", "grpc", "mtls", "protocols", "rps")

    def __init__(self) -> None:
        self.rps = 0.0
        self.errors = 0.0
        self.mtls = 0.0
        self.codes: dict[str, float] = {}
        self.flags: dict[str, float] = {}
        self.grpc: dict[str, float] = {}
        self.protocols: dict[Protocol, float] = {}  # as the proxy said (request_protocol)

    def carried(self) -> tuple[Protocol, ...]:
        """The protocols of the requests, most first. Where the mesh does not say (no
        `request_protocol`), gRPC if any answer had a gRPC status, else HTTP."""
        if not self.protocols:
            return (Protocol.GRPC if self.grpc else Protocol.HTTP,)
        return tuple(sorted(self.protocols, key=lambda p: (-self.protocols[p], p.value)))


def _grpc_status(d: Dialect, labels: Mapping[str, str]) -> str:
    """A series' gRPC status; none for a request its proxy says was plain HTTP, whose
    `grpc_response_status="0"` (seen in the wild) says nothing about it."""
    if d.protocol and labels.get(d.protocol) == Protocol.HTTP:
        return ""
    return labels.get(d.grpc_status, "")


def _is_error(d: Dialect, labels: Mapping[str, str]) -> bool:
    """The dialect's verdict, or else no response, a gRPC status other than OK, or (with
    no gRPC status) HTTP 5xx."""
    if d.errors is Errors.CLASSIFICATION:
        return labels.get(d.failure_label) == "failure"
    code = labels.get(d.code, "")
    if code == "0":
        return True
    grpc = _grpc_status(d, labels)
    if grpc:
        return grpc != "0"
    return code.startswith("5")


_PROTOCOLS = {p.value: p for p in Protocol}


def join(
    d: Dialect,
    answers: Mapping[str, Sequence[Mapping[str, Any]]],
    quantiles: Mapping[str, Sequence[float]] | None = None,
) -> Traffic:
    """Edges and nodes from the three answers of `snapshot_queries`; the latency answer's
    quantiles per call, if they were worked out already (`latency.edge_quantiles`)."""
    nodes: dict[str, Workload] = {}
    service_of: dict[tuple[str, str], str] = {}  # the host each edge called
    ends_cache: dict[str, tuple[str, str]] = {}
    edge_labels = d.edge_labels()
    ambiguous: set[str] = set()  # joined keys whose fields a `|` in a label value shifted

    def ends(labels: Mapping[str, str]) -> tuple[str, str]:
        joined = labels.get(EDGE, "")
        found = ends_cache.get(joined)
        if found is None:
            fields = joined.split(SEPARATOR)
            # every label gives a field, empty if absent: more fields than labels means a
            # value holds the separator (any pod can publish one), and which is which
            # cannot be told; such a series is counted between unknown peers, and said
            if len(fields) != len(edge_labels):
                ambiguous.add(joined)
                fields = []
            named = dict(zip(edge_labels, fields, strict=False))
            src, dst = _node(d, named, "source"), _node(d, named, "destination")
            nodes.setdefault(src.id, src)
            nodes.setdefault(dst.id, dst)
            found = ends_cache[joined] = (src.id, dst.id)
            service_of.setdefault(found, named.get(d.service, ""))
        return found

    # The loops below run once per series, tens of thousands of times per refresh: they
    # look labels up once, and find known edges without a function call.
    seen: dict[tuple[str, str], dict[str, _Seen]] = {}  # edge -> reporter -> what it saw
    code_l, grpc_l, flags_l, rep_l = d.code, d.grpc_status, d.flags, d.reporter_label
    mtls_l, mtls_v, proto_l = d.mtls_label, d.mtls_value, d.protocol
    # each loop gives way to a key's work on the screen's thread (`turns`)
    for sample in giving_way(answers.get("requests", ())):
        labels = sample["metric"]
        rate = float(sample["value"][1])
        if not 0 < rate < math.inf:  # also drops NaN
            continue
        key = ends_cache.get(labels.get(EDGE, "")) or ends(labels)
        by_reporter = seen.get(key)
        if by_reporter is None:
            by_reporter = seen[key] = {}
        rep = labels.get(rep_l, "")
        s = by_reporter.get(rep)
        if s is None:
            s = by_reporter[rep] = _Seen()
        s.rps += rate
        code = labels.get(code_l, "")
        s.codes[code] = s.codes.get(code, 0.0) + rate
        flag = labels.get(flags_l, "-") if flags_l else "-"
        if flag != "-" and flag:
            s.flags[flag] = s.flags.get(flag, 0.0) + rate
        proto = _PROTOCOLS.get(labels.get(proto_l, "").lower()) if proto_l else None
        if proto is not None:
            s.protocols[proto] = s.protocols.get(proto, 0.0) + rate
        grpc = "" if proto is Protocol.HTTP else labels.get(grpc_l, "")
        if grpc:  # set on every gRPC response, "0" for OK
            s.grpc[grpc] = s.grpc.get(grpc, 0.0) + rate
        if _is_error(d, labels):
            s.errors += rate
        if labels.get(mtls_l) == mtls_v:
            s.mtls += rate

    latency: dict[tuple[str, str], dict[float, float]] = {}
    if quantiles is None:
        quantiles = edge_quantiles(d, answers.get("latency", ())).quantiles
    for joined, values in quantiles.items():
        key = ends_cache.get(joined) or ends({EDGE: joined})
        timed = latency.get(key)
        if timed is None:
            timed = latency[key] = {}
        for quantile, value in zip(QUANTILES, values, strict=True):
            if -math.inf < value < math.inf:  # NaN: no requests in the window
                timed[quantile] = value

    # TCP: each counter by reporter, the first reporter that has the edge's series
    # giving its figure; the bytes' security from every reporter that knows it.
    counted: dict[str, dict[str, dict[str, float]]] = {}  # edge -> counter -> reporter
    tcp: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    secured_by = set(d.mtls_reporters)
    for sample in giving_way(answers.get("tcp", ())):
        labels = sample["metric"]
        value = float(sample["value"][1])
        metric = labels["metric"]
        rep = labels.get(rep_l, "")
        if metric == "request_bytes" and rep in secured_by and -math.inf < value < math.inf:
            tcp[ends(labels)]["secured" if labels.get(mtls_l) == mtls_v else "plain"] += value
        if rep in d.tcp_reporters:
            counter = counted.setdefault(labels.get(EDGE, ""), {}).setdefault(metric, {})
            counter[rep] = counter.get(rep, 0.0) + value
    for joined, counters in counted.items():
        key = ends({EDGE: joined})
        for metric, counter in counters.items():
            value = counter[next(r for r in d.tcp_reporters if r in counter)]
            if -math.inf < value < math.inf:
                tcp[key][metric] = value

    edges: list[Edge] = []
    for key, by_reporter in giving_way(seen.items()):
        rep = next((r for r in d.http_reporters if r in by_reporter), None)
        if rep is None:
            continue
        s = by_reporter[rep]
        secured = next((by_reporter[r] for r in d.mtls_reporters if r in by_reporter), None)
        q = latency.get(key, {})
        t = tcp.pop(key, {})
        carried = s.carried()
        if t.get("request_bytes") or t.get("response_bytes") or t.get("opened"):
            carried = (*(p for p in carried if p is not Protocol.TCP), Protocol.TCP)
        edges.append(
            Edge(
                key[0],
                key[1],
                EdgeStats(
                    protocol=carried[0],
                    protocols=carried if len(carried) > 1 else (),
                    rps=s.rps,
                    error_rate=min(1.0, s.errors / s.rps),
                    p50_ms=q.get(0.5),
                    p95_ms=q.get(0.95),
                    p99_ms=q.get(0.99),
                    mtls=secured.mtls / secured.rps if secured else 0.0,
                    response_codes=s.codes,
                    response_flags=s.flags,
                    grpc_statuses=s.grpc,
                    tcp_request_bps=t.get("request_bytes", 0.0),
                    tcp_response_bps=t.get("response_bytes", 0.0),
                    tcp_connections_per_s=t.get("opened", 0.0),
                ),
                service_of.get(key, ""),
            )
        )
    for key, t in tcp.items():
        if not (t.get("request_bytes") or t.get("response_bytes") or t.get("opened")):
            continue
        secured_cps = t.get("secured", 0.0)
        edges.append(
            Edge(
                key[0],
                key[1],
                EdgeStats(
                    protocol=Protocol.TCP,
                    mtls=secured_cps / (secured_cps + t.get("plain", 0.0)) if secured_cps else 0.0,
                    tcp_request_bps=t.get("request_bytes", 0.0),
                    tcp_response_bps=t.get("response_bytes", 0.0),
                    tcp_connections_per_s=t.get("opened", 0.0),
                ),
                service_of.get(key, ""),
            )
        )
    used = {n for e in edges for n in e.key}
    said = (
        (f"{len(ambiguous)} series with '{SEPARATOR}' in a label value, counted between "
         "unknown peers",)
        if ambiguous
        else ()
    )  # fmt: skip
    return Traffic(nodes=[w for n, w in nodes.items() if n in used], edges=edges, warnings=said)


def parse_history(
    d: Dialect,
    source: str | None,
    destination: str | None,
    window_s: float,
    end: float,
    codes: Sequence[Mapping[str, Any]],
    quantiles: Sequence[Mapping[str, Any]],
    window: Sequence[Mapping[str, Any]],
) -> History:
    """A `History` from the three answers of `history_queries`."""
    step = history_step(window_s)
    points = Points(point_times(end, window_s, step), step)
    for series in codes:
        kind = _kind(d, series["metric"])
        for ts, value in series["values"]:
            i = points.index(float(ts))
            if i is not None:
                points.add(i, kind, float(value))
    for series in quantiles:
        q = float(series["metric"]["quantile"])
        for ts, value in series["values"]:
            i = points.index(float(ts))
            if i is not None:
                points.latency(i, q, float(value))
    return points.history(source, destination, window_s, _window_summary(d, window))


def parse_histories(
    d: Dialect,
    pairs: Sequence[Pair],
    split: Sequence[tuple[int, Sequence[str]]],
    window_s: float,
    end: float,
    codes: Sequence[Mapping[str, Any]],
    quantiles: Sequence[Mapping[str, Any]],
    window: Sequence[Mapping[str, Any]],
) -> list[History]:
    """Each pair's `History` from the three answers of `batch_queries`, its series told
    apart by the workload of each end in `split` (`split_by`: the end, 0 or 1, and the
    labels that may name it), which every series they sum by carries: one without it
    raises `KeyError`, never goes unread."""
    ends = [e for e, _ in split]

    def named(labels: Mapping[str, str], among: Sequence[str]) -> str:
        found = _named(labels, among)
        if not found:
            raise KeyError(among[0])
        return found

    def by_pair(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, ...], list[Any]]:
        out: dict[tuple[str, ...], list[Any]] = defaultdict(list)
        for row in rows:
            out[tuple(named(row["metric"], among) for _, among in split)].append(row)
        return out

    answers = [by_pair(codes), by_pair(quantiles), by_pair(window)]
    found = []
    for pair in pairs:
        key = tuple((pair[e] or "").split("/", 2)[-1] for e in ends)
        c, q, w = (a.get(key, ()) for a in answers)
        found.append(parse_history(d, pair[0], pair[1], window_s, end, c, q, w))
    return found


def _kind(d: Dialect, labels: Mapping[str, str]) -> str | None:
    """The kind of error a series counts (`model.error_kind`), by the dialect's verdict."""
    kind = error_kind(labels.get(d.code, ""), _grpc_status(d, labels))
    if _is_error(d, labels):  # the snapshot's verdict: counted as an error here too
        return kind if counts_as_error(kind) else "failure"
    return kind if kind == "4xx" else None


def _window_summary(d: Dialect, rows: Sequence[Mapping[str, Any]]) -> WindowSummary:
    quantiles: dict[float, float | None] = {}
    answers: list[Answer] = []
    for row in rows:
        labels = row["metric"]
        value = float(row["value"][1])
        if "quantile" in labels:
            quantiles[float(labels["quantile"])] = value if math.isfinite(value) else None
            continue
        reporter = labels.get(d.reporter_label, "")
        security = labels.get(d.mtls_label, "")
        answers.append(
            Answer(
                edge=labels.get(EDGE, ""),
                reporter=reporter,
                rps=value,
                code=labels.get(d.code, ""),
                grpc_status=_grpc_status(d, labels),
                flags=labels.get(d.flags, "-") if d.flags else "-",
                kind=_kind(d, labels),
                secured=(security == d.mtls_value) if reporter in d.mtls_reporters else None,
                source_principal=labels.get(d.source_principal, "") if d.source_principal else "",
                destination_principal=(
                    labels.get(d.destination_principal, "") if d.destination_principal else ""
                ),
            )
        )
    return summarize(answers, d.http_reporters, d.mtls_reporters, quantiles)
