from __future__ import annotations

import asyncio

import networkx as nx
import pytest

from meshtop.errors import UsageError
from meshtop.mesh import refresh
from meshtop.model import NodeKind, Workload, resolve_node
from meshtop.sim.sources import Simulation


def test_node_ids_are_cluster_namespace_workload() -> None:
    assert Workload("east", "shop", "cart-v1").id == "east/shop/cart-v1"
    assert Workload.unknown().id == "unknown/unknown/unknown"
    assert Workload.external("api.stripe.com").id == "external/external/api.stripe.com"
    svc = Workload.service("east", "shop", "cart")
    assert svc.id == "east/shop/service:cart"
    assert svc.kind is NodeKind.SERVICE


def test_short_forms_resolve_when_unambiguous(sim: Simulation) -> None:
    nodes = asyncio.run(refresh(sim.clusters)).nodes
    full = "Kubernetes/bookinfo/reviews-v3"
    assert resolve_node(nodes, full) == full
    assert resolve_node(nodes, "bookinfo/reviews-v3") == full
    assert resolve_node(nodes, "reviews-v3") == full


def test_ambiguous_and_unknown_names_are_usage_errors() -> None:
    nodes = {w.id: w for w in (Workload("east", "shop", "cart"), Workload("west", "shop", "cart"))}
    with pytest.raises(UsageError, match=r"ambiguous.*east/shop/cart.*west/shop/cart"):
        resolve_node(nodes, "shop/cart")
    with pytest.raises(UsageError, match="no node 'till'"):
        resolve_node(nodes, "till")


def test_snapshot_graph_answers_topology_questions(sim: Simulation) -> None:
    snapshot = asyncio.run(refresh(sim.clusters))
    g = snapshot.graph
    assert isinstance(g, nx.DiGraph)
    assert g.number_of_edges() == len(snapshot.edges)
    assert set(g.successors("Kubernetes/bookinfo/productpage-v1")) == {
        "Kubernetes/bookinfo/details-v1",
        "Kubernetes/bookinfo/reviews-v1",
        "Kubernetes/bookinfo/reviews-v2",
        "Kubernetes/bookinfo/reviews-v3",
    }
    assert nx.has_path(
        g, "Kubernetes/istio-system/istio-ingressgateway", "Kubernetes/bookinfo/ratings-v1"
    )
    stats = g.edges["Kubernetes/bookinfo/productpage-v1", "Kubernetes/bookinfo/reviews-v3"]["stats"]
    assert (
        stats
        is snapshot.edge(
            "Kubernetes/bookinfo/productpage-v1", "Kubernetes/bookinfo/reviews-v3"
        ).stats
    )  # type: ignore[union-attr]
