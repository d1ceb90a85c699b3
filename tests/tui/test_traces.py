"""From an edge to its traces and into one: the list, the waterfall and its keys, a trace
backend that fails, and none configured."""

from __future__ import annotations

from textual.widgets import DataTable

from meshtop.errors import BackendError
from meshtop.model import Trace, TraceQuery, TraceSummary
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.traces import TraceListScreen, WaterfallScreen
from meshtop.tui.widgets.waterfall import Waterfall

from .test_console import _first_snapshot
from .test_detail import NS, PAGE, V3, _open_edge, _settled, _text

NS_V1 = NS + "reviews-v1"


def _app(sim: Simulation, traces: object = "sim") -> MeshtopApp:
    return MeshtopApp(
        sim.metrics, sim.control_plane, simulated=True, clock=sim.clock,
        traces=sim.traces if traces == "sim" else traces,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_t_lists_the_edges_traces_and_enter_opens_a_waterfall(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        await pilot.press("t")
        await _settled(app, pilot)
        screen = app.screen
        assert isinstance(screen, TraceListScreen)
        assert (screen.ask.service, screen.ask.peer_service, screen.ask.peer_version) == (
            "productpage", "reviews", "v3",
        )  # fmt: skip
        table = screen.query_one(DataTable)
        assert table.row_count > 0
        durations = [t.duration_us for t in screen.found]
        assert durations == sorted(durations, reverse=True)  # slowest first
        await pilot.press("enter")
        await _settled(app, pilot)
        assert isinstance(app.screen, WaterfallScreen)
        view = app.screen.query_one(Waterfall)
        spans = len(view.rows)
        assert spans >= 7
        assert "reviews.bookinfo" in _text(app, "#span-text") or "istio-ingressgateway" in _text(
            app, "#span-text"
        )
        await pilot.press("enter")  # fold the root: one row left
        assert len(view.rows) == 1
        await pilot.press("enter", "j", "j", "j", "z")
        assert view.zoomed and view.t1 - view.t0 == max(view.rows[3].span.duration_us, 1)
        await pilot.press("0")
        assert not view.zoomed
        await pilot.press("escape", "escape")
        assert not isinstance(app.screen, TraceListScreen)


async def test_errors_only_asks_again(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        await pilot.press("t")
        await _settled(app, pilot)
        await pilot.press("e")
        await _settled(app, pilot)
        screen = app.screen
        assert isinstance(screen, TraceListScreen) and screen.ask.errors_only
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
        await pilot.press("t")
        await _settled(app, pilot)
        assert "traces unavailable: cannot reach Jaeger" in _text(app, "#traces-note")
        app.push_screen(WaterfallScreen(Down(), "00" * 16))  # type: ignore[arg-type]
        await _settled(app, pilot)
        assert "trace unavailable: trace 0000" in _text(app, "#waterfall-note")


async def test_without_a_trace_backend_t_says_how_to_give_one(sim: Simulation) -> None:
    app = _app(sim, None)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        await pilot.press("t")
        await pilot.pause()
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
        await pilot.press("t")
        await _settled(app, pilot)
        screen = app.screen
        assert isinstance(screen, TraceListScreen)
        table = screen.query_one(DataTable)
        assert table.row_count == 1  # listed twice, shown once
        assert str(table.get_row_at(0)[1]) == "?"  # a start no calendar has
        await pilot.press("e")
        await _settled(app, pilot)
        assert table.row_count == 0 and "traces unavailable" in _text(app, "#traces-note")


async def test_slash_lists_only_traces_with_an_operation(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, NS_V1)
        await pilot.press("t")
        await _settled(app, pilot)
        operation = "details.bookinfo.svc.cluster.local:9080/*"
        await pilot.press("slash", *operation, "enter")
        await _settled(app, pilot)
        screen = app.screen
        assert isinstance(screen, TraceListScreen) and screen.ask.operation == operation
        assert screen.found and "operation details" in _text(app, "#traces-title")
