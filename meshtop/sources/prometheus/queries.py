"""The PromQL a refresh and an edge's history send, built from the mesh's dialect.

A refresh is three queries, whatever the mesh's size, asked at once: requests by edge,
reporter and outcome; TCP traffic by edge and reporter; the latency histogram's bucket
rates by edge and reporter, from which the quantiles are worked out here (`latency`,
`quantiles`), the buckets asked for chosen by what the backend and the last refresh
said (`latency.first_cuts`, `latency.cuts_for`). Each reads each series it needs once:
the reporter an edge's figures come from is chosen from the answers, not by `unless`
over a second reading."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence

from meshtop.model import SERVICE_PREFIX, UNKNOWN
from meshtop.sources.dialects import Dialect
from meshtop.units import duration

QUANTILES = (0.5, 0.95, 0.99)
EDGE = "meshtop_edge"  # one label naming both ends, so each series is small and cheap to key
SEPARATOR = "|"  # cannot appear in Kubernetes names, hosts or cluster names
DEFAULT_CLUSTER = "Kubernetes"  # Istio's name for a cluster that was not given one
EXTERNAL_CLUSTERS = ("PassthroughCluster", "BlackHoleCluster")

# Per reporter, the source workloads whose calls it is asked about, None for every call
# (`latency_query`); `Later`: the same for the reporters after the first.
Whom = Mapping[str, Collection[str] | None]
Later = Whom


def _selector(*parts: str) -> str:
    return "{" + ",".join(p for p in parts if p) + "}"


def _sides(d: Dialect, namespaces: Sequence[str]) -> list[list[str]]:
    """The calls from or to any of the namespaces, as selectors that no series matches
    twice: from them; else to a workload in them; else (Istio) to a host in them. Each
    series is read once, where overlapping sides joined by `or` read a call within a
    namespace two or three times."""
    if not namespaces:
        return [[]]
    pattern = "|".join(namespaces)  # names are checked DNS labels: nothing to escape
    within = [f'{label}=~"{pattern}"' for label in (d.source.namespace, d.destination.namespace)]
    if d.service_namespace:
        # Calls to a service in the namespace that no workload answered. Its host names
        # the namespace even where the proxy wrote the service's namespace as `unknown`
        # (a 503 from a service with nothing behind it, seen from ingress).
        within.append(f"{d.service}=~{json.dumps(_host_pattern(pattern))}")
    outside = [m.replace("=~", "!~", 1) for m in within]
    return [[*outside[:i], side] for i, side in enumerate(within)]


# Matchers of a call's two ends, as alternatives a series matches at most one of (`_side`)
Ends = Sequence[Sequence[str]]
ANY_ENDS: Ends = ((),)


def _rate(
    metric: str,
    window: str,
    selector: Iterable[str],
    d: Dialect,
    namespaces: Sequence[str],
    ends: Ends = ANY_ENDS,
) -> str:
    """`rate(metric{…}[window])`; with namespaces, the calls from *or* to any of them;
    with several `ends`, the calls between any of them, each read by a selector of its
    own."""
    base = [d.extra_selector, *selector]
    return " or ".join(
        f"rate({metric}{_selector(*base, *end, *side)}[{window}])"
        for end in ends
        for side in _sides(d, namespaces)
    )


def _host_pattern(namespaces: str) -> str:
    """A mesh host (`NAME.NS.svc`, then the cluster's domain, maybe a port) in one of the
    namespaces `a|b`, as the answers' `_mesh_host` reads it."""
    return rf"[^.]+\.({namespaces})\.svc{DOMAIN_AND_PORT}"


DOMAIN_AND_PORT = r"(\.[^:]+)?(:[0-9]+)?"  # after `NAME.NS.svc`: any cluster domain, a port


def _by(*labels: str) -> str:
    return ", ".join(dict.fromkeys(x for x in labels if x))


def _reporters(d: Dialect, reporters: Sequence[str]) -> str:
    unique = list(dict.fromkeys(reporters))
    op = "=" if len(unique) == 1 else "=~"
    return f"{d.reporter_label}{op}{json.dumps('|'.join(unique))}"


def _named(label: str, values: Collection[str]) -> str:
    """A matcher for any of these label values, written as Prometheus reads them (RE2,
    anchored; any character other than a letter or digit escaped is itself)."""
    pattern = "|".join(re.escape(v) for v in sorted(values))
    return f"{label}=~{json.dumps(pattern, ensure_ascii=False)}"


def _joined(d: Dialect, vector: str) -> str:
    """`vector` with the edge's labels joined into one `meshtop_edge` label."""
    labels = ", ".join(json.dumps(x) for x in d.edge_labels())
    return f'label_join({vector}, "{EDGE}", "{SEPARATOR}", {labels})'


def _edge_rate(
    d: Dialect,
    metric: str,
    window: str,
    selector: Sequence[str],
    namespaces: Sequence[str],
    ends: Ends = ANY_ENDS,
) -> str:
    """The per-series rate with the edge's labels joined into one `meshtop_edge` label."""
    return _joined(d, _rate(metric, window, selector, d, namespaces, ends))


def _preferred(
    d: Dialect,
    metric: str,
    reporters: Sequence[str],
    by: Sequence[str],
    window: str,
    ends: Ends = ANY_ENDS,
) -> str:
    """Per edge, the series of the first reporter that reported it at all: a reporter's
    series count only for the edges no reporter before it has (`unless on` the edge), so
    that an outcome only a later reporter saw is not added on top. For one edge's
    history, where the series are few."""
    parts = [
        f"sum by ({_by(EDGE, *by)}) "
        f"({_edge_rate(d, metric, window, [_reporters(d, [r])], (), ends)})"
        for r in reporters
    ]
    out = [parts[0]]
    for i, part in enumerate(parts[1:], 1):
        out.append(f"({part} unless on ({EDGE}) ({' or '.join(parts[:i])}))")
    return " or ".join(out)


def _quantiles(buckets: str) -> str:
    return " or ".join(
        f'label_replace(histogram_quantile({q}, {buckets}), "quantile", "{q}", "", "")'
        for q in QUANTILES
    )


def latency_query(
    d: Dialect,
    window_s: float,
    namespaces: Sequence[str] = (),
    whom: Whom | None = None,
    le: str | Sequence[str] = "",
) -> str:
    """The latency histogram's bucket rates by edge, reporter and bucket, each bucket
    series read once. `whom`: per reporter, the source workloads whose calls it is asked
    about (None: every call; a reporter left out, or with no names: not asked); None:
    every reporter about every call. `le`: a matcher on the buckets' bounds (`le!~"…"`),
    empty for every bucket; or several, each with the calls it applies to, none matched
    by two (`latency.Cuts`). Which reporter's buckets an edge's quantiles come from is
    chosen from the answer (`latency`)."""
    window = duration(window_s)
    cuts = [le] if isinstance(le, str) else list(le) or [""]
    parts = []
    for reporter in d.http_reporters:
        names = None if whom is None else whom.get(reporter, ())
        if names is None:
            parts += [[_reporters(d, [reporter]), cut] for cut in cuts]
        elif names:
            named = _named(d.source.workload, names)
            parts += [[_reporters(d, [reporter]), named, cut] for cut in cuts]
    # Each reporter's buckets summed by the edge's labels, then joined (fewer series for
    # `label_join`, which costs more per series than the sum), then set beside the other
    # reporters': `or` over the few summed series rather than over every raw one, where
    # it hashes each series' every label (a tenth of the query at 1,000 services). A
    # reporter's groups are its own either way: the same sums, added in the same order.
    by_edge = _by(*d.edge_labels(), d.reporter_label, "le")
    summed = (
        f"sum by ({by_edge}) ({_rate(f'{d.duration}_bucket', window, p, d, namespaces)})"
        for p in parts
    )
    by_key = _by(EDGE, d.reporter_label, "le")
    return " or ".join(f"sum by ({by_key}) ({_joined(d, s)})" for s in summed)


def first_and(d: Dialect, later: Later | None) -> dict[str, Collection[str] | None]:
    """Whom a refresh's latency query asks: the first reporter about every call, each later
    one as `later` says (None: every reporter about every call)."""
    rest = {r: None if later is None else later.get(r, ()) for r in d.http_reporters[1:]}
    return {d.http_reporters[0]: None, **rest}


def bounds_matcher(op: str, les: Collection[str]) -> str:
    """A matcher on the `le` label (`op` `=~` or `!~`) for these exact bounds."""
    if not les:
        return ""
    return f"le{op}{json.dumps('|'.join(re.escape(x) for x in sorted(les)), ensure_ascii=False)}"


def snapshot_queries(
    d: Dialect,
    window_s: float,
    namespaces: Sequence[str] = (),
    later: Later | None = None,
    buckets: Sequence[str] = (),
) -> dict[str, str]:
    """The queries of one refresh. Their number does not depend on the mesh's size.
    `later`: which calls the reporters after the first are asked about, for their
    latency (`first_and`); `buckets`: matchers of the buckets asked for, each with the
    calls it applies to (`latency.Cuts`), none for every bucket."""
    window = duration(window_s)
    outcome = (
        d.reporter_label, d.code, d.grpc_status, d.flags, d.mtls_label, d.failure_label,
        d.protocol,
    )  # fmt: skip
    reporters = _reporters(d, (*d.http_reporters, *d.mtls_reporters))
    requests_q = (
        f"sum by ({_by(EDGE, *outcome)}) "
        f"({_edge_rate(d, d.requests, window, [reporters], namespaces)})"
    )
    # Each TCP counter once, by reporter: which reporter an edge's figure comes from is
    # chosen after. The request bytes also say how they travelled, from the reporters that
    # know it: by bytes, not by new connections, since a long-lived pooled connection
    # opens nothing in the window.
    tcp_parts = [
        ("request_bytes", d.tcp_request_bytes, (*d.tcp_reporters, *d.mtls_reporters),
         d.mtls_label),
        ("response_bytes", d.tcp_response_bytes, d.tcp_reporters, ""),
        ("opened", d.tcp_opened, d.tcp_reporters, ""),
    ]  # fmt: skip
    tcp = " or ".join(
        f"label_replace(sum by ({_by(EDGE, d.reporter_label, by)}) "
        f"({_edge_rate(d, metric, window, [_reporters(d, who), d.tcp_selector], namespaces)}), "
        f'"metric", "{name}", "", "")'
        for name, metric, who, by in tcp_parts
    )
    return {
        "requests": requests_q,
        "latency": latency_query(d, window_s, namespaces, first_and(d, later), buckets),
        "tcp": tcp,
    }


def history_queries(
    d: Dialect, source: str | None, destination: str | None, window_s: float, step: float
) -> dict[str, str]:
    """The queries behind a `History`: answers by outcome and latency quantiles as range
    queries, and the window summed up (by reporter, outcome, security and principals,
    and its quantiles) as one instant query."""
    return batch_queries(
        d, (source,) if source else (), (destination,) if destination else (), window_s, step
    )


# Workloads of one side asked about in one set of history queries (`batch_queries`). A
# namespace's detail at 2,000 services asks the histories of its 40-55 members: asked one
# at a time, 165 requests and 0.9 s of the console's CPU for the largest; 8 a set, 21
# requests and 0.23 s, and Prometheus evaluates them in as long (3.8 s against 3.7, the
# same samples read). All 55 in one set took it 5.6 s: larger answers along the way
# (benchmarks/bench_histories.py).
BATCH_NAMES = 8


def batchable(node_id: str) -> tuple[str, str] | None:
    """The (cluster, namespace) of a workload whose history may be asked with those of
    others of its namespace, told apart by its workload label: a named workload, not a
    service with none behind it, a peer that wrote no name, or a host outside the mesh."""
    cluster, namespace, name = node_id.split("/", 2)
    if cluster in (UNKNOWN, "external") or name == UNKNOWN or name.startswith(SERVICE_PREFIX):
        return None
    return cluster, namespace


def split_by(
    d: Dialect, sources: Sequence[str], destinations: Sequence[str]
) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """The ends (0 the source, 1 the destination) whose several workloads `batch_queries`
    tells apart, each with the labels it tells them apart by: its workload's, any of
    them (`Peer.workloads`)."""
    return tuple(
        (end, d.peer(side).workloads())
        for end, (side, ids) in enumerate((("source", sources), ("destination", destinations)))
        if len(ids) > 1
    )


def batch_queries(
    d: Dialect, sources: Sequence[str], destinations: Sequence[str], window_s: float, step: float
) -> dict[str, str]:
    """`history_queries` for every pair of `sources` and `destinations` at once (none on
    a side: anything there): where a side has several, they are workloads of one
    namespace (`batchable`), matched by one pattern and told apart by their workload
    label, which every answer carries (`split_by`)."""
    # Each point's rate covers its own step (at least a minute, for scrapes to fall in),
    # so that a spike shows at its point rather than smeared over the next ones.
    rate_window = duration(max(step, 60))
    window = duration(window_s)
    ends = [
        [*s, *t] for s in _side(d, sources, "source") for t in _side(d, destinations, "destination")
    ]
    split = [label for _, labels in split_by(d, sources, destinations) for label in labels]
    # One reporter per edge, as in a snapshot, then the edges summed: a node's callers
    # may be reported by different proxies (an unmeshed one only by the node's).
    outcome = [x for x in (d.code, d.grpc_status, d.failure_label, d.protocol) if x]
    per_edge = _preferred(d, d.requests, d.http_reporters, [*split, *outcome], rate_window, ends)
    bucket = f"{d.duration}_bucket"
    buckets = _preferred(d, bucket, d.http_reporters, [*split, "le"], rate_window, ends)
    window_buckets = _preferred(d, bucket, d.http_reporters, [*split, "le"], window, ends)
    reporters = _reporters(d, (*d.http_reporters, *d.mtls_reporters))
    answers = (
        d.reporter_label, *outcome, d.flags, d.mtls_label,
        d.source_principal, d.destination_principal,
    )  # fmt: skip
    summary = (
        f"sum by ({_by(EDGE, *split, *answers)}) "
        f"({_edge_rate(d, d.requests, window, [reporters], (), ends)})"
    )
    by_le = _by(*split, "le")
    return {
        "codes": f"sum by ({_by(*split, *outcome)}) ({per_edge})",
        "latency": _quantiles(f"sum by ({by_le}) ({buckets})"),
        "window": f"{summary} or {_quantiles(f'sum by ({by_le}) ({window_buckets})')}",
    }


def _side(d: Dialect, ids: Sequence[str], side: str) -> list[list[str]]:
    """Label matchers for one end of the calls, as alternatives no series matches two
    of: one node (`peer_selector`), or several workloads of one namespace, by one
    pattern on their workload label; a named workload once for each label a mesh may
    name it by (Linkerd's `deployment`, `statefulset`, `daemonset`: its kind's)."""
    if not ids:
        return [[]]
    one = peer_selector(d, ids[0], side)
    if batchable(ids[0]) is None:  # not a named workload: alone on its side
        return [one]
    peer = d.peer(side)
    names = [i.split("/", 2)[2] for i in ids]
    first = f"{peer.workload}="

    def named(label: str) -> str:
        return _named(label, names) if len(names) > 1 else f"{label}={json.dumps(names[0])}"

    return [[named(x) if m.startswith(first) else m for m in one] for x in peer.workloads()]


def _unnamed(d: Dialect, side: str) -> list[str]:
    """Matchers for an end whose proxy wrote no workload's name: by no label of any kind
    (Linkerd's `deployment=""` alone also matches a StatefulSet's series)."""
    return [f"{label}={json.dumps(d.unknown)}" for label in d.peer(side).workloads()]


def peer_selector(d: Dialect, node_id: str | None, side: str) -> list[str]:
    """Label matchers for one end of a call, the inverse of `answers.node`."""
    if node_id is None:
        return []
    peer = d.peer(side)
    cluster, namespace, name = node_id.split("/", 2)
    if cluster == UNKNOWN:
        return _unnamed(d, side)
    if name == f"{SERVICE_PREFIX}{UNKNOWN}" and side == "destination":
        # calls that went nowhere known, from the callers in that namespace
        return [
            *_unnamed(d, side),
            f"{d.service}=~{json.dumps(f'{UNKNOWN}|')}",
            f"{d.source.namespace}={json.dumps(namespace)}",
        ]
    if cluster == "external":
        if name in EXTERNAL_CLUSTERS:
            return [f"{d.service_name}={json.dumps(name)}"]
        # Linkerd's authority carries the port
        return [f"{d.service}=~{json.dumps(re.escape(name) + '(:[0-9]+)?')}"]
    if name.startswith(SERVICE_PREFIX):
        host = re.escape(f"{name[len(SERVICE_PREFIX) :]}.{namespace}.svc") + DOMAIN_AND_PORT
        return [f"{d.service}=~{json.dumps(host)}", *_unnamed(d, side)]
    out = [f"{peer.namespace}={json.dumps(namespace)}"]
    if name == UNKNOWN:  # an unnamed caller: the one whose proxy wrote no name
        out += _unnamed(d, side)
    else:  # by its first label (Linkerd's `deployment`): `_side` asks by the others too
        out.append(f"{peer.workload}={json.dumps(name)}")
    if peer.cluster and cluster != DEFAULT_CLUSTER:
        out.append(f"{peer.cluster}={json.dumps(cluster)}")
    return out
