"""The live edge table: one row per edge, sorted worst first unless the user picks another
order; virtual, so that only the rows on screen are made and drawn again on a refresh;
in compare mode each edge's figures then beside now, and the edges gone since as rows of
their own. Over 400 lines: the lazy views that let DataTable draw, scroll and select rows
it never holds, and the sort, are one widget's."""

from __future__ import annotations

import copy
import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Self, overload

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.geometry import Region
from textual.message import Message
from textual.theme import Theme
from textual.widgets import DataTable
from textual.widgets._data_table import ColumnKey, Row, RowKey
from textual.worker import Worker, WorkerState

from meshtop import units
from meshtop.graphview import EXPIRED, FAULT, FAULTED, fault_marks, grades_of
from meshtop.health import DEFAULT_THRESHOLDS, HealthMemory, Thresholds, errors_per_s
from meshtop.model import Edge, EdgeStats, Health, MeshSnapshot, Protocol, Workload, clusters
from meshtop.sanitize import shown
from meshtop.tui.first import drawn_first
from meshtop.tui.travel import COMPARE_COLUMNS, GONE, MINUS, NEW, then_cells, then_order
from meshtop.tui.widgets.fast_rows import FastRows
from meshtop.turns import BATCH, giving_way, sorted_in_turns

HEALTH_WORD = {
    Health.HEALTHY: "ok",
    Health.DEGRADED: "warn",
    Health.FAILING: "FAIL",
    Health.IDLE: "idle",
}
_RANK = {Health.FAILING: 0, Health.DEGRADED: 1, Health.HEALTHY: 2, Health.IDLE: 3}

# key, header, width (None: a node label, sized to what the screen has left; 0: the
# cluster, as wide as its longest name)
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("health", "", 4),
    ("cluster", "CLUSTER", 0),  # only with several clusters
    ("source", "SOURCE", None),
    ("destination", "DESTINATION", None),
    ("proto", "PROTO", 9),  # grpc+http
    ("rps", "RPS", 7),
    ("rps-then", "RPS THEN", 10),  # compare mode's (issue 19), beside the figure now
    ("Δrps", "ΔRPS", 7),
    ("errors", "ERR%", 6),
    ("err-then", "ERR THEN", 10),
    ("Δerr", "ΔERR", 8),
    ("4xx", "4XX%", 6),
    ("err/s", "ERR/S", 7),  # room for its header and the sort's mark
    ("p50", "P50", 6),
    ("p95", "P95", 6),
    ("p99", "P99", 6),
    ("p99-then", "P99 THEN", 10),
    ("Δp99", "ΔP99", 7),
    ("mtls", "MTLS", 5),
)
# Dropped in this order when the terminal is narrow; the rest always shows. Without its
# column, a cluster is said in the names again (`west/productpage-v1`). In compare mode
# the figures then go next, then what the changes leave least needed: at 80 columns the
# names, rps and errors now, and how each moved.
DROPPABLE = ("proto", "p50", "p95", "err/s", "cluster")
COMPARE_DROPPABLE = ("p99-then", "err-then", "rps-then", "4xx", "mtls", "Δp99", "p99")
LABEL_MIN, LABEL_MAX = 14, 32
LABEL_WANTED = 18  # a column gives way before the names are cut shorter (`www.googleapis.com`)
CLUSTER_MIN, CLUSTER_MAX = 9, 16  # `CLUSTER ▲`; `west→east`
PADDING = 2  # DataTable's cell padding, both sides
DESCENDING, ASCENDING = "▼", "▲"


def columns_for(
    width: int, cluster_width: int = 0, compare: bool = False
) -> tuple[tuple[str, ...], int]:
    """Which columns fit in `width` cells, and how wide each node label may be; the
    cluster's column (`cluster_width` wide) only if it is more than 0; compare mode's
    columns only in compare mode."""
    shown = [
        k
        for k, _, _ in COLUMNS
        if (k != "cluster" or cluster_width) and (compare or k not in COMPARE_COLUMNS)
    ]

    def label_width() -> int:
        fixed = sum(
            (cluster_width if k == "cluster" else w or 0) + PADDING
            for k, _, w in COLUMNS
            if k in shown
        )
        return (width - fixed - 2 * PADDING) // 2

    for dropped in DROPPABLE + (COMPARE_DROPPABLE if compare else ()):
        if label_width() >= LABEL_WANTED:
            break
        if dropped in shown:
            shown.remove(dropped)
    return tuple(shown), max(LABEL_MIN, min(LABEL_MAX, label_width()))


def per_s(value: float) -> str:
    """Failed requests a second, without a unit (the header says it), to two significant
    figures where they are few: `0.15`, `2.8`, `17`, `1.2k`; `0` for none."""
    if not math.isfinite(value):
        return "-"
    if value <= 0:
        return "0"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    if value >= 100:
        return f"{value:.0f}"
    digits = 1 if value >= 1 else 2 if value >= 0.01 else 3
    return f"{value:.{digits}f}"


def edge_cluster(snapshot: MeshSnapshot, e: Edge) -> str:
    """The cluster of an edge's row: its ends', `west→east` for a call between two, the
    one end's for a call from or to a peer outside every cluster."""
    ends = [snapshot.nodes.get(n) for n in (e.source, e.destination)]
    names = list(dict.fromkeys(w.cluster for w in ends if w is not None and w.clustered))
    return "→".join(names)


def _error_first(rate: float) -> float:
    """An error rate as a sort key, worst first; one not known (NaN) is the worst there
    is, as in the stat table (a NaN compares as neither less nor more: where it went
    depended on which rows the sort happened to compare it with)."""
    return -rate if rate == rate else -math.inf


# name (a column) -> key on (edge, health, cluster), in the column's own order: figures
# largest first, names A to Z, as `linkerd viz top` does; health worst first, the more
# failed requests a second first. `s` steps through them in this order.
SORTS: dict[str, Callable[[Edge, Health, str], Any]] = {
    "health": lambda e, h, c: (
        _RANK[h],
        -errors_per_s(e.stats),
        _error_first(e.stats.error_rate),
        -e.stats.rps,
    ),
    "cluster": lambda e, h, c: (c, e.key),
    "source": lambda e, h, c: e.key,
    "destination": lambda e, h, c: (e.destination, e.source),
    "proto": lambda e, h, c: (proto(e), e.key),
    "rps": lambda e, h, c: (-e.stats.rps, -e.stats.tcp_connections_per_s),
    "errors": lambda e, h, c: _error_first(e.stats.error_rate),
    "4xx": lambda e, h, c: (-e.stats.client_error_rate, -e.stats.rps),
    "err/s": lambda e, h, c: (-errors_per_s(e.stats), _error_first(e.stats.error_rate)),
    "p50": lambda e, h, c: -(e.stats.p50_ms or 0.0),
    "p95": lambda e, h, c: -(e.stats.p95_ms or 0.0),
    "p99": lambda e, h, c: -(e.stats.p99_ms or 0.0),
    "mtls": lambda e, h, c: (e.stats.mtls, e.key),
}
# the columns whose own order is ascending (A to Z, least encrypted first): ▲
ASCENDING_FIRST = frozenset({"cluster", "source", "destination", "proto", "mtls"})
# what `:sort` takes, in any case: `err/s`, `p99`, `rps-then`, `Δerr` (or `derr`)
HEADERS = {k: k if k in COMPARE_COLUMNS else (h or k).lower() for k, h, _ in COLUMNS}
SORT_NAMES = {
    **{k.lower(): k for k in (*SORTS, *COMPARE_COLUMNS)},
    **{h.lower(): k for k, h in HEADERS.items()},
    **{k.replace("Δ", "d"): k for k in COMPARE_COLUMNS if k.startswith("Δ")},
}


def proto(e: Edge) -> str:
    """The edge's protocols as the table says them: `http`, or `grpc+http` for both."""
    return "+".join(p.value for p in e.stats.carried)


def short_labels(snapshot: MeshSnapshot, width: int, by_cluster: bool = False) -> dict[str, str]:
    """A node's workload name alone where that is unique in the snapshot, else the
    shortest of `cluster/workload`, `namespace/workload` and the whole id that is:
    narrow columns that still say exactly which node. `by_cluster`: the table has a
    cluster column, which says the cluster; a name need only be unique in its own."""
    labels = ShortLabels(snapshot, width, by_cluster)
    return {node_id: labels.get(node_id, node_id) for node_id in snapshot.nodes}


class ShortLabels:
    """`short_labels` made one node at a time, when asked: what makes a name unique is
    counted over the whole snapshot at once, each label made when first drawn (the
    edge table's 20,783 nodes at 20,000 services: 150-200 ms to make all of them)."""

    def __init__(self, snapshot: MeshSnapshot, width: int, by_cluster: bool = False) -> None:
        self._nodes, self._width, self._by_cluster = snapshot.nodes, width, by_cluster
        nodes = snapshot.nodes.values()
        self._names = Counter(self._name_of(w) for w in nodes)
        # Only nodes whose name is not unique can share a longer form: count those alone.
        shared = [w for w in nodes if self._names[self._name_of(w)] > 1]
        self._forms: tuple[Callable[[Workload], str], ...] = (
            *(() if by_cluster else (lambda w: f"{w.cluster}/{w.name}",)),
            lambda w: f"{w.namespace}/{w.name}",
        )
        self._counts = [
            Counter((self._name_of(w)[0], form(w)) for w in shared) for form in self._forms
        ]
        self._made: dict[str, str] = {}

    def _name_of(self, w: Workload) -> tuple[str, str]:
        return (w.cluster if self._by_cluster else "", w.name)

    def at(self, width: int, by_cluster: bool) -> ShortLabels | None:
        """These labels for another width of the names' columns, counted once (20,783
        nodes at 20,000 services: 40-60 ms); None where the cluster column comes or goes,
        which changes what is unique."""
        if by_cluster != self._by_cluster:
            return None
        if width == self._width:
            return self
        other = copy.copy(self)
        other._width, other._made = width, {}
        return other

    def get(self, node_id: str, default: str) -> str:
        """The node's label, or `default` for a node the snapshot does not have."""
        label = self._made.get(node_id)
        if label is None:
            w = self._nodes.get(node_id)
            if w is None:
                return default
            label = self._made[node_id] = self._label(w)
        return label

    def _label(self, w: Workload) -> str:
        if not w.clustered or self._names[self._name_of(w)] == 1:
            label = w.name
        else:
            cluster = self._name_of(w)[0]
            label = next(
                (
                    form(w)
                    for form, n in zip(self._forms, self._counts, strict=True)
                    if n[(cluster, form(w))] == 1
                ),
                w.id,
            )
        width = self._width
        if len(label) > width:
            # Cut the middle: the end (`-v2`) tells versions apart.
            head = (width - 1) // 2
            label = label[:head] + "…" + label[len(label) - (width - 1 - head) :]
        return label


def health_styles(theme: Theme) -> dict[Health, str]:
    """Health colours from the theme, so that a theme file recolours the table too."""
    return {
        Health.HEALTHY: theme.success or "green",
        Health.DEGRADED: theme.warning or "yellow",
        Health.FAILING: f"bold {theme.error or 'red'}",
        Health.IDLE: "dim",
    }


class KeyedText(Text):
    """A cell that knows its row, so the table can sort rows by their edge."""

    def __init__(self, text: str, style: str, row_key: str) -> None:
        super().__init__(text, style)
        self.row_key = row_key


def _cells(
    edge: Edge,
    health: Health,
    label: Callable[[str], str],
    styles: dict[Health, str],
    cluster: str = "",
    fault: str = "",
    room: int = 0,
) -> dict[str, Text | str]:
    s = edge.stats
    word, style = HEALTH_WORD[health], styles[health]
    tcp = s.protocol is Protocol.TCP
    if s.mtls >= 1.0:
        mtls = Text("yes", styles[Health.HEALTHY])
    elif s.mtls <= 0.0:
        mtls = Text("no", styles[Health.DEGRADED])
    else:
        mtls = Text(f"{s.mtls * 100:.0f}%", styles[Health.DEGRADED])
    errors = Text("-" if tcp else units.percent(s.error_rate), style if s.error_rate else "")
    client = s.client_error_rate
    client_style = styles[Health.DEGRADED] if client else ""  # the caller's, not the edge's
    client_errors = Text("-" if tcp else units.percent(client), client_style)
    failed = errors_per_s(s)
    failed_per_s = "-" if tcp else per_s(failed)
    return {
        "health": KeyedText(word, style, f"{edge.source}>{edge.destination}"),
        "cluster": Text(units.clip(shown(cluster), CLUSTER_MAX)),
        "source": Text(shown(label(edge.source))),
        "destination": _destination(shown(label(edge.destination)), fault, styles, room),
        "proto": Text(proto(edge)),
        "rps": Text(
            f"{s.tcp_connections_per_s:.1f}c/s" if tcp else units.rps(s.rps), justify="right"
        ),
        "errors": Text.assemble(errors, justify="right"),
        "4xx": Text.assemble(client_errors, justify="right"),
        "err/s": Text(failed_per_s, style if failed else "", justify="right"),
        "p50": Text(units.ms(s.p50_ms), justify="right"),
        "p95": Text(units.ms(s.p95_ms), justify="right"),
        "p99": Text(units.ms(s.p99_ms), justify="right"),
        "mtls": mtls,
    }


def _destination(name: str, fault: str, styles: dict[Health, str], room: int = 0) -> Text:
    """The callee's name, marked `↯` when a route injects a fault into it (issue 21),
    `↯ EXPIRED` (`↯✗` where the column has no room for it) in the failing style,
    reversed, once past its end: a test, not an outage. The name gives way to the mark
    in a column of `room` cells."""
    if not fault:
        return Text(name)
    mark, style = FAULTED[FAULT], "bold"
    if fault == EXPIRED:
        style = f"{styles[Health.FAILING]} reverse"
        fits = not room or cell_len(name) + 10 <= room
        mark = "↯ EXPIRED" if fits else FAULTED[EXPIRED]
    left = max(3, room - cell_len(mark) - 1)
    if room and len(name) > left:  # its start and its end kept, as the names are cut
        head = (left - 1) // 2
        name = f"{name[:head]}…{name[len(name) - (left - 1 - head) :]}"
    return Text.assemble(name, " ", (mark, style))


def _compare_cells(
    now: EdgeStats | None, then: EdgeStats | None, styles: dict[Health, str]
) -> dict[str, Text | str]:
    """Compare mode's cells of a row: the figures then, and how they moved, more errors
    or a slower p99 in the degraded style, fewer or faster in the healthy one; `new` in
    bold; `gone` dim."""
    cells: dict[str, Text | str] = {}
    for key, text in then_cells(now, then).items():
        style = ""
        if text == NEW:
            style = "bold"
        elif text == GONE:
            style = "dim"
        elif key in ("Δerr", "Δp99") and text[:1] in ("+", MINUS):
            style = styles[Health.DEGRADED if text[0] == "+" else Health.HEALTHY]
        cells[key] = Text(text, style, justify="right")
    return cells


# a figure now and its column then: a gone edge's figure is said once, in the latter
THEN_OF = {"rps": "rps-then", "errors": "err-then", "p99": "p99-then"}


def _gone(
    cells: dict[str, Text | str], row_key: str, columns: Sequence[str]
) -> dict[str, Text | str]:
    """A row of an edge there was then and is no longer: `gone`, its figures then dim,
    each once: in its column then where that shows, else in the figure's own."""
    dim: dict[str, Text | str] = {
        k: Text(c.plain, "dim", justify=c.justify) if isinstance(c, Text) else Text(c, "dim")
        for k, c in cells.items()
    }
    blank = {k: Text("") for k, then in THEN_OF.items() if then in columns}
    return dim | blank | {"health": KeyedText(GONE, "dim", row_key)}


class _Order:
    """DataTable's `_row_locations` (row key <-> index) over the table's own list of row
    keys; the index of each key is made when first asked for."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self._at: dict[str, int] | None = None

    def get(self, key: RowKey | str) -> int | None:
        if self._at is None:
            self._at = {k: i for i, k in enumerate(self.keys)}
        return self._at.get(key.value if isinstance(key, RowKey) else key)  # type: ignore[arg-type]

    def get_key(self, index: int) -> RowKey | None:
        return RowKey(self.keys[index]) if 0 <= index < len(self.keys) else None

    def contains_value(self, index: int) -> bool:
        return 0 <= index < len(self.keys)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, RowKey | str) and self.get(key) is not None

    def __iter__(self) -> Iterator[RowKey]:
        return (RowKey(k) for k in self.keys)

    def __len__(self) -> int:
        return len(self.keys)


class _Lines(Sequence[Any]):
    """DataTable's list of rows or lines in order (`ordered_rows`, `_y_offsets`), made
    row by row when asked: every row is one line high."""

    def __init__(self, order: Callable[[], _Order], item: Callable[[RowKey], Any]) -> None:
        self._order, self._item = order, item

    def __len__(self) -> int:
        return len(self._order())

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        keys = self._order().keys
        if isinstance(i, slice):
            return [self._item(RowKey(k)) for k in keys[i]]
        return self._item(RowKey(keys[i]))

    def clear(self) -> None:
        pass


class _Made(Mapping[Any, Any]):
    """DataTable's rows (`rows`) or their cells (`_data`) by row key, made when asked."""

    def __init__(self, table: VirtualTable, make: Callable[[str], Any]) -> None:
        self._table, self._make = table, make

    def __getitem__(self, key: object) -> Any:
        value = key.value if isinstance(key, RowKey) else key
        if not isinstance(value, str) or not self._table.has_row(value):
            raise KeyError(key)
        return self._make(value)

    def __iter__(self) -> Iterator[RowKey]:
        return (RowKey(k) for k in self._table._order.keys)

    def __len__(self) -> int:
        return len(self._table._order)

    def clear(self) -> None:
        pass


class VirtualTable(FastRows):
    """A DataTable whose rows are one line each, in `_order`, their cells made only when
    drawn (`_row_cells`): the edge table and the stat tab. DataTable works as ever,
    reading the rows, their cells and their order through `_Made`, `_Order` and `_Lines`
    instead of its own dictionaries."""

    _order: _Order
    _last_width = 0  # the width the table last had on screen (0: never shown)

    @property
    def _width(self) -> int:
        """The table's width, or while it is hidden (0 wide) the width it last had on
        screen, the terminal's before it has ever shown (the tables span the screen):
        rows taken in behind another tab keep the columns they will be shown in. Laid
        out for 80 columns there, the edge table of 20,000 services was laid out again
        for its own width when its tab came back (issue 17)."""
        if self.size.width:
            self._last_width = self.size.width
        return self._last_width or self.app.size.width or 80

    def has_row(self, key: str) -> bool:
        raise NotImplementedError

    def _row_cells(self, key: str) -> Any:
        raise NotImplementedError

    def _install(self, order: _Order) -> None:
        self._order = order
        self._row_locations = order  # type: ignore[assignment]
        self._data = _Made(self, self._row_cells)  # type: ignore[assignment]
        self.rows = _Made(self, lambda k: Row(RowKey(k), 1))  # type: ignore[assignment]
        self._update_count += 1

    @property
    def _y_offsets(self) -> _Lines:  # type: ignore[override]
        return _Lines(lambda: self._order, lambda key: (key, 0))

    @property
    def ordered_rows(self) -> _Lines:  # type: ignore[override]
        return _Lines(lambda: self._order, lambda key: Row(key, 1))

    @property
    def row_count(self) -> int:
        return len(self._order)

    def _get_row_region(self, row_index: int) -> Region:
        """A row's region without summing the heights of the rows above: each is 1."""
        if not self.is_valid_row_index(row_index):
            return Region(0, 0, 0, 0)
        width = sum(c.get_render_width(self) for c in self.columns.values())
        top = row_index + (self.header_height if self.show_header else 0)
        return Region(0, top, max(self.size.width, width + self._row_label_column_width), 1)

    def clear(self, columns: bool = False) -> Self:
        order = self._order  # put back whole: its index of 51,239 keys is kept
        self._install(_Order([]))  # empty while DataTable moves its cursor back to the top
        super().clear(columns)
        self._install(order)
        return self


ROWS_KEPT = 512  # rows whose cells are kept made between draws
# A snapshot of more edges is taken in and sorted by a worker while the table shows the
# rows it has (issue 17: 51,239 edges held the screen's thread 0.5-1.4 s); fewer are
# taken in at once (4,921 edges at 2,000 services: 9-48 ms, sorted and indexed), as many
# as the graph draws without its worker.
TAKEN_AT_ONCE = 2_000


# what the edge table's worker is asked: the generation, the snapshot, the rows there
# are, compare mode's figures and mesh, the sort, and (width, the labels' layout,
# thresholds, health memory)
_Asked = tuple[
    int,
    MeshSnapshot,
    "_Rows",
    Mapping[tuple[str, str], EdgeStats],
    MeshSnapshot | None,
    tuple[str, bool],
    tuple[int, tuple[tuple[str, ...], int] | None, Thresholds, HealthMemory | None],
]


@dataclass(frozen=True, slots=True, eq=False)
class _Rows:
    """A snapshot taken in: its rows by key in the order first seen (the sort's ties keep
    it), their grades, each row's cluster and the column's width, the destinations a
    fault is injected into, and compare mode's figures then and its rows gone since.
    Never changed once made: a worker reads the last one while the table draws it."""

    snapshot: MeshSnapshot | None
    edges: dict[str, Edge]
    healths: Mapping[tuple[str, str], Health]
    clusters: dict[str, str]
    cluster_width: int
    faults: dict[str, str]
    then_stats: Mapping[tuple[str, str], EdgeStats]
    gone: frozenset[str]

    def ordered(self, sort_name: str, reversed_: bool) -> list[str]:
        """The row keys sorted by a column (stable: ties keep their order); each row's
        place worked out in one pass, as `sort_key` says it (51,239 rows: a third less)."""
        if sort_name in COMPARE_COLUMNS:
            places = {k: self.sort_key(sort_name, k) for k in giving_way(self.edges, BATCH)}
        else:
            by, healths, clusters, idle = SORTS[sort_name], self.healths, self.clusters, Health.IDLE
            places = {
                k: by(e, healths.get((e.source, e.destination), idle), clusters.get(k, ""))
                for k, e in giving_way(self.edges.items(), BATCH)
            }
            if sort_name == "health":  # a gone edge after every edge there is now
                gone = self.gone
                places = {k: (k in gone, found) for k, found in giving_way(places.items(), BATCH)}
        return sorted_in_turns(places, places.__getitem__, reversed_)  # on a worker, mostly

    def sort_key(self, sort_name: str, key: str) -> Any:
        """Where a row goes in the sort: by its column's key of the edge, its health and
        cluster; by compare mode's figures then and changes; a gone edge by its figures
        then, after every edge there is now when sorted by health."""
        edge = self.edges[key]
        gone = key in self.gone
        if sort_name in COMPARE_COLUMNS:
            then = edge.stats if gone else self.then_stats.get(edge.key)
            return -then_order(None if gone else edge.stats, then)[sort_name]
        health = self.healths.get(edge.key, Health.IDLE)
        found = SORTS[sort_name](edge, health, self.clusters.get(key, ""))
        return (gone, found) if sort_name == "health" else found


NO_ROWS = _Rows(None, {}, {}, {}, 0, {}, {}, frozenset())


def take_in(
    snapshot: MeshSnapshot,
    previous: _Rows,
    then_stats: Mapping[tuple[str, str], EdgeStats],
    thresholds: Thresholds,
    memory: HealthMemory | None,
) -> _Rows:
    """A snapshot's rows, in the order `previous` had them and the new ones after: graded
    with the console's `memory` (once per snapshot, for the graph and the table: a large
    one comes graded from the refresh), and in compare mode with a row of its own for
    each edge of `then_stats` there is no longer."""
    healths = grades_of(snapshot, thresholds, memory).edges
    # each pass over the edges gives way to a key on the way (`giving_way`): on a
    # worker, 51,239 of them at 20,000 services took 14-28 ms a pass on a slow core
    wanted = {f"{e.source}>{e.destination}": e for e in giving_way(snapshot.edges, BATCH)}
    gone = {
        f"{a}>{b}": Edge(a, b, stats)
        for (a, b), stats in then_stats.items()
        if f"{a}>{b}" not in wanted
    }
    wanted |= gone  # compare mode: a gone edge is a row with its figures then
    # rows keep the order they were first seen in: the sort's ties do not move
    kept = {k: wanted[k] for k in giving_way(previous.edges, BATCH) if k in wanted}
    edges = kept | wanted if len(kept) != len(wanted) else kept
    cluster_of, width = {}, 0
    if len(clusters(snapshot.nodes.values())) > 1:  # each row's (`west→east`)
        cluster_of = {k: edge_cluster(snapshot, e) for k, e in edges.items()}
        longest = max((len(shown(c)) for c in cluster_of.values()), default=0)
        width = max(CLUSTER_MIN, min(CLUSTER_MAX, longest))
    faults = fault_marks(snapshot)
    return _Rows(snapshot, edges, healths, cluster_of, width, faults, then_stats, frozenset(gone))


def _same_nodes(before: _Rows, after: _Rows) -> bool:
    """The same nodes in both rows' snapshots: the labels made for one are the other's."""
    a, b = before.snapshot, after.snapshot
    return a is not None and b is not None and a.nodes.keys() == b.nodes.keys()


def labels_of(
    snapshot: MeshSnapshot, then: MeshSnapshot | None, width: int, by_cluster: bool
) -> ShortLabels:
    """The rows' node labels (`short_labels`), in compare mode a gone edge's nodes too."""
    if then is not None:
        nodes = {**then.nodes, **snapshot.nodes}
        if len(nodes) > len(snapshot.nodes):
            snapshot = replace(snapshot, nodes=nodes)
    return ShortLabels(snapshot, width, by_cluster)


class EdgeTable(VirtualTable):
    """Edges of the current snapshot. Row keys are `source>destination`. Columns follow
    the width of the terminal: the least needed go first when it is narrow.

    Virtual, so that a mesh of any size costs what is on screen: a row's cells are made
    when it is drawn; a snapshot is taken in (graded, keyed, sorted) only while the table
    shows, or when asked for its rows; rows on screen are drawn again only where their
    cells changed (a `VirtualTable`: DataTable draws, scrolls, moves the cursor and says
    what is selected as ever). A snapshot of more than `TAKEN_AT_ONCE` edges is taken in
    and sorted by a worker, one at a time, the newest asked for next, the table showing
    its rows as they were meanwhile; each order made is kept for its rows and sort."""

    @dataclass
    class Taken(Message):
        """What the worker made: the rows, their order for `sort` (its index made too),
        and their labels for a layout where they were made (the node set changed)."""

        generation: int
        rows: _Rows
        order: _Order
        sort: tuple[str, bool]
        labels: tuple[tuple[tuple[str, ...], int], ShortLabels] | None

    def __init__(self, **kwargs: Any) -> None:
        self._order = _Order([])  # DataTable's own set-up reads it
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.sort_name = next(iter(SORTS))
        self.sort_reversed = False  # against the column's own order (`S`)
        self.thresholds = DEFAULT_THRESHOLDS
        self.memory: HealthMemory | None = None  # the console's: health that does not flap
        self._layout: tuple[tuple[str, ...], int] = ((), 0)
        self._snapshot: MeshSnapshot | None = None
        self._rows = NO_ROWS  # the rows drawn, of the snapshot taken in last
        self._orders: dict[tuple[str, bool], _Order] = {}  # the rows' orders made, by sort
        self._labels: ShortLabels | None = None  # short labels, each made when first drawn
        self._styles: dict[Health, str] = {}
        self._made: OrderedDict[str, dict[str, Text | str]] = OrderedDict()
        self._sorted = False  # the rows are in the order of `sort_name`
        # compare mode (`:compare`): the mesh then, and its edges' figures
        self._then: MeshSnapshot | None = None
        self._then_stats: dict[tuple[str, str], EdgeStats] = {}
        # the worker: one at a time; what it made is dropped if the rows were taken in at
        # once or compare mode changed meanwhile (the generation moved on)
        self._working = False
        self._generation = 0
        self._next_rows: _Rows | None = None  # taken in, waiting for its order
        self._asked: _Asked | None = None  # for the worker to take
        self._keep_edge = False  # shown again: the cursor stays on its edge
        self._selecting: str | None = None  # the graph's selection, for rows to come
        self._columns_changing = False
        self._install(_Order([]))

    def has_row(self, key: str) -> bool:
        return key in self._rows.edges

    @property
    def row_count(self) -> int:
        if not self._large and not self._columns_changing:  # DataTable asks as they go
            self._take()
        return len(self._order)

    @property
    def _taken(self) -> MeshSnapshot | None:
        """The snapshot the rows are of."""
        return self._rows.snapshot

    @property
    def _current(self) -> bool:
        """The rows are of the last snapshot shown, in compare mode as it is."""
        rows = self._rows
        return rows.snapshot is self._snapshot and rows.then_stats is self._then_stats

    @property
    def _large(self) -> bool:
        """The last snapshot shown is taken in by the worker."""
        return self._snapshot is not None and len(self._snapshot.edges) > TAKEN_AT_ONCE

    def _wanted(self, width: int | None = None) -> tuple[tuple[str, ...], int]:
        compare = self._then is not None
        return columns_for(width or self._width, self._rows.cluster_width, compare)

    def _set_columns(self) -> tuple[str, ...]:
        wanted = self._wanted()
        if wanted != self._layout:
            order = self._order
            self._columns_changing = True
            try:
                self.clear(columns=True)
                # no rows while the columns go in: DataTable would fill every row's new
                # cell and measure the whole column for each
                self._install(_Order([]))
                columns, label_width = wanted
                for key, header, width in COLUMNS:
                    if key in columns:
                        wide = self._rows.cluster_width if key == "cluster" else width
                        self.add_column(
                            self._header(key, header), key=key, width=wide or label_width
                        )
            finally:
                self._columns_changing = False
            self._updated_cells.clear()
            self._install(order)
            self._layout = wanted
            labels = self._labels
            self._labels = labels.at(wanted[1], "cluster" in wanted[0]) if labels else None
            self._made.clear()
        return self._layout[0]

    def _row_cells(self, key: str) -> dict[str, Text | str]:
        """The cells of a row for the columns shown, made when it is drawn."""
        cells = self._made.get(key)
        if cells is None:
            rows = self._rows
            edge = rows.edges[key]
            cluster = rows.clusters.get(key, "")
            fault = rows.faults.get(edge.destination, "")
            health = rows.healths.get(edge.key, Health.IDLE)  # a gone edge has none
            room = self._layout[1]  # the names' width
            cells = _cells(edge, health, self._label, self._styles, cluster, fault, room)
            gone = key in rows.gone  # (until a large mesh's rows come, with compare off)
            if self._then is not None:
                then = edge.stats if gone else rows.then_stats.get(edge.key)
                cells |= _compare_cells(None if gone else edge.stats, then, self._styles)
            cells = _gone(cells, key, self._layout[0]) if gone else cells
            self._made[key] = cells
            while len(self._made) > ROWS_KEPT:
                self._made.popitem(last=False)
        else:
            self._made.move_to_end(key)
        return {c: cells[c] for c in self._layout[0]}

    def _label(self, node: str) -> str:
        if self._labels is None:
            snapshot, width = self._rows.snapshot, self._layout[1]
            by_cluster = "cluster" in self._layout[0]
            if snapshot is None:
                return node
            self._labels = labels_of(snapshot, self._then, width, by_cluster)
        return self._labels.get(node, node)

    # -- taking a snapshot in ---------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        """Shown, with the columns its width has room for, its rows in order. What a test
        waits for: hidden, the table is laid out for the width it last had on screen (the
        terminal's before it ever showed) and its rows may be unsorted."""
        return (
            bool(self.size.width)
            and self._layout == self._wanted(self.size.width)
            and self._sorted
            and self._current
        )

    @property
    def _on_screen(self) -> bool:
        return self.region.width > 0  # in the screen's layout (empty, it is 0 rows high)

    def on_resize(self) -> None:
        if self._wanted(self.size.width) != self._layout and self._snapshot is not None:
            if not self._large:
                self._take()  # the rows first: the cluster's column is theirs
            before = self._visible_rows()
            self._set_columns()
            self._refresh_changed(before)
            self.show(self._snapshot)

    def on_show(self) -> None:
        """Shown again: sorted now, the cursor kept on its edge."""
        if self._snapshot is None or (self._current and self._sorted):
            return
        if self._large:
            self._keep_edge = True
            self._want()
            return
        at = self._order.get_key(self.cursor_row)
        before = self._visible_rows()
        self._take(sort=True)
        index = self._order.get(at) if at is not None else None
        if index is not None and index != self.cursor_row:
            self.move_cursor(row=index)
        self._refresh_changed(before)

    def show(self, snapshot: MeshSnapshot) -> None:
        """A snapshot's edges: taken in at once if the table shows (the rows on screen
        drawn again where they changed), or by the worker for a large one; else when it
        next shows or is asked (`take_in_behind`)."""
        self._snapshot = snapshot
        if not self._on_screen:
            return
        if self._large:
            self._want()
            return
        before = self._visible_rows()
        self._take(sort=True)
        self._refresh_changed(before)

    def take_in_behind(self) -> None:
        """A large snapshot taken in by the worker behind another tab, while the table has
        no rows yet: its first `2` shows rows at once, then the next snapshot's as they
        come. It waited for the worker's first rows, 1.2-1.4 s at 20,000 services (the
        next `2`s 0.1-0.2 s). Once it has rows, a hidden table takes nothing in."""
        if not self._on_screen and self._large and not self._order.keys:
            self._want()

    def _take(self, sort: bool = False) -> None:
        """Take in the last snapshot shown at once, if not yet: its rows by key in the
        order they were first seen; sorted if `sort`."""
        snapshot = self._snapshot
        if snapshot is None:
            return
        if not self._current:
            rows = take_in(snapshot, self._rows, self._then_stats, self.thresholds, self.memory)
            self._generation += 1  # a worker's rows, older, are not drawn over these
            self._next_rows = None
            same_nodes = _same_nodes(self._rows, rows)
            was_empty = not self._order.keys
            self._take_rows(rows, same_nodes)
            self._install(_Order(list(rows.edges)))
            if was_empty and self._order.keys and self.is_mounted:
                self.cursor_coordinate = self.cursor_coordinate  # within the rows there are
                self._highlight_cursor()
        if sort and not self._sorted:
            self._install(self._order_for(self.sort_name, self.sort_reversed))
            self._sorted = True

    def _take_rows(self, rows: _Rows, same_nodes: bool) -> None:
        """These rows drawn from now on, in no order yet."""
        if not same_nodes:
            self._labels = None
        self._rows, self._orders = rows, {}
        self._styles = health_styles(self.app.current_theme)
        self._made.clear()
        self._set_columns()
        self._sorted = False

    def _order_for(self, sort_name: str, reversed_: bool) -> _Order:
        """The rows' order for a sort: made once for the rows, kept for the next time."""
        order = self._orders.get((sort_name, reversed_))
        if order is None:
            order = _Order(self._rows.ordered(sort_name, reversed_))
            self._orders[(sort_name, reversed_)] = order
        return order

    def _want(self) -> None:
        """The worker set on the last snapshot shown and the sort asked for, if it is
        idle and the rows are not those yet; an order made before, shown at once."""
        snapshot, sort = self._snapshot, (self.sort_name, self.sort_reversed)
        if self._working or snapshot is None or (self._current and self._sorted):
            return
        if self._current and sort in self._orders:
            self._show_order(self._orders[sort])
            return
        self._working = True
        layout = self._layout if self._labels is not None else None  # the labels' layout
        rows = self._next_rows or self._rows
        width = self._width
        self._asked = (self._generation, snapshot, rows, self._then_stats, self._then, sort,
                       (width, layout, self.thresholds, self.memory))  # fmt: skip
        self._take_in()

    # described: Textual's default description is the repr of the arguments, a snapshot.
    # What it is asked is taken from `_asked` and cleared, not passed: Textual keeps a
    # finished worker's arguments until the garbage collector finds it (issue 17).
    @work(thread=True, group="edges", exit_on_error=False, description="taking the edges in")
    def _take_in(self) -> None:
        asked, self._asked = self._asked, None
        if asked is not None:  # one worker at a time (`_working`): always there
            self._taken_in(*asked)

    def _taken_in(
        self,
        generation: int,
        snapshot: MeshSnapshot,
        rows: _Rows,
        then_stats: Mapping[tuple[str, str], EdgeStats],
        then: MeshSnapshot | None,
        sort: tuple[str, bool],
        asked: tuple[int, tuple[tuple[str, ...], int] | None, Thresholds, HealthMemory | None],
    ) -> None:
        width, labelled, thresholds, memory = asked
        same_nodes = True
        if rows.snapshot is not snapshot or rows.then_stats is not then_stats:
            taken = take_in(snapshot, rows, then_stats, thresholds, memory)
            same_nodes = _same_nodes(rows, taken)
            rows = taken
        order = _Order(rows.ordered(*sort))
        order.get("")  # its index made here too (51,239 keys: 7-16 ms)
        labels = None
        layout = columns_for(width, rows.cluster_width, then is not None)
        if not same_nodes or labelled != layout:
            labels = (layout, labels_of(snapshot, then, layout[1], "cluster" in layout[0]))
        self.post_message(self.Taken(generation, rows, order, sort, labels))

    def on_edge_table_taken(self, taken: EdgeTable.Taken) -> None:
        drawn_first(self)
        self._working = False
        if taken.generation == self._generation:
            if taken.sort != (self.sort_name, self.sort_reversed):
                self._next_rows = taken.rows  # sorted another way meanwhile: again
            else:
                self._next_rows = None
                at, before = self._cursor_edge(), self._visible_rows()  # as the columns go
                if taken.rows is not self._rows:
                    self._take_rows(taken.rows, same_nodes=taken.labels is None)
                if taken.labels is not None:  # counted there, for this width here
                    columns, width = self._layout
                    self._labels = taken.labels[1].at(width, "cluster" in columns)
                self._orders[taken.sort] = taken.order
                self._show_order(taken.order, at, before)
        if self._on_screen:  # hidden, it takes the newest in when it shows (`on_show`)
            self._want()  # a newer snapshot, or another sort, asked for meanwhile

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bug in the worker: said in place, and the next snapshot tried when asked."""
        if event.worker.group != "edges":
            return
        if event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._working = False
        if event.state is WorkerState.ERROR:
            self.notify(f"cannot list the edges: {event.worker.error}", severity="error")

    def _cursor_edge(self) -> str | None:
        """Where the cursor goes when the rows come: the edge the graph selected meanwhile,
        or, when the table was shown again, the edge it is on."""
        if self._selecting is None and self._keep_edge:
            at = self._order.get_key(self.cursor_row)
            return str(at.value) if at is not None else None
        return self._selecting

    def _show_order(
        self,
        order: _Order,
        at: str | None = None,
        before: dict[int, dict[str, Text | str] | None] | None = None,
    ) -> None:
        """The rows in `order`, the cursor on the edge `at` (else on its row); the rows on
        screen drawn again where their cells changed."""
        if before is None:
            at, before = self._cursor_edge(), self._visible_rows()
        self._selecting, self._keep_edge = None, False
        was_empty = not self._order.keys
        self._install(order)
        self._sorted = True
        index = self._order.get(at) if at is not None else None
        if index is not None and index != self.cursor_row:
            self.move_cursor(row=index)
        elif was_empty and self._order.keys and self.is_mounted:
            self.cursor_coordinate = self.cursor_coordinate  # within the rows there are
            self._highlight_cursor()
        self._refresh_changed(before)

    def _visible_rows(self) -> dict[int, dict[str, Text | str] | None]:
        """The rows on screen, by index: their cells as last drawn (None: not drawn)."""
        if not self._on_screen:
            return {}
        top = max(0, int(self.scroll_offset.y))
        keys = self._order.keys
        rows = range(top, min(top + self.size.height, len(keys)))
        return {i: self._made.get(keys[i]) for i in rows}

    def _refresh_changed(self, before: dict[int, dict[str, Text | str] | None]) -> None:
        """Draw again the rows on screen whose cells changed, not the whole table: on a
        refresh, what a slow link carries is the figures that moved."""
        keys = self._order.keys
        top = max(0, int(self.scroll_offset.y))
        for i in range(top, top + self.size.height):
            was = before.get(i)
            if i >= len(keys) or was is None:
                self.refresh_row(i)
                continue
            now = self._made.get(keys[i])
            if now is None or any(was.get(c) != now.get(c) for c in self._layout[0]):
                self.refresh_row(i)
        self._require_update_dimensions = True
        self.check_idle()

    # -- what the console asks ---------------------------------------------------------------

    def select(self, source: str, destination: str) -> None:
        """Put the cursor on an edge's row (the graph's selection, shared): in the rows
        there are, and in a large snapshot's when the worker has them, without taking
        the snapshot in here."""
        key = f"{source}>{destination}"
        if self._large:
            if not (self._current and self._sorted):
                self._selecting = key
                if self._on_screen:
                    self._want()
        else:
            self._take()
        index = self._order.get(key)
        if index is not None:
            self.move_cursor(row=index)

    @property
    def descending(self) -> bool:
        """Whether the rows go down from the largest (or worst, or Z) as sorted now."""
        return (self.sort_name not in ASCENDING_FIRST) != self.sort_reversed

    @property
    def sort_said(self) -> str:
        """The sort as the status line says it: `err/s ▼`."""
        return f"{self.sort_name} {DESCENDING if self.descending else ASCENDING}"

    def _sortable(self) -> list[str]:
        """The columns it sorts by now, in their order: the cluster's with clusters,
        compare mode's while it is on."""
        compare = COMPARE_COLUMNS if self._then is not None else ()
        return [k for k in (*SORTS, *compare) if k != "cluster" or self._rows.clusters]

    def sort_names(self) -> list[str]:
        """The columns it sorts by, as its header names them, in any case (`err/s`); the
        health's, which has none, `health`; compare mode's as `rps-then`, `Δerr`."""
        return [HEADERS[k] for k in self._sortable()]

    def sort_by(self, column: str, descending: bool | None = None) -> str | None:
        """Sorted by `column` (a header's name, any case, or a column's key), descending
        or ascending (None: the column's own order); what is wrong, in one line, else None."""
        key = SORT_NAMES.get(column.lower())
        if key is None or key not in self._sortable():
            return f"sort takes {' '.join(self.sort_names())}"  # one line at 80 columns
        own = key not in ASCENDING_FIRST
        self._resort(key, descending is not None and descending != own)
        return None

    def reverse_sort(self) -> None:
        """The same column, the other way round."""
        self._resort(self.sort_name, not self.sort_reversed)

    def cycle_sort(self) -> str:
        """The next column, in its own order."""
        names = self._sortable()
        at = names.index(self.sort_name) if self.sort_name in names else -1
        self._resort(names[(at + 1) % len(names)], False, show=False)
        return self.sort_name

    def _resort(self, key: str, reversed_: bool, show: bool = True) -> None:
        self.sort_name, self.sort_reversed = key, reversed_
        self._sorted = False
        self._mark_header()
        if show and self._snapshot is not None:
            self.show(self._snapshot)

    def _header(self, key: str, header: str) -> Text:
        """A column's header, marked ▼ or ▲ if the rows are sorted by it."""
        if key != self.sort_name:
            return Text(header)
        mark = DESCENDING if self.descending else ASCENDING
        return Text(f"{header} {mark}".strip(), style="bold")

    def _mark_header(self, rows_too: bool = False) -> None:
        """The sort's mark in the header, drawn again; the rows on screen too only if
        `rows_too`: a new sort's rows come in their new order, drawn then, and drawing
        the old order again as the sort was asked took 50-97 ms of the screen's thread
        at 20,000 services and 160x48 (a 2-core EPYC)."""
        for key, header, _ in COLUMNS:
            column = self.columns.get(ColumnKey(key))
            if column is not None:
                column.label = self._header(key, header)
        if rows_too:
            self._clear_caches()
            self.refresh()
            return
        if not self.show_header:
            return
        # what DataTable keeps of the header: its labels, cells and lines (at the top,
        # never scrolled), each keyed by the header's row (that one object)
        head, height = self._header_row_key, self.header_height
        self._row_renderable_cache.discard((self._update_count, -1))
        caches: list[tuple[Any, Callable[[Any], bool]]] = [
            (self._row_render_cache, lambda k: k[0] is head),
            (self._cell_render_cache, lambda k: k[0] is head),
            (self._line_cache, lambda k: k[0] < height),
        ]
        for cache, stale in caches:
            for k in [k for k in cache.keys() if stale(k)]:  # noqa: SIM118 (no __iter__)
                cache.discard(k)
        if self.size.width:
            self.refresh(Region(0, 0, self.size.width, height))

    def compare_with(self, then: MeshSnapshot | None) -> None:
        """Compare mode: each edge beside its figures in `then`, and the edges of `then`
        there are no longer as rows of their own; None: compare mode off, its columns
        and rows gone (a sort by one of its columns back to health)."""
        if then is None and self._then is None:
            return
        self._then = then
        self._then_stats = {} if then is None else {e.key: e.stats for e in then.edges}
        if then is None and self.sort_name in COMPARE_COLUMNS:
            self.sort_name, self.sort_reversed = next(iter(SORTS)), False
        self._labels, self._sorted = None, False
        self._generation += 1  # rows the worker is making without it are not drawn
        self._next_rows = None
        self._mark_header(rows_too=True)
        if self._large:  # its columns at once, its rows when the worker has them
            self._set_columns()
        if self._snapshot is not None:
            self.show(self._snapshot)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == self.sort_name:  # a click on the sorted column: the other way round
            self.reverse_sort()
        else:
            self.sort_by(key)
        self.app.call_later(self.app.refresh_bindings)
