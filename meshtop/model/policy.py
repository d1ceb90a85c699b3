"""What a route and a DestinationRule say about resilience (issue 21): a rule's injected
fault, timeout and retries (VirtualService `http[]`, HTTPRoute `timeouts`), and a
destination's circuit breaker (DestinationRule `trafficPolicy.connectionPool` and
`outlierDetection`, whole host or per subset). Each says itself in words, as the edge
detail, the exports and the CLI show it, beside the Envoy flags it causes (`UT` a
timeout, `URX` retries exhausted, `UO` the circuit open, `UH` no healthy host left)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from meshtop.units import duration as seconds


@dataclass(frozen=True, slots=True)
class Fault:
    """An injected fault: requests aborted with `abort_status` (share `abort_percent`),
    delayed by `delay_s` (share `delay_percent`)."""

    abort_status: int | None = None
    abort_percent: float = 0.0
    delay_s: float | None = None
    delay_percent: float = 0.0

    def words(self) -> str:
        parts = []
        if self.abort_status is not None:
            parts.append(f"abort {self.abort_status} to {self.abort_percent:g}%")
        if self.delay_s is not None:
            parts.append(f"delay {seconds(self.delay_s)} to {self.delay_percent:g}%")
        return ", ".join(parts) or "none"


@dataclass(frozen=True, slots=True)
class Retries:
    attempts: int
    per_try_timeout_s: float | None = None
    retry_on: str = ""  # Envoy's retry conditions, comma-separated; "" is Istio's default

    def words(self) -> str:
        said = f"{self.attempts} attempts"
        if self.per_try_timeout_s is not None:
            said += f", {seconds(self.per_try_timeout_s)} each"
        if self.retry_on:
            said += f", on {self.retry_on}"
        return said


@dataclass(frozen=True, slots=True)
class RulePolicy:
    """What a route rule adds to its destinations' answers."""

    fault: Fault | None = None
    timeout_s: float | None = None  # None: no timeout set (Istio's default is none)
    retries: Retries | None = None  # None: Istio's default (2 attempts); attempts 0: off

    def words(self) -> tuple[str, ...]:
        said = []
        if self.fault is not None:
            said.append(f"fault: {self.fault.words()}")
        if self.timeout_s is not None:
            said.append(f"timeout {seconds(self.timeout_s)}")
        if self.retries is not None:
            said.append(
                "no retries" if self.retries.attempts == 0 else f"retries {self.retries.words()}"
            )
        return tuple(said)


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """A DestinationRule's connection pool and outlier detection for a host (`subset`
    "": the whole host; else that subset's own policy, which replaces the host's)."""

    cluster: str
    namespace: str
    name: str  # the DestinationRule's
    host: str
    subset: str = ""
    max_connections: int | None = None  # tcp.maxConnections
    max_pending: int | None = None  # http.http1MaxPendingRequests
    max_requests: int | None = None  # http.http2MaxRequests
    max_retries: int | None = None  # http.maxRetries
    consecutive_errors: int | None = None  # outlierDetection.consecutive5xxErrors
    interval_s: float | None = None  # outlierDetection.interval
    base_ejection_s: float | None = None  # outlierDetection.baseEjectionTime
    max_ejection_percent: int | None = None  # outlierDetection.maxEjectionPercent

    @property
    def target(self) -> str:
        return f"{self.host}/{self.subset}" if self.subset else self.host

    def words(self) -> tuple[str, ...]:
        pool = [
            f"{what} {value}"
            for what, value in (
                ("max connections", self.max_connections),
                ("max pending", self.max_pending),
                ("max requests", self.max_requests),
                ("max retries", self.max_retries),
            )
            if value is not None
        ]
        said = [f"pool: {', '.join(pool)}"] if pool else []
        if self.consecutive_errors is not None:
            eject = f"eject after {self.consecutive_errors} consecutive 5xx"
            if self.interval_s is not None:
                eject += f" per {seconds(self.interval_s)}"
            if self.base_ejection_s is not None:
                eject += f" for {seconds(self.base_ejection_s)}"
            if self.max_ejection_percent is not None:
                eject += f", at most {self.max_ejection_percent}%"
            said.append(eject)
        return tuple(said)


FAULT_EXPIRES = "meshtop.io/fault-expires"  # the annotation: when meshtop's fault ends


def expired(expires: datetime | None, now: datetime) -> bool:
    """A fault past the time it was injected for: flagged everywhere until removed."""
    return expires is not None and now >= expires
