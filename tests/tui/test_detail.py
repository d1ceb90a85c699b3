"""The edge and node detail screens, driven by keys: the snapshot's numbers at once, the
history when it arrives, a slow or failing backend that never holds the keyboard."""

from __future__ import annotations

import asyncio
import io
import threading

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from meshtop.connect import Sources
from meshtop.errors import BackendError
from meshtop.model import History
from meshtop.sim.sources import Simulation
from meshtop.sources.protocols import ClusterSources
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens import detail as detail_screen
from meshtop.tui.screens.detail import DetailScreen

from ..conftest import only
from .test_console import FlakyMetrics, _first_snapshot, keys, settled, until

NS = "Kubernetes/bookinfo/"
PAGE = NS + "productpage-v1"
V3 = NS + "reviews-v3"


def _text(app: MeshtopApp, selector: str) -> str:
    """What a panel shows, as plain text at its width."""
    static = app.screen.query_one(selector, Static)
    console = Console(width=static.size.width or 120, file=io.StringIO(), record=True)
    console.print(static.content)
    return console.export_text()


async def _open_edge(app: MeshtopApp, pilot: Pilot[None], source: str, destination: str) -> None:
    assert app.main.graph.view is not None
    key = next(
        k for k, e in app.main.graph.view.edges.items() if (source, destination) in e.members
    )
    app.main.open_edge(key)
    await pilot.pause()


async def test_enter_opens_the_selected_edge_with_its_history(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 60)) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "tab", "enter")  # the table asks the app to open the edge

        def drawn() -> bool:
            return isinstance(app.screen, DetailScreen) and app.screen.detail is not None

        await until(pilot, drawn, "the edge's detail with its history")
        assert isinstance(app.screen, DetailScreen) and app.screen.about.is_edge
        history = _text(app, "#detail-history")
        assert "Requests" in history and "Latency" in history and "-10m" in history
        assert "Over the last 15m" in _text(app, "#detail-window")
        await keys(pilot, "escape")
        assert not isinstance(app.screen, DetailScreen)


async def test_edge_detail_answers_what_is_wrong(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 60)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        assert "failing: errors" in _text(app, "#detail-now")  # the snapshot's, at once
        await settled(pilot)
        window = _text(app, "#detail-window")
        assert "upstream connection failure" in window and "never arrived" in window
        assert "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews" in window
        canary = _text(app, "#detail-canary")
        assert "reviews: versions side by side" in canary
        assert "v3 ◂" in canary and "stable (most traffic)" in canary


async def test_window_keys_and_command_change_the_window(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 60)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await keys(pilot, "3")
        await settled(pilot)
        assert screen.window_s == 3600
        assert screen.detail is not None and screen.detail.history.step_s == 30
        await keys(pilot, "colon", *"window 2h", "enter")
        await settled(pilot)
        assert screen.window_s == 7200 and "window 2h" in _text(app, "#detail-title")
        await keys(pilot, "colon", *"window 90d", "enter")
        assert screen.window_s == 7200  # refused, said in place, the screen goes on
        assert isinstance(app.screen, DetailScreen)


class SlowHistory(FlakyMetrics):
    """History that waits until the test lets it go, as a slow backend."""

    def __init__(self, sim: Simulation) -> None:
        super().__init__(sim)
        self.release = threading.Event()
        self.asked: list[float] = []

    async def history(
        self, source: str | None, destination: str | None, window_s: float
    ) -> History:
        self.asked.append(window_s)
        if window_s == 900:  # the first window asked for hangs until released
            await asyncio.to_thread(self.release.wait, 10)  # as the adapters' calls do
        return await super().history(source, destination, window_s)


async def test_a_slow_backend_never_holds_the_keyboard(sim: Simulation) -> None:
    metrics = SlowHistory(sim)
    app = MeshtopApp(Sources(ClusterSources.one(metrics, sim.control_plane), False, sim.clock))
    async with app.run_test(size=(120, 60)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        assert "fetching the last 15m" in _text(app, "#detail-history")
        await keys(pilot, "1")  # answered at once, while the first answer hangs
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.window_s == 300
        while screen.detail is None:
            await pilot.pause(0.02)
        assert screen.detail.history.window_s == 300
        metrics.release.set()  # the old answer arrives late: it must not replace the new
        await settled(pilot)
        assert screen.detail.history.window_s == 300
        assert "window 5m" in _text(app, "#detail-title")


class HeldHistory(FlakyMetrics):
    """History that never answers: the frames the app had drawn when each was asked, and
    how many of them were cancelled."""

    def __init__(self, sim: Simulation) -> None:
        super().__init__(sim)
        self.app: MeshtopApp | None = None
        self.frames: list[int] = []
        self.cancelled = 0

    async def history(
        self, source: str | None, destination: str | None, window_s: float
    ) -> History:
        assert self.app is not None
        self.frames.append(self.app.frames)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("held for a minute")


async def test_a_history_is_asked_once_the_detail_is_drawn_and_called_off_as_it_closes(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not beside the detail's first frames: a namespace's history keeps a Prometheus busy
    for half a second or more (issue 17). Closed, the detail's history is cancelled (its
    requests cut off, tests/test_prometheus_called_off.py); closed before it was asked,
    nothing is."""
    metrics = HeldHistory(sim)
    app = MeshtopApp(Sources(ClusterSources.one(metrics, sim.control_plane), False, sim.clock))
    metrics.app = app
    async with app.run_test(size=(120, 60)) as pilot:
        await _first_snapshot(app)
        await settled(pilot)
        before = app.frames
        await _open_edge(app, pilot, PAGE, V3)
        await until(pilot, lambda: metrics.frames, "the history asked")
        assert metrics.frames[0] > before  # the detail drawn first
        assert isinstance(app.screen, DetailScreen)
        assert "fetching the last 15m" in _text(app, "#detail-history")
        asked = len(metrics.frames)  # the edge's, and the versions' it compares
        await keys(pilot, "escape")
        await until(pilot, lambda: metrics.cancelled == asked, "the histories called off")
        assert not isinstance(app.screen, DetailScreen)

        monkeypatch.setattr(detail_screen, "STILL_S", 30.0)  # never still in this test
        monkeypatch.setattr(detail_screen, "MOST_S", 60.0)
        await _open_edge(app, pilot, PAGE, V3)
        assert isinstance(app.screen, DetailScreen)
        await keys(pilot, "escape")
        await settled(pilot)
        assert not isinstance(app.screen, DetailScreen)
        assert len(metrics.frames) == asked  # the second detail asked nothing


async def test_a_failing_backend_is_said_in_place(sim: Simulation) -> None:
    metrics = FlakyMetrics(sim)
    app = MeshtopApp(Sources(ClusterSources.one(metrics, sim.control_plane), False, sim.clock))
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        metrics.failing = BackendError("Prometheus at http://prom:9090 did not answer within 10s")
        await _open_edge(app, pilot, PAGE, V3)
        await settled(pilot)
        assert "history unavailable: Prometheus at http://prom:9090 did not answer" in _text(
            app, "#detail-history"
        )
        assert "failing: errors" in _text(app, "#detail-now")  # what we had stays
        metrics.failing = None
        await keys(pilot, "r")
        await settled(pilot)
        assert "Requests" in _text(app, "#detail-history")


async def test_node_detail_shows_calls_health_routes_and_versions(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 60)) as pilot:
        await _first_snapshot(app)
        assert app.main.graph.view is not None
        node = next(n for n, v in app.main.graph.view.nodes.items() if V3 in v.members)
        app.main.open_node(node)
        await settled(pilot)
        now = _text(app, "#detail-now")
        assert "its worst inbound call, productpage v1 → reviews v3, is failing" in now
        assert "from  productpage v1" in now and "to    ratings v1" in now
        after = _text(app, "#detail-after")
        assert "VirtualService" in after and "bookinfo/reviews" in after
        assert "v3 10 ◂" in after
        assert "versions side by side" in _text(app, "#detail-canary")


async def test_graph_keys_wait_while_a_detail_is_open(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        grouping = app.main.graph.options.grouping
        await keys(pilot, "g")
        assert app.main.graph.options.grouping is grouping


async def test_the_window_chosen_stays_for_the_next_detail(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _open_edge(app, pilot, PAGE, V3)
        await keys(pilot, "4")
        await keys(pilot, "escape")
        await _open_edge(app, pilot, PAGE, NS + "details-v1")
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.window_s == 6 * 3600
        await settled(pilot)
        assert "window 6h" in _text(app, "#detail-title")


def _shifted(
    minutes_ago: float, now: float, resource: str = "VirtualService bookinfo/reviews"
) -> None:
    """An audit line of a weight shift applied `minutes_ago`, as meshtop writes one."""
    import json
    from datetime import UTC, datetime

    from meshtop import audit

    at = datetime.fromtimestamp(now - minutes_ago * 60, UTC).isoformat().replace("+00:00", "Z")
    line = {"time": at, "user": "ops", "context": "sim", "resource": resource, "rule": 0,
            "resource_version": "7", "before": {"v1": 90, "v3": 10},
            "after": {"v1": 50, "v3": 50}, "by": "console", "outcome": "applied"}  # fmt: skip
    where = audit.path()
    where.parent.mkdir(parents=True, exist_ok=True)
    with where.open("a") as out:
        out.write(json.dumps({**line, "outcome": "about to apply"}) + "\n")  # not a change
        out.write(json.dumps(line) + "\n")


async def _edge_history(app: MeshtopApp, pilot: Pilot[None]) -> str:
    await _first_snapshot(app)
    await _open_edge(app, pilot, PAGE, V3)

    def drawn() -> bool:
        return isinstance(app.screen, DetailScreen) and app.screen.detail is not None

    await until(pilot, drawn, "the edge's detail with its history")
    return _text(app, "#detail-history")


async def test_a_weight_shift_five_minutes_ago_is_marked_on_the_charts(sim: Simulation) -> None:
    from datetime import datetime

    _shifted(5, sim.clock())
    _shifted(3, sim.clock(), "VirtualService bookinfo/ratings")  # another route's: not here
    _shifted(60, sim.clock())  # before the window (15m): not on it
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 80)) as pilot:
        history = await _edge_history(app, pilot)
        at = datetime.fromtimestamp(sim.clock() - 300).strftime("%H:%M")
        lines = history.splitlines()
        assert f"▲ {at} reviews 90/10 → 50/50 (console)" in history
        assert sum("▲" in line for line in lines) == 4  # three plots' marks, one legend
        marks = [line for line in lines if "│" in line and "▲" in line]
        ruler = next(line for line in lines if "-6m" in line and "-4m" in line)
        after, before = ruler.index("-6m") + 1, ruler.index("-4m") + 1  # labels centred
        assert len(marks) == 3
        assert all(after < line.index("▲") < before for line in marks), (ruler, marks)


async def test_an_audit_log_that_cannot_be_read_is_said_in_place(sim: Simulation) -> None:
    from meshtop import audit

    audit.path().mkdir(parents=True)  # a directory where the log should be
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 80)) as pilot:
        history = await _edge_history(app, pilot)
        assert "no change markers: cannot read the audit log" in history
        assert "Latency" in history  # the rest is drawn
