"""SVG snapshots of the console (pytest-textual-snapshot), kept in the top-level
`snapshots/` folder. After a deliberate change of the screen, look at the failing
report (`snapshot_report.html`), then accept the new pictures with
`.venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_textual_snapshot import SVGImageExtension
from textual.pilot import Pilot
from textual.widgets import Input

from meshtop.config import Settings
from meshtop.connect import Sources
from meshtop.errors import BackendError
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, spread
from meshtop.sources.protocols import ClusterSources
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.shift import ShiftScreen
from meshtop.tui.widgets.notice import Notice
from meshtop.tui.widgets.stat_table import StatTable

from ..conftest import ROOT, Clock, only
from .test_console import FlakyMetrics, _edges_tab, _first_snapshot, keys, settled, until
from .test_traces import drawn, listed

SNAPSHOTS = ROOT / "snapshots"


def _in_snapshots(cls: type, *, test_location: Any) -> str:
    """The design card fixes the folder: `snapshots/` at the top, not `__snapshots__/`."""
    return str(SNAPSHOTS)


SVGImageExtension.dirname = classmethod(_in_snapshots)  # type: ignore[assignment,method-assign]

Compare = Callable[..., bool]
Steps = Callable[[Pilot[None]], Awaitable[None]]


def _ready(app: MeshtopApp, then: Steps | None = None) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Before the picture: wait for the first snapshot, then run the user's steps."""

    async def run_before(pilot: Pilot[None]) -> None:
        await _first_snapshot(app)
        await pilot.pause()
        if then is not None:
            await then(pilot)
            await settled(pilot)

    return run_before


def _app(sim: Simulation, **kw: Any) -> MeshtopApp:
    return MeshtopApp(Sources(only(sim.clusters), True, sim.clock), **kw)


def test_bookinfo_120x30(snap_compare: Compare, sim: Simulation) -> None:
    app = _app(sim)
    assert snap_compare(app, terminal_size=(120, 30), run_before=_ready(app))


def test_bookinfo_80x24(snap_compare: Compare, sim: Simulation) -> None:
    app = _app(sim)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_ready(app))


def test_graph_160x48(snap_compare: Compare, sim: Simulation) -> None:
    app = _app(sim)
    assert snap_compare(app, terminal_size=(160, 48), run_before=_ready(app))


def test_help(snap_compare: Compare, sim: Simulation) -> None:
    app = _app(sim)

    async def steps(pilot: Pilot[None]) -> None:
        await keys(pilot, "question_mark")

    assert snap_compare(app, terminal_size=(100, 36), run_before=_ready(app, steps))


def test_edge_table(snap_compare: Compare, sim: Simulation) -> None:
    app = _app(sim)

    async def steps(pilot: Pilot[None]) -> None:
        await _edges_tab(pilot)

    assert snap_compare(app, terminal_size=(120, 30), run_before=_ready(app, steps))


def test_graph_filtered(snap_compare: Compare, sim: Simulation) -> None:
    app = _app(sim)

    async def steps(pilot: Pilot[None]) -> None:
        await keys(pilot, "slash", *"error>5%", "enter")

    assert snap_compare(app, terminal_size=(100, 30), run_before=_ready(app, steps))


def test_graph_focused(snap_compare: Compare, sim: Simulation) -> None:
    app = _app(sim)

    async def steps(pilot: Pilot[None]) -> None:
        await keys(pilot, "colon", *"focus ratings 1", "enter")

    assert snap_compare(app, terminal_size=(100, 30), run_before=_ready(app, steps))


def test_prompt_over_the_graph_80x24(snap_compare: Compare, sim: Simulation) -> None:
    """The `:` prompt open over the graph's last row, above the line said under it (an
    error a command made): the graph keeps its size and the notice stays whole."""
    app = _app(sim)

    async def steps(pilot: Pilot[None]) -> None:
        await keys(pilot, "colon", *"undo", "enter")
        await until(
            pilot, lambda: "nothing to undo" in str(app.main.query_one(Notice).render()), "said"
        )
        app.main.query_one("#prompt", Input).cursor_blink = False  # the same picture each run
        await keys(pilot, "colon", *"ns")

    assert snap_compare(app, terminal_size=(80, 24), run_before=_ready(app, steps))


def test_stale_metrics(snap_compare: Compare, sim: Simulation) -> None:
    metrics = FlakyMetrics(sim)
    app = MeshtopApp(Sources(ClusterSources.one(metrics, sim.control_plane), False, sim.clock))

    async def steps(pilot: Pilot[None]) -> None:
        metrics.failing = BackendError(
            "cannot reach Prometheus at http://127.0.0.1:9: connection refused"
        )
        sim.clock.advance(12)  # type: ignore[attr-defined]
        await keys(pilot, "r")

    assert snap_compare(app, terminal_size=(100, 24), run_before=_ready(app, steps))


@pytest.mark.parametrize("theme", ["meshtop-light", "meshtop-colorblind", "meshtop-mono"])
def test_theme(snap_compare: Compare, sim: Simulation, theme: str) -> None:
    app = _app(sim, settings=Settings(theme=theme))
    assert snap_compare(app, terminal_size=(120, 36), run_before=_ready(app))


def test_snapshots_live_in_the_top_level_folder() -> None:
    assert Path(SVGImageExtension.dirname(test_location=None)) == SNAPSHOTS  # type: ignore[arg-type]


def _open(app: MeshtopApp, edge: tuple[str, str] | None = None, node: str = "") -> Steps:
    async def steps(pilot: Pilot[None]) -> None:
        assert app.main.graph.view is not None
        if edge is not None:
            app.main.open_edge(
                next(k for k, e in app.main.graph.view.edges.items() if edge in e.members)
            )
        else:
            app.main.open_node(
                next(n for n, v in app.main.graph.view.nodes.items() if node in v.members)
            )
        await pilot.pause()

    return steps


def test_edge_detail(snap_compare: Compare, sim: Simulation) -> None:
    app = _app(sim)
    v3 = ("Kubernetes/bookinfo/productpage-v1", "Kubernetes/bookinfo/reviews-v3")
    assert snap_compare(app, terminal_size=(110, 80), run_before=_ready(app, _open(app, v3)))


def test_node_detail_80x24(snap_compare: Compare, sim: Simulation) -> None:
    app = _app(sim)
    steps = _open(app, node="Kubernetes/bookinfo/reviews-v3")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_ready(app, steps))


def test_node_detail_scrolled(snap_compare: Compare, sim: Simulation) -> None:
    app = _app(sim)
    opened = _open(app, node="Kubernetes/bookinfo/reviews-v3")

    async def steps(pilot: Pilot[None]) -> None:
        await opened(pilot)
        await settled(pilot)
        await keys(pilot, "end")

    assert snap_compare(app, terminal_size=(100, 40), run_before=_ready(app, steps))


def _traces_app(sim: Simulation) -> MeshtopApp:
    return MeshtopApp(Sources(only(sim.clusters, traces=True), True, sim.clock))


def _to_traces(app: MeshtopApp, *then: str) -> Steps:
    """The trace list of productpage → reviews-v3; with keys `then`, the first trace's
    waterfall opened and those keys pressed in it."""
    opened = _open(app, ("Kubernetes/bookinfo/productpage-v1", "Kubernetes/bookinfo/reviews-v3"))

    async def steps(pilot: Pilot[None]) -> None:
        await opened(pilot)
        await keys(pilot, "t")
        await listed(app, pilot)
        if then:
            await keys(pilot, "enter")
            await drawn(app, pilot)
            await keys(pilot, *then)

    return steps


def test_trace_list(snap_compare: Compare, sim: Simulation) -> None:
    app = _traces_app(sim)
    assert snap_compare(app, terminal_size=(120, 30), run_before=_ready(app, _to_traces(app)))


def test_waterfall(snap_compare: Compare, sim: Simulation) -> None:
    app = _traces_app(sim)
    steps = _to_traces(app, "j", "j", "j", "j", "j")
    assert snap_compare(app, terminal_size=(120, 36), run_before=_ready(app, steps))


def _shift_app(sim: Simulation) -> MeshtopApp:
    return MeshtopApp(Sources(only(sim.clusters, writable=True), True, sim.clock))


def test_routes_tab(snap_compare: Compare, sim: Simulation) -> None:
    app = _shift_app(sim)

    async def steps(pilot: Pilot[None]) -> None:
        await keys(pilot, "3")

    assert snap_compare(app, terminal_size=(120, 24), run_before=_ready(app, steps))


def test_stat_tab(snap_compare: Compare, sim: Simulation) -> None:
    """A row per node, worst first, what it answers and what it calls, a sparkline of
    the one snapshot seen (issue 19)."""
    app = _app(sim)

    async def steps(pilot: Pilot[None]) -> None:
        await keys(pilot, "4")
        table = app.query_one(StatTable)
        await until(pilot, lambda: table.ready and table.row_count > 0, "the stat tab's rows")

    assert snap_compare(app, terminal_size=(120, 24), run_before=_ready(app, steps))


def test_posture_tab(snap_compare: Compare, sim: Simulation) -> None:
    """Each namespace's and workload's mTLS mode beside the traffic into it, and what
    STRICT would refuse (issue 22)."""
    app = _shift_app(sim)

    async def steps(pilot: Pilot[None]) -> None:
        await keys(pilot, "5")

    assert snap_compare(app, terminal_size=(120, 24), run_before=_ready(app, steps))


def test_shift_dialog(snap_compare: Compare, sim: Simulation) -> None:
    app = _shift_app(sim)

    async def steps(pilot: Pilot[None]) -> None:
        await keys(pilot, "3", "down", "down", "down", "w")
        # the route is read again before the dialog opens
        await until(pilot, lambda: isinstance(app.screen, ShiftScreen), "the shift dialog")
        await keys(pilot, "right_square_bracket", "enter")

    assert snap_compare(app, terminal_size=(110, 30), run_before=_ready(app, steps))


def _clusters_app(clock: Clock) -> MeshtopApp:
    sim = Simulation(spread(bookinfo(), ("east", "west")), clock=clock)
    return MeshtopApp(Sources(only(sim.clusters, writable=True), True, sim.clock))


def test_clusters_graph_160x48(snap_compare: Compare, clock: Clock) -> None:
    """Two clusters: their boxes round their namespaces, the calls between them marked ⇄."""
    app = _clusters_app(clock)
    assert snap_compare(app, terminal_size=(160, 48), run_before=_ready(app))


def test_clusters_collapsed(snap_compare: Compare, clock: Clock) -> None:
    app = _clusters_app(clock)

    async def steps(pilot: Pilot[None]) -> None:
        await keys(pilot, "colon", *"collapse cluster east", "enter")

    assert snap_compare(app, terminal_size=(160, 40), run_before=_ready(app, steps))


def test_clusters_routes(snap_compare: Compare, clock: Clock) -> None:
    app = _clusters_app(clock)

    async def steps(pilot: Pilot[None]) -> None:
        await keys(pilot, "3")

    assert snap_compare(app, terminal_size=(130, 24), run_before=_ready(app, steps))


class _Unplugged:
    """One cluster's control plane, answering until unplugged."""

    def __init__(self, plane: Any) -> None:
        self.plane, self.down = plane, False
        self.name = plane.name

    async def workloads(self) -> Any:
        if self.down:
            raise BackendError("cannot reach the Kubernetes API (west): connection refused")
        return await self.plane.workloads()

    async def routes(self) -> Any:
        return await self.plane.routes()

    async def breakers(self) -> Any:
        return await self.plane.breakers()


def test_clusters_one_stale(snap_compare: Compare, clock: Clock) -> None:
    """West's API server goes away: west is stale, east stays live."""
    sim = Simulation(spread(bookinfo(), ("east", "west")), clock=clock)
    west = _Unplugged(sim.planes["west"])
    clusters = {
        "east": ClusterSources(sim.metrics, sim.planes["east"]),
        "west": ClusterSources(sim.metrics, west),  # type: ignore[arg-type]
    }
    app = MeshtopApp(Sources(clusters, True, sim.clock))

    async def steps(pilot: Pilot[None]) -> None:
        west.down = True
        clock.advance(12)
        await keys(pilot, "r")

    assert snap_compare(app, terminal_size=(100, 24), run_before=_ready(app, steps))
