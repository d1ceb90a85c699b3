"""The main screen's posture tab: per namespace and workload, the effective mTLS mode
beside the traffic into it, what STRICT would refuse, and the configuration at odds with
itself (`meshtop.posture`, as `meshtop posture` judges it), from each cluster's security
configuration, read only while the tab shows."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from meshtop import units
from meshtop.health import Thresholds
from meshtop.model import MeshSnapshot
from meshtop.posture import Caller, MtlsMode, SecurityConfig, traffic_text
from meshtop.report import Report
from meshtop.sanitize import said
from meshtop.sources.protocols import SecuritySource
from meshtop.sources.security import read_configs as read_configs
from meshtop.tui.widgets.tables import Cell, SortableTable, fill

COLUMNS = [
    ("name", "NAMESPACE / WORKLOAD"),
    ("mode", "MODE"),
    ("traffic", "TRAFFIC IN"),
    ("strict", "STRICT WOULD REFUSE"),
    ("conflict", "CONFLICT"),
]
HOW = ":mtls NAMESPACE[/WORKLOAD] strict|permissive sets a mode"
NOT_READ = (
    "no security configuration here: it is read from each cluster's control plane "
    "(--context, or --kubeconfig); meshtop demo shows the simulated mesh's"
)

Row = tuple[str, Sequence[Cell]]


def _refused(callers: Sequence[Caller] | None) -> str:
    """What STRICT would refuse: `-` where it is STRICT already, `none`, or each caller
    with its plaintext rate."""
    if callers is None:
        return "-"
    return ", ".join(f"{c.label} {units.rps(c.rps)}" for c in callers) or "none"


def _traffic(mode: MtlsMode, mtls: float | None, callers: Sequence[Caller]) -> Cell:
    """`100% mTLS`, `1 plaintext caller (unknown)`; plain text into STRICT in bold red,
    with the share of it refused (answered 503)."""
    said = traffic_text(mtls, callers)
    if mode is not MtlsMode.STRICT or not callers:
        return said
    rps = sum(c.rps for c in callers)
    refused = sum(c.refused * c.rps for c in callers) / rps if rps else 0.0
    return Text(f"{said}: {refused:.0%} refused", style="bold red")


def _conflict(conflicts: Sequence[str]) -> Cell:
    if not conflicts:
        return ""
    more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
    return Text(conflicts[0] + more, style="bold red")


def rows(
    snapshot: MeshSnapshot, configs: Mapping[str, SecurityConfig], thresholds: Thresholds
) -> list[Row]:
    """A row per namespace (its own mode, the traffic into it from outside, what STRICT on
    it would refuse), then one per workload of it, indented; then one per
    AuthorizationPolicy that decided no observed call (possibly stale)."""
    report = Report(snapshot, thresholds, security=configs)
    found = report.posture
    if found is None:
        return []
    breaks = report.strict_would_break
    out: list[Row] = []
    for n in found.namespaces:
        name = f"{n.cluster}/{n.namespace}" if report.several_clusters else n.namespace
        out.append(
            (
                f"ns|{n.cluster}|{n.namespace}",
                [
                    Text(name, style="bold"),
                    n.effective.text(),
                    _traffic(n.effective.mode, n.mtls, n.callers),
                    _refused(breaks.get((n.cluster, n.namespace))),
                    "",
                ],
            )
        )
        for w in n.workloads:
            strict = w.effective.mode is MtlsMode.STRICT
            out.append(
                (
                    f"w|{w.node}",
                    [
                        f"  {w.workload.name}" + (" (VM)" if w.entry else ""),
                        w.effective.text(),
                        _traffic(w.effective.mode, w.mtls, w.callers),
                        _refused(None if strict else w.callers),
                        _conflict(w.conflicts),
                    ],
                )
            )
    for ref in found.stale:
        stale = Text("decided no observed call: possibly stale", style="yellow")
        name = "policy " + ref.removeprefix("AuthorizationPolicy ")
        out.append((f"stale|{ref}", [name, "-", "-", "-", stale]))
    return out


class PostureTab(Vertical):
    """A line (how to change a mode, or what could not be read) over the table."""

    DEFAULT_CSS = """
    PostureTab { height: 1fr; }
    PostureTab > #posture-said { height: auto; padding: 0 1; color: $text-muted; }
    PostureTab > DataTable { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="posture-said")
        yield SortableTable(id="posture")

    @property
    def table(self) -> DataTable[Cell]:
        return self.query_one("#posture", DataTable)

    def show(self, found: list[Row], line: str) -> None:
        """The rows, keeping the cursor's row where it was, under `line`."""
        table = self.table
        keep = table.cursor_row
        fill(table, COLUMNS, found)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        self.query_one("#posture-said", Static).update(Text(said(line)))

    async def load(
        self,
        snapshot: MeshSnapshot,
        sources: Mapping[str, SecuritySource],
        thresholds: Thresholds,
        timeout_s: float,
        writable: bool,
    ) -> None:
        """Read every cluster's configuration, judge it beside `snapshot` (on a thread:
        at 20,000 services it takes a second), and show it."""
        if not sources:
            self.show([], NOT_READ)
            return
        configs, unread = await read_configs(sources, timeout_s)
        found = await asyncio.to_thread(rows, snapshot, configs, thresholds)
        lines = [
            f"{c or 'the cluster'}: cannot read its configuration: {why}"
            for c, why in unread.items()
        ]
        lines.append(HOW if writable else "read-only: the modes are shown, not changed")
        self.show(found, "; ".join(lines))
