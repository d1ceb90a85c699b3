"""SVG screenshots of the console compared with those in `snapshots/`. After a deliberate
change of the screen, look at the new SVGs and accept them with
`MESHTOP_UPDATE_SNAPSHOTS=1 make test`; a mismatch leaves `NAME.actual.svg` to compare."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot

from meshtop.errors import BackendError
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp

from ..conftest import ROOT
from .test_console import FlakyMetrics, _first_snapshot

SNAPSHOTS = ROOT / "snapshots"
Steps = Callable[[Pilot[None], MeshtopApp], Awaitable[None]]


def _normalise(svg: str) -> str:
    # Textual names the SVG's CSS classes after a hash of the content; keep them stable.
    return re.sub(r"terminal-\d+", "terminal", svg)


async def _shot(app: MeshtopApp, size: tuple[int, int], steps: Steps | None = None) -> str:
    async with app.run_test(size=size) as pilot:
        await _first_snapshot(app)
        if steps is not None:
            await steps(pilot, app)
        await pilot.pause()
        return _normalise(app.export_screenshot(title="meshtop"))


def assert_snapshot(svg: str, name: str) -> None:
    expected = SNAPSHOTS / f"{name}.svg"
    actual = SNAPSHOTS / f"{name}.actual.svg"
    if os.environ.get("MESHTOP_UPDATE_SNAPSHOTS"):
        expected.write_text(svg)
        actual.unlink(missing_ok=True)
        return
    if not expected.exists():
        actual.write_text(svg)
        pytest.fail(f"no snapshot {expected.name}: look at {actual.name}, then accept it")
    if svg != expected.read_text():
        actual.write_text(svg)
        pytest.fail(f"{name}: the screen changed; compare {actual.name} with {expected.name}")
    actual.unlink(missing_ok=True)


async def test_bookinfo_wide(sim: Simulation) -> None:
    app = MeshtopApp(sim.metrics, sim.control_plane, simulated=True, clock=sim.clock)
    assert_snapshot(await _shot(app, (120, 30)), "bookinfo_120x30")


async def test_bookinfo_at_80x24(sim: Simulation) -> None:
    app = MeshtopApp(sim.metrics, sim.control_plane, simulated=True, clock=sim.clock)
    assert_snapshot(await _shot(app, (80, 24)), "bookinfo_80x24")


async def test_help_screen(sim: Simulation) -> None:
    async def steps(pilot: Pilot[None], app: MeshtopApp) -> None:
        await pilot.press("question_mark")

    app = MeshtopApp(sim.metrics, sim.control_plane, simulated=True, clock=sim.clock)
    assert_snapshot(await _shot(app, (100, 30), steps), "help_100x30")


async def test_stale_metrics_notice(sim: Simulation) -> None:
    metrics = FlakyMetrics(sim)

    async def steps(pilot: Pilot[None], app: MeshtopApp) -> None:
        metrics.failing = BackendError(
            "cannot reach Prometheus at http://127.0.0.1:9: connection refused"
        )
        sim.clock.advance(12)  # type: ignore[attr-defined]
        await pilot.press("r")
        await app.workers.wait_for_complete()

    app = MeshtopApp(metrics, sim.control_plane, clock=sim.clock)
    assert_snapshot(await _shot(app, (100, 24), steps), "stale_metrics_100x24")


async def test_graph_160x48(sim: Simulation) -> None:
    app = MeshtopApp(sim.metrics, sim.control_plane, simulated=True, clock=sim.clock)
    assert_snapshot(await _shot(app, (160, 48)), "graph_160x48")


async def test_edge_table_tab(sim: Simulation) -> None:
    async def steps(pilot: Pilot[None], app: MeshtopApp) -> None:
        await pilot.press("2")

    app = MeshtopApp(sim.metrics, sim.control_plane, simulated=True, clock=sim.clock)
    assert_snapshot(await _shot(app, (120, 30), steps), "edges_120x30")


async def test_graph_filtered(sim: Simulation) -> None:
    async def steps(pilot: Pilot[None], app: MeshtopApp) -> None:
        await pilot.press("slash", *"error>5%", "enter")

    app = MeshtopApp(sim.metrics, sim.control_plane, simulated=True, clock=sim.clock)
    assert_snapshot(await _shot(app, (100, 30), steps), "graph_filtered_100x30")


async def test_graph_focused(sim: Simulation) -> None:
    async def steps(pilot: Pilot[None], app: MeshtopApp) -> None:
        await pilot.press("colon", *"focus ratings 1", "enter")

    app = MeshtopApp(sim.metrics, sim.control_plane, simulated=True, clock=sim.clock)
    assert_snapshot(await _shot(app, (100, 30), steps), "graph_focused_100x30")


@pytest.mark.parametrize("theme", ["meshtop-light", "meshtop-colorblind", "meshtop-mono"])
async def test_themes(sim: Simulation, theme: str) -> None:
    from meshtop.config import Settings

    app = MeshtopApp(
        sim.metrics,
        sim.control_plane,
        simulated=True,
        clock=sim.clock,
        settings=Settings(theme=theme),
    )
    assert_snapshot(await _shot(app, (120, 36)), f"theme_{theme}_120x36")
