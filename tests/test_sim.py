from __future__ import annotations

import asyncio
from pathlib import Path

import networkx as nx
import pytest

from meshtop.errors import BackendError, UsageError
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot, NodeKind, Protocol, TraceQuery
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated

from .conftest import ROOT, Clock

NS = "Kubernetes/bookinfo/"
PRODUCTPAGE = NS + "productpage-v1"


def _snap(sim: Simulation) -> MeshSnapshot:
    return asyncio.run(refresh(sim.clusters))


def test_bundled_manifests_are_the_real_bookinfo_files(fixtures: Path) -> None:
    bundled = ROOT / "meshtop/sim/bookinfo"
    for name, origin in {
        "bookinfo.yaml": "istio/platform-kube/bookinfo.yaml",
        "destination-rule-all-mtls.yaml": "istio/networking/destination-rule-all-mtls.yaml",
        "virtual-service-all-v1.yaml": "istio/networking/virtual-service-all-v1.yaml",
        "bookinfo-gateway.yaml": "istio/networking/bookinfo-gateway.yaml",
    }.items():
        assert (bundled / name).read_bytes() == (fixtures / origin).read_bytes(), name


def test_bookinfo_workloads_come_from_the_manifests(sim: Simulation) -> None:
    snapshot = _snap(sim)
    workloads = {w.name for w in snapshot.nodes.values()
                 if w.namespace == "bookinfo" and w.kind is NodeKind.WORKLOAD}  # fmt: skip
    assert workloads == {  # the Deployments; the VM beside them is a WorkloadEntry's
        "productpage-v1", "details-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3",
    }  # fmt: skip
    reviews = snapshot.nodes[NS + "reviews-v2"]
    assert (reviews.app, reviews.version) == ("reviews", "v2")


def test_bookinfo_call_graph(sim: Simulation) -> None:
    g = _snap(sim).graph
    assert set(g.successors(PRODUCTPAGE)) == {
        NS + "details-v1", NS + "reviews-v1", NS + "reviews-v2", NS + "reviews-v3",
    }  # fmt: skip
    assert list(g.successors(NS + "reviews-v1")) == []  # v1 shows no stars: no ratings call
    assert list(g.successors(NS + "reviews-v2")) == [NS + "ratings-v1"]
    assert list(g.successors(NS + "reviews-v3")) == [NS + "ratings-v1"]
    assert list(g.predecessors(PRODUCTPAGE)) == [
        "Kubernetes/istio-system/istio-ingressgateway", "unknown/unknown/unknown",
    ]  # fmt: skip


def test_traffic_follows_the_virtual_service_weights(sim: Simulation) -> None:
    snapshot = _snap(sim)
    rps = {v: snapshot.edge(PRODUCTPAGE, NS + f"reviews-{v}").stats.rps for v in ("v1", "v2", "v3")}  # type: ignore[union-attr]
    total = sum(rps.values())
    assert rps["v1"] / total == pytest.approx(0.70, abs=0.03)
    assert rps["v2"] / total == pytest.approx(0.20, abs=0.03)
    assert rps["v3"] / total == pytest.approx(0.10, abs=0.03)


def test_v3_is_a_poor_canary(sim: Simulation) -> None:
    snapshot = _snap(sim)
    v1, v2, v3 = (snapshot.edge(PRODUCTPAGE, NS + f"reviews-{v}").stats for v in ("v1", "v2", "v3"))  # type: ignore[union-attr]
    assert v3.error_rate > 0.05 > v1.error_rate == v2.error_rate == 0.0
    assert v3.p95_ms is not None and v1.p95_ms is not None and v2.p95_ms is not None
    assert v3.p95_ms > 3 * max(v1.p95_ms, v2.p95_ms)


def test_weight_change_moves_numbers_within_one_refresh(sim: Simulation) -> None:
    before = _snap(sim)
    route = sim.set_weights("bookinfo", "reviews", {"v1": 0, "v2": 0, "v3": 100})
    assert route.resource_version == "2"
    after = _snap(sim)
    assert after.edge(PRODUCTPAGE, NS + "reviews-v1") is None
    v3_before = before.edge(PRODUCTPAGE, NS + "reviews-v3").stats  # type: ignore[union-attr]
    v3_after = after.edge(PRODUCTPAGE, NS + "reviews-v3").stats  # type: ignore[union-attr]
    assert v3_after.rps > 8 * v3_before.rps
    # productpage now waits on the slow canary for every page
    page_before = before.edge("Kubernetes/istio-system/istio-ingressgateway", PRODUCTPAGE)
    page_after = after.edge("Kubernetes/istio-system/istio-ingressgateway", PRODUCTPAGE)
    assert page_after.stats.p50_ms > page_before.stats.p50_ms  # type: ignore[union-attr,operator]
    routes = {r.name: r for r in after.routes}
    assert [d.weight for d in routes["reviews"].rules[0].destinations] == [0, 0, 100]


def test_unknown_subset_in_a_weight_change_is_refused(sim: Simulation) -> None:
    with pytest.raises(UsageError, match="no destination v9"):
        sim.set_weights("bookinfo", "reviews", {"v9": 100})
    with pytest.raises(UsageError, match="no route for carts"):
        sim.set_weights("bookinfo", "carts", {"v1": 100})


def test_bookinfo_shows_unmeshed_and_external_peers(sim: Simulation) -> None:
    snapshot = _snap(sim)
    plain = snapshot.edge("unknown/unknown/unknown", PRODUCTPAGE)
    assert plain is not None and plain.stats.mtls == 0.0
    tcp = snapshot.edge(NS + "details-v1", "external/external/www.googleapis.com")
    assert tcp is not None and tcp.stats.protocol is Protocol.TCP
    assert tcp.stats.tcp_response_bps > tcp.stats.tcp_request_bps > 0
    # Google's API is a ServiceEntry's host: a node of its own kind (issue 22)
    assert snapshot.nodes["external/external/www.googleapis.com"].kind is NodeKind.SERVICE_ENTRY


def test_numbers_drift_over_time_but_repeat_for_the_same_moment(
    sim: Simulation, clock: Clock
) -> None:
    first = _snap(sim).edge(PRODUCTPAGE, NS + "details-v1").stats.rps  # type: ignore[union-attr]
    assert _snap(sim).edge(PRODUCTPAGE, NS + "details-v1").stats.rps == first  # type: ignore[union-attr]
    clock.advance(60)
    later = _snap(sim).edge(PRODUCTPAGE, NS + "details-v1").stats.rps  # type: ignore[union-attr]
    assert later != first
    assert later == pytest.approx(first, rel=0.25)


def test_generated_mesh_is_deterministic_per_seed() -> None:
    a = asyncio.run(refresh(Simulation(generated(200, seed=7), clock=lambda: 1e9).clusters))
    b = asyncio.run(refresh(Simulation(generated(200, seed=7), clock=lambda: 1e9).clusters))
    c = asyncio.run(refresh(Simulation(generated(200, seed=8), clock=lambda: 1e9).clusters))
    assert [(e.key, e.stats.rps) for e in a.edges] == [(e.key, e.stats.rps) for e in b.edges]
    assert {e.key for e in a.edges} != {e.key for e in c.edges}


@pytest.mark.parametrize("services", [1, 2, 7, 300])
def test_generated_mesh_has_the_services_asked_for(services: int) -> None:
    mesh = generated(services, seed=3)
    meshed = {
        (w.workload.namespace, w.service)
        for w in mesh.workloads.values()
        if w.sidecar and w.service
    }
    assert len(meshed) == services


def test_generated_mesh_is_realistic() -> None:
    sim = Simulation(generated(1000, seed=1), clock=lambda: 1e9)
    snapshot = asyncio.run(refresh(sim.clusters))
    g = snapshot.graph
    assert nx.is_directed_acyclic_graph(g)  # layered: callers call lower layers
    namespaces = {w.namespace for w in snapshot.nodes.values() if w.kind is NodeKind.WORKLOAD}
    assert len(namespaces) >= 10
    assert max(d for _, d in g.out_degree()) >= 4  # fan-out
    protocols = {e.stats.protocol for e in snapshot.edges}
    assert protocols == {Protocol.HTTP, Protocol.GRPC, Protocol.TCP}
    assert len(snapshot.routes) >= 10  # canaries split by VirtualServices
    canary_versions = {w.version for w in snapshot.nodes.values()}
    assert {"v1", "v2"} <= canary_versions
    assert any(e.stats.grpc_statuses.get("14") for e in snapshot.edges)
    # every service has callers: nothing sits idle in the middle of the graph
    idle = [
        n for n, w in snapshot.nodes.items() if w.kind is NodeKind.WORKLOAD and g.degree(n) == 0
    ]
    assert idle == []


def test_traces_walk_the_current_routes_as_istio_traces_them(sim: Simulation) -> None:
    query = TraceQuery("reviews", namespace="bookinfo", errors_only=True, limit=5)
    found = asyncio.run(sim.traces.find_traces(query))
    assert found, "v3 fails one request in eight: some traces must carry an error"
    assert [t.duration_us for t in found] == sorted((t.duration_us for t in found), reverse=True)
    for summary in found:
        assert summary.error and summary.root.startswith("istio-ingressgateway.istio-system")
        assert {"productpage.bookinfo", "reviews.bookinfo"} <= set(summary.services)
    trace = asyncio.run(sim.traces.get_trace(found[0].trace_id))
    by_id = {s.span_id: s for s in trace.spans}
    failed = next(s for s in trace.spans if s.error and s.kind == "client")
    assert failed.tags["http.status_code"].startswith("5")
    assert "|reviews.bookinfo.svc.cluster.local" in failed.tags["upstream_cluster"]
    for s in trace.spans:  # a server span sits under its caller's client span
        if s.kind == "server" and s.parent_id in by_id:
            assert by_id[s.parent_id].kind == "client"
    with pytest.raises(BackendError, match="not found"):
        asyncio.run(sim.traces.get_trace("00" * 16))


def test_a_listed_trace_can_be_fetched_again_in_another_process(sim: Simulation) -> None:
    from meshtop.sim.sources import Simulation as Fresh
    from meshtop.sim.topology import bookinfo

    (summary,) = asyncio.run(sim.traces.find_traces(TraceQuery("ratings", limit=1)))
    again = asyncio.run(Fresh(bookinfo(), clock=sim.clock).traces.get_trace(summary.trace_id))
    assert len(again.spans) == summary.span_count and again.duration_us == summary.duration_us


def test_trace_query_by_edge_and_duration(sim: Simulation) -> None:
    query = TraceQuery("reviews", peer_service="ratings", min_duration_ms=20, limit=3,
                       namespace="bookinfo", peer_namespace="bookinfo")  # fmt: skip
    found = asyncio.run(sim.traces.find_traces(query))
    assert found
    for summary in found:
        assert summary.duration_us >= 20_000
        trace = asyncio.run(sim.traces.get_trace(summary.trace_id))
        by_id = {s.span_id: s for s in trace.spans}
        assert any(
            s.service == "ratings.bookinfo" and s.kind == "server"
            and by_id[by_id[s.parent_id].parent_id].service == "reviews.bookinfo"  # type: ignore[index]
            for s in trace.spans
            if s.parent_id in by_id
        )  # fmt: skip


def test_traffic_nobody_can_take_ends_in_503_at_the_service(sim: Simulation) -> None:
    """Scaled to zero: the client's proxy answers 503 "no healthy upstream" itself."""
    sim.mesh.services[("bookinfo", "ratings")] = []
    snapshot = _snap(sim)
    lost = snapshot.edge(NS + "reviews-v3", NS + "service:ratings")
    assert lost is not None
    assert lost.stats.error_rate == 1.0 and set(lost.stats.response_flags) == {"UH"}
    assert snapshot.nodes[NS + "service:ratings"].kind is NodeKind.SERVICE
    assert snapshot.edge(NS + "reviews-v3", NS + "ratings-v1") is None


def test_a_subset_without_pods_loses_its_share(sim: Simulation) -> None:
    sim.mesh.subsets[("bookinfo", "reviews", "v3")] = {"version": "v9"}  # matches no pod
    snapshot = _snap(sim)
    lost = snapshot.edge(PRODUCTPAGE, NS + "service:reviews")
    v1 = snapshot.edge(PRODUCTPAGE, NS + "reviews-v1")
    assert lost is not None and v1 is not None
    assert lost.stats.rps / (lost.stats.rps + v1.stats.rps) == pytest.approx(0.1 / 0.8, abs=0.03)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"v1": -50, "v3": 150}, "weights cannot be negative"),
        ({"v1": 50, "v2": 0, "v3": 0}, "must add up to 100, not 50"),
    ],
)
def test_invalid_weights_are_refused(
    sim: Simulation, weights: dict[str, int], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        sim.set_weights("bookinfo", "reviews", weights)
    assert sim.route("bookinfo", "reviews").resource_version == "1"  # nothing changed


def test_small_generated_meshes_still_have_a_canary() -> None:
    for seed in range(5):
        assert generated(5, seed=seed).routes, seed
