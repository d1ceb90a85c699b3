"""How numbers read on screen and in reports, as `linkerd viz stat` writes them:
`12.3rps`, `99.82%`, `45ms`, `1.2kB/s`. Also the `30s`/`5m`/`1h` durations users type,
and names cut to the room a column has: `istio-ingre…`."""

from __future__ import annotations

import math
import re

from meshtop.errors import UsageError

DASH = "-"


def clip(text: str, room: int) -> str:
    """`text` in `room` characters at most, its start kept and its cut end marked `…`."""
    return text if len(text) <= room else text[: max(0, room - 1)] + "…"


def rps(value: float) -> str:
    if not math.isfinite(value):
        return DASH
    if value <= 0:
        return "0rps"
    if value >= 1000:
        return f"{value / 1000:.1f}krps"
    if value >= 100:
        return f"{value:.0f}rps"
    if value >= 0.1:
        return f"{value:.1f}rps"
    return f"{value:.2f}rps"


def percent(share: float) -> str:
    """0.0012 reads `0.12%`: two decimals so that small error rates stay visible."""
    if not math.isfinite(share):
        return DASH
    return f"{share * 100:.2f}%"


def ms(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return DASH
    if value >= 10_000:
        return f"{value / 1000:.0f}s"
    if value >= 1000:
        return f"{value / 1000:.1f}s"
    if value >= 10:
        return f"{value:.0f}ms"
    return f"{value:.1f}ms"


def bytes_per_s(value: float) -> str:
    for unit, size in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}B/s"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, *, what: str = "duration") -> float:
    """`90s`, `5m`, `1h` → seconds. Raises `UsageError` with the accepted forms."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"{what} {text!r} is not a positive duration such as 30s, 5m or 1h")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def duration(seconds: float) -> str:
    """Seconds → the shortest exact form of `parse_duration`'s input (`60` → `1m`,
    `1.5` → `1500ms`), in plain digits that PromQL reads too."""
    for unit in ("d", "h", "m", "s", "ms"):
        size = _SECONDS[unit]
        count = seconds / size
        if count >= 1 and abs(count - round(count)) < 1e-9:
            return f"{round(count)}{unit}"
    return f"{max(1, round(seconds * 1000))}ms"


def clock_time(us: int, fmt: str) -> str:
    """A moment (microseconds since the epoch) in UTC to the millisecond, `fmt` ending in
    `%f`; `?` for one no calendar has (a payload's nonsense must not crash a screen)."""
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(us / 1e6, UTC).strftime(fmt)[:-3]
    except (ValueError, OverflowError, OSError):
        return "?"
