"""The live edge table: one row per edge, updated in place by diffing rows on each
refresh (never rebuilt), sorted worst first unless the user picks another order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.theme import Theme
from textual.widgets import DataTable

from meshtop import units
from meshtop.health import DEFAULT_THRESHOLDS, HealthMemory, grade
from meshtop.model import Edge, Health, MeshSnapshot, Protocol, Workload
from meshtop.sanitize import shown

HEALTH_WORD = {
    Health.HEALTHY: "ok",
    Health.DEGRADED: "warn",
    Health.FAILING: "FAIL",
    Health.IDLE: "idle",
}
_RANK = {Health.FAILING: 0, Health.DEGRADED: 1, Health.HEALTHY: 2, Health.IDLE: 3}

# key, header, width (None: a node label, sized to what the screen has left)
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("health", "", 4),
    ("source", "SOURCE", None),
    ("destination", "DESTINATION", None),
    ("proto", "PROTO", 9),  # grpc+http
    ("rps", "RPS", 7),
    ("errors", "ERR%", 6),
    ("4xx", "4XX%", 6),
    ("p50", "P50", 6),
    ("p95", "P95", 6),
    ("p99", "P99", 6),
    ("mtls", "MTLS", 4),
)
# Dropped in this order when the terminal is narrow; the rest always shows.
DROPPABLE = ("proto", "p50", "p95")
LABEL_MIN, LABEL_MAX = 14, 32
PADDING = 2  # DataTable's cell padding, both sides


def columns_for(width: int) -> tuple[tuple[str, ...], int]:
    """Which columns fit in `width` cells, and how wide each node label may be."""
    shown = [c[0] for c in COLUMNS]

    def label_width() -> int:
        fixed = sum((w or 0) + PADDING for k, _, w in COLUMNS if k in shown) + 2 * PADDING
        return (width - fixed) // 2

    for dropped in DROPPABLE:
        if label_width() >= LABEL_MIN:
            break
        shown.remove(dropped)
    return tuple(shown), max(LABEL_MIN, min(LABEL_MAX, label_width()))


# name (a column) -> key on (edge, health); the first is the default. Figures sort
# largest first, names A to Z, as `linkerd viz top` does.
SORTS: dict[str, Callable[[Edge, Health], Any]] = {
    "health": lambda e, h: (_RANK[h], -e.stats.error_rate, -e.stats.rps),
    "source": lambda e, h: e.key,
    "destination": lambda e, h: (e.destination, e.source),
    "proto": lambda e, h: (proto(e), e.key),
    "rps": lambda e, h: (-e.stats.rps, -e.stats.tcp_connections_per_s),
    "errors": lambda e, h: -e.stats.error_rate,
    "4xx": lambda e, h: (-e.stats.client_error_rate, -e.stats.rps),
    "p50": lambda e, h: -(e.stats.p50_ms or 0.0),
    "p95": lambda e, h: -(e.stats.p95_ms or 0.0),
    "p99": lambda e, h: -(e.stats.p99_ms or 0.0),
    "mtls": lambda e, h: (e.stats.mtls, e.key),
}


def proto(e: Edge) -> str:
    """The edge's protocols as the table says them: `http`, or `grpc+http` for both."""
    return "+".join(p.value for p in e.stats.carried)


def short_labels(snapshot: MeshSnapshot, width: int) -> dict[str, str]:
    """A node's workload name alone where that is unique in the snapshot, else the
    shortest of `cluster/workload`, `namespace/workload` and the whole id that is:
    narrow columns that still say exactly which node."""
    names = Counter(w.name for w in snapshot.nodes.values())
    # Only nodes whose name is not unique can share a longer form: count those alone.
    shared = [w for w in snapshot.nodes.values() if names[w.name] > 1]
    forms: tuple[Callable[[Workload], str], ...] = (
        lambda w: f"{w.cluster}/{w.name}",
        lambda w: f"{w.namespace}/{w.name}",
    )
    counts = [Counter(form(w) for w in shared) for form in forms]
    labels = {}
    for node_id, w in snapshot.nodes.items():
        if not w.clustered or names[w.name] == 1:
            label = w.name
        else:
            label = next(
                (form(w) for form, n in zip(forms, counts, strict=True) if n[form(w)] == 1), w.id
            )
        if len(label) > width:
            # Cut the middle: the end (`-v2`) tells versions apart.
            head = (width - 1) // 2
            label = label[:head] + "…" + label[len(label) - (width - 1 - head) :]
        labels[node_id] = label
    return labels


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
    edge: Edge, health: Health, labels: dict[str, str], styles: dict[Health, str]
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
    return {
        "health": KeyedText(word, style, f"{edge.source}>{edge.destination}"),
        "source": Text(shown(labels.get(edge.source, edge.source))),
        "destination": Text(shown(labels.get(edge.destination, edge.destination))),
        "proto": proto(edge),
        "rps": Text(
            f"{s.tcp_connections_per_s:.1f}c/s" if tcp else units.rps(s.rps), justify="right"
        ),
        "errors": Text.assemble(errors, justify="right"),
        "4xx": Text.assemble(client_errors, justify="right"),
        "p50": Text(units.ms(s.p50_ms), justify="right"),
        "p95": Text(units.ms(s.p95_ms), justify="right"),
        "p99": Text(units.ms(s.p99_ms), justify="right"),
        "mtls": mtls,
    }


class EdgeTable(DataTable[Any]):
    """Edges of the current snapshot. Row keys are `source>destination`. Columns follow
    the width of the terminal: the least needed go first when it is narrow."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.sort_name = next(iter(SORTS))
        self.thresholds = DEFAULT_THRESHOLDS
        self.memory: HealthMemory | None = None  # the console's: health that does not flap
        self._shown: dict[str, dict[str, Text | str]] = {}
        self._layout: tuple[tuple[str, ...], int] = ((), 0)
        self._snapshot: MeshSnapshot | None = None

    @property
    def fitted(self) -> bool:
        """Shown, with the columns its width has room for (its rows are filled for them).
        What a test waits for: hidden, the table is laid out for 80 columns."""
        return bool(self.size.width) and self._layout == columns_for(self.size.width)

    def on_resize(self) -> None:
        if columns_for(self.size.width) != self._layout and self._snapshot is not None:
            self.show(self._snapshot)

    def _set_columns(self) -> tuple[str, ...]:
        wanted = columns_for(self.size.width or 80)
        if wanted != self._layout:
            self.clear(columns=True)
            self._shown.clear()
            columns, label_width = wanted
            for key, header, width in COLUMNS:
                if key in columns:
                    self.add_column(header, key=key, width=width or label_width)
            self._layout = wanted
        return self._layout[0]

    def show(self, snapshot: MeshSnapshot) -> None:
        self._snapshot = snapshot
        # the console's memory, so the table's health does not flap where the graph's does not
        graded = self.memory.grade if self.memory is not None else grade
        healths = graded(snapshot, self.thresholds).edges
        wanted: dict[str, Edge] = {f"{e.source}>{e.destination}": e for e in snapshot.edges}
        with self.app.batch_update():
            columns = self._set_columns()
            labels = short_labels(snapshot, self._layout[1])
            styles = health_styles(self.app.current_theme)
            for gone in set(self._shown) - set(wanted):
                self.remove_row(gone)
                del self._shown[gone]
            for row_key, edge in wanted.items():
                cells = _cells(edge, healths[edge.key], labels, styles)
                before = self._shown.get(row_key)
                if before is None:
                    self.add_row(*(cells[c] for c in columns), key=row_key)
                else:
                    for column in columns:
                        if before[column] != cells[column]:
                            self.update_cell(row_key, column, cells[column])
                self._shown[row_key] = cells
            order = SORTS[self.sort_name]
            rank = {k: order(e, healths[e.key]) for k, e in wanted.items()}
            # DataTable.sort hands the key function cells, not row keys: the health cell
            # carries its row's key.
            self.sort("health", key=lambda cell: rank[cell.row_key])

    def select(self, source: str, destination: str) -> None:
        """Put the cursor on an edge's row (the graph's selection, shared)."""
        key = f"{source}>{destination}"
        if key in self._shown:
            self.move_cursor(row=self.get_row_index(key))

    def sort_by(self, column: str) -> None:
        if column in SORTS:
            self.sort_name = column
            if self._snapshot is not None:
                self.show(self._snapshot)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(str(event.column_key.value))
        self.app.call_later(self.app.refresh_bindings)

    def cycle_sort(self) -> str:
        names = list(SORTS)
        self.sort_name = names[(names.index(self.sort_name) + 1) % len(names)]
        return self.sort_name
