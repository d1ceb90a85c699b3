"""Containers drawn only where their children leave them showing (`meshtop.tui.covered`,
issue 17): blank lines, never shown, where every cell is under a child; Textual's own
drawing wherever a cell of the container shows. The screens themselves are held by the
snapshot and real-terminal suites; here, when a container counts as covered."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.geometry import Region
from textual.widgets import Static

from meshtop.config import Settings
from meshtop.connect import Sources
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.covered import Covered, covered

from ..conftest import only
from .test_console import settled


class _Box(Covered, Vertical):
    DEFAULT_CSS = "_Box { background: red; }"


class _Boxes(App[None]):
    def __init__(self, css: str = "") -> None:
        super().__init__()
        self.extra = css

    def compose(self) -> ComposeResult:
        with _Box(id="box"):
            yield Static("top", id="top")
            yield Static("rest", id="rest")

    def on_mount(self) -> None:
        self.stylesheet.add_source(
            "#top { height: 3; } #rest { height: 1fr; }" + self.extra, read_from=("t", "")
        )
        self.stylesheet.update(self)


async def _box_covered(css: str) -> tuple[bool, bool]:
    """Whether the box counts as covered, and whether its lines were drawn in its own
    background (Textual's drawing) rather than given blank (never shown)."""
    app = _Boxes(css)
    async with app.run_test(size=(30, 10)) as pilot:
        await pilot.pause()
        box = app.query_one(_Box)
        whole = Region(0, 0, box.size.width, box.size.height)
        lines = box.render_lines(whole)
        styled = any(seg.style and seg.style.bgcolor for line in lines for seg in line)
        return covered(box, whole), styled


async def test_a_container_whose_children_fill_it_is_covered() -> None:
    assert await _box_covered("") == (True, False)


async def test_a_container_with_its_own_cells_showing_is_drawn() -> None:
    # padding: its cells around the children show
    assert await _box_covered("_Box { padding: 1 2; }") == (False, True)
    # a child hidden (it keeps its room, the container shows there), or gone
    assert not (await _box_covered("#top { visibility: hidden; }"))[0]
    assert not (await _box_covered("#rest { display: none; }"))[0]
    # a child narrower than the container
    assert not (await _box_covered("#rest { width: 20; }"))[0]
    # children moved over the container's padding: not drawn there (their clip)
    css = "_Box { padding: 0 1; } #top, #rest { width: 30; offset: -1 0; }"
    assert await _box_covered(css) == (False, True)


async def test_the_main_screen_and_its_containers_are_covered(sim: Simulation) -> None:
    """What makes a full repaint cheaper: the screen, its body, the tabs and the pane on
    show are all under their children, on each tab, at 80x24 and 160x48."""
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock), settings=Settings(refresh_s=60))
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        for size, tab in (((80, 24), "1"), ((80, 24), "2"), ((160, 48), "2"), ((160, 48), "1")):
            await pilot.resize_terminal(*size)
            await pilot.press(tab)
            await pilot.pause()
            await asyncio.sleep(0.1)
            shown = [w for w in app.screen.query("*") if isinstance(w, Covered) and w.region]
            assert {type(w).__name__ for w in shown} == {"_Body", "_Tabbed", "_Pane"}
            for w in [app.screen, *shown]:
                assert isinstance(w, Covered)
                assert covered(w, Region(0, 0, w.size.width, w.size.height)), (size, tab, w)
