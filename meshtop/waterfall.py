"""A trace as a span waterfall: the span tree (children by start time, spans whose parent
is missing shown as roots and marked), clock skew between services corrected so a child
sits inside its parent, the critical path, and the rows a view shows with some spans
collapsed, each with its bar scaled to a time range. Linear in the number of spans, so a
trace of 10,000 spans opens at once; the console draws only the rows on screen. Span
fields are outside text: `text()` shows them through `sanitize.shown`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from meshtop.model import Span, Trace
from meshtop.sanitize import shown

ASYNC_KINDS = ("producer", "consumer")


def _may_skew(parent: Span, child: Span) -> bool:
    """Whether the child's clock may differ from the parent's and may be corrected: it
    ran elsewhere (another service) and it is a call its parent waited for (not a
    message, which may well start or end outside its sender's time)."""
    if parent.service == child.service and parent.process == child.process:
        return False
    return parent.kind not in ASYNC_KINDS and child.kind not in ASYNC_KINDS


@dataclass(frozen=True, slots=True)
class Row:
    span: Span
    depth: int
    start_us: int  # after skew correction
    has_children: bool
    collapsed: bool
    orphan: bool  # its parent is not in the trace
    critical: bool
    skew_us: int  # how far it was moved to sit inside its parent (0: not)


class Tree:
    """The spans of one trace as a tree, built once."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        spans: dict[str, Span] = {}
        seen: dict[str, int] = {}
        for s in trace.spans:  # a repeated id (some payloads have them) gets one of its own
            n = seen[s.span_id] = seen.get(s.span_id, 0) + 1
            key = s.span_id if n == 1 else f"{s.span_id}#{n}"
            while key in spans:  # an id that already reads like one of those
                n += 1
                key = f"{s.span_id}#{n}"
            spans[key] = s
        self.spans = spans
        self.children: dict[str, list[str]] = {k: [] for k in spans}
        self.roots: list[str] = []
        self.orphans: set[str] = set()
        for key, s in spans.items():
            parent = s.parent_id
            if parent is not None and parent in spans and parent != key:
                self.children[parent].append(key)
            else:
                self.roots.append(key)
                if parent is not None:
                    self.orphans.add(key)
        self._break_cycles()
        for kids in self.children.values():
            kids.sort(key=lambda k: (spans[k].start_us, k))
        self.roots.sort(key=lambda k: (spans[k].start_us, k))
        self.start, self.skew = self._correct_skew()
        self.critical = self._critical_path()

    def _break_cycles(self) -> None:
        """Spans that are their own ancestors (a broken payload) become roots."""
        seen: set[str] = set()
        stack = list(self.roots)
        while stack:
            key = stack.pop()
            seen.add(key)
            stack.extend(self.children[key])
        for key in self.spans:
            if key not in seen:  # only reachable through a cycle
                for kids in self.children.values():
                    if key in kids:
                        kids.remove(key)
                self.roots.append(key)
                self.orphans.add(key)
                stack = [key]
                while stack:
                    k = stack.pop()
                    seen.add(k)
                    stack.extend(c for c in self.children[k] if c not in seen)

    def _correct_skew(self) -> tuple[dict[str, int], dict[str, int]]:
        """Each child moved, with its subtree, by as little as puts it inside its parent
        when its clock disagrees (it starts before its parent, or ends after it though it
        is not longer): how Zipkin's and Jaeger's UIs show skewed services."""
        start = {k: s.start_us for k, s in self.spans.items()}
        skew: dict[str, int] = {}
        stack = [(k, 0) for k in self.roots]
        while stack:
            key, shift = stack.pop()
            start[key] += shift
            s = self.spans[key]
            end = start[key] + s.duration_us
            for child in self.children[key]:
                c = self.spans[child]
                c_start = c.start_us + shift
                move = 0
                if not _may_skew(s, c):
                    pass  # one clock, or a message that may outlive its sender: as recorded
                elif c_start < start[key]:
                    move = start[key] - c_start
                elif c_start + c.duration_us > end and c.duration_us <= s.duration_us:
                    move = end - (c_start + c.duration_us)
                if move:
                    skew[child] = move
                stack.append((child, shift + move))
        return start, skew

    def end(self, key: str) -> int:  # after skew correction
        return self.start[key] + self.spans[key].duration_us

    def _critical_path(self) -> set[str]:
        """The spans the trace waited on: from each root, the child that finished last,
        then whatever finished before that child started, and so on down (Jaeger's)."""
        path: set[str] = set()
        stack = self.roots[:1]  # the trace's own root; orphans are not what it waited on
        while stack:
            key = stack.pop()
            path.add(key)
            cursor = self.end(key)
            for child in sorted(self.children[key], key=self.end, reverse=True):
                if self.end(child) <= cursor:
                    stack.append(child)
                    cursor = self.start[child]
        return path

    @property
    def bounds(self) -> tuple[int, int]:
        if not self.spans:
            return (0, 1)
        first = min(self.start.values())
        last = max(self.end(k) for k in self.spans)
        return first, max(last, first + 1)

    def rows(self, collapsed: Iterable[str] = ()) -> list[Row]:
        """The rows shown, depth first, children by start, under what is not collapsed."""
        folded = set(collapsed)
        out: list[Row] = []
        stack = [(k, 0) for k in reversed(self.roots)]
        while stack:
            key, depth = stack.pop()
            kids = self.children[key]
            out.append(
                Row(
                    span=self.spans[key],
                    depth=depth,
                    start_us=self.start[key],
                    has_children=bool(kids),
                    collapsed=key in folded,
                    orphan=key in self.orphans,
                    critical=key in self.critical,
                    skew_us=self.skew.get(key, 0),
                )
            )
            if key not in folded:
                stack.extend((c, depth + 1) for c in reversed(kids))
        return out

    def key_of(self, row: Row) -> str:
        """The key a row's span has in the tree (its id, or id#n for a repeated id)."""
        span = row.span
        if self.spans.get(span.span_id) is span:
            return span.span_id
        return next(k for k, s in self.spans.items() if s is span)


def bar(start_us: int, duration_us: int, t0: int, t1: int, width: int) -> tuple[int, int] | None:
    """Columns [a, b) of a span's bar in `width` columns for the time range [t0, t1];
    at least one column, so a short span never vanishes; None outside the range."""
    if width <= 0 or t1 <= t0:
        return None
    end = start_us + duration_us
    if end < t0 or start_us > t1:
        return None
    scale = width / (t1 - t0)
    a = int((max(start_us, t0) - t0) * scale)
    b = int((min(end, t1) - t0) * scale + 0.999)
    a = min(a, width - 1)
    return a, max(b, a + 1)


def text(tree: Tree, width: int = 100) -> list[str]:
    """The waterfall as plain lines (`meshtop trace`): the tree, then a bar per span on
    the trace's time, its duration, `!` for an error and `*` on the critical path."""
    from meshtop import units

    first, last = tree.bounds
    name_w = min(48, max(20, width // 2))
    bars = max(10, width - name_w - 12)
    total = units.ms((last - first) / 1000)
    lines = [f"{'span':<{name_w}} {'0':<{bars // 2}}{total:>{bars - bars // 2}}"]
    for row in tree.rows():
        s = row.span
        marks = ("!" if s.error else " ") + ("*" if row.critical else " ")
        orphan = "⤷ " if row.orphan else ""
        name = f"{'  ' * min(row.depth, 12)}{orphan}{shown(s.service)} {shown(s.operation)}"
        if len(name) > name_w:
            name = name[: name_w - 1] + "…"
        cells = [" "] * bars
        placed = bar(row.start_us, s.duration_us, first, last, bars)
        if placed is not None:
            for x in range(*placed):
                cells[x] = "█" if row.critical else "▆"
        skew = f" (skew {units.ms(row.skew_us / 1000)})" if row.skew_us else ""
        lines.append(
            f"{name:<{name_w}} {''.join(cells)} {marks}{units.ms(s.duration_us / 1000)}{skew}"
        )
    return lines


def _nice_step(least: float) -> int:
    """The next of 1, 2, 5 times 10^k microseconds at or above `least` (at least 1µs)."""
    power = 1
    while True:
        for m in (1, 2, 5):
            if m * power >= least:
                return m * power
        power *= 10


def ticks(t0: int, t1: int, origin: int, width: int, room: int = 12) -> list[tuple[int, str]]:
    """A ruler's ticks for the time range [t0, t1] over `width` columns: round times since
    `origin` (the trace's start), at most one per `room` columns, each as precise as its
    step needs, so that no two read the same however far the view is zoomed (`49.5ms
    50.0ms 50.5ms`, not `49ms 50ms 50ms`). Each is (column, label)."""
    span = t1 - t0
    if width <= 0 or span <= 0:
        return []
    step = _nice_step(span / max(1, width // room))
    end = t1 - origin
    unit, scale = (
        ("s", 1_000_000) if end >= 1_000_000 else ("ms", 1000) if end >= 1000 else ("µs", 1)
    )
    decimals = max(0, math.ceil(-math.log10(step / scale) - 1e-9))
    out = []
    at = -(-(t0 - origin) // step) * step  # the first round time in the range
    while origin + at <= t1:
        x = round((origin + at - t0) / span * (width - 1))
        out.append((x, f"{at / scale:.{decimals}f}{unit}"))
        at += step
    return out
