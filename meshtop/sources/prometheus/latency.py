"""Which proxy's latency histogram each edge's quantiles come from, and the quantiles.

A call between two sidecars is reported by both proxies; its latency is the first
reporter's (the client's, which also times the failures the server never saw), a later
reporter's only where no reporter before it has the call's buckets (an unmeshed client,
whose calls only the server's proxy sees). Asking every reporter about every call would
make the backend read the buckets of most calls twice. So a later reporter is asked only
about the calls of the source workloads it was first to report last time (`Later`,
`needed`; the first time, the callers no proxy named: `unmeshed`), and the requests
answer, asked at the same time, checks that this covered every call it is first to
report now; calls it did not cover (a caller whose own proxy reports to another
cluster's Prometheus) are asked about in one more query (`missing`). A proxy's
histogram counts the requests it counts, so a reporter with no requests for a call has
no buckets for it either; where one has requests but no buckets (histograms dropped by
relabelling), the calls left without a latency are asked of the reporters after it
(`unanswered`).

The first refresh, before any answer says where the quantiles fall, leaves out the
buckets above a second (`first_cuts`). Once a refresh has seen where they fall, the next
leaves out the buckets well above them (`leave_out`), every histogram's buckets below
those still read; a quantile that falls among the buckets left out is worked out from
all of its histogram's buckets, asked for once more (`edge_quantiles`, `unsure`). Where
a few callers' quantiles fall far above the others', those callers are named and the
others' buckets cut lower (`Cuts`, `cuts_for`). The quantiles are `histogram_quantile`'s
over every bucket but where a bucket left out grew more over the window than +Inf:
Prometheus counts the requests from the larger, which meshtop did not read. A proxy
counts each request in +Inf too; `rate()`'s extrapolation can do it, by about a request,
to a histogram younger than the window or reset in it."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshtop.sources.dialects import Dialect
from meshtop.sources.prometheus.quantiles import quantiles_at, upper_bound
from meshtop.sources.prometheus.queries import (
    EDGE,
    QUANTILES,
    SEPARATOR,
    Later,
    _named,
    bounds_matcher,
)
from meshtop.turns import BATCH, giving_way

# Above this length the source workloads are not named: the reporter is asked about every
# call (its buckets read in full), and the query stays a short URL.
MAX_NAMES_CHARS = 2000
# The callers named for the buckets they need above the others' (`Cuts`): written twice
# per reporter, so fewer, for a URL within a proxy's usual 8 kB
SLOW_NAMES_CHARS = 400
# Before any answer says where the quantiles fall, the first refresh reads the buckets up
# to a second, and +Inf (`first_cuts`): most calls' quantiles fall in them, and Istio's
# default buckets above a second are 9 of 20 (at 2,000 simulated services, 45% of the
# bucket series, and every call's quantiles but two calls'); a call whose quantile
# falls above is asked for the rest.
FIRST_MS = 1000.0

Rows = Sequence[Mapping[str, Any]]
Names = dict[str, set[str] | None]  # for each reporter after the first, as `Later`


def _first_reporters(d: Dialect, requests: Rows) -> dict[str, int]:
    """Per call (`meshtop_edge`), the index of the first HTTP reporter with any series."""
    rank = {r: i for i, r in enumerate(d.http_reporters)}
    first: dict[str, int] = {}
    reporter_label = d.reporter_label
    for row in giving_way(requests, BATCH):  # a key's work on the screen's thread first
        labels = row["metric"]
        i = rank.get(labels.get(reporter_label, ""))
        if i is None:
            continue
        key = labels.get(EDGE, "")
        if i < first.get(key, len(rank)):
            first[key] = i
    return first


def _workload(d: Dialect, key: str) -> str | None:
    """The source workload named in a call's joined labels; None where a `|` in a label
    value makes its fields impossible to tell apart."""
    fields = d.edge_labels()
    parts = key.split(SEPARATOR)
    if d.source.workload not in fields or len(parts) != len(fields):
        return None
    return parts[fields.index(d.source.workload)]


def _names(d: Dialect, wanted: Iterable[tuple[str, str]], first: bool = False) -> Names:
    """For each later reporter (and the first, with `first`), the source workloads of the
    calls `wanted` pairs it with (call, reporter); None where one cannot be named, or they
    would make too long a query."""
    out: Names = {r: set() for r in d.http_reporters[0 if first else 1 :]}
    for key, reporter in wanted:
        names = out[reporter]
        if names is None:
            continue
        name = _workload(d, key)
        if name is None:
            out[reporter] = None
        else:
            names.add(name)
    for reporter, names in out.items():
        if names is not None and sum(len(n) + 1 for n in names) > MAX_NAMES_CHARS:
            out[reporter] = None
    return out


def unmeshed(d: Dialect) -> Names:
    """Whom the first refresh asks, before any answer says: the reporters after the first
    about the callers no proxy named (an unmeshed client is the usual caller only the
    server's proxy sees); the requests answer says if others were needed (`missing`)."""
    return {r: {d.unknown} for r in d.http_reporters[1:]}


def needed(d: Dialect, requests: Rows) -> Names:
    """Whom to ask about which calls, by the requests answer: each reporter after the
    first about the calls it is the first to report."""
    first = _first_reporters(d, requests)
    return _names(d, ((k, d.http_reporters[i]) for k, i in first.items() if i > 0))


def _asked(asked: Later | None, reporter: str, name: str | None) -> bool:
    if asked is None:
        return True
    names = asked.get(reporter, set())
    return names is None or (name is not None and name in names)


def _nothing(names: Names) -> bool:
    return all(n is not None and not n for n in names.values())


def missing(wanted: Names, asked: Later | None) -> Names | None:
    """What `wanted` asks that `asked` did not (None: nothing): the names not asked yet, or
    every call (None) where the names wanted cannot be told."""
    out: Names = {}
    for reporter, names in wanted.items():
        before = None if asked is None else asked.get(reporter, set())
        if before is None:
            out[reporter] = set()
        elif names is None:
            out[reporter] = None
        else:
            out[reporter] = names - set(before)
    return None if _nothing(out) else out


def merge(asked: Later | None, more: Later | None) -> Names | None:
    """Everything `asked` and `more` ask about (None: every reporter about every call)."""
    if asked is None:
        return None
    out: Names = {}
    for reporter in {*asked, *(more or {})}:
        a = asked.get(reporter, set())
        b = (more or {}).get(reporter, set())
        out[reporter] = None if a is None or b is None else {*a, *b}
    return out


def unanswered(d: Dialect, requests: Rows, latency: Rows, asked: Later | None) -> Names | None:
    """After the latency answer: the calls some reporter counted requests of but no
    reporter answered buckets for, asked of the reporters after that one not asked about
    them yet. None: every call's latency is decided."""
    have: set[str] = {row["metric"].get(EDGE, "") for row in giving_way(latency, BATCH)}
    wanted = [
        (key, reporter)
        for key, i in _first_reporters(d, requests).items()
        if key not in have
        for reporter in d.http_reporters[i + 1 :]
        if not _asked(asked, reporter, _workload(d, key))
    ]
    if not wanted:
        return None
    names = _names(d, wanted)
    return None if _nothing(names) else names


def fresh(d: Dialect, rows: Sequence[dict[str, Any]], asked: Later | None) -> list[dict[str, Any]]:
    """The rows of a further latency answer that the answers before it did not hold:
    those of the reporters and source workloads not `asked` about before."""
    out = []
    for row in giving_way(rows, BATCH):
        labels = row["metric"]
        reporter = labels.get(d.reporter_label, "")
        if reporter == d.http_reporters[0] or asked is None:
            continue  # every call of that reporter was in the first answer
        before = asked.get(reporter, set())
        if before is None:
            continue
        name = _workload(d, labels.get(EDGE, ""))
        if (name is None and before) or (name is not None and name in before):
            continue  # in an answer before, or it cannot be told that it was not
        out.append(row)
    return out


@dataclass(slots=True)
class Latencies:
    """The quantiles of every call, and where they came from."""

    quantiles: dict[str, list[float]]  # per call (`meshtop_edge`): p50, p95, p99, or NaN
    chosen: dict[str, str]  # per call, the reporter whose buckets they came from
    unsure: dict[str, str]  # calls with a quantile in a bucket not all read: their reporter
    reached: float  # the highest bucket bound a quantile fell in (-inf: none)
    bounds: dict[str, float]  # the buckets' `le` labels seen, as read
    # per source workload (None: one that cannot be told), the highest bound a quantile
    # of its calls fell in, and how many calls it has
    reached_by: dict[str | None, float] = field(default_factory=dict)
    calls_by: dict[str | None, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cuts:
    """The buckets a refresh leaves out: `left_out` of every call's histograms but those
    of the `slow` source workloads, whose quantiles fell higher the last time, of which
    only `slow_left_out` (fewer; none `slow`: one set for every call)."""

    left_out: frozenset[str] = frozenset()
    slow: frozenset[str] = frozenset()
    slow_left_out: frozenset[str] = frozenset()

    def matchers(self, d: Dialect, op: str = "!~") -> list[str]:
        """Per group of calls, a matcher of its buckets not left out (`!~`), or of those
        left out (`=~`, none for a group with none): no series matched by two."""
        if not self.slow:
            return [bounds_matcher(op, self.left_out)] if self.left_out or op == "!~" else []
        named = _named(d.source.workload, self.slow)
        groups = [(named.replace("=~", "!~", 1), self.left_out), (named, self.slow_left_out)]
        return [
            ",".join(x for x in (who, bounds_matcher(op, les)) if x)
            for who, les in groups
            if les or op == "!~"
        ]

    def beyond(self, bounds: Mapping[str, float]) -> tuple[float, float]:
        """The lowest bound left out, of the calls not `slow` and of theirs (`bounds`:
        those seen, as read; any other read here)."""

        def lowest(les: Iterable[str]) -> float:
            found = (bounds[le] if le in bounds else upper_bound(le) for le in les)
            return min((b for b in found if b is not None), default=math.inf)

        return lowest(self.left_out), lowest(self.slow_left_out)


def first_cuts(les: Iterable[str]) -> tuple[Cuts, dict[str, float]]:
    """What the first refresh leaves out, from the bucket bounds (`le` values) the backend
    holds: those above `FIRST_MS` but +Inf, with their bounds as read; none where they
    would make too long a query."""
    above = {le: b for le in les if (b := upper_bound(le)) is not None and FIRST_MS < b < math.inf}
    if sum(len(le) + 1 for le in above) > MAX_NAMES_CHARS:
        return Cuts(), {}
    return Cuts(frozenset(above)), above


def edge_quantiles(
    d: Dialect,
    rows: Rows,
    beyond: float = math.inf,
    slow: Collection[str] = frozenset(),
    slow_beyond: float = math.inf,
    guessed: bool = False,
) -> Latencies:
    """Per call, p50, p95 and p99 from the buckets of the first reporter with any, as
    `histogram_quantile` gives them. The buckets from `beyond` up (but +Inf) were left
    out, from `slow_beyond` up for the calls of the `slow` source workloads: a quantile
    that falls in a bucket from there up is not sure (`unsure`). Where they were left out
    by a guess (`guessed`, the first refresh's `first_cuts`), a histogram with no bucket
    read but +Inf, which counts observations, is not sure either: its finite buckets may
    all be among those (custom buckets). Later cuts come from where its quantiles fell;
    one with no quantile in any bucket (+Inf alone) is not asked again every refresh."""
    # tens of thousands of rows per refresh: each label read once, bounds parsed once
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    bounds: dict[str, float | None] = {}
    reporter_label = d.reporter_label
    for row in giving_way(rows, BATCH):  # 135,180 at 2,000 services: a key's work first
        labels = row["metric"]
        le = labels.get("le", "")
        bound = bounds[le] if le in bounds else bounds.setdefault(le, upper_bound(le))
        if bound is None:
            continue  # as Prometheus skips a bucket without a readable bound
        group = (labels.get(EDGE, ""), labels.get(reporter_label, ""))
        found = buckets.get(group)
        if found is None:
            found = buckets[group] = []
        found.append((bound, float(row["value"][1])))
    rank = {r: i for i, r in enumerate(d.http_reporters)}
    chosen: dict[str, str] = {}  # per call, its first reporter with buckets
    for key, reporter in buckets:
        i = rank.get(reporter)
        if i is not None and (key not in chosen or i < rank[chosen[key]]):
            chosen[key] = reporter
    read = {le: b for le, b in bounds.items() if b is not None}
    out = Latencies({}, chosen, {}, -math.inf, read)
    reached_by, calls_by = out.reached_by, out.calls_by
    for key, reporter in giving_way(chosen.items()):
        found_at = quantiles_at(QUANTILES, buckets[key, reporter])
        out.quantiles[key] = [value for value, _ in found_at]
        name = _workload(d, key)
        # a caller that cannot be told was asked with the others: their limit
        limit = slow_beyond if name is not None and name in slow else beyond
        calls_by[name] = calls_by.get(name, 0) + 1
        highest = reached_by.get(name, -math.inf)
        for _, bound in found_at:
            if math.isnan(bound):  # none found
                if guessed and limit < math.inf and _observed(buckets[key, reporter]):
                    out.unsure[key] = reporter
                continue
            if limit < bound or limit == bound < math.inf:
                out.unsure[key] = reporter
            if bound > highest:
                highest = bound
        reached_by[name] = highest
        if highest > out.reached:
            out.reached = highest
    return out


def _observed(buckets: Iterable[tuple[float, float]]) -> bool:
    """Whether a histogram's +Inf bucket counts any observation."""
    return any(bound == math.inf and count > 0 for bound, count in buckets)


def used(d: Dialect, latencies: Latencies) -> Names:
    """Whom the quantiles came from, the reporters after the first: what the next refresh
    asks them about, with what the requests say they are first to report (`needed`)."""
    return _names(d, ((k, r) for k, r in latencies.chosen.items() if r != d.http_reporters[0]))


def unsure(d: Dialect, latencies: Latencies) -> Names:
    """Whom to ask about the calls whose quantiles are not sure, for the buckets left out."""
    return _names(d, latencies.unsure.items(), first=True)


def leave_out(bounds: Mapping[str, float], reached: float) -> frozenset[str]:
    """The buckets the next refresh need not ask for: those above the bucket after the
    highest one a quantile fell in (a bucket of margin), +Inf always asked. Every
    histogram's buckets below the lowest left out are then all read, and a quantile that
    falls among them is the quantile of the whole histogram (`edge_quantiles` says which
    do not), for any histogram whose +Inf bucket counts at least every bucket (every
    histogram a proxy writes, and every rate and sum of them); but for rounding: where
    the buckets just below +Inf differ from it by float noise (a relative 1e-12 or
    less), Prometheus counts the histogram's observations from them (`quantiles`), a
    difference of the same order in the quantiles."""
    if not math.isfinite(reached):
        return frozenset()
    above = sorted({b for b in bounds.values() if reached < b < math.inf})
    if len(above) < 2:
        return frozenset()
    return frozenset(le for le, b in bounds.items() if above[0] < b < math.inf)


def cuts_for(d: Dialect, bounds: Mapping[str, float], timed: Latencies) -> Cuts:
    """What the next refresh leaves out: the buckets above where any quantile fell
    (`leave_out`); and, where it reads fewer buckets, those above a lower bound for every
    caller but the few whose quantiles fell above it, named (within `SLOW_NAMES_CHARS`),
    of which only the first. The bound chosen is the one that reads the fewest buckets,
    counted as calls times buckets read."""
    every = leave_out(bounds, timed.reached)
    finite = len({b for b in bounds.values() if b < math.inf})
    calls = sum(timed.calls_by.values())
    best, cost = Cuts(every), calls * (finite - len(every))
    for lower in sorted({b for b in bounds.values() if b < timed.reached}):
        fewer = leave_out(bounds, lower)
        if len(fewer) <= len(every):
            continue
        slow = {w: n for w, n in timed.calls_by.items() if timed.reached_by[w] > lower}
        if None in slow or sum(len(w) + 1 for w in slow if w) > SLOW_NAMES_CHARS:
            continue  # a caller above it that cannot be named
        named = sum(slow.values())
        reads = named * (finite - len(every)) + (calls - named) * (finite - len(fewer))
        if reads < cost:
            names = frozenset(w for w in slow if w is not None)
            best, cost = Cuts(fewer, names, every), reads
    return best
