"""The screen's thread first (issue 17, `meshtop.turns`): a key asks for the screen's
turn, and gives it back once the screen has drawn what it did and then nothing for
`turns.STILL_S`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from meshtop import turns
from meshtop.connect import Sources
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.detail import DetailScreen

from ..conftest import only
from .test_console import _first_snapshot, settled


def _noted(monkeypatch: pytest.MonkeyPatch, app: MeshtopApp) -> list[tuple[str, str, float, float]]:
    """(what, the screen then, when, when the key's turn ends then) for each key's turn
    asked and each frame drawn; the turns themselves kept."""
    said: list[tuple[str, str, float, float]] = []

    def noting(what: str, real: Callable[[], None]) -> Callable[[], None]:
        def note() -> None:
            real()
            said.append((what, type(app.screen).__name__, time.monotonic(), turns._key_until))

        return note

    monkeypatch.setattr(turns, "key", noting("key", turns.key))
    monkeypatch.setattr(turns, "drawn", noting("drawn", turns.drawn))
    return said


async def test_a_key_has_the_screens_turn_until_the_screen_is_still(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key's turn outlasts its first frame (the frames after it, a table's scroll bars
    coming, are the key's too), and ends once the screen has drawn nothing for
    `STILL_S`: a loop behind the screen then goes on at once."""
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    said = _noted(monkeypatch, app)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await settled(pilot)
        app.paused = True  # no snapshot meanwhile: what is drawn is the key's
        said.clear()
        await pilot.press("j")  # Pilot waits until the screen is drawn
        assert [what for what, *_ in said[:2]] == ["key", "drawn"]
        _, _, drawn, until = said[1]
        assert until == pytest.approx(drawn + turns.STILL_S, abs=0.005)  # not ended by it
        await settled(pilot)
        await asyncio.sleep(turns.STILL_S)
        _, _, last, _ = said[-1]
        assert turns._key_until <= last + turns.STILL_S  # ended STILL_S after the last frame
        took = await asyncio.to_thread(_gave_way)
        assert took < 0.01


def _gave_way() -> float:
    start = time.monotonic()
    turns.give_way()
    return time.monotonic() - start


async def test_enter_has_the_screens_turn_until_the_detail_is_drawn(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enter's effect is made by messages to other widgets (the graph's, then the main
    screen's, which opens the detail): the turn lasts until the detail's frames, not
    until the screen has run its callbacks, which it did at once, before any of it."""
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    said = _noted(monkeypatch, app)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await settled(pilot)
        app.paused = True
        said.clear()
        await pilot.press("enter")
        await settled(pilot)
        assert isinstance(app.screen, DetailScreen)
    assert said[0][:2] == ("key", "MainScreen")
    # the first frame after the key is the detail's, within the key's turn
    assert said[1][:2] == ("drawn", "DetailScreen")
    assert said[1][2] < said[0][2] + turns.LONGEST_S


async def test_r_gives_its_turn_back_at_once_for_the_refresh_it_asks(sim: Simulation) -> None:
    """`r`'s effect is the refresh: its calls behind the screen do not wait for the
    key's own frames (a change applied, `r`, then `2` and enter at once showed the
    snapshot from before the change)."""
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await settled(pilot)
        await pilot.press("r")
        assert turns._key_until == 0.0
        await pilot.press("j")  # any other key keeps its turn
        assert turns._key_until > 0.0
