"""The status line: where the data comes from, how fresh it is, and the totals."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from meshtop import units
from meshtop.graphview import GraphView, ViewOptions
from meshtop.model import MeshSnapshot, Protocol, SourceHealth, SourceKey, SourceState
from meshtop.sanitize import shown

STATE_STYLE = {
    SourceState.FRESH: "green",
    SourceState.STALE: "bold yellow",
    SourceState.FAILED: "bold red",
    SourceState.ABSENT: "dim",
}
ROLE_NAMES = {"metrics": "metrics", "control_plane": "control plane", "traces": "traces"}


def source_name(key: str) -> str:
    """`control plane`, or `control plane east` for one cluster's."""
    source = SourceKey.of(key)
    return f"{ROLE_NAMES.get(source.role, source.role)} {source.cluster}".strip()


_WORSE = (SourceState.FRESH, SourceState.ABSENT, SourceState.STALE, SourceState.FAILED)


def _place(key: str) -> str:
    """Where a source's health is said on the line (`_by_place`): its cluster, or its role."""
    source = SourceKey.of(key)
    return source.cluster or ROLE_NAMES.get(source.role, source.role)


def _by_place(sources: Mapping[str, SourceHealth]) -> dict[str, SourceHealth]:
    """A line's worth of health: a source by its role, and a federation's members (keys
    `role:cluster`) by their cluster, the worst of its sources standing for it, so that
    three clusters still fit on 80 columns."""
    out: dict[str, SourceHealth] = {}
    for key, h in sources.items():
        name = _place(key)
        known = out.get(name)
        if known is None or _WORSE.index(h.state) > _WORSE.index(known.state):
            out[name] = h
    return out


@dataclass(frozen=True)
class Part:
    """One piece of the status line, in its long and its short form. A part that is not
    `kept` may be left out when even the short forms do not fit; a kept one never is."""

    long: Text
    short: Text
    kept: bool = True


def part(long: str, short: str | None = None, style: str = "", kept: bool = True) -> Part:
    return Part(Text(long, style), Text(long if short is None else short, style), kept)


def _late(sources: Mapping[str, SourceHealth]) -> dict[str, float]:
    """How old each place's latency is (`_by_place`), where older than its rates."""
    out: dict[str, float] = {}
    for key, h in sources.items():
        if h.latency_age_s is not None:
            name = _place(key)
            out[name] = max(out.get(name, 0.0), h.latency_age_s)
    return out


def _sourcespart(snapshot: MeshSnapshot, styles: dict[SourceState, str]) -> Part:
    long, short = Text(), Text()
    places = _by_place(snapshot.sources)
    late = _late(snapshot.sources)
    for name, health in places.items():
        state = health.state.value
        if health.state is SourceState.STALE:
            age = health.age_s(snapshot.generated_at)
            state = f"stale {age:.0f}s" if age is not None else "stale"
        if len(long):
            long.append("  ")
        long.append(f"{shown(name)} ")
        long.append(state, styles[health.state])
        if name in late:  # latency older than the rates beside it: said, as a stale source is
            long.append(f", latency {late[name]:.0f}s old", styles[SourceState.STALE])
        if health.state is not SourceState.FRESH:  # short: only what is not fresh
            if len(short):
                short.append(" ")
            short.append(f"{shown(name)} ")
            short.append(state, styles[health.state])
    if not len(short):
        short.append("fresh", styles[SourceState.FRESH])
    if late:  # one short word however many: named where one place's and not plain
        (name, age), *more = late.items()
        if more:
            said = f"latency up to {max(late.values()):.0f}s old"
        elif name == ROLE_NAMES["metrics"] and short.plain == "fresh":
            said = f"latency {age:.0f}s old"
        else:
            said = f"{shown(name)} latency {age:.0f}s old"
        short.append(f", {said}", styles[SourceState.STALE])
    return Part(long, short)


_summed: tuple[weakref.ref[MeshSnapshot], float] | None = None  # the last snapshot's


def _http_rps(snapshot: MeshSnapshot) -> float:
    """The requests a second of every HTTP and gRPC edge: summed once per snapshot, not
    for each time the line is said (every key that moves the selection; 51,239 edges at
    20,000 services, issue 17)."""
    global _summed
    if _summed is None or _summed[0]() is not snapshot:
        rps = sum(e.stats.rps for e in snapshot.edges if e.stats.protocol is not Protocol.TCP)
        _summed = (weakref.ref(snapshot), rps)
    return _summed[1]


def status_text(
    snapshot: MeshSnapshot,
    *,
    simulated: bool,
    paused: bool,
    sort_name: str,
    view: Sequence[Part] = (),
    shown_edges: int | None = None,
    sort_kept: bool = False,
    width: int = 10_000,
    styles: dict[SourceState, str] | None = None,
    moment: tuple[str, str] | None = None,
    compared: str = "",
) -> Text:
    """The status line in `width` cells: where the data comes from and how fresh, the
    edges (`3 of 9 edges` under a filter), the time, then the `view` parts (filter, focus,
    selection, …). Too long, it leaves out what may go (the sort, labels, grouping), then
    takes the short forms, last part first; what is kept is never left out, only cut at
    the line's end, with `…`. `moment`: the moment shown, not live (`AT 10:02 (-30m)`,
    short `AT 10:02`), first and in reverse video, readable without colour; `compared`:
    the moment compare mode compares with."""
    st = styles or STATE_STYLE
    parts: list[Part] = []
    if moment is not None:
        parts.append(Part(Text(f" {moment[0]} ", "reverse bold"), Text(moment[1], "reverse bold")))
    if simulated:
        parts.append(Part(Text(" SIMULATED ", "reverse bold"), Text("SIM", "reverse bold")))
    if paused:
        parts.append(part("PAUSED", style="bold yellow"))
    parts.append(_sourcespart(snapshot, st))
    http_rps = _http_rps(snapshot)
    total = len(snapshot.edges)
    edges = f"{total} edges" if shown_edges is None else f"{shown_edges} of {total} edges"
    parts.append(part(f"{edges} {units.rps(http_rps)}", edges))
    parts.append(part(snapshot.generated_at.strftime("%H:%M:%S"), style="dim"))
    if compared:
        parts.append(part(f"compare {compared}", f"vs {compared}", "bold"))
    parts.extend(view)
    parts.append(part(f"sort {sort_name}", kept=sort_kept))
    return fit_parts(parts, width)


def _join(texts: list[Text], gap: str) -> Text:
    out = Text(no_wrap=True, overflow="crop")
    for i, t in enumerate(texts):
        if i:
            out.append(gap)
        out.append_text(t)
    return out


def fit_parts(parts: list[Part], width: int) -> Text:
    forms = [p.long for p in parts]
    kept = list(range(len(parts)))
    gap = "  "

    def line() -> Text:
        return _join([forms[i] for i in kept], gap)

    def fits() -> bool:
        return line().cell_len <= width

    # 1. what may go goes, from the end
    for i in reversed(range(len(parts))):
        if fits():
            return line()
        if not parts[i].kept:
            kept.remove(i)
    # 2. the short forms, from the end; then one space between parts
    for i in reversed(kept):
        if fits():
            break
        forms[i] = parts[i].short
    if not fits():
        gap = " "
    # 3. what the short forms made room for comes back, in its place
    for i in range(len(parts)):
        if i not in kept:
            kept = sorted([*kept, i])
            if not fits():
                kept.remove(i)
    # 4. still too long: cut at the end
    text = line()
    if text.cell_len > width:
        text.truncate(max(width - 1, 0))
        text.append("…")
    return text


def label(view: GraphView | None, node: str) -> str:
    """A node's label in the view, or the last part of its id."""
    v = view.nodes.get(node) if view is not None else None
    return v.label if v is not None else node.rsplit("/", 1)[-1]


def selection(
    view: GraphView | None, node: str | None, edge: tuple[str, str] | None
) -> tuple[str, str]:
    """The selected edge or node, named, with its figures: what the status line says
    of what the keys will act on; in full and short."""
    if view is None:
        return ("", "")
    e = view.edges.get(edge) if edge else None
    if e is not None:
        s = e.stats
        if s.protocol is Protocol.TCP:
            short = long = units.bytes_per_s(s.tcp_request_bps + s.tcp_response_bps)
        else:
            short = f"{units.rps(s.rps)} {units.percent(s.error_rate)}"
            long = f"{short} p99 {units.ms(s.p99_ms)}"
        a, b = label(view, e.source), label(view, e.destination)
        return (f"{a}→{b} {long}", f"{units.clip(a, 10)}→{units.clip(b, 10)} {short}")
    n = view.nodes.get(node) if node else None
    if n is None:
        return ("", "")
    inbound = [e.stats for e in view.edges.values() if e.destination == n.id]
    rps = sum(st.rps for st in inbound)
    figures = f" {n.health.value}" + (f" {units.rps(rps)} in" if rps else "")
    return (f"{n.label}{figures}", f"{units.clip(n.label, 16)}{figures}")


def view_parts(
    o: ViewOptions,
    view: GraphView | None,
    selected: tuple[str | None, tuple[str, str] | None],
    zoom: tuple[str, str],
    label_mode: str,
) -> list[Part]:
    """The parts that say how the graph is drawn: filter, focus, cluster, collapsed, the
    selection, then the zoom (asked, shown), grouping and labels, which may go."""
    parts: list[Part] = []
    if o.filter:
        parts.append(part(f"filter {o.filter}", f"/{o.filter}", "bold"))
    if o.focus:
        labels = ",".join(label(view, n) for n in o.focus[0])
        parts.append(part(f"focus {labels}±{o.focus[1]}", f"@{labels}±{o.focus[1]}", "bold"))
    if o.cluster:
        parts.append(part(f"cluster {o.cluster}", f"c:{o.cluster}", "bold"))
    collapsed = ",".join(sorted(o.collapsed) + sorted(o.collapsed_clusters))
    if collapsed:
        parts.append(part(f"collapsed {collapsed}", f"▣{collapsed}"))
    chosen = selection(view, *selected)
    if chosen[0]:
        parts.append(part(f"▸ {chosen[0]}", f"▸ {chosen[1]}"))
    asked, drawn = zoom
    parts.append(part(f"zoom {drawn} (fit)" if asked == "fit" else f"zoom {drawn}", kept=False))
    parts.append(part(f"graph {o.grouping.value}", kept=False))
    parts.append(part(f"labels {label_mode}", kept=False))
    return parts


def problems(snapshot: MeshSnapshot) -> list[str]:
    """One line per source that failed or warned, for the notice under the status line."""
    return [f"{source_name(role)}: {h.reason}" for role, h in snapshot.sources.items() if h.reason]


class StatusLine(Static):
    """The status line, fitted to its width: again whenever that width changes (the first
    snapshot may come before the line has its size)."""

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(text, id=id)
        self._said: Callable[[int], Text] | None = None  # the line, for a width

    def show(
        self,
        snapshot: MeshSnapshot,
        *,
        simulated: bool,
        paused: bool,
        sort_name: str,
        view: Sequence[Part],
        shown_edges: int | None,
        sort_kept: bool = False,
        moment: tuple[str, str] | None = None,
        compared: str = "",
    ) -> None:
        theme = self.app.current_theme
        styles = {  # the theme's colours, so that a monochrome theme stays monochrome
            SourceState.FRESH: theme.success or "green",
            SourceState.STALE: f"bold {theme.warning or 'yellow'}",
            SourceState.FAILED: f"bold {theme.error or 'red'}",
            SourceState.ABSENT: "dim",
        }
        self._said = lambda width: status_text(
            snapshot,
            simulated=simulated,
            paused=paused,
            sort_name=sort_name,
            view=view,
            shown_edges=shown_edges,
            sort_kept=sort_kept,
            width=width,
            styles=styles,
            moment=moment,
            compared=compared,
        )
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        if self._said is not None:
            width = self.content_size.width or self.app.size.width - 2
            # one line as wide as the screen whatever it says: drawn again, the screen
            # not laid out again (which every refresh and every move did, 3-11 ms of
            # the screen's thread at 2,000 services on a 2-core machine)
            self.update(self._said(max(width, 20)), layout=False)
