"""The traffic side of the posture: an edge's volume and its part in plain text, the
share a STRICT server refused, and a workload's plaintext callers, most traffic first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from meshtop import units
from meshtop.model import Edge, Protocol


def carries_traffic(e: Edge) -> bool:
    s = e.stats
    return bool(s.rps > 0 or s.tcp_connections_per_s > 0 or s.tcp_request_bps > 0)


def volume(e: Edge) -> float:
    """An edge's traffic: requests per second, or TCP connections per second."""
    return e.stats.rps or e.stats.tcp_connections_per_s


def in_plain_text(e: Edge) -> bool:
    """Whether some of an edge's traffic is not on mutual TLS."""
    return carries_traffic(e) and not e.stats.mtls >= 1.0


def plaintext_rate(e: Edge) -> float:
    """The part of an edge's traffic not on mutual TLS, per second."""
    return volume(e) * (1.0 - min(1.0, max(0.0, e.stats.mtls)))


def refused_share(e: Edge) -> float:
    """The share of an edge's requests answered 503 (as a STRICT server's refusal of
    plain text shows), 0..1."""
    if not e.stats.rps or e.stats.protocol is Protocol.TCP:
        return 0.0
    return e.stats.response_codes.get("503", 0.0) / e.stats.rps


@dataclass(frozen=True, slots=True)
class Caller:
    """One caller of a workload (or a namespace) in plain text, over the window."""

    node: str  # node id
    label: str
    rps: float  # plaintext requests (or TCP connections) per second
    refused: float = 0.0  # share of its requests answered 503


def plaintext_callers(edges: Iterable[Edge], label: Mapping[str, str]) -> tuple[Caller, ...]:
    """The plaintext callers of these edges, one per caller, most traffic first."""
    rates: dict[str, float] = {}
    refused: dict[str, float] = {}
    for e in edges:
        if in_plain_text(e):
            rates[e.source] = rates.get(e.source, 0.0) + plaintext_rate(e)
            refused[e.source] = refused.get(e.source, 0.0) + refused_share(e) * volume(e)
    total = {e.source: 0.0 for e in edges}
    for e in edges:
        total[e.source] += volume(e)
    return tuple(
        sorted(
            (
                Caller(s, label.get(s, s), r, refused[s] / total[s] if total[s] else 0.0)
                for s, r in rates.items()
            ),
            key=lambda c: (-c.rps, c.label),
        )
    )


def callers_text(callers: Sequence[Caller], shown: int = 3) -> str:
    """`3 plaintext callers (unknown, legacy-batch, …)`."""
    if not callers:
        return "no plaintext caller"
    names = ", ".join(c.label for c in callers[:shown]) + (", …" if len(callers) > shown else "")
    return f"{len(callers)} plaintext caller{'s' if len(callers) > 1 else ''} ({names})"


def traffic_text(mtls: float | None, callers: Sequence[Caller]) -> str:
    if mtls is None:
        return "no inbound traffic"
    if not callers:
        # all or nothing reads as a whole number: `100% mTLS`
        return f"{'100%' if mtls >= 1 else units.percent(mtls)} mTLS"
    return callers_text(callers)
