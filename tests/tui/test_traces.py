"""From an edge to its traces and into one: the list, the waterfall and its keys, a trace
backend that fails, and none configured."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import DataTable

from meshtop.connect import Sources
from meshtop.errors import BackendError
from meshtop.model import Trace, TraceQuery, TraceSummary
from meshtop.sim.sources import Simulation
from meshtop.sources.protocols import ClusterSources
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.traces import TraceListScreen, WaterfallScreen
from meshtop.tui.widgets.waterfall import Waterfall

from .test_console import _first_snapshot, keys, until
from .test_detail import NS, PAGE, V3, _open_edge, _text

NS_V1 = NS + "reviews-v1"


async def listed(app: MeshtopApp, pilot: Pilot[None], asked: int = 1) -> TraceListScreen:
    """Wait until the trace list shows the answer to its `asked`th question."""

    def shown() -> bool:
        return isinstance(app.screen, TraceListScreen) and app.screen.answered == asked

    await until(pilot, shown, f"the answer to question {asked} in the trace list")
    assert isinstance(app.screen, TraceListScreen)
    return app.screen


async def drawn(app: MeshtopApp, pilot: Pilot[None]) -> WaterfallScreen:
    """Wait until the waterfall shows its trace, or why there is none."""

    def shown() -> bool:
        return isinstance(app.screen, WaterfallScreen) and app.screen.shown

    await until(pilot, shown, "the waterfall")
    assert isinstance(app.screen, WaterfallScreen)
    return app.screen


def _app(sim: Simulation, traces: object = "sim") -> MeshtopApp:
    return MeshtopApp(
        Sources(
            ClusterSources.one(
                sim.metrics, sim.control_plane, sim.traces if traces == "sim" else traces
            ),
            True,
            sim.clock,
        )
    )


async def test_t_lists_the_edges_traces_and_enter_opens_a_waterfall(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        await keys(pilot, "t")
        screen = await listed(app, pilot)
        assert (screen.ask.service, screen.ask.peer_service, screen.ask.peer_version) == (
            "productpage", "reviews", "v3",
        )  # fmt: skip
        table = screen.query_one(DataTable)
        assert table.row_count > 0
        durations = [t.duration_us for t in screen.found]
        assert durations == sorted(durations, reverse=True)  # slowest first
        await keys(pilot, "enter")
        view = (await drawn(app, pilot)).query_one(Waterfall)
        spans = len(view.rows)
        assert spans >= 7
        assert "reviews.bookinfo" in _text(app, "#span-text") or "istio-ingressgateway" in _text(
            app, "#span-text"
        )
        await keys(pilot, "enter")  # fold the root: one row left
        assert len(view.rows) == 1
        await keys(pilot, "enter", "j", "j", "j", "z")
        assert view.zoomed and view.t1 - view.t0 == max(view.rows[3].span.duration_us, 1)
        await keys(pilot, "0")
        assert not view.zoomed
        await keys(pilot, "escape", "escape")
        assert not isinstance(app.screen, TraceListScreen)


async def test_errors_only_asks_again(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        await keys(pilot, "t")
        await listed(app, pilot)
        await keys(pilot, "e")
        screen = await listed(app, pilot, asked=2)
        assert screen.ask.errors_only
        assert screen.found and all(t.error for t in screen.found)


class Down:
    name = "jaeger http://jaeger:16686"

    async def find_traces(self, query: TraceQuery) -> list[TraceSummary]:
        raise BackendError("cannot reach Jaeger at http://jaeger:16686: connection refused")

    async def get_trace(self, trace_id: str) -> Trace:
        raise BackendError(f"trace {trace_id} not found in Jaeger at http://jaeger:16686")


async def test_a_failing_trace_backend_is_said_in_place(sim: Simulation) -> None:
    app = _app(sim, Down())
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        await keys(pilot, "t")
        await listed(app, pilot)
        assert "traces unavailable: cannot reach Jaeger" in _text(app, "#traces-note")
        app.push_screen(WaterfallScreen(Down(), "00" * 16))  # type: ignore[arg-type]
        await drawn(app, pilot)
        assert "trace unavailable: trace 0000" in _text(app, "#waterfall-note")


async def test_without_a_trace_backend_t_says_how_to_give_one(sim: Simulation) -> None:
    app = _app(sim, None)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        await keys(pilot, "t")
        assert not isinstance(app.screen, TraceListScreen)
        assert any("--tracing jaeger=URL" in str(n.message) for n in app._notifications)


class Twice:
    """A backend that lists one trace twice, then fails."""

    name = "tempo http://tempo:3200"

    def __init__(self) -> None:
        self.calls = 0

    async def find_traces(self, query: TraceQuery) -> list[TraceSummary]:
        self.calls += 1
        if self.calls > 1:
            raise BackendError("Tempo at http://tempo:3200 did not answer within 10s")
        one = TraceSummary("ab" * 16, 10**19, 5000, "a: b", ("a",), None, None)  # no calendar
        return [one, one]

    async def get_trace(self, trace_id: str) -> Trace:
        raise BackendError("unused")


async def test_odd_lists_are_shown_and_a_failed_reload_clears_them(sim: Simulation) -> None:
    app = _app(sim, Twice())
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        await keys(pilot, "t")
        screen = await listed(app, pilot)
        table = screen.query_one(DataTable)
        assert table.row_count == 1  # listed twice, shown once
        assert str(table.get_row_at(0)[1]) == "?"  # a start no calendar has
        await keys(pilot, "e")
        await listed(app, pilot, asked=2)
        assert table.row_count == 0 and "traces unavailable" in _text(app, "#traces-note")


async def test_slash_lists_only_traces_with_an_operation(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, NS_V1)
        await keys(pilot, "t")
        await listed(app, pilot)
        operation = "details.bookinfo.svc.cluster.local:9080/*"
        await keys(pilot, "slash", *operation, "enter")
        screen = await listed(app, pilot, asked=2)
        assert screen.ask.operation == operation
        assert screen.found and "operation details" in _text(app, "#traces-title")
