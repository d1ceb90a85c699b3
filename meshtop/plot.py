"""Series over time in terminal cells: bar plots with a y axis in the series' unit and a
time ruler, a latency band (p50 / p95 / p99 as three shades), and one-line sparklines.
Plain text, so the console and `meshtop edge` draw the same. A gap in the data is a blank
column, never a zero: a zero is the lowest bar."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from meshtop import units
from meshtop.model import Series

EIGHTHS = " ▁▂▃▄▅▆▇█"
BAND = ("█", "▓", "░")  # up to p50, p50 to p95, p95 to p99
AXIS_WIDTH = 8
MARK = "▲"  # a change (a weight shift) under the column of its time
CONFIG_MARK = "◆"  # a change the control plane says was made (a route's, a Deployment's)
# a moment to mark: a weight shift's (`MARK`), or with the glyph to mark it with
Mark = float | tuple[float, str]

Format = Callable[[float], str]


def columns(series: Series, width: int) -> list[float | None]:
    """The series fitted to `width` columns: several points to a column are averaged
    (the gaps among them left out), one point spans several columns when there are few."""
    n = len(series)
    if n == 0 or width <= 0:
        return [None] * max(width, 0)
    out: list[float | None] = []
    for c in range(width):
        lo = c * n // width
        hi = max(lo + 1, (c + 1) * n // width)
        values = [v for v in series[lo:hi] if v is not None and math.isfinite(v)]
        out.append(sum(values) / len(values) if values else None)
    return out


def nice_top(value: float) -> float:
    """The axis top: the next of 1, 2, 2.5, 5 times 10^k at or above `value`."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value * (1 - 1e-9)))


def _level(value: float, top: float, cells: int) -> int:
    """Eighths of a cell a value fills; a zero fills one, so it shows as a floor."""
    if value <= 0:
        return 1
    return max(2, min(cells * 8, round(value / top * cells * 8)))


def bars(values: Sequence[float | None], height: int, top: float) -> list[str]:
    """Rows of a bar plot, top row first."""
    levels = [None if v is None else _level(v, top, height) for v in values]
    rows = []
    for row in range(height - 1, -1, -1):
        line = []
        for level in levels:
            if level is None:
                line.append(" ")
            else:
                line.append(EIGHTHS[max(0, min(8, level - row * 8))])
        rows.append("".join(line))
    return rows


def band(
    p50: Sequence[float | None],
    p95: Sequence[float | None],
    p99: Sequence[float | None],
    height: int,
    top: float,
) -> list[str]:
    """Rows of a latency band, each cell shaded by the quantiles that reach it: p50 and
    p95 where they fill at least half the cell, p99 wherever it reaches into it, so the
    tail always shows."""
    rows = []
    for row in range(height - 1, -1, -1):
        low, middle = row / height * top, (row + 0.5) / height * top
        line = []
        for a, b, c in zip(p50, p95, p99, strict=True):
            if c is None:
                line.append(" ")
            elif a is not None and a >= middle:
                line.append(BAND[0])
            elif b is not None and b >= middle:
                line.append(BAND[1])
            elif c > low:
                line.append(BAND[2])
            else:
                line.append(" ")
        rows.append("".join(line))
    return rows


def sparkline(series: Series, width: int, top: float | None = None) -> str:
    values = columns(series, width)
    known = [v for v in values if v is not None]
    scale = top if top is not None else (max(known) if known else 1.0) or 1.0
    return bars(values, 1, scale)[0]


def axis_sparkline(label: str, series: Series, width: int, top: float | None = None) -> str:
    """A sparkline to sit under a `plot` of the same `width` and the same times: the label
    where the y axis is, then one column for each of the plot's, each over the same time."""
    room = max(1, width - AXIS_WIDTH)
    return f"{label[: AXIS_WIDTH - 1]:>{AXIS_WIDTH - 1}}│{sparkline(series, room, top)}"


TICKS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400,
         2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400)  # fmt: skip


def ruler(times: Sequence[float], width: int, end: str = "now") -> str:
    """Time ticks under a plot: the window's start, round times before its end (`-10m`),
    and `end` at the end: `now`, or the moment it is (`10:02`) when that is past."""
    if not times or width < 8:
        return ""
    span = times[-1] - times[0]
    most = max(1, width // 12)  # room for a label each
    step = next((t for t in TICKS if span / t <= most), TICKS[-1])
    line = [" "] * width
    first = "-" + units.duration(span)  # the window's start, then round times
    line[: len(first)] = first
    k = 0
    while k * step <= span:
        x = round((span - k * step) / span * (width - 1)) if span else width - 1
        text = end if k == 0 else "-" + units.duration(k * step)
        start = min(max(0, x - len(text) // 2), width - len(text))
        if all(c == " " for c in line[max(0, start - 4) : start + len(text) + 1]):
            line[start : start + len(text)] = text
        k += 1
    return "".join(line)


def mark_columns(times: Sequence[float], width: int, moments: Sequence[float]) -> list[int]:
    """The columns, of a plot's `width`, whose time holds each of `moments` (as `columns`
    fits the points to them); a moment outside the window has none."""
    n = len(times)
    if n == 0 or width <= 0:
        return []
    step = (times[-1] - times[0]) / (n - 1) if n > 1 else 0.0
    out = []
    for moment in moments:
        if not times[0] - step <= moment <= times[-1]:
            continue
        i = next((k for k, t in enumerate(times) if t >= moment), n - 1)  # its point
        out.append(min(width - 1, i * width // n))
    return out


def marks_line(times: Sequence[float], width: int, moments: Sequence[Mark]) -> str:
    """A line to sit under a plot's bars: `▲` (or the moment's own glyph) at each
    moment's column, after the axis; where two share a column, a weight shift's shows."""
    room = max(1, width - AXIS_WIDTH)
    cells = [" "] * room
    pairs = [(m, MARK) if isinstance(m, float | int) else m for m in moments]
    for moment, glyph in sorted(pairs, key=lambda p: p[1] == MARK):  # ▲ drawn last
        for x in mark_columns(times, room, [moment]):
            cells[x] = glyph
    return " " * (AXIS_WIDTH - 1) + "│" + "".join(cells)


def _axis(rows: list[str], top: float, fmt: Format) -> list[str]:
    """The y axis: the top value on the first row, 0 on the last."""
    out = []
    for i, row in enumerate(rows):
        label = fmt(top) if i == 0 else (fmt(0.0) if i == len(rows) - 1 else "")
        tick = "┤" if label else "│"
        out.append(f"{label:>{AXIS_WIDTH - 1}}{tick}{row}")
    return out


def plot(
    series: Series,
    times: Sequence[float],
    width: int,
    height: int,
    fmt: Format,
    least_top: float = 0.0,
    marks: Sequence[Mark] = (),
    end: str = "now",
) -> list[str]:
    """A bar plot with its axes, `width` columns wide in all; the axis reaches at least
    `least_top`, so that small values do not fill a plot alone; `marks` (moments, as
    `times` are) marked `▲` (or their own glyph) under the bars; `end`: what the ruler
    calls the last moment."""
    room = max(1, width - AXIS_WIDTH)
    values = columns(series, room)
    known = [v for v in values if v is not None]
    top = nice_top(max([*known, least_top]))
    under = [marks_line(times, width, marks)] if marks else []
    return [*_axis(bars(values, height, top), top, fmt), *under,
            " " * AXIS_WIDTH + ruler(times, room, end)]  # fmt: skip


def latency_plot(
    p50: Series,
    p95: Series,
    p99: Series,
    times: Sequence[float],
    width: int,
    height: int,
    marks: Sequence[Mark] = (),
    end: str = "now",
) -> list[str]:
    room = max(1, width - AXIS_WIDTH)
    c50, c95, c99 = (columns(s, room) for s in (p50, p95, p99))
    known = [v for v in c99 if v is not None]
    top = nice_top(max(known) if known else 0.0)
    rows = band(c50, c95, c99, height, top)
    under = [marks_line(times, width, marks)] if marks else []
    return [*_axis(rows, top, units.ms), *under, " " * AXIS_WIDTH + ruler(times, room, end)]
