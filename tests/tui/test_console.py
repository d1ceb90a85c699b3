"""The console driven by keys, as a user drives it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from textual.message import Message
from textual.pilot import Pilot

from meshtop.config import Settings
from meshtop.connect import Sources
from meshtop.errors import BackendError
from meshtop.model import History
from meshtop.sim.sources import Simulation
from meshtop.sources.protocols import ClusterSources, Traffic
from meshtop.tui.app import MeshtopApp, SnapshotReady
from meshtop.tui.screens.help import HelpScreen
from meshtop.tui.widgets.edge_table import EdgeTable, columns_for

from ..conftest import only

FAST = Settings(refresh_s=0.05)


class FlakyMetrics:
    """Answers like the simulation until told to fail, as a backend that goes away."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.failing: Exception | None = None

    @property
    def name(self) -> str:
        return "flaky"

    async def traffic(self, window_s: float) -> Traffic:
        if self.failing is not None:
            raise self.failing
        return await self.sim.metrics.traffic(window_s)

    async def history(
        self, source: str | None, destination: str | None, window_s: float
    ) -> History:
        if self.failing is not None:
            raise self.failing
        return await self.sim.metrics.history(source, destination, window_s)


async def _first_snapshot(app: MeshtopApp) -> None:
    deadline = time.monotonic() + 30
    while app.snapshot is None or not _workers_done(app):
        if time.monotonic() > deadline:
            raise AssertionError("waited 30s for the first snapshot")
        await asyncio.sleep(0.01)


def _workers_done(app: MeshtopApp) -> bool:
    """Every worker finished; one a newer one replaced counts as finished (waiting on it
    with `wait_for_complete` raises instead)."""
    return all(w.is_finished for w in app.workers)


async def settled(pilot: Pilot[None]) -> None:
    """What the last key or call started is done and on the screen, and what its answer
    started in turn (a snapshot redraws the routes tab in a worker of its own)."""
    await pilot.pause()  # a screen a key pushed has started its workers
    app = pilot.app
    assert isinstance(app, MeshtopApp)
    again = True
    while again:
        await until(pilot, lambda: _workers_done(app), "every worker to finish")
        again = not _workers_done(app)  # taking their answers in started more


async def until(pilot: Pilot[None], shown: Callable[[], object], what: str) -> None:
    """Wait for what the screen must show. Waiting for the workers and for the machine to
    look idle is not enough on a loaded machine: a screen pushed by a key may not have
    started its worker yet, and a starved process looks idle."""
    deadline = time.monotonic() + 30
    while not shown():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited 30s for {what}")
        await pilot.pause(0.01)
    await pilot.pause()  # and every widget has taken in what it was given


async def undo(pilot: Pilot[None]) -> None:
    """`:undo`, and `y` once the change it would make is shown."""
    from meshtop.tui.screens.confirm import ConfirmScreen

    await keys(pilot, "colon", *"undo", "enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the undo shown")
    await keys(pilot, "y")


async def keys(pilot: Pilot[None], *pressed: str) -> None:
    """Press keys one by one, each handled before the next is sent: a key that opens a
    prompt moves the focus to it only once handled, and what is typed next belongs there."""
    for key in pressed:
        await pilot.press(key)
        await pilot.pause()


async def _edges_tab(pilot: Pilot[None]) -> None:
    """The edges tab, once the table has its width and its rows are filled for it (hidden,
    it may have had another width: the terminal was resized)."""
    await keys(pilot, "2")
    table = pilot.app.query_one(EdgeTable)
    await until(pilot, lambda: table.fitted, "the edge table at its width")


def _rows(app: MeshtopApp) -> list[list[str]]:
    table = app.query_one(EdgeTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_edges_are_listed_worst_first(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, time.time))
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        await _edges_tab(pilot)
        rows = _rows(app)
        assert len(rows) == 10  # details' call to the VM among them (issue 22)
        assert rows[0][:3] == ["FAIL", "productpage-v1", "reviews-v3"]
        assert {r[2] for r in rows} >= {"details-v1", "ratings-v1", "www.googleapis.com"}
        status = str(app.query_one("#status").render())
        assert "SIMULATED" in status and "fresh" in status  # at 80 columns: every source fresh


async def test_sort_key_cycles(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, time.time))
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        await _edges_tab(pilot)
        await keys(pilot, "s")
        assert app.query_one(EdgeTable).sort_name == "source"
        for _ in range(3):
            await keys(pilot, "s")
        assert app.query_one(EdgeTable).sort_name == "rps"
        rows = _rows(app)
        assert rows[0][1:3] in (
            ["productpage-v1", "details-v1"],
            ["istio-ingressgateway", "productpage-v1"],
        )
        assert "sort rps" in str(app.query_one("#status").render())


async def test_help_opens_and_closes(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, time.time))
    async with app.run_test() as pilot:
        await _first_snapshot(app)
        await keys(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await keys(pilot, "escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_q_quits(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), False, time.time))
    async with app.run_test() as pilot:
        await keys(pilot, "q")
        assert not app.is_running


async def test_backend_failure_is_shown_in_place_and_last_edges_kept(sim: Simulation) -> None:
    metrics = FlakyMetrics(sim)
    app = MeshtopApp(
        Sources(ClusterSources.one(metrics, sim.control_plane), False, time.time), settings=FAST
    )
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        metrics.failing = BackendError(
            "cannot reach Prometheus at http://127.0.0.1:9: connection refused"
        )
        while app.snapshot.sources["metrics"].state.value != "stale":  # type: ignore[union-attr]
            await asyncio.sleep(0.02)
        await pilot.pause()
        notice = str(app.query_one("#notice").render())
        assert (
            "metrics: cannot reach Prometheus at http://127.0.0.1:9: connection refused" in notice
        )
        assert "metrics stale" in str(app.query_one("#status").render())
        assert len(_rows(app)) == 10  # the last good edges stay on screen
        metrics.failing = None
        while app.snapshot.sources["metrics"].state.value != "fresh":  # type: ignore[union-attr]
            await asyncio.sleep(0.02)
        await pilot.pause()
        assert str(app.query_one("#notice").render()) == ""
        assert app.is_running


async def test_a_source_that_crashes_is_reported_and_retried(sim: Simulation) -> None:
    metrics = FlakyMetrics(sim)
    metrics.failing = ZeroDivisionError("division by zero")
    app = MeshtopApp(
        Sources(ClusterSources.one(metrics, sim.control_plane), False, time.time), settings=FAST
    )
    async with app.run_test() as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        notice = str(app.query_one("#notice").render())
        assert "metrics source flaky failed: ZeroDivisionError: division by zero" in notice
        assert "retrying in" in notice
        metrics.failing = None
        await keys(pilot, "r")
        while app.snapshot.sources["metrics"].state.value != "fresh":  # type: ignore[union-attr]
            await asyncio.sleep(0.02)
        await pilot.pause()
        assert app.is_running and len(_rows(app)) == 10
        assert app.retry_delay() == FAST.refresh_s  # back to the normal pace


class BrokenControlPlane:
    """A bug outside any source call: the refresh itself raises."""

    @property
    def name(self) -> str:
        raise RuntimeError("bug in the control plane adapter")


async def test_a_bug_in_a_refresh_does_not_take_the_console_down(sim: Simulation) -> None:
    app = MeshtopApp(
        Sources(ClusterSources.one(sim.metrics, BrokenControlPlane()), False, time.time),
        settings=FAST,
    )  # type: ignore[arg-type]
    async with app.run_test() as pilot:
        for _ in range(200):
            await asyncio.sleep(0.02)
            if "refresh failed" in str(app.query_one("#notice").render()):
                break
        await pilot.pause()
        assert "refresh failed: bug in the control plane adapter" in str(
            app.query_one("#notice").render()
        )
        assert app.is_running
        assert app.retry_delay() > FAST.refresh_s  # it backs off


async def test_refreshes_never_overlap(sim: Simulation) -> None:
    """Pressing r while a refresh runs cancels it, and the call it awaits, and starts
    another: two never run at once, and only the last one's snapshot is drawn."""
    import threading

    running = 0
    most = 0
    cancelled = 0
    held = threading.Event()  # the refreshes r starts wait here until the presses are in
    calls = 0

    class SlowMetrics:
        name = "slow"

        async def traffic(self, window_s: float) -> Traffic:
            nonlocal running, most, calls, cancelled
            calls += 1
            running += 1
            most = max(most, running)
            try:
                if calls > 1:
                    await asyncio.to_thread(held.wait, 10)
            except asyncio.CancelledError:
                cancelled += 1
                raise
            finally:
                running -= 1
            return await sim.metrics.traffic(window_s)

    ready: list[Message] = []
    hook = lambda m: ready.append(m) if isinstance(m, SnapshotReady) else None  # noqa: E731
    app = MeshtopApp(
        Sources(ClusterSources.one(SlowMetrics(), sim.control_plane), False, time.time),
        settings=Settings(refresh_s=30),
    )
    async with app.run_test(message_hook=hook) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "r")  # starts a refresh, held until the presses below are in
        for _ in range(3):
            await keys(pilot, "r")  # each replaces the one in flight
        held.set()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if len(ready) >= 2 and not running:
                break
        await settled(pilot)
        assert most == 1
        assert cancelled == 3  # the three that a newer press replaced
        assert len(ready) == 2  # the first, and the last press's


async def test_refreshing_pauses_with_p_and_while_help_is_open(sim: Simulation) -> None:
    ready: list[Message] = []
    app = MeshtopApp(Sources(only(sim.clusters), False, time.time), settings=FAST)
    hook = lambda m: ready.append(m) if isinstance(m, SnapshotReady) else None  # noqa: E731

    async def grows_past(count: int) -> bool:
        for _ in range(250):  # up to 5 s: a loaded machine is slow, not wrong
            if len(ready) > count:
                return True
            await asyncio.sleep(0.02)
        return False

    async with app.run_test(message_hook=hook) as pilot:
        await _first_snapshot(app)
        assert await grows_past(3)  # refreshing on its own every 50ms
        for pause, resume in (("p", "p"), ("question_mark", "escape")):
            await keys(pilot, pause)
            await settled(pilot)
            seen = len(ready)
            await asyncio.sleep(0.5)
            assert len(ready) == seen, f"refreshed while paused by {pause}"
            await keys(pilot, resume)
            assert await grows_past(seen), f"did not resume after {resume}"


def test_narrow_terminals_drop_the_least_needed_columns() -> None:
    wide, label_wide = columns_for(160)
    assert "proto" in wide and "p50" in wide and label_wide > 20
    narrow, label_narrow = columns_for(78)
    assert "proto" not in narrow and "p50" not in narrow and "p95" not in narrow
    # the 4xx share stays beside the error rate: the caller's mistakes, in sight
    assert {"source", "destination", "rps", "errors", "4xx", "p99", "mtls"} <= set(narrow)
    assert label_narrow >= 14


async def test_the_graph_follows_the_edge_tables_cursor_and_a_refresh_keeps_it(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cursor moved in the table selects its line in the graph, and a refresh of a
    large mesh (its rows taken in by the worker) keeps that selection."""
    from meshtop.tui.widgets import edge_table

    monkeypatch.setattr(edge_table, "TAKEN_AT_ONCE", 5)  # bookinfo's 10 edges: large
    app = MeshtopApp(Sources(only(sim.clusters), True, time.time))
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        await _edges_tab(pilot)
        screen, table = app.main, app.query_one(EdgeTable)
        canvas = screen._canvas()
        await keys(pilot, "down", "down")
        row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        assert row is not None
        source, _, destination = row.partition(">")

        def selected() -> bool:
            view = screen.graph.view
            return (
                view is not None
                and canvas.edge in view.edges
                and (source, destination) in view.edges[canvas.edge].members
            )

        await until(pilot, selected, "the graph following the table")
        view = screen.graph.view
        app.request_refresh()
        await until(pilot, lambda: screen.graph.view is not view, "a new view drawn")
        await until(pilot, lambda: table.fitted, "the rows taken in again")
        assert selected(), "the selection kept"


async def test_a_refresh_draws_the_status_line_again_without_laying_the_screen_out(
    sim: Simulation,
) -> None:
    """Every refresh shows the status line and the notice again. The line is one row as
    wide as the screen whatever it says, and a notice that says the same is left alone:
    neither lays the whole screen out again (3-11 ms of the screen's thread for every
    refresh and every move at 2,000 services, on a 2-core machine). The line still shows
    each new snapshot, and a notice that changes still shows and goes."""
    app = MeshtopApp(Sources(only(sim.clusters), True, time.time), settings=FAST)
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        await settled(pilot)
        screen, layouts = app.screen, 0
        laid_out = screen._refresh_layout

        def counted(*args: object, **kwargs: object) -> None:
            nonlocal layouts
            layouts += 1
            laid_out(*args, **kwargs)  # type: ignore[arg-type]

        screen._refresh_layout = counted  # type: ignore[method-assign]
        status = app.query_one("#status")
        for _ in range(2):  # the snapshot's time, to the second, twice newer on screen
            before = app.snapshot
            assert before is not None
            said = before.generated_at.strftime("%H:%M:%S")
            await until(
                pilot,
                lambda: (
                    app.snapshot is not None
                    and app.snapshot.generated_at.strftime("%H:%M:%S") != said  # noqa: B023
                    and app.snapshot.generated_at.strftime("%H:%M:%S") in str(status.render())
                ),
                "a newer snapshot's time on the status line",
            )
        assert layouts == 0
        notice = app.query_one("#notice")
        await keys(pilot, "colon", *"sort nothing", "enter")  # a line said in place
        await until(pilot, lambda: notice.display and "sort takes" in str(notice.render()), "it")
        assert notice.region.height == 1  # laid out for it
