"""A pytest plugin for `make test-starved`: Textual's idle detection answers at once, as it
does on a starved machine, where a process that gets no CPU looks idle.

Textual's pilot waits for keys and screens by watching for the process to go idle. On a
loaded machine (CI) that wait can end before the screen has taken in a key or a worker's
answer, and a test that relied on it saw a screen half drawn. The TUI tests wait for what
the screen must show instead (`tests/tui/test_console.py`: `keys`, `settled`, `until`);
this plugin checks that they do, by taking the idle wait away altogether."""

from __future__ import annotations

import asyncio

import textual._wait
import textual.app
import textual.pilot


async def _idle_at_once(min_sleep: float = 0, max_sleep: float = 1) -> None:
    await asyncio.sleep(0)


textual._wait.wait_for_idle = _idle_at_once
textual.app.wait_for_idle = _idle_at_once  # type: ignore[attr-defined]
textual.pilot.wait_for_idle = _idle_at_once  # type: ignore[attr-defined]
