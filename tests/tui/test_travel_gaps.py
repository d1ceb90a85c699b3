"""What the console says of a past moment beyond the main screen's (issue 19): the detail
chart's ruler ends at the moment, not `now`; the trace search ends there too; the routes
tab says it shows the routes as they are now (the control plane keeps no past)."""

from __future__ import annotations

from datetime import datetime

from textual.widgets import DataTable

from meshtop.connect import Sources
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.detail import DetailScreen
from meshtop.tui.screens.traces import TraceListScreen
from meshtop.tui.widgets.notice import Notice

from ..conftest import Clock, only
from .test_console import _first_snapshot, keys, until
from .test_detail import PAGE, V3, _open_edge, _text
from .test_time_travel import _shifted_to_v1_ten_minutes_ago
from .test_traces import _app


def _notice(app: MeshtopApp) -> str:
    return app.main.query_one(Notice).content.plain  # type: ignore[union-attr,no-any-return]


async def _at(app: MeshtopApp, pilot: object, words: str) -> None:
    app.main.run_command(f"at {words}")
    await until(pilot, lambda: app.snapshot is not None, f"the snapshot at {words}")  # type: ignore[arg-type]
    await _first_snapshot(app)


async def test_at_a_moment_the_chart_ends_at_it_and_the_traces_are_of_then(
    sim: Simulation, clock: Clock
) -> None:
    """Reviews v3 gets no traffic since ten minutes ago: at -15m its edge's charts end at
    that moment (the ruler says its time, not now), and `t` lists the traces up to it,
    v3's among them, where a search ending now finds none."""
    _shifted_to_v1_ten_minutes_ago(sim, clock)
    app = _app(sim)
    async with app.run_test(size=(120, 60)) as pilot:
        await _first_snapshot(app)
        await _at(app, pilot, "-15m")
        at = clock() - 900
        await _open_edge(app, pilot, PAGE, V3)

        def drawn() -> bool:
            return isinstance(app.screen, DetailScreen) and app.screen.detail is not None

        await until(pilot, drawn, "the edge's detail with its history")
        history = _text(app, "#detail-history")
        moment = datetime.fromtimestamp(at).strftime("%H:%M")
        rulers = [line for line in history.splitlines() if "-15m" in line and "-10m" in line]
        assert len(rulers) == 3, history  # requests, errors, latency
        assert all(r.rstrip().endswith(moment) and "now" not in r for r in rulers), rulers
        await keys(pilot, "t")

        def listed() -> bool:
            return isinstance(app.screen, TraceListScreen) and bool(app.screen.answered)

        await until(pilot, listed, "the trace list")
        screen = app.screen
        assert isinstance(screen, TraceListScreen)
        assert screen.ask.end_s == at
        assert screen.query_one(DataTable).row_count > 0  # v3 answered then
        title = str(screen.query_one("#traces-title").render())
        assert f"the 1h up to {moment}" in title, title


async def test_live_the_chart_ends_now_and_the_trace_search_too(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 60)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        await until(pilot, lambda: getattr(app.screen, "detail", None) is not None, "history")
        rulers = [line for line in _text(app, "#detail-history").splitlines() if "-10m" in line]
        assert rulers and all(r.rstrip().endswith("now") for r in rulers), rulers
        await keys(pilot, "t")
        await until(pilot, lambda: getattr(app.screen, "answered", 0), "the trace list")
        assert isinstance(app.screen, TraceListScreen) and app.screen.ask.end_s is None


async def test_the_routes_tab_at_a_moment_says_the_routes_are_as_they_are_now(
    sim: Simulation, clock: Clock
) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(80, 24)) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "3")
        await until(pilot, lambda: app.main._routes().row_count > 0, "the routes")
        assert "routes as they are now" not in _notice(app)  # live: nothing to say
        await keys(pilot, "1")
        await _at(app, pilot, "-10m")
        await keys(pilot, "3")
        moment = datetime.fromtimestamp(clock() - 600).strftime("%H:%M")
        said = f"routes as they are now, not at {moment}: the control plane keeps no past"
        await until(pilot, lambda: said in _notice(app), "the routes tab's line")
        assert len(said) <= 78  # one line at 80 columns
