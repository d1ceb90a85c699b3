"""The console: what is app-wide (settings, sources, themes, the snapshot and the loop that
refreshes it); the main screen (`screens/main.py`) draws each snapshot and owns its keys.

A refresh is an async worker that awaits `mesh.refresh` on the app's own loop; the
sources' blocking calls run on daemon threads (`DaemonThreads`, the loop's default
executor), so a backend that hangs holds up neither the keyboard nor the exit. Only when
a refresh has finished does the UI draw it and schedule the next one; a newer refresh
cancels the one in flight, its requests with it. Refreshing pauses while a dialog is
open."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from rich.console import RenderableType
from textual import events, work
from textual.app import App
from textual.await_remove import AwaitRemove
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.driver import Driver
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from meshtop import turns, units
from meshtop.config import Settings
from meshtop.connect import Sources
from meshtop.errors import EXIT_BUG
from meshtop.graphview import grades_of
from meshtop.mesh import DaemonThreads, refresh
from meshtop.model import MeshSnapshot, SourceKey, SourceState
from meshtop.sanitize import said
from meshtop.sources.protocols import (
    ControlPlane,
    MetricsSource,
    PolicyStore,
    RouteStore,
    TraceSource,
)
from meshtop.tui.first import drawn_first, key_first
from meshtop.tui.heap import FrozenHeap
from meshtop.tui.safety import ControlFilter
from meshtop.tui.screens.help import HelpScreen
from meshtop.tui.screens.main import DRAWN_AT_ONCE, MainScreen
from meshtop.tui.theme import ThemeSet, load_themes


@dataclass
class SnapshotReady(Message):
    snapshot: MeshSnapshot


MAX_RETRY_S = 60.0
# keys typed behind a prompt's enter or arrow wait for it at most this long (a screen
# that stops the key, or its prompt's answer, on the way to the app): longer than the
# screen's thread is ever busy, or they would overtake it after all
AFTER_KEY_S = 1.0
QUIT_AT_ONCE = frozenset({"ctrl+c"})  # never held: ctrl+c quits at once, whatever is typed


def _live(snapshot: MeshSnapshot) -> bool:
    """Whether to refresh at the normal pace: every source answered, or, over several
    clusters, some metrics did (one cluster out of reach must not slow the others'
    view; it is asked again each refresh, never for longer than the timeout)."""
    sources = {SourceKey.of(key): h for key, h in snapshot.sources.items()}
    if any(key.cluster for key in sources):
        return any(
            h.state is SourceState.FRESH for key, h in sources.items() if key.role == "metrics"
        )
    return all(h.state is SourceState.FRESH for h in sources.values())


class MeshtopApp(App[None]):
    TITLE = "meshtop"
    CSS_PATH = "meshtop.tcss"
    # The main screen's keys are its own (q and ? among them, in the key line's order);
    # these are every screen's.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        # ctrl+c quits at once, as every terminal program's does (Textual asks first)
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        Binding("question_mark", "help", "help", key_display="?"),
    ]

    def __init__(
        self,
        sources: Sources,
        *,
        settings: Settings | None = None,
        themes: ThemeSet | None = None,
    ) -> None:
        super().__init__()
        self._filters.append(ControlFilter())  # no control character reaches the terminal
        self.clusters = sources.clusters  # what a refresh asks, cluster by cluster
        # the views over every cluster at once
        self.metrics: MetricsSource = sources.metrics
        self.control_plane: ControlPlane | None = sources.control_plane
        self.traces: TraceSource | None = sources.traces
        # where weights are written, by cluster: each one's route store (none: read only)
        self.stores: dict[str, RouteStore] = {
            c: s.store for c, s in sources.clusters.items() if s.store is not None
        }
        # where each cluster's security configuration is read (the posture tab) and its
        # PeerAuthentications written (:mtls), by cluster
        self.policies: dict[str, PolicyStore] = {
            c: s.security for c, s in sources.clusters.items() if s.security is not None
        }
        self.simulated = sources.simulated
        self.clock = sources.clock
        self.themes = themes or load_themes()
        self.settings = settings or Settings()
        self.snapshot: MeshSnapshot | None = None
        self.frames = 0  # frames drawn so far (`_display`): a detail asks its history once still
        self.paused = False
        self.failures = 0  # refreshes in a row that failed: the retry backs off
        self._next: Timer | None = None
        self._typed_after: list[events.Key] | None = None  # held behind a prompt's key
        self._typed_behind: events.Key | None = None  # the key they wait for
        self._typed_in: Widget | None = None  # in this prompt
        self._let_go_late: Timer | None = None  # lets them go if it never comes round
        self._heap: FrozenHeap | None = None  # the collector kept out of the way (tui/heap)
        self.main = MainScreen(self.settings.thresholds)

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver for this platform; on Linux and macOS one whose esc answers
        after the escape delay rather than after Textual's 100 ms wait (`driver.py`). A
        driver named by TEXTUAL_DRIVER is kept."""
        found = super().get_driver_class()
        if found.__module__ == "textual.drivers.linux_driver":
            from meshtop.tui.driver import PromptEscDriver

            return PromptEscDriver
        return found

    def get_default_screen(self) -> Screen[Any]:
        return self.main

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        """Textual's: a frame for the terminal (in a test, made and not written). The
        screen's turn (`first`) ends with it: what a person waited for is drawn."""
        super()._display(screen, renderable)
        if renderable is not None:
            self.frames += 1
            turns.done()

    def on_load(self) -> None:
        # Every blocking call a source makes (`asyncio.to_thread`), and every thread
        # worker, runs on a daemon thread that neither the loop's end nor the exit waits
        # for: `q` and ctrl+q quit at once, whatever backend hangs.
        asyncio.get_running_loop().set_default_executor(DaemonThreads())

    def on_mount(self) -> None:
        if not self.is_headless:  # the process's collector: not a test's
            self._heap = FrozenHeap()
            self._heap.start()
        self.sub_title = self.metrics.name
        for theme in self.themes.themes.values():
            self.register_theme(theme)
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        if os.environ.get("NO_COLOR") and "meshtop-mono" in self.available_themes:
            self.theme = "meshtop-mono"  # https://no-color.org: no colour to carry meaning
        self.request_refresh()

    async def on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.Key):
            if isinstance(event, events.DescendantFocus) and self._answered:
                await self._let_go()  # the prompt has answered: the focus left it
            await super().on_event(event)
            return
        came_round = event.is_forwarded  # back from the focused widget, up its parents
        if not came_round:  # as read from the terminal
            if self._answered:
                await self._let_go()  # the prompt has answered: the focus left it
            if self._typed_after is not None and event.key not in QUIT_AT_ONCE:
                self._typed_after.append(event)  # behind a prompt's key: see below
                return
            key_first()  # a person waits for what the key does
            if isinstance(self.focused, Input) and not event.is_printable:
                # In a prompt, Textual inserts a letter at once but acts on enter,
                # backspace or an arrow (its bindings) once the key has gone round to
                # the app, after the letters behind it: `:zoom compact⏎p` read at once
                # (typed fast, pasted, one packet over SSH) ran `zoom compactp`, and
                # `x⌫v` left `x`. The keys behind such a key wait for it: until it has
                # come round, or for enter until the prompt's answer is given (its
                # screen's answer reaches the app, or the focus leaves the prompt: they
                # go where the focus is then); never longer than AFTER_KEY_S.
                self._typed_after, self._typed_behind = [], event
                self._typed_in = self.focused
                self._let_go_late = self.set_timer(AFTER_KEY_S, partial(self._late, event))
        await super().on_event(event)  # forwards it (the same event) or acts on it
        if event is self._typed_behind and (
            not event.is_forwarded  # a priority binding took it: it never comes round
            or (came_round and event.key != "enter")
        ):
            await self._let_go()

    @property
    def _answered(self) -> bool:
        """Keys are held behind a prompt's key, and the focus has left that prompt."""
        return self._typed_after is not None and self.focused is not self._typed_in

    async def on_input_submitted(self, _: Input.Submitted) -> None:
        await self._let_go()  # every screen's answer to its prompt has been given

    def _late(self, key: events.Key) -> None:
        """The key the others wait for never came round (a screen stopped it, or its
        prompt's answer). Let go from the app's own queue: this runs in the timer's
        task, which stopping the timer would cancel in the middle of the keys."""
        if key is self._typed_behind:
            self._let_go_late = None
            self.call_later(self._let_go, key)

    async def _let_go(self, key: events.Key | None = None) -> None:
        if key is not None and key is not self._typed_behind:
            return  # let go already, and maybe held again since, behind another key
        keys, self._typed_after = self._typed_after or [], None
        self._typed_behind = self._typed_in = None
        if self._let_go_late is not None:
            self._let_go_late.stop()
            self._let_go_late = None
        for held in keys:  # in the order typed; another such key holds those behind it
            await self.on_event(held)

    def _handle_exception(self, error: Exception) -> None:
        """An exception nothing in the console handled. Textual ends the app as it would
        (and a Pilot test gets the error), but not with its traceback on the screen:
        `meshtop` says the error in one line, keeps the traceback in a file and exits 70
        (meshtop.cli). Textual calls this for errors in handlers, drawing and workers."""
        super()._handle_exception(error)
        self._exit_renderables.clear()  # Textual's traceback, printed on the way out
        self._return_code = EXIT_BUG

    # -- refreshing ---------------------------------------------------------------

    def request_refresh(self) -> None:
        """Start a refresh now; one still in flight is cancelled, and its requests."""
        self.poll()

    @work(group="refresh", exclusive=True, exit_on_error=False)
    async def poll(self) -> None:
        if self._heap is not None:
            self._heap.hold()  # what the refresh makes lives on: no pass over it
        try:
            snapshot = await refresh(
                self.clusters,
                window_s=self.settings.window_s,
                timeout_s=self.settings.timeout_s,
                previous=self.snapshot,
                clock=self.clock,
            )
            if len(snapshot.edges) > DRAWN_AT_ONCE:
                # graded here, off the screen's thread, for the graph's worker and the
                # edge table to find graded (graphview.grades_of): the table asked first
                # on a key and graded 51,239 edges on the screen's thread (2 s, issue 17)
                await asyncio.to_thread(
                    grades_of, snapshot, self.settings.thresholds, self.main.graph.memory
                )
        except BaseException:  # failed or cancelled: no snapshot to settle
            if self._heap is not None:
                self._heap.release()
            raise
        self.post_message(SnapshotReady(snapshot))

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        if not self.screen_stack or not self.is_running:  # closing: nothing to draw on
            return
        drawn_first(self)  # the status line and tables first, then the graph's worker
        self.snapshot = message.snapshot
        self.failures = 0 if _live(message.snapshot) else self.failures + 1
        self.sub_title = (
            f"{self.metrics.name} · window {units.duration(self.settings.window_s)}"
            f" · refresh {units.duration(self.settings.refresh_s)}"
        )
        self.main.show_snapshot(message.snapshot)
        if self._heap is not None:
            if len(self.screen_stack) == 1:
                # what lives on, out of the collector's way; not a screen on top (a
                # detail, a dialog), which goes as it closes: frozen, its cycles would
                # wait for a full pass (one at 2,000 services took 191 ms)
                self._heap.settle()
            else:
                self._heap.release()
        self._schedule()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A bug in a refresh must not take the console down: say so and try again later.
        if event.worker.group == "refresh" and event.state is WorkerState.ERROR:
            self.failures += 1
            self.main.notice(f"refresh failed: {event.worker.error}")
            self._schedule()

    def retry_delay(self) -> float:
        """The refresh interval, doubled for each failure in a row, up to a minute."""
        if not self.failures:
            return self.settings.refresh_s
        return float(min(MAX_RETRY_S, self.settings.refresh_s * 2 ** min(self.failures, 10)))

    def _schedule(self) -> None:
        if self._next is not None:
            self._next.stop()
        if not self.is_headless and not sys.stdin.isatty():
            self.exit(message="meshtop: the terminal went away")  # SSH dropped: stop polling
            return
        self._next = self.set_timer(self.retry_delay(), self._tick)

    def _tick(self) -> None:
        if self.paused or self.main.travel.at is not None or len(self.screen_stack) > 1:
            # a dialog is open, the user paused, or a moment is shown (fixed: r reads it
            # again): look again later
            self._schedule()
            return
        self.request_refresh()

    def on_resize(self) -> None:
        if self.snapshot is not None:  # a layout is for a width: at fit, a level too
            self.call_after_refresh(self.main.redraw_graph)

    @property
    def _background_screens(self) -> list[Screen[object]]:
        """The screens that show through the top one: none under an opaque screen (a
        detail, the traces). Textual counts the screen under it always, and draws the top
        screen whole again for every change of one it hides: opening a detail drew it
        whole twice more (17 kB each at 160x48) as the main screen under it settled
        (issue 17). A hidden screen is laid out and drawn whole as it comes back."""
        stack = self._screen_stack
        if stack and stack[-1].styles.background.a == 1:
            return []
        return super()._background_screens

    def _prune(self, *nodes: Widget, parent: DOMNode | None = None) -> AwaitRemove:
        """Textual's. A screen taken off the stack does not lay the app out again: Textual
        asks the parent of what it removed (the app: its current screen) for a layout,
        and the screen that came back, laid out and drawn as it resumed, was laid out
        and drawn whole again (17 kB at 160x48 as a detail closed; issue 17)."""
        if parent is self and all(isinstance(node, Screen) for node in nodes):
            parent = None
        return super()._prune(*nodes, parent=parent)

    # -- app-wide keys ------------------------------------------------------------------

    def notify(self, message: str, **kwargs: Any) -> None:
        """Every toast, from any screen: shown, with credentials in URLs redacted."""
        super().notify(said(message), **kwargs)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(for_screen=self.screen))  # that screen's keys
