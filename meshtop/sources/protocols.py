"""The small protocols every source implements, real or simulated. Views and
`mesh.refresh()` only ever talk to these."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from meshtop.canary import Plan
from meshtop.model import (
    CircuitBreaker,
    Edge,
    History,
    Route,
    Trace,
    TraceQuery,
    TraceSummary,
    Workload,
)
from meshtop.posture import MtlsPlan, PeerAuthentication, SecurityConfig
from meshtop.steering.plan import EditPlan


@dataclass(frozen=True, slots=True)
class Traffic:
    """What a metrics source answers for one window: the edges and the nodes they join."""

    nodes: Sequence[Workload]
    edges: Sequence[Edge]
    warnings: tuple[str, ...] = ()  # what the backend said was doubtful about its answer
    # how much older its latency figures are than its rates, where they are from an
    # earlier query than the rest (the console's, behind the refreshes, at scale)
    latency_age_s: float | None = None


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """When the control plane says a route or a Deployment last changed: its
    `metadata.generation` and the latest time of its managed fields (a status write left
    out: a rollout's progress or a route's status is no change of configuration). The
    names are outside text, for `sanitize` before a terminal."""

    time: float  # seconds since the epoch
    kind: str  # VirtualService, HTTPRoute, Deployment
    cluster: str
    namespace: str
    name: str
    generation: int  # 0: not said
    manager: str = ""  # who wrote it then (kubectl-edit, meshtop, flagger), when said

    @property
    def resource(self) -> str:
        """As the audit log names a route: `VirtualService bookinfo/reviews`."""
        return f"{self.kind} {self.namespace}/{self.name}"


@runtime_checkable
class ChangeSource(Protocol):
    """A control plane that says when its routes and Deployments changed (issue 19)."""

    async def changes(self) -> Sequence[ConfigChange]:
        """Every route's and Deployment's last change, as far as the control plane
        keeps it. Raises `BackendError` when it cannot answer."""
        ...


class MetricsSource(Protocol):
    """Per-edge traffic over a window, from a metrics backend."""

    @property
    def name(self) -> str: ...

    async def traffic(self, window_s: float) -> Traffic:
        """Every edge with traffic in the last `window_s` seconds, with its stats, and the
        nodes at their ends. Raises `BackendError` when the backend cannot answer."""
        ...

    async def history(
        self, source: str | None, destination: str | None, window_s: float
    ) -> History:
        """One edge (or, with `source` None, everything `destination` answers; with
        `destination` None, everything `source` calls) over the
        last `window_s`: points at `history.history_step(window_s)`, gaps where there was
        no traffic, and the window summed up. Raises `BackendError` as `traffic` does."""
        ...


# (source, destination); no source: all a node answers; no destination: all it calls
Pair = tuple[str | None, str | None]


@runtime_checkable
class ManyHistories(Protocol):
    """A metrics source that works out several histories together for less than one at
    a time (the simulated mesh walks itself once for them all, Prometheus asks a
    namespace's workloads in one set of queries); `histories_of` asks it so, and any
    other source one history at a time."""

    async def histories(self, pairs: Sequence[Pair], window_s: float) -> list[History]:
        """`MetricsSource.history` of each pair, in their order."""
        ...


# Histories asked at once of a source that asks one at a time (`histories_of`): a
# namespace's box at 2,000 services has 40-55 members, a line between two of them every
# pair of their members, each three queries on a thread against Prometheus; the rest
# wait their turn. At 8 (24 requests, more than the 10 connections requests keeps) the
# threads' turns at the interpreter's lock kept the screen's thread waiting 40-80 ms as
# the history came; at 4, under 40 ms, and 48 histories took as long (0.9-1.8 s against
# 1.7-2.0 s, a real Prometheus on loopback)
HISTORIES_AT_ONCE = 4


async def histories_of(
    metrics: MetricsSource, pairs: Sequence[Pair], window_s: float
) -> list[History]:
    """`metrics.history` of each pair, in their order: all together from a source that
    can (`ManyHistories`), else `HISTORIES_AT_ONCE` at a time."""
    if isinstance(metrics, ManyHistories):
        return await metrics.histories(pairs, window_s)
    asking = asyncio.Semaphore(HISTORIES_AT_ONCE)

    async def one(source: str | None, destination: str | None) -> History:
        async with asking:
            return await metrics.history(source, destination, window_s)

    return list(await asyncio.gather(*(one(s, d) for s, d in pairs)))


class ControlPlane(Protocol):
    """Workloads and routing rules, from the control plane."""

    @property
    def name(self) -> str: ...

    async def workloads(self) -> Sequence[Workload]: ...

    async def routes(self) -> Sequence[Route]: ...

    async def subsets(self) -> dict[tuple[str, str], set[str]]:
        """(namespace, host) -> the subsets its DestinationRules define."""
        ...

    async def services(self) -> set[tuple[str, str]]:
        """(namespace, name) of every Service."""
        ...

    async def breakers(self) -> Sequence[CircuitBreaker]:
        """Every DestinationRule's connection pool and outlier detection (issue 21)."""
        ...


class TraceSource(Protocol):
    """Individual requests, from a trace backend."""

    @property
    def name(self) -> str: ...

    async def find_traces(self, query: TraceQuery) -> Sequence[TraceSummary]:
        """The traces `query` asks for, slowest first."""
        ...

    async def get_trace(self, trace_id: str) -> Trace:
        """Raises `BackendError` when the trace is unknown or the backend cannot answer."""
        ...


class RouteStore(Protocol):
    """Where routes are read and written: a cluster's Kubernetes API, or the simulated
    mesh. Only `meshtop.change.workflow` calls `apply`."""

    async def read(self, kind: str, namespace: str, name: str) -> tuple[Route, dict[str, Any]]:
        """The route as it is now, and the object itself (for who else steers it)."""
        ...

    async def apply(self, plan: Plan, *, dry_run: bool = False) -> Route:
        """The plan's JSON patch (with `dry_run`, checked by the server, nothing
        written): a route changed since the plan's read is a `ConflictError`."""
        ...

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """The object itself as it is now (a VirtualService, an HTTPRoute or a
        DestinationRule, with `kind` and `metadata`), for an `EditPlan` to be made from.
        Raises `UsageError` when there is none."""
        ...

    async def edit(self, plan: EditPlan, *, dry_run: bool = False) -> dict[str, Any]:
        """The plan's JSON patch (`EditPlan.json_patch`), the object as written (with
        `dry_run`, as it would be): changed since the plan's read is a `ConflictError`."""
        ...


class SecuritySource(Protocol):
    """The security configuration (PeerAuthentication, AuthorizationPolicy,
    DestinationRule tls, ServiceEntry, WorkloadEntry), from a cluster's control plane.
    Read by the posture's views only, never by a refresh."""

    @property
    def name(self) -> str: ...

    async def security(self) -> SecurityConfig:
        """Raises `BackendError` when the control plane cannot answer."""
        ...


class PolicyStore(SecuritySource, Protocol):
    """Where a cluster's PeerAuthentications are read (with the rest of its security
    configuration) and written: its Kubernetes API, or the simulated mesh. Only
    `meshtop.change.workflow` calls `apply`."""

    async def apply(self, plan: MtlsPlan, *, dry_run: bool = False) -> PeerAuthentication | None:
        """The plan's creation, change or deletion (with `dry_run`, checked by the server,
        nothing written), only if the policy is still as it was read: else a
        `ConflictError`. The policy as written (None: deleted)."""
        ...


@dataclass(frozen=True, slots=True)
class ClusterSources:
    """What meshtop reads one cluster through: its metrics backend (its own, or the one
    every cluster shares: then the same object in each), its control plane (also the
    store its routes are written to, and where its security configuration is read), if
    one is named, and its trace backend, if any."""

    metrics: MetricsSource
    control_plane: ControlPlane | None = None
    traces: TraceSource | None = None
    store: RouteStore | None = None  # the control plane, as where its routes are written
    # the control plane, as where its security configuration is read and its
    # PeerAuthentications written
    security: PolicyStore | None = None

    @staticmethod
    def one(
        metrics: MetricsSource,
        control_plane: ControlPlane | None = None,
        traces: TraceSource | None = None,
        store: RouteStore | None = None,
    ) -> dict[str, ClusterSources]:
        """A mesh of one cluster (named "": its workloads carry no cluster)."""
        return {"": ClusterSources(metrics, control_plane, traces, store)}
