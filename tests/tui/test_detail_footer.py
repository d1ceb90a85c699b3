"""A detail screen makes its key line once as it opens, and draws its intro once
for a width (issue 17): Textual's Footer made its keys anew (a widget each) after every
change of the screen's bindings, three times for the same keys, and first a frame after
the screen's; they are made with the screen, it still shows the screen's keys, and makes
them again when they change."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from meshtop.connect import Sources
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.detail import DetailScreen

from ..conftest import only
from .test_console import _first_snapshot, keys, settled, until
from .test_detail import _text


def _shown(screen: DetailScreen) -> list[str]:
    return [str(k.description) for k in screen.query(FooterKey)]


async def test_a_detail_screen_makes_its_keys_once(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Footer] = []
    recompose = Widget.recompose

    async def counted(self: Widget) -> Any:
        if isinstance(self, Footer) and self.is_attached:
            made.append(self)
        return await recompose(self)

    monkeypatch.setattr(Widget, "recompose", counted)
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "tab", "enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the edge's detail")
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await settled(pilot)
        await until(pilot, lambda: "back" in _shown(screen), "the detail's keys")
        assert made == []  # made as the screen was composed, not again
        assert {"back", "command", "reload", "traces", "help"} <= set(_shown(screen))
        # keys that change are shown again: `r` shown disabled from now on
        monkeypatch.setattr(
            DetailScreen, "check_action", lambda s, a, p: None if a == "reload" else True
        )
        screen.refresh_bindings()
        await until(pilot, lambda: len(made) == 1, "the keys made again")
        await settled(pilot)
        reload = next(k for k in screen.query(FooterKey) if k.description == "reload")
        assert reload.has_class("-disabled")


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
        await _first_snapshot(app)
        await keys(pilot, "tab", "enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the edge's detail")
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await until(pilot, lambda: screen.detail is not None, "the edge's history")
        await settled(pilot)
        # its height and its lines at each width it had (the scroll bar came with the plots)
        assert sorted(drawn) == sorted(set(drawn))
        assert screen.query_one("#detail-now").size.width in drawn
        assert "Now" in _text(app, "#detail-now")
