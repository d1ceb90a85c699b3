"""meshtop's numbers are the numbers: against real Prometheus servers scraping the
simulator (as Istio sidecars, as Istio ambient, as Linkerd), meshtop's edges match
Prometheus's own answers to hand-written PromQL and the rates the simulator was set to."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any

import pytest

from meshtop.config import PrometheusConfig
from meshtop.model import Edge, Protocol
from meshtop.sim.exposition import DURATION_BUCKETS_MS, MeshExposition
from meshtop.sim.server import MetricsServer
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, generated
from meshtop.sim.traffic import SimEdge
from meshtop.sources.prometheus import PrometheusMetrics
from meshtop.sources.prometheus.source import _batches

from .prometheus import SETTLED_S, Prometheus, bounds_in, running_prometheus, same_figures

pytestmark = pytest.mark.integration

WINDOW_S = 10
PAGE = "Kubernetes/bookinfo/productpage-v1"


@dataclass
class Backend:
    prom: Prometheus
    sims: list[Simulation]

    def source(self, dialect: str = "auto", **kw: object) -> PrometheusMetrics:
        # Evaluate at one fixed moment, so meshtop and the hand-written queries see
        # exactly the same samples (a few scrapes back: `SETTLED_S`).
        at = time.time() - SETTLED_S
        return PrometheusMetrics(PrometheusConfig(self.prom.url, dialect=dialect, **kw), at=at)  # type: ignore[arg-type]

    def edges(self, source: PrometheusMetrics) -> dict[tuple[str, str], Edge]:
        traffic = asyncio.run(source.traffic(WINDOW_S))
        return {e.key: e for e in traffic.edges}

    def flows(self) -> dict[tuple[str, str], SimEdge]:
        return {(f.source.id, f.destination.id): f for sim in self.sims for f in sim.flows()}

    def failing(self, at: float) -> dict[tuple[str, str], float]:
        """Each edge's failing requests per second, averaged over the window before `at`,
        as a rate over that window sees them (the simulator's errors drift by the second)."""
        out: dict[tuple[str, str], float] = {}
        moments = [at - WINDOW_S + i + 0.5 for i in range(WINDOW_S)]
        for t in moments:
            for sim in self.sims:
                for f in sim.flows(at=t):
                    failed = sum(o.rps for o in f.outcomes if o.is_error) / len(moments)
                    key = (f.source.id, f.destination.id)
                    out[key] = out.get(key, 0.0) + failed
        return out


class _WithoutClientBuckets(MeshExposition):
    """The mesh's telemetry with the client proxies' latency buckets dropped, as a
    Prometheus relabelling rule that saves their cardinality drops them."""

    def render(self) -> str:
        return "\n".join(
            line
            for line in super().render().split("\n")
            if not (line.startswith(f"{BUCKETS}{{") and 'reporter="source"' in line)
        )


BUCKETS = "istio_request_duration_milliseconds_bucket"


def _serve(stack: ExitStack, sim: Simulation, mode: str) -> str:
    if mode == "clientless":
        exposition: MeshExposition = _WithoutClientBuckets(sim, "istio")
    else:
        exposition = MeshExposition(sim, mode)
    server = MetricsServer(exposition, "127.0.0.1", 0)
    server.start_in_thread()
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    host, port = server.server_address[:2]
    return f"{host!s}:{port}"


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Backend]]:
    """Prometheus servers, started together so one wait fills all their windows."""
    ratings_gone = Simulation(bookinfo())
    # ratings scaled to zero: reviews' calls to it end in 503 "no healthy upstream"
    ratings_gone.mesh.services[("bookinfo", "ratings")] = []
    # Linkerd names a StatefulSet's or DaemonSet's pods by a label of that kind
    kinds = Simulation(bookinfo())
    # half of ratings' requests delayed 2 s by a fault: its callers' quantiles above a second
    delayed = Simulation(bookinfo())
    delay = {"fixedDelay": "2s", "percentage": {"value": 50.0}}
    delayed.apply_patch(
        "bookinfo",
        "ratings",
        [{"op": "add", "path": "/spec/http/0/fault", "value": {"delay": delay}}],
    )
    for name, kind in (("reviews-v2", "statefulset"), ("details-v1", "daemonset")):
        workload = kinds.mesh.workloads[f"Kubernetes/bookinfo/{name}"]
        kinds.mesh.workloads[workload.id] = replace(workload, kind=kind)
    sims = {
        "istio": [Simulation(bookinfo()), Simulation(generated(40, seed=3))],
        "ambient": [Simulation(bookinfo())],
        "linkerd": [Simulation(bookinfo())],
        "linkerd-kinds": [kinds],
        "unserved": [ratings_gone],
        "clientless": [Simulation(bookinfo())],
        "istio-delayed": [delayed],
    }
    with ExitStack() as stack:
        found = {}
        for name, group in sims.items():
            mode = "istio" if name == "unserved" else name.split("-")[0]
            targets = [_serve(stack, sim, mode) for sim in group]
            prom = stack.enter_context(running_prometheus(targets, tmp_path_factory.mktemp(name)))
            found[name] = Backend(prom, group)
        for backend in found.values():
            backend.prom.wait_for(
                "two scrapes",
                lambda b=backend: b.prom.scalar("count(count_over_time(up[1m]) >= 2)") is not None,
            )
        time.sleep(WINDOW_S + 2)  # rate() over a window the series does not fill reads low
        yield found


def _recording(source: PrometheusMetrics) -> list[str]:
    """The queries `source` sends from now on, as it sends them."""
    sent: list[str] = []
    query = source._query

    def recorded(promql: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(promql)
        return query(promql, *args, **kwargs)

    source._query = recorded  # type: ignore[method-assign]
    return sent


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= 1e-9 * max(1.0, abs(b))


def test_dialect_is_detected(backends: dict[str, Backend]) -> None:
    for name, expected in (("istio", "istio"), ("ambient", "ambient"), ("linkerd", "linkerd")):
        source = backends[name].source()
        asyncio.run(source.traffic(WINDOW_S))
        assert source.dialect is not None and source.dialect.name == expected


def test_edges_equal_hand_written_promql(backends: dict[str, Backend]) -> None:
    b = backends["istio"]
    source = b.source("istio")
    sent = _recording(source)
    edges = b.edges(source)
    at = source.at
    v3 = edges[(PAGE, "Kubernetes/bookinfo/reviews-v3")]
    sel = 'source_workload="productpage-v1",destination_workload="reviews-v3"'

    def ask(promql: str) -> float | None:
        result = b.prom.client.get("/api/v1/query", params={"query": promql, "time": at}).json()
        rows = result["data"]["result"]
        return float(rows[0]["value"][1]) if rows else None

    w = f"[{WINDOW_S}s]"
    assert _same(
        v3.stats.rps, ask(f'sum(rate(istio_requests_total{{reporter="source",{sel}}}{w}))')
    )
    assert _same(
        v3.stats.error_rate,
        ask(
            f'sum(rate(istio_requests_total{{reporter="source",{sel},response_code=~"5.."}}{w}))'
            f' / sum(rate(istio_requests_total{{reporter="source",{sel}}}{w}))'
        ),
    )
    for q, got in ((0.5, v3.stats.p50_ms), (0.95, v3.stats.p95_ms), (0.99, v3.stats.p99_ms)):
        expected = ask(
            f"histogram_quantile({q}, sum by (le) (rate("
            f'istio_request_duration_milliseconds_bucket{{reporter="source",{sel}}}{w})))'
        )
        assert _same(got, expected), (q, got, expected)
    mtls = ask(
        f'sum(rate(istio_requests_total{{reporter="destination",{sel},connection_security_policy="mutual_tls"}}{w}))'
        f' / sum(rate(istio_requests_total{{reporter="destination",{sel}}}{w}))'
    )
    assert _same(v3.stats.mtls, mtls)
    # dialect given: no detection query, the three queries (and where a call's quantiles
    # fell above a second, the storefront's fx from ingress near it, its buckets above)
    assert len([q for q in sent if 'le=~"' not in q]) == 3, sent


def test_edges_match_the_simulation(backends: dict[str, Backend]) -> None:
    """Every edge of Bookinfo and of a 40-service generated mesh: rates and error rates
    as configured, each edge once however many proxies report it."""
    b = backends["istio"]
    source = b.source()
    edges = b.edges(source)
    flows = b.flows()
    assert set(edges) == set(flows)
    assert source.at is not None
    failing_over_window = b.failing(source.at)
    for key, flow in flows.items():
        stats = edges[key].stats
        if flow.protocol is Protocol.TCP:
            assert stats.protocol is Protocol.TCP
            assert stats.tcp_connections_per_s == pytest.approx(flow.rate, rel=0.25), key
            assert stats.tcp_request_bps == pytest.approx(flow.request_bps, rel=0.25), key
            assert stats.tcp_response_bps == pytest.approx(flow.response_bps, rel=0.25), key
            continue
        assert stats.protocol is flow.protocol, key
        # Proxies count whole requests: over the window that is +-2 requests of slack.
        slack = 2 / WINDOW_S
        assert stats.rps == pytest.approx(flow.rate, rel=0.2, abs=slack), key
        failing = failing_over_window[key]
        assert stats.rps * stats.error_rate == pytest.approx(failing, rel=0.2, abs=slack), key
        assert stats.mtls == (1.0 if flow.mtls else 0.0), key


def test_reporter_cases_are_all_edges(backends: dict[str, Backend]) -> None:
    edges = backends["istio"].edges(backends["istio"].source())
    # destination only: an unmeshed client, in plain text
    plain = edges[("unknown/unknown/unknown", PAGE)]
    assert plain.stats.mtls == 0.0 and plain.stats.rps > 0
    # source only: a host outside the mesh, over TCP
    tcp = edges[("Kubernetes/bookinfo/details-v1", "external/external/www.googleapis.com")]
    assert tcp.stats.protocol is Protocol.TCP
    assert tcp.stats.tcp_response_bps > tcp.stats.tcp_request_bps > 0
    # gRPC errors in the generated mesh
    grpc = [e for e in edges.values() if e.stats.protocol is Protocol.GRPC]
    assert grpc and any(e.stats.grpc_statuses.get("14") for e in grpc)
    assert all(e.stats.error_rate > 0 for e in grpc if e.stats.grpc_statuses.get("14"))


def test_calls_to_a_service_with_nothing_behind_it(backends: dict[str, Backend]) -> None:
    """Source only: the client's proxy answers 503 UH itself; no server proxy ever sees it."""
    edges = backends["unserved"].edges(backends["unserved"].source())
    lost = edges[("Kubernetes/bookinfo/reviews-v2", "Kubernetes/bookinfo/service:ratings")]
    assert lost.stats.error_rate == 1.0
    assert lost.stats.response_flags.keys() == {"UH"}


def test_linkerd_edges_match_the_simulation(backends: dict[str, Backend]) -> None:
    b = backends["linkerd"]
    edges = b.edges(b.source("linkerd"))
    flows = {k: f for k, f in b.flows().items() if f.source.sidecar}  # outbound only
    assert set(edges) == set(flows)
    v3 = edges[(PAGE, "Kubernetes/bookinfo/reviews-v3")].stats
    flow = flows[(PAGE, "Kubernetes/bookinfo/reviews-v3")]
    assert v3.rps == pytest.approx(flow.rate, rel=0.25)
    assert v3.error_rate > 0.02 and v3.mtls == 1.0
    assert v3.p50_ms is not None and 20 <= v3.p50_ms <= 50  # Linkerd's buckets: 30, 40, 50


def test_ambient_counts_each_request_once_at_the_waypoint(backends: dict[str, Backend]) -> None:
    b = backends["ambient"]
    edges = b.edges(b.source("ambient"))
    flow = b.flows()[(PAGE, "Kubernetes/bookinfo/reviews-v1")]
    assert edges[(PAGE, "Kubernetes/bookinfo/reviews-v1")].stats.rps == pytest.approx(
        flow.rate, rel=0.25
    )
    assert ("Kubernetes/bookinfo/details-v1", "external/external/www.googleapis.com") in edges


def test_namespace_filter_keeps_calls_from_or_to_it(backends: dict[str, Backend]) -> None:
    b = backends["istio"]
    edges = b.edges(b.source(namespaces=("bookinfo",)))
    assert edges and all("/bookinfo/" in s or "/bookinfo/" in d for s, d in edges)
    assert ("Kubernetes/istio-system/istio-ingressgateway", PAGE) in edges


def test_range_queries_for_an_edge_and_a_node(backends: dict[str, Backend]) -> None:
    b = backends["istio"]
    # several points 5 s apart need some 15 s of samples before the moment asked, 3 s
    # back: the fixture's wait gives 11-14 s, and this test may be the first to run
    b.prom.wait_for(
        "20 scrapes", lambda: (b.prom.scalar("min(count_over_time(up[1m]))") or 0) >= 20
    )
    source = b.source("istio")

    history = asyncio.run(source.history(PAGE, "Kubernetes/bookinfo/reviews-v3", 300))
    assert history.step_s == 5 and len(history.times) == 61
    assert source.at is not None and 0 <= source.at - history.times[-1] < 1

    def ask(promql: str) -> float:  # at the last point's time
        rows = b.prom.client.get(
            "/api/v1/query", params={"query": promql, "time": history.times[-1]}
        ).json()["data"]["result"]
        return float(rows[0]["value"][1])

    # The last point is the window's end: it must be what a hand-written query says there.
    sel = 'reporter="source",source_workload="productpage-v1",destination_workload="reviews-v3"'
    assert history.rps[-1] == pytest.approx(ask(f"sum(rate(istio_requests_total{{{sel}}}[1m]))"))
    assert history.error_rate[-1] == pytest.approx(
        ask(f'sum(rate(istio_requests_total{{{sel},response_code=~"5.."}}[1m]))')
        / ask(f"sum(rate(istio_requests_total{{{sel}}}[1m]))")
    )
    assert history.p95_ms[-1] == pytest.approx(
        ask(
            "histogram_quantile(0.95, sum by (le) "
            f"(rate(istio_request_duration_milliseconds_bucket{{{sel}}}[1m])))"
        )
    )
    assert sum(v is not None for v in history.rps) >= 3  # several points, not just the last
    assert history.rps[0] is None and history.p99_ms[0] is None  # before the first scrape: gaps
    assert history.errors["5xx"][-1] == pytest.approx(
        ask(f'sum(rate(istio_requests_total{{{sel},response_code=~"5.."}}[1m]))')
    )

    # The window summed up: each reporter's count, the flags, mTLS and who proved what.
    s = history.summary
    both = 'source_workload="productpage-v1",destination_workload="reviews-v3"'
    for reporter in ("source", "destination"):
        assert s.by_reporter[reporter] == pytest.approx(
            ask(f'sum(rate(istio_requests_total{{reporter="{reporter}",{both}}}[5m]))')
        )
    # a failed connection (UF) never reached the server: its proxy counts fewer (the
    # simulator's UF share is small: in a few seconds there may be none)
    assert s.by_reporter["source"] - s.by_reporter["destination"] == pytest.approx(
        s.response_flags.get("UF", 0.0), abs=1e-9
    )
    assert s.rps == pytest.approx(s.by_reporter["source"])
    assert s.p99_ms == pytest.approx(
        ask(
            "histogram_quantile(0.99, sum by (le) "
            f"(rate(istio_request_duration_milliseconds_bucket{{{sel}}}[5m])))"
        )
    )
    assert s.mtls == 1.0
    assert s.source_principals == ("spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage",)
    assert s.destination_principals == ("spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews",)
    # A node: everything it answers, whoever reported each caller. productpage's own proxy
    # sees all its callers, so its count is the check.
    node = asyncio.run(source.history(None, PAGE, 300))
    expected = ask(
        'sum(rate(istio_requests_total{reporter="destination",'
        'destination_workload="productpage-v1"}[1m]))'
    )
    assert node.rps[-1] == pytest.approx(expected, rel=1e-6)


def test_simulated_history_matches_prometheus_history(backends: dict[str, Backend]) -> None:
    """`--demo` answers range questions as Prometheus does: same points, same kinds,
    same identities."""
    b = backends["istio"]
    source = b.source("istio")
    real = asyncio.run(source.history(PAGE, "Kubernetes/bookinfo/reviews-v3", 300))
    simulated = asyncio.run(b.sims[0].metrics.history(PAGE, "Kubernetes/bookinfo/reviews-v3", 300))
    assert (real.step_s, len(real.times)) == (simulated.step_s, len(simulated.times))
    assert set(real.errors) == set(simulated.errors) == {"5xx"}
    # (the rates differ: Prometheus has seconds of data, the simulator a full window)
    for h in (real, simulated):
        assert h.summary.mtls == 1.0
        assert h.summary.destination_principals == (
            "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews",
        )


def test_linkerd_history_names_the_server_identity(backends: dict[str, Backend]) -> None:
    b = backends["linkerd"]
    h = asyncio.run(b.source("linkerd").history(PAGE, "Kubernetes/bookinfo/reviews-v3", 300))
    assert h.rps[-1] is not None and h.errors["5xx"][-1] is not None
    assert h.summary.destination_principals == (
        "bookinfo-reviews.bookinfo.serviceaccount.identity.linkerd.cluster.local",
    )
    assert h.summary.mtls == 1.0


def test_concurrent_histories_leave_a_live_source_live(backends: dict[str, Backend]) -> None:
    """A detail screen asks for several histories at once (the edge and each version): a
    live source (no fixed moment) must stay live for the snapshots after it."""
    from meshtop.detail import fetch, subject
    from meshtop.mesh import refresh
    from meshtop.sources.protocols import ClusterSources

    b = backends["istio"]
    live = PrometheusMetrics(PrometheusConfig(b.prom.url, dialect="istio"))
    snapshot = asyncio.run(refresh(ClusterSources.one(live), window_s=WINDOW_S))
    v3 = "Kubernetes/bookinfo/reviews-v3"
    about = subject(snapshot, "edge", [PAGE], [v3])
    assert len(about.versions) == 3
    for _ in range(5):
        detail = asyncio.run(fetch(live, about, 300))
        assert live.at is None
    assert [v for v, _ in detail.canary] == ["v1", "v2", "v3"]
    assert all(h.rps[-1] is not None for _, h in detail.canary)


@pytest.mark.parametrize("backend", ["istio", "linkerd", "linkerd-kinds"])
def test_histories_asked_together_are_each_history_asked_alone(
    backends: dict[str, Backend], backend: str
) -> None:
    """A namespace's detail asks every member's history: asked together, the members of
    one namespace are read by three queries, and each history is the one asked alone,
    every point, kind, quantile and the window summed up; so are everything each member
    calls, and the calls between them. With Linkerd, a StatefulSet's and a DaemonSet's
    too, which their kind's label names (`linkerd-kinds`): with none of their calls
    asked about, their figures would be missing."""
    b = backends[backend]
    source = b.source(backend.split("-")[0])
    edges = b.edges(source)
    by_namespace: dict[str, set[str]] = {}
    for edge in edges:
        for n in edge:
            cluster, namespace, name = n.split("/", 2)
            if cluster == "Kubernetes" and not name.startswith(("service:", "unknown")):
                by_namespace.setdefault(namespace, set()).add(n)
    members = sorted(max(by_namespace.values(), key=len))
    assert len(members) >= 4
    pairs: list[tuple[str | None, str | None]] = [
        *((None, m) for m in members),
        *((m, None) for m in members),
        *((s, d) for s in members for d in members if s != d),
    ]
    before = source.queries_sent
    together = asyncio.run(source.histories(pairs, 300))
    sets = len(_batches(pairs))  # BATCH_NAMES workloads a side each
    assert source.queries_sent - before == 3 * sets and sets <= len(pairs) / 4
    busy = [(p, h) for p, h in zip(pairs, together, strict=True) if h.rps[-1] is not None]
    # every request-level call between members that the snapshot has (a history is of
    # requests: TCP has none), and every member at either end of one, has figures: a
    # batch's split lost none of them
    http = [k for k, e in edges.items() if e.stats.protocol is not Protocol.TCP]
    calls = {(s, d) for s, d in http if s in members and d in members}
    ends = {(None, d) for _, d in http if d in members}
    ends |= {(s, None) for s, _ in http if s in members}
    assert len(calls) >= 3 and {p for p, _ in busy} >= calls | ends
    idle = [(p, h) for p, h in zip(pairs, together, strict=True) if h.rps[-1] is None]
    for pair, history in [*busy, *idle[:5]]:  # each asked alone, three queries: not all
        alone = asyncio.run(source.history(*pair, 300))
        assert (history.source, history.destination) == pair
        assert same_figures(history, alone), pair


# (bucket metric, reporter label, reporters best first, source and destination labels)
LATENCY_OF = {
    "istio": (BUCKETS, "reporter", ("source", "destination"),
              ("source_workload_namespace", "source_workload"),
              ("destination_workload_namespace", "destination_workload")),
    "ambient": (BUCKETS, "reporter", ("waypoint", "source", "destination"),
                ("source_workload_namespace", "source_workload"),
                ("destination_workload_namespace", "destination_workload")),
    "linkerd": ("response_latency_ms_bucket", "direction", ("outbound",),
                ("namespace", "deployment"), ("dst_namespace", "dst_deployment")),
}  # fmt: skip


def _node_id(namespace: str, workload: str) -> str:
    return (
        "unknown/unknown/unknown" if workload == "unknown" else f"Kubernetes/{namespace}/{workload}"
    )


def _hand_written_quantiles(
    b: Backend, dialect: str, at: float
) -> dict[tuple[str, str], tuple[float | None, ...]]:
    """Each edge's p50, p95 and p99 as Prometheus's own `histogram_quantile` gives them,
    from the first reporter that has the edge's buckets."""
    metric, label, reporters, src, dst = LATENCY_OF[dialect]
    by = ", ".join((*src, *dst))
    found: dict[tuple[str, str], tuple[float | None, ...]] = {}
    for reporter in reporters:
        per_q: list[dict[tuple[str, str], float]] = []
        for q in (0.5, 0.95, 0.99):
            promql = (
                f"histogram_quantile({q}, sum by ({by}, le) "
                f'(rate({metric}{{{label}="{reporter}"}}[{WINDOW_S}s])))'
            )
            rows = b.prom.client.get("/api/v1/query", params={"query": promql, "time": at})
            answer = {}
            for r in rows.json()["data"]["result"]:
                labels = r["metric"]
                if labels[dst[1]] in ("unknown", ""):
                    continue  # no workload answered: a node of another shape
                ends = (_node_id(labels[src[0]], labels[src[1]]),
                        _node_id(labels[dst[0]], labels[dst[1]]))  # fmt: skip
                answer[ends] = float(r["value"][1])
            per_q.append(answer)
        for key in per_q[0]:
            if key not in found:  # else a reporter before this one has its buckets
                found[key] = tuple(v if math.isfinite(v := q[key]) else None for q in per_q)
    return found


@pytest.mark.parametrize("dialect", ["istio", "ambient", "linkerd"])
def test_every_edges_quantiles_are_prometheus_histogram_quantiles(
    backends: dict[str, Backend], dialect: str
) -> None:
    """meshtop works p50, p95 and p99 out from the buckets' rates, as Prometheus's
    `histogram_quantile` does, for every HTTP edge, from the client's proxy, the
    waypoint, or, for an unmeshed client, the server's: the same figures, the first
    refresh (every bucket read) and the next (the buckets no quantile came near left
    out). To 1e-9, not to the digit: where the buckets just below +Inf differ from it by
    float noise, the newer Prometheus meshtop follows counts the observations from them,
    2.42 (Debian's, here) does not."""
    b = backends[dialect]
    source = b.source(dialect)
    assert source.at is not None
    expected = _hand_written_quantiles(b, dialect, source.at)
    for _refresh in ("first", "next"):
        edges = b.edges(source)
        checked = 0
        for key, quantiles in expected.items():
            stats = edges[key].stats
            got = (stats.p50_ms, stats.p95_ms, stats.p99_ms)
            for mine, want in zip(got, quantiles, strict=True):
                assert (mine is None and want is None) or _same(mine, want), (key, got, want)
            checked += 1
        assert checked >= (40 if dialect == "istio" else 7)  # Bookinfo: 7 calls between workloads
    if dialect == "istio":  # an unmeshed client's latency, from productpage's own proxy
        assert ("unknown/unknown/unknown", PAGE) in expected


def test_where_client_buckets_are_dropped_the_servers_are_read(
    backends: dict[str, Backend],
) -> None:
    """Histograms of the client proxies dropped by relabelling: the latency is the
    server's, as `unless` chose it before. The first refresh asks the servers about the
    callers no proxy named, finds calls without a latency, and asks about them once
    more (after the buckets' bounds, asked once); from then on, the three queries ask
    for them."""
    b = backends["clientless"]
    source = b.source("istio")
    assert source.at is not None
    expected = _hand_written_quantiles(b, "istio", source.at)
    v3 = expected[(PAGE, "Kubernetes/bookinfo/reviews-v3")]
    assert v3[0] is not None  # from the server's proxy: the client's buckets are gone
    for queries in (5, 3, 3):
        sent = source.queries_sent
        edges = b.edges(source)
        assert source.queries_sent - sent == queries
        for key, quantiles in expected.items():
            stats = edges[key].stats
            got = (stats.p50_ms, stats.p95_ms, stats.p99_ms)
            assert all(_same(a, b) for a, b in zip(got, quantiles, strict=True)), key


def test_calls_slower_than_a_second_are_asked_again_for_the_buckets_above(
    backends: dict[str, Backend],
) -> None:
    """The first refresh reads every call's buckets up to a second, and +Inf: the calls
    whose quantiles fall above (reviews' calls to ratings, half of them delayed 2 s) are
    asked once more, by their callers, for the buckets left out, and their quantiles are
    `histogram_quantile`'s; the next refresh asks for what the first taught it, in the
    three queries."""
    b = backends["istio-delayed"]
    source = b.source("istio")
    assert source.at is not None
    expected = _hand_written_quantiles(b, "istio", source.at)
    slow = {k: q for k, q in expected.items() if k[1] == "Kubernetes/bookinfo/ratings-v1"}
    assert slow and all(q[2] is not None and q[2] > 1000 for q in slow.values()), slow
    sent = _recording(source)
    for refresh in ("first", "next"):
        del sent[:]
        edges = b.edges(source)
        for key, quantiles in expected.items():
            stats = edges[key].stats
            got = (stats.p50_ms, stats.p95_ms, stats.p99_ms)
            assert all(_same(a, b) for a, b in zip(got, quantiles, strict=True)), key
        latency = [q for q in sent if BUCKETS in q]
        if refresh == "first":
            above = {b for b in DURATION_BUCKETS_MS if b > 1000}
            assert len(latency) == 2 and bounds_in(latency[0]) == above, latency
            assert bounds_in(latency[1], "=~") == above
            assert r'source_workload=~"reviews\\-v2|reviews\\-v3"' in latency[1]
        else:
            assert len(sent) == 3 and len(latency) == 1


def test_live_the_buckets_asked_again_are_read_at_the_moment_of_the_first_answer(
    backends: dict[str, Backend],
) -> None:
    """Live (no moment given), the calls whose quantiles fell above a second are asked
    again at the moment Prometheus worked the first latency answer out at, its samples'
    time: all of a call's buckets are over one window, and the quantiles are
    `histogram_quantile`'s at that moment."""
    b = backends["istio-delayed"]
    source = PrometheusMetrics(PrometheusConfig(b.prom.url, dialect="istio"))
    assert source.at is None
    asked: list[tuple[str, float | None, list[dict[str, Any]]]] = []
    query = source._query

    def recorded(promql: str, at: float | None = None) -> Any:
        rows, said = query(promql, at)
        asked.append((promql, at, rows))
        return rows, said

    source._query = recorded  # type: ignore[method-assign]
    edges = b.edges(source)
    (first, first_at, rows), (again, again_at, _) = [a for a in asked if BUCKETS in a[0]]
    above = {le for le in DURATION_BUCKETS_MS if le > 1000}
    assert bounds_in(first) == bounds_in(again, "=~") == above
    assert first_at is None and rows
    assert again_at == rows[0]["value"][0]
    for key, quantiles in _hand_written_quantiles(b, "istio", again_at).items():
        stats = edges[key].stats
        got = (stats.p50_ms, stats.p95_ms, stats.p99_ms)
        assert all(_same(x, y) for x, y in zip(got, quantiles, strict=True)), key


def test_a_namespace_reads_the_same_figures_as_the_whole_mesh(
    backends: dict[str, Backend],
) -> None:
    """`-n` selects the calls from or to the namespace by selectors no series matches
    twice: each series read once, and every figure of those edges the same as in the
    whole mesh, digit for digit."""
    b = backends["istio"]
    at = time.time() - SETTLED_S
    config = PrometheusConfig(b.prom.url, dialect="istio")
    whole = b.edges(PrometheusMetrics(config, at=at))
    scoped_config = PrometheusConfig(b.prom.url, dialect="istio", namespaces=("bookinfo",))
    scoped = b.edges(PrometheusMetrics(scoped_config, at=at))
    assert len(scoped) >= 9 and len(whole) > len(scoped)  # Bookinfo; not the 40 others
    for key, edge in scoped.items():
        assert edge.stats == whole[key].stats, key


def _samples_read(b: Backend, promql: str, at: float) -> int:
    """The samples Prometheus read to answer (`stats=all`)."""
    params = {"query": promql, "time": at, "stats": "all"}
    body = b.prom.client.get("/api/v1/query", params=params).json()
    assert body["status"] == "success", body
    return int(body["data"]["stats"]["samples"]["totalQueryableSamples"])


@pytest.mark.parametrize("namespace", ["", "bookinfo"])
def test_a_refresh_reads_each_series_once(backends: dict[str, Backend], namespace: str) -> None:
    """What a refresh costs Prometheus: every series its queries need (requests, latency
    buckets, TCP counters, of the whole mesh or of the calls from or to a namespace) is
    read at most once, the first refresh as the later ones; a later one reads the client
    proxies' buckets and, of the servers', only those of the calls no client reported."""
    b = backends["istio"]
    at = time.time() - SETTLED_S
    scope = (namespace,) if namespace else ()
    source = PrometheusMetrics(
        PrometheusConfig(b.prom.url, dialect="istio", namespaces=scope), at=at
    )
    sent = _recording(source)
    metrics = (
        "istio_requests_total", BUCKETS, "istio_tcp_received_bytes_total",
        "istio_tcp_sent_bytes_total", "istio_tcp_connections_opened_total",
    )  # fmt: skip
    sides = [f'source_workload_namespace="{namespace}"']
    if namespace:  # the calls from it, else to it, else to a host in it: each series once
        sides += [
            f'source_workload_namespace!="{namespace}",destination_workload_namespace="{namespace}"',
            f'source_workload_namespace!="{namespace}",destination_workload_namespace!="{namespace}",'
            f'destination_service=~"[^.]+\\\\.{namespace}\\\\.svc.*"',
        ]
    else:
        sides = [""]
    every_series_once = sum(
        _samples_read(b, f"sum(count_over_time({metric}{{{side}}}[{WINDOW_S}s]))", at)
        for metric in metrics
        for side in sides
    )

    def buckets(selector: str) -> int:
        return sum(
            _samples_read(
                b, f"sum(count_over_time({BUCKETS}{{{selector}{side}}}[{WINDOW_S}s]))", at
            )
            for side in ("," + side if side else "" for side in sides)
        )

    needed = buckets('reporter="source"') + buckets(
        'reporter="destination",source_workload="unknown"'
    )
    for refresh in ("first", "later"):
        del sent[:]
        b.edges(source)
        # three queries; the first refresh's, one more where a call's quantiles fell above
        # a second: its buckets above that, left out of the first (`le=~`)
        again = [q for q in sent if 'le=~"' in q]
        assert len(sent) - len(again) == 3 and len(again) <= (refresh == "first"), sent
        read = [(q.split(" (")[0], _samples_read(b, q, at)) for q in sent]
        assert sum(n for _, n in read) <= every_series_once, (refresh, read, every_series_once)
    # the client's buckets, and the unmeshed client's from the server, no higher than
    # where the first refresh found the quantiles
    latency = next(q for q in sent if q.startswith("sum by (meshtop_edge, reporter, le)"))
    assert 'le!~"' in latency
    assert 0.3 * needed < _samples_read(b, latency, at) < needed
