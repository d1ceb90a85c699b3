"""Several clusters as one mesh: a control plane per cluster, and either one aggregated
metrics backend (Thanos, Mimir: series carry `source_cluster`/`destination_cluster`)
or one per cluster. The members are asked concurrently by `mesh.refresh()`, each with
its own health, so that one cluster out of reach is marked stale and the rest stay live.

Istio's sidecars report a call from both ends, so a call from one cluster to another
is in both clusters' Prometheus: once as the client's proxy saw it, once as the
server's. Counted once, as one aggregated Prometheus would: the client's report, which
sees what never arrived too, with the server's word on mTLS, which only it knows."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar

from meshtop.errors import UsageError
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
from meshtop.sources.protocols import (
    ControlPlane,
    MetricsSource,
    Pair,
    TraceSource,
    Traffic,
    histories_of,
)


class _Named(Protocol):
    @property
    def name(self) -> str: ...


M = TypeVar("M", bound=_Named)
B = TypeVar("B")


def merge_traffic(parts: Mapping[str, Traffic]) -> Traffic:
    """What each cluster's metrics backend said (cluster name -> traffic), as one
    answer: an edge reported in several clusters is counted once, from its source's
    cluster, with the mTLS share from its destination's cluster."""
    nodes: dict[str, Workload] = {}
    for traffic in parts.values():
        for w in traffic.nodes:
            nodes.setdefault(w.id, w)
    reports: dict[tuple[str, str], dict[str, Edge]] = {}
    for cluster, traffic in parts.items():
        for e in traffic.edges:
            reports.setdefault(e.key, {})[cluster] = e
    edges: list[Edge] = []
    for (source, destination), by_cluster in reports.items():
        if len(by_cluster) == 1:
            edges.extend(by_cluster.values())
            continue
        first = next(iter(by_cluster.values()))
        src = nodes.get(source)
        dst = nodes.get(destination)
        edge = by_cluster.get(src.cluster, first) if src is not None else first
        server = by_cluster.get(dst.cluster) if dst is not None else None
        if server is not None and server is not edge:
            edge = replace(edge, stats=replace(edge.stats, mtls=server.stats.mtls))
        edges.append(edge)
    warnings = tuple(w for t in parts.values() for w in t.warnings)
    return Traffic(nodes=list(nodes.values()), edges=edges, warnings=warnings)


class _Federation(Generic[M]):
    """Members by cluster name: two or more sources of one kind."""

    def __init__(self, members: Mapping[str, M]) -> None:
        if len(members) < 2:
            raise ValueError("a federation needs two or more members")
        self.members: dict[str, M] = dict(members)

    @property
    def name(self) -> str:
        return ", ".join(f"{c}: {m.name}" for c, m in self.members.items())


class FederatedMetrics(_Federation[MetricsSource]):
    """One metrics backend per cluster, as one `MetricsSource`. `mesh.refresh()` asks
    the members itself, to give each its own health; `traffic()` here is for callers
    that want one answer or an error."""

    async def traffic(self, window_s: float) -> Traffic:
        answers = await asyncio.gather(*(m.traffic(window_s) for m in self.members.values()))
        return merge_traffic(dict(zip(self.members, answers, strict=True)))

    async def history(
        self, source: str | None, destination: str | None, window_s: float
    ) -> History:
        """From the backend of the source's cluster, whose proxies saw every call it
        made; for a source outside every cluster, from the destination's."""
        return await self._member(source, destination).history(source, destination, window_s)

    async def histories(self, pairs: Sequence[Pair], window_s: float) -> list[History]:
        """`history` of each pair, in their order: each backend asked for its own pairs
        (`histories_of`: together where it can, as Prometheus asks a namespace's
        members; each backend bounds its own)."""
        mine: dict[int, tuple[MetricsSource, list[int]]] = {}
        for i, (source, destination) in enumerate(pairs):
            member = self._member(source, destination)
            mine.setdefault(id(member), (member, []))[1].append(i)

        found: dict[int, History] = {}
        answers = await asyncio.gather(
            *(histories_of(m, [pairs[i] for i in places], window_s) for m, places in mine.values())
        )
        for (_, places), histories in zip(mine.values(), answers, strict=True):
            found.update(zip(places, histories, strict=True))
        return [found[i] for i in range(len(pairs))]

    def _member(self, source: str | None, destination: str | None) -> MetricsSource:
        for end in (source, destination):
            cluster = end.split("/", 1)[0] if end else ""
            if cluster in self.members:
                return self.members[cluster]
        return next(iter(self.members.values()))


class FederatedControlPlane(_Federation[ControlPlane]):
    """One control plane per cluster, as one `ControlPlane` for reading; writes go to
    one member at a time (`member(route.cluster)`), each with its own version check."""

    @property
    def name(self) -> str:
        return ", ".join(m.name for m in self.members.values())

    def member(self, cluster: str) -> Any:
        found = self.members.get(cluster)
        if found is None:
            raise UsageError(
                f"no cluster {cluster!r} here; the clusters are {', '.join(self.members)}"
            )
        return found

    async def workloads(self) -> Sequence[Workload]:
        answers = await asyncio.gather(*(m.workloads() for m in self.members.values()))
        return [w for answer in answers for w in answer]

    async def routes(self) -> Sequence[Route]:
        answers = await asyncio.gather(*(m.routes() for m in self.members.values()))
        return [r for answer in answers for r in answer]

    async def subsets(self) -> dict[tuple[str, str], set[str]]:
        """Every cluster's, together (the routes tab asks each member on its own)."""
        out: dict[tuple[str, str], set[str]] = {}
        for answer in await asyncio.gather(*(m.subsets() for m in self.members.values())):
            for key, names in answer.items():
                out.setdefault(key, set()).update(names)
        return out

    async def services(self) -> set[tuple[str, str]]:
        answers = await asyncio.gather(*(m.services() for m in self.members.values()))
        return {s for answer in answers for s in answer}

    async def breakers(self) -> Sequence[CircuitBreaker]:
        answers = await asyncio.gather(*(m.breakers() for m in self.members.values()))
        return [b for answer in answers for b in answer]


class FederatedTraces(_Federation[TraceSource]):
    """One trace backend per cluster, as one `TraceSource`: a search asks them all (a
    trace that crossed clusters is in each, once), a trace is fetched from whichever
    has it. A backend that fails is skipped while another answers."""

    async def find_traces(self, query: TraceQuery) -> Sequence[TraceSummary]:
        answers = await asyncio.gather(
            *(m.find_traces(query) for m in self.members.values()), return_exceptions=True
        )
        found = [a for a in answers if not isinstance(a, BaseException)]
        if not found:
            raise _first_error(answers)
        by_id: dict[str, TraceSummary] = {}
        for answer in found:
            for t in answer:
                known = by_id.get(t.trace_id)
                if known is None or (t.span_count or 0) > (known.span_count or 0):
                    by_id[t.trace_id] = t
        return sorted(by_id.values(), key=lambda t: -t.duration_us)[: query.limit]

    async def get_trace(self, trace_id: str) -> Trace:
        answers = await asyncio.gather(
            *(m.get_trace(trace_id) for m in self.members.values()), return_exceptions=True
        )
        found = [a for a in answers if isinstance(a, Trace)]
        if not found:
            raise _first_error(answers)
        return max(found, key=lambda t: len(t.spans))


def distinct(backends: Mapping[str, B | None]) -> dict[str, B]:
    """Each distinct backend (cluster name -> backend, the same object where clusters
    share one) once: by the cluster it serves, or by "" when it serves several (one
    aggregated backend) or the one cluster of a mesh of one. None is no backend."""
    served: dict[int, tuple[B, list[str]]] = {}
    for name, backend in backends.items():
        if backend is not None:
            served.setdefault(id(backend), (backend, []))[1].append(name)
    keyed = {(names[0] if len(names) == 1 else ""): b for b, names in served.values()}
    if len(keyed) != len(served):
        raise ValueError("several backends of one kind each serve several clusters")
    return keyed


def one_metrics(backends: Mapping[str, MetricsSource]) -> MetricsSource:
    """Every cluster's metrics (cluster name -> backend) as one source."""
    each = distinct(backends)
    return FederatedMetrics(each) if len(each) > 1 else next(iter(each.values()))


def one_control_plane(planes: Mapping[str, ControlPlane | None]) -> ControlPlane | None:
    """Every cluster's control plane as one, for reading; None when none is named."""
    each = distinct(planes)
    return FederatedControlPlane(each) if len(each) > 1 else next(iter(each.values()), None)


def one_traces(backends: Mapping[str, TraceSource | None]) -> TraceSource | None:
    """Every cluster's trace backend as one (a search asks each); None when none is."""
    each = distinct(backends)
    return FederatedTraces(each) if len(each) > 1 else next(iter(each.values()), None)


def _first_error(answers: Sequence[object]) -> BaseException:
    error = next(a for a in answers if isinstance(a, BaseException))
    if isinstance(error, Exception):
        return error
    raise error  # a cancellation or an interrupt goes on as it is


def where(store: Any) -> str:
    """What an audit line names as the place written to: the kubeconfig context, or
    the store's name (the simulated mesh)."""
    return str(getattr(store, "context", "") or store.name)
