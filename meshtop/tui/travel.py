"""Time travel in the console (issue 19): the moment the whole console shows (`:at`, `[`
and `]`), reached by moving each metrics source to it (`moment(at)`, the evaluation time
`export --at` gives a source), and compare mode (`:compare`): each edge at the moment
shown beside a moment before, the edges new and gone, and the changes the audit log and
the control planes say were made in between.
Over 400 lines: the moment's words, moving the sources and the comparison are one
feature, wired into the main screen as one mixin."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from meshtop import audit, units
from meshtop.config import Settings
from meshtop.detail import change_sources, config_changes
from meshtop.errors import MeshtopError, UsageError
from meshtop.federation import one_metrics
from meshtop.graphview import GraphView
from meshtop.mesh import refresh
from meshtop.model import EdgeStats, MeshSnapshot
from meshtop.model import Protocol as Proto
from meshtop.panels import change_words, config_words
from meshtop.sources.protocols import ClusterSources, MetricsSource
from meshtop.tui.widgets.status import label

if TYPE_CHECKING:
    from meshtop.tui.widgets.edge_table import EdgeTable

LIVE_WORDS = ("now", "live")
EARLIEST = 946_684_800.0  # 2000-01-01: before it, a moment is a mistake
FUTURE_SLACK_S = 60.0  # a moment a minute ahead is now (clocks drift)
MINUS = "\N{MINUS SIGN}"  # as the status line writes a moment ago
DEFAULT_COMPARE_S = 1800.0  # `:compare` alone: half an hour before the moment shown


@runtime_checkable
class Timed(Protocol):
    """A metrics source that can be asked for another moment."""

    def moment(self, at: float | None) -> MetricsSource: ...


def parse_moment(text: str, now: float) -> float | None:
    """What `:at` takes: `now` (None: live), `-30m` (that long ago), `10:02` or
    `10:02:30` (today, local time), or an RFC 3339 time (`2026-11-25T10:02:00Z`, with a
    zone). Raises `UsageError` for anything else, or a moment in the future."""
    text = text.strip()
    if text.lower() in LIVE_WORDS:
        return None
    if text.startswith("-"):
        try:
            value = now - units.parse_duration(text[1:], what="at")
        except UsageError:
            raise UsageError(f"at {text!r}: write -30m, -2h, … (that long ago)") from None
    else:
        value = _clock_or_rfc3339(text, now)
    if not math.isfinite(value) or value < EARLIEST:
        raise UsageError(f"at {text!r} is not a moment a mesh was running")
    if value > now + FUTURE_SLACK_S:
        raise UsageError(f"at {text!r} is in the future")
    return min(value, now)


def _clock_or_rfc3339(text: str, now: float) -> float:
    for form in ("%H:%M", "%H:%M:%S"):
        try:
            clock = datetime.strptime(text, form)
        except ValueError:
            continue
        today = datetime.fromtimestamp(now)
        return today.replace(
            hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=0
        ).timestamp()
    try:
        parsed = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"at {text!r} is not a moment: write -30m, 10:02 (today), 2026-11-25T10:02:00Z, or now"
        ) from None
    if parsed.tzinfo is None:
        raise UsageError(f"at {text!r}: give a time zone, e.g. Z for UTC") from None
    return parsed.timestamp()


def ago(seconds: float) -> str:
    """How long ago, as the status line says it: `-45s`, `-30m`, `-1h30m`, `-2d3h`."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{MINUS}{s}s"
    m = round(s / 60)
    if m < 60:
        return f"{MINUS}{m}m"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{MINUS}{h}h{m}m" if m else f"{MINUS}{h}h"
    d, h = divmod(h, 24)
    return f"{MINUS}{d}d{h}h" if h else f"{MINUS}{d}d"


def clock_words(at: float, now: float) -> str:
    """A moment as the console says it, to the minute: `10:02`, the day too when it is
    not today (the status line says its seconds beside)."""
    when, today = datetime.fromtimestamp(at), datetime.fromtimestamp(now)
    return when.strftime("%H:%M" if when.date() == today.date() else "%Y-%m-%d %H:%M")


def moment_words(at: float, now: float) -> tuple[str, str]:
    """The status line's mark of a moment: `AT 10:02 (-30m)`, and short `AT 10:02`."""
    when = clock_words(at, now)
    return f"AT {when} ({ago(now - at)})", f"AT {when}"


def moved(clusters: Mapping[str, ClusterSources], at: float) -> dict[str, ClusterSources]:
    """Every cluster's sources with its metrics asked at `at`: each distinct backend moved
    once (clusters that share one still share it). Raises `UsageError` for a metrics
    source that cannot be asked for another moment."""
    made: dict[int, MetricsSource] = {}
    out: dict[str, ClusterSources] = {}
    for name, c in clusters.items():
        m = c.metrics
        if id(m) not in made:
            if not isinstance(m, Timed):
                raise UsageError(f"{m.name} cannot be asked for another moment")
            made[id(m)] = m.moment(at)
        out[name] = replace(c, metrics=made[id(m)])
    return out


# -- compare ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    """The moment shown beside `then`: each edge's figures then (None: a new edge), and
    the edges there were then and are no longer, with their figures then."""

    then_at: float
    then: Mapping[tuple[str, str], EdgeStats | None]
    vanished: tuple[tuple[tuple[str, str], EdgeStats], ...]
    changes: tuple[str, ...] = ()  # what was changed in between, said, oldest first
    unread: str = ""  # why a log or a control plane could not say

    @property
    def new(self) -> list[tuple[str, str]]:
        return [k for k, s in self.then.items() if s is None]


def compare(now: MeshSnapshot, then: MeshSnapshot, then_at: float) -> Comparison:
    was = {e.key: e.stats for e in then.edges}
    is_ = {e.key for e in now.edges}
    gone = tuple((k, s) for k, s in sorted(was.items()) if k not in is_)
    return Comparison(then_at, {e.key: was.get(e.key) for e in now.edges}, gone)


def rate_delta(now: float, then: float) -> str:
    """A rate's change in words: `+23%`, `-8%`, `=`, or `+5.0rps` from nothing."""
    if then <= 0:
        return "=" if now <= 0 else f"+{units.rps(now)}"
    change = (now - then) / then
    if abs(change) < 0.005:
        return "="
    return f"{'+' if change > 0 else MINUS}{abs(change) * 100:.0f}%"


# compare mode's columns in the edge table, as their headers name them
COMPARE_COLUMNS = ("rps-then", "Δrps", "err-then", "Δerr", "p99-then", "Δp99")
NEW, GONE = "new", "gone"


def _points(now: float, then: float) -> str:
    """An error rate's change in percentage points: `+2.10pp`, `-12.3pp` (a minus sign),
    `=`."""
    points = (now - then) * 100
    if abs(points) < 0.005:
        return "="
    digits = 2 if abs(points) < 10 else 1
    return f"{'+' if points > 0 else MINUS}{abs(points):.{digits}f}pp"


def _ms_delta(now: float | None, then: float | None) -> str:
    if now is None or then is None or not (math.isfinite(now) and math.isfinite(then)):
        return "-"
    d = now - then
    return "=" if abs(d) < 0.5 else f"{'+' if d > 0 else MINUS}{units.ms(abs(d))}"


def then_cells(now: EdgeStats | None, then: EdgeStats | None) -> dict[str, str]:
    """Compare mode's columns of an edge: its rps, errors and p99 then, and how each
    moved since (`+23%`, `+2.10pp`, `+12ms`); `new` for an edge there was not then,
    `gone` for one there is no longer (None now), its figures then kept."""
    if then is None:
        return dict.fromkeys(COMPARE_COLUMNS[::2], "-") | dict.fromkeys(COMPARE_COLUMNS[1::2], NEW)
    tcp = then.protocol is Proto.TCP or (now is not None and now.protocol is Proto.TCP)
    if tcp:
        c = then.tcp_connections_per_s
        cells = {"rps-then": f"{c:.1f}c/s", "err-then": "-", "p99-then": "-", "Δerr": "-",
                 "Δp99": "-"}  # fmt: skip
        cells["Δrps"] = GONE if now is None else rate_delta(now.tcp_connections_per_s, c)
        return cells
    cells = {
        "rps-then": units.rps(then.rps),
        "err-then": units.percent(then.error_rate),
        "p99-then": units.ms(then.p99_ms),
    }
    if now is None:
        return cells | dict.fromkeys(COMPARE_COLUMNS[1::2], GONE)
    known = math.isfinite(now.error_rate) and math.isfinite(then.error_rate)
    return cells | {
        "Δrps": rate_delta(now.rps, then.rps),
        "Δerr": _points(now.error_rate, then.error_rate) if known else "-",
        "Δp99": _ms_delta(now.p99_ms, then.p99_ms),
    }


def then_order(now: EdgeStats | None, then: EdgeStats | None) -> dict[str, float]:
    """What compare mode's columns sort by, largest first: each figure then (none: the
    least), each change since (a new edge's the most, a gone edge's the least): the
    relative change of the rate, the error rate's points, p99's milliseconds."""
    inf = math.inf
    if then is None:
        return dict.fromkeys(COMPARE_COLUMNS[::2], -inf) | dict.fromkeys(COMPARE_COLUMNS[1::2], inf)
    tcp = then.protocol is Proto.TCP
    rate = then.tcp_connections_per_s if tcp else then.rps
    order = {
        "rps-then": rate,
        "err-then": -inf if tcp or not math.isfinite(then.error_rate) else then.error_rate,
        "p99-then": -inf if then.p99_ms is None else then.p99_ms,
    }
    if now is None:
        return order | dict.fromkeys(COMPARE_COLUMNS[1::2], -inf)
    now_rate = now.tcp_connections_per_s if tcp else now.rps
    errors = now.error_rate - then.error_rate
    p99 = None if now.p99_ms is None or then.p99_ms is None else now.p99_ms - then.p99_ms
    return order | {
        "Δrps": (now_rate - rate) / rate if rate > 0 else (inf if now_rate > 0 else 0.0),
        "Δerr": -inf if tcp or not math.isfinite(errors) else errors,
        "Δp99": -inf if tcp or p99 is None or not math.isfinite(p99) else p99,
    }


def summary(c: Comparison, now: MeshSnapshot, now_at: float, names: Callable[[str], str]) -> str:
    """Compare mode in one line: `vs 09:32 (-30m): 9 edges, 1 new, 2 gone; rps -12%,
    errors 0.40% → 2.1%; 2 changes`."""
    http = [e.stats for e in now.edges if e.stats.protocol is not Proto.TCP]
    was = [s for s in c.then.values() if s is not None and s.protocol is not Proto.TCP]
    was += [s for _, s in c.vanished if s.protocol is not Proto.TCP]
    rps_now, rps_then = sum(s.rps for s in http), sum(s.rps for s in was)

    def errors(stats: Sequence[EdgeStats], rps: float) -> str:
        failed = sum(s.rps * s.error_rate for s in stats if math.isfinite(s.error_rate))
        return units.percent(failed / rps) if rps else "-"

    parts = [
        f"vs {clock_words(c.then_at, now_at)} ({ago(now_at - c.then_at)}): "
        f"{len(now.edges)} edges, {len(c.new)} new, {len(c.vanished)} gone",
        f"rps {units.rps(rps_then)} → {units.rps(rps_now)} ({rate_delta(rps_now, rps_then)})",
        f"errors {errors(was, rps_then)} → {errors(http, rps_now)}",
        f"{len(c.changes)} change{'' if len(c.changes) == 1 else 's'}",
    ]
    lines = ["; ".join(parts)]
    if c.new:
        lines.append("new: " + ", ".join(f"{names(a)}→{names(b)}" for a, b in c.new))
    if c.vanished:
        lines.append("gone: " + ", ".join(f"{names(a)}→{names(b)}" for (a, b), _ in c.vanished))
    lines.extend(c.changes)
    if c.unread:
        lines.append(f"no change markers: {c.unread}")
    return "\n".join(lines)


async def then_snapshot(
    clusters: Mapping[str, ClusterSources], at: float, window_s: float, timeout_s: float
) -> MeshSnapshot:
    """The mesh at `at`, as a refresh at that moment reads it."""
    return await refresh(moved(clusters, at), window_s=window_s, timeout_s=timeout_s,
                         clock=lambda: at)  # fmt: skip


async def changes_between(
    planes: Mapping[str, object], start: float, end: float
) -> tuple[tuple[str, ...], str]:
    """What the audit log and the control planes say was changed from `start` to `end`,
    in words, oldest first; and why one of them could not say."""
    import asyncio

    lo, hi = min(start, end), max(start, end)
    said, unread = await config_changes(change_sources(planes))
    why = [unread] if unread else []
    try:
        log = await asyncio.to_thread(audit.changes)
    except OSError as exc:
        log = []
        why.append(f"cannot read the audit log {audit.path()} ({exc.strerror or exc})")
    from meshtop.detail import config_in

    weights = [c for c in log if lo <= c.time <= hi]
    config = config_in([c.resource for c in said], lo, hi, said, weights)
    words = sorted([*((c.time, change_words(c)) for c in weights),
                    *((c.time, config_words(c)) for c in config)])  # fmt: skip
    return tuple(w for _, w in words), "; ".join(why)


# -- the console's moment ----------------------------------------------------------------


class Travel:
    """Where the console is in time: live (`at` None) or at a moment, and what it
    compares with. It moves the app's sources (`go`); the app refreshes them as ever,
    but never by itself while at a moment: the moment is fixed, `r` reads it again."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.compare_at: float | None = None  # compare mode: the moment compared with
        self.then: MeshSnapshot | None = None  # the mesh then, once read
        self.changes: tuple[str, ...] = ()
        self.unread = ""
        self.problem = ""  # why the mesh then could not be read
        self._live: tuple[dict[str, ClusterSources], MetricsSource, Callable[[], float]] | None
        self._live = None

    def live_clusters(self, app: _App) -> dict[str, ClusterSources]:
        return self._live[0] if self._live is not None else dict(app.clusters)

    def go(self, app: _App, at: float | None) -> None:
        """Show the mesh at `at` (None: live): every metrics source moved there, the
        snapshot's time the moment's, and a refresh now."""
        if self._live is None:
            self._live = (dict(app.clusters), app.metrics, app.clock)
        clusters, metrics, clock = self._live
        if at is not None:
            clusters = moved(clusters, at)  # raises before anything is changed
            metrics = one_metrics({c: s.metrics for c, s in clusters.items()})
            clock = _fixed(at)
        app.clusters, app.metrics, app.clock = clusters, metrics, clock
        self.at = at
        app.snapshot = None  # the last answer is of another moment: never kept as stale
        app.request_refresh()

    def now(self, app: _App) -> float:
        """Now, by the live clock (the simulation's own, in a test)."""
        return (self._live[2] if self._live is not None else app.clock)()

    def shown_at(self, app: _App) -> float:
        return self.at if self.at is not None else self.now(app)

    def step(self, app: _App, seconds: float) -> float | None:
        """`[` and `]`: the moment moved by `seconds`; past now is live."""
        now = self.now(app)
        at = self.shown_at(app) + seconds
        self.go(app, None if at >= now - 1 else at)
        return self.at

    async def read_then(self, app: _App) -> None:
        """The mesh at the moment compared with, and what changed in between."""
        at = self.compare_at
        if at is None:
            return
        settings = app.settings
        try:
            then = await then_snapshot(
                self.live_clusters(app), at, settings.window_s, settings.timeout_s
            )
        except MeshtopError as exc:
            self.problem, self.then = str(exc), None
            return
        planes = {c: s.control_plane for c, s in self.live_clusters(app).items()}
        self.changes, self.unread = await changes_between(planes, at, self.shown_at(app))
        self.then, self.problem = then, ""

    def comparison(self, now: MeshSnapshot) -> Comparison | None:
        if self.then is None or self.compare_at is None:
            return None
        c = compare(now, self.then, self.compare_at)
        return replace(c, changes=self.changes, unread=self.unread)


def past_moment(app: object) -> tuple[float, float] | None:
    """The moment the console shows and now, while it is not live (None: live, or an
    app without a main screen's travel, as a test's)."""
    travel = getattr(getattr(app, "main", None), "travel", None)
    if not isinstance(travel, Travel) or travel.at is None:
        return None
    return travel.at, travel.now(app)  # type: ignore[arg-type]


def end_words(app: object) -> str:
    """What a chart's time ruler calls its end: `now`, or the moment shown (`10:02`)."""
    moment = past_moment(app)
    return "now" if moment is None else clock_words(*moment)


def _fixed(at: float) -> Callable[[], float]:
    return lambda: at


class _App(Protocol):
    """What travel changes of the app: its sources, its clock and its snapshot."""

    clusters: dict[str, ClusterSources]
    metrics: MetricsSource
    clock: Callable[[], float]
    snapshot: MeshSnapshot | None

    settings: Settings

    def request_refresh(self) -> None: ...


# -- the main screen's keys and commands ---------------------------------------------------


class _Screen(Protocol):
    """What time travel uses of the main screen."""

    travel: Travel

    @property
    def app(self) -> Any: ...

    def say(self, text: str) -> None: ...
    def show_status(self) -> None: ...
    def run_worker(self, work: Any, *, group: str = ..., exclusive: bool = ...) -> Any: ...
    def compared(self, comparison: Comparison | None) -> None: ...
    def query_one(self, selector: type[EdgeTable]) -> EdgeTable: ...


class TimeTravel:
    """`[`, `]`, `:at` and `:compare`, as the main screen's methods (a mixin, as
    `Commands` is): a command that cannot be done raises a `MeshtopError`, said in place."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.travel = Travel()

    def action_travel(self: _Screen, steps: int) -> None:
        """`[` one window back in time, `]` one forward; past now is live."""
        try:
            self.travel.step(self.app, steps * self.app.settings.window_s)
        except MeshtopError as exc:
            self.say(str(exc))
            return
        TimeTravel._moved(self)

    def cmd_at(self: _Screen, args: list[str]) -> None:
        if len(args) != 1:
            raise UsageError("at takes one moment: -30m, 10:02 (today), 2026-11-25T10:02:00Z, now")
        self.travel.go(self.app, parse_moment(args[0], self.travel.now(self.app)))
        TimeTravel._moved(self)

    def cmd_compare(self: _Screen, args: list[str]) -> None:
        travel = self.travel
        if len(args) > 1:
            raise UsageError("compare takes one moment before: -30m, 10:02, or off")
        if (not args and travel.compare_at is not None) or args[:1] == ["off"]:
            travel.compare_at, travel.then = None, None
            self.compared(None)
            self.show_status()
            return
        shown = travel.shown_at(self.app)
        word = args[0] if args else ""
        if not word:
            then = shown - DEFAULT_COMPARE_S
        elif word.startswith("-"):  # before the moment shown
            then = shown - units.parse_duration(word[1:], what="compare")
        else:
            found = parse_moment(word, travel.now(self.app))
            if found is None:
                raise UsageError("compare takes a moment before the one shown: -30m, 10:02")
            then = found
        travel.compare_at, travel.then, travel.problem = then, None, ""
        TimeTravel._read_then(self)

    def compared(self: _Screen, comparison: Comparison | None) -> None:
        """Compare mode's figures beside the edge table's (None: compare mode ended):
        the table is given the mesh then, and keeps it for each refresh until the next."""
        from meshtop.tui.widgets.edge_table import EdgeTable

        then = self.travel.then if comparison is not None else None
        self.query_one(EdgeTable).compare_with(then)

    def _moved(self: _Screen) -> None:
        if self.travel.compare_at is not None:  # what changed in between: to the new moment
            TimeTravel._read_then(self)
        self.show_status()

    def _read_then(self: _Screen) -> None:
        screen = self

        async def read() -> None:
            await screen.travel.read_then(screen.app)
            problem = screen.travel.problem
            screen.say(f"compare: cannot read the mesh then: {problem}" if problem else "")
            snapshot = screen.app.snapshot
            screen.compared(None if snapshot is None else screen.travel.comparison(snapshot))
            screen.show_status()

        self.say("compare: reading the mesh then…")
        self.run_worker(read(), group="compare", exclusive=True)

    def travel_status(
        self: _Screen, snapshot: MeshSnapshot, view: GraphView | None
    ) -> tuple[tuple[str, str] | None, str, list[str]]:
        """What the status line and the notice say of time travel: the moment shown, the
        moment compared with, and compare mode's lines (summary, new and gone edges, the
        changes in between)."""
        travel = self.travel
        now = travel.now(self.app)
        moment = None if travel.at is None else moment_words(travel.at, now)
        if travel.compare_at is None:
            return moment, "", []
        compared = clock_words(travel.compare_at, now)
        c = travel.comparison(snapshot)
        if c is None:
            return moment, compared, []
        shown = now if travel.at is None else travel.at
        names = partial(label, view)
        return moment, compared, summary(c, snapshot, shown, names).splitlines()
