"""A detail screen's keys are the console's key line (`KeyLine`, one widget), there as
the screen opens, and it draws its intro once for a width (issue 17): Textual's Footer
made its keys anew (a widget each) after every change of the screen's bindings, and its
keys' styles were worked out twice each (compact, then not) as the screen opened."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from textual.pilot import Pilot
from textual.widget import Widget

from meshtop.connect import Sources
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.detail import DetailScreen
from meshtop.tui.widgets.keyline import KeyLine

from ..conftest import only
from .test_console import _first_snapshot, keys, settled, until
from .test_detail import _text


async def _edge_detail(app: MeshtopApp, pilot: Pilot[None]) -> DetailScreen:
    """The edge table's first edge opened: its detail on top."""
    await _first_snapshot(app)
    await keys(pilot, "tab", "enter")
    await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the edge's detail")
    screen = app.screen
    assert isinstance(screen, DetailScreen)
    return screen


async def test_a_detail_screen_shows_its_keys_in_one_line(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _edge_detail(app, pilot)
        await settled(pilot)
        line = _text(app, "KeyLine")
        for pair in ("esc back", ": command", "r reload", "t traces", "? help"):
            assert pair in line, (pair, line)
        assert len(screen.query(KeyLine)) == 1
        assert not [w for w in screen.query(Widget) if type(w).__name__ == "FooterKey"]
        # keys that change are shown again: `r` disabled, so left out
        monkeypatch.setattr(
            DetailScreen, "check_action", lambda s, a, p: None if a == "reload" else True
        )
        screen.refresh_bindings()
        await until(pilot, lambda: "r reload" not in _text(app, "KeyLine"), "reload left out")
        assert "esc back" in _text(app, "KeyLine")


async def test_a_detail_screen_draws_its_intro_once_for_its_width(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Textual renders a Static's content to know its height, then again to draw it: the
    intro of a node's detail at 20,000 services was drawn twice as the screen opened."""
    drawn: list[int] = []

    class Counted:
        def __init__(self, renderable: RenderableType) -> None:
            self.renderable = renderable

        def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
            drawn.append(options.max_width)
            yield self.renderable

    opened = DetailScreen.__init__

    def counted(self: DetailScreen, metrics: Any, about: Any, window_s: float,
                intro: RenderableType, *args: Any, **kwargs: Any) -> None:  # fmt: skip
        opened(self, metrics, about, window_s, Counted(intro), *args, **kwargs)

    monkeypatch.setattr(DetailScreen, "__init__", counted)
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _edge_detail(app, pilot)
        await until(pilot, lambda: screen.detail is not None, "the edge's history")
        await settled(pilot)
        # its height and its lines at each width it had (the scroll bar came with the plots)
        assert sorted(drawn) == sorted(set(drawn))
        assert screen.query_one("#detail-now").size.width in drawn
        assert "Now" in _text(app, "#detail-now")
