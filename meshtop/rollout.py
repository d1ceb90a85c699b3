"""A guarded progressive rollout: the canary's weight moved up a step at a time while its
own metrics stay inside the gates, as Flagger judges a canary (`request-success-rate`:
the share of requests not failing; `request-duration`: p99), and everything sent back to
the stable version at the first breach, or when the canary gets no traffic to judge.
Each step is a `canary.Plan` applied with its version tests, so a route someone else
changed meanwhile stops the rollout where it is, and says so."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from meshtop import units
from meshtop.canary import Plan, Split, rule_index
from meshtop.errors import MeshtopError, UsageError
from meshtop.model import MeshSnapshot, Route, WindowSummary
from meshtop.sources.protocols import MetricsSource


class RouteStore(Protocol):
    """Where routes are read and written: the cluster, or the simulated mesh."""

    async def read(self, kind: str, namespace: str, name: str) -> tuple[Route, dict[str, Any]]: ...

    async def apply(self, plan: Plan, *, dry_run: bool = False) -> Route: ...


@dataclass(frozen=True, slots=True)
class Gates:
    max_error_rate: float  # 0..1: Flagger's request-success-rate is 1 minus this
    max_p99_ms: float | None = None  # Flagger's request-duration
    min_rps: float = 0.0  # below it (0 by default: none at all) the canary cannot be judged


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    weight: int  # the canary's configured share, percent
    actual: float | None  # the share of the app's traffic the canary got, 0..1
    summary: WindowSummary
    breach: str  # "" when inside the gates


@dataclass(frozen=True, slots=True)
class Outcome:
    promoted: bool
    steps: tuple[Step, ...]
    reason: str  # in words: promoted, or why it was aborted or stopped
    final: Split | None  # the route's weights as meshtop last left them


def judge(s: WindowSummary, gates: Gates) -> str:
    """Why the canary breaks the gates over the last interval, or ""."""
    if not s.rps > gates.min_rps:
        return f"the canary got no traffic to judge ({units.rps(s.rps)})"
    if s.error_rate is not None and s.error_rate > gates.max_error_rate:
        return f"errors {units.percent(s.error_rate)} > {units.percent(gates.max_error_rate)}"
    if gates.max_p99_ms is not None and s.p99_ms is not None and s.p99_ms > gates.max_p99_ms:
        return f"p99 {units.ms(s.p99_ms)} > {units.ms(gates.max_p99_ms)}"
    if s.error_rate is not None and not math.isfinite(s.error_rate):
        return "the error rate is unknown"
    return ""


async def rollout(
    store: RouteStore,
    metrics: MetricsSource,
    *,
    kind: str,
    namespace: str,
    name: str,
    to: str,
    step: int,
    interval_s: float,
    gates: Gates,
    nodes: Callable[[Route, str], Sequence[str]],
    sleep: Callable[[float], Awaitable[None]],
    say: Callable[[str], None],
    rule: str | None = None,
) -> Outcome:
    """Shift `to` up by `step` percent every `interval_s`, judging it on the interval
    just passed; promote at 100, or abort to the stable version at the first breach.
    `nodes(route, subset)` names the workloads behind a destination."""
    if not 1 <= step <= 100:
        raise UsageError(f"--step {step}: give 1 to 100 (percent per step)")
    route, _ = await store.read(kind, namespace, name)
    index = rule_index(route, rule)
    split = Split.of(route, route.rules[index])
    if to not in split.names:
        raise UsageError(f"{name} has no destination {to!r}; it has {', '.join(split.names)}")
    canary = split.names.index(to)
    others = [j for j in range(len(split.names)) if j != canary]
    if not others:
        raise UsageError(f"{name} has only {to}: there is nothing to roll out from")
    stable = max(others, key=lambda j: (split.weights[j], -j))
    canary_nodes = list(nodes(route, to))
    version_nodes = {n: list(nodes(route, n)) for n in split.names}
    if not canary_nodes:
        raise UsageError(f"no workload behind {to} is known to the metrics: cannot judge it")
    steps: list[Step] = []
    last: Split | None = split
    say(f"rolling out {to} in {route.kind} {namespace}/{name}: {step}% every "
        f"{units.duration(interval_s)}, from {split.text()}")  # fmt: skip

    async def move(target: Split) -> Split:
        nonlocal route
        route, _ = await store.read(kind, namespace, name)  # the latest version to test
        now = Split.of(route, route.rules[index])
        if now.weights != (last.weights if last else now.weights):
            raise UsageError(
                f"{route.kind} {namespace}/{name} was changed by someone else to {now.text()}: "
                "the rollout stops here and leaves it so"
            )
        route = await store.apply(Plan(route, index, now, target))
        return Split.of(route, route.rules[index])

    number = 0
    while True:
        weight = split.weights[canary] if last is None else last.weights[canary]
        if weight >= 100:
            return Outcome(True, tuple(steps), f"promoted: {to} takes all traffic", last)
        number += 1
        try:
            last = await move((last or split).set(canary, min(100, weight + step)))
        except MeshtopError as exc:
            return Outcome(False, tuple(steps), f"stopped: {exc}", last)
        await sleep(interval_s)
        summaries = {}
        for n, ids in version_nodes.items():
            found = [await metrics.history(None, i, interval_s) for i in ids]
            summaries[n] = _merge([h.summary for h in found])
        s = summaries[to]
        total = sum(x.rps for x in summaries.values())
        actual = s.rps / total if total else None
        breach = judge(s, gates)
        record = Step(number, last.weights[canary], actual, s, breach)
        steps.append(record)
        say(_progress(record, to, gates))
        if breach:
            try:
                last = await move(last.abort(stable))
            except MeshtopError as exc:
                return Outcome(False, tuple(steps), f"aborted ({breach}), but: {exc}", last)
            return Outcome(False, tuple(steps), f"aborted: {breach}; all back to "
                           f"{split.names[stable]}", last)  # fmt: skip


def _merge(summaries: list[WindowSummary]) -> WindowSummary:
    """Several workloads behind one version: rates add, errors follow, p99 the slowest."""
    if len(summaries) == 1:
        return summaries[0]
    rps = sum(s.rps for s in summaries)
    failed = sum(s.rps * (s.error_rate or 0.0) for s in summaries)
    p99 = max((s.p99_ms for s in summaries if s.p99_ms is not None), default=None)
    return WindowSummary(rps=rps, error_rate=failed / rps if rps else None, p99_ms=p99)


def _progress(step: Step, to: str, gates: Gates) -> str:
    s = step.summary
    actual = "-" if step.actual is None else f"{step.actual:.1%}"
    p99 = units.ms(s.p99_ms)
    limit = f" ≤ {units.ms(gates.max_p99_ms)}" if gates.max_p99_ms is not None else ""
    errors = "-" if s.error_rate is None else units.percent(s.error_rate)
    verdict = f"ABORT: {step.breach}" if step.breach else "ok"
    return (
        f"step {step.number}: {to} {step.weight}% configured, {actual} actual; "
        f"errors {errors} ≤ {units.percent(gates.max_error_rate)}, p99 {p99}{limit}: {verdict}"
    )


def workloads_behind(snapshot: MeshSnapshot) -> Callable[[Route, str], list[str]]:
    """The snapshot's workloads behind a route's destination: for a VirtualService those
    of the host's app whose version is the subset's name (Istio's convention, as
    Bookinfo's DestinationRules have it); for an HTTPRoute those its backend service's
    calls reached."""

    def find(route: Route, destination: str) -> list[str]:
        if route.kind == "VirtualService":
            hosts = {
                d.host.split(".")[0]
                for rule in route.rules
                for d in rule.destinations
                if (d.subset or d.host) == destination
            }
            return sorted(
                n
                for n, w in snapshot.nodes.items()
                if w.namespace == route.namespace and w.app in hosts and w.version == destination
            )
        return sorted(
            {e.destination for e in snapshot.edges if e.service.split(".")[0] == destination}
        )

    return find
