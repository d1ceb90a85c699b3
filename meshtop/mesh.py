"""One refresh: ask the sources concurrently, join their answers into a `MeshSnapshot`.
A source that fails or times out is marked with its reason; the rest stands, and what it
said last time is kept and marked stale rather than dropped."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from operator import attrgetter, is_
from typing import Any, TypeVar

from meshtop import turns
from meshtop.errors import BackendError, MeshtopError
from meshtop.federation import distinct, merge_traffic
from meshtop.model import (
    CircuitBreaker,
    Edge,
    MeshSnapshot,
    NodeKind,
    Route,
    SourceHealth,
    SourceKey,
    SourceState,
    Workload,
    clusters,
)
from meshtop.sources import bounded
from meshtop.sources.protocols import ClusterSources, ControlPlane, Traffic

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0
# A source's own deadline (the same `timeout_s`, on each of its requests) ends a hung
# call first and says more (which request, whether its answer had begun); this one,
# a little later, is the backstop for a source without one.
BACKSTOP_S = 0.25


# Threads to start, by `_starting`: `Thread.start` waits until the new thread runs, which
# it does only when the interpreter's lock comes round to it
_starts: queue.SimpleQueue[threading.Thread] = queue.SimpleQueue()
_starter: list[threading.Thread] = []  # the one thread that starts them, once started
_starter_lock = threading.Lock()


def _starting() -> None:
    while True:
        thread = _starts.get()
        while True:
            try:
                thread.start()
                break
            except RuntimeError:  # no thread to be had (a limit reached): again shortly
                time.sleep(0.1)


class DaemonThreads(ThreadPoolExecutor):
    """An executor whose calls run on daemon threads, and whose shutdown waits for none of
    them: a call blocked on a backend that hangs holds up neither the event loop's end nor
    the interpreter's exit. Each call ends by itself at its source's deadline. A thread
    that is free takes the next call; a new one is started only when none is, so the
    threads are as many as the calls in flight at most, and a call waits for no other.
    A refresh only puts its calls on a queue: starting a thread waits for it to run, which
    held the screen's thread up to 345 ms while other threads held the GIL (issue 17), and
    some 20 ms as a namespace's detail asked its histories against Prometheus; so a thread
    of its own starts them (`_starting`), made with the executor, before there is any
    call. A thread left idle for `idle_s` ends. The console makes it its loop's default
    executor, which `asyncio.to_thread` and Textual's thread workers use."""

    def __init__(self, idle_s: float = 60.0) -> None:
        # ThreadPoolExecutor's own set-up is not run: none of its machinery is used
        with _starter_lock:
            if not _starter:
                _starter.append(
                    threading.Thread(target=_starting, name="meshtop-start", daemon=True)
                )
                _starter[0].start()
        self._idle_s = idle_s
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a call, less the calls queued for them

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        given = [future]  # taken by the call: its frame then holds no reference to it

        def run() -> None:
            done = given.pop()
            if not done.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                done.set_exception(exc)
                # the exception's traceback holds this frame: without this, the future,
                # the exception and every frame and local of its traceback would be a
                # cycle for the garbage collector to find (as concurrent.futures does)
                done = None  # type: ignore[assignment]
            else:
                done.set_result(result)

        with self._lock:  # a thread ending for idleness looks at the queue under it too
            start = self._idle == 0  # a new thread, waiting from now on, takes it
            if not start:
                self._idle -= 1
            self._calls.put(run)
        if start:  # by `_starting`: this thread does not wait for it to run
            _starts.put(threading.Thread(target=self._serve, name="meshtop-call", daemon=True))
        return future

    def _serve(self) -> None:
        call = self._next()
        while call is not None:
            turns.give_way()  # a key's work on the screen's thread goes first
            call()
            # dropped before waiting: a call's arguments (a snapshot of every edge, for a
            # worker) are not kept alive by an idle thread
            call = None
            with self._lock:
                self._idle += 1
            call = self._next()

    def _next(self) -> Callable[[], None] | None:
        """The next call, or None once none has come for `idle_s` (the thread ends)."""
        try:
            return self._calls.get(timeout=self._idle_s)
        except queue.Empty:
            with self._lock:
                try:  # queued for this thread as the wait ended
                    return self._calls.get_nowait()
                except queue.Empty:
                    self._idle -= 1
                    return None

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass  # nothing to wait for: the threads are daemons, each call ends by itself


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
        # cancelled (a newer refresh: `r`, a change applied) or failed, the call's
        # requests still under way are cut off: nobody reads their answers, and a
        # Prometheus stops evaluating a query whose client has gone
        with bounded.called_off_on_error():
            result = await asyncio.wait_for(call(), timeout_s + BACKSTOP_S)
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


def source_key(role: str, cluster: str) -> SourceKey:
    """The key of a source's health in a snapshot: `metrics`, or `metrics:east` for
    one member of a federation."""
    return SourceKey(role, cluster)


async def refresh(
    clusters: Mapping[str, ClusterSources],
    *,
    window_s: float = 60.0,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    previous: MeshSnapshot | None = None,
    clock: Callable[[], float] = time.time,
) -> MeshSnapshot:
    """Ask every source at once and build the snapshot. Never raises for a source's
    failure: the snapshot's `sources` say what failed and why, and a failed source's
    last answer (from `previous`) is kept, marked stale. Each cluster's control plane,
    and each metrics backend (once, whichever clusters share it), is asked in the same
    way: a cluster out of reach keeps what it said last, marked stale, and the others
    stay live."""
    before = previous.sources if previous is not None else {}

    async def workloads_and_routes(
        plane: ControlPlane,
    ) -> tuple[Sequence[Workload], Sequence[Route], Sequence[CircuitBreaker]]:
        return await asyncio.gather(plane.workloads(), plane.routes(), plane.breakers())

    metric_members = distinct({c: s.metrics for c, s in clusters.items()})
    plane_members = distinct({c: s.control_plane for c, s in clusters.items()})
    # Every name read before any call is made: an adapter whose name raises (a bug) then
    # leaves no call behind, unawaited.
    asks: list[tuple[str, str, Callable[[], Awaitable[Any]], SourceKey]] = [
        ("metrics", m.name, partial(m.traffic, window_s), source_key("metrics", c))
        for c, m in metric_members.items()
    ] + [
        ("control plane", p.name, partial(workloads_and_routes, p), source_key("control_plane", c))
        for c, p in plane_members.items()
    ]
    answers = await asyncio.gather(
        *(
            _ask(role, name, call, timeout_s, clock, before.get(key))
            for role, name, call, key in asks
        )
    )
    metric_answers: dict[str, tuple[Traffic | None, SourceHealth]] = dict(
        zip(metric_members, answers[: len(metric_members)], strict=True)
    )
    plane_answers: dict[
        str,
        tuple[
            tuple[Sequence[Workload], Sequence[Route], Sequence[CircuitBreaker]] | None,
            SourceHealth,
        ],
    ]
    plane_answers = dict(zip(plane_members, answers[len(metric_members) :], strict=True))

    sources: dict[str, SourceHealth] = {}
    parts: dict[str, Traffic] = {}
    kept: list[Edge] = []  # what a stale member said last time
    for cluster, (traffic, health) in metric_answers.items():
        if traffic is not None and traffic.warnings:
            # the backend's own warnings, or why meshtop reads its answer as doubtful
            warned = "; ".join(traffic.warnings)
            health = replace(health, reason=f"{health.name}: {warned}")
        if traffic is not None and traffic.latency_age_s is not None:
            health = replace(health, latency_age_s=traffic.latency_age_s)
        sources[source_key("metrics", cluster)] = health
        if traffic is not None:
            parts[cluster] = traffic
        elif previous is not None and health.state is SourceState.STALE:
            kept.extend(
                e for e in previous.edges
                if not cluster or cluster in (_cluster(e.source), _cluster(e.destination))
            )  # fmt: skip
    traffic = parts[""] if "" in parts else merge_traffic(parts)
    edges = list(traffic.edges)
    # on the event loop that draws: the live edges' keys only where a stale member's are
    # to be joined to them (51,239 at 20,000 services)
    fresh = {e.key for e in edges} if kept else set()
    for e in kept:  # a stale member's edges that no live member reported
        if e.key not in fresh:
            fresh.add(e.key)
            edges.append(e)
    stale_nodes = (
        [previous.nodes[n] for e in kept for n in e.key if n in previous.nodes]
        if previous is not None
        else []
    )

    workloads: list[Workload] = []
    routes: list[Route] = []
    breakers: list[CircuitBreaker] = []
    for cluster, (answer, health) in plane_answers.items():
        left_out = getattr(plane_members[cluster], "malformed", ())
        if answer is not None and left_out:  # the rest is shown; these are said
            health = replace(health, reason=f"left out: {'; '.join(left_out)}")
        sources[source_key("control_plane", cluster)] = health
        if answer is not None:
            workloads += answer[0]
            routes += answer[1]
            breakers += answer[2]
        elif previous is not None and health.state is SourceState.STALE:
            routes += [r for r in previous.routes if not cluster or r.cluster == cluster]
            breakers += [b for b in previous.breakers if not cluster or b.cluster == cluster]
            workloads += [w for w in previous.nodes.values() if not cluster or w.cluster == cluster]
    _check_cluster_names(sources, plane_members, traffic)
    # on a thread of its own: the console awaits this on its event loop, which draws
    return await asyncio.to_thread(
        build_snapshot,
        generated_at=datetime.fromtimestamp(clock(), UTC),
        window_s=window_s,
        workloads=(*workloads, *traffic.nodes, *stale_nodes),
        edges=edges,
        routes=routes,
        sources=sources,
        breakers=breakers,
    )


def _check_cluster_names(
    sources: dict[str, SourceHealth], planes: Mapping[str, Any], traffic: Traffic
) -> None:
    """A cluster whose name no call in the metrics carries, while they name clusters
    nobody configured, is misnamed (a kubeconfig context's name, not the mesh's cluster
    ID): its workloads and routes would never meet its traffic. Say so on its source."""
    named = {c for c in planes if c}
    if not named:  # a mesh of one cluster, named as the mesh names it: nothing to read
        return
    seen = set(clusters(traffic.nodes))
    strangers = sorted(seen - named)
    if not strangers:
        return
    for cluster in sorted(named - seen):
        key = source_key("control_plane", cluster)
        if key in sources and not sources[key].reason:
            sources[key] = replace(
                sources[key],
                reason=f"no call in the metrics is from or to a cluster named {cluster!r}; "
                f"they name {', '.join(strangers)}: name each cluster as the mesh does "
                "(Istio's cluster ID), with [[clusters]] name and context in the config file",
            )


def _cluster(node_id: str) -> str:
    return node_id.split("/", 1)[0]


_source, _destination = attrgetter("source"), attrgetter("destination")

# the workloads of the last snapshot built, each the object the sources said, and the
# nodes they made: a refresh whose sources say the same objects again (20,783 at 20,000
# simulated services) makes its nodes with a copy, not each node's id again
_last_nodes: tuple[list[Workload], dict[str, Workload]] | None = None


def build_snapshot(
    *,
    generated_at: datetime,
    window_s: float,
    workloads: Iterable[Workload],
    edges: Sequence[Edge],
    routes: Sequence[Route],
    sources: Mapping[str, SourceHealth],
    breakers: Sequence[CircuitBreaker] = (),
) -> MeshSnapshot:
    """Join what the sources said. The first word on a workload wins (callers pass the
    control plane's first: it knows workloads without traffic); every edge end is a node."""
    global _last_nodes
    said = list(workloads)
    last = _last_nodes
    if last is not None and len(last[0]) == len(said) and all(map(is_, last[0], said)):
        nodes = dict(last[1])  # the same workloads as the refresh before: their nodes
    else:
        nodes = {}
        for w in said:
            nodes.setdefault(w.id, w)
        _last_nodes = (said, dict(nodes))
    known = nodes.__contains__
    # every end a node already (a refresh of the same mesh): asked at C's pace, not one
    # edge at a time in Python (51,239 edges at 20,000 services, 21 ms a refresh)
    if all(map(known, map(_source, edges))) and all(map(known, map(_destination, edges))):
        walked: Iterable[Edge] = ()
    else:
        walked = edges
    for e in walked:
        for end in (e.source, e.destination):
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
        breakers=tuple(breakers),
    )
