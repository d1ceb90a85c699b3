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


async def test_e_and_d_filter_the_sample_and_keep_the_trace_looked_at(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        await keys(pilot, "t")
        screen = await listed(app, pilot)
        table = screen.query_one(DataTable)
        sample = list(screen.found)
        failed = [i for i, s in enumerate(screen.shown_traces()) if s.error]
        passed = [s for s in screen.shown_traces() if not s.error]
        assert failed and passed  # a sample with both, or the test says nothing
        table.move_cursor(row=failed[-1], animate=False)
        looked_at = screen.shown_traces()[failed[-1]].trace_id
        await keys(pilot, "e")
        await pilot.pause()
        assert screen.asked == 1 and screen.found == sample  # filtered, not fetched again
        assert "errors only" in _text(app, "#traces-title")
        shown = screen.shown_traces()
        assert shown and all(s.error for s in shown) and table.row_count == len(shown)
        assert table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value == looked_at
        await keys(pilot, "e")
        await pilot.pause()
        assert table.row_count == len({s.trace_id for s in sample})
        assert table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value == looked_at
        await keys(pilot, "d")
        await pilot.pause()
        assert screen.asked == 1 and "≥ 50ms" in _text(app, "#traces-title")
        assert all(s.duration_us >= 50_000 for s in screen.shown_traces())


async def test_f_adds_to_the_sample_and_r_fetches_a_new_one(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        await keys(pilot, "t")
        screen = await listed(app, pilot)
        before = {s.trace_id for s in screen.found}
        await keys(pilot, "e", "f")  # more of the traces with an error
        await listed(app, pilot, asked=2)
        after = {s.trace_id for s in screen.found}
        assert before < after  # what was listed stays, more joined it
        added = [s for s in screen.found if s.trace_id not in before]
        assert added and all(s.error for s in added)
        await keys(pilot, "e", "r")  # a new sample of them all
        await listed(app, pilot, asked=3)
        assert len(screen.found) <= screen.ask.limit


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
        await keys(pilot, "r")
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


def _long_names() -> Trace:
    """A 100ms trace whose root takes all of it, under names longer than 44 columns."""
    from meshtop.model import Span

    name = "checkout-orchestrator.payments-production"
    return Trace("cd" * 16, (
        Span("a", None, name, "POST /api/v2/checkout/confirm", 0, 100_000, False),
        Span("b", "a", name, "GET /api/v2/inventory/reserve", 10_000, 30_000, False),
        Span("c", "b", "ratings.bookinfo", "GET /ratings", 60_000, 2_000, True),
    ))  # fmt: skip


async def test_the_waterfall_sizes_its_names_to_the_screen_and_says_long_bars(
    sim: Simulation,
) -> None:
    for cols, whole in ((160, True), (80, False)):
        app = _app(sim)
        async with app.run_test(size=(cols, 30)) as pilot:
            app.push_screen(WaterfallScreen(sim.traces, "cd" * 16, _long_names()))
            await drawn(app, pilot)
            view = app.screen.query_one(Waterfall)
            await pilot.pause()
            lines = [view.render_line(y).text for y in range(4)]
            root = lines[1]
            name = "checkout-orchestrator.payments-production POST /api/v2/checkout/confirm"
            assert (name in root) is whole, root  # cut only where the screen is narrow
            assert root.index("█") <= cols // 2 + 1, root  # the bars have half at least
            assert "100ms" in root, root  # a bar as wide as the trace carries its duration
            assert "30ms" in lines[2] and "2.0ms" in lines[3], lines
