"""The graph layout: boxes never overlap, lines never cross a box, namespaces are bands,
a change of numbers moves nothing, and a node that comes or goes leaves the rest put."""

from __future__ import annotations

import asyncio
import itertools

import networkx as nx
import pytest

from meshtop.layout import Box, Layout, Ranking, back_edges, drawn, layout, ranking
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated


def _lay(snapshot: MeshSnapshot, previous: Layout | None = None) -> Layout:
    return layout(
        snapshot.nodes,
        (e.key for e in snapshot.edges),
        label=lambda n: snapshot.nodes[n].label,
        group=lambda n: snapshot.nodes[n].namespace,
        previous=previous,
    )


def _check(lay: Layout, edges: list[tuple[str, str]]) -> None:
    boxes = sorted(lay.nodes.items(), key=lambda item: (item[1].x, item[1].y))
    for (a, ba), (b, bb) in itertools.pairwise(boxes):  # same column: sorted by y
        assert not ba.overlaps(bb), (a, b)
    for g1, g2 in itertools.combinations(lay.groups.values(), 2):
        assert not g1.overlaps(g2)
    occupied = {
        (x, y): n
        for n, b in lay.nodes.items()
        for x in range(b.x, b.right + 1)
        for y in range(b.y, b.bottom + 1)
    }
    for (u, v), points in ((e, lay.routes[e]) for e in edges):
        src, dst = lay.nodes[u], lay.nodes[v]
        # a line leaves its source's side and ends at its destination's side
        assert points[0][0] in (src.right + 1, src.x - 1) and src.y < points[0][1] < src.bottom
        assert points[-1][0] in (dst.x - 1, dst.right + 1) and dst.y < points[-1][1] < dst.bottom
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            assert x0 == x1 or y0 == y1, "orthogonal segments only"
            cells = (
                [(x, y0) for x in range(min(x0, x1), max(x0, x1) + 1)]
                if y0 == y1
                else [(x0, y) for y in range(min(y0, y1), max(y0, y1) + 1)]
            )
            for cell in cells:
                assert cell not in occupied, f"{u}->{v} crosses {occupied[cell]} at {cell}"
    # no two lines end on the same cell: every line has a port of its own
    ends = [points[-1] for points in lay.routes.values()]
    assert len(ends) == len(set(ends))


@pytest.fixture(scope="module")
def mesh() -> MeshSnapshot:
    sim = Simulation(generated(300, seed=4), clock=lambda: 1.8e9)
    return asyncio.run(refresh(sim.clusters))


def test_bookinfo_flows_left_to_right(sim: Simulation) -> None:
    snapshot = asyncio.run(refresh(sim.clusters))
    used = {n for e in snapshot.edges for n in e.key}
    snap = MeshSnapshot(snapshot.generated_at, 60, {n: snapshot.nodes[n] for n in used},
                        snapshot.edges, (), {})  # fmt: skip
    lay = _lay(snap)
    x = {n.split("/")[-1]: b.x for n, b in lay.nodes.items()}
    assert x["istio-ingressgateway"] < x["productpage-v1"] < x["reviews-v2"] < x["ratings-v1"]
    assert x["reviews-v1"] == x["reviews-v2"] == x["reviews-v3"] == x["details-v1"]
    _check(lay, [e.key for e in snap.edges])
    # namespaces are bands that hold their nodes
    for node_id, box in lay.nodes.items():
        band = lay.groups[snap.nodes[node_id].namespace]
        assert band.contains(box.x, box.y) and band.contains(box.right, box.bottom)


def test_a_generated_mesh_has_no_overlaps_and_no_line_through_a_box(mesh: MeshSnapshot) -> None:
    _check(_lay(mesh), [e.key for e in mesh.edges])


def test_cycles_are_drawn_too() -> None:
    nodes = ["c/a/x", "c/a/y", "c/a/z"]
    edges = [("c/a/x", "c/a/y"), ("c/a/y", "c/a/z"), ("c/a/z", "c/a/x")]
    lay = layout(nodes, edges, label=lambda n: n, group=lambda n: "a")
    _check(lay, edges)
    assert set(lay.routes) == set(edges)


def test_same_topology_same_layout_whatever_the_numbers(mesh: MeshSnapshot) -> None:
    first = _lay(mesh)
    again = _lay(mesh)
    assert first.nodes == again.nodes and first.routes == again.routes
    assert Layout.topology_key(mesh.nodes, [e.key for e in mesh.edges]) == Layout.topology_key(
        reversed(list(mesh.nodes)), [e.key for e in reversed(mesh.edges)]
    )


def test_a_node_that_goes_leaves_the_others_in_order(mesh: MeshSnapshot) -> None:
    before = _lay(mesh)
    leaf = next(
        n for n in mesh.nodes if mesh.graph.out_degree(n) == 0 and mesh.graph.in_degree(n) == 1
    )
    edges = [e for e in mesh.edges if leaf not in e.key]
    nodes = {n: w for n, w in mesh.nodes.items() if n != leaf}
    after = _lay(MeshSnapshot(mesh.generated_at, 60, nodes, tuple(edges), (), {}), previous=before)
    assert after.group_order == before.group_order
    moved = 0
    for n in nodes:
        if n in before.order and before.order[n][0] != after.order[n][0]:
            moved += 1  # a layer change would be a real jump
    assert moved == 0
    # within each band and layer, the survivors keep their relative order
    for key in {(mesh.nodes[n].namespace, before.order[n][0]) for n in nodes}:
        members = [n for n in nodes if (mesh.nodes[n].namespace, before.order[n][0]) == key]
        assert sorted(members, key=lambda n: before.order[n][1]) == sorted(
            members, key=lambda n: after.order[n][1]
        )


def test_box_geometry() -> None:
    a, b = Box(0, 0, 5, 3), Box(5, 0, 5, 3)
    assert not a.overlaps(b) and a.right == 4 and a.contains(4, 2) and not a.contains(5, 0)


def test_a_thousand_services_lay_out_cleanly() -> None:
    """Structure at scale: every node and edge placed, no overlaps, no line through a box."""
    sim = Simulation(generated(1000, seed=2), clock=lambda: 1.8e9)
    snapshot = asyncio.run(refresh(sim.clusters))
    lay = _lay(snapshot)
    used = {n for e in snapshot.edges for n in e.key}
    assert used <= set(lay.nodes)
    assert set(lay.routes) == {e.key for e in snapshot.edges}
    _check(lay, [e.key for e in snapshot.edges])
    # every node in its namespace's band, the bands one under another
    for n in used:
        band = lay.groups[snapshot.nodes[n].namespace]
        assert band.y < lay.nodes[n].y and lay.nodes[n].bottom < band.bottom


def _ranked(nodes: list[str], edges: list[tuple[str, str]]) -> tuple[Ranking, Layout]:
    """The ranking of the drawn graph, and the layout built on it (one band)."""
    return ranking(drawn(nodes, edges)), layout(nodes, edges, label=str, group=lambda n: "ns")


def test_a_cycle_turns_its_back_edge_and_ranks_from_the_first_node_by_name() -> None:
    ranked, lay = _ranked(["z", "y", "x"], [("z", "x"), ("y", "z"), ("x", "y")])
    assert ranked.turned == {("z", "x")}  # the search from x, the first by name, returns
    assert ranked.layer == {"x": 0, "y": 1, "z": 2}
    assert ranked.dag == [("x", "y"), ("y", "z"), ("x", "z")]
    assert {n: lay.order[n][0] for n in "xyz"} == ranked.layer
    # the turned edge is still drawn from z to x: its chain backwards, from z's left side
    # to x's right side
    points = lay.routes[("z", "x")]
    assert points[0][0] == lay.nodes["z"].x - 1 and points[-1][0] == lay.nodes["x"].right + 1


def test_a_two_way_call_turns_the_later_direction() -> None:
    ranked, lay = _ranked(["a", "b"], [("b", "a"), ("a", "b")])
    assert ranked.turned == {("b", "a")} and ranked.layer == {"a": 0, "b": 1}
    assert set(lay.routes) == {("a", "b"), ("b", "a")}


def test_a_self_loop_is_not_drawn_and_ranks_nothing() -> None:
    g = nx.DiGraph([("a", "a"), ("a", "b")])
    assert back_edges(g) == {("a", "a")}  # to the search, a back edge like any other
    ranked = ranking(g)
    assert ranked.layer == {"a": 0, "b": 1} and not ranked.turned
    assert ranked.edges == ranked.dag == [("a", "b")]
    assert list(drawn(["a", "b"], [("a", "a"), ("a", "b")]).edges) == [("a", "b")]
    with_loop = layout(["a", "b"], [("a", "a"), ("a", "b")], label=str, group=str)
    without = layout(["a", "b"], [("a", "b")], label=str, group=str)
    assert with_loop == without and ("a", "a") not in with_loop.routes


def test_two_components_each_start_at_the_left() -> None:
    ranked, lay = _ranked(["p", "q", "r", "s", "t"], [("s", "t"), ("p", "q"), ("q", "r")])
    assert ranked.layer == {"p": 0, "q": 1, "r": 2, "s": 0, "t": 1}
    assert not ranked.turned
    assert lay.nodes["s"].x == lay.nodes["p"].x and lay.nodes["t"].x == lay.nodes["q"].x


def test_a_diamond_ranks_by_longest_path_and_a_shortcut_runs_through_a_dummy_slot() -> None:
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("a", "d"), ("c", "b")]
    ranked, lay = _ranked(["a", "b", "c", "d"], edges)
    # c -> b puts b a layer right of c, and d right of b: the longest path, not the shortest
    assert ranked.layer == {"a": 0, "c": 1, "b": 2, "d": 3} and not ranked.turned
    # a -> d crosses two layers: three hops through two dummy slots, each hop with a
    # column where it leaves, one where it turns in the gap, one where it enters
    xs = {x for x, _ in lay.routes[("a", "d")]}
    assert len(xs) == 9 and min(xs) == lay.nodes["a"].right + 1 and max(xs) == lay.nodes["d"].x - 1
    assert [lay.order[n][0] for n in "abcd"] == [0, 2, 1, 3]


def test_the_snapshots_own_graph_ranks_as_the_layout_lays_out(sim: Simulation) -> None:
    snapshot = asyncio.run(refresh(sim.clusters))
    ranked = ranking(snapshot.graph)  # nodes in the snapshot's order, with the idle ones
    lay = _lay(snapshot)
    assert {n: lay.order[n][0] for n in snapshot.nodes} == ranked.layer
    assert not ranked.turned and len(ranked.edges) == len(snapshot.edges)
