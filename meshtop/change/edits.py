"""What every caller of an `EditPlan` change (issue 21) does before and after the
workflow, in one place for the CLI's `steer`, `fault`, `resilience` and `breaker` and the
console's commands: read every copy of the object, plan each, take a change back, and
end a fault whose time is up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from meshtop.change.workflow import Copy, EditOutcome
from meshtop.errors import BackendError, MeshtopError, UsageError
from meshtop.sources.routing import fault_expiry, owner
from meshtop.steering.edit import EditPlan, clear_fault, undo_edit


@dataclass(frozen=True, slots=True)
class Objects:
    """Every copy as read now: the object and who else steers it (None: nobody), and
    the copies that could not be read, with why."""

    found: dict[str, tuple[dict[str, Any], str | None]] = field(default_factory=dict)
    unread: dict[str, MeshtopError] = field(default_factory=dict)

    def objects(self) -> dict[str, dict[str, Any]]:
        return {c: obj for c, (obj, _) in self.found.items()}

    def steered(self) -> dict[str, str]:
        return {c: who for c, (_, who) in self.found.items() if who}


async def read(
    copies: Mapping[str, Copy], kinds: Sequence[str], namespace: str, name: str
) -> Objects:
    """Every copy, concurrently, of whichever of `kinds` exists (the last kind's error
    is the one kept), with who else steers it (Flagger, Argo Rollouts)."""

    async def one(copy: Copy) -> dict[str, Any]:
        for kind in kinds[:-1]:
            try:
                return await copy.store.get(kind, namespace, name)
            except UsageError:
                continue
        return await copy.store.get(kinds[-1], namespace, name)

    answers = await asyncio.gather(*(one(c) for c in copies.values()), return_exceptions=True)
    objects = Objects()
    for cluster, answer in zip(copies, answers, strict=True):
        if isinstance(answer, MeshtopError):
            objects.unread[cluster] = answer
        elif isinstance(answer, BaseException):
            raise answer
        else:
            objects.found[cluster] = (answer, owner(answer))
    return objects


def plans(
    objects: Mapping[str, dict[str, Any]], make: Callable[[dict[str, Any], str], EditPlan]
) -> dict[str, EditPlan]:
    """`make(object, cluster)` for every copy read; a copy it refuses (a `UsageError`)
    is refused for all, naming the cluster when there are several."""
    out: dict[str, EditPlan] = {}
    for cluster, obj in objects.items():
        try:
            out[cluster] = make(obj, cluster)
        except UsageError as exc:
            raise UsageError(f"{cluster}: {exc}" if cluster else str(exc)) from None
    return out


async def undo_plans(
    copies: Mapping[str, Copy], outcomes: Sequence[EditOutcome]
) -> tuple[dict[str, EditPlan], dict[str, MeshtopError]]:
    """The plans that take back each applied outcome, from each object as it is now;
    a copy changed since (a `ConflictError`) or unread is left out, with why."""
    done = [o for o in outcomes if o.result == "applied" and o.plan is not None]
    answers = await asyncio.gather(
        *(copies[o.cluster].store.get(o.plan.kind, o.plan.namespace, o.plan.name)
          for o in done if o.plan is not None),
        return_exceptions=True,
    )  # fmt: skip
    back: dict[str, EditPlan] = {}
    refused: dict[str, MeshtopError] = {}
    for o, now in zip(done, answers, strict=True):
        assert o.plan is not None
        if isinstance(now, MeshtopError):
            refused[o.cluster] = now
        elif isinstance(now, BaseException):
            raise now
        else:
            try:
                back[o.cluster] = undo_edit(now, o.plan, o.applied)
            except MeshtopError as exc:
                refused[o.cluster] = exc
    return back, refused


def expires(obj: Mapping[str, Any]) -> datetime | None:
    """When the object's fault ends, as meshtop's annotation says (None: no end set,
    or not a time: a malformed annotation is not meshtop's to act on)."""
    try:
        return fault_expiry(obj, "")
    except BackendError:
        return None


def expiry_plans(objects: Mapping[str, dict[str, Any]], now: datetime) -> dict[str, EditPlan]:
    """For every copy whose fault's time is up, the plan that removes it (action
    "expire fault"); a copy with no end set, or not yet at it, is left as it is."""
    return {
        cluster: clear_fault(obj, cluster, action="expire fault")
        for cluster, obj in objects.items()
        if (end := expires(obj)) is not None and now >= end
    }
