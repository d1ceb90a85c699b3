"""The status line: where the data comes from, how fresh it is, and the totals."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widgets import Static

from meshtop import units
from meshtop.model import MeshSnapshot, Protocol, SourceHealth, SourceState

STATE_STYLE = {
    SourceState.FRESH: "green",
    SourceState.STALE: "bold yellow",
    SourceState.FAILED: "bold red",
    SourceState.ABSENT: "dim",
}
ROLE_NAMES = {"metrics": "metrics", "control_plane": "control plane", "traces": "traces"}


def source_name(key: str) -> str:
    """`control plane`, or `control plane east` for one cluster's."""
    role, _, cluster = key.partition(":")
    return f"{ROLE_NAMES.get(role, role)} {cluster}".strip()


_WORSE = (SourceState.FRESH, SourceState.ABSENT, SourceState.STALE, SourceState.FAILED)


def _by_place(sources: Mapping[str, SourceHealth]) -> dict[str, SourceHealth]:
    """A line's worth of health: a source by its role, and a federation's members (keys
    `role:cluster`) by their cluster, the worst of its sources standing for it, so that
    three clusters still fit on 80 columns."""
    out: dict[str, SourceHealth] = {}
    for key, h in sources.items():
        role, _, cluster = key.partition(":")
        name = cluster or ROLE_NAMES.get(role, role)
        known = out.get(name)
        if known is None or _WORSE.index(h.state) > _WORSE.index(known.state):
            out[name] = h
    return out


def status_text(
    snapshot: MeshSnapshot,
    *,
    simulated: bool,
    paused: bool,
    sort_name: str,
    view: str = "",
    styles: dict[SourceState, str] | None = None,
) -> Text:
    text = Text()
    if simulated:
        text.append(" SIMULATED ", "reverse bold")
        text.append(" ")
    if paused:
        text.append("PAUSED", "bold yellow")
        text.append("  ")
    for name, health in _by_place(snapshot.sources).items():
        text.append(f"{name} ")
        state = health.state.value
        if health.state is SourceState.STALE:
            age = health.age_s(snapshot.generated_at)
            state = f"stale {age:.0f}s" if age is not None else "stale"
        text.append(state, (styles or STATE_STYLE)[health.state])
        text.append("  ")
    http_rps = sum(e.stats.rps for e in snapshot.edges if e.stats.protocol is not Protocol.TCP)
    text.append(f"{len(snapshot.edges)} edges {units.rps(http_rps)}  ")
    text.append(snapshot.generated_at.strftime("%H:%M:%S"), "dim")
    text.append(f"  {view}  sort {sort_name}" if view else f"  sort {sort_name}")
    return text


def problems(snapshot: MeshSnapshot) -> list[str]:
    """One line per source that failed or warned, for the notice under the status line."""
    return [f"{source_name(role)}: {h.reason}" for role, h in snapshot.sources.items() if h.reason]


class StatusLine(Static):
    def show(
        self, snapshot: MeshSnapshot, *, simulated: bool, paused: bool, sort_name: str, view: str
    ) -> None:
        theme = self.app.current_theme
        styles = {  # the theme's colours, so that a monochrome theme stays monochrome
            SourceState.FRESH: theme.success or "green",
            SourceState.STALE: f"bold {theme.warning or 'yellow'}",
            SourceState.FAILED: f"bold {theme.error or 'red'}",
            SourceState.ABSENT: "dim",
        }
        self.update(
            status_text(
                snapshot,
                simulated=simulated,
                paused=paused,
                sort_name=sort_name,
                view=view,
                styles=styles,
            )
        )
