from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from meshtop.errors import BackendError
from meshtop.mesh import refresh
from meshtop.model import Edge, EdgeStats, Route, SourceState, Workload
from meshtop.sim.sources import Simulation
from meshtop.sources.protocols import ClusterSources, Traffic

from .conftest import Clock


class BrokenMetrics:
    name = "prometheus http://127.0.0.1:1"

    async def traffic(self, window_s: float) -> Traffic:
        raise BackendError("cannot reach Prometheus at http://127.0.0.1:1: connection refused")


class HangingMetrics:
    name = "slow"

    async def traffic(self, window_s: float) -> Traffic:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")


def test_failed_metrics_leave_the_control_plane_intact(sim: Simulation) -> None:
    snapshot = asyncio.run(refresh(ClusterSources.one(BrokenMetrics(), sim.control_plane)))
    metrics = snapshot.sources["metrics"]
    assert metrics.state is SourceState.FAILED
    assert "connection refused" in metrics.reason
    assert snapshot.sources["control_plane"].state is SourceState.FRESH
    assert {r.name for r in snapshot.routes} == {"details", "productpage", "ratings", "reviews"}
    assert "Kubernetes/bookinfo/reviews-v3" in snapshot.nodes
    assert snapshot.edges == ()


def test_a_source_that_hangs_times_out_with_its_reason(sim: Simulation) -> None:
    snapshot = asyncio.run(
        refresh(ClusterSources.one(HangingMetrics(), sim.control_plane), timeout_s=0.05)
    )
    assert snapshot.sources["metrics"].state is SourceState.FAILED
    assert snapshot.sources["metrics"].reason == "metrics source slow did not answer within 0.05s"
    assert snapshot.sources["control_plane"].state is SourceState.FRESH


def test_last_good_edges_are_kept_and_marked_stale(sim: Simulation, clock: Clock) -> None:
    good = asyncio.run(refresh(sim.clusters, clock=clock))
    clock.advance(34)
    stale = asyncio.run(
        refresh(ClusterSources.one(BrokenMetrics(), sim.control_plane), previous=good, clock=clock)
    )
    health = stale.sources["metrics"]
    assert health.state is SourceState.STALE
    assert health.age_s(stale.generated_at) == 34
    assert stale.edges == good.edges
    # and a source that never answered is failed, not stale
    assert (
        asyncio.run(refresh(ClusterSources.one(BrokenMetrics()))).sources["metrics"].state
        is SourceState.FAILED
    )


def test_latency_older_than_the_rates_is_on_the_metrics_health(
    sim: Simulation, clock: Clock
) -> None:
    """A metrics answer whose latency is older than its rates (the console's, behind the
    refreshes) says by how much on its source's health, for the status line."""

    class Late:
        name = "prometheus http://127.0.0.1:9090"

        async def traffic(self, window_s: float) -> Traffic:
            return replace(await sim.metrics.traffic(window_s), latency_age_s=12.5)

    late = asyncio.run(refresh(ClusterSources.one(Late(), sim.control_plane), clock=clock))
    assert late.sources["metrics"].latency_age_s == 12.5
    assert late.sources["metrics"].state is SourceState.FRESH
    assert late.sources["control_plane"].latency_age_s is None
    assert asyncio.run(refresh(sim.clusters, clock=clock)).sources["metrics"].latency_age_s is None


def test_sources_are_asked_concurrently() -> None:
    """Each source waits until the other has been asked: a sequential refresh would hang."""
    metrics_asked, control_plane_asked = asyncio.Event(), asyncio.Event()

    class Metrics:
        name = "m"

        async def traffic(self, window_s: float) -> Traffic:
            metrics_asked.set()
            await control_plane_asked.wait()
            return Traffic(nodes=(), edges=[Edge("c/a/x", "c/a/y", EdgeStats(rps=1.0))])

    class ControlPlane:
        name = "k"

        async def workloads(self) -> Sequence[Workload]:
            control_plane_asked.set()
            await metrics_asked.wait()
            return [Workload("c", "a", "x", app="x")]

        async def routes(self) -> Sequence[Route]:
            return []

        async def breakers(self) -> list[object]:
            return []

    snapshot = asyncio.run(refresh(ClusterSources.one(Metrics(), ControlPlane()), timeout_s=2))
    assert snapshot.sources["metrics"].state is SourceState.FRESH
    assert snapshot.sources["control_plane"].state is SourceState.FRESH
    # the control plane's word on a workload wins; an edge end nobody described is a node too
    assert snapshot.nodes["c/a/x"].app == "x"
    assert snapshot.nodes["c/a/y"].name == "y"
