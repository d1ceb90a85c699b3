"""A node's figures in both directions, added up from the edges of one snapshot (what
it answers, what it calls), and each node's request rate over the last window, kept
from the snapshots seen: what the console's stat tab lists, one row per node or group
of nodes, as `linkerd viz stat` does. Pure: the same snapshot the graph draws, no
backend asked."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from meshtop.model import Edge, Health, MeshSnapshot, Protocol
from meshtop.model.stats import Series
from meshtop.turns import BATCH, giving_way


@dataclass(frozen=True, slots=True)
class Side:
    """Everything a node answers (inbound) or calls (outbound) in one snapshot.

    Rates add up. The error and 4xx shares are of all the requests (weighted by
    traffic), unlike a line of the graph, whose error rate is its worst call's. Latency
    quantiles of several calls cannot be added up and the snapshot has none of a node's
    own: each is the slowest call's (an upper bound, as a line of the graph shows)."""

    calls: int = 0  # edges
    rps: float = 0.0  # HTTP and gRPC requests per second
    errors_per_s: float = 0.0  # counted as errors (5xx, gRPC, no response); NaN: unknown
    client_errors: float | None = None  # 4xx share of the requests whose codes are known
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    mtls: float | None = None  # share of the traffic on mutual TLS; None: no traffic
    tcp_connections_per_s: float | None = None  # None: no TCP edge

    @property
    def success_rate(self) -> float | None:
        """Share 0..1 of the requests that did not fail; None without requests, NaN
        when an edge's error rate is unknown."""
        return 1.0 - self.errors_per_s / self.rps if self.rps else None


def side(edges: Sequence[Edge]) -> Side:
    """The edges of one direction of a node, added up (see `Side`)."""
    if not edges:
        return Side()
    stats = [e.stats for e in edges]
    requests = [s for s in stats if s.rps > 0]
    rps = sum(s.rps for s in requests)
    # an unknown error rate on any call makes the sum unknown: never read as no errors
    errors = sum(s.error_rate * s.rps for s in requests)
    coded = [s for s in requests if s.response_codes]
    coded_rps = sum(s.rps for s in coded)
    client = sum(s.client_error_rate * s.rps for s in coded) / coded_rps if coded_rps else None
    traffic = [(s.mtls, s.rps or s.tcp_connections_per_s) for s in stats]
    weight = sum(w for _, w in traffic)
    tcp = [s.tcp_connections_per_s for s in stats if Protocol.TCP in s.carried]

    def slowest(values: Iterable[float | None]) -> float | None:
        known = [v for v in values if v is not None and math.isfinite(v)]
        return max(known) if known else None

    return Side(
        calls=len(edges),
        rps=rps,
        errors_per_s=errors,
        client_errors=client,
        p50_ms=slowest(s.p50_ms for s in requests),
        p95_ms=slowest(s.p95_ms for s in requests),
        p99_ms=slowest(s.p99_ms for s in requests),
        mtls=sum(m * w for m, w in traffic) / weight if weight else None,
        tcp_connections_per_s=sum(tcp) if tcp else None,
    )


def sides(edges: Iterable[Edge], node_of: Mapping[str, str]) -> dict[str, tuple[Side, Side]]:
    """Each node of `node_of`'s values (a group of snapshot nodes, or one): what it
    answers and what it calls, from the snapshot's `edges` (`node_of`: snapshot node id
    -> its group). A call from one member of a group to another is both. A node with no
    calls has two empty sides."""
    inbound: dict[str, list[Edge]] = {}
    outbound: dict[str, list[Edge]] = {}
    for e in edges:
        a, b = node_of.get(e.source), node_of.get(e.destination)
        if b is not None:
            inbound.setdefault(b, []).append(e)
        if a is not None:
            outbound.setdefault(a, []).append(e)
    return {n: (side(inbound.get(n, ())), side(outbound.get(n, ()))) for n in set(node_of.values())}


_RANK = {Health.FAILING: 0, Health.DEGRADED: 1, Health.HEALTHY: 2, Health.IDLE: 3}


def judged(inbound: Side, outbound: Side) -> Side:
    """The side a node's health is judged by: what it answers, or what it calls if it
    answers nothing (a gateway, a client), as `health.node_health` judges it."""
    return inbound if inbound.calls else outbound


def impact(health: Health, inbound: Side, outbound: Side) -> tuple[int, float, float]:
    """A sort key, worst first: failing, then degraded, then healthy, then idle; within
    each, the most errors per second (unknown first), then the most requests."""
    s = judged(inbound, outbound)
    errors = math.inf if math.isnan(s.errors_per_s) else s.errors_per_s
    return (_RANK[health], -errors, -s.rps)


class Rates:
    """Each snapshot node's request rate in and out at the snapshots seen, over the last
    window, a point per slot of `window / slots` seconds (the last snapshot in a slot
    stands for it): a node's rate over the window, for a sparkline, without asking the
    backend for a history per row. Compact: a point is two arrays of floats indexed by
    node, a few megabytes at 20,000 services."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._index: dict[str, int] = {}
        self._window_s = 0.0
        # slot number -> (inbound, outbound) rps by node index
        self._points: dict[int, tuple[array[float], array[float]]] = {}
        # the last snapshot's edges' ends, and where each is in the index: a refresh of
        # the same calls (51,239 at 20,000 services) looks none of them up (issue 17)
        self._ends: tuple[list[str], list[str]] = ([], [])
        self._at: tuple[list[int | None], list[int | None]] = ([], [])
        self._indexed = 0  # the nodes indexed then (an index only grows)
        self._pending: MeshSnapshot | None = None  # the last seen, not recorded yet

    def _slot(self, t: float, window_s: float | None = None) -> int:
        """The slot of time `t` in a window of `window_s` (the one recorded, by default)."""
        return math.floor(t / ((window_s or self._window_s) / self.slots))

    def _slot_of(self, snapshot: MeshSnapshot) -> tuple[float, int]:
        window = snapshot.window_s
        return window, self._slot(snapshot.generated_at.timestamp(), window)

    def record(self, snapshot: MeshSnapshot) -> None:
        """The snapshot seen: its rates recorded once a snapshot of another slot (or
        window) comes, or when `flush`ed. The last snapshot of a slot stands for it, so
        the ones before it in the slot are never added up: at 20,000 services, two
        refreshes in three recorded nothing (a tenth of a minute's window is 6 s)."""
        pending, self._pending = self._pending, snapshot
        if pending is not None and self._slot_of(pending) != self._slot_of(snapshot):
            self._record(pending)

    def flush(self) -> None:
        """The last snapshot seen recorded, if not yet: before its series are read."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self._record(pending)

    def _record(self, snapshot: MeshSnapshot) -> None:
        """The snapshot's rates, at its time; a snapshot of another window starts afresh."""
        if snapshot.window_s != self._window_s:
            self._window_s, self._points = snapshot.window_s, {}
        index = self._index
        for node in snapshot.nodes:
            index.setdefault(node, len(index))
        inbound = array("d", bytes(8 * len(index)))
        outbound = array("d", bytes(8 * len(index)))
        edges = snapshot.edges
        ends = snapshot.ends
        if ends != self._ends or len(index) != self._indexed:  # where each end is, again
            get = index.get
            self._ends, self._indexed = ends, len(index)
            self._at = (list(map(get, ends[0])), list(map(get, ends[1])))
        # requests: a TCP edge's connections are another unit; the stat table's worker
        # gives way to a key as it adds them up (the whole record of 51,239 edges at
        # 20,000 services: 34-53 ms on a slow core)
        for a, b, e in giving_way(zip(*self._at, edges, strict=True), BATCH):
            if a is not None:
                outbound[a] += e.stats.rps
            if b is not None:
                inbound[b] += e.stats.rps
        slot = self._slot(snapshot.generated_at.timestamp())
        self._points[slot] = (inbound, outbound)
        # kept: this window and the one before, for a snapshot shown from a little back
        for old in [s for s in self._points if s <= max(self._points) - 2 * self.slots]:
            del self._points[old]

    def series(self, members: Iterable[str], outbound: bool, at: MeshSnapshot) -> Series:
        """The members' rate added up (in, or out if `outbound`) at each slot of the
        window that ends at `at`'s time, oldest first; None for a slot without a
        snapshot seen (before the console started, or a slot a refresh missed). What was
        seen since the last `flush` is not in them."""
        if not self._window_s or at.window_s != self._window_s:
            return (None,) * self.slots
        where = [self._index[m] for m in members if m in self._index]
        last = self._slot(at.generated_at.timestamp())
        out: list[float | None] = []
        for slot in range(last - self.slots + 1, last + 1):
            point = self._points.get(slot)
            if point is None:
                out.append(None)
                continue
            values = point[1 if outbound else 0]
            out.append(sum(values[i] for i in where if i < len(values)))
        return tuple(out)
