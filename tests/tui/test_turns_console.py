"""The screen's thread first (issue 17, `meshtop.turns`): a key asks for the screen's
turn, and gives it back once the screen has drawn what it did; so does a snapshot."""

from __future__ import annotations

import pytest
from textual.screen import Screen

from meshtop import turns
from meshtop.connect import Sources
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.detail import DetailScreen

from ..conftest import only
from .test_console import _first_snapshot, settled, until


async def test_a_key_has_the_screens_turn_until_it_is_drawn(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    said: list[str] = []
    monkeypatch.setattr(turns, "held", lambda: True)  # a frame's own turn: the next test
    monkeypatch.setattr(turns, "ask", lambda seconds=turns.LONGEST_S: said.append("ask"))
    monkeypatch.setattr(turns, "done", lambda *_: said.append("done"))
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await settled(pilot)
        app.paused = True  # no snapshot meanwhile: what is said is the key's
        said.clear()
        await pilot.press("j")  # Pilot waits until the screen is drawn
        await settled(pilot)
        assert said[:2] == ["ask", "done"]  # and each frame after it says done again
        assert set(said[2:]) <= {"done"}


async def test_enter_has_the_screens_turn_until_the_detail_is_drawn(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enter's effect is made by messages to other widgets (the graph's, then the main
    screen's, which opens the detail): the turn lasts until the detail's first frame,
    not until the screen has run its callbacks, which it did at once, before any of it."""
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    said: list[tuple[str, str]] = []
    monkeypatch.setattr(turns, "held", lambda: True)
    monkeypatch.setattr(turns, "ask", lambda seconds=turns.LONGEST_S: said.append(("ask", "")))
    monkeypatch.setattr(turns, "done", lambda *_: said.append(("done", type(app.screen).__name__)))
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await settled(pilot)
        app.paused = True
        said.clear()
        await pilot.press("enter")
        await settled(pilot)
        assert isinstance(app.screen, DetailScreen)
    assert said[0] == ("ask", "")
    assert said[1] == ("done", "DetailScreen")  # given back by the detail's frame


async def test_a_frame_has_the_screens_turn_while_it_is_made(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame no key asked for (a refresh's, a resize's) is the screen's turn too, while
    it is laid out and drawn, and only then: the loops behind it wait for it."""
    during: list[bool] = []
    made = Screen._on_timer_update

    def noted(screen: Screen[object]) -> None:
        during.append(turns.held())
        made(screen)

    monkeypatch.setattr(Screen, "_on_timer_update", noted)
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await settled(pilot)
        app.paused = True
        turns.done()
        during.clear()
        app.screen.refresh(layout=True)
        await until(pilot, lambda: during, "a frame")
        assert during[0] is True
        assert not turns.held()
