"""Quantiles from a classic histogram's buckets, computed exactly as Prometheus's
`histogram_quantile` computes them (`promql/quantile.go`, `bucketQuantile`): a refresh
asks for the summed bucket rates once and works out p50, p95 and p99 here, where asking
Prometheus for each would make it read every bucket series once per quantile."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

# Prometheus ignores differences between neighbouring buckets below this share: they
# are floating-point noise from summing rates, not observations.
SMALL_DELTA = 1e-12
_MIN_NORMAL = 2.2250738585072014e-308  # the smallest normal float64, as Go's `almost`


def upper_bound(le: str) -> float | None:
    """A bucket's `le` label as Go's `strconv.ParseFloat` reads it, or None where
    Prometheus would skip the series (`le` malformed or missing)."""
    if not le.isascii() or le != le.strip() or "_" in le:
        return None  # Python's float() also takes spaces, digit underscores and any digits
    try:
        return float(le)
    except ValueError:
        return None


def _almost_equal(a: float, b: float) -> bool:
    """Go's `almost.Equal(a, b, SMALL_DELTA)`."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    total = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or total < _MIN_NORMAL:
        return diff < SMALL_DELTA * _MIN_NORMAL
    return diff / min(total, 1.7976931348623157e308) < SMALL_DELTA


def quantiles(qs: Sequence[float], buckets: Iterable[tuple[float, float]]) -> list[float]:
    """Each quantile in `qs` of the histogram whose buckets are (upper bound, count), in
    any order: what `histogram_quantile(q, …)` answers for them, NaN where it answers NaN.

    As Prometheus does it: buckets sorted by upper bound, the highest must be +Inf;
    buckets of the same bound merged; neighbours differing by a relative 1e-12 or less
    made equal, and any decrease removed (a histogram's counts only grow with the bound);
    then the quantile's rank found in the first bucket whose count reaches it and
    interpolated linearly inside that bucket, from 0 for the lowest bucket with a
    positive bound; a rank beyond the last finite bucket answers that bucket's bound."""
    return [value for value, _ in quantiles_at(qs, buckets)]


def quantiles_at(
    qs: Sequence[float], buckets: Iterable[tuple[float, float]]
) -> list[tuple[float, float]]:
    """As `quantiles`, each with the upper bound of the bucket its rank fell in (NaN where
    none did): where the answer came from."""
    ordered = sorted(buckets, key=lambda b: b[0])
    if not ordered or ordered[-1][0] != math.inf:
        return [(_outside(q, math.nan), math.nan) for q in qs]
    bounds: list[float] = []
    counts: list[float] = []
    for bound, count in ordered:  # coalesce buckets of the same upper bound
        if bounds and bounds[-1] == bound:
            counts[-1] += count
        else:
            bounds.append(bound)
            counts.append(count)
    prev = counts[0]
    for i in range(1, len(counts)):  # ensureMonotonicAndIgnoreSmallDeltas
        curr = counts[i]
        if curr == prev:
            continue
        if prev > 0 and curr - prev > 2 * SMALL_DELTA * (curr + prev):
            prev = curr  # clearly more: most buckets, without the exact comparison
            continue
        if _almost_equal(prev, curr) or curr < prev:
            counts[i] = prev
            continue
        prev = curr
    if len(counts) < 2:
        return [(_outside(q, math.nan), math.nan) for q in qs]
    out = []
    for q in qs:
        value, bound = _quantile(q, bounds, counts)
        out.append((_outside(q, value), bound))
    return out


def _outside(q: float, otherwise: float) -> float:
    """A quantile outside 0..1 (or NaN) answers before the buckets are looked at."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    return otherwise


def _quantile(q: float, bounds: list[float], counts: list[float]) -> tuple[float, float]:
    observations = counts[-1]
    if observations == 0:
        return math.nan, math.nan
    rank = q * observations
    # sort.Search over all but the last bucket: the first whose count reaches the rank
    b, hi = 0, len(counts) - 1
    while b < hi:
        mid = (b + hi) // 2
        if counts[mid] >= rank:
            hi = mid
        else:
            b = mid + 1
    if b == len(counts) - 1:
        return bounds[-2], bounds[b]
    if b == 0 and bounds[0] <= 0:
        return bounds[0], bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * _divided(rank, count), bounds[b]


def _divided(a: float, b: float) -> float:
    """`a / b` as Go divides floats: by zero, an infinity of `a`'s sign, or NaN for 0/0
    (Python raises instead)."""
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)
