"""The console over a mesh of two clusters (the simulated one, `meshtop demo --clusters
2`): cluster boxes around namespace bands, calls between clusters marked, `:cluster`,
collapsing a cluster, the routes of every cluster with copies that differ flagged, and
the shift dialog changing every copy, each at its own version."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable
from textual.widgets._data_table import ColumnKey

from meshtop.connect import Sources
from meshtop.model import Route
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, spread
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.shift import ShiftScreen
from meshtop.tui.widgets.edge_table import EdgeTable
from meshtop.tui.widgets.graph import CROSS, GraphCanvas, edge_label

from ..conftest import Clock, only
from .test_console import _edges_tab, _first_snapshot, keys, settled, undo


def two_clusters(clock: Clock) -> Simulation:
    return Simulation(spread(bookinfo(), ("east", "west")), clock=clock)


def _app(sim: Simulation) -> MeshtopApp:
    return MeshtopApp(Sources(only(sim.clusters, writable=True), True, sim.clock))


def _weights(sim: Simulation, cluster: str) -> list[int]:
    return [d.weight for d in sim.route("bookinfo", "reviews", cluster).rules[0].destinations]


async def test_clusters_are_boxes_round_their_namespaces_and_crossings_are_marked(
    clock: Clock,
) -> None:
    app = _app(two_clusters(clock))
    async with app.run_test(size=(160, 48)):
        await _first_snapshot(app)
        assert app.main.graph.view is not None and app.main.graph.placement.layout is not None
        lay = app.main.graph.placement.layout
        assert set(lay.clusters) == {"east", "west"}
        for group, box in lay.groups.items():
            cluster = group.partition("/")[0] if "/" in group else ""
            if cluster:  # a namespace band inside its cluster's box
                outer = lay.clusters[cluster]
                assert outer.x < box.x and box.right < outer.right
                assert outer.y < box.y and box.bottom < outer.bottom
        east, west = lay.clusters["east"], lay.clusters["west"]
        assert not east.overlaps(west)
        for node, box in lay.nodes.items():
            cluster = app.main.graph.view.nodes[node].cluster
            if cluster:
                assert lay.clusters[cluster].contains(box.x, box.y), node
        crossing = [e for e in app.main.graph.view.edges.values() if e.crosses]
        assert {(e.source, e.destination) for e in crossing} == {
            ("east/bookinfo/app:productpage:v1", "west/bookinfo/app:reviews:v2"),
            ("west/bookinfo/app:productpage:v1", "east/bookinfo/app:reviews:v3"),
        }
        assert all(edge_label(e, "rps").endswith(CROSS) for e in crossing)
        canvas = app.query_one(GraphCanvas)
        drawn = "\n".join(canvas.render_line(y).text for y in range(canvas.size.height))
        assert "cluster east" in drawn and "╔" in drawn


async def test_cluster_command_and_collapsing_a_cluster(clock: Clock) -> None:
    app = _app(two_clusters(clock))
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "colon", *"cluster west", "enter")
        assert app.main.graph.view is not None
        shown = {v.cluster for v in app.main.graph.view.nodes.values()}
        # west's nodes, the east nodes it calls or is called by, the host outside it calls
        assert shown == {"west", "east", ""}
        east_nodes = {n for n, v in app.main.graph.view.nodes.items() if v.cluster == "east"}
        assert east_nodes == {"east/bookinfo/app:productpage:v1", "east/bookinfo/app:reviews:v3"}
        await keys(pilot, "colon", *"cluster north", "enter")
        assert "no cluster 'north'" in str(app.query_one("#notice").render())
        await keys(pilot, "colon", *"cluster all", "enter")
        await keys(pilot, "colon", *"collapse cluster east", "enter")
        assert app.main.graph.view is not None
        east = app.main.graph.view.nodes["east/*/*"]
        assert east.label == "east (all)" and len(east.members) > 5
        assert not any(n.startswith("east/bookinfo") for n in app.main.graph.view.nodes)
        # a call from west into the collapsed east still shows, marked as crossing
        into = app.main.graph.view.edges[("west/bookinfo/app:productpage:v1", "east/*/*")]
        assert into.crosses
        canvas = app.query_one(GraphCanvas)
        canvas.select("west/bookinfo/app:productpage:v1")
        await keys(pilot, "C")  # west too, by key
        assert set(app.main.graph.view.nodes) >= {"east/*/*", "west/*/*"}
        status = str(app.query_one("#status").render())
        assert "collapsed east,west" in status or "▣east,west" in status


async def test_routes_of_each_cluster_with_copies_that_differ_flagged(clock: Clock) -> None:
    app = _app(two_clusters(clock))
    async with app.run_test(size=(160, 40)) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "3")
        await settled(pilot)
        table = app.query_one("#routes", DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        heads = [r[0] for r in rows if r[0]]
        assert "east: VirtualService bookinfo/reviews" in heads
        assert "west: VirtualService bookinfo/reviews" in heads
        flagged = {(r[3], r[4], r[7]) for r in rows if r[7]}
        assert flagged == {
            ("reviews v1", "70", "west has 80"),
            ("reviews v2", "20", "west has 10"),
            ("reviews v1", "80", "east has 70"),
            ("reviews v2", "10", "east has 20"),
        }


async def _shift_west_reviews(app: MeshtopApp, pilot: Pilot[None]) -> ShiftScreen:
    await keys(pilot, "3")
    await settled(pilot)
    table = app.query_one("#routes", DataTable)
    row = next(
        i for i in range(table.row_count)
        if str(table.get_row_at(i)[0]) == "west: VirtualService bookinfo/reviews"
    )  # fmt: skip
    table.move_cursor(row=row)
    await keys(pilot, "w")
    await settled(pilot)
    screen = app.screen
    assert isinstance(screen, ShiftScreen) and screen.route.cluster == "west"
    return screen


async def _every_copy(app: MeshtopApp, pilot: Pilot[None]) -> ShiftScreen:
    """The dialog on west's copy, with `A` pressed: every other copy read now."""
    screen = await _shift_west_reviews(app, pilot)
    await keys(pilot, "A")
    await settled(pilot)
    return screen


async def test_the_shift_dialog_changes_every_copy_and_undo_takes_all_back(
    clock: Clock,
) -> None:
    sim = two_clusters(clock)
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        screen = await _every_copy(app, pilot)
        await keys(pilot, "right_square_bracket", "enter")  # v1 +10
        assert screen.everywhere and screen.split.weights == (90, 0, 10)
        await keys(pilot, "y")
        await settled(pilot)
        assert not isinstance(app.screen, ShiftScreen)
        assert _weights(sim, "east") == [90, 0, 10] and _weights(sim, "west") == [90, 0, 10]
        assert "in east, west" in str(app.query_one("#notice").render())
        await undo(pilot)
        await settled(pilot)
        assert _weights(sim, "east") == [70, 20, 10] and _weights(sim, "west") == [80, 10, 10]
        log = Path(os.environ["XDG_STATE_HOME"]) / "meshtop" / "audit.jsonl"
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        applied = [(e["by"], e["context"].split()[1]) for e in lines if e["outcome"] == "applied"]
        assert applied[:2] == [("console", "east"), ("console", "west")]
        assert sorted(applied[2:]) == [("undo", "east"), ("undo", "west")]


async def test_a_copy_changed_underneath_is_said_and_the_other_applies(clock: Clock) -> None:
    sim = two_clusters(clock)
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        screen = await _every_copy(app, pilot)  # every other copy is read now
        assert set(screen.known) == {"east", "west"}
        await keys(pilot, "right_square_bracket", "enter")
        sim.set_weights("bookinfo", "reviews", {"v1": 60, "v2": 30, "v3": 10}, cluster="east")
        await keys(pilot, "y")
        await settled(pilot)
        assert _weights(sim, "west") == [90, 0, 10]
        assert _weights(sim, "east") == [60, 30, 10]  # the other writer's change stands
        assert isinstance(app.screen, ShiftScreen)  # the dialog stays, saying what happened
        assert screen.message.startswith("applied in west; NOT in east")
        assert any(line.startswith("east: conflict") for line in screen.progress)
        assert "reading every copy" not in screen.message
        # every copy read again: east, as the other writer left it, can be done now
        assert screen.known["east"].resource_version == "2"
        await keys(pilot, "enter")
        assert screen.reviewing  # west has these weights, east not yet
        await keys(pilot, "y")
        await settled(pilot)
        assert not isinstance(app.screen, ShiftScreen)
        assert _weights(sim, "east") == [90, 0, 10] and _weights(sim, "west") == [90, 0, 10]
        assert [p.route.cluster for p in app.main.changes.last_plans] == ["west", "east"]
        notice = str(app.query_one("#notice").render())
        assert "in west, east: v1=90,v2=0,v3=10; :undo" in notice


async def test_this_copy_alone_after_every_copy_is_undone_too(clock: Clock) -> None:
    sim = two_clusters(clock)
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        screen = await _every_copy(app, pilot)
        sim.set_weights("bookinfo", "reviews", {"v1": 60, "v2": 30, "v3": 10}, cluster="east")
        await keys(pilot, "right_square_bracket", "enter", "y")  # west 90, east in conflict
        await settled(pilot)
        await keys(pilot, "A", "right_square_bracket", "enter", "y")  # west alone, to 100
        await settled(pilot)
        assert not isinstance(app.screen, ShiftScreen) and not screen.everywhere
        assert _weights(sim, "west") == [100, 0, 0] and _weights(sim, "east") == [60, 30, 10]
        assert "in west: v1=100,v2=0,v3=0" in str(app.query_one("#notice").render())
        await undo(pilot)
        await settled(pilot)
        assert _weights(sim, "west") == [80, 10, 10]  # both of its writes taken back
        assert _weights(sim, "east") == [60, 30, 10]


async def test_a_cluster_that_is_not_there_is_said_and_the_console_goes_on(clock: Clock) -> None:
    app = _app(two_clusters(clock))
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        # as `:cluster nope` before the first refresh leaves it (nothing to check it by),
        # or a cluster that has since dropped out of the snapshot
        app.main.graph.options.cluster = "nope"
        await keys(pilot, "r")
        await settled(pilot)
        assert app.is_running and app.main.graph.options.cluster == ""
        view = app.main.graph.view
        assert view is not None and {v.cluster for v in view.nodes.values()} >= {
            "east", "west",
        }  # fmt: skip
        assert "no cluster 'nope' in the graph" in str(app.query_one("#notice").render())


async def test_a_copy_flagger_steers_is_left_alone_by_every_copy(clock: Clock) -> None:
    sim = two_clusters(clock)
    east = sim.planes["east"]
    read = east.read

    async def steered(kind: str, namespace: str, name: str) -> tuple[Route, dict[str, Any]]:
        route, obj = await read(kind, namespace, name)  # as read from a Flagger-owned object
        return replace(route, steered_by=f"Flagger (Canary {name})"), obj

    east.read = steered  # type: ignore[method-assign]
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        screen = await _every_copy(app, pilot)
        assert set(screen.known) == {"west"}
        assert "east: steered by Flagger (Canary reviews): left alone" in screen.message
        await keys(pilot, "right_square_bracket", "enter", "y")
        await settled(pilot)
        assert _weights(sim, "west") == [90, 0, 10]
        assert _weights(sim, "east") == [70, 20, 10]  # Flagger's, untouched
        assert screen.report.startswith("applied in west; NOT in east")


async def test_undo_goes_on_past_a_copy_that_changed_and_says_it(clock: Clock) -> None:
    sim = two_clusters(clock)
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _every_copy(app, pilot)
        await keys(pilot, "right_square_bracket", "enter", "y")
        await settled(pilot)
        assert _weights(sim, "east") == [90, 0, 10] and _weights(sim, "west") == [90, 0, 10]
        sim.set_weights("bookinfo", "reviews", {"v1": 50, "v2": 40, "v3": 10}, cluster="west")
        await undo(pilot)
        await settled(pilot)
        assert _weights(sim, "east") == [70, 20, 10]  # undone
        assert _weights(sim, "west") == [50, 40, 10]  # someone else's change stands
        said = str(app.query_one("#notice").render())
        assert "cannot undo: west: " in said and "undone in east" in said


async def test_the_edge_table_names_the_cluster_where_the_name_is_in_several(
    clock: Clock,
) -> None:
    app = _app(two_clusters(clock))
    async with app.run_test(size=(100, 30)) as pilot:  # no room for a cluster column
        await _first_snapshot(app)
        await _edges_tab(pilot)
        table = app.query_one(EdgeTable)
        cells = {str(table.get_row_at(i)[1]) for i in range(table.row_count)}
        cells |= {str(table.get_row_at(i)[2]) for i in range(table.row_count)}
        # productpage runs in both: its cluster says which; reviews-v3 runs in east only
        assert {"east/productpage-v1", "west/productpage-v1", "reviews-v3"} <= cells


async def test_a_wide_edge_table_says_the_cluster_in_a_column_of_its_own(
    clock: Clock,
) -> None:
    app = _app(two_clusters(clock))
    async with app.run_test(size=(160, 30)) as pilot:
        await _first_snapshot(app)
        await _edges_tab(pilot)
        table = app.query_one(EdgeTable)
        assert [str(c.label) for c in table.columns.values()][:4] == [
            "▼", "CLUSTER", "SOURCE", "DESTINATION"
        ]  # fmt: skip
        rows = {tuple(str(c) for c in table.get_row_at(i)[1:4]) for i in range(table.row_count)}
        # the names say no cluster: the column does, `west→east` for a call between two
        assert ("east", "productpage-v1", "reviews-v3") in rows
        assert ("west→east", "productpage-v1", "reviews-v3") in rows
        assert ("west", "productpage-v1", "details-v1") in rows
        assert not any("/" in name for row in rows for name in row[1:])
        assert table.sort_by("CLUSTER", descending=False) is None
        await settled(pilot)
        clusters = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert clusters == sorted(clusters)
        assert str(table.columns[ColumnKey("cluster")].label) == "CLUSTER ▲"


async def test_w_on_a_node_opens_its_own_clusters_copy(clock: Clock) -> None:
    app = _app(two_clusters(clock))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        canvas = app.query_one(GraphCanvas)
        for node, cluster in (("west/bookinfo/app:reviews:v1", "west"),
                              ("east/bookinfo/app:reviews:v1", "east")):  # fmt: skip
            canvas.select(node)
            await keys(pilot, "w")
            await settled(pilot)
            screen = app.screen
            assert isinstance(screen, ShiftScreen) and screen.route.cluster == cluster
            assert screen.split.names[screen.selected] == "v1"
            await keys(pilot, "escape")
