"""One refresh: ask the sources concurrently, join their answers into a `MeshSnapshot`.
A source that fails or times out is marked with its reason; the rest stands, and what it
said last time is kept and marked stale rather than dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from meshtop.errors import BackendError, MeshtopError
from meshtop.model import (
    Edge,
    MeshSnapshot,
    NodeKind,
    Route,
    SourceHealth,
    SourceState,
    Workload,
)
from meshtop.sources.protocols import ControlPlane, MetricsSource, Traffic

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0


async def _ask(
    role: str,
    name: str,
    call: Callable[[], Awaitable[T]],
    timeout_s: float,
    clock: Callable[[], float],
    previous: SourceHealth | None,
) -> tuple[T | None, SourceHealth]:
    """Run one source's call; on failure say why, and say *stale* when an earlier
    answer is still on show."""
    started = time.perf_counter()
    result: T | None = None
    try:
        result = await asyncio.wait_for(call(), timeout_s)
    except TimeoutError:
        reason = f"{role} source {name} did not answer within {timeout_s:g}s"
    except MeshtopError as exc:
        reason = str(exc)
    except Exception as exc:  # a source's bug must not take the other sources down
        reason = f"{role} source {name} failed: {type(exc).__name__}: {exc}"
    else:
        reason = ""
    took = (time.perf_counter() - started) * 1000
    checked = datetime.fromtimestamp(clock(), UTC)
    if not reason:
        return result, SourceHealth(name, SourceState.FRESH, checked, "", took, checked)
    if previous is not None and previous.fresh_at is not None:
        return None, SourceHealth(name, SourceState.STALE, checked, reason, took, previous.fresh_at)
    return None, SourceHealth(name, SourceState.FAILED, checked, reason, took)


async def refresh(
    metrics: MetricsSource,
    control_plane: ControlPlane | None = None,
    *,
    window_s: float = 60.0,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    previous: MeshSnapshot | None = None,
    clock: Callable[[], float] = time.time,
) -> MeshSnapshot:
    """Ask every source at once and build the snapshot. Never raises for a source's
    failure: the snapshot's `sources` say what failed and why, and a failed source's
    last answer (from `previous`) is kept, marked stale."""
    before = previous.sources if previous is not None else {}

    async def nothing() -> None:
        return None

    async def workloads_and_routes() -> tuple[Sequence[Workload], Sequence[Route]]:
        assert control_plane is not None
        workloads, routes = await asyncio.gather(control_plane.workloads(), control_plane.routes())
        return workloads, routes

    (traffic, metrics_health), (cp_answer, cp_health) = await asyncio.gather(
        _ask(
            "metrics",
            metrics.name,
            lambda: metrics.traffic(window_s),
            timeout_s,
            clock,
            before.get("metrics"),
        ),
        _ask(
            "control plane",
            control_plane.name,
            workloads_and_routes,
            timeout_s,
            clock,
            before.get("control_plane"),
        )
        if control_plane is not None
        else _ask("control plane", "", nothing, timeout_s, clock, None),
    )
    if traffic is not None and traffic.warnings:
        warned = "; ".join(traffic.warnings)
        metrics_health = replace(metrics_health, reason=f"{metrics.name} warned: {warned}")
    sources = {"metrics": metrics_health}
    if traffic is None:
        traffic = Traffic(nodes=(), edges=())
        if previous is not None and metrics_health.state is SourceState.STALE:
            traffic = Traffic(nodes=list(previous.nodes.values()), edges=previous.edges)

    workloads: Sequence[Workload] = ()
    routes: Sequence[Route] = ()
    if control_plane is not None:
        sources["control_plane"] = cp_health
        if cp_answer is not None:
            workloads, routes = cp_answer
        elif previous is not None and cp_health.state is SourceState.STALE:
            routes = previous.routes
            workloads = list(previous.nodes.values())
    return build_snapshot(
        generated_at=datetime.fromtimestamp(clock(), UTC),
        window_s=window_s,
        workloads=(*workloads, *traffic.nodes),
        edges=traffic.edges,
        routes=routes,
        sources=sources,
    )


def build_snapshot(
    *,
    generated_at: datetime,
    window_s: float,
    workloads: Iterable[Workload],
    edges: Sequence[Edge],
    routes: Sequence[Route],
    sources: Mapping[str, SourceHealth],
) -> MeshSnapshot:
    """Join what the sources said. The first word on a workload wins (callers pass the
    control plane's first: it knows workloads without traffic); every edge end is a node."""
    nodes: dict[str, Workload] = {}
    for w in workloads:
        nodes.setdefault(w.id, w)
    for e in edges:
        for end in e.key:
            if end not in nodes:
                parts = end.split("/", 2)
                if len(parts) != 3:
                    raise BackendError(f"edge end {end!r} is not a cluster/namespace/workload id")
                cluster, namespace, name = parts
                nodes[end] = Workload(cluster, namespace, name, kind=NodeKind.WORKLOAD)
    return MeshSnapshot(
        generated_at=generated_at,
        window_s=window_s,
        nodes=nodes,
        edges=tuple(edges),
        routes=tuple(routes),
        sources=dict(sources),
    )
