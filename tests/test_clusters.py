"""Several clusters as one mesh: the simulated mesh spread over clusters, what their
metrics backends say joined into one answer, each member's health of its own, the copies
of a route across clusters, and the `[[clusters]]` configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from meshtop import copies
from meshtop.canary import Plan, parse_set, rule_index
from meshtop.change import workflow
from meshtop.config import load
from meshtop.connect import connect
from meshtop.errors import BackendError, UsageError
from meshtop.federation import (
    FederatedControlPlane,
    FederatedMetrics,
    FederatedTraces,
    merge_traffic,
)
from meshtop.mesh import refresh
from meshtop.model import (
    Edge,
    EdgeStats,
    History,
    Route,
    RouteRule,
    SourceState,
    Trace,
    TraceQuery,
    TraceSummary,
    WeightedDestination,
    Workload,
    resolve_node,
)
from meshtop.sim.exposition import MeshExposition
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, spread
from meshtop.sources.protocols import ClusterSources, Pair, Traffic

from .conftest import T0, Clock


def two_clusters(clock: Clock | None = None) -> Simulation:
    return Simulation(spread(bookinfo(), ("east", "west")), clock=clock or (lambda: T0))


# -- the simulated mesh on several clusters -------------------------------------------


def test_spread_places_later_versions_in_one_cluster_and_calls_cross_only_for_them() -> None:
    sim = two_clusters()
    nodes = set(sim.mesh.workloads)
    assert {"east/bookinfo/reviews-v1", "west/bookinfo/reviews-v1"} <= nodes
    assert "west/bookinfo/reviews-v2" in nodes and "east/bookinfo/reviews-v2" not in nodes
    assert "east/bookinfo/reviews-v3" in nodes and "west/bookinfo/reviews-v3" not in nodes
    crossing = {
        (e.source.id, e.destination.id)
        for e in sim.flows()
        if e.source.workload.cluster in ("east", "west")
        and e.destination.workload.cluster in ("east", "west")
        and e.source.workload.cluster != e.destination.workload.cluster
    }
    # locality first: only a version that is not at home is reached across clusters
    assert crossing == {
        ("east/bookinfo/productpage-v1", "west/bookinfo/reviews-v2"),
        ("west/bookinfo/productpage-v1", "east/bookinfo/reviews-v3"),
    }


def test_each_cluster_has_its_copy_of_each_route_and_one_copy_drifted() -> None:
    sim = two_clusters()
    east, west = sim.route("bookinfo", "reviews", "east"), sim.route("bookinfo", "reviews", "west")
    assert [d.weight for d in east.rules[0].destinations] == [70, 20, 10]
    assert [d.weight for d in west.rules[0].destinations] == [80, 10, 10]
    assert (east.cluster, west.cluster) == ("east", "west")
    # each cluster's proxies follow their own copy
    sent = {}
    for e in sim.flows():
        if e.source.workload.name == "productpage-v1" and e.service_name == "reviews":
            key = (e.source.workload.cluster, e.destination.workload.version)
            sent[key] = sent.get(key, 0.0) + e.rate
    for cluster, weights in (("east", (70, 20, 10)), ("west", (80, 10, 10))):
        total = sum(v for (c, _), v in sent.items() if c == cluster)
        shares = [sent[(cluster, v)] / total for v in ("v1", "v2", "v3")]
        assert shares == pytest.approx([w / 100 for w in weights], abs=0.03)


def test_a_clusters_exposition_has_only_what_its_proxies_report() -> None:
    sim = two_clusters()
    text = MeshExposition(sim, "istio", clock=lambda: T0 + 10, cluster="east").render()
    series = [line for line in text.splitlines() if line.startswith("istio_requests_total{")]
    assert series
    for line in series:
        reporter = line.split('reporter="')[1].split('"')[0]
        side = "source" if reporter == "source" else "destination"
        assert f'{side}_cluster="east"' in line, line
    # the call east -> west is here from the client's proxy only
    crossing = [s for s in series if 'destination_workload="reviews-v2"' in s]
    assert crossing and all('reporter="source"' in s for s in crossing)


def test_demo_routes_are_written_in_one_cluster_only() -> None:
    sim = two_clusters()
    sim.set_weights("bookinfo", "reviews", {"v1": 100, "v2": 0, "v3": 0}, cluster="west")
    assert [d.weight for d in sim.route("bookinfo", "reviews", "west").rules[0].destinations] == [
        100, 0, 0,
    ]  # fmt: skip
    assert [d.weight for d in sim.route("bookinfo", "reviews", "east").rules[0].destinations] == [
        70, 20, 10,
    ]  # fmt: skip


# -- one answer from several metrics backends -------------------------------------------


def _edge(src: str, dst: str, rps: float, mtls: float, p99: float | None = 10.0) -> Edge:
    return Edge(src, dst, EdgeStats(rps=rps, mtls=mtls, p99_ms=p99, response_codes={"200": rps}))


def _node(node_id: str) -> Workload:
    cluster, namespace, name = node_id.split("/")
    return Workload(cluster, namespace, name)


def test_a_call_between_clusters_is_counted_once_client_side_with_the_servers_mtls() -> None:
    a, b, c = "east/shop/web", "west/shop/api", "west/shop/db"
    east = Traffic([_node(a), _node(b)], [_edge(a, b, 10.0, 0.0, p99=40.0)])  # client's proxy
    west = Traffic(
        [_node(a), _node(b), _node(c)],
        [_edge(a, b, 9.5, 1.0, p99=30.0), _edge(b, c, 3.0, 1.0)],  # server's proxy; local call
    )
    merged = merge_traffic({"east": east, "west": west})
    by_key = {e.key: e for e in merged.edges}
    assert set(by_key) == {(a, b), (b, c)}
    crossing = by_key[(a, b)].stats
    assert (crossing.rps, crossing.p99_ms, crossing.mtls) == (10.0, 40.0, 1.0)
    assert by_key[(b, c)].stats.rps == 3.0
    assert sorted(w.id for w in merged.nodes) == sorted([a, b, c])


class ClusterMetrics:
    """What one cluster's proxies saw of the simulated mesh, standing in for that
    cluster's Prometheus: the calls with either end in the cluster."""

    def __init__(self, sim: Simulation, cluster: str) -> None:
        self.sim, self.cluster, self.down = sim, cluster, ""
        self.name = f"prometheus {cluster}"

    async def traffic(self, window_s: float) -> Traffic:
        if self.down:
            raise BackendError(self.down)
        whole = await self.sim.metrics.traffic(window_s)
        here = f"{self.cluster}/"
        mine = [
            e for e in whole.edges if here in (e.source[: len(here)], e.destination[: len(here)])
        ]
        used = {n for e in mine for n in e.key}
        return Traffic([w for w in whole.nodes if w.id in used], mine)

    async def history(self, source: str | None, destination: str | None, w: float) -> History:
        return await self.sim.metrics.history(source, destination, w)


def test_one_cluster_out_of_reach_goes_stale_and_the_others_stay_live(clock: Clock) -> None:
    sim = two_clusters(clock)
    east, west = ClusterMetrics(sim, "east"), ClusterMetrics(sim, "west")
    clusters = {
        "east": ClusterSources(east, sim.planes["east"]),
        "west": ClusterSources(west, sim.planes["west"]),
    }
    first = asyncio.run(refresh(clusters, clock=clock))
    assert first.sources["metrics:east"].state is SourceState.FRESH
    whole = asyncio.run(refresh(ClusterSources.one(sim.metrics), clock=clock))
    assert {e.key for e in first.edges} == {e.key for e in whole.edges}

    west.down = "cannot reach Prometheus at http://west:9090: connection refused"
    clock.advance(10)
    second = asyncio.run(refresh(clusters, previous=first, clock=clock))
    assert second.sources["metrics:east"].state is SourceState.FRESH
    assert second.sources["metrics:west"].state is SourceState.STALE
    assert "connection refused" in second.sources["metrics:west"].reason
    # west's own calls are what it said last; east's and the crossing ones are live
    local_west = ("west/bookinfo/reviews-v2", "west/bookinfo/ratings-v1")
    assert second.edge(*local_west) == first.edge(*local_west)
    assert {e.key for e in second.edges} == {e.key for e in first.edges}
    east_call = ("east/bookinfo/productpage-v1", "east/bookinfo/details-v1")
    assert second.edge(*east_call) != first.edge(*east_call)  # moved on with the clock


def test_one_cluster_never_reached_is_failed_and_the_rest_is_shown(clock: Clock) -> None:
    sim = two_clusters(clock)
    east, west = ClusterMetrics(sim, "east"), ClusterMetrics(sim, "west")
    west.down = "cannot reach Prometheus at http://west:9090: connection refused"
    clusters = {"east": ClusterSources(east), "west": ClusterSources(west)}
    snapshot = asyncio.run(refresh(clusters))
    assert snapshot.sources["metrics:west"].state is SourceState.FAILED
    assert snapshot.edges and all(
        e.source.startswith("east/") or e.destination.startswith("east/") for e in snapshot.edges
    )


def test_history_is_asked_of_the_sources_cluster() -> None:
    sim = two_clusters()
    asked: list[str] = []

    class Recording(ClusterMetrics):
        async def history(self, source: str | None, destination: str | None, w: float) -> History:
            asked.append(self.cluster)
            return await super().history(source, destination, w)

    metrics = FederatedMetrics({c: Recording(sim, c) for c in ("east", "west")})
    asyncio.run(metrics.history("west/bookinfo/productpage-v1", "east/bookinfo/reviews-v3", 300))
    asyncio.run(metrics.history("unknown/unknown/unknown", "east/bookinfo/productpage-v1", 300))
    assert asked == ["west", "east"]


def test_histories_are_asked_of_each_cluster_together_in_their_order() -> None:
    """A detail's histories through several clusters' backends: each backend asked once
    for all of its pairs where it asks many together, pair by pair where not, and the
    histories in the order asked."""
    sim = two_clusters()
    calls: list[tuple[str, int]] = []

    class Many(ClusterMetrics):
        async def histories(self, pairs: Sequence[Pair], w: float) -> list[History]:
            calls.append((self.cluster, len(pairs)))
            return [await ClusterMetrics.history(self, s, d, w) for s, d in pairs]

    class One(ClusterMetrics):
        async def history(self, source: str | None, destination: str | None, w: float) -> History:
            calls.append((self.cluster, 1))
            return await super().history(source, destination, w)

    pairs: list[Pair] = [
        ("west/bookinfo/productpage-v1", "east/bookinfo/reviews-v3"),
        (None, "east/bookinfo/productpage-v1"),
        ("west/bookinfo/reviews-v2", None),
        (None, "east/bookinfo/reviews-v3"),
    ]
    metrics = FederatedMetrics({"east": Many(sim, "east"), "west": One(sim, "west")})
    found = asyncio.run(metrics.histories(pairs, 300))
    assert [(h.source, h.destination) for h in found] == pairs
    assert sorted(calls) == [("east", 2), ("west", 1), ("west", 1)]


def test_the_demo_control_planes_report_per_cluster() -> None:
    sim = two_clusters()
    assert isinstance(sim.control_plane, FederatedControlPlane)
    snapshot = asyncio.run(refresh(sim.clusters, clock=sim.clock))
    assert set(snapshot.sources) == {"metrics", "control_plane:east", "control_plane:west"}
    assert {r.id for r in snapshot.routes if r.name == "reviews"} == {
        "east/bookinfo/VirtualService/reviews",
        "west/bookinfo/VirtualService/reviews",
    }


# -- copies of one route -----------------------------------------------------------------


def test_copies_whose_weights_differ_are_flagged_on_both_sides() -> None:
    sim = two_clusters()
    routes = asyncio.run(sim.control_plane.routes())
    differ = copies.differences(routes)
    assert differ == {
        ("east/bookinfo/VirtualService/reviews", 0, 0): "west has 80",
        ("east/bookinfo/VirtualService/reviews", 0, 1): "west has 10",
        ("west/bookinfo/VirtualService/reviews", 0, 0): "east has 70",
        ("west/bookinfo/VirtualService/reviews", 0, 1): "east has 20",
    }


def _apply_all(sim: Simulation, plans: dict[str, Plan]) -> list[workflow.Outcome]:
    """Every copy written through the change workflow, as `meshtop shift` writes them."""
    assert isinstance(sim.control_plane, FederatedControlPlane)
    stores = {c: workflow.Copy(c, m, c) for c, m in sim.control_plane.members.items()}
    return asyncio.run(workflow.Workflow(stores, by="shift").apply(plans))


def _plans(sim: Simulation, weights: str) -> dict[str, Plan]:
    found = {c: sim.route("bookinfo", "reviews", c) for c in sim.mesh.clusters}
    return copies.plans(found, lambda r: rule_index(r, None), lambda b: parse_set(weights, b))


def test_every_copy_gets_the_same_weights_each_from_its_own() -> None:
    sim = two_clusters()
    assert isinstance(sim.control_plane, FederatedControlPlane)
    plans = _plans(sim, "v1=50,v2=25,v3=25")
    assert {c: p.before.weights for c, p in plans.items()} == {
        "east": (70, 20, 10),
        "west": (80, 10, 10),
    }
    outcomes = _apply_all(sim, plans)
    assert [(o.cluster, o.result) for o in outcomes] == [("east", "applied"), ("west", "applied")]
    for c in ("east", "west"):
        route = sim.route("bookinfo", "reviews", c)
        assert [d.weight for d in route.rules[0].destinations] == [50, 25, 25]
        assert route.resource_version == "2"
    assert workflow.summary(outcomes) == "every copy is changed"


def test_a_copy_changed_since_it_was_read_is_left_alone_and_the_others_apply() -> None:
    sim = two_clusters()
    assert isinstance(sim.control_plane, FederatedControlPlane)
    plans = _plans(sim, "v1=50,v2=25,v3=25")
    sim.set_weights("bookinfo", "reviews", {"v1": 60, "v2": 30, "v3": 10}, cluster="west")
    outcomes = _apply_all(sim, plans)
    results = {o.cluster: o.result for o in outcomes}
    assert results["east"] == "applied" and results["west"].startswith("conflict: ")
    west = sim.route("bookinfo", "reviews", "west")
    assert [d.weight for d in west.rules[0].destinations] == [60, 30, 10]  # not overwritten
    assert workflow.summary(outcomes).startswith("applied in east; NOT in west")


def test_a_copy_already_at_the_weights_is_unchanged_not_written() -> None:
    sim = two_clusters()
    assert isinstance(sim.control_plane, FederatedControlPlane)
    outcomes = _apply_all(sim, _plans(sim, "v1=80,v2=10"))
    assert {o.cluster: o.result for o in outcomes} == {"east": "applied", "west": "unchanged"}
    assert sim.route("bookinfo", "reviews", "west").resource_version == "1"


# -- configuration ---------------------------------------------------------------------


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_clusters_from_the_file_with_their_own_backends(tmp_path: Path) -> None:
    path = _config(tmp_path, """
[prometheus]
dialect = "istio"
headers = { "X-Scope-OrgID" = "mesh" }

[[clusters]]
name = "east"
context = "gke_east"
prometheus = "http://prom-east:9090"
tracing = "tempo=http://tempo-east:3200"

[[clusters]]
name = "west"
prometheus = "http://prom-west:9090"
""")  # fmt: skip
    settings = load({}, config_file=path)
    east, west = settings.clusters
    assert (east.name, east.context, west.context) == ("east", "gke_east", "west")
    assert east.prometheus is not None and east.prometheus.url == "http://prom-east:9090"
    assert east.prometheus.dialect == "istio"  # the rest of [prometheus] holds for each
    assert east.prometheus.headers == {"X-Scope-OrgID": "mesh"}
    assert east.tracing is not None and east.tracing.url == "http://tempo-east:3200"
    assert west.tracing is None


def test_context_twice_is_several_clusters_and_picks_from_the_file(tmp_path: Path) -> None:
    path = _config(tmp_path, '[[clusters]]\nname = "east"\ncontext = "gke_east"\n')
    settings = load({"kubernetes.contexts": ("gke_east", "kind-west")}, config_file=path)
    assert [(c.name, c.context) for c in settings.clusters] == [
        ("east", "gke_east"),
        ("kind-west", "kind-west"),
    ]
    one = load({"kubernetes.context": "kind-west", "kubernetes.contexts": ("kind-west",)})
    assert [(c.name, c.context) for c in one.clusters] == [("", "kind-west")]  # a mesh of one
    # one --context naming a cluster of the file: that cluster, as the file describes it
    path.write_text('[[clusters]]\nname = "east"\ncontext = "gke_east"\n'
                    'prometheus = "http://prom-east:9090"\n[[clusters]]\nname = "west"\n'
                    'prometheus = "http://prom-west:9090"\n')  # fmt: skip
    east = load({"kubernetes.contexts": ("east",)}, config_file=path)
    assert [(c.name, c.context) for c in east.clusters] == [("", "gke_east")]
    prometheus = east.clusters[0].prometheus
    assert prometheus is not None and prometheus.url == "http://prom-east:9090"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[[clusters]]\ncontext = "x"\n', "cluster 1 needs a name"),
        ('[[clusters]]\nname = "a/b"\n', "cluster 1 needs a name (no '/' in it)"),
        ('[[clusters]]\nname = "a"\n[[clusters]]\nname = "a"\n', "cluster 'a' is named twice"),
        ('[[clusters]]\nname = "a"\nprom = "http://x"\n', "unknown setting 'prom'"),
        ('clusters = "east"\n', "clusters must be tables"),
        ('[[clusters]]\nname = "a"\nprometheus = "ftp://x"\n', "must start with http"),
    ],
)
def test_bad_clusters_are_one_clear_line(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        load({}, config_file=_config(tmp_path, text))
    assert says in str(caught.value)


def test_some_clusters_with_their_own_prometheus_and_some_without_is_refused(
    tmp_path: Path,
) -> None:
    from meshtop.connect import connect

    path = _config(tmp_path, """
[prometheus]
url = "http://thanos:9090"

[[clusters]]
name = "east"
prometheus = "http://prom-east:9090"

[[clusters]]
name = "west"
""")  # fmt: skip
    with pytest.raises(UsageError, match="west has no prometheus of its own"):
        connect(load({}, config_file=path))


def test_a_federation_needs_two_members() -> None:
    with pytest.raises(ValueError, match="two or more"):
        FederatedMetrics({"east": ClusterMetrics(two_clusters(), "east")})


def test_a_prometheus_given_on_the_command_line_is_the_one_for_every_cluster(
    tmp_path: Path,
) -> None:
    path = _config(tmp_path, """
[[clusters]]
name = "east"
prometheus = "http://prom-east:9090"

[[clusters]]
name = "west"
prometheus = "http://prom-west:9090"
""")  # fmt: skip
    settings = load({"prometheus.url": "http://thanos:9090"}, config_file=path)
    assert [c.prometheus and c.prometheus.url for c in settings.clusters] == [
        "http://thanos:9090",
        "http://thanos:9090",
    ]
    sources = connect(settings)  # one backend, asked once for both clusters
    assert sources.clusters["east"].metrics is sources.clusters["west"].metrics
    assert sources.metrics is sources.clusters["east"].metrics
    one = load({"prometheus.url": "http://thanos:9090", "kubernetes.contexts": ("east",)},
               config_file=path)  # fmt: skip
    prometheus = one.clusters[0].prometheus
    assert prometheus is not None and prometheus.url == "http://thanos:9090"


def test_a_cluster_named_unlike_the_mesh_names_it_is_said() -> None:
    sim = two_clusters()
    east, west = sim.planes["east"], sim.planes["west"]
    misnamed = {
        "gke_east": ClusterSources(sim.metrics, east),
        "west": ClusterSources(sim.metrics, west),
    }
    snapshot = asyncio.run(refresh(misnamed, clock=sim.clock))
    reason = snapshot.sources["control_plane:gke_east"].reason
    assert "no call in the metrics is from or to a cluster named 'gke_east'" in reason
    assert "they name east" in reason
    assert snapshot.sources["control_plane:west"].reason == ""


def test_rules_of_copies_are_matched_by_name_or_as_the_default() -> None:
    sim = two_clusters()
    east = sim.route("bookinfo", "reviews", "east")
    default = east.rules[0]
    jason = RouteRule((WeightedDestination("reviews", "v2", 100),), ("header end-user = jason",))
    named = RouteRule(default.destinations, (), "main")
    west = replace(east, cluster="west", rules=(jason, default))
    assert copies.matching_rule(west, default, 0) == 1  # the default rule, wherever it is
    # a rule with match conditions: the one at the same index, if its conditions agree
    assert copies.matching_rule(replace(west, rules=(default, jason)), jason, 1) == 1
    with pytest.raises(UsageError, match="the copy in west has no main"):
        copies.matching_rule(west, named, 0)
    with pytest.raises(UsageError, match="has no rule 1 like this one's"):
        copies.matching_rule(replace(east, rules=(default,)), jason, 1)


def test_copies_listing_destinations_in_another_order_do_not_differ() -> None:
    sim = two_clusters()
    east = sim.route("bookinfo", "reviews", "east")
    rule = east.rules[0]
    turned = replace(rule, destinations=tuple(reversed(rule.destinations)))
    west = replace(east, cluster="west", rules=(turned,))
    assert copies.differences([east, west]) == {}
    fewer = replace(
        east, cluster="west", rules=(replace(rule, destinations=rule.destinations[:2]),)
    )
    assert copies.differences([east, fewer])[(east.id, 0, 2)] == "west has none"


def test_every_clusters_backends_are_asked_at_once() -> None:
    """Each member waits until every other has been asked: asking one after another
    would hang until the timeout."""
    names = ("east", "west", "south")
    asked = {f"{role}:{c}": asyncio.Event() for role in ("metrics", "plane") for c in names}

    async def everyone() -> None:
        await asyncio.gather(*(e.wait() for e in asked.values()))

    class Metrics:
        def __init__(self, cluster: str) -> None:
            self.name, self.cluster = f"prometheus {cluster}", cluster

        async def traffic(self, window_s: float) -> Traffic:
            asked[f"metrics:{self.cluster}"].set()
            await everyone()
            a, b = f"{self.cluster}/shop/web", f"{self.cluster}/shop/api"
            return Traffic([_node(a), _node(b)], [_edge(a, b, 1.0, 1.0)])

        async def history(self, source: str | None, destination: str | None, w: float) -> History:
            raise NotImplementedError

    class Plane:
        def __init__(self, cluster: str) -> None:
            self.name, self.cluster = f"kubernetes {cluster}", cluster

        async def workloads(self) -> list[Workload]:
            asked[f"plane:{self.cluster}"].set()
            await everyone()
            return []

        async def routes(self) -> list[Route]:
            return []

        async def breakers(self) -> list[object]:
            return []

    clusters = {c: ClusterSources(Metrics(c), Plane(c)) for c in names}
    snapshot = asyncio.run(refresh(clusters, timeout_s=2))
    assert all(h.state is SourceState.FRESH for h in snapshot.sources.values())
    assert len(snapshot.sources) == 6 and len(snapshot.edges) == 3


def test_traces_from_every_clusters_backend_one_down_is_skipped() -> None:
    east = Simulation(bookinfo(), clock=lambda: T0).traces
    found = asyncio.run(east.find_traces(TraceQuery("productpage", namespace="bookinfo", limit=5)))
    assert found

    class Down:
        name = "jaeger west"

        async def find_traces(self, query: TraceQuery) -> list[TraceSummary]:
            raise BackendError("cannot reach Jaeger at http://jaeger.west: connection refused")

        async def get_trace(self, trace_id: str) -> Trace:
            raise BackendError(f"no trace {trace_id} in Jaeger")

    class Same:  # west's backend has the same traces: a trace that crossed clusters
        name = "jaeger south"

        async def find_traces(self, query: TraceQuery) -> Sequence[TraceSummary]:
            return await east.find_traces(query)

        async def get_trace(self, trace_id: str) -> Trace:
            return await east.get_trace(trace_id)

    traces = FederatedTraces({"east": east, "west": Down(), "south": Same()})
    listed = asyncio.run(
        traces.find_traces(TraceQuery("productpage", namespace="bookinfo", limit=5))
    )
    assert [t.trace_id for t in listed] == [t.trace_id for t in found]  # once each
    whole = asyncio.run(traces.get_trace(found[0].trace_id))
    assert whole.spans
    only_down = FederatedTraces({"west": Down(), "north": Down()})
    with pytest.raises(BackendError, match="connection refused"):
        asyncio.run(only_down.find_traces(TraceQuery("productpage")))


def test_tracing_given_now_is_the_one_for_every_cluster(tmp_path: Path) -> None:
    path = _config(tmp_path, """
[[clusters]]
name = "east"
tracing = "jaeger=http://jaeger-east:16686"

[[clusters]]
name = "west"
tracing = "jaeger=http://jaeger-west:16686"
""")  # fmt: skip
    assert all(c.tracing for c in load({}, config_file=path).clusters)
    settings = load({"tracing.url": "tempo=http://tempo:3200"}, config_file=path)
    assert [c.tracing and c.tracing.url for c in settings.clusters] == [
        "http://tempo:3200",
        "http://tempo:3200",
    ]


def test_a_node_is_named_by_cluster_and_workload_too() -> None:
    sim = two_clusters()
    nodes = {w.id: w.workload for w in sim.mesh.workloads.values()}
    assert resolve_node(nodes, "west/productpage-v1") == "west/bookinfo/productpage-v1"
    assert resolve_node(nodes, "reviews-v3") == "east/bookinfo/reviews-v3"
    with pytest.raises(UsageError, match="ambiguous"):
        resolve_node(nodes, "bookinfo/productpage-v1")
