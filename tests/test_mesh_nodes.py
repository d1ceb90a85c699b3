"""A refresh whose sources say the same workloads as the one before (the same objects, as
the simulated mesh's control plane and a walk kept say them) makes its snapshot's nodes
from the last ones instead of each node's id again (issue 17); other workloads, or the
same in another order, are joined afresh, the first word on a workload winning. A mesh of
one cluster reads no cluster names from its nodes on the refresh's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from meshtop import mesh, model
from meshtop.errors import BackendError
from meshtop.mesh import build_snapshot
from meshtop.model import Edge, EdgeStats, MeshSnapshot, Workload
from meshtop.sim.sources import Simulation

AT = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
A = Workload("k", "shop", "cart-v1", app="cart", version="v1")
B = Workload("k", "shop", "pay-v1", app="pay", version="v1")
B_AGAIN = Workload("k", "shop", "pay-v1", app="pay", version="v2")  # a later word on it
EDGES = [Edge(A.id, B.id, EdgeStats(rps=1.0)), Edge(B.id, "k/shop/gone", EdgeStats())]


def _snapshot(workloads: list[Workload]) -> MeshSnapshot:
    return build_snapshot(
        generated_at=AT, window_s=60, workloads=workloads, edges=EDGES, routes=(), sources={}
    )


def test_the_same_workloads_again_make_their_nodes_without_their_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids: list[str] = []
    real = Workload.id

    def counted(w: Workload) -> str:
        ids.append(real.fget(w))  # type: ignore[attr-defined]
        return real.fget(w)  # type: ignore[attr-defined, no-any-return]

    said = [A, B, B_AGAIN]
    first = _snapshot(said)
    monkeypatch.setattr(Workload, "id", property(counted))
    second = _snapshot(list(said))  # a new list of the same objects
    assert ids == []
    assert second.nodes == first.nodes and list(second.nodes) == list(first.nodes)
    assert second.nodes["k/shop/pay-v1"] is B  # the first word still wins
    assert second.nodes["k/shop/gone"] == Workload("k", "shop", "gone")  # an edge's end
    assert second.nodes is not first.nodes  # each snapshot its own mapping
    third = _snapshot([B_AGAIN, A, B])  # another order: joined afresh
    assert len(ids) == 3 and third.nodes["k/shop/pay-v1"] is B_AGAIN


def test_a_mesh_of_one_cluster_reads_no_cluster_names_on_a_refresh(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[object] = []
    real = model.clusters

    def counted(workloads: Iterable[Workload]) -> list[str]:
        read.append(workloads)
        return real(workloads)

    monkeypatch.setattr(mesh, "clusters", counted)
    snapshot = asyncio.run(mesh.refresh(sim.clusters))  # on the loop that draws: no scan
    assert snapshot.edges and read == []


def test_edge_ends_that_are_no_workload_become_nodes_in_the_edges_order() -> None:
    edges = [
        Edge(A.id, "k/shop/x", EdgeStats()),
        Edge("k/web/y", A.id, EdgeStats()),
        Edge("k/shop/x", "k/web/z", EdgeStats()),
    ]
    s = build_snapshot(
        generated_at=AT, window_s=60, workloads=[A], edges=edges, routes=(), sources={}
    )
    assert list(s.nodes) == [A.id, "k/shop/x", "k/web/y", "k/web/z"]
    assert s.nodes["k/web/z"] == Workload("k", "web", "z")
    with pytest.raises(BackendError, match="'nowhere' is not a cluster/namespace/workload id"):
        build_snapshot(
            generated_at=AT, window_s=60, workloads=[A], routes=(), sources={},
            edges=[*edges, Edge(A.id, "nowhere", EdgeStats())],
        )  # fmt: skip


def test_a_snapshots_edge_ends_are_listed_once_in_the_edges_order() -> None:
    s = _snapshot([A, B])
    assert s.ends == ([A.id, B.id], [B.id, "k/shop/gone"])
    assert s.ends is s.ends  # made once: the views, the grades and the history share it
