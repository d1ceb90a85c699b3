"""The traces behind an edge or a node, slowest first, and any of them as a waterfall.
Lists and traces are fetched in workers: a slow or failing trace backend is said in
place and the console goes on.
Over 400 lines: the trace list and the waterfall share the fetched sample, its filter
and the hand-off keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from meshtop import units
from meshtop.errors import MeshtopError
from meshtop.model import Trace, TraceQuery, TraceSummary
from meshtop.sanitize import said, shown
from meshtop.sources.protocols import TraceSource
from meshtop.tui import handoff
from meshtop.tui.screens.sparing import Sparing
from meshtop.tui.travel import clock_words, past_moment
from meshtop.tui.widgets.keyline import KeyLine
from meshtop.tui.widgets.tables import RowTable, fill
from meshtop.tui.widgets.waterfall import Waterfall
from meshtop.units import clock_time
from meshtop.waterfall import Row, Tree


@dataclass
class Listed(Message):
    generation: int
    found: list[TraceSummary] | None
    problem: str = ""


@dataclass
class Fetched(Message):
    trace: Trace | None
    problem: str = ""


COLUMNS = [
    (name or "mark", name)
    for name in ("", "start", "duration", "spans", "root", "services", "trace id")
]
CELL_PADDING = 2  # a DataTable's cell padding, both sides of every column
ROOT_LEAST = 12  # the root's columns at least, where the width has them


def fit_services(services: Sequence[str], room: int) -> str:
    """Every service the trace crossed in `room` columns: as many whole names as fit,
    then how many more (`productpage, reviews +3`), never a name cut to `pro`."""
    names = [shown(s) for s in services]
    whole = ", ".join(names)
    if len(whole) <= room:
        return whole
    for n in range(len(names) - 1, 0, -1):
        text = f"{', '.join(names[:n])} +{len(names) - n}"
        if len(text) <= room:
            return text
    return units.clip(f"{len(names)} services", room) if room > 0 else ""


Rows = list[tuple[str, list[str | Text]]]


def _trace_rows(found: Sequence[TraceSummary], width: int) -> tuple[list[tuple[str, str]], Rows]:
    """The columns and rows fitted to `width`: the trace id always whole (it is what is
    looked up in another tool), the root and the services in what is left; where that
    is too little, the services, then the span count, left out."""
    cells = {
        s.trace_id: {
            "mark": Text("!", style="bold red") if s.error else "",
            "start": clock_time(s.start_us, "%H:%M:%S.%f"),
            "duration": units.ms(s.duration_us / 1000),
            "spans": "?" if s.span_count is None else str(s.span_count),
            "trace id": s.trace_id,
        }
        for s in found
    }

    def widest(key: str, title: str) -> int:
        return max([len(title), *(len(str(c[key])) for c in cells.values())])

    fixed = {key: widest(key, title) for key, title in COLUMNS if key not in ("root", "services")}
    roots = max([len("root"), *(len(shown(s.root)) for s in found)])
    everyone = max([len("services"), *(len(", ".join(map(shown, s.services))) for s in found)])
    keys = [key for key, _ in COLUMNS]

    def left() -> int:  # what the root and the services have
        return width - sum(fixed[k] for k in keys if k in fixed) - CELL_PADDING * len(keys)

    if left() < ROOT_LEAST + len("services"):
        keys.remove("services")
    if left() < ROOT_LEAST:
        keys.remove("spans")
    root_room = max(len("root"), min(roots, left()))
    if "services" in keys:
        share = max(ROOT_LEAST, left() - everyone, left() * 2 // 5)
        root_room = max(len("root"), min(roots, share, left() // 2))
    room = max(len("services"), left() - root_room)
    for s in found:
        cells[s.trace_id]["root"] = units.clip(shown(s.root), root_room)
        cells[s.trace_id]["services"] = fit_services(s.services, room)
    headers = [(key, title) for key, title in COLUMNS if key in keys]
    return headers, [(s.trace_id, [cells[s.trace_id][k] for k in keys]) for s in found]


def _failed(summary: TraceSummary) -> bool:
    """ "Errors only" as a search asks it: a span of the service listed failed, where the
    backend's answer says; else a span anywhere in the trace."""
    return bool(summary.error if summary.failed_here is None else summary.failed_here)


def _describe(q: TraceQuery, until: str = "") -> str:
    """The question in words; `until`: the moment the search ends at (`10:02`), if past."""
    me = f"{q.service} {q.version}".strip()
    what = f"{me} → {q.peer_service} {q.peer_version}".strip() if q.peer_service else me
    parts = [what]
    if q.errors_only:
        parts.append("errors only")
    if q.min_duration_ms:
        parts.append(f"≥ {units.ms(q.min_duration_ms)}")
    if q.operation:
        parts.append(f"operation {q.operation}")
    if until:  # the console at a past moment
        parts.append(f"the {units.duration(q.lookback_s)} up to {until}")
    return ", ".join(parts)


class TraceListScreen(Sparing, Screen[None]):
    """Traces of an edge or a node: start, duration, spans, services, error mark."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "back"),
        Binding("e", "errors", "errors only"),
        Binding("d", "slower", "slower than…"),
        Binding("o", "order", "order"),
        Binding("slash", "operation", "operation", key_display="/"),
        Binding("f", "more", "fetch more"),
        Binding("r", "reload", "new sample"),
        Binding("y", "copy", "copy id", show=False),
        Binding("O", "link", "link", show=False),
    ]
    SLOWER = (None, 50.0, 100.0, 250.0, 500.0, 1000.0)

    def __init__(self, traces: TraceSource, query: TraceQuery) -> None:
        super().__init__()
        self.traces = traces
        self.ask = query  # what the backend is asked: whose traces, of which operation
        # what is shown of the sample: `e` and `d` filter what was fetched, never fetch
        self.errors_only = query.errors_only
        self.slower = query.min_duration_ms
        self.found: list[TraceSummary] = []  # the sample fetched, kept until `r`
        self.by_start = False
        self.asked = 0  # questions put to the backend; only the latest one's answer shows
        self.answered = 0  # the latest question whose answer is shown
        self.adding = False  # the question in flight adds to the sample (`f`)
        self.problem = ""  # why the latest answer is no list
        self.until = ""  # the moment the search ends at, said, while the console is there

    def compose(self) -> ComposeResult:
        yield Static(id="traces-title")
        yield Static(id="traces-note")
        yield RowTable(id="traces-table", cursor_type="row", zebra_stripes=True)
        yield Input(id="traces-prompt", placeholder="operation (empty: any), e.g. GET /productpage")
        yield KeyLine()

    def on_mount(self) -> None:
        moment = past_moment(self.app)
        if moment is not None and self.ask.end_s is None:  # the traces up to the moment
            self.ask = replace(self.ask, end_s=moment[0])
            self.until = clock_words(*moment)
        table = self.query_one(DataTable)
        fill(table, COLUMNS, [])
        table.focus()
        self.load()

    @property
    def shown_query(self) -> TraceQuery:
        """The question with the filters on: what the list shows of the sample, and what
        `f` and `r` ask the backend for."""
        return replace(self.ask, errors_only=self.errors_only, min_duration_ms=self.slower)

    def load(self, *, adding: bool = False) -> None:
        self.asked += 1
        self.adding = adding
        self._say(f"asking {self.traces.name}…")
        self._fetch(self.asked, self.shown_query)

    @work(exclusive=True, group="traces", exit_on_error=False)
    async def _fetch(self, generation: int, query: TraceQuery) -> None:
        try:
            found = list(await self.traces.find_traces(query))
        except MeshtopError as exc:
            self.post_message(Listed(generation, None, str(exc)))
        except Exception as exc:  # a source's bug must not take the console down
            self.post_message(Listed(generation, None, f"{type(exc).__name__}: {exc}"))
        else:
            self.post_message(Listed(generation, found))

    def on_listed(self, message: Listed) -> None:
        if message.generation != self.asked:
            return
        self.answered = message.generation
        self.problem = message.problem
        if message.found is None:
            self.found = []
            fill(self.query_one(DataTable), COLUMNS, [])  # the old rows are not what it says
            self._say(f"traces unavailable: {message.problem}")
            return
        if self.adding:  # `f`: what was listed stays, the new ones join it
            known = {s.trace_id for s in self.found}
            self.found = [*self.found, *(s for s in message.found if s.trace_id not in known)]
        else:
            self.found = message.found
        self._show()

    def _say(self, text: str) -> None:
        title = Text(shown(f"Traces: {_describe(self.shown_query, self.until)}"), style="bold")
        title.append(said(f"   from {self.traces.name}"), style="dim")
        self.query_one("#traces-title", Static).update(title)
        self.query_one("#traces-note", Static).update(Text(said(text), style="dim"))

    def shown_traces(self) -> list[TraceSummary]:
        """The sample as the filters and the order have it."""
        unique = {s.trace_id: s for s in reversed(self.found)}  # a trace listed twice, once
        least_us = (self.slower or 0.0) * 1000
        kept = [
            s
            for s in unique.values()
            if (not self.errors_only or _failed(s)) and s.duration_us >= least_us
        ]
        return sorted(kept, key=lambda s: s.start_us if self.by_start else -s.duration_us)

    def _show(self) -> None:
        table = self.query_one(DataTable)
        was = (
            table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
            if table.row_count
            else None
        )
        rows = self.shown_traces()
        width = table.size.width or self.app.size.width
        fill(table, *_trace_rows(rows, width - 2))  # 2: the scrollbar's, if any
        ids = [s.trace_id for s in rows]
        if was in ids:  # the trace looked at stays selected whatever the filter
            table.move_cursor(row=ids.index(was), animate=False)
        order = "by start" if self.by_start else "slowest first"
        fetched = len({s.trace_id for s in self.found})
        if len(rows) == fetched:
            count = f"{fetched} traces, {order}" if rows else "no trace matched"
        else:
            count = f"{len(rows)} of {fetched} traces fetched, {order}"
        self._say(
            f"{count}   e errors only   d slower than   / operation   o order   "
            "f fetch more   r new sample"
        )

    def on_resize(self) -> None:
        if self.answered and not self.problem:
            self._show()

    def action_errors(self) -> None:
        self.errors_only = not self.errors_only
        self._show()

    def action_slower(self) -> None:
        i = self.SLOWER.index(self.slower) if self.slower in self.SLOWER else 0
        self.slower = self.SLOWER[(i + 1) % len(self.SLOWER)]
        self._show()

    def action_order(self) -> None:
        self.by_start = not self.by_start
        self._show()

    def action_reload(self) -> None:
        self.load()

    def _highlighted(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value

    def action_copy(self) -> None:
        """`y`: the highlighted trace's id to the clipboard (`handoff`)."""
        note = self.query_one("#traces-note", Static)
        handoff.say_in(note, handoff.trace_id_line(self.app, self._highlighted()))

    def action_link(self) -> None:
        """`O`: the highlighted trace's page in Jaeger or Zipkin ([links]), copied."""
        line = handoff.trace_link_line(self.app, self.traces, self._highlighted())
        handoff.say_in(self.query_one("#traces-note", Static), line)

    def action_more(self) -> None:
        self.load(adding=True)

    def action_operation(self) -> None:
        prompt = self.query_one("#traces-prompt", Input)
        prompt.value = self.ask.operation or ""
        prompt.add_class("shown")
        prompt.focus()

    @on(Input.Submitted, "#traces-prompt")
    def _operation(self, event: Input.Submitted) -> None:
        event.input.remove_class("shown")
        self.query_one(DataTable).focus()
        self.ask = replace(self.ask, operation=event.value.strip() or None)
        self.load()

    @on(DataTable.RowSelected, "#traces-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.app.push_screen(WaterfallScreen(self.traces, event.row_key.value))


def span_detail(row: Row) -> Table:
    """A span's tags, events and process, as the detail pane shows them: as text, for a tag
    value such as `[object Object]` or `/search?q=[/x]` is not Rich markup."""
    s = row.span
    lines = [
        ("span", f"{s.service}  {s.operation}  ({s.kind or 'kind not said'})"),
        ("duration", units.ms(s.duration_us / 1000) + ("   ERROR" if s.error else "")),
        ("ids", f"span {s.span_id}  parent {s.parent_id or '-'}"),
    ]
    if row.orphan:
        lines.append(("parent", "not in the trace: shown as a root"))
    if row.skew_us:
        lines.append(
            ("clock skew", f"moved {units.ms(row.skew_us / 1000)} to sit inside its parent")
        )
    lines += [(f"tag {key}", value) for key, value in sorted(s.tags.items())]
    for e in s.events:
        fields = ", ".join(f"{k}={v}" for k, v in e.fields.items() if k != "event")
        at = units.ms((e.time_us - s.start_us) / 1000)
        lines.append(("event", f"+{at} {e.name} {fields}".rstrip()))
    lines += [(f"process {key}", value) for key, value in sorted(s.process.items())]
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column()
    for name, value in lines:
        t.add_row(Text(shown(name)), Text(shown(value)))
    return t


class WaterfallScreen(Sparing, Screen[None]):
    """One trace as a waterfall, with the selected span's detail below."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "back"),
        Binding("y", "copy", "copy id", show=False),
        Binding("O", "link", "link", show=False),
    ]

    def __init__(self, traces: TraceSource, trace_id: str, trace: Trace | None = None) -> None:
        super().__init__()
        self.traces = traces
        self.trace_id = trace_id
        self.trace = trace
        self.shown = False  # the trace and its first span, or why there is none, are drawn

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Trace {self.trace_id}", style="bold"), id="waterfall-title")
        yield Static(Text(f"fetching from {self.traces.name}…", style="dim"), id="waterfall-note")
        with VerticalScroll(id="span-detail"):
            yield Static(id="span-text")
        yield KeyLine()

    def on_mount(self) -> None:
        if self.trace is not None:
            self._show(self.trace)
        else:
            self._fetch()

    @work(exclusive=True, group="trace", exit_on_error=False)
    async def _fetch(self) -> None:
        try:
            trace = await self.traces.get_trace(self.trace_id)
        except MeshtopError as exc:
            self.post_message(Fetched(None, str(exc)))
        except Exception as exc:
            self.post_message(Fetched(None, f"{type(exc).__name__}: {exc}"))
        else:
            self.post_message(Fetched(trace))

    def on_fetched(self, message: Fetched) -> None:
        if message.trace is None:
            note = self.query_one("#waterfall-note", Static)
            note.update(Text(f"trace unavailable: {message.problem}", style="bold"))
            self.shown = True
            return
        self._show(message.trace)

    def _show(self, trace: Trace) -> None:
        tree = Tree(trace)
        first, last = tree.bounds
        services = len({s.service for s in trace.spans})
        errors = sum(s.error for s in trace.spans)
        note = (
            f"{len(trace.spans)} spans, {services} services, {units.ms((last - first) / 1000)}"
            f"{f', {errors} failed' if errors else ''}   "
            "enter folds  z zooms to the span  + - zoom  0 whole trace  █ critical path"
        )
        self.query_one("#waterfall-note", Static).update(Text(note, style="dim"))
        view = Waterfall(tree, id="waterfall")
        self.mount(view, before=self.query_one("#span-detail"))
        view.focus()
        self.shown = not trace.spans  # else once the first span's detail is drawn

    def action_copy(self) -> None:
        """`y`: the trace's id to the clipboard (`handoff`)."""
        note = self.query_one("#waterfall-note", Static)
        handoff.say_in(note, handoff.trace_id_line(self.app, self.trace_id))

    def action_link(self) -> None:
        """`O`: the trace's page in Jaeger or Zipkin ([links]), copied."""
        line = handoff.trace_link_line(self.app, self.traces, self.trace_id)
        handoff.say_in(self.query_one("#waterfall-note", Static), line)

    def on_waterfall_selected(self, message: Waterfall.Selected) -> None:
        self.query_one("#span-text", Static).update(span_detail(message.row))
        self.shown = True
