"""Settings turned into what meshtop reads and writes through: a mesh of clusters, each
with its metrics backend, control plane (its route store) and trace backend, or the
simulated mesh in their place; and one refresh of them. A single cluster is a mesh of
one. Headless (no typer, no Textual): the commands and the console both start here.
Heavy modules (the simulator, the backends' clients) load inside the functions that
need them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from meshtop.errors import BackendError, MeshtopError, UsageError
from meshtop.federation import one_control_plane, one_metrics, one_traces
from meshtop.sources.protocols import ClusterSources

T = TypeVar("T")

if TYPE_CHECKING:
    from meshtop.config import ClusterConfig, Settings
    from meshtop.model import MeshSnapshot
    from meshtop.posture import SecurityConfig
    from meshtop.sim.sources import Simulation
    from meshtop.sources.kubernetes import KubernetesControlPlane
    from meshtop.sources.protocols import ControlPlane, MetricsSource, TraceSource


@dataclass
class Sources:
    """The mesh, by cluster name, and the views over every cluster at once that a
    command or the console reads through (a federation where there are several)."""

    clusters: dict[str, ClusterSources]
    simulated: bool
    clock: Callable[[], float]
    metrics: MetricsSource = field(init=False)
    control_plane: ControlPlane | None = field(init=False)
    traces: TraceSource | None = field(init=False)

    def __post_init__(self) -> None:
        each = self.clusters.items()
        self.metrics = one_metrics({c: s.metrics for c, s in each})
        self.control_plane = one_control_plane({c: s.control_plane for c, s in each})
        self.traces = one_traces({c: s.traces for c, s in each})


def simulation(
    services: int | None, seed: int, at: float | None = None, clusters: int | None = None
) -> Simulation:
    """The simulated mesh, on one cluster or `clusters`; at a fixed moment `at`, as
    `--at` asks, else live."""
    from meshtop.sim.sources import Simulation
    from meshtop.sim.topology import DEMO_CLUSTERS, bookinfo, generated, spread

    mesh = generated(services, seed) if services else bookinfo()
    if clusters and clusters > 1:
        mesh = spread(mesh, DEMO_CLUSTERS[:clusters])
    return Simulation(mesh) if at is None else Simulation(mesh, clock=lambda: at)


def connect(
    settings: Settings,
    sim: Simulation | None = None,
    at: float | None = None,
    *,
    routes: bool = False,
    security: bool = False,
    latency_later: bool = False,
) -> Sources:
    """Every cluster's sources: the simulated mesh's, else each cluster's metrics and
    trace backends (one object where clusters share one) and, with `routes`, its control
    plane (where a context names one: the console's, an export's, a change's); with
    `security`, where its security configuration is read (the control plane, else the
    kubeconfig's current context: the posture's, a mode change's); with `latency_later`
    (the console's), the latency query goes on behind the refreshes, which wait for it
    0.3 s at most (`PrometheusMetrics`)."""
    if sim is not None:
        return Sources(sim.clusters, True, sim.clock)
    from meshtop.sources.prometheus import PrometheusMetrics
    from meshtop.sources.security import KubernetesPolicies

    clusters = settings.clusters
    own = [c for c in clusters if c.prometheus is not None]
    if not own:
        raise UsageError(
            "no metrics backend is configured: give --prometheus URL (or [prometheus] url "
            "in the config file), or --demo for the simulated mesh"
        )
    if len(own) != len(clusters):
        raise UsageError(
            f"cluster {next(c.name for c in clusters if c.prometheus is None)} has no "
            "prometheus of its own: give every cluster its own, or none (one aggregated "
            "backend, [prometheus] url)"
        )
    metrics: list[tuple[object, MetricsSource]] = []
    traces = _trace_backends(settings)
    namespaces = settings.namespaces
    each: dict[str, ClusterSources] = {}
    for c in clusters:
        p = c.prometheus
        assert p is not None
        plane = cluster_plane(settings, c, namespaces) if routes and c.reaches_kubernetes else None
        # the security configuration is read where asked, from the kubeconfig's current
        # context when none is named, as a change is
        config = plane or (cluster_plane(settings, c, namespaces) if security else None)
        each[c.name] = ClusterSources(
            metrics=_shared(
                metrics, p, partial(PrometheusMetrics, p, at=at, latency_later=latency_later)
            ),
            control_plane=plane,
            traces=traces[c.name],
            store=plane,
            security=None if config is None else KubernetesPolicies(config),
        )
    clock = time.time if at is None else (lambda: at)
    return Sources(each, False, clock)


def _shared(made: list[tuple[object, T]], config: object, make: Callable[[], T]) -> T:
    """One backend per distinct config: clusters that share a backend share one object."""
    found = next((b for c, b in made if c == config), None)
    if found is None:
        found = make()
        made.append((config, found))
    return found


def _trace_backends(settings: Settings) -> dict[str, TraceSource | None]:
    """Each cluster's trace backend, by cluster name (one object where they share one)."""
    from meshtop.sources.tracing import trace_source

    made: list[tuple[object, TraceSource]] = []
    return {
        c.name: None if t is None else _shared(made, t, partial(trace_source, t))
        for c in settings.clusters
        for t in [c.tracing]
    }


def traces(settings: Settings) -> TraceSource | None:
    """The trace backend, over every cluster's (a search asks each), with no metrics
    backend needed; None when none is configured."""
    return one_traces(_trace_backends(settings))


def cluster_plane(
    settings: Settings, cluster: ClusterConfig, namespaces: tuple[str, ...]
) -> KubernetesControlPlane:
    """The Kubernetes control plane of one cluster, with the settings' deadline and size
    cap; `namespaces` scope what it lists."""
    from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane

    config = KubeConfig(
        context=cluster.context,
        kubeconfig=cluster.kubeconfig,
        namespaces=namespaces,
        timeout_s=settings.timeout_s,
        max_response_mb=settings.kube_max_response_mb,
        root_namespace=settings.root_namespace,
    )
    if cluster.name:  # one of several: its workloads carry its name
        config = replace(config, cluster=cluster.name)
    return KubernetesControlPlane(config)


def stores(settings: Settings, namespaces: tuple[str, ...]) -> dict[str, KubernetesControlPlane]:
    """Where each cluster's routes are read and written, by cluster name; a cluster with
    no context named is the kubeconfig's current one."""
    return {c.name: cluster_plane(settings, c, namespaces) for c in settings.clusters}


def security(
    sources: Sources,
) -> tuple[dict[str, SecurityConfig], dict[str, MeshtopError]]:
    """Each cluster's security configuration, by cluster name, asked concurrently (each
    list within the settings' deadline), and the clusters that could not answer, with
    why. Raises `UsageError` where no cluster has a control plane to read it from, and
    the error itself where none answered."""
    import asyncio

    readers = {c: s.security for c, s in sources.clusters.items() if s.security is not None}
    if not readers:
        raise UsageError(
            "the security posture is read from the cluster's configuration: give --context "
            "(or --kubeconfig) for the cluster, or --demo for the simulated mesh"
        )

    async def ask() -> list[SecurityConfig | BaseException]:
        return await asyncio.gather(
            *(r.security() for r in readers.values()), return_exceptions=True
        )

    found: dict[str, SecurityConfig] = {}
    failed: dict[str, MeshtopError] = {}
    for cluster, answer in zip(readers, asyncio.run(ask()), strict=True):
        if isinstance(answer, MeshtopError):
            failed[cluster] = answer
        elif isinstance(answer, BaseException):
            raise answer
        else:
            found[cluster] = answer
    if not found:
        raise next(iter(failed.values()))
    return found, failed


def snapshot(settings: Settings, sources: Sources) -> MeshSnapshot:
    """One refresh; a metrics backend that cannot answer ends the command (exit 3)."""
    import asyncio

    from meshtop.mesh import refresh
    from meshtop.model import SourceKey, SourceState

    taken = asyncio.run(
        refresh(
            sources.clusters,
            window_s=settings.window_s,
            timeout_s=settings.timeout_s,
            clock=sources.clock,
        )
    )
    # no metrics is no report; a control plane out of reach is a warning (no routes from it)
    failed = [
        h for key, h in taken.sources.items()
        if h.state is SourceState.FAILED and SourceKey.of(key).role == "metrics"
    ]  # fmt: skip
    if failed:
        raise BackendError(failed[0].reason)
    return taken
