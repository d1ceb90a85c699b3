"""Authorization on an edge (issue 22): which AuthorizationPolicy allows or denies each
call of an edge, in words, with the requests the proxies denied, as the console's edge
detail and `meshtop edge` say it; and the graph's mark on a denied call."""

from __future__ import annotations

import asyncio

from meshtop.detail import NO_CONFIG, access, authorization, subject
from meshtop.graphview import ViewEdge
from meshtop.mesh import refresh
from meshtop.model import EdgeStats, MeshSnapshot
from meshtop.sim.sources import Simulation
from meshtop.tui.widgets.graph import DENIED, LOCK, edge_label, fit

from .test_posture_outside import DENY_BOOKINFO

NS = "Kubernetes/bookinfo/"
VM = "Kubernetes/bookinfo/legacy-batch"
RATINGS = NS + "ratings-v1"
PRODUCTPAGE, DETAILS = NS + "productpage-v1", NS + "details-v1"
GOOGLE = "external/external/www.googleapis.com"


def _snap(sim: Simulation) -> MeshSnapshot:
    return asyncio.run(refresh(sim.clusters, window_s=60, clock=sim.clock))


def test_the_edge_detail_says_which_policy_allows_or_denies_each_call(sim: Simulation) -> None:
    sim.security[""].set_authorization_policy(DENY_BOOKINFO)  # details' calls to the VM
    snapshot = _snap(sim)
    configs = {"": asyncio.run(sim.security[""].security())}

    def said(sources: list[str], destinations: list[str]) -> tuple[str, ...]:
        return access(subject(snapshot, "t", sources, destinations), configs, {})

    rps = snapshot.edge(DETAILS, VM).stats.rps  # type: ignore[union-attr]
    assert said([DETAILS], [VM]) == (
        "denied by DENY AuthorizationPolicy bookinfo/deny-bookinfo (from namespaces bookinfo)",
        f"observed: {rps:.1f}rps denied (403, Envoy's RBAC flag), 100.00% of its requests",
    )
    assert said([PRODUCTPAGE], [DETAILS]) == (
        "allowed: no ALLOW policy applies to bookinfo/details-v1",
    )
    (reviews,) = said([NS + "reviews-v2"], [RATINGS])
    assert reviews.startswith("allowed only for requests ALLOW AuthorizationPolicy "
                              "bookinfo/ratings-viewer (from principals ")  # fmt: skip
    assert said([DETAILS], [GOOGLE]) == (
        "no AuthorizationPolicy applies: the callee is not a workload",
    )
    # an edge drawn for several calls names each
    both = said([NS + "reviews-v2", NS + "reviews-v3"], [RATINGS])
    assert both[0].startswith("bookinfo/reviews-v2 → bookinfo/ratings-v1: allowed only")
    assert both[1].startswith("bookinfo/reviews-v3 → bookinfo/ratings-v1: allowed only")
    # a node has none; no configuration read, or a cluster that cannot answer, is said
    about = subject(snapshot, "t", [], [RATINGS])
    assert asyncio.run(authorization(about, {"": sim.security[""]}, 5)) == ()
    assert access(subject(snapshot, "t", [DETAILS], [VM]), {}, {}) == (NO_CONFIG,)
    assert access(subject(snapshot, "t", [DETAILS], [VM]), {}, {"": "forbidden"}) == (
        "not known: cannot read the security configuration: the cluster: forbidden",
    )
    # read from the sources, as the console and `meshtop edge` do
    read = asyncio.run(
        authorization(subject(snapshot, "t", [DETAILS], [VM]), {"": sim.security[""]}, 5)
    )
    assert read[0].startswith("denied by DENY AuthorizationPolicy bookinfo/deny-bookinfo")


def test_a_denied_call_is_marked_on_its_graph_label() -> None:
    denied = EdgeStats(rps=2.0, mtls=1.0, response_codes={"403": 1.0, "200": 1.0},
                       response_flags={"RBAC": 1.0})  # fmt: skip
    e = ViewEdge("a", "b", denied, (("a", "b"),))
    assert edge_label(e, "rps") == f"2.0rps {LOCK}{DENIED}"
    assert fit(edge_label(e, "rps"), 8) == f"2.0rps {DENIED}"  # the lock gives way, not ⊘
    crossing = ViewEdge("a", "b", denied, (("a", "b"),), crosses=True)
    assert fit(edge_label(crossing, "rps"), 9) == f"2.0rps {DENIED}⇄"
    # flags Envoy joins with commas count too; other flags do not
    assert EdgeStats(response_flags={"RBAC,UAEX": 0.5, "UF": 1.0}).denied_rps == 0.5
    plain = ViewEdge("a", "b", EdgeStats(rps=2.0, mtls=1.0), (("a", "b"),))
    assert DENIED not in edge_label(plain, "rps")
