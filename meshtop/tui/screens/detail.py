"""`enter` on an edge or a node: what is wrong here? The numbers of the last snapshot show
at once; the history over the chosen window (`1` to `6`, or `:window 2h`) is fetched in a
worker and fills the plots when it arrives, so a slow backend never holds the keyboard."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Static

from meshtop import units
from meshtop.detail import Detail, PolicyLine, Subject, authorization, change_sources, fetch
from meshtop.errors import MeshtopError, UsageError
from meshtop.history import WINDOWS, parse_window
from meshtop.model import TraceQuery
from meshtop.panels import (
    canary_view,
    history_view,
    window_view,
)
from meshtop.sanitize import said, shown
from meshtop.sources.protocols import MetricsSource, TraceSource
from meshtop.tui.screens.sparing import Sparing
from meshtop.tui.travel import end_words
from meshtop.tui.widgets.keyline import KeyLine


@dataclass
class DetailReady(Message):
    generation: int
    detail: Detail


@dataclass
class DetailFailed(Message):
    generation: int
    reason: str


class Drawn:
    """A renderable drawn once for a width: Textual renders a Static's content to know its
    height, then again to draw it, and the intro of a node's detail is its largest part
    (issue 17). For content whose lines depend on the width and not the height, as the
    intro's text and tables do."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable
        self._drawn: tuple[tuple[object, ...], list[Segment]] | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        key = (options.max_width, options.min_width, options.justify, options.overflow,
               options.no_wrap, options.highlight, options.markup)  # fmt: skip
        if self._drawn is None or self._drawn[0] != key:
            self._drawn = (key, list(console.render(self.renderable, options)))
        yield from self._drawn[1]

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.renderable)


class DetailBody(VerticalScroll):
    """A detail's body, which has its plots drawn again when its width changes (the
    terminal resized; its scroll bar's gutter is kept, so not as the bar comes). The
    screen's own Resize comes before its body is laid out at the new size: plots drawn
    then took the old width, and a terminal narrowed from 160 to 80 columns showed each
    plot's lines wrapped in two."""

    def on_resize(self) -> None:
        screen = self.screen
        if isinstance(screen, DetailScreen):
            screen.body_resized()


# a detail's history is asked once its screen has drawn nothing for this long (a
# namespace's detail at 2,000 services draws three frames in its first 60-100 ms, the
# second 25-45 ms after the first), or this long after it was wanted
STILL_S = 0.08
MOST_S = 0.5


def window_keys() -> str:
    return "  ".join(f"{i} {units.duration(w)}" for i, w in enumerate(WINDOWS, 1))


class DetailScreen(Sparing, Screen[None]):
    """One edge or node: its figures now, its history, the window summed up."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "back"),
        Binding("q", "close", "back", show=False),
        *(
            Binding(str(i), f"window({w})", units.duration(w), show=False)
            for i, w in enumerate(WINDOWS, 1)
        ),
        Binding("colon", "prompt", "command", key_display=":"),
        Binding("r", "reload", "reload"),
        Binding("t", "traces", "traces"),
    ]

    def __init__(
        self,
        metrics: MetricsSource,
        about: Subject,
        window_s: float,
        intro: RenderableType,
        after: RenderableType | None = None,
        chosen: Callable[[float], None] | None = None,
    ) -> None:
        """`chosen` hears each window the user picks, for the next screen to open on."""
        super().__init__()
        self._chosen = chosen
        self.metrics = metrics
        self.about = about
        self.window_s = window_s
        self.intro = intro
        self.after = after
        self.detail: Detail | None = None
        self.problem = ""
        self.tcp = False  # a TCP edge: no requests to plot, and the screen says why
        self.traces: TraceSource | None = None
        self.trace_query: TraceQuery | None = None  # what `t` lists
        self.policy: tuple[PolicyLine, ...] = ()  # an edge's traffic policy (issue 21)
        self._generation = 0
        self._plotted_at = 0  # the width the plots were drawn for

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with DetailBody(id="detail-body"):
            yield Static(Drawn(self.intro), id="detail-now")
            yield Static(id="detail-policy")  # an edge's traffic policy (issue 21)
            yield Static(id="detail-access")  # an edge's authorization (issue 22)
            yield Static(id="detail-history")
            yield Static(id="detail-window")
            yield Static(id="detail-canary")
            if self.after is not None:
                yield Static(Drawn(self.after), id="detail-after")
        yield Input(id="detail-prompt", placeholder="window 15m | 5m 15m 1h 6h 24h 7d, up to 30d")
        yield KeyLine()

    def on_mount(self) -> None:
        self.query_one("#detail-body").focus()
        self._show_policy()
        self.load()
        self._authorize()

    @work(exclusive=True, group="access", exit_on_error=False)
    async def _authorize(self) -> None:
        """For an edge, which AuthorizationPolicy allows or denies its calls, read from each
        cluster's security configuration once (meshtop.detail.authorization)."""
        if not self.about.is_edge:
            return
        settings = getattr(self.app, "settings", None)
        timeout_s = settings.timeout_s if settings is not None else 10.0
        try:
            lines = await authorization(self.about, getattr(self.app, "policies", {}), timeout_s)
        except Exception as exc:  # a source's bug must not take the screen down
            lines = (f"not known: {type(exc).__name__}: {exc}",)
        said_lines = [Text(said(f"  {line}"), style="bold" if " denied" in f" {line}" else "")
                      for line in lines]  # fmt: skip
        body = Group(Text(""), Text("Authorization", style="bold"), *said_lines)
        self.query_one("#detail-access", Static).update(body)

    def _show_policy(self) -> None:
        """The routes' timeout, retries and fault and the circuit breaker beside the
        flags they cause; a fault past its end in the theme's error style, reversed (so
        that it reads without colour too)."""
        if not self.policy:
            return
        error = self.app.current_theme.error or "red"
        lines = [
            Text(said(f"  {p.text}" if p.heading else f"    {p.text}"),
                 style=f"bold {error} reverse" if p.expired else "bold" if p.heading else "")
            for p in self.policy
        ]  # fmt: skip
        body = Group(Text(""), Text("Traffic policy", style="bold"), *lines)
        self.query_one("#detail-policy", Static).update(body)

    # -- fetching -------------------------------------------------------------------

    def load(self) -> None:
        self._generation += 1
        self.detail = None
        self.problem = ""
        self._fetch(self._generation, self.window_s)
        self._draw()

    async def _still(self) -> None:
        """Until the screen has drawn nothing for `STILL_S`, or `MOST_S` at most."""
        seen = -1
        for _ in range(round(MOST_S / STILL_S)):
            drawn = getattr(self.app, "frames", seen)  # frames the app has drawn so far
            if drawn == seen:
                return
            seen = drawn
            await asyncio.sleep(STILL_S)

    # Exclusive: a new window's fetch cancels the one before, and its requests (an answer
    # that was already on its way is dropped by its generation).
    @work(exclusive=True, group="detail", exit_on_error=False)
    async def _fetch(self, generation: int, window_s: float) -> None:
        # not beside the detail's first frames: a namespace's history's queries keep a
        # Prometheus busy for half a second or more, on the console's own cores where it
        # runs beside it; and a detail closed, or given another window, before then asks
        # nothing
        await self._still()
        try:
            planes = change_sources(  # when its routes and Deployments changed
                {c: s.control_plane for c, s in getattr(self.app, "clusters", {}).items()}
            )
            detail = await fetch(self.metrics, self.about, window_s, planes)
        except MeshtopError as exc:
            self.post_message(DetailFailed(generation, str(exc)))
        except Exception as exc:  # a source's bug must not take the screen down
            self.post_message(DetailFailed(generation, f"{type(exc).__name__}: {exc}"))
        else:
            self.post_message(DetailReady(generation, detail))

    def on_detail_ready(self, message: DetailReady) -> None:
        if message.generation == self._generation:  # an answer for an older window: dropped
            self.detail = message.detail
            self._draw()

    def on_detail_failed(self, message: DetailFailed) -> None:
        if message.generation == self._generation:
            self.problem = message.reason
            self._draw()

    # -- drawing --------------------------------------------------------------------

    def _plot_width(self) -> int:
        body = self.query_one("#detail-body")
        width = body.size.width or self.app.size.width
        return max(30, min(width - 2, 140))

    def _draw(self) -> None:
        title = Text(shown(self.about.title), style="bold")
        title.append(f"   window {units.duration(self.window_s)}", style="bold")
        title.append(f"   {window_keys()}  :window D", style="dim")
        self.query_one("#detail-title", Static).update(title)
        history = self.query_one("#detail-history", Static)
        window = self.query_one("#detail-window", Static)
        canary = self.query_one("#detail-canary", Static)
        w = units.duration(self.window_s)
        if self.problem:
            history.update(Text(said(f"history unavailable: {self.problem}"), style="bold"))
            window.update("")
            canary.update("")
            return
        if self.detail is None:
            fetching = said(f"fetching the last {w} from {self.metrics.name}…")
            history.update(Text(fetching, style="dim"))
            window.update("")
            canary.update("")
            return
        h = self.detail.history
        try:
            d = self.detail
            self._plotted_at = self._plot_width()
            plots = history_view(h, self._plotted_at, self.tcp, d.changes, d.unread,
                                 d.config, d.config_unread, end_words(self.app))  # fmt: skip
            history.update(Group(Text(""), plots))
            window.update(Group(Text(""), window_view(h.summary, h.window_s)))
            canary.update(
                Group(Text(""), canary_view(self.about.app, self.detail.canary, self._current()))
                if self.detail.canary
                else ""
            )
        except Exception as exc:  # an answer we cannot draw is said in place
            history.update(Text(said(f"cannot draw this history: {type(exc).__name__}: {exc}")))

    def _current(self) -> str:
        """The version this detail is about, to mark in the canary comparison."""
        ids = set(self.about.destinations)
        return next((v for v, members in self.about.versions if ids == set(members)), "")

    def body_resized(self) -> None:
        if self.detail is not None and self._plot_width() != self._plotted_at:
            self._draw()

    # -- keys -----------------------------------------------------------------------

    def action_close(self) -> None:
        prompt = self.query_one("#detail-prompt", Input)
        if prompt.has_class("shown"):
            prompt.remove_class("shown")
            self.query_one("#detail-body").focus()
            return
        self.dismiss()

    def action_window(self, seconds: float) -> None:
        if self._chosen is not None:
            self._chosen(seconds)
        if seconds != self.window_s or self.problem:
            self.window_s = seconds
            self.load()

    def action_reload(self) -> None:
        self.load()

    def action_traces(self) -> None:
        """The traces that crossed this edge (or node), slowest first."""
        if self.traces is None:
            self.notify(
                "no trace backend: give --tracing jaeger=URL, tempo=URL or zipkin=URL "
                "(or [tracing] in the config file)",
                severity="warning",
                markup=False,
            )
            return
        if self.trace_query is None:
            self.notify("no workload to look for in the traces here", severity="warning")
            return
        from meshtop.tui.screens.traces import TraceListScreen

        self.app.push_screen(TraceListScreen(self.traces, self.trace_query))

    def action_prompt(self) -> None:
        prompt = self.query_one("#detail-prompt", Input)
        prompt.value = ""
        prompt.add_class("shown")
        prompt.focus()

    @on(Input.Submitted, "#detail-prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        event.input.remove_class("shown")
        self.query_one("#detail-body").focus()
        try:
            self.run_command(event.value.strip())
        except MeshtopError as exc:
            self.notify(str(exc), severity="warning", markup=False)

    def run_command(self, line: str) -> None:
        """`:window 15m`; `:q` or `:back` closes."""
        words = line.removeprefix(":").split()
        if not words:
            return
        if words[0] in ("q", "back", "quit"):
            self.dismiss()
        elif words[0] == "window" and len(words) == 2:
            self.action_window(parse_window(words[1]))
        else:
            raise UsageError(f"here: window DURATION (e.g. window 15m), or q; not {line!r}")
