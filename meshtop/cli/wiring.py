"""Settings turned into what meshtop reads and writes through: the metrics backend, the
control plane of each cluster, the trace backend, or the simulated mesh in their place;
and one refresh of them. Headless (no typer, no Textual), to move below the console once
the layers have a place for it. Heavy modules (the simulator, the backends' clients) load
inside the functions that need them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from meshtop.errors import BackendError, UsageError

if TYPE_CHECKING:
    from meshtop.config import ClusterConfig, Settings
    from meshtop.model import MeshSnapshot
    from meshtop.sim.sources import Simulation
    from meshtop.sources.kubernetes import KubernetesControlPlane
    from meshtop.sources.protocols import ControlPlane, MetricsSource, TraceSource


@dataclass
class Sources:
    metrics: MetricsSource
    control_plane: ControlPlane | None
    simulated: bool
    clock: Callable[[], float]
    traces: TraceSource | None = None


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


def sources(
    settings: Settings, sim: Simulation | None, at: float | None = None, *, routes: bool = False
) -> Sources:
    """The metrics (and trace) backends; with `routes`, the control plane too, of each
    cluster named (none named, none): the console's, and an export's."""
    if sim is not None:
        return Sources(sim.metrics, sim.control_plane, True, sim.clock, sim.traces)
    from meshtop.sources.prometheus import PrometheusMetrics

    clock = time.time if at is None else (lambda: at)
    clusters = settings.clusters
    own = [c for c in clusters if c.prometheus is not None]
    if own and len(own) != len(clusters):
        raise UsageError(
            f"cluster {next(c.name for c in clusters if c.prometheus is None)} has no "
            "prometheus of its own: give every cluster its own, or none (one aggregated "
            "backend, [prometheus] url)"
        )
    metrics: MetricsSource
    if own:
        from meshtop.federation import FederatedMetrics

        each = {c.name: PrometheusMetrics(c.prometheus, at=at) for c in own if c.prometheus}
        metrics = FederatedMetrics(each) if len(each) > 1 else next(iter(each.values()))
    elif settings.prometheus is None:
        raise UsageError(
            "no metrics backend is configured: give --prometheus URL (or [prometheus] url "
            "in the config file), or --demo for the simulated mesh"
        )
    else:
        metrics = PrometheusMetrics(settings.prometheus, at=at)
    plane = control_plane(settings) if routes else None
    return Sources(metrics, plane, False, clock, traces(settings))


def control_plane(settings: Settings) -> ControlPlane | None:
    """The cluster of [kubernetes] context (or --context), or one control plane per
    cluster of several; None when no cluster is named."""
    namespaces = settings.prometheus.namespaces if settings.prometheus else ()
    if settings.clusters:
        from meshtop.federation import FederatedControlPlane

        planes = cluster_planes(settings, namespaces)
        one: ControlPlane = next(iter(planes.values()))
        return FederatedControlPlane(planes) if len(planes) > 1 else one
    if settings.kube_context or settings.kubeconfig:
        return plane(settings, namespaces)
    return None


def plane(
    settings: Settings,
    namespaces: tuple[str, ...],
    cluster: ClusterConfig | None = None,
) -> KubernetesControlPlane:
    """The Kubernetes control plane of [kubernetes] (or of one of several clusters), with
    the settings' deadline and size cap."""
    from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane

    config = KubeConfig(
        context=settings.kube_context,
        kubeconfig=settings.kubeconfig,
        namespaces=namespaces,
        timeout_s=settings.timeout_s,
        max_response_mb=settings.kube_max_response_mb,
    )
    if cluster is not None:
        config = replace(
            config, context=cluster.context, kubeconfig=cluster.kubeconfig, cluster=cluster.name
        )
    return KubernetesControlPlane(config)


def cluster_planes(
    settings: Settings, namespaces: tuple[str, ...]
) -> dict[str, KubernetesControlPlane]:
    """A Kubernetes control plane per configured cluster, by cluster name."""
    return {c.name: plane(settings, namespaces, c) for c in settings.clusters}


def traces(settings: Settings) -> TraceSource | None:
    """The trace backend: each cluster's own (one view over several), else [tracing]'s."""
    from meshtop.sources.tracing import trace_source

    own = {c.name: trace_source(c.tracing) for c in settings.clusters if c.tracing is not None}
    if len(own) > 1:
        from meshtop.federation import FederatedTraces

        return FederatedTraces(own)
    if own:
        return next(iter(own.values()))
    return trace_source(settings.tracing) if settings.tracing is not None else None


def snapshot(settings: Settings, sources: Sources) -> MeshSnapshot:
    """One refresh; a metrics backend that cannot answer ends the command (exit 3)."""
    import asyncio

    from meshtop.mesh import refresh
    from meshtop.model import SourceKey, SourceState

    taken = asyncio.run(
        refresh(
            sources.metrics,
            sources.control_plane,
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
