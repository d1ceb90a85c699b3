"""A guarded progressive rollout, as Flagger and Argo Rollouts users expect: the canary's
weight moved up a step at a time, taken from the stable destination alone, while its own
metrics stay inside the gates, as Flagger judges a canary (`request-success-rate`: the
share of requests not failing; `request-duration`: p99). A canary that already breaks the
gates is refused before the first step; at the first breach (or when the canary gets no
traffic to judge) every weight goes back to what it was before the rollout. Each step is a
change through `meshtop.change.workflow` (checked, audited as "rollout", tested against
the version read), so a route someone else changed meanwhile stops the rollout where it
is, and says so; the whole rollout is one change `:undo` can take back."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshtop import units
from meshtop.canary import Plan, Split, rule_index
from meshtop.errors import ConflictError, MeshtopError, UsageError
from meshtop.model import Route, WindowSummary
from meshtop.routes_view import workloads_behind as workloads_behind  # where it was
from meshtop.sources.protocols import MetricsSource, Pair, histories_of

if TYPE_CHECKING:
    from meshtop.change.workflow import Workflow


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
    reason: str  # in words: promoted, or why it was refused, aborted or stopped
    final: Split | None  # the route's weights as meshtop last left them
    error: MeshtopError | None = None  # what stopped it, when not a gate
    taken_back: Plan | None = None  # the whole rollout as one change: what :undo takes back

    @property
    def refused(self) -> bool:
        """Refused before the first step: nothing was written."""
        return not self.steps and self.reason.startswith("refused")


class Stopped(Exception):
    """Raised by a rollout's `sleep` when the user stops it between two steps."""


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
    change: Workflow,
    metrics: MetricsSource,
    *,
    cluster: str,
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
    force: bool = False,
) -> Outcome:
    """Move `step` percent of the traffic from the stable destination (the one with the
    most, the canary aside) to `to` every `interval_s`, judging the canary on the interval
    just passed; no other destination is touched. Refused before the first step when the
    canary, already taking traffic, breaks the gates; promoted when the stable one has no
    weight left; at the first breach, every weight back to what it was before the rollout.
    Each step is a change of `change` (checked, audited, tested against its version)
    to the copy in `cluster`. `nodes(route, subset)` names the workloads behind one. A
    route Flagger or Argo Rollouts steers is refused unless `force`. `sleep` may raise
    `Stopped` (the user stopped it): the rollout ends there, said, and can be undone."""
    from meshtop.change import workflow

    if not 1 <= step <= 100:
        raise UsageError(f"--step {step}: give 1 to 100 (percent per step)")
    store = change.copies[cluster].store
    reading = await workflow.read({cluster: change.copies[cluster]}, [kind], namespace, name)
    if reading.unread:
        raise reading.unread[cluster]
    first, steered = reading.found[cluster]
    index = rule_index(first, rule)
    start = Split.of(first, first.rules[index])
    if steered and not force:
        change.record(cluster, Plan(first, index, start, start), f"refused: steered by {steered}")
        raise UsageError(
            f"{first.kind} {namespace}/{name} is steered by {steered}: a rollout here would "
            "fight it; give --force to roll out all the same"
        )
    if to not in start.names:
        raise UsageError(f"{name} has no destination {to!r}; it has {', '.join(start.names)}")
    canary = start.names.index(to)
    others = [j for j in range(len(start.names)) if j != canary]
    if not others:
        raise UsageError(f"{name} has only {to}: there is nothing to roll out from")
    stable = max(others, key=lambda j: (start.weights[j], -j))
    canary_nodes = list(nodes(first, to))
    version_nodes = {n: list(nodes(first, n)) for n in start.names}
    if not canary_nodes:
        raise UsageError(f"no workload behind {to} is known to the metrics: cannot judge it")
    steps: list[Step] = []
    last = start
    route = first

    async def judged() -> tuple[WindowSummary, float | None]:
        # every version's workloads asked together: one moment for them all, and against
        # Prometheus one set of queries for the workloads of a namespace
        pairs: list[Pair] = [(None, i) for ids in version_nodes.values() for i in ids]
        found = iter(await histories_of(metrics, pairs, interval_s))
        summaries = {n: _merge([next(found).summary for _ in ids])
                     for n, ids in version_nodes.items()}  # fmt: skip
        total = sum(x.rps for x in summaries.values())
        return summaries[to], (summaries[to].rps / total if total else None)

    if start.weights[canary] > 0:  # already taking traffic: judged before any step
        s, _ = await judged()
        breach = judge(s, gates) if s.rps > gates.min_rps else ""
        if breach:
            return Outcome(False, (), f"refused: {to} already breaks the gates at "
                           f"{start.text()} ({breach}); nothing was written", start)  # fmt: skip
    every = units.duration(interval_s)
    say(f"rolling out {to} in {first.kind} {namespace}/{name}: {step}% of the traffic from "
        f"{start.names[stable]} every {every}, from {start.text()}")  # fmt: skip

    async def move(target: Split) -> Split:
        nonlocal route
        route, _ = await store.read(kind, namespace, name)  # the latest version to test
        now = Split.of(route, route.rules[index])
        if now.weights != last.weights:
            raise ConflictError(
                f"{route.kind} {namespace}/{name} was changed by someone else to {now.text()}: "
                "the rollout stops here and leaves it so"
            )
        (outcome,) = await change.apply({cluster: Plan(route, index, now, target)})
        if outcome.error is not None:
            raise outcome.error
        assert outcome.applied is not None
        route = outcome.applied
        return Split.of(route, route.rules[index])

    def ended(promoted: bool, reason: str, error: MeshtopError | None = None) -> Outcome:
        back = Plan(route, index, start, last) if last != start else None
        return Outcome(promoted, tuple(steps), reason, last, error, back)

    number = 0
    while True:
        if last.weights[stable] <= 0:
            return ended(True, f"promoted: {to} takes all of {start.names[stable]}'s traffic")
        number += 1
        try:
            last = await move(last.move(stable, canary, step))
        except MeshtopError as exc:
            return ended(False, f"stopped: {exc}", exc)
        try:
            await sleep(interval_s)
        except Stopped:
            return ended(False, f"stopped by you: the route is left at {last.text()}")
        try:
            s, actual = await judged()
            breach = judge(s, gates)
        except MeshtopError as exc:  # the metrics gone: no canary is judged blind (Flagger)
            s, actual, breach = WindowSummary(rps=0.0), None, f"the metrics failed: {exc}"
        record = Step(number, last.weights[canary], actual, s, breach)
        steps.append(record)
        say(_progress(record, to, gates))
        if breach:
            try:
                last = await move(start)
            except MeshtopError as exc:
                return ended(False, f"aborted ({breach}), but: {exc}", exc)
            return ended(False, f"aborted: {breach}; back to {start.text()}")


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
    errors = "-" if s.error_rate is None else units.percent(s.error_rate)
    over = s.error_rate is not None and s.error_rate > gates.max_error_rate
    p99 = f"p99 {units.ms(s.p99_ms)}"
    if gates.max_p99_ms is not None:
        slow = s.p99_ms is not None and s.p99_ms > gates.max_p99_ms
        p99 += f" {'>' if slow else '≤'} {units.ms(gates.max_p99_ms)}"
    verdict = f"ABORT: {step.breach}" if step.breach else "ok"
    return (
        f"step {step.number}: {to} {step.weight}% configured, {actual} actual; "
        f"errors {errors} {'>' if over else '≤'} {units.percent(gates.max_error_rate)}, "
        f"{p99}: {verdict}"
    )
