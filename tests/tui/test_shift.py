"""The routes tab and the shift dialog on the simulated mesh: configured beside observed,
keys that keep weights valid, review, apply, a concurrent change that writes nothing,
:undo, and --read-only, where the write key is not bound at all."""

from __future__ import annotations

import json
import os
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable

from meshtop.config import Settings
from meshtop.connect import Sources
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.shift import ShiftScreen

from ..conftest import only
from .test_console import _first_snapshot, keys, settled


def _app(sim: Simulation, **kw: object) -> MeshtopApp:
    return MeshtopApp(Sources(only(sim.clusters, writable=True), True, sim.clock), **kw)  # type: ignore[arg-type]


async def _to_reviews_v3(app: MeshtopApp, pilot: Pilot[None]) -> DataTable:  # type: ignore[type-arg]
    await keys(pilot, "3")
    await settled(pilot)
    table = app.query_one("#routes", DataTable)
    row = next(i for i in range(table.row_count) if str(table.get_row_at(i)[3]) == "reviews v3")
    table.move_cursor(row=row)
    return table


def _weights(sim: Simulation) -> list[int]:
    return [d.weight for d in sim.route("bookinfo", "reviews").rules[0].destinations]


async def test_routes_show_configured_beside_observed(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        table = await _to_reviews_v3(app, pilot)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        v3 = next(r for r in rows if r[3] == "reviews v3")
        assert v3[5] == "10%" and v3[6].endswith("%") and abs(float(v3[6][:-1]) - 10) < 3


async def test_shift_review_apply_and_undo(sim: Simulation, tmp_path: Path) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 34)) as pilot:
        await _first_snapshot(app)
        await _to_reviews_v3(app, pilot)
        await keys(pilot, "w")
        await settled(pilot)  # the route is read again before the dialog opens
        screen = app.screen
        assert isinstance(screen, ShiftScreen) and screen.split.names[screen.selected] == "v3"
        await keys(pilot, "right_square_bracket", "full_stop", "plus")  # +10 +5 +1
        assert screen.split.weights == (54, 20, 26) and screen.split.valid
        await keys(pilot, "enter", "y")
        await settled(pilot)
        assert not isinstance(app.screen, ShiftScreen)
        assert _weights(sim) == [54, 20, 26]
        assert app.main.changes.last_plans
        await keys(pilot, "colon", *"undo", "enter")
        await settled(pilot)
        assert _weights(sim) == [54, 20, 26]  # shown first: nothing written before `y`
        await keys(pilot, "y")
        await settled(pilot)
        assert _weights(sim) == [70, 20, 10]
        log = Path(os.environ["XDG_STATE_HOME"]) / "meshtop" / "audit.jsonl"
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        assert [(e["by"], e["outcome"]) for e in lines] == [
            ("console", "about to apply"), ("console", "applied"),
            ("undo", "about to apply"), ("undo", "applied"),
        ]  # fmt: skip


async def test_a_concurrent_change_writes_nothing_and_shows_what_is_there(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 34)) as pilot:
        await _first_snapshot(app)
        await _to_reviews_v3(app, pilot)
        await keys(pilot, "w")
        await settled(pilot)
        await keys(pilot, "4")  # v3 to 100%
        screen = app.screen
        assert isinstance(screen, ShiftScreen) and screen.split.weights == (0, 0, 100)
        sim.set_weights("bookinfo", "reviews", {"v1": 80, "v2": 10, "v3": 10})  # someone else
        await keys(pilot, "enter", "y")
        await settled(pilot)
        assert isinstance(app.screen, ShiftScreen)
        assert "someone changed it meanwhile; nothing was written" in screen.message
        assert screen.split.weights == (80, 10, 10) and _weights(sim) == [80, 10, 10]


async def test_read_only_binds_no_write_key(sim: Simulation) -> None:
    app = _app(sim, settings=Settings(read_only=True))
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        await _to_reviews_v3(app, pilot)
        await keys(pilot, "w")
        assert not isinstance(app.screen, ShiftScreen)
        await keys(pilot, "colon", *"undo", "enter")
        assert "read-only" in str(app.query_one("#notice").render())
        assert _weights(sim) == [70, 20, 10]


async def test_a_rollout_from_the_dialog_promotes_step_by_step(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        table = await _to_reviews_v3(app, pilot)
        table.move_cursor(row=table.cursor_row - 1)  # reviews v2
        await keys(pilot, "w")
        await settled(pilot)
        screen = app.screen
        assert isinstance(screen, ShiftScreen) and screen.split.names[screen.selected] == "v2"
        await keys(pilot, "R")
        prompt = screen.query_one("#rollout-prompt")
        prompt.value = "step 50 interval 1s max-error 1% max-p99 500ms"  # type: ignore[attr-defined]
        await keys(pilot, "enter")
        assert not screen.rolling and screen.message.startswith(
            "rollout of v2: 50% from v1 every 1s: v1=70,v2=20,v3=10 → v1=20,v2=70,v3=10 → "
            "v1=0,v2=90,v3=10; a breach restores v1=70,v2=20,v3=10"
        ), screen.message  # previewed: nothing written yet
        assert _weights(sim) == [70, 20, 10]
        await keys(pilot, "y")
        for _ in range(100):
            await pilot.pause(0.1)
            if not screen.rolling:
                break
        assert screen.message.startswith("promoted: v2 takes all of v1's traffic"), screen.message
        assert [line.split(":")[0] for line in screen.progress[1:]] == ["step 1", "step 2"]
        assert _weights(sim) == [0, 90, 10]  # v3's 10 never moved
        await keys(pilot, "escape")
        await settled(pilot)
        await keys(pilot, "colon", *"undo", "enter")  # the whole rollout, taken back
        await settled(pilot)
        await keys(pilot, "y")
        await settled(pilot)
        assert _weights(sim) == [70, 20, 10]
        log = Path(os.environ["XDG_STATE_HOME"]) / "meshtop" / "audit.jsonl"
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        assert [e["by"] for e in lines if e["outcome"] == "applied"] == [
            "rollout", "rollout", "undo",
        ]  # fmt: skip


async def test_up_and_down_select_but_not_while_the_rollout_is_typed(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _to_reviews_v3(app, pilot)
        await keys(pilot, "w")
        await settled(pilot)
        screen = app.screen
        assert isinstance(screen, ShiftScreen) and screen.split.names[screen.selected] == "v3"
        await keys(pilot, "up", "up")
        assert screen.split.names[screen.selected] == "v1"
        await keys(pilot, "down", "j")
        assert screen.split.names[screen.selected] == "v3"
        await keys(pilot, "R")  # the rollout's settings typed: its target stays v3
        await keys(pilot, "up", "down", "up")
        assert screen.split.names[screen.selected] == "v3"
