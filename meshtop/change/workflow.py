"""The change workflow: the only code that writes to a cluster.

A change of a route's weights, over one copy or every cluster's copy of it:

1. **read** every copy (`read`), with who else steers it (Flagger, Argo Rollouts);
2. **plan** it (`canary.Plan`: a split valid at every step, against the version read);
3. **check**: a copy steered by a controller is refused unless forced (`refuse_steered`);
   every copy's server checks its change first (a dry run): if any refuses it, nothing is
   written anywhere;
4. **audit the intent** of every write before the first one: a log that cannot be
   written means nothing is written (a write with no record is never made);
5. **apply** each copy with the JSON patch that tests the version it was read at (a copy
   changed since is a conflict, left as it is, and the others are still written);
6. **audit the outcome** of each, and return an `Outcome` per copy.

Callers only present the outcomes. `undo_plan` makes a change taken back a plan like any
other (previewed, checked, audited).

A change of a PeerAuthentication's mode (`meshtop mtls`, issue 22) goes the same steps,
typed as its own: a `posture.MtlsPlan` (read from each cluster's security configuration,
with the workloads it changes and what STRICT would refuse) over `PolicyCopy`s, written
as a creation, a JSON patch that tests the version read, or a deletion with it as a
precondition, each answered by a `ModeOutcome`; `undo_mode` takes one back.

A change of a route's rules, faults, timeouts and retries or a DestinationRule's circuit
breaker (issue 21) is a `steering.edit.EditPlan` over the same `Copy`s, written by the
store's `edit` as a JSON patch that tests the version and the spec read, answered by an
`EditOutcome` (with the object as written); `steering.edit.undo_edit` takes one back.
Over 400 lines: the three kinds of change (weights, a mode, an object's spec) go through
the one sequence of steps, which is the point of the module; splitting them would copy it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, overload

from meshtop import audit
from meshtop.canary import Plan, Split
from meshtop.errors import ConflictError, MeshtopError, UsageError
from meshtop.model import Route
from meshtop.posture import MtlsPlan, PeerAuthentication
from meshtop.sources.protocols import PolicyStore, RouteStore
from meshtop.steering.plan import EditPlan

# who asks, as the audit log says it
BY = ("shift", "rollout", "console", "undo", "mtls", "steer", "fault", "resilience", "expiry")


@dataclass(frozen=True, slots=True)
class Copy:
    """One cluster's copy of a route: where it is read and written, and the name the
    audit log gives that place (the kubeconfig context, or the simulated mesh)."""

    cluster: str
    store: RouteStore
    context: str


@dataclass(frozen=True, slots=True)
class PolicyCopy:
    """One cluster's PeerAuthentications: where they are read and written, and the name
    the audit log gives that place."""

    cluster: str
    store: PolicyStore
    context: str


@dataclass(frozen=True, slots=True)
class Reading:
    """Every copy as read now: the route and who else steers it (None: nobody), and the
    copies that could not be read, with why."""

    found: dict[str, tuple[Route, str | None]] = field(default_factory=dict)
    unread: dict[str, MeshtopError] = field(default_factory=dict)

    def routes(self) -> dict[str, Route]:
        return {c: route for c, (route, _) in self.found.items()}

    def steered(self) -> dict[str, str]:
        return {c: who for c, (_, who) in self.found.items() if who}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one cluster's copy."""

    cluster: str
    plan: Plan | None  # None: nothing to do there
    result: str  # "applied", "unchanged", "checked", "conflict: …", "failed: …", "not written: …"
    applied: Route | None = None
    error: MeshtopError | None = None  # why it was not written, as raised
    note: str = ""  # what else the user must know (the audit log failed after the write)

    @property
    def ok(self) -> bool:
        return self.result in OK


@dataclass(frozen=True, slots=True)
class ModeOutcome:
    """What happened to one cluster's PeerAuthentication (`applied` None: deleted, or
    not written)."""

    cluster: str
    plan: MtlsPlan | None
    result: str  # as `Outcome.result`
    applied: PeerAuthentication | None = None
    error: MeshtopError | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.result in OK


@dataclass(frozen=True, slots=True)
class EditOutcome:
    """What happened to one cluster's object under an `EditPlan` (`applied`: the object
    as the server wrote it)."""

    cluster: str
    plan: EditPlan | None
    result: str  # as `Outcome.result`
    applied: dict[str, Any] | None = None
    error: MeshtopError | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.result in OK


OK = ("applied", "unchanged", "checked", "declined")


async def read(
    copies: Mapping[str, Copy], kinds: Sequence[str], namespace: str, name: str
) -> Reading:
    """Every copy, concurrently, of whichever of `kinds` exists (the last kind's error is
    the one kept), with who else steers it."""

    async def one(copy: Copy) -> tuple[Route, dict[str, Any]]:
        for kind in kinds[:-1]:
            try:
                return await copy.store.read(kind, namespace, name)
            except UsageError:
                continue
        return await copy.store.read(kinds[-1], namespace, name)

    answers = await asyncio.gather(*(one(c) for c in copies.values()), return_exceptions=True)
    reading = Reading()
    for cluster, answer in zip(copies, answers, strict=True):
        if isinstance(answer, MeshtopError):
            reading.unread[cluster] = answer
        elif isinstance(answer, BaseException):
            raise answer
        else:
            route, _ = answer
            reading.found[cluster] = (route, route.steered_by or None)
    return reading


# a typed plan: a route's weights, a PeerAuthentication's mode, an object's spec
Change = Plan | MtlsPlan | EditPlan
Answer = Outcome | ModeOutcome | EditOutcome


class Workflow:
    """Changes over a set of copies, every one audited under `by`: of a route's weights
    (`Copy`, `canary.Plan`, each answered by an `Outcome`) or of a PeerAuthentication's
    mode (`PolicyCopy`, `posture.MtlsPlan`, each answered by a `ModeOutcome`)."""

    def __init__(self, copies: Mapping[str, Copy] | Mapping[str, PolicyCopy], *, by: str) -> None:
        if by not in BY:
            raise ValueError(f"audit 'by' {by!r} is not one of {BY}")
        self.copies: dict[str, Copy] = {}
        self.policies: dict[str, PolicyCopy] = {}
        for cluster, copy in copies.items():
            if isinstance(copy, PolicyCopy):
                self.policies[cluster] = copy
            else:
                self.copies[cluster] = copy
        self.by = by

    async def _send(self, cluster: str, plan: Change, dry_run: bool = False) -> Any:
        """A plan to its store: the route's copy (weights, or an object's spec), or the
        cluster's policies."""
        if isinstance(plan, MtlsPlan):
            return await self.policies[cluster].store.apply(plan, dry_run=dry_run)
        if isinstance(plan, EditPlan):
            return await self.copies[cluster].store.edit(plan, dry_run=dry_run)
        return await self.copies[cluster].store.apply(plan, dry_run=dry_run)

    def _entry(self, cluster: str, plan: Change) -> dict[str, Any]:
        if isinstance(plan, MtlsPlan):
            return {**describe_mode(plan, self.policies[cluster].context), "by": self.by}
        if isinstance(plan, EditPlan):
            return {**describe_edit(plan, self.copies[cluster].context), "by": self.by}
        return {**audit.describe(plan, self.copies[cluster].context), "by": self.by}

    def record(self, cluster: str, plan: Change, outcome: str) -> None:
        """One audit line for a change that goes no further than its caller: declined,
        or refused before any request (steered by another controller)."""
        _record({**self._entry(cluster, plan), "outcome": outcome})

    @overload
    async def apply(
        self,
        plans: Mapping[str, Plan],
        *,
        dry_run: bool = False,
        confirm: Callable[[], bool] | None = None,
    ) -> list[Outcome]: ...

    @overload
    async def apply(
        self,
        plans: Mapping[str, MtlsPlan],
        *,
        dry_run: bool = False,
        confirm: Callable[[], bool] | None = None,
    ) -> list[ModeOutcome]: ...

    @overload
    async def apply(
        self,
        plans: Mapping[str, EditPlan],
        *,
        dry_run: bool = False,
        confirm: Callable[[], bool] | None = None,
    ) -> list[EditOutcome]: ...

    async def apply(
        self,
        plans: Mapping[str, Plan] | Mapping[str, MtlsPlan] | Mapping[str, EditPlan],
        *,
        dry_run: bool = False,
        confirm: Callable[[], bool] | None = None,
    ) -> list[Outcome] | list[ModeOutcome] | list[EditOutcome]:
        """Steps 3 to 6 for every copy planned (see the module): the servers' checks
        first, concurrently (a copy changed since it was read is a conflict and left out;
        any other refusal writes nothing anywhere); with `dry_run`, no more; then
        `confirm()`, when given (False: declined, nothing written); else every intent
        logged, then every copy written, concurrently, and each outcome logged. Raises
        `UsageError` only when the audit log cannot be written: nothing is written."""
        outcomes: dict[str, Any] = {
            c: _outcome(c, p, "unchanged") for c, p in plans.items() if not p.changed
        }
        todo: dict[str, Change] = {c: p for c, p in plans.items() if p.changed}
        checks = await asyncio.gather(
            *(self._send(c, p, dry_run=True) for c, p in todo.items()),
            return_exceptions=True,
        )
        refused: dict[str, MeshtopError] = {}
        for (cluster, plan), answer in zip(todo.items(), checks, strict=True):
            if isinstance(answer, ConflictError):  # changed since read: that copy alone
                outcomes[cluster] = self._ended(cluster, plan, "conflict", answer)
            elif isinstance(answer, MeshtopError):
                refused[cluster] = answer
            elif isinstance(answer, BaseException):
                raise answer
        todo = {c: p for c, p in todo.items() if c not in outcomes}
        if refused or dry_run:
            for cluster, plan in todo.items():
                if cluster in refused:
                    outcomes[cluster] = self._ended(
                        cluster, plan, "refused by the server's dry run", refused[cluster],
                        result="failed: refused by the server's dry run",
                    )  # fmt: skip
                elif dry_run:
                    self.record(cluster, plan, "dry run: the server accepted it")
                    outcomes[cluster] = _outcome(cluster, plan, "checked")
                else:
                    said = "not written: another cluster's server refused"
                    self.record(cluster, plan, said)
                    outcomes[cluster] = _outcome(cluster, plan, said)
            return [outcomes[c] for c in plans]
        if todo and confirm is not None and not confirm():
            for cluster, plan in todo.items():
                self.record(cluster, plan, "declined")
                outcomes[cluster] = _outcome(cluster, plan, "declined")
            return [outcomes[c] for c in plans]
        for cluster, plan in todo.items():  # every intent before the first write
            self.record(cluster, plan, "about to apply")
        # every copy's write runs to its end and is logged; a bug in one (not a refusal)
        # is raised after the others are done, not taken for the cluster's answer
        written = await asyncio.gather(
            *(self._write(c, p) for c, p in todo.items()), return_exceptions=True
        )
        bugs = [w for w in written if isinstance(w, BaseException)]
        if bugs:
            raise bugs[0]
        outcomes.update((o.cluster, o) for o in written if isinstance(o, Answer))
        return [outcomes[c] for c in plans]

    async def _write(self, cluster: str, plan: Change) -> Answer:
        """The one call in meshtop that writes to a cluster."""
        try:
            applied = await self._send(cluster, plan)
        except ConflictError as exc:
            return self._ended(cluster, plan, "conflict", exc)
        except MeshtopError as exc:
            return self._ended(cluster, plan, "failed", exc)
        if isinstance(applied, dict):  # an object's spec, as written
            version = str((applied.get("metadata") or {}).get("resourceVersion", ""))
        else:
            version = applied.resource_version if applied is not None else ""  # None: deleted
        entry = {**self._entry(cluster, plan), "outcome": "applied",
                 "new_resource_version": version}  # fmt: skip
        try:
            audit.record(entry)
        except OSError as exc:  # written, and its intent is logged: said, not raised
            return _outcome(cluster, plan, "applied", applied, note=_unlogged(exc))
        return _outcome(cluster, plan, "applied", applied)

    def _ended(
        self, cluster: str, plan: Change, what: str, error: MeshtopError, *, result: str = ""
    ) -> Answer:
        """A copy not written, logged as `what` (said as `result`, when given)."""
        logged = f"{what}: {error}"
        result = f"{result or what}: {error}"
        try:
            audit.record({**self._entry(cluster, plan), "outcome": logged})
        except OSError as exc:
            return _outcome(cluster, plan, result, error=error, note=_unlogged(exc))
        return _outcome(cluster, plan, result, error=error)


def _outcome(
    cluster: str,
    plan: Change,
    result: str,
    applied: Any = None,
    *,
    error: MeshtopError | None = None,
    note: str = "",
) -> Answer:
    """What happened to a copy, as its kind of plan is answered."""
    if isinstance(plan, MtlsPlan):
        return ModeOutcome(cluster, plan, result, applied, error, note)
    if isinstance(plan, EditPlan):
        return EditOutcome(cluster, plan, result, applied, error, note)
    return Outcome(cluster, plan, result, applied, error, note)


def describe_mode(plan: MtlsPlan, context: str) -> dict[str, Any]:
    """What an audit line says of a PeerAuthentication's change: where, which policy,
    from what to what (None: there was none, or there is none after)."""

    def said(p: PeerAuthentication | None) -> dict[str, Any] | None:
        return None if p is None else {"mode": p.mode.value, "selector": dict(p.selector)}

    return {
        "context": context,
        "resource": plan.policy.ref,
        "action": plan.action,
        "resource_version": plan.before.resource_version if plan.before else "",
        "before": said(plan.before),
        "after": said(plan.after),
    }


def describe_edit(plan: EditPlan, context: str) -> dict[str, Any]:
    """What an audit line says of an object's change: where, which object, what in words,
    and the spec before and after (so that it can be read back, or undone by hand)."""
    return {
        "context": context,
        "resource": plan.ref,
        "action": plan.action,
        "change": plan.what,
        "resource_version": plan.resource_version,
        "before": dict(plan.before),
        "after": dict(plan.after),
        "annotations": dict(plan.annotations),
    }


def _record(entry: Mapping[str, Any]) -> None:
    """An audit line that must be written before meshtop goes on."""
    try:
        audit.record(entry)
    except OSError as exc:
        raise UsageError(
            f"cannot write the audit log {audit.path()} ({exc.strerror or exc}): nothing "
            "was written; make it writable, or set XDG_STATE_HOME"
        ) from None


def _unlogged(exc: OSError) -> str:
    return f"the audit log {audit.path()} could not record it ({exc.strerror or exc})"


def undo_plan(now: Route, plan: Plan) -> Plan:
    """The change that takes `plan` back, from the route as it is `now`: refused (a
    `ConflictError`) when the route is no longer as `plan` left it."""
    current = Split.of(now, now.rules[plan.rule])
    if current.weights != plan.after.weights:
        raise ConflictError(
            f"{now.name} changed since meshtop's change (now {current.text()}); "
            ":undo leaves it as it is"
        )
    return Plan(now, plan.rule, current, plan.before)


def undo_mode(now: PeerAuthentication | None, plan: MtlsPlan) -> MtlsPlan:
    """The change that takes `plan` back, from the policy as it is `now` (None: there is
    none): a created policy deleted, a changed one set back, a deleted one made again;
    refused (a `ConflictError`) when the policy is no longer as `plan` left it."""
    after = plan.after
    if after is None:
        if now is not None:
            raise ConflictError(
                f"{plan.policy.ref} was made again since meshtop deleted it; :undo leaves it"
            )
        before = plan.before
        assert before is not None
        return replace(plan, before=None, after=replace(before, resource_version=""),
                       mode=before.mode, changes=(), breaks=(), observed=False)  # fmt: skip
    if now is None or now.mode is not after.mode or dict(now.selector) != dict(after.selector):
        said = "deleted" if now is None else f"now {now.mode.value}"
        raise ConflictError(
            f"{after.ref} changed since meshtop's change ({said}); :undo leaves it as it is"
        )
    back = None if plan.before is None else replace(now, mode=plan.before.mode)
    mode = plan.before.mode if plan.before else after.mode
    return replace(plan, before=now, after=back, mode=mode, changes=(), breaks=(), observed=False)


def summary(outcomes: Iterable[Answer], unread: Mapping[str, object] | None = None) -> str:
    """One line for all clusters: what was written where, and what was not (`unread`:
    the clusters whose copy could not be read or planned, with why)."""
    outcomes = list(outcomes)
    applied = [o.cluster for o in outcomes if o.result == "applied"]
    missed = [o.cluster for o in outcomes if not o.ok] + list(unread or {})
    if not missed:
        if applied:
            return "every copy is changed"
        if any(isinstance(o, EditOutcome) for o in outcomes):
            return "every copy already was as asked"
        return "every copy already had these weights"
    left = ", ".join(missed)
    if applied:
        return (
            f"applied in {', '.join(applied)}; NOT in {left}: the copies now differ "
            "(see above for why)"
        )
    return f"nothing was written: not in {left} (see above for why)"
