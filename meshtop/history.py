"""An edge's or a node's history: the step a window is shown at, and how the answers a
metrics source gives (rates by outcome, per point and over the window) become a
`History`. Prometheus and the simulated mesh both build theirs here, so both count
alike: one reporter per edge, errors by kind, gaps where there was no data."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from meshtop import units
from meshtop.errors import UsageError
from meshtop.model import History, Series, WindowSummary, add_rates, counts_as_error

# The windows the detail screens offer on keys 1 to 6.
WINDOWS = (300.0, 900.0, 3600.0, 6 * 3600.0, 24 * 3600.0, 7 * 24 * 3600.0)
NICE_STEPS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 3 * 3600)
MAX_WINDOW_S = 30 * 24 * 3600.0


def parse_window(text: str) -> float:
    """A history window the user typed (`15m`, `24h`), in seconds, from 1m to 30d."""
    seconds = units.parse_duration(text, what="window")
    if not 60 <= seconds <= MAX_WINDOW_S:
        raise UsageError(f"window {text!r}: choose between 1m and {units.duration(MAX_WINDOW_S)}")
    return seconds


def history_step(window_s: float, points: int = 120) -> float:
    """About `points` points over the window, on a step a person would pick."""
    wanted = window_s / points
    return float(next((s for s in NICE_STEPS if s >= wanted), NICE_STEPS[-1]))


def point_times(end: float, window_s: float, step_s: float) -> tuple[float, ...]:
    """The points of a window ending at `end`, oldest first, as a range query has them."""
    start = end - window_s
    return tuple(start + i * step_s for i in range(int(window_s // step_s) + 1))


@dataclass(frozen=True, slots=True)
class Answer:
    """One kind of answer on one edge over the window, as one proxy reported it."""

    edge: str  # anything naming the edge, the same for all its reporters
    reporter: str
    rps: float
    code: str = ""
    grpc_status: str = ""
    flags: str = "-"
    kind: str | None = None  # `model.error_kind`, None for a success
    secured: bool | None = None  # on mutual TLS; None: this reporter cannot tell
    source_principal: str = ""
    destination_principal: str = ""


def _known(value: str) -> str:
    return "" if value in ("", "unknown") else value


def summarize(
    answers: Iterable[Answer],
    http_reporters: Sequence[str],
    mtls_reporters: Sequence[str],
    quantiles: Mapping[float, float | None],
) -> WindowSummary:
    """Sum up a window: each edge counted from its first reporter in `http_reporters`
    (so a request both proxies saw counts once), mTLS from the first that knows it, and
    each reporter's own count where an edge had several, to show requests lost between."""
    by_edge: dict[str, dict[str, list[Answer]]] = defaultdict(lambda: defaultdict(list))
    for a in answers:
        if a.rps > 0 and math.isfinite(a.rps):
            by_edge[a.edge][a.reporter].append(a)
    rps = 0.0
    failed = 0.0
    codes: dict[str, float] = defaultdict(float)
    flags: dict[str, float] = defaultdict(float)
    grpc: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    by_reporter: dict[str, float] = defaultdict(float)
    secured = judged = 0.0
    source_principals: set[str] = set()
    destination_principals: set[str] = set()
    for reporters in by_edge.values():
        counted = next((r for r in http_reporters if r in reporters), None)
        if counted is not None:
            for a in reporters[counted]:
                rps += a.rps
                codes[a.code] += a.rps
                if a.flags not in ("-", ""):
                    flags[a.flags] += a.rps
                if a.grpc_status:
                    grpc[a.grpc_status] += a.rps
                if a.kind is not None:
                    errors[a.kind] += a.rps
                if counts_as_error(a.kind):
                    failed += a.rps
        if len(reporters) > 1:
            for name, seen in reporters.items():
                by_reporter[name] += sum(a.rps for a in seen)
        knows = next((r for r in mtls_reporters if r in reporters), None)
        for a in reporters.get(knows, ()) if knows else ():
            if a.secured is not None:
                judged += a.rps
                secured += a.rps if a.secured else 0.0
            if a.secured:
                source_principals.add(_known(a.source_principal))
                destination_principals.add(_known(a.destination_principal))
    return WindowSummary(
        rps=rps,
        error_rate=failed / rps if rps else None,
        p50_ms=quantiles.get(0.5),
        p95_ms=quantiles.get(0.95),
        p99_ms=quantiles.get(0.99),
        mtls=secured / judged if judged else None,
        response_codes=dict(codes),
        response_flags=dict(flags),
        grpc_statuses=dict(grpc),
        errors=dict(errors),
        by_reporter=dict(by_reporter),
        source_principals=tuple(sorted(source_principals - {""})),
        destination_principals=tuple(sorted(destination_principals - {""})),
    )


@dataclass
class Points:
    """Rates by kind of answer at each point of a window, filled as answers arrive."""

    times: tuple[float, ...]
    step_s: float

    def __post_init__(self) -> None:
        n = len(self.times)
        self.total: list[float | None] = [None] * n
        self.by_kind: dict[str, list[float | None]] = {}
        self.quantiles: dict[float, list[float | None]] = defaultdict(lambda: [None] * n)

    def index(self, t: float) -> int | None:
        """The point at time `t`, None when it falls outside the window."""
        i = round((t - self.times[0]) / self.step_s) if self.times else -1
        return i if 0 <= i < len(self.times) else None

    def add(self, i: int, kind: str | None, rps: float) -> None:
        if not math.isfinite(rps):
            return
        self.total[i] = (self.total[i] or 0.0) + rps
        if kind is not None:
            series = self.by_kind.get(kind)
            if series is None:
                series = self.by_kind[kind] = [None] * len(self.times)
            series[i] = (series[i] or 0.0) + rps

    def latency(self, i: int, q: float, ms: float) -> None:
        if math.isfinite(ms):  # NaN: no requests; +Inf: beyond the last bucket
            self.quantiles[q][i] = ms

    def history(
        self,
        source: str | None,
        destination: str | None,
        window_s: float,
        summary: WindowSummary,
    ) -> History:
        n = len(self.times)
        failed = [
            sum(s[i] or 0.0 for kind, s in self.by_kind.items() if counts_as_error(kind))
            for i in range(n)
        ]
        # An error kind is 0 where there was traffic without it, a gap where there was none.
        errors = {
            kind: tuple(None if self.total[i] is None else (series[i] or 0.0) for i in range(n))
            for kind, series in sorted(self.by_kind.items())
        }
        return History(
            source=source,
            destination=destination,
            window_s=window_s,
            step_s=self.step_s,
            times=self.times,
            rps=tuple(self.total),
            error_rate=tuple(
                None if not total else failed[i] / total for i, total in enumerate(self.total)
            ),
            p50_ms=_series(self.quantiles, 0.5, n),
            p95_ms=_series(self.quantiles, 0.95, n),
            p99_ms=_series(self.quantiles, 0.99, n),
            errors=errors,
            summary=summary,
        )


def _series(quantiles: Mapping[float, list[float | None]], q: float, n: int) -> Series:
    return tuple(quantiles[q]) if q in quantiles else (None,) * n


def known(series: Sequence[float | None]) -> list[float]:
    """The values of a series that are there."""
    return [v for v in series if v is not None]


def merge(histories: Sequence[History]) -> History:
    """Several edges shown as one (a grouped node, an app's versions): rates add up,
    error rates follow, and each latency quantile is the slowest of them, an upper bound,
    as the graph's merged edges have it."""
    if len(histories) == 1:
        return histories[0]
    first = histories[0]
    n = len(first.times)

    def add(series: Iterable[Series]) -> list[float | None]:
        out: list[float | None] = [None] * n
        for s in series:
            for i, v in enumerate(s):
                if v is not None:
                    out[i] = (out[i] or 0.0) + v
        return out

    def slowest(series: Iterable[Series]) -> Series:
        columns = list(zip(*series, strict=True))
        return tuple(max((v for v in col if v is not None), default=None) for col in columns)

    rps = add(h.rps for h in histories)
    kinds = sorted({k for h in histories for k in h.errors})
    # a kind is 0 wherever there was traffic without it, as in each history
    errors = {
        k: tuple(
            None if r is None else (v or 0.0)
            for r, v in zip(rps, add(h.errors[k] for h in histories if k in h.errors), strict=True)
        )
        for k in kinds
    }
    failed = add(
        tuple(
            None if r is None or e is None else r * e
            for r, e in zip(h.rps, h.error_rate, strict=True)
        )
        for h in histories
    )
    summaries = [h.summary for h in histories]

    summary_rps = sum(s.rps for s in summaries)
    summary_failed = sum(s.rps * (s.error_rate or 0.0) for s in summaries)
    judged = [(s.mtls, s.rps) for s in summaries if s.mtls is not None]
    judged_rps = sum(r for _, r in judged)

    def slowest_of(values: Iterable[float | None]) -> float | None:
        return max((v for v in values if v is not None), default=None)

    return History(
        source=first.source,
        destination=first.destination,
        window_s=first.window_s,
        step_s=first.step_s,
        times=first.times,
        rps=tuple(rps),
        error_rate=tuple(
            None if not r else (f or 0.0) / r for r, f in zip(rps, failed, strict=True)
        ),
        p50_ms=slowest(h.p50_ms for h in histories),
        p95_ms=slowest(h.p95_ms for h in histories),
        p99_ms=slowest(h.p99_ms for h in histories),
        errors=errors,
        summary=WindowSummary(
            rps=summary_rps,
            error_rate=summary_failed / summary_rps if summary_rps else None,
            p50_ms=slowest_of(s.p50_ms for s in summaries),
            p95_ms=slowest_of(s.p95_ms for s in summaries),
            p99_ms=slowest_of(s.p99_ms for s in summaries),
            mtls=sum(m * r for m, r in judged) / judged_rps if judged_rps else None,
            response_codes=add_rates(s.response_codes for s in summaries),
            response_flags=add_rates(s.response_flags for s in summaries),
            grpc_statuses=add_rates(s.grpc_statuses for s in summaries),
            errors=add_rates(s.errors for s in summaries),
            by_reporter=add_rates(s.by_reporter for s in summaries),
            source_principals=tuple(sorted({p for s in summaries for p in s.source_principals})),
            destination_principals=tuple(
                sorted({p for s in summaries for p in s.destination_principals})
            ),
        ),
    )
