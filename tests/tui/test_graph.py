"""The topology graph, driven as a user drives it."""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any

import pytest
from textual.geometry import Size

from meshtop.config import Settings
from meshtop.connect import Sources
from meshtop.graphview import Grouping, ViewOptions, apply_filter, build, focus
from meshtop.mesh import refresh
from meshtop.sim.sources import Simulation
from meshtop.sources.protocols import ClusterSources
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.detail import DetailScreen
from meshtop.tui.widgets.edge_table import EdgeTable
from meshtop.tui.widgets.graph import GraphCanvas, _Index, fit, index_for

from ..conftest import Clock, only
from .test_console import _edges_tab, _first_snapshot, keys, settled, until

PAGE = "Kubernetes/bookinfo/app:productpage:v1"
V3 = "Kubernetes/bookinfo/app:reviews:v3"


def _canvas(app: MeshtopApp) -> GraphCanvas:
    return app.query_one(GraphCanvas)


def _screen_text(app: MeshtopApp) -> str:
    canvas = _canvas(app)
    return "\n".join(canvas.render_line(y).text for y in range(canvas.size.height))


async def test_the_graph_draws_bookinfo(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    # room for the full boxes of the demo and the VM's namespace (issue 22)
    async with app.run_test(size=(170, 60)) as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        text = _screen_text(app)
        for label in (
            "istio-ingressgateway",
            "productpage v1",
            "reviews v3",
            "ratings v1",
            "─ bookinfo ",
        ):
            assert label in text
        assert "┏━━" in text  # reviews v3 fails: a heavy border, which needs no colour
        assert "▶" in text and "🔒" in text


async def test_a_change_of_numbers_moves_no_box(sim: Simulation, clock: Clock) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        before = dict(_canvas(app).layout_.nodes)  # type: ignore[union-attr]
        layout_before = _canvas(app).layout_
        clock.advance(90)
        sim.set_weights("bookinfo", "reviews", {"v1": 40, "v2": 40, "v3": 20})
        await keys(pilot, "r")
        await settled(pilot)
        assert _canvas(app).layout_ is layout_before  # not even recomputed
        assert dict(_canvas(app).layout_.nodes) == before  # type: ignore[union-attr]


async def test_keys_move_the_selection_along_the_calls(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        canvas = _canvas(app)
        canvas.select(PAGE)
        await keys(pilot, "l")  # along a call, to one of productpage's callees
        assert canvas.node is not None and canvas.node != PAGE
        callee = canvas.node
        assert (PAGE, callee) in canvas.view.edges  # type: ignore[union-attr]
        await keys(pilot, "j")  # down the column
        assert canvas.node != callee
        await keys(pilot, "h")  # back along a call
        assert canvas.node == PAGE
        await keys(pilot, "tab")
        assert canvas.edge is not None and PAGE in canvas.edge
        await keys(pilot, "enter")  # the canvas asks the app to open the call
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the call's detail")
        await keys(pilot, "escape")
        assert not isinstance(app.screen, DetailScreen)


async def test_selection_is_shared_with_the_edge_table(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        canvas = _canvas(app)
        canvas.select(PAGE, (PAGE, V3))
        await _edges_tab(pilot)
        table = app.query_one(EdgeTable)
        row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        assert row == "Kubernetes/bookinfo/productpage-v1>Kubernetes/bookinfo/reviews-v3"


async def test_filter_focus_and_commands(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock), settings=Settings(refresh_s=60))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        await keys(pilot, "slash")
        await keys(pilot, *"error>5%", "enter")
        assert set(_canvas(app).view.nodes) == {PAGE, V3}  # type: ignore[union-attr]
        await keys(pilot, "escape")  # clears the filter
        assert len(_canvas(app).view.nodes) > 2  # type: ignore[union-attr]
        await keys(pilot, "colon")
        await keys(pilot, *"focus ratings 1", "enter")
        names = {n.label for n in _canvas(app).view.nodes.values()}  # type: ignore[union-attr]
        assert names == {"ratings v1", "reviews v2", "reviews v3"}
        await keys(pilot, "colon")
        await keys(pilot, *"graph app", "enter")
        assert app.main.graph.options.grouping is Grouping.APP
        assert "Kubernetes/bookinfo/app:reviews" in _canvas(app).view.nodes  # type: ignore[union-attr]
        await keys(pilot, "colon")
        await keys(pilot, *"frobnicate", "enter")
        assert "unknown command :frobnicate" in str(app.query_one("#notice").render())
        assert app.is_running
        await keys(pilot, "slash")
        await keys(pilot, *"error>lots", "enter")
        assert "'lots' is not a number" in str(app.query_one("#notice").render())
        await keys(pilot, "colon")
        await keys(pilot, *"theme meshtop-colorblind", "enter")
        assert app.theme == "meshtop-colorblind"


async def test_labels_grouping_and_collapse_keys(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        await keys(pilot, "t")
        assert _canvas(app).label_mode == "errors"
        assert "11.14% 🔒" in _screen_text(app) or "%" in _screen_text(app)
        _canvas(app).select(PAGE)
        await keys(pilot, "c")  # bookinfo collapses into one box
        assert "Kubernetes/bookinfo/*" in _canvas(app).view.nodes  # type: ignore[union-attr]
        await keys(pilot, "c")
        assert PAGE in _canvas(app).view.nodes  # type: ignore[union-attr]
        await keys(pilot, "g")
        assert app.main.graph.options.grouping is Grouping.APP


async def test_a_click_selects_a_box(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(170, 60)) as pilot:  # full boxes, as in the test above
        await _first_snapshot(app)
        await pilot.pause()
        canvas = _canvas(app)
        box = canvas.layout_.nodes[V3]  # type: ignore[union-attr]
        canvas.scroll_to(0, 0, animate=False)
        await pilot.pause()
        await pilot.click(GraphCanvas, offset=(box.x + 2, box.y + 1 - int(canvas.scroll_offset.y)))
        assert canvas.node == V3


def test_view_groups_filters_and_focuses(sim: Simulation) -> None:
    snapshot = asyncio.run(refresh(sim.clusters))
    workloads = build(snapshot, ViewOptions(grouping=Grouping.WORKLOAD))
    assert "Kubernetes/bookinfo/reviews-v3" in workloads.nodes
    apps = build(snapshot, ViewOptions(grouping=Grouping.APP))
    reviews = apps.edges[("Kubernetes/bookinfo/app:productpage", "Kubernetes/bookinfo/app:reviews")]
    parts = [
        snapshot.edge("Kubernetes/bookinfo/productpage-v1", f"Kubernetes/bookinfo/reviews-{v}")
        for v in ("v1", "v2", "v3")
    ]
    assert reviews.stats.rps == sum(p.stats.rps for p in parts)  # type: ignore[union-attr]
    assert reviews.stats.p99_ms == max(p.stats.p99_ms for p in parts)  # type: ignore[union-attr,type-var]
    plain = apply_filter(workloads, "mtls=false")
    assert {e.source for e in plain.edges.values()} == {
        "unknown/unknown/unknown",
        "Kubernetes/bookinfo/details-v1",
    }
    not_bookinfo = apply_filter(workloads, "!ns=bookinfo")
    assert all(
        v.namespace != "bookinfo" or any(v.id in k for k in not_bookinfo.edges)
        for v in not_bookinfo.nodes.values()
    )
    near = focus(workloads, ("Kubernetes/bookinfo/ratings-v1",), 2)
    assert "Kubernetes/bookinfo/productpage-v1" in near.nodes
    assert "Kubernetes/istio-system/istio-ingressgateway" not in near.nodes


def test_labels_shrink_to_fit_but_never_lose_their_unit_or_crossing() -> None:
    assert fit("12.3rps 🔒", 20) == "12.3rps 🔒"
    assert fit("12.3rps 🔒", 8) == "12.3rps"  # the mark goes first
    assert fit("25.6kB/s !", 9) == "25.6kB/s"
    assert fit("12.3rps !", 6) == ""  # a bare 12.3 would read as another unit: none
    assert fit("1.0rps 🔒⇄", 9) == "1.0rps ⇄"  # a crossing keeps its ⇄
    assert fit("1.0rps 🔒⇄", 7) == ""  # or has no label at all


async def test_a_large_graph_pans(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(80, 24)) as pilot:
        await _first_snapshot(app)
        app.main.set_zoom("full")  # Bookinfo's compact graph fits 80x24: its boxes do not
        await pilot.pause()
        canvas = _canvas(app)
        canvas.scroll_to(0, 0, animate=False)
        await pilot.pause()
        await keys(pilot, "pagedown", "shift+right", "shift+right")
        assert canvas.scroll_offset.y > 0 and canvas.scroll_offset.x > 0
        await keys(pilot, "home")
        assert canvas.scroll_offset.y == 0


def test_labels_never_cover_another_line_and_turns_never_share_a_column() -> None:
    import asyncio as aio

    from meshtop.layout import layout
    from meshtop.sim.topology import generated
    from meshtop.tui.widgets.graph import _index

    sim60 = Simulation(generated(60, seed=5), clock=lambda: 1.8e9)
    snap = aio.run(refresh(sim60.clusters))
    view = build(snap, ViewOptions())
    lay = layout(view.nodes, view.edges, label=lambda n: view.nodes[n].label,
                 group=lambda n: view.nodes[n].namespace)  # fmt: skip
    index = _index(lay)
    for y, spans in index.labels.items():
        for lo, hi, key in spans:
            for x in range(lo, hi + 1):
                bits_keys = index.lines.get(y, {}).get(x)
                assert bits_keys is None or bits_keys[1] == [key], (key, x, y)
    labelled = {key for spans in index.labels.values() for _, _, key in spans}
    # a label needs a stretch of its own with room; in a dense mesh most lines have one
    assert len(labelled) >= 0.9 * len(view.edges)
    # vertical runs: no two lines run down the same column over the same rows
    runs: dict[int, list[tuple[int, int, tuple[str, str]]]] = {}
    for key, points in lay.routes.items():
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            if x0 == x1 and y0 != y1:
                runs.setdefault(x0, []).append((min(y0, y1), max(y0, y1), key))
    for x, spans in runs.items():
        spans.sort()
        for (_, a1, ka), (b0, _, kb) in itertools.pairwise(spans):
            assert a1 < b0 or ka == kb, (x, ka, kb)


class SilentMetrics:
    """A backend that has not answered yet."""

    name = "slow"

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.gate = threading.Event()  # refreshes run in a worker thread, with a loop of their own

    async def traffic(self, window_s: float):  # type: ignore[no-untyped-def]
        while not self.gate.is_set():
            await asyncio.sleep(0.01)
        return await self.sim.metrics.traffic(window_s)


async def test_odd_input_never_takes_the_console_down(sim: Simulation) -> None:
    metrics = SilentMetrics(sim)
    app = MeshtopApp(
        Sources(ClusterSources.one(metrics, sim.control_plane), False, sim.clock),
        settings=Settings(timeout_s=30),
    )
    async with app.run_test(size=(120, 40)) as pilot:
        # before the first snapshot: a condition that cannot be, then the data arrives
        await keys(pilot, "slash", *"rps>x", "enter")
        assert "'x' is not a number" in str(app.query_one("#notice").render())
        await keys(pilot, "slash", *"rps>", "enter")
        assert "is not a condition" in str(app.query_one("#notice").render())
        await keys(pilot, "enter")  # nothing selected yet
        metrics.gate.set()
        await _first_snapshot(app)
        await pilot.pause()
        for line in ("focus productpage \u00b2", "focus", "graph", "labels x", "theme", "ns"):
            await keys(pilot, "colon", *line, "enter")
        await keys(pilot, "slash", *"(.+)+!", "enter")  # text, not a pattern: no hang
        assert app.is_running
        # text, not markup: said back as typed, where a closing tag took the console down
        await keys(pilot, "colon", *"focus [/x] [bold]", "enter")
        assert "[/x] [bold]" in str(app.query_one("#notice").render())
        assert app.is_running


async def test_inverted_words_exclude_and_focus_takes_labels(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock), settings=Settings(refresh_s=60))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        await keys(pilot, "slash", *"!reviews", "enter")
        labels = {v.label for v in _canvas(app).view.nodes.values()}  # type: ignore[union-attr]
        assert not any(label.startswith("reviews") for label in labels)
        assert "productpage v1" in labels
        await keys(pilot, "escape")
        await keys(pilot, "colon", *"focus reviews v3 1", "enter")
        assert app.main.graph.options.focus == ((V3,), 1)
        await keys(pilot, "slash", *"details", "enter")  # hides the focused node: focus goes
        assert app.main.graph.options.focus is None and app.main.graph.options.filter == "details"
        await keys(pilot, "escape")
        _canvas(app).select("unknown/unknown/unknown")
        await keys(pilot, "c")
        assert app.main.graph.options.collapsed == set()
        assert "no namespace to collapse" in str(app.query_one("#notice").render())


async def test_focus_on_an_app_takes_all_its_versions(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock), settings=Settings(refresh_s=60))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        await keys(pilot, "colon", *"focus reviews 2", "enter")
        assert (
            app.main.graph.options.focus is not None and len(app.main.graph.options.focus[0]) == 3
        )
        labels = {v.label for v in _canvas(app).view.nodes.values()}  # type: ignore[union-attr]
        assert {"reviews v1", "reviews v2", "reviews v3", "ratings v1", "productpage v1"} <= labels
        assert "www.googleapis.com" not in labels  # three calls away


async def test_layouts_kept_for_going_back_are_bounded(sim: Simulation) -> None:
    """Each terminal width is a view shape with its own layout; a long session of resizes
    keeps only the most recent few, not one per width ever seen."""
    from meshtop.tui.placement import SHAPES_KEPT

    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(80, 24)) as pilot:
        await _first_snapshot(app)
        for width in range(81, 81 + 3 * SHAPES_KEPT):
            await pilot.resize_terminal(width, 30)
            app.main.redraw_graph()
        assert 0 < len(app.main.graph.placement.seen) <= SHAPES_KEPT


def _drawn_rows(canvas: GraphCanvas) -> list[int]:
    """Count the rows the canvas draws (not those it takes from its cache) from now on."""
    drawn: list[int] = []
    render = canvas._render_row

    def counted(row: int, x0: int, width: int) -> object:
        drawn.append(row)
        return render(row, x0, width)

    canvas._render_row = counted  # type: ignore[method-assign]
    return drawn


async def test_a_selection_draws_again_only_its_rows_and_draws_them_right(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: a key that moves the selection drew every row on screen again (43 at
    160x48, 1 ms each at 2,000 services); the rows of the box and line it leaves and
    those of the ones it goes to are enough, and the screen is as a full drawing's. A
    row's lines change only with the layout, their colours with every selection: those
    rows are coloured again from the lines kept, none worked out anew (a hub's selection
    at 2,000 services draws every row again: 17 ms a screen on the middle machine, 3 with
    the lines kept)."""
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        canvas = _canvas(app)
        canvas.select(PAGE)
        await pilot.pause()
        worked_out: list[int] = []
        real = _Index.cells

        def counted(index: _Index, y: int, x0: int, x1: int) -> Any:
            worked_out.append(y)
            return real(index, y, x0, x1)

        monkeypatch.setattr(_Index, "cells", counted)
        drawn = _drawn_rows(canvas)
        height = canvas.scrollable_content_region.height
        for key in ("l", "tab", "tab", "j", "h", "tab"):
            before = len(drawn)
            await keys(pilot, key)
            assert 0 < len(drawn) - before < height, f"{key}: {len(drawn) - before} rows"
        assert worked_out == []  # coloured again from the lines kept
        assert canvas.edge is not None
        sx, sy = canvas.scroll_offset
        width = canvas.scrollable_content_region.width
        shown = [canvas.render_line(y) for y in range(height)]
        assert canvas.view is not None and canvas.layout_ is not None
        kept, canvas._index = canvas._index, index_for(canvas.view, canvas.layout_)
        try:  # each row as a full drawing from an index made anew draws it
            assert shown == [canvas._render_row(y + sy, sx, width) for y in range(height)]
        finally:
            canvas._index = kept


async def test_the_focus_leaving_the_graph_draws_none_of_its_rows_again(
    sim: Simulation,
) -> None:
    """Issue 17: `/` moved the focus to the prompt, which restyled the canvas and threw
    its drawn rows away: every row drawn again for a key that changes none of them."""
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        canvas = _canvas(app)
        drawn = _drawn_rows(canvas)
        await keys(pilot, "slash")
        assert not canvas.has_focus
        await keys(pilot, "escape")
        assert canvas.has_focus
        assert drawn == []
        app.theme = "textual-light"  # a colour that changes: drawn again in it
        await pilot.pause()
        assert len(drawn) >= canvas.scrollable_content_region.height - 1


def test_a_large_mesh_at_namespaces_builds_its_view_once_per_drawing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 17: each refresh of a large mesh drawn at the namespaces level built the
    workloads' view (its largest), then the level's twice; the level's once is what is
    drawn, and the same view and layout come of it."""
    from meshtop.health import DEFAULT_THRESHOLDS
    from meshtop.sim.topology import generated
    from meshtop.tui import graph_state, placement
    from meshtop.tui.graph_state import GraphState

    sim = Simulation(generated(1000, seed=1), clock=lambda: 1.8e9)
    snapshot = asyncio.run(refresh(sim.clusters))
    assert len(snapshot.nodes) > placement.OPEN_AT_NAMESPACES
    built: list[ViewOptions] = []

    def counted(snapshot: object, options: ViewOptions, memory: object = None) -> object:
        built.append(options)
        return build(snapshot, options, memory)  # type: ignore[arg-type]

    size = Size(160, 43)
    state = GraphState(DEFAULT_THRESHOLDS)
    monkeypatch.setattr(graph_state, "build", counted)
    monkeypatch.setattr(placement, "build", counted)
    view, lay, told = state.draw(snapshot, size)
    assert state.placement.zoom_shown == "namespaces"
    assert len(built) == 1 and built[0].collapsed  # every namespace as one box
    # what was drawn before: the level's view, with the console's memory, laid out
    monkeypatch.undo()
    level = placement.level_options(state.options, snapshot, "namespaces")
    assert view == build(snapshot, level, state.memory)
    assert set(lay.nodes) == set(view.nodes) and told == ""


def test_another_grouping_at_the_namespaces_level_lays_out_nothing_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 17: `g` on a large mesh drawn at the namespaces level laid the same boxes
    out again for each grouping (1.5 s at 20,000 services, in the worker, each refresh
    after it waiting): every box there is a whole namespace, which no grouping names."""
    from meshtop.health import DEFAULT_THRESHOLDS
    from meshtop.sim.topology import generated
    from meshtop.tui import placement
    from meshtop.tui.graph_state import GraphState

    sim = Simulation(generated(1000, seed=1), clock=lambda: 1.8e9)
    snapshot = asyncio.run(refresh(sim.clusters))
    state = GraphState(DEFAULT_THRESHOLDS)
    size = Size(160, 43)
    first, lay, _ = state.draw(snapshot, size)
    assert state.placement.zoom_shown == "namespaces"
    laid: list[object] = []
    real = placement.layout

    def counted(*args: object, **kwargs: object) -> object:
        laid.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(placement, "layout", counted)
    for grouping in (Grouping.APP, Grouping.WORKLOAD, Grouping.SERVICE, Grouping.VERSIONED_APP):
        state.options.grouping = grouping
        view, again, _ = state.draw(snapshot, size)
        assert again is lay and view.nodes == first.nodes  # the same boxes, where they were
    assert laid == []


async def test_finds_marks_are_drawn_on_every_row_when_the_selection_moves_to_one(
    sim: Simulation,
) -> None:
    """A selection draws again only its rows (issue 17), but find's marks are set with it:
    every match's row is drawn with its mark, not only the selected one's."""
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        canvas = _canvas(app)
        canvas.select(PAGE)
        await pilot.pause()
        found = [n for n in canvas.view.nodes if "reviews" in n]  # type: ignore[union-attr]
        canvas.matches = frozenset(found)
        canvas.select(found[0])
        await pilot.pause()
        sx, sy = canvas.scroll_offset
        width = canvas.scrollable_content_region.width
        for y in range(canvas.scrollable_content_region.height):
            assert canvas.render_line(y) == GraphCanvas._render_row(canvas, y + sy, sx, width)


async def test_down_from_a_box_alone_in_its_column_goes_to_the_nearest_box_below(
    sim: Simulation,
) -> None:
    """A box alone in its column (a namespace at the namespaces level often is) was a dead
    end for `j` and `k`: the key did nothing. It goes on to the nearest box that way."""
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        canvas = _canvas(app)
        boxes = canvas.layout_.nodes  # type: ignore[union-attr]
        alone = [n for n, b in boxes.items() if all(o.x != b.x for m, o in boxes.items() if m != n)]
        assert alone, "Bookinfo's graph has a box alone in its column"
        start = min(alone, key=lambda n: boxes[n].y)
        here = boxes[start]
        below = [n for n, b in boxes.items() if b.y > here.bottom]
        assert below
        canvas.select(start)
        await keys(pilot, "j")
        nearest = min(below, key=lambda n: (boxes[n].y - here.y, abs(boxes[n].x - here.x)))
        assert canvas.node == nearest
        await keys(pilot, "k")  # and back up, to the nearest box above it
        above = boxes[nearest]
        up = [n for n, b in boxes.items() if b.bottom < above.y]
        same_column = [n for n in up if boxes[n].x == above.x]
        expected = (
            max(same_column, key=lambda n: boxes[n].y)
            if same_column
            else min(up, key=lambda n: (above.y - boxes[n].y, abs(boxes[n].x - above.x)))
        )
        assert canvas.node == expected
