"""The Prometheus source's queries and how it joins their answers, on answers shaped
exactly as the HTTP API returns them (integration tests check them against a real server)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from meshtop.history import history_step
from meshtop.model import NodeKind, Protocol
from meshtop.sources.dialects import AMBIENT, ISTIO, LINKERD, Dialect, detect
from meshtop.sources.prometheus import EDGE, SEPARATOR, join, snapshot_queries

SRC = {
    "source_cluster": "Kubernetes",
    "source_workload_namespace": "bookinfo",
    "source_workload": "productpage-v1",
    "source_app": "productpage",
    "source_version": "v1",
}
DST = {
    "destination_cluster": "Kubernetes",
    "destination_workload_namespace": "bookinfo",
    "destination_workload": "reviews-v3",
    "destination_app": "reviews",
    "destination_version": "v3",
    "destination_service": "reviews.bookinfo.svc.cluster.local",
    "destination_service_name": "reviews",
    "destination_service_namespace": "bookinfo",
}
UNKNOWN_SRC = {k: "unknown" for k in SRC}


def sample(value: float, dialect: Dialect = ISTIO, **labels: str) -> dict[str, Any]:
    """A series as the API returns it: the edge's labels joined into `meshtop_edge`."""
    edge = SEPARATOR.join(labels.pop(x, "") for x in dialect.edge_labels())
    return {"metric": {EDGE: edge, **labels}, "value": [1_800_000_000.0, repr(value)]}


def req(
    value: float,
    reporter: str,
    code: str = "200",
    policy: str = "unknown",
    grpc: str = "",
    **ends: str,
) -> dict[str, Any]:
    return sample(
        value,
        reporter=reporter,
        response_code=code,
        grpc_response_status=grpc,
        response_flags="-",
        request_protocol="grpc" if grpc else "http",
        connection_security_policy=policy,
        **{**SRC, **DST, **ends},
    )


@pytest.mark.parametrize("namespaces", [(), ("bookinfo",), tuple(f"ns{i}" for i in range(200))])
def test_three_queries_per_refresh_whatever_the_mesh(namespaces: tuple[str, ...]) -> None:
    for d in (ISTIO, AMBIENT, LINKERD):
        queries = snapshot_queries(d, 60, namespaces)
        assert list(queries) == ["requests", "latency", "tcp"]
        for q in queries.values():
            assert "[1m]" in q
            if namespaces:
                assert f'{d.source.namespace}=~"' in q and f'{d.destination.namespace}=~"' in q


def test_sidecar_traffic_reported_twice_is_counted_once_from_the_client() -> None:
    traffic = join(
        ISTIO,
        {
            "requests": [
                req(9.0, "source", "200"),
                req(1.0, "source", "503"),
                # the server's proxy saw fewer: one request never arrived
                req(8.5, "destination", "200", policy="mutual_tls"),
                req(0.5, "destination", "503", policy="mutual_tls"),
            ]
        },
    )
    (edge,) = traffic.edges
    assert edge.stats.rps == pytest.approx(10.0)
    assert edge.stats.error_rate == pytest.approx(0.1)
    assert edge.stats.mtls == pytest.approx(1.0)  # from the server side, which knows
    assert edge.stats.response_codes == {"200": 9.0, "503": 1.0}


def test_unmeshed_client_is_seen_only_by_the_server() -> None:
    traffic = join(ISTIO, {"requests": [req(2.0, "destination", policy="none", **UNKNOWN_SRC)]})
    (edge,) = traffic.edges
    assert edge.source == "unknown/unknown/unknown"
    assert edge.stats.rps == 2.0 and edge.stats.mtls == 0.0
    kinds = {n.id: n.kind for n in traffic.nodes}
    assert kinds["unknown/unknown/unknown"] is NodeKind.UNKNOWN


@pytest.mark.parametrize(
    ("service", "service_name", "expected"),
    [
        ("api.stripe.com", "api.stripe.com", "external/external/api.stripe.com"),
        ("httpbin.org", "PassthroughCluster", "external/external/httpbin.org"),
        ("unknown", "PassthroughCluster", "external/external/PassthroughCluster"),
        ("ratings.bookinfo.svc.cluster.local", "ratings", "Kubernetes/bookinfo/service:ratings"),
    ],
)
def test_destinations_without_a_workload(service: str, service_name: str, expected: str) -> None:
    nobody = {
        "destination_workload": "unknown",
        "destination_workload_namespace": "unknown",
        "destination_app": "unknown",
        "destination_version": "unknown",
        "destination_cluster": "unknown",
        "destination_service": service,
        "destination_service_name": service_name,
    }
    traffic = join(ISTIO, {"requests": [req(1.0, "source", "503", **nobody)]})
    (edge,) = traffic.edges
    assert edge.destination == expected


def test_grpc_errors_come_from_the_grpc_status() -> None:
    traffic = join(
        ISTIO,
        {"requests": [req(9.0, "source", grpc="0"), req(1.0, "source", grpc="14")]},
    )
    (edge,) = traffic.edges
    assert edge.stats.protocol is Protocol.GRPC
    assert edge.stats.error_rate == pytest.approx(0.1)
    assert edge.stats.grpc_statuses == {"0": 9.0, "14": 1.0}


def bucket(le: str, value: float, reporter: str = "source", **ends: str) -> dict[str, Any]:
    """A latency bucket's rate, as the latency query answers it: by edge, reporter, `le`."""
    return sample(value, reporter=reporter, le=le, **{**SRC, **DST, **ends})


def buckets(counts: dict[str, float], reporter: str = "source", **ends: str) -> list[Any]:
    return [bucket(le, v, reporter, **ends) for le, v in counts.items()]


# p50 31, p95 112, p99 232 (interpolated inside the buckets 25-50 and 100-250)
SHAPED = {"25": 476.0, "50": 576.0, "100": 946.0, "250": 996.0, "+Inf": 1000.0}


def test_latency_and_tcp_answers_join_the_same_edges() -> None:
    ends = {**SRC, **DST}
    db = {**ends, "destination_workload": "db-v1"}
    idle = {"source_workload": "cron-v1"}  # requests counted, but no bucket grew: NaN
    traffic = join(
        ISTIO,
        {
            "requests": [req(4.0, "source"), req(1.0, "source", **idle)],
            "latency": [
                *buckets(SHAPED),
                *buckets({"25": 0.0, "+Inf": 0.0}, **idle),
            ],
            "tcp": [
                sample(850.0, reporter="source", metric="request_bytes", **db),
                sample(5200.0, reporter="source", metric="response_bytes", **db),
                sample(1.0, reporter="source", metric="opened", **db),
                sample(
                    850.0,
                    reporter="destination",
                    metric="request_bytes",
                    connection_security_policy="mutual_tls",
                    **db,
                ),
            ],
        },
    )
    http = next(e for e in traffic.edges if e.destination.endswith("reviews-v3") and
                "productpage" in e.source)  # fmt: skip
    assert (http.stats.p50_ms, http.stats.p95_ms, http.stats.p99_ms) == (31.0, 112.0, 232.0)
    cron = next(e for e in traffic.edges if "cron" in e.source)
    assert (cron.stats.p50_ms, cron.stats.p95_ms, cron.stats.p99_ms) == (None, None, None)
    tcp = next(e for e in traffic.edges if e.stats.protocol is Protocol.TCP)
    assert tcp.destination == "Kubernetes/bookinfo/db-v1"
    assert (tcp.stats.tcp_request_bps, tcp.stats.tcp_response_bps) == (850.0, 5200.0)
    assert tcp.stats.mtls == 1.0


def test_latency_comes_from_the_first_reporter_with_buckets() -> None:
    """Both proxies time a call between sidecars: the client's histogram is the one, as
    its requests are; the server's only where the client's proxy kept none."""
    slow = {"25": 0.0, "50": 0.0, "100": 0.0, "250": 500.0, "+Inf": 1000.0}
    unmeshed = {**UNKNOWN_SRC}
    traffic = join(
        ISTIO,
        {
            "requests": [
                req(4.0, "source"),
                req(4.0, "destination", policy="mutual_tls"),
                req(2.0, "destination", policy="none", **unmeshed),
            ],
            "latency": [
                *buckets(slow, "destination"),
                *buckets(SHAPED, "source"),
                *buckets(slow, "destination", **unmeshed),
            ],
        },
    )
    p50 = {e.source: e.stats.p50_ms for e in traffic.edges}
    assert p50 == {"Kubernetes/bookinfo/productpage-v1": 31.0, "unknown/unknown/unknown": 250.0}


def test_linkerd_failures_are_its_classification() -> None:
    labels = {
        "namespace": "shop",
        "deployment": "web",
        "dst_namespace": "shop",
        "dst_deployment": "api",
        "tls": "true",
        "direction": "outbound",
    }
    traffic = join(
        LINKERD,
        {
            "requests": [
                sample(3.0, LINKERD, status_code="200", classification="success", **labels),
                sample(1.0, LINKERD, status_code="200", classification="failure", **labels),
            ]
        },
    )
    (edge,) = traffic.edges
    assert (edge.source, edge.destination) == ("Kubernetes/shop/web", "Kubernetes/shop/api")
    assert edge.stats.error_rate == pytest.approx(0.25)
    assert edge.stats.mtls == 1.0


def test_dialect_is_detected_from_what_the_backend_holds() -> None:
    assert detect([{"__name__": "istio_requests_total", "reporter": "source"}]) is ISTIO
    assert detect([{"__name__": "istio_requests_total", "reporter": "waypoint"}]) is AMBIENT
    assert detect([{"__name__": "istio_tcp_sent_bytes_total", "reporter": "destination"}]) is ISTIO
    assert detect([{"__name__": "response_total", "direction": "outbound"}]) is LINKERD
    assert detect([]) is None


@pytest.mark.parametrize(
    ("window", "step"),
    [(300, 5), (900, 10), (3600, 30), (21600, 300), (86400, 900), (7 * 86400, 7200)],
)
def test_history_step_follows_the_window(window: float, step: float) -> None:
    assert history_step(window) == step


def test_tcp_mtls_comes_from_bytes_so_pooled_connections_count() -> None:
    """A database pool opens nothing in the window but its bytes still travel on mTLS."""
    ends = {**SRC, **DST, "destination_workload": "db-v1"}
    secured = {"connection_security_policy": "mutual_tls"}
    traffic = join(
        ISTIO,
        {
            "tcp": [
                sample(900.0, reporter="source", metric="request_bytes", **ends),
                sample(9000.0, reporter="source", metric="response_bytes", **ends),
                sample(0.0, reporter="source", metric="opened", **ends),
                sample(900.0, reporter="destination", metric="request_bytes", **secured, **ends),
                sample(9000.0, reporter="destination", metric="response_bytes", **ends),
                sample(0.0, reporter="destination", metric="opened", **ends),
            ]
        },
    )
    (edge,) = traffic.edges
    assert edge.stats.mtls == 1.0 and edge.stats.tcp_connections_per_s == 0.0
    assert edge.stats.tcp_request_bps == 900.0  # the client's count, not both added


def test_ambient_keeps_sidecar_edges_in_a_mixed_mesh() -> None:
    traffic = join(
        AMBIENT,
        {
            "requests": [
                req(5.0, "waypoint", policy="mutual_tls"),
                req(2.0, "source", destination_workload="ratings-v1"),
                req(2.0, "destination", policy="mutual_tls", destination_workload="ratings-v1"),
            ]
        },
    )
    rps = {e.destination: e.stats.rps for e in traffic.edges}
    assert rps == {"Kubernetes/bookinfo/reviews-v3": 5.0, "Kubernetes/bookinfo/ratings-v1": 2.0}


def test_linkerd_names_statefulsets_too() -> None:
    labels = {"namespace": "shop", "statefulset": "queue", "dst_namespace": "shop",
              "dst_statefulset": "db", "direction": "outbound", "tls": "true"}  # fmt: skip
    traffic = join(LINKERD, {"requests": [sample(1.0, LINKERD, status_code="200", **labels)]})
    (edge,) = traffic.edges
    assert (edge.source, edge.destination) == ("Kubernetes/shop/queue", "Kubernetes/shop/db")


def test_linkerd_histories_ask_for_a_workload_by_every_kinds_label() -> None:
    """Linkerd names a StatefulSet's pods by `statefulset`, a DaemonSet's by `daemonset`:
    a workload's history asks by each (one selector a label, no series matching two),
    where `deployment` alone matched nothing and a StatefulSet's charts stayed empty;
    workloads asked together are told apart by whichever names them."""
    from meshtop.sources.prometheus.answers import parse_histories
    from meshtop.sources.prometheus.queries import batch_queries, split_by

    web, queue, db = (f"Kubernetes/shop/{n}" for n in ("web", "queue", "db"))
    one = batch_queries(LINKERD, [queue], [db], 300, 60)["codes"]
    for src in ("deployment", "statefulset", "daemonset"):
        for dst in ("dst_deployment", "dst_statefulset", "dst_daemonset"):
            assert f'{{direction="outbound",namespace="shop",{src}="queue",' \
                   f'dst_namespace="shop",{dst}="db"}}' in one  # fmt: skip
    assert one.count("rate(") == 9
    assert split_by(LINKERD, (), (queue, db)) == (
        (1, ("dst_deployment", "dst_statefulset", "dst_daemonset")),
    )
    together = batch_queries(LINKERD, (), (web, queue, db), 300, 60)["codes"]
    assert together.count("rate(") == 3 and 'dst_statefulset=~"db|queue|web"' in together
    assert together.startswith("sum by (dst_deployment, dst_statefulset, dst_daemonset, status")
    end = 1_800_000_000.0

    def row(value: float, **labels: str) -> dict[str, Any]:
        return {"metric": {"status_code": "200", **labels}, "values": [[end, repr(value)]]}

    codes = [row(1.0, dst_deployment="web"), row(2.0, dst_statefulset="queue"),
             row(4.0, dst_daemonset="db")]  # fmt: skip
    split = split_by(LINKERD, (), (web, queue, db))
    found = parse_histories(LINKERD, [(None, web), (None, queue), (None, db)], split, 300.0,
                            end, codes, [], [])  # fmt: skip
    assert [h.rps[-1] for h in found] == [1.0, 2.0, 4.0]
    # a series that names no workload of the end it is split by: said, never unread
    with pytest.raises(KeyError):
        parse_histories(LINKERD, [(None, web)], split, 300.0, end, [row(1.0)], [], [])
    # Istio names every workload by one label: one selector a reporter (three: the
    # client's, the server's, and the client's again inside `unless`)
    assert batch_queries(ISTIO, [queue], [db], 300, 60)["codes"].count("rate(") == 3


def test_namespace_filter_includes_services_nobody_answered_for() -> None:
    """The third side is the host's namespace: a proxy writes the service's namespace as
    `unknown` where no workload answered, but the host still names it."""
    q = snapshot_queries(ISTIO, 60, ("shop",))["requests"]
    for label in ("source_workload_namespace", "destination_workload_namespace"):
        assert f'{label}=~"shop"' in q
    assert 'destination_service=~"[^.]+\\\\.(shop)\\\\.svc' in q


def test_a_separator_in_a_label_value_cannot_pass_for_another_edge() -> None:
    """A pod publishes `destination_workload_namespace="shop|payments"`: joined, its fields
    would shift, and its calls could be counted as another workload's. They are counted
    between unknown peers, and said."""
    honest = req(5.0, "source")
    forged = req(7.0, "source", destination_workload_namespace="bookinfo|reviews-v1")
    traffic = join(ISTIO, {"requests": [honest, forged]})
    real = [e for e in traffic.edges if "reviews-v3" in e.destination]
    assert [e.stats.rps for e in real] == [pytest.approx(5.0)]  # not 12: nothing added to it
    assert not [e for e in traffic.edges if "reviews-v1" in e.destination]
    assert traffic.warnings == (
        "1 series with '|' in a label value, counted between unknown peers",
    )


def test_series_that_are_not_what_the_queries_ask_for_are_the_backends_answer() -> None:
    """JSON, and a vector even, but without the labels the queries put there: a backend
    error naming it (exit 3, or the source failed in place), not a KeyError of ours."""
    import asyncio

    from meshtop.config import PrometheusConfig
    from meshtop.errors import BackendError
    from meshtop.sources.prometheus import PrometheusMetrics

    source = PrometheusMetrics(PrometheusConfig(url="http://prometheus:9090", dialect="istio"))

    def garbage(promql: str, at: float | None) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        return [{"value": [1.0, "1"]}], ()  # a sample without its `metric`

    source._query = garbage  # type: ignore[method-assign]
    source._client.get_label_values = lambda *_, **__: []  # type: ignore[method-assign]
    with pytest.raises(BackendError, match="answered series that are not what the queries"):
        asyncio.run(source.traffic(60.0))


class _Backend:
    """Answers a refresh's queries from a table of series, as a PromQL engine would: the
    latency query's buckets only for the reporters, source workloads and bounds each of
    its selectors names."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.latency: list[dict[str, Any]] = []
        self.asked: list[str] = []

    def serve(self, source: Any) -> None:
        """`source` asks this backend: its queries, and its look at the buckets' bounds."""
        source._query = self
        source._client.get_label_values = self.label_values

    def label_values(self, label: str, params: Any = None) -> list[str]:
        return sorted({row["metric"][label] for row in self.latency})

    def __call__(
        self, promql: str, at: float | None = None
    ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        self.asked.append(promql)
        if promql.startswith("sum by (meshtop_edge, reporter, response_code"):
            return self.requests, ()
        if not promql.startswith("sum by (meshtop_edge, reporter, le)"):
            return [], ()  # TCP: none here

        def values(pattern: str) -> set[str]:  # the PromQL string's escapes, the regex's
            return set(re.sub(r"\\(.)", r"\1", pattern.replace("\\\\", "\\")).split("|"))

        found = []
        for selector in re.findall(r"_bucket\{([^}]*)\}", promql):
            matchers = dict(re.findall(r'(\w+(?:=~|!~|=))"((?:[^"\\]|\\.)*)"', selector))
            for row in self.latency:
                labels = row["metric"]
                workload = labels[EDGE].split(SEPARATOR)[2]
                if labels["reporter"] != matchers["reporter="] or (
                    "source_workload=~" in matchers
                    and workload not in values(matchers["source_workload=~"])
                ):
                    continue
                if "le!~" in matchers and labels["le"] in values(matchers["le!~"]):
                    continue
                if "le=~" in matchers and labels["le"] not in values(matchers["le=~"]):
                    continue
                found.append(row)
        return found, ()


def test_the_server_is_asked_only_about_the_calls_it_alone_reports() -> None:
    """A call between sidecars has its buckets read once, from the client's proxy: the
    server's proxy is asked only about the callers it alone reported the last time (the
    first time, about the callers no proxy named); a caller it alone reports that it was
    not asked about (here, one whose proxy is in another cluster) costs one more query,
    that refresh only."""
    import asyncio

    from meshtop.config import PrometheusConfig
    from meshtop.sources.prometheus import PrometheusMetrics

    backend = _Backend()
    unmeshed, remote = {**UNKNOWN_SRC}, {**SRC, "source_workload": "frontend-v1"}
    slow = {"25": 0.0, "50": 0.0, "100": 0.0, "250": 500.0, "+Inf": 1000.0}
    backend.requests = [
        req(4.0, "source"),
        req(4.0, "destination", policy="mutual_tls"),
        req(2.0, "destination", policy="none", **unmeshed),
    ]
    backend.latency = [
        *buckets(SHAPED, "source"),
        *buckets(slow, "destination"),
        *buckets(slow, "destination", **unmeshed),
        *buckets(SHAPED, "destination", **remote),
    ]
    source = PrometheusMetrics(PrometheusConfig(url="http://prometheus:9090", dialect="istio"))
    backend.serve(source)

    def refresh() -> tuple[list[str], dict[str, float | None]]:
        before = len(backend.asked)
        edges = asyncio.run(source.traffic(60.0)).edges
        latency = [
            q for q in backend.asked[before:] if q.startswith("sum by (meshtop_edge, reporter, le)")
        ]
        return latency, {e.source: e.stats.p50_ms for e in edges}

    first, p50 = refresh()
    assert len(first) == 1 and 'reporter="destination",source_workload=~"unknown"' in first[0]
    assert p50 == {"Kubernetes/bookinfo/productpage-v1": 31.0, "unknown/unknown/unknown": 250.0}
    steady, again = refresh()
    assert len(steady) == 1 and 'reporter="destination",source_workload=~"unknown"' in steady[0]
    assert again == p50
    backend.requests.append(req(3.0, "destination", policy="mutual_tls", **remote))
    sent = len(backend.asked)
    latency, p50 = refresh()
    assert len(backend.asked) == sent + 4  # the new caller asked about once more
    assert 'source_workload=~"frontend\\\\-v1"' in latency[1]
    assert p50["Kubernetes/bookinfo/frontend-v1"] == 31.0
    assert p50["unknown/unknown/unknown"] == 250.0
    latency, _ = refresh()
    assert len(backend.asked) == sent + 7 and len(latency) == 1  # and asked with the rest
    assert 'source_workload=~"frontend\\\\-v1|unknown"' in latency[0]


def test_buckets_no_quantile_came_near_are_left_out_until_one_does() -> None:
    """The first refresh asks for the buckets up to a second, and +Inf; once a refresh has
    seen where the quantiles fall, the next asks only for the buckets up to one past the
    highest any fell in, and +Inf; a quantile that then falls
    beyond them is worked out from all of its buckets, asked for once more: the figures
    are those of the whole histogram every time."""
    import asyncio
    import math

    from meshtop.config import PrometheusConfig
    from meshtop.sim.exposition import DURATION_BUCKETS_MS
    from meshtop.sources.prometheus import PrometheusMetrics
    from meshtop.sources.prometheus.quantiles import quantiles, upper_bound

    def shaped(median: float) -> dict[str, float]:  # 1,000 calls, log-normal about `median`
        return {
            "+Inf" if le == math.inf else f"{le:g}": 1000
            * 0.5
            * math.erfc(-math.log(le / median) / (0.5 * math.sqrt(2)))
            for le in (*DURATION_BUCKETS_MS, math.inf)
        }

    backend = _Backend()
    backend.requests = [req(4.0, "source")]
    source = PrometheusMetrics(PrometheusConfig(url="http://prometheus:9090", dialect="istio"))
    backend.serve(source)

    def lowest_left_out(promql: str) -> float:
        found = re.search(r'le!~"([^"]*)"', promql)
        assert found, promql
        return min(float(le.replace("\\", "")) for le in found.group(1).split("|"))

    # the first refresh leaves out the buckets above a second; the next, those above one
    # past where the quantiles fell; then the quantiles fall above those, asked again
    for median, queries, lowest in ((20, 3, 2500), (20, 3, 500), (3000, 4, 500)):
        counts = shaped(median)
        backend.latency = buckets(counts)
        before = len(backend.asked)
        (edge,) = asyncio.run(source.traffic(60.0)).edges
        sent = backend.asked[before:]
        assert len(sent) == queries
        latency = [q for q in sent if q.startswith("sum by (meshtop_edge, reporter, le)")]
        assert lowest_left_out(latency[0]) == lowest
        whole = quantiles((0.5, 0.95, 0.99), ((upper_bound(le), v) for le, v in counts.items()))
        # With buckets left out, the same to rounding: the buckets below +Inf that differ
        # from it by float noise (1e-12) are not read, and Prometheus would count the
        # observations from them (see `latency.leave_out`).
        got = [edge.stats.p50_ms, edge.stats.p95_ms, edge.stats.p99_ms]
        assert got == pytest.approx(whole, rel=1e-12)
    assert "le=~" in sent[-1]


def test_a_large_answer_is_decoded_as_json_loads_decodes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large answer is decoded a piece at a time (other threads run in between, a key's
    work on the screen's thread first): the same document, written compactly as
    Prometheus writes it or with spaces, and the same refusal of what is not JSON."""
    import json

    from meshtop import turns
    from meshtop.sources.prometheus.wire import PIECE_CHARS, STEPPED_BYTES, decode

    ways: list[int] = []
    monkeypatch.setattr(turns, "give_way", lambda: ways.append(1))

    rows = [bucket(f"{le}", le * 0.5, f"r{le % 3}") for le in range(1, 5000)]
    rows[7]["metric"]["destination_workload"] = '},{"metric": a "hostile" value'
    body = {"status": "success", "data": {"resultType": "vector", "result": rows}}
    for text in (json.dumps(body, separators=(",", ":")), json.dumps(body, indent=1)):
        assert len(text) > STEPPED_BYTES
        assert decode(text.encode()) == json.loads(text)
    compact = len(json.dumps(body, separators=(",", ":")))
    assert 0 < len(ways) <= compact // PIECE_CHARS  # before each piece but the last
    truncated = json.dumps(body, separators=(",", ":"))[: STEPPED_BYTES + 10]
    with pytest.raises(ValueError):
        decode(truncated.encode())
    empty = (
        json.dumps({**body, "data": {"resultType": "vector", "result": []}}) + " " * STEPPED_BYTES
    )
    assert decode(empty.encode())["data"]["result"] == []
    # cut a piece at a time from the bytes: characters of two, three and four bytes, and
    # bytes that are not UTF-8 read as the client reads them (U+FFFD)
    for row in rows[::7]:
        row["metric"]["destination_workload"] = "café-☃-𝄞"
    wide = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    assert decode(wide) == json.loads(wide.decode("utf-8"))
    for at in (len(wide) // 2, len(wide) - 40):  # in a piece; in the last one
        bad = wide[:at] + b"\xff" + wide[at + 1 :]
        assert decode(bad) == json.loads(bad.decode("utf-8", "replace"))
    # the list cut into pieces is the answer's result only where it is `data.result`:
    # not nested in another object, nor replaced by a later "result" (the last key wins)
    series = json.dumps(rows, separators=(",", ":"))
    for other in (
        f'{{"status":"success","data":{{"x":{{"result":{series}}},"result":[]}}}}',
        f'{{"status":"success","data":{{"resultType":"vector","result":{series},"result":[]}}}}',
    ):
        assert decode(other.encode()) == json.loads(other)


def test_a_large_answer_is_looked_at_decoded_a_piece_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A label value `warnings` does not send a large answer to be decoded whole (a
    hostile backend's 122 MiB held every thread for some 0.6 s), and the backend's own
    warnings on a large answer are still said."""
    import json

    import requests

    from meshtop import turns
    from meshtop.config import PrometheusConfig
    from meshtop.errors import BackendError
    from meshtop.sources.prometheus import PrometheusMetrics
    from meshtop.sources.prometheus.wire import STEPPED_BYTES

    ways: list[int] = []
    monkeypatch.setattr(turns, "give_way", lambda: ways.append(1))
    source = PrometheusMetrics(PrometheusConfig(url="http://prometheus:9090", dialect="istio"))
    rows = [bucket(f"{le}", le * 0.5, "warnings") for le in range(1, 5000)]
    data = {"resultType": "vector", "result": rows}
    for warned in ((), ("this query read too many samples",)):
        body: dict[str, Any] = {"status": "success", "data": data}
        if warned:
            body["warnings"] = list(warned)
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(body, separators=(",", ":")).encode()
        assert len(response._content) > STEPPED_BYTES and b'"warnings"' in response._content
        ways.clear()
        source._inspect(response)
        assert ways, "decoded whole"
        assert response.json() == body
        assert source._check.warnings == warned
    # a byte that is not UTF-8: read as the client reads it, the warnings still said
    response = requests.Response()
    response.status_code = 200
    response._content = (
        json.dumps(body, separators=(",", ":"))
        .encode()
        .replace(b'"reporter":"warnings"', b'"reporter":"warn\xffings"', 1)
    )
    source._inspect(response)
    assert source._check.warnings == warned
    assert response.json()["data"]["result"][0]["metric"]["reporter"] == "warn\ufffdings"
    # not JSON at all: said so, in one line
    response = requests.Response()
    response.status_code = 200
    response._content = b'{"status":"success","data":{"result":[' + b"x" * STEPPED_BYTES
    with pytest.raises(BackendError, match="something that is not JSON"):
        source._inspect(response)


def test_histories_are_asked_together_by_namespace_up_to_a_batch_a_side() -> None:
    """The workloads of one namespace on a side share a set of history queries, up to
    BATCH_NAMES of them; a service with no workload, an unknown peer, another namespace
    or cluster, and a pair asked twice are each asked apart, or once."""
    from meshtop.sources.prometheus.queries import BATCH_NAMES, batch_queries
    from meshtop.sources.prometheus.source import _batches

    many = [f"Kubernetes/shop/w{i:03}" for i in range(BATCH_NAMES + 1)]
    pairs = [
        *((None, m) for m in many),
        (None, "Kubernetes/shop/service:cart"),  # nothing behind it: its own set
        (None, "unknown/unknown/unknown"),
        (None, "Kubernetes/bank/ledger"),
        (None, "east/shop/w000"),  # the same names in another cluster
        ("Kubernetes/shop/w000", "Kubernetes/bank/ledger"),
        ("Kubernetes/shop/w001", "Kubernetes/bank/ledger"),
        ("Kubernetes/shop/w000", None),
        (None, many[0]),  # asked twice: once
    ]
    batches = _batches(pairs)
    assert [(len(b.sources), len(b.destinations), len(b.pairs)) for b in batches] == [
        (0, BATCH_NAMES, BATCH_NAMES), (0, 1, 1), (0, 1, 1), (0, 1, 1), (0, 1, 1), (0, 1, 1),
        (2, 1, 2), (1, 0, 1),
    ]  # fmt: skip
    asked = [p for b in batches for p in b.pairs]
    assert len(asked) == len(set(asked)) and set(asked) == set(pairs)  # each once
    assert batches[5].destinations == ("east/shop/w000",)
    # one pattern for the namespace's names, told apart by their workload label
    codes = batch_queries(ISTIO, (), many[:3], 300, history_step(300))["codes"]
    assert 'destination_workload=~"w000|w001|w002"' in codes
    assert codes.startswith("sum by (destination_workload, response_code")


def test_answers_asked_together_are_split_by_each_sides_workload() -> None:
    """The rows of a set of history queries go to the pair their workload labels name,
    the rows of a pair nobody asked about to none; a pair with no rows is all gaps."""
    from meshtop.sources.prometheus.answers import parse_histories
    from meshtop.sources.prometheus.queries import split_by

    end, window = 1_800_000_000.0, 300.0
    last = end  # the window's last point

    def row(src: str, dst: str, value: float, **labels: str) -> dict[str, Any]:
        metric = {"source_workload": src, "destination_workload": dst, **labels}
        return {"metric": metric, "values": [[last, repr(value)]]}

    def summary(src: str, dst: str, rps: float) -> dict[str, Any]:
        labels = {**SRC, **DST, "source_workload": src, "destination_workload": dst}
        edge = SEPARATOR.join(labels.get(x, "") for x in ISTIO.edge_labels())
        metric = {EDGE: edge, "source_workload": src, "destination_workload": dst,
                  "reporter": "source", "response_code": "200"}  # fmt: skip
        return {"metric": metric, "value": [end, repr(rps)]}

    codes = [
        row("a", "x", 3.0, response_code="200"), row("a", "x", 1.0, response_code="503"),
        row("b", "x", 5.0, response_code="200"), row("b", "y", 7.0, response_code="200"),
        row("c", "x", 99.0, response_code="200"),  # nobody asked about c
    ]  # fmt: skip
    quantiles = [row("a", "x", 12.5, quantile="0.5"), row("b", "x", 40.0, quantile="0.5")]
    window_rows = [summary("a", "x", 4.0), summary("b", "y", 7.0)]
    pairs = [("K/ns/a", "K/ns/x"), ("K/ns/b", "K/ns/x"), ("K/ns/b", "K/ns/y"), ("K/ns/a", "K/ns/y")]
    split = split_by(ISTIO, ("K/ns/a", "K/ns/b"), ("K/ns/x", "K/ns/y"))
    ax, bx, by, ay = parse_histories(ISTIO, pairs, split, window, end, codes, quantiles,
                                     window_rows)  # fmt: skip
    assert (ax.source, ax.destination) == pairs[0]
    assert ax.rps[-1] == 4.0 and ax.error_rate[-1] == 0.25 and ax.p50_ms[-1] == 12.5
    assert bx.rps[-1] == 5.0 and bx.error_rate[-1] == 0.0 and bx.p50_ms[-1] == 40.0
    assert by.rps[-1] == 7.0 and by.p50_ms[-1] is None
    assert ay.rps[-1] is None and ay.summary.rps == 0.0  # no rows: gaps
    assert ax.summary.rps == 4.0 and by.summary.rps == 7.0 and bx.summary.rps == 0.0
    # one side split: the rows told apart by the destination's workload alone
    (x,) = parse_histories(ISTIO, [(None, "K/ns/x")], ((1, ("destination_workload",)),), window,
                           end,
                           [row("", "x", 2.0, response_code="200")], [], [])  # fmt: skip
    assert x.rps[-1] == 2.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([1796337219.004, "1"], 1796337219.004),
        ([1796337219, "1"], 1796337219.0),
        ([10**400, "1"], None),
        ([float("nan"), "1"], None),
        ([True, "1"], None),
        (["1796337219", "1"], None),
        ("1796337219", None),
        ([], None),
    ],
)
def test_the_moment_an_answer_is_of_is_a_finite_number_or_none(
    value: object, expected: float | None
) -> None:
    """The follow-up latency queries are asked at the first answer's samples' time: an
    answer whose time is not a finite number leaves them at the backend's now."""
    from meshtop.sources.prometheus.source import _at

    assert _at([{"metric": {}, "value": value}]) == expected
    assert _at([]) is None
