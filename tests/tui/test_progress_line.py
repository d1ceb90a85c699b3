"""The progress line of a graph drawn by the worker (issue 17): a drawing asked for by a key
says "laying out" after 150 ms; a refresh of the graph on screen (its view, size and zoom
the same) only after 2 s: at 20,000 services every refresh's drawing took over 150 ms, and
the word flashed on the status line every 2 s."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from meshtop.config import Settings
from meshtop.connect import Sources
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.graph_state import GraphState
from meshtop.tui.screens import main

from ..conftest import only
from .test_console import settled


async def test_a_steady_refresh_says_no_laying_out_and_a_key_does(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "DRAWN_AT_ONCE", 0)  # every graph drawn by the worker
    real = GraphState.make

    def slow(self: GraphState, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)  # a drawing of 0.5 s, as a large mesh's
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GraphState, "make", slow)
    said: list[bool] = []
    real_say = main.MainScreen._say_working

    def say(self: main.MainScreen, nodes: int) -> None:
        said.append(self._drawing)  # still drawing: the word is said
        real_say(self, nodes)

    monkeypatch.setattr(main.MainScreen, "_say_working", say)
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock), settings=Settings(refresh_s=60))
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        while app.main._drawing or app.main.graph.view is None:
            await asyncio.sleep(0.05)
        said.clear()
        for _ in range(2):  # refreshes of the graph on screen
            first = app.snapshot
            app.request_refresh()
            while app.snapshot is first or app.main._drawing:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert True not in said
        await pilot.press("g")  # another grouping: a person waits for it
        await asyncio.sleep(0.3)
        assert said and said[-1] is True
        assert "laying out" in app.main.working
        await settled(pilot)
