"""The console. A refresh runs in a thread worker; only when it has finished does the UI
draw the snapshot and schedule the next one, so refreshes never overlap and a slow
backend never freezes the keyboard. Refreshing pauses while a dialog is open."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from meshtop.config import Settings
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot, SourceState
from meshtop.sources.protocols import ControlPlane, MetricsSource
from meshtop.tui.screens.help import HelpScreen
from meshtop.tui.theme import ThemeSet, load_themes
from meshtop.tui.widgets.edge_table import EdgeTable
from meshtop.tui.widgets.status import StatusLine, problems


@dataclass
class SnapshotReady(Message):
    snapshot: MeshSnapshot


MAX_RETRY_S = 60.0


class MeshtopApp(App[None]):
    TITLE = "meshtop"
    CSS_PATH = "meshtop.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("r", "refresh_now", "refresh"),
        Binding("p", "toggle_pause", "pause"),
        Binding("s", "cycle_sort", "sort"),
    ]

    def __init__(
        self,
        metrics: MetricsSource,
        control_plane: ControlPlane | None = None,
        *,
        settings: Settings | None = None,
        simulated: bool = False,
        clock: Callable[[], float] = time.time,
        themes: ThemeSet | None = None,
    ) -> None:
        super().__init__()
        self.themes = themes or load_themes()
        self.metrics = metrics
        self.control_plane = control_plane
        self.settings = settings or Settings()
        self.simulated = simulated
        self.clock = clock
        self.snapshot: MeshSnapshot | None = None
        self.paused = False
        self._next: Timer | None = None
        self._problems: list[str] = []
        self._in_flight = False  # one refresh at a time: a thread cannot be cancelled
        self._again = False  # asked for while one was in flight
        self._failures = 0  # refreshes in a row that failed: the retry backs off

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="")
        yield StatusLine("connecting…", id="status")
        yield Static("", id="notice")
        yield EdgeTable(id="edges")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.metrics.name
        for theme in self.themes.themes.values():
            self.register_theme(theme)
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        self._problems = list(self.themes.problems)
        self.request_refresh()

    # -- refreshing ---------------------------------------------------------------

    def request_refresh(self) -> None:
        """Start a refresh, or, while one runs, start another as soon as it ends."""
        if self._in_flight:
            self._again = True
            return
        self._in_flight = True
        self.poll()

    @work(thread=True, group="refresh", exit_on_error=False)
    def poll(self) -> None:
        snapshot = asyncio.run(
            refresh(
                self.metrics,
                self.control_plane,
                window_s=self.settings.window_s,
                timeout_s=self.settings.timeout_s,
                previous=self.snapshot,
                clock=self.clock,
            )
        )
        self.post_message(SnapshotReady(snapshot))

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.snapshot = message.snapshot
        healthy = all(h.state is SourceState.FRESH for h in message.snapshot.sources.values())
        self._failures = 0 if healthy else self._failures + 1
        self.query_one(EdgeTable).show(message.snapshot)
        self._show_status()
        self._finished()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A bug in a refresh must not take the console down: say so and try again later.
        if event.worker.group == "refresh" and event.state is WorkerState.ERROR:
            self._failures += 1
            self._notice(f"refresh failed: {event.worker.error}")
            self._finished()

    def _finished(self) -> None:
        self._in_flight = False
        if self._again:
            self._again = False
            self.request_refresh()
        else:
            self._schedule()

    def retry_delay(self) -> float:
        """The refresh interval, doubled for each failure in a row, up to a minute."""
        if not self._failures:
            return self.settings.refresh_s
        return float(min(MAX_RETRY_S, self.settings.refresh_s * 2 ** min(self._failures, 10)))

    def _schedule(self) -> None:
        if self._next is not None:
            self._next.stop()
        if not self.is_headless and not sys.stdin.isatty():
            self.exit(message="meshtop: the terminal went away")  # SSH dropped: stop polling
            return
        self._next = self.set_timer(self.retry_delay(), self._tick)

    def _tick(self) -> None:
        if self.paused or len(self.screen_stack) > 1:
            self._schedule()  # a dialog is open or the user paused: look again later
            return
        self.request_refresh()

    # -- drawing ------------------------------------------------------------------

    def _show_status(self) -> None:
        if self.snapshot is None:
            return
        self.query_one(StatusLine).show(
            self.snapshot,
            simulated=self.simulated,
            paused=self.paused,
            sort_name=self.query_one(EdgeTable).sort_name,
        )
        lines = [*self._problems, *problems(self.snapshot)]
        if self._failures:
            lines.append(f"retrying in {self.retry_delay():g}s")
        self._notice("\n".join(lines))

    def _notice(self, text: str) -> None:
        notice = self.query_one("#notice", Static)
        notice.update(text)
        notice.set_class(bool(text), "shown")

    # -- actions ------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_refresh_now(self) -> None:
        self.request_refresh()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self._show_status()

    def action_cycle_sort(self) -> None:
        table = self.query_one(EdgeTable)
        table.cycle_sort()
        if self.snapshot is not None:
            table.show(self.snapshot)
        self._show_status()
