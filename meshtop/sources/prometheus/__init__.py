"""`MetricsSource` over the Prometheus HTTP API (Prometheus, Thanos, Mimir, Cortex,
VictoriaMetrics) through prometheus-api-client. A refresh is three aggregated queries,
whatever the size of the mesh: requests by edge and outcome, latency quantiles by edge,
and TCP traffic by edge. Queries run concurrently in worker threads."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import math
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from meshtop.errors import BackendError, UsageError
from meshtop.history import Answer, Points, history_step, point_times, summarize
from meshtop.model import (
    SERVICE_PREFIX,
    UNKNOWN,
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
from meshtop.sources import bounded
from meshtop.sources.dialects import AUTO, DETECT_QUERY, Dialect, Errors, detect, dialect
from meshtop.sources.prometheus_config import PrometheusConfig
from meshtop.sources.protocols import Traffic
from meshtop.units import duration

QUANTILES = (0.5, 0.95, 0.99)
DEFAULT_CLUSTER = "Kubernetes"  # Istio's name for a cluster that was not given one
EXTERNAL_CLUSTERS = ("PassthroughCluster", "BlackHoleCluster")


# -- queries -------------------------------------------------------------------------


def _selector(*parts: str) -> str:
    return "{" + ",".join(p for p in parts if p) + "}"


def _rate(
    metric: str, window: str, selector: Iterable[str], d: Dialect, namespaces: Sequence[str]
) -> str:
    """`rate(metric{…}[window])`; with namespaces, the calls from *or* to any of them."""
    base = [d.extra_selector, *selector]
    if not namespaces:
        return f"rate({metric}{_selector(*base)}[{window}])"
    pattern = "|".join(namespaces)  # names are checked DNS labels: nothing to escape
    sides = [f'{label}=~"{pattern}"' for label in (d.source.namespace, d.destination.namespace)]
    if d.service_namespace:
        # The third side: calls to a service in the namespace that no workload answered.
        # Its host names the namespace even where the proxy wrote the service's namespace
        # as `unknown` (a 503 from a service with nothing behind it, seen from ingress).
        sides.append(f"{d.service}=~{json.dumps(_host_pattern(pattern))}")
    return " or ".join(
        f"rate({metric}{_selector(*base, side)}[{window}])" for side in sides if side
    )


def _host_pattern(namespaces: str) -> str:
    """A mesh host (`NAME.NS.svc`, then the cluster's domain, maybe a port) in one of the
    namespaces `a|b`, as `_mesh_host` reads it."""
    return rf"[^.]+\.({namespaces})\.svc{_DOMAIN_AND_PORT}"


_DOMAIN_AND_PORT = r"(\.[^:]+)?(:[0-9]+)?"  # after `NAME.NS.svc`: any cluster domain, a port


_MESH_HOST = re.compile(r"^([^.:]+)\.([^.:]+)\.svc(?:\.[^:]+)?(?::[0-9]+)?$")


def _mesh_host(host: str) -> tuple[str, str] | None:
    """(service, namespace) of a host inside the mesh (`reviews.bookinfo.svc`, with any
    cluster domain and port), or None for a host outside it."""
    found = _MESH_HOST.match(host)
    return (found[1], found[2]) if found else None


def _by(*labels: str) -> str:
    return ", ".join(dict.fromkeys(x for x in labels if x))


def _reporters(d: Dialect, reporters: Sequence[str]) -> str:
    unique = list(dict.fromkeys(reporters))
    op = "=" if len(unique) == 1 else "=~"
    return f"{d.reporter_label}{op}{json.dumps('|'.join(unique))}"


EDGE = "meshtop_edge"  # one label naming both ends, so each series is small and cheap to key
SEPARATOR = "|"  # cannot appear in Kubernetes names, hosts or cluster names


def _edge_rate(
    d: Dialect, metric: str, window: str, selector: Sequence[str], namespaces: Sequence[str]
) -> str:
    """The per-series rate with the edge's labels joined into one `meshtop_edge` label."""
    labels = ", ".join(json.dumps(x) for x in d.edge_labels())
    return (
        f'label_join({_rate(metric, window, selector, d, namespaces)}, "{EDGE}", '
        f'"{SEPARATOR}", {labels})'
    )


def _preferred(
    d: Dialect,
    metric: str,
    reporters: Sequence[str],
    by: Sequence[str],
    window: str,
    selector: Sequence[str] = (),
    namespaces: Sequence[str] = (),
) -> str:
    """Per edge, the series of the first reporter that reported it at all: a reporter's
    series count only for the edges no reporter before it has (`unless on` the edge), so
    that an outcome only a later reporter saw is not added on top."""
    parts = [
        f"sum by ({_by(EDGE, *by)}) "
        f"({_edge_rate(d, metric, window, [_reporters(d, [r]), *selector], namespaces)})"
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


def snapshot_queries(d: Dialect, window_s: float, namespaces: Sequence[str] = ()) -> dict[str, str]:
    """The queries of one refresh. Their number does not depend on the mesh's size."""
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
    buckets = _preferred(
        d, f"{d.duration}_bucket", d.http_reporters, ["le"], window, (), namespaces
    )
    tcp_parts = [
        (name, _preferred(d, metric, d.tcp_reporters, [], window, [d.tcp_selector], namespaces))
        for name, metric in (
            ("request_bytes", d.tcp_request_bytes),
            ("response_bytes", d.tcp_response_bytes),
            ("opened", d.tcp_opened),
        )
    ]
    # How the bytes travelled, from the reporters that know it: by bytes, not by new
    # connections, since a long-lived pooled connection opens nothing in the window.
    secured_by = [_reporters(d, d.mtls_reporters), d.tcp_selector]
    security = (
        f"sum by ({_by(EDGE, d.mtls_label)}) "
        f"({_edge_rate(d, d.tcp_request_bytes, window, secured_by, namespaces)})"
    )
    tcp = " or ".join(
        f'label_replace({q}, "metric", "{name}", "", "")'
        for name, q in [*tcp_parts, ("security", security)]
    )
    return {"requests": requests_q, "latency": _quantiles(buckets), "tcp": tcp}


# -- joining answers into edges --------------------------------------------------------


def _node(d: Dialect, labels: Mapping[str, str], side: str) -> Workload:
    peer = d.source if side == "source" else d.destination
    name = labels.get(peer.workload, "")
    for other in peer.other_workloads:  # a StatefulSet or DaemonSet, in Linkerd's labels
        name = name or labels.get(other, "")
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


def join(d: Dialect, answers: Mapping[str, Sequence[Mapping[str, Any]]]) -> Traffic:
    """Edges and nodes from the three answers of `snapshot_queries`."""
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
    for sample in answers.get("requests", ()):
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

    latency: dict[tuple[str, str], dict[str, float]] = {}
    for sample in answers.get("latency", ()):
        v = float(sample["value"][1])
        if not -math.inf < v < math.inf:  # NaN: no requests; +Inf: beyond the last bucket
            continue
        labels = sample["metric"]
        key = ends_cache.get(labels.get(EDGE, "")) or ends(labels)
        found = latency.get(key)
        if found is None:
            found = latency[key] = {}
        found[labels["quantile"]] = v

    tcp: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for sample in answers.get("tcp", ()):
        v = float(sample["value"][1])
        if not -math.inf < v < math.inf:
            continue
        labels = sample["metric"]
        key = ends(labels)
        metric = labels["metric"]
        if metric == "security":
            tcp[key]["secured" if labels.get(d.mtls_label) == d.mtls_value else "plain"] += v
            continue
        tcp[key][metric] = v

    edges: list[Edge] = []
    for key, by_reporter in seen.items():
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
                    p50_ms=q.get("0.5"),
                    p95_ms=q.get("0.95"),
                    p99_ms=q.get("0.99"),
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


# -- talking to the server ------------------------------------------------------------


class _Check(threading.local):
    warnings: tuple[str, ...] = ()


def _describe_http(config: PrometheusConfig, response: requests.Response) -> str | None:
    status = response.status_code
    where = config.url
    if status == 401:
        return f"Prometheus at {where} refused the credentials (HTTP 401): check the token or user"
    if status == 403:
        return f"Prometheus at {where} forbids this query (HTTP 403): check the token's permissions"
    if status == 404:
        return f"no Prometheus API at {where} (HTTP 404): check the URL and its path prefix"
    return None


class _BoundedSession(requests.Session):
    """A session whose every request ends by its deadline (connect, send and every byte
    of the body, not each read on its own) and whose every body is capped in size.
    Responses stream; `read_body`, the first response hook, reads them in chunks."""

    def __init__(self, config: PrometheusConfig) -> None:
        super().__init__()
        self.config = config

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        with bounded.deadline(self.config.timeout_s) as until:
            remaining = until - time.monotonic()
            if remaining <= 0:
                raise BackendError(_late(self.config))
            kwargs["stream"] = True
            kwargs["timeout"] = remaining  # connecting, and each read until the headers
            bounded.arm()
            try:
                return super().send(request, **kwargs)
            except requests.exceptions.ConnectionError:
                if bounded.cut_off():  # the watchdog's doing, not the server's
                    raise BackendError(
                        f"Prometheus at {self.config.url} did not answer within "
                        f"{self.config.timeout_s:g}s"
                    ) from None
                raise

    def read_body(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """The whole body, by the deadline and within the cap, or one clear `BackendError`
        (and the connection closed, not reused)."""
        until = bounded.DEADLINE.get() or time.monotonic() + self.config.timeout_s
        cap = int(self.config.max_response_mb * bounded.MIB)
        try:
            response._content = bounded.read_all(response.raw, until=until, cap=cap)
        except bounded.Late:
            raise BackendError(_late(self.config)) from None
        except bounded.TooBig:
            raise BackendError(_too_big(self.config)) from None
        except bounded.BrokenOff as exc:
            raise BackendError(
                f"Prometheus at {self.config.url} broke off its answer: {_reason(exc)}"
            ) from None
        response._content_consumed = True


def _late(config: PrometheusConfig) -> str:
    return f"Prometheus at {config.url} did not finish answering within {config.timeout_s:g}s"


def _too_big(config: PrometheusConfig) -> str:
    return (
        f"Prometheus at {config.url} answered more than {config.max_response_mb:g} MiB; "
        "raise [prometheus] max_response_mb if a query really needs it"
    )


class PrometheusMetrics:
    """The real metrics source. `name` shows the URL, never a credential."""

    def __init__(self, config: PrometheusConfig, *, at: float | None = None) -> None:
        """`at`: evaluate every query at this time (seconds since the epoch) rather than
        now, so that answers can be compared with hand-written queries."""
        if config.unreadable:  # its token or password file: said now, when it is needed
            raise UsageError(config.unreadable)
        self.config = config
        self.at = at
        self._dialect: Dialect | None = None if config.dialect == AUTO else dialect(config.dialect)
        self._check = _Check()
        session = _BoundedSession(config)
        session.verify = str(config.ca_file) if config.ca_file else not config.insecure
        session.hooks["response"] += [session.read_body, self._inspect]
        headers = dict(config.headers)
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self._client = PrometheusConnect(
            url=config.url.rstrip("/"),
            headers=headers,
            auth=config.basic_auth,
            session=session,
            # meshtop retries a whole refresh with backoff; a retry per query would
            # only multiply the wait on a dead backend.
            retry=Retry(total=0, raise_on_status=False),
            timeout=config.timeout_s,
        )
        for adapter in session.adapters.values():  # after the client has mounted its own
            bounded.watch(getattr(adapter, "poolmanager", None))
        self.queries_sent = 0
        # why the last empty answer was empty, kept a while: (what was asked, when, why)
        self._empty: tuple[tuple[object, ...], float, tuple[str, ...]] | None = None

    @property
    def name(self) -> str:
        return f"prometheus {self.config.url}"

    @property
    def dialect(self) -> Dialect | None:
        return self._dialect

    def _inspect(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Every answer passes here first: refusals, garbage and errors become one clear
        `BackendError`; warnings are kept for the caller. A plain good answer is not
        decoded here: the client decodes it, and decoding twice would double the cost."""
        problem = _describe_http(self.config, response)
        if problem:
            raise BackendError(problem)
        content = response.content
        looks_fine = response.status_code == 200 and b'"status":"success"' in content[:64]
        if looks_fine and b'"warnings"' not in content:
            self._check.warnings = ()
            return
        try:
            body = response.json()
        except ValueError:
            snippet = content[:60].decode("utf-8", "replace").replace("\n", " ")
            raise BackendError(
                f"Prometheus at {self.config.url} answered HTTP {response.status_code} with "
                f"something that is not JSON ({snippet!r}): is this the Prometheus API?"
            ) from None
        if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
            raise BackendError(
                f"Prometheus at {self.config.url} answered JSON that is not an API response"
            )
        if body["status"] == "error":
            raise BackendError(
                f"Prometheus at {self.config.url} rejected a query: "
                f"{body.get('errorType', 'error')}: {body.get('error', 'no reason given')}"
            )
        if response.status_code != 200:
            raise BackendError(
                f"Prometheus at {self.config.url} answered HTTP {response.status_code}"
            )
        data = body.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise BackendError(f"Prometheus at {self.config.url} answered without a result")
        self._check.warnings = tuple(str(w) for w in body.get("warnings") or ())

    def _call(self, ask: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """Run one API call; every way it can fail becomes one clear `BackendError`."""
        self.queries_sent += 1
        try:
            return list(ask())
        except BackendError:
            raise
        except requests.exceptions.SSLError as exc:
            hint = (
                "is it serving HTTPS on that port?"  # the check is skipped already
                if self.config.insecure
                else "give the CA bundle (--prometheus-ca), or --insecure to skip the check"
            )
            raise BackendError(
                f"TLS to Prometheus at {self.config.url} failed ({_tls_reason(exc)}): {hint}"
            ) from None
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            # With retries off, urllib3 reports a read timeout as a connection error.
            if isinstance(exc, requests.exceptions.Timeout) or _reason(exc) == "timed out":
                raise BackendError(
                    f"Prometheus at {self.config.url} did not answer within "
                    f"{self.config.timeout_s:g}s"
                ) from None
            raise BackendError(
                f"cannot reach Prometheus at {self.config.url}: {_reason(exc)}"
            ) from None
        except (ValueError, KeyError, TypeError):  # a body the quick look let through
            raise BackendError(
                f"Prometheus at {self.config.url} answered something that is not an API response"
            ) from None
        except (requests.exceptions.RequestException, PrometheusApiClientException) as exc:
            raise BackendError(f"Prometheus at {self.config.url}: {exc}") from None

    def _query(
        self, promql: str, at: float | None = None
    ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        """One instant query, at `at`, else at the source's own moment, else now."""
        self._check.warnings = ()
        when = at if at is not None else self.at
        params = {"time": f"{when:.3f}"} if when is not None else None
        result = self._call(lambda: self._client.custom_query(promql, params=params))
        if any(not isinstance(r, dict) or "value" not in r for r in result[:1]):
            raise BackendError(
                f"Prometheus at {self.config.url} answered something other than an instant "
                "vector: is this the Prometheus API?"
            )
        return result, self._check.warnings

    async def _ask(self, promql: str) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        return await asyncio.to_thread(self._query, promql)

    async def resolve_dialect(self) -> Dialect:
        if self._dialect is None:
            series, _ = await self._ask(DETECT_QUERY)
            found = detect([s["metric"] for s in series])
            if found is None:
                raise BackendError(
                    f"no Istio or Linkerd metrics at {self.config.url}: is this the mesh's "
                    "Prometheus? (--dialect istio|ambient|linkerd skips the check)"
                )
            self._dialect = found
        return self._dialect

    async def traffic(self, window_s: float) -> Traffic:
        with bounded.deadline(self.config.timeout_s) as until:  # the probe and the queries
            d = await self.resolve_dialect()
            queries = snapshot_queries(d, window_s, self.config.namespaces)
            answers = await asyncio.gather(*(self._ask(q) for q in queries.values()))
        warnings = sorted({w for _, ws in answers for w in ws})
        try:
            traffic = join(
                d, {name: result for name, (result, _) in zip(queries, answers, strict=True)}
            )
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            # JSON, a vector even, but not what the queries ask for (a sample without its
            # labels, a value that is not a number): the backend's answer, not our bug
            raise BackendError(
                f"Prometheus at {self.config.url} answered series that are not what the "
                f"queries ask for ({type(exc).__name__} {exc}): is it PromQL-compatible?"
            ) from None
        warnings += traffic.warnings  # the join's own: series it could not key
        if not traffic.edges:  # never an empty report without a word
            warnings += await self._why_empty(d, window_s, until)
        return Traffic(nodes=traffic.nodes, edges=traffic.edges, warnings=tuple(warnings))

    async def _why_empty(self, d: Dialect, window_s: float, until: float) -> tuple[str, ...]:
        """Why a refresh found no edge, in words: the backend holds no series of the
        dialect (another mesh's, or none), the namespaces asked for have no calls, or the
        window is too short for two samples of the series. A few small queries, asked
        only when an answer is empty, again at most every `EMPTY_RECHECK_S`, and within
        the refresh's own deadline (`until`): an empty answer never makes it late."""
        asked = (d.name, window_s, self.config.namespaces, self.at)
        kept = self._empty
        if kept is not None and kept[0] == asked and time.monotonic() - kept[1] < EMPTY_RECHECK_S:
            return kept[2]
        try:
            with bounded.deadline(until - time.monotonic()):
                why = await self._diagnose(d, window_s)
        except BackendError as exc:  # the refresh itself went well: say what we could
            return (f"no edge in the last {duration(window_s)}: cannot tell why ({exc})",)
        said = (f"no edge in the last {duration(window_s)}: {why}",)
        self._empty = (asked, time.monotonic(), said)
        return said

    async def _diagnose(self, d: Dialect, window_s: float) -> str:
        url = self.config.url
        present, _ = await self._ask(DETECT_QUERY)
        names = {(s["metric"].get("__name__"), s["metric"].get("reporter")) for s in present}
        names |= {(s["metric"].get("__name__"), s["metric"].get("direction")) for s in present}
        if not any(n == metric for n, _ in names for metric in _PROBED[d.name]):
            other = detect([s["metric"] for s in present])
            if other is None:
                return (
                    f"no {MESH_NAMES[d.name]} series at {url}, nor any other mesh's: is this "
                    "the mesh's Prometheus?"
                )
            return (
                f"no {MESH_NAMES[d.name]} series at {url}, which holds "
                f"{MESH_NAMES[other.name]}'s: --dialect {other.name} (or auto) reads them"
            )
        metric = f"{d.requests}{_selector(d.extra_selector)}"
        wanted = self.config.namespaces
        if wanted:
            by = [x for x in (d.source.namespace, d.destination.namespace) if x]
            rows, _ = await self._ask(" or ".join(f"group by ({x}) ({metric})" for x in by))
            seen = sorted({v for r in rows for x in by if _known(v := r["metric"].get(x, ""))})
            if not set(wanted) & set(seen):
                shown = ", ".join(seen[:12]) + (", …" if len(seen) > 12 else "")
                which = ", ".join(wanted)
                return (
                    f"no calls from or to namespace {which} at {url} (the namespaces with "
                    f"calls: {shown or 'none'})"
                )
        interval = await self._sample_spacing(metric)
        if interval is not None and window_s < 2 * interval:
            return (
                f"the window ({duration(window_s)}) is shorter than two scrape intervals (the "
                f"samples are {duration(interval)} apart here), and rate() needs two samples "
                f"in it: give a window of {duration(4 * interval)} or more"
            )
        return "the mesh's series are there, but did not grow: no traffic in the window"

    async def _sample_spacing(self, metric: str) -> float | None:
        """How far apart one live series' samples are: its scrape interval, read from
        the backend itself (any PromQL engine keeps the samples' times)."""
        rows, _ = await self._ask(f"topk(1, {metric})")
        if not rows:
            return None
        labels = rows[0]["metric"]
        selector = ",".join(
            f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items())
        )
        when = self.at
        params = {"time": f"{when:.3f}"} if when is not None else None
        samples = f"{{{selector}}}[{duration(SPACING_LOOKBACK_S)}]"  # raw, with their times
        result = await asyncio.to_thread(
            self._call, lambda: self._client.custom_query(samples, params=params)
        )
        times = [float(t) for r in result[:1] for t, _ in r.get("values", ())]
        gaps = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
        if not gaps:
            return None
        spacing = gaps[len(gaps) // 2]  # the median: a missed scrape is not the interval
        return float(round(spacing)) if spacing >= 1 else spacing  # scrapes jitter by ms

    async def history(
        self, source: str | None, destination: str | None, window_s: float
    ) -> History:
        """Rate, errors by kind and latency quantiles of one edge (or of everything a node
        answers, with `source=None`) over the last `window_s`, at a step chosen from it,
        and the window summed up: three queries, whatever the window."""
        d = await self.resolve_dialect()
        # prometheus-api-client sends whole seconds: align to them, so the points' times
        # are the times Prometheus evaluated.
        end = float(math.floor(self.at if self.at is not None else time.time()))
        step = history_step(window_s)
        queries = history_queries(d, source, destination, window_s, step)
        start_dt = datetime.fromtimestamp(end - window_s, UTC)
        end_dt = datetime.fromtimestamp(end, UTC)

        def ask_range(promql: str) -> list[dict[str, Any]]:
            step_text = f"{step:g}s"
            result = self._call(
                lambda: self._client.custom_query_range(promql, start_dt, end_dt, step_text)
            )
            if any(not isinstance(r, dict) or "values" not in r for r in result[:1]):
                raise BackendError(
                    f"Prometheus at {self.config.url} answered something other than a matrix"
                )
            return result

        def ask_instant(promql: str) -> list[dict[str, Any]]:
            return self._query(promql, at=end)[0]

        with bounded.deadline(self.config.timeout_s):
            codes, quantiles, window = await asyncio.gather(
                asyncio.to_thread(ask_range, queries["codes"]),
                asyncio.to_thread(ask_range, queries["latency"]),
                asyncio.to_thread(ask_instant, queries["window"]),
            )
        try:
            return parse_history(d, source, destination, window_s, end, codes, quantiles, window)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError):
            raise BackendError(
                f"Prometheus at {self.config.url} answered a range query with something "
                "that is not a matrix of samples"
            ) from None


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


def _kind(d: Dialect, labels: Mapping[str, str]) -> str | None:
    """The kind of error a series counts (`model.error_kind`), by the dialect's verdict."""
    kind = error_kind(labels.get(d.code, ""), _grpc_status(d, labels))
    if _is_error(d, labels):  # the snapshot's verdict: counted as an error here too
        return kind if counts_as_error(kind) else "failure"
    return kind if kind == "4xx" else None


def history_queries(
    d: Dialect, source: str | None, destination: str | None, window_s: float, step: float
) -> dict[str, str]:
    """The queries behind a `History`: answers by outcome and latency quantiles as range
    queries, and the window summed up (by reporter, outcome, security and principals,
    and its quantiles) as one instant query."""
    # Each point's rate covers its own step (at least a minute, for scrapes to fall in),
    # so that a spike shows at its point rather than smeared over the next ones.
    rate_window = duration(max(step, 60))
    window = duration(window_s)
    selector = [
        *_peer_selector(d, source, "source"),
        *_peer_selector(d, destination, "destination"),
    ]
    # One reporter per edge, as in a snapshot, then the edges summed: a node's callers
    # may be reported by different proxies (an unmeshed one only by the node's).
    outcome = [x for x in (d.code, d.grpc_status, d.failure_label, d.protocol) if x]
    per_edge = _preferred(d, d.requests, d.http_reporters, outcome, rate_window, selector)
    buckets = _preferred(d, f"{d.duration}_bucket", d.http_reporters, ["le"], rate_window, selector)
    window_buckets = _preferred(
        d, f"{d.duration}_bucket", d.http_reporters, ["le"], window, selector
    )
    reporters = _reporters(d, (*d.http_reporters, *d.mtls_reporters))
    answers = (
        d.reporter_label, *outcome, d.flags, d.mtls_label,
        d.source_principal, d.destination_principal,
    )  # fmt: skip
    summary = (
        f"sum by ({_by(EDGE, *answers)}) "
        f"({_edge_rate(d, d.requests, window, [reporters, *selector], ())})"
    )
    return {
        "codes": f"sum by ({_by(*outcome)}) ({per_edge})",
        "latency": _quantiles(f"sum by (le) ({buckets})"),
        "window": f"{summary} or {_quantiles(f'sum by (le) ({window_buckets})')}",
    }


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


EMPTY_RECHECK_S = 60.0  # an empty console asks why once a minute, not every refresh
SPACING_LOOKBACK_S = 900.0  # long enough to hold a few samples of a slow scrape
MESH_NAMES = {"istio": "Istio", "ambient": "Istio ambient", "linkerd": "Linkerd"}
# the metrics `DETECT_QUERY` finds for each dialect
_PROBED = {
    "istio": ("istio_requests_total", "istio_tcp_sent_bytes_total"),
    "ambient": ("istio_requests_total", "istio_tcp_sent_bytes_total"),
    "linkerd": ("response_total",),
}


def _peer_selector(d: Dialect, node_id: str | None, side: str) -> list[str]:
    """Label matchers for one end of a call, the inverse of `_node`."""
    if node_id is None:
        return []
    peer = d.source if side == "source" else d.destination
    cluster, namespace, name = node_id.split("/", 2)
    if cluster == "unknown":
        return [f"{peer.workload}={json.dumps(d.unknown)}"]
    if name == f"{SERVICE_PREFIX}{UNKNOWN}" and side == "destination":
        # calls that went nowhere known, from the callers in that namespace
        return [
            f"{peer.workload}={json.dumps(d.unknown)}",
            f"{d.service}=~{json.dumps(f'{UNKNOWN}|')}",
            f"{d.source.namespace}={json.dumps(namespace)}",
        ]
    if cluster == "external":
        if name in EXTERNAL_CLUSTERS:
            return [f"{d.service_name}={json.dumps(name)}"]
        # Linkerd's authority carries the port
        return [f"{d.service}=~{json.dumps(re.escape(name) + '(:[0-9]+)?')}"]
    if name.startswith(SERVICE_PREFIX):
        host = re.escape(f"{name[len(SERVICE_PREFIX) :]}.{namespace}.svc") + _DOMAIN_AND_PORT
        return [
            f"{d.service}=~{json.dumps(host)}",
            f"{peer.workload}={json.dumps(d.unknown)}",
        ]
    # an unnamed caller (`namespace/unknown`) is the one whose proxy wrote no name
    named = d.unknown if name == UNKNOWN else name
    out = [f"{peer.namespace}={json.dumps(namespace)}", f"{peer.workload}={json.dumps(named)}"]
    if peer.cluster and cluster != DEFAULT_CLUSTER:
        out.append(f"{peer.cluster}={json.dumps(cluster)}")
    return out


def _tls_reason(exc: Exception) -> str:
    """What OpenSSL said, in its words (`wrong version number`), not the nested reprs
    (`SSLError(SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version…`)."""
    found = re.search(r"\[SSL: [A-Z0-9_]+\] ([^('\"]+)", str(exc))
    return found[1].strip() if found else _reason(exc)


def _reason(exc: Exception) -> str:
    """The innermost reason of a requests error, e.g. `connection refused`."""
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "certificate verify failed",
        "No route to host",
        "Temporary failure in name resolution",
    ):
        if marker.lower() in text.lower():
            return marker.lower()
    return text.split("(Caused by ")[-1].rstrip(")")[:120]
