"""What the simulated proxies do with a route's and a DestinationRule's policies (issue 21),
as Envoy does in the caller's proxy: which rule takes a caller's requests (its match
conditions; the simulated requests are `GET /` with no headers, so only a rule matching
every request or the caller's labels takes any), an injected fault (abort `FI`, delay
`DI`), retries, a connection pool that overflows (`UO`), outlier detection ejecting a
failing endpoint (all ejected: `UH`), a timeout (`UT`).

The workloads' error rates are what a caller sees under Istio's default retry policy
(2 retries on connect failures and 503s), as a real mesh shows them; another policy
moves them from there: a retriable failure's chance per attempt is worked back from its
share under the default, so retrying less shows more of them and retrying more hides
them, while the callee serves more attempts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshtop.model import CircuitBreaker, Protocol, Route, RouteRule, RulePolicy
from meshtop.steering.match import Request, route_test_gateway, route_test_istio

# the classes of failure an answer falls in: an HTTP code, a connect failure (`UF`),
# a gRPC status
CONNECT = "UF"
# Istio's default: connect-failure, refused-stream, unavailable, cancelled and
# retriable-status-codes (503), 2 retries
DEFAULT_ON = frozenset({"503", CONNECT, "14"})
_RETRY_ON = {
    "5xx": {"500", "503", CONNECT},
    "gateway-error": {"503"},
    "connect-failure": {CONNECT},
    "reset": {CONNECT},
    "retriable-status-codes": {"503"},
    "unavailable": {"14"},
}
SIMULATED_REQUEST = Request()  # GET / with no headers, query or authority


@dataclass(frozen=True, slots=True)
class Retry:
    """How many times a request is tried again, and on which failures."""

    retries: int = 2
    on: frozenset[str] = DEFAULT_ON


DEFAULT_RETRY = Retry()


def retry_of(policy: RulePolicy | None) -> Retry:
    """The rule's retry policy as Envoy applies it (none set: Istio's default)."""
    said = policy.retries if policy is not None else None
    if said is None:
        return DEFAULT_RETRY
    if not said.retry_on:
        return Retry(said.attempts)
    on: set[str] = set()
    for word in said.retry_on.split(","):
        word = word.strip()
        on |= _RETRY_ON.get(word, {word} if word.isdigit() else set())
    return Retry(said.attempts, frozenset(on))


def chosen_rule(
    route: Route, spec: Sequence[Mapping[str, Any]] | None, labels: Mapping[str, str]
) -> RouteRule | None:
    """The rule that takes a caller's requests (None: no rule, Envoy answers 404 `NR`),
    by the route's own rules (`spec`, the object's `http` or `rules`, as `:route-test`
    tests a request against them) for a request from a workload with `labels`."""
    if spec is None or len(spec) != len(route.rules):
        return next((r for r in route.rules if not r.matches), None)
    request = Request(source=dict(labels))
    if route.kind == "VirtualService":
        verdict = route_test_istio(spec, request)
    else:
        verdict = route_test_gateway(spec, SIMULATED_REQUEST)
    return None if verdict.rule is None else route.rules[verdict.rule]


def merged(breakers: Sequence[CircuitBreaker], subset: str) -> CircuitBreaker | None:
    """The circuit breaker in force for a subset: its own connection pool and outlier
    detection where it sets them, else the host's (Istio merges a subset's traffic
    policy over the host's, field group by field group)."""
    host = next((b for b in breakers if not b.subset), None)
    own = next((b for b in breakers if subset and b.subset == subset), None)
    if own is None:
        return host
    if host is None:
        return own
    pool = own if own.max_connections or own.max_pending or own.max_requests else host
    outlier = own if own.consecutive_errors is not None else host
    return CircuitBreaker(
        own.cluster, own.namespace, own.name, own.host, own.subset,
        pool.max_connections, pool.max_pending, pool.max_requests, pool.max_retries,
        outlier.consecutive_errors, outlier.interval_s, outlier.base_ejection_s,
        outlier.max_ejection_percent,
    )  # fmt: skip


def capacity(b: CircuitBreaker | None) -> float:
    """Requests a proxy's pool to the destination holds at once (connections and the
    requests waiting for one; a limit not set is Istio's default, 2^32-1: none)."""
    if b is None:
        return math.inf
    held = math.inf
    if b.max_connections is not None and b.max_pending is not None:
        held = b.max_connections + b.max_pending
    if b.max_requests is not None:
        held = min(held, b.max_requests)
    return held


def overflow(held: float, load: float) -> float:
    """Share of requests refused (`UO`) by a pool holding `held` requests at once under
    `load` requests in flight on average (rps x latency): Erlang's loss formula."""
    if load <= 0 or math.isinf(held):
        return 0.0
    if held > 5000:  # far beyond what flows: a fluid pool
        return max(0.0, 1.0 - held / load)
    loss = 1.0
    for k in range(1, int(held) + 1):
        loss = load * loss / (k + load * loss)
    return loss


def ejected(b: CircuitBreaker | None, failing: float, rate: float) -> float:
    """Share of time outlier detection keeps an endpoint out: it is ejected for
    `baseEjectionTime` (30 s by default) after `consecutive5xxErrors` 5xx in a row, which
    an endpoint failing `failing` of `rate` attempts per second meets now and then."""
    if b is None or b.consecutive_errors is None or failing <= 0 or rate <= 0:
        return 0.0
    n = max(1, b.consecutive_errors)
    runs = rate * (1.0 - failing) * failing**n if failing < 1 else rate
    out = (b.base_ejection_s if b.base_ejection_s is not None else 30.0) * runs
    return out / (1.0 + out)


def most_ejected(b: CircuitBreaker | None, hosts: int) -> int:
    """How many of `hosts` endpoints may be out at once (`maxEjectionPercent`, 10% by
    default; Envoy ejects one whatever it says)."""
    percent = b.max_ejection_percent if b is not None and b.max_ejection_percent else 10
    return max(1, math.floor(hosts * percent / 100))


@dataclass(frozen=True, slots=True)
class Attempts:
    """A callee's failures per attempt, worked back from its answers as a caller sees
    them under the default retry policy: by class (`500`, `503`, `UF`, `404`; gRPC `14`,
    `2`), the chance one attempt ends so."""

    per_attempt: Mapping[str, float]

    @staticmethod
    def of(protocol: Protocol, err: float, rejected: float) -> Attempts:
        seen = (
            {"14": err * 0.7, "2": err * 0.3}
            if protocol is Protocol.GRPC
            else {"500": err * 0.6, "503": err * 0.25, CONNECT: err * 0.15, "404": rejected}
        )
        retried = sum(v for c, v in seen.items() if c in DEFAULT_ON)
        each = retried ** (1 / (DEFAULT_RETRY.retries + 1)) if retried > 0 else 0.0
        tries = sum(each**k for k in range(DEFAULT_RETRY.retries + 1))
        return Attempts(
            {
                c: (each * v / retried if c in DEFAULT_ON else v / tries)
                for c, v in seen.items()
                if v > 0
            }
        )

    def retriable(self, retry: Retry) -> float:
        return min(1.0, sum(v for c, v in self.per_attempt.items() if c in retry.on))

    def tries(self, retry: Retry) -> float:
        """Attempts per request, on average."""
        f = self.retriable(retry)
        return sum(f**k for k in range(retry.retries + 1))

    def failing(self) -> float:
        """Share of attempts answered 5xx (or not at all): what outlier detection counts."""
        return sum(v for c, v in self.per_attempt.items() if c in ("500", "503", CONNECT, "14"))

    def answers(self, retry: Retry) -> dict[str, float]:
        """Share of requests a caller sees end in each class (the rest succeed)."""
        f = self.retriable(retry)
        tries = self.tries(retry)
        return {
            c: v * f**retry.retries if c in retry.on else v * tries
            for c, v in self.per_attempt.items()
        }


def grpc_status(http_status: int) -> str:
    """The gRPC status Envoy answers for an HTTP status it injects (gRPC's mapping)."""
    return {400: "13", 401: "16", 403: "7", 404: "12", 429: "14", 502: "14", 503: "14",
            504: "14"}.get(http_status, "2")  # fmt: skip


def is_shaping(policy: RulePolicy) -> bool:
    return policy.fault is not None or policy.timeout_s is not None or policy.retries is not None
