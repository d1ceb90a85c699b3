"""The stat tab (`4`): one row per node of the graph's grouping (versioned app, app,
workload or service), what it answers and what it calls, as `linkerd viz stat` lists
them: success rate, requests and errors per second, the 4xx share, latency, mTLS, TCP
connections, and its request rate over the last window as a sparkline; worst first by
impact. The figures are the snapshot's, added up per node (`model/node_stats.py`); the
rows are made by a worker, off the screen's thread, and drawn as the edge table draws
its own: virtually, only the rows on screen.
Over 400 lines: the aggregation's columns and the virtual drawing it shares in shape with
the edge table."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets._data_table import RowKey
from textual.worker import Worker, WorkerState

from meshtop import plot, units
from meshtop.graphview import GraphView, Grouping, ViewNode, ViewOptions, build
from meshtop.health import DEFAULT_THRESHOLDS, HealthMemory
from meshtop.model import Health, MeshSnapshot
from meshtop.model.node_stats import Rates, Side, impact, sides
from meshtop.sanitize import shown
from meshtop.tui.first import drawn_first
from meshtop.tui.widgets.edge_table import HEALTH_WORD, VirtualTable, _Order, health_styles
from meshtop.turns import sorted_in_turns

SPARK = 10  # the sparkline's columns, each a tenth of the window


@dataclass(frozen=True, slots=True)
class StatRow:
    node: ViewNode
    inbound: Side
    outbound: Side


Value = Callable[[StatRow], Any]  # a column's figure, for its sort; None: none (last)


def _nan_is(value: float | None, instead: float) -> float | None:
    return instead if value is not None and math.isnan(value) else value


def _figures(pick: Callable[[StatRow], Side]) -> dict[str, Value]:
    """A side's figures as sort values; an unknown error figure is the worst there is."""
    return {
        "sr": lambda r: _nan_is(pick(r).success_rate, -1.0),
        "rps": lambda r: pick(r).rps if pick(r).calls else None,
        "errors": lambda r: _nan_is(pick(r).errors_per_s, math.inf) if pick(r).rps else None,
        "4xx": lambda r: pick(r).client_errors,
        "p50": lambda r: pick(r).p50_ms,
        "p95": lambda r: pick(r).p95_ms,
        "p99": lambda r: pick(r).p99_ms,
        "mtls": lambda r: pick(r).mtls,
        "tcp": lambda r: pick(r).tcp_connections_per_s,
    }


_IN, _OUT = _figures(lambda r: r.inbound), _figures(lambda r: r.outbound)


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # what `:sort` names it
    header: str
    width: int  # None-free: the name's is worked out from the room left
    value: Value | None  # None: not sortable (the sparkline)
    descending: bool = True  # its first direction: the most (the worst) first


def _health(r: StatRow) -> tuple[float, ...]:
    rank, errors, rps = impact(r.node.health, r.inbound, r.outbound)
    return (-rank, -errors, -rps)  # the larger, the worse


COLUMNS: tuple[Column, ...] = (
    Column("health", "", 4, _health),
    Column("name", "NAME", 0, lambda r: r.node.label.casefold(), descending=False),
    Column("sr", "SR", 7, _IN["sr"], descending=False),  # the lowest success first
    Column("rps", "RPS", 7, _IN["rps"]),
    Column("errors", "ERR/S", 6, _IN["errors"]),
    Column("4xx", "4XX", 6, _IN["4xx"]),
    Column("p50", "P50", 6, _IN["p50"]),
    Column("p95", "P95", 6, _IN["p95"]),
    Column("p99", "P99", 6, _IN["p99"]),
    Column("mtls", "MTLS", 5, _IN["mtls"], descending=False),  # the least encrypted first
    Column("tcp", "TCP", 7, _IN["tcp"]),
    Column("out-sr", "OUT SR", 7, _OUT["sr"], descending=False),
    Column("out-rps", "OUT RPS", 8, _OUT["rps"]),
    Column("out-errors", "OUT ERR/S", 10, _OUT["errors"]),
    Column("out-4xx", "OUT 4XX", 8, _OUT["4xx"]),
    Column("out-p50", "OUT P50", 8, _OUT["p50"]),
    Column("out-p95", "OUT P95", 8, _OUT["p95"]),
    Column("out-p99", "OUT P99", 8, _OUT["p99"]),
    Column("out-mtls", "OUT MTLS", 9, _OUT["mtls"], descending=False),
    Column("out-tcp", "OUT TCP", 8, _OUT["tcp"]),
    Column("trend", "LAST", SPARK, None),
)
BY_KEY = {c.key: c for c in COLUMNS}
SORTS = tuple(c.key for c in COLUMNS if c.value is not None)
# Dropped in this order when the terminal is narrow; the rest always shows.
DROPPABLE = ("out-tcp", "out-mtls", "out-p50", "out-p95", "out-4xx", "tcp", "out-p99", "p50",
             "out-sr", "p95", "4xx", "out-errors", "out-rps", "mtls")  # fmt: skip
NAME_MIN, NAME_MAX = 16, 32
PADDING = 2  # DataTable's cell padding, both sides
SCROLLBAR = 2  # a vertical scroll bar, when the rows overflow
ROWS_KEPT = 512  # rows whose cells are kept made between draws
# More rows are sorted again by the worker, the rows staying as they are meanwhile (issue
# 17: 20,783 nodes at 20,000 services took 50-400 ms of the screen's thread a sort)
SORTED_AT_ONCE = 5_000

# what the worker is asked: a snapshot, its grouping, its rates to record, its rows to
# make, the sort, the table's width, and the rows there are to sort again (or None)
_Asked = tuple[
    MeshSnapshot,
    Grouping,
    bool,
    bool,
    tuple[str, bool],
    int,
    tuple[GraphView | None, dict[str, StatRow]] | None,
]


def columns_for(width: int) -> tuple[tuple[str, ...], int]:
    """Which columns fit in `width` cells, and how wide the name may be."""
    keys = [c.key for c in COLUMNS]

    def name_width() -> int:
        fixed = sum(c.width + PADDING for c in COLUMNS if c.key in keys)
        return width - fixed - SCROLLBAR

    for dropped in DROPPABLE:
        if name_width() >= NAME_MIN:
            break
        keys.remove(dropped)
    return tuple(keys), max(NAME_MIN, min(NAME_MAX, name_width()))


def ordered(rows: Mapping[str, StatRow], column: str, descending: bool) -> list[str]:
    """The rows' keys in the column's order; rows without the figure last, whichever
    way; ties worst first by impact, then by name."""

    def tied(k: str) -> tuple[Any, ...]:
        r = rows[k]
        return (*impact(r.node.health, r.inbound, r.outbound), r.node.label)

    keys = sorted_in_turns(rows, tied)
    value = BY_KEY[column].value
    assert value is not None
    values = {k: value(rows[k]) for k in keys}
    have = sorted_in_turns((k for k in keys if values[k] is not None), values.__getitem__,
                           reverse=descending)  # fmt: skip
    return have + [k for k in keys if values[k] is None]


def names(view: GraphView, width: int) -> dict[str, str]:
    """Each node's name: its label where that is unique, else with its namespace, else
    with its cluster too; cut in the middle to `width` (the end tells versions apart)."""
    forms: tuple[Callable[[ViewNode], str], ...] = (
        lambda n: n.label,
        lambda n: f"{n.namespace}/{n.label}",
        lambda n: f"{n.cluster}/{n.namespace}/{n.label}",
    )
    counts = [dict[str, int]() for _ in forms]
    for n in view.nodes.values():
        for count, form in zip(counts, forms, strict=True):
            count[form(n)] = count.get(form(n), 0) + 1
    out = {}
    for node_id, n in view.nodes.items():
        name = next((form(n) for form, c in zip(forms, counts, strict=True) if c[form(n)] == 1),
                    node_id)  # fmt: skip
        if len(name) > width:
            head = (width - 1) // 2
            name = name[:head] + "…" + name[len(name) - (width - 1 - head) :]
        out[node_id] = shown(name)
    return out


def per_s(value: float, unit: str = "/s") -> str:
    """A rate as `units.rps` writes it, in another unit: errors `0.05/s`, `174/s`,
    `1.2k/s`; connections `83.2c/s`, `110c/s`."""
    text = units.rps(value)
    return text.removesuffix("rps") + unit if text.endswith("rps") else text


def _side_cells(
    s: Side, prefix: str, styles: Mapping[Health, str], health: Health
) -> dict[str, Text]:
    def right(text: str, style: str = "") -> Text:
        return Text(text, style, justify="right")

    dash = right(units.DASH)
    if not s.calls:
        return {f"{prefix}{k}": dash for k in _IN}
    bad = styles[health] if health in (Health.FAILING, Health.DEGRADED) else ""
    sr, errors = s.success_rate, s.errors_per_s
    failed = bad if errors != 0 else ""  # NaN too: an unknown error rate
    if s.mtls is None:
        mtls = dash
    elif s.mtls >= 1.0:
        mtls = right("yes", styles[Health.HEALTHY])
    elif s.mtls <= 0.0:
        mtls = right("no", styles[Health.DEGRADED])
    else:
        mtls = right(f"{s.mtls * 100:.0f}%", styles[Health.DEGRADED])
    client = s.client_errors
    tcp = s.tcp_connections_per_s
    return {
        f"{prefix}sr": right(units.DASH if sr is None else units.percent(sr), failed),
        f"{prefix}rps": right(units.rps(s.rps) if s.rps else units.DASH if tcp else "0rps"),
        f"{prefix}errors": right(per_s(errors) if s.rps else units.DASH, failed),
        f"{prefix}4xx": right(
            units.DASH if client is None else units.percent(client),
            styles[Health.DEGRADED] if client else "",
        ),
        f"{prefix}p50": right(units.ms(s.p50_ms)),
        f"{prefix}p95": right(units.ms(s.p95_ms)),
        f"{prefix}p99": right(units.ms(s.p99_ms)),
        f"{prefix}mtls": mtls,
        f"{prefix}tcp": right(units.DASH if tcp is None else per_s(tcp, "c/s")),
    }


class StatTable(VirtualTable):
    """One row per node of the grouping; row keys are the graph's node ids. Columns
    follow the width (the least needed go first when it is narrow); the header marks the
    sort (▼ the most first, ▲ the least). `s` takes the next column, `sort_by` and
    `reverse_sort` any column either way; `enter` says `RowSelected` (the screen opens
    the node's detail, `opened`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "sort", show=False),
    ]

    @dataclass
    class Taken(Message):
        """What the worker made of a snapshot: the rows (None: only its rates recorded),
        in order (its index made), and their names for a width (None: the same rows,
        sorted again)."""

        snapshot: MeshSnapshot
        grouping: Grouping
        view: GraphView | None
        rows: dict[str, StatRow] | None
        order: _Order
        sort: tuple[str, bool]
        names: tuple[int, dict[str, str]] | None = None

    def __init__(self, **kwargs: Any) -> None:
        self._order = _Order([])  # DataTable's own set-up reads it
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.thresholds = DEFAULT_THRESHOLDS
        self.memory: HealthMemory | None = None  # the console's: health that does not flap
        self.sort_name, self.descending = "health", True
        self.rates = Rates(SPARK)
        self.rows_by_key: dict[str, StatRow] = {}
        self._view: GraphView | None = None
        self._taken: tuple[MeshSnapshot, Grouping] | None = None  # what the rows are of
        self._wanted: tuple[MeshSnapshot, Grouping] | None = None  # the last asked for
        self._recorded: MeshSnapshot | None = None
        self._working = False
        self._asked: _Asked | None = None  # for the worker to take
        self._layout: tuple[tuple[str, ...], int, str, bool, float] | None = None
        self._names: dict[str, str] | None = None
        self._styles: dict[Health, str] = {}
        self._made: OrderedDict[str, dict[str, Text]] = OrderedDict()
        self._sort_shown = (self.sort_name, self.descending)  # the rows' order's
        self._install(_Order([]))

    def has_row(self, key: str) -> bool:
        return key in self.rows_by_key

    def _set_columns(self) -> tuple[str, ...]:
        columns, name_width = columns_for(self._width)
        window_s = self._taken[0].window_s if self._taken else 0.0
        wanted = (columns, name_width, self.sort_name, self.descending, window_s)
        if wanted != self._layout:
            order = self._order
            self.clear(columns=True)
            self._install(_Order([]))  # no rows while the columns go in (see the edge table)
            window = units.duration(window_s) if window_s else ""
            for c in COLUMNS:
                if c.key not in columns:
                    continue
                header = f"{c.header} {window}" if c.key == "trend" else c.header
                if c.key == self.sort_name:
                    header += "▼" if self.descending else "▲"
                width = c.width or name_width
                self.add_column(header, key=c.key, width=max(width, len(header)))
            self._updated_cells.clear()
            self._install(order)
            if self._layout is None or self._layout[1] != name_width:
                self._names = None
            self._layout = wanted
            self._made.clear()
        return columns

    def _row_cells(self, key: str) -> dict[str, Text]:
        cells = self._made.get(key)
        if cells is None:
            cells = self._cells(self.rows_by_key[key])
            self._made[key] = cells
            while len(self._made) > ROWS_KEPT:
                self._made.popitem(last=False)
        else:
            self._made.move_to_end(key)
        return {c: cells[c] for c in (self._layout[0] if self._layout else ())}

    def _cells(self, row: StatRow) -> dict[str, Text]:
        node, styles = row.node, self._styles
        health = node.health
        if self._names is None:
            view, width = self._view, self._layout[1] if self._layout else NAME_MIN
            self._names = names(view, width) if view is not None else {}
        cells = {
            "health": Text(HEALTH_WORD[health], styles[health]),
            "name": Text(self._names.get(node.id, shown(node.label))),
            **_side_cells(row.inbound, "", styles, health),
            **_side_cells(row.outbound, "out-", styles, health),
        }
        trend = Text(" " * SPARK)
        if self._taken is not None:
            outbound = not row.inbound.calls and bool(row.outbound.calls)
            series = self.rates.series(node.members, outbound, self._taken[0])
            if any(v is not None for v in series):
                trend = Text(plot.sparkline(series, SPARK), styles[health])
        cells["trend"] = trend
        return cells

    # -- taking a snapshot in -----------------------------------------------------------

    @property
    def _on_screen(self) -> bool:
        return self.region.width > 0

    @property
    def ready(self) -> bool:
        """Its rows are of the last snapshot and grouping asked for, in order, in columns
        for its width: what a test waits for."""
        return (
            _same(self._taken, self._wanted)
            and bool(self.size.width)
            and self._layout is not None
            and self._layout[:2] == columns_for(self.size.width)
            and self._sort_shown == (self.sort_name, self.descending)
        )

    def show(self, snapshot: MeshSnapshot, grouping: Grouping) -> None:
        """A snapshot, under the graph's grouping: its rates recorded whether the tab
        shows or not (the sparklines cover the window when it is opened), its rows made
        while it shows, or when it next does."""
        self._wanted = (snapshot, grouping)
        self._next()

    def on_show(self) -> None:
        self._next()

    def on_resize(self) -> None:
        layout = self._layout
        if (
            self._taken is not None
            and layout is not None
            and layout[:2] != columns_for(self.size.width)
        ):
            self._set_columns()
            self.refresh()

    def _next(self) -> None:
        """Start the worker on what is wanted, if it is idle and there is something to do:
        a snapshot's rates recorded, its rows made, or (after those) many rows sorted."""
        wanted, sort = self._wanted, (self.sort_name, self.descending)
        if self._working or wanted is None:
            return
        record = wanted[0] is not self._recorded
        rows = self._on_screen and not _same(wanted, self._taken)
        width = self._width
        if record or rows:
            self._working = True
            self._asked = (wanted[0], wanted[1], record, rows, sort, width, None)
            self._make()
        elif self._on_screen and self.rows_by_key and self._sort_shown != sort:
            self._working = True
            resort = (self._view, self.rows_by_key)
            self._asked = (wanted[0], wanted[1], False, False, sort, width, resort)
            self._make()

    # The worker takes what it is asked from `_asked` and clears it, rather than as its
    # arguments: Textual keeps a finished worker's arguments until the garbage collector
    # finds the worker, and with them a snapshot of every edge (at 20,000 services, four
    # old snapshots alive, and 0.25-0.4 s full collections every ~10 s; issue 17).
    @work(thread=True, group="stats", exit_on_error=False, description="listing the stats")
    def _make(self) -> None:
        asked, self._asked = self._asked, None
        if asked is not None:  # one worker at a time (`_working`): always there
            self._take(*asked)

    def _take(
        self,
        snapshot: MeshSnapshot,
        grouping: Grouping,
        record: bool,
        rows: bool,
        sort: tuple[str, bool],
        width: int,
        resort: tuple[GraphView | None, dict[str, StatRow]] | None = None,
    ) -> None:
        if resort is not None:  # the rows there are, in another order
            view, found = resort
            order = _indexed(ordered(found, *sort))
            self.post_message(self.Taken(snapshot, grouping, view, found, order, sort))
            return
        if record:
            self.rates.record(snapshot)
        if not rows:
            self.post_message(self.Taken(snapshot, grouping, None, None, _Order([]), sort))
            return
        self.rates.flush()  # the sparklines drawn with these rows end at this snapshot
        options = ViewOptions(grouping=grouping, thresholds=self.thresholds)
        view = build(snapshot, options, self.memory)
        node_of = {m: v.id for v in view.nodes.values() for m in v.members}
        found = {
            n: StatRow(view.nodes[n], inbound, outbound)
            for n, (inbound, outbound) in sides(snapshot.edges, node_of).items()
        }
        order = _indexed(ordered(found, *sort))
        name_width = columns_for(width)[1]  # the names too: a pass over every node
        said = (name_width, names(view, name_width))
        self.post_message(self.Taken(snapshot, grouping, view, found, order, sort, said))

    def on_stat_table_taken(self, taken: StatTable.Taken) -> None:
        drawn_first(self)
        self._working = False
        self._recorded = taken.snapshot
        sort = (self.sort_name, self.descending)
        if taken.rows is not None and taken.rows is self.rows_by_key:  # sorted again
            if taken.sort == sort:
                self._show_order(taken.order, self._cursor_node(), self._visible_rows())
                self._sort_shown = sort
        elif taken.rows is not None:
            at, before = self._cursor_node(), self._visible_rows()
            self._taken = (taken.snapshot, taken.grouping)
            self._view, self.rows_by_key = taken.view, taken.rows
            self._styles = health_styles(self.app.current_theme)
            self._names = None
            self._made.clear()
            self._set_columns()
            if taken.names is not None and self._layout and taken.names[0] == self._layout[1]:
                self._names = taken.names[1]
            order, self._sort_shown = taken.order, taken.sort
            if taken.sort != sort and len(taken.rows) <= SORTED_AT_ONCE:  # asked meanwhile
                order, self._sort_shown = _Order(ordered(taken.rows, *sort)), sort
            self._show_order(order, at, before)  # many rows: sorted again by the worker
        self._next()

    def _cursor_node(self) -> RowKey | None:
        return self._order.get_key(self.cursor_row) if self._order.keys else None

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bug in the worker: said in place, and the next snapshot tried."""
        if event.worker.group == "stats" and event.state is WorkerState.ERROR:
            self._working = False
            self.notify(f"cannot list the stats: {event.worker.error}", severity="error")

    def _show_order(
        self,
        order: _Order,
        at: RowKey | None,
        before: dict[int, dict[str, Text] | None],
    ) -> None:
        """The rows in `order`, the cursor kept on its node; the rows on screen drawn
        again only where their cells changed (little to send over a slow link)."""
        was_empty = not self._order.keys
        self._install(order)
        index = self._order.get(at) if at is not None else None
        if index is not None and index != self.cursor_row:
            self.move_cursor(row=index, animate=False)
        elif was_empty and order and self.is_mounted:
            self.cursor_coordinate = self.cursor_coordinate  # within the rows there are
            self._highlight_cursor()
        keys = self._order.keys
        top = max(0, int(self.scroll_offset.y))
        for i in range(top, top + self.size.height):
            was = before.get(i)
            now = self._row_cells(keys[i]) if i < len(keys) else None
            if was is None or now is None or was != now:
                self.refresh_row(i)
        self._require_update_dimensions = True
        self.check_idle()

    def _visible_rows(self) -> dict[int, dict[str, Text] | None]:
        if not self._on_screen:
            return {}
        top = max(0, int(self.scroll_offset.y))
        keys = self._order.keys
        layout = self._layout[0] if self._layout else ()
        rows = range(top, min(top + self.size.height, len(keys)))
        return {
            i: {c: v for c, v in made.items() if c in layout} if made is not None else None
            for i, made in ((i, self._made.get(keys[i])) for i in rows)
        }

    # -- the sort ------------------------------------------------------------------------

    def sort_by(self, column: str, descending: bool | None = None) -> str | None:
        """Sort by `column` (its key, or its header: `p99`, `err/s`, `out rps`), the most
        first if `descending`, else the least; None: the column's own first direction
        (the worst first). None on success, else one line naming the valid columns."""
        key = _column_named(column)
        if key is None:
            inbound = " ".join(k for k in SORTS if not k.startswith("out-"))
            return f"no column {shown(column)!r}: sort by {inbound}, or out-… (what it calls)"
        self.sort_name = key
        self.descending = BY_KEY[key].descending if descending is None else descending
        self._resort()
        return None

    def reverse_sort(self) -> None:
        """The same column, the other way."""
        self.descending = not self.descending
        self._resort()

    def action_cycle_sort(self) -> None:
        """`s`: the next column, in its own first direction."""
        i = SORTS.index(self.sort_name)
        self.sort_by(SORTS[(i + 1) % len(SORTS)])

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by it; on the sorted one, the other way."""
        key = str(event.column_key.value)
        if key == self.sort_name:
            self.reverse_sort()
        elif key in SORTS:
            self.sort_by(key)

    def _resort(self) -> None:
        """The rows in the order asked for, the cursor kept on its node; many rows sorted
        by the worker, the cursor kept on its node in the rows as they are meanwhile."""
        at = self._order.get_key(self.cursor_row)  # before the columns go: the cursor too
        self._set_columns()  # the marker moves
        if len(self.rows_by_key) > SORTED_AT_ONCE:
            index = self._order.get(at) if at is not None else None
            if index is not None and index != self.cursor_row:
                self.move_cursor(row=index, animate=False)
            self._next()
        else:
            sort = (self.sort_name, self.descending)
            if self.rows_by_key:
                self._show_order(_Order(ordered(self.rows_by_key, *sort)), at, {})
            self._sort_shown = sort
        self.refresh()

    # -- what the screen asks -----------------------------------------------------------

    def opened(self, key: str | None) -> tuple[MeshSnapshot, GraphView, str] | None:
        """The snapshot, the view and the node a row stands for: what its detail opens on."""
        if key is None or self._taken is None or self._view is None:
            return None
        return (self._taken[0], self._view, key) if key in self._view.nodes else None


def _indexed(keys: list[str]) -> _Order:
    """The rows' order with its index made, in the worker (20,783 keys: 4-12 ms)."""
    order = _Order(keys)
    order.get("")
    return order


def _same(a: tuple[MeshSnapshot, Grouping] | None, b: tuple[MeshSnapshot, Grouping] | None) -> bool:
    """The same snapshot (the very one: comparing two would compare every edge) and
    grouping."""
    return a is not None and b is not None and a[0] is b[0] and a[1] is b[1]


def _column_named(text: str) -> str | None:
    """A column's key from what was typed: its key or its header, any case, spaces or
    dashes alike (`p99`, `ERR/S`, `out rps`, `out-errors`)."""
    wanted = text.strip().casefold().replace(" ", "-")
    for c in COLUMNS:
        if c.value is not None and wanted in (c.key, c.header.casefold().replace(" ", "-")):
            return c.key
    return None
