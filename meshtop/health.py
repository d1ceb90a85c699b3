"""Thresholds that turn an edge's or a node's traffic into healthy, degraded or failing.
The defaults are Kiali's, so the colours mean the same thing to a Kiali user."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from meshtop.model import EdgeStats, Health, MeshSnapshot, Protocol

_ORDER = {Health.IDLE: 0, Health.HEALTHY: 1, Health.DEGRADED: 2, Health.FAILING: 3}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Shares (0..1) of requests. A value *above* `degraded` degrades; a value *at or
    above* `failing` fails (Kiali: 5xx degraded above 0, failing from 10%)."""

    errors_degraded: float = 0.0
    errors_failing: float = 0.10
    client_errors_degraded: float = 0.10
    client_errors_failing: float = 0.20


DEFAULT_THRESHOLDS = Thresholds()


def _grade(share: float, degraded: float, failing: float, *, strict_degraded: bool) -> Health:
    if share >= failing:
        return Health.FAILING
    if share > degraded if strict_degraded else share >= degraded:
        return Health.DEGRADED
    return Health.HEALTHY


def client_error_rate(stats: EdgeStats) -> float:
    if not stats.rps:
        return 0.0
    return (
        sum(rps for code, rps in stats.response_codes.items() if code.startswith("4")) / stats.rps
    )


def edge_health(stats: EdgeStats, t: Thresholds = DEFAULT_THRESHOLDS) -> Health:
    if stats.protocol is Protocol.TCP:
        return (
            Health.HEALTHY if stats.tcp_connections_per_s or stats.tcp_request_bps else Health.IDLE
        )
    if not stats.rps > 0:  # no traffic, or no number at all (NaN)
        return Health.IDLE
    if not math.isfinite(stats.error_rate):
        return Health.FAILING  # traffic we cannot judge is not healthy
    return worst(
        (
            _grade(stats.error_rate, t.errors_degraded, t.errors_failing, strict_degraded=True),
            _grade(
                client_error_rate(stats),
                t.client_errors_degraded,
                t.client_errors_failing,
                strict_degraded=False,
            ),
        )
    )


def explain(stats: EdgeStats, t: Thresholds = DEFAULT_THRESHOLDS) -> str:
    """Why an edge has its health, in words: `failing: errors 12.00% ≥ 10%`."""
    health = edge_health(stats, t)
    if health is Health.IDLE:
        return "idle: no traffic in the window"
    if stats.protocol is Protocol.TCP:
        return "healthy: TCP traffic is not graded"
    if not math.isfinite(stats.error_rate):
        return "failing: the error rate is unknown"
    errors, client = stats.error_rate, client_error_rate(stats)
    why = []
    if errors >= t.errors_failing:
        why.append(f"errors {errors:.2%} ≥ {_share(t.errors_failing)}")
    elif errors > t.errors_degraded:
        why.append(f"errors {errors:.2%} > {_share(t.errors_degraded)}")
    if client >= t.client_errors_failing:
        why.append(f"4xx {client:.2%} ≥ {_share(t.client_errors_failing)}")
    elif client >= t.client_errors_degraded:
        why.append(f"4xx {client:.2%} ≥ {_share(t.client_errors_degraded)}")
    if not why:
        why.append(
            f"errors {errors:.2%} within {_share(t.errors_degraded)}, "
            f"4xx {client:.2%} under {_share(t.client_errors_degraded)}"
        )
    return f"{health.value}: " + "; ".join(why)


def _share(x: float) -> str:
    """A threshold as the user wrote it: `10%`, `0.5%`."""
    return f"{x * 100:g}%"


def worst(healths: Iterable[Health]) -> Health:
    return max(healths, key=_ORDER.__getitem__, default=Health.IDLE)


@dataclass(frozen=True, slots=True)
class Grades:
    """The health of every edge (by `(source, destination)`) and node of one snapshot."""

    edges: dict[tuple[str, str], Health]
    nodes: dict[str, Health]


def grade(snapshot: MeshSnapshot, t: Thresholds = DEFAULT_THRESHOLDS) -> Grades:
    """Grade each edge once; a node is as healthy as the requests it answers (the worst
    of its inbound edges), and one that only calls out (a gateway, a client) takes the
    worst of its outbound ones."""
    edges = {e.key: edge_health(e.stats, t) for e in snapshot.edges}
    inbound: dict[str, list[Health]] = {}
    outbound: dict[str, list[Health]] = {}
    for (source, destination), h in edges.items():
        inbound.setdefault(destination, []).append(h)
        outbound.setdefault(source, []).append(h)
    nodes = {
        node_id: worst(inbound.get(node_id) or outbound.get(node_id) or ())
        for node_id in snapshot.nodes
    }
    return Grades(edges, nodes)
