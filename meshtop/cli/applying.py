"""What the change commands share: for `shift` and `mtls` once a change is planned and
shown, ask (or --yes), apply it through the change workflow, and say each cluster's
outcome in one line, with the exit code the README documents (3 a backend, 4 a
conflict); for the object edits of issue 21 (`steer`, `fault`, `resilience`, `breaker`),
before that, where each cluster's copy is, reading it, refusing a steered one and
showing each plan."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import typer

from meshtop import audit, sanitize
from meshtop.errors import EXIT_BACKEND, EXIT_CONFLICT, BackendError, UsageError

if TYPE_CHECKING:
    from meshtop.change.edits import Objects
    from meshtop.change.workflow import Copy, EditOutcome, Workflow
    from meshtop.config import Settings
    from meshtop.sources.protocols import ControlPlane
    from meshtop.steering.plan import EditPlan


def apply_and_say(
    change: Workflow,
    plans: Mapping[str, Any],
    here: str,
    *,
    dry_run: bool,
    yes: bool,
    unread: Mapping[str, object],
) -> list[Any]:
    """Apply `plans` (cluster -> plan; "" alone for a mesh of one, written at `here`)
    and say how each went; a declined change writes nothing. The outcomes."""
    from meshtop.change import workflow

    several = list(plans) != [""]

    def ask() -> bool:
        if not sys.stdin.isatty():
            raise UsageError("not a terminal to ask on: give --yes to apply, or --dry-run")
        there = ", ".join(plans) if several else here
        return typer.confirm(f"apply to {there}?", default=False)

    outcomes: list[Any] = asyncio.run(
        change.apply(plans, dry_run=dry_run, confirm=None if dry_run or yes else ask)
    )
    for o in outcomes:
        if o.note:
            typer.echo(sanitize.said(f"meshtop: {o.cluster or here}: {o.note}"), err=True)
    if any(o.result == "declined" for o in outcomes):
        typer.echo("nothing was written")
        return outcomes
    if not several:
        (one,) = outcomes
        if one.error is not None:
            raise one.error
        if dry_run:
            typer.echo("dry run: the server accepted the change; nothing was written")
        else:
            written = version(one.applied) or "?"
            typer.echo(f"applied: resourceVersion {written} (audit log {audit.path()})")
        return outcomes
    for o in outcomes:
        written = f" (resourceVersion {version(o.applied)})" if o.applied else ""
        typer.echo(sanitize.said(f"{o.cluster}: {o.result}{written}"))
    if dry_run and all(o.ok for o in outcomes):
        typer.echo("dry run: every server accepted the change; nothing was written")
    else:
        typer.echo(sanitize.said(workflow.summary(outcomes, unread)))
    if any(o.result.startswith("conflict") for o in outcomes):
        raise typer.Exit(EXIT_CONFLICT)
    if unread or not all(o.ok for o in outcomes):
        raise typer.Exit(EXIT_BACKEND)
    return outcomes


def version(applied: Any) -> str:
    """The resource version a write left: a route's, a policy's, or an object's (an
    `EditOutcome` answers with the object as written)."""
    if isinstance(applied, dict):
        return str((applied.get("metadata") or {}).get("resourceVersion", ""))
    return str(applied.resource_version) if applied is not None else ""


# -- the object edits of issue 21: steer, fault, resilience, breaker ----------------------


def edit_copies(
    settings: Settings, namespaces: tuple[str, ...], demo: bool
) -> tuple[dict[str, Copy], dict[str, ControlPlane]]:
    """Where each cluster's copy of an object is read and written, and its control plane
    (its subsets, its routes): the clusters the settings name (each scoped to
    `namespaces`; none: every namespace), or the simulated mesh's."""
    from meshtop import connect
    from meshtop.change.workflow import Copy

    planes: dict[str, ControlPlane]
    if demo:
        sim = connect.simulation(None, 1)
        planes = dict(sim.planes)
        return {c: Copy(c, p, "the simulated mesh") for c, p in sim.planes.items()}, planes
    kube = connect.stores(settings, namespaces)
    planes = dict(kube)
    return {c: Copy(c, p, p.context) for c, p in kube.items()}, planes


def here(copies: Mapping[str, Copy]) -> str:
    """The one place written to, in a mesh of one ("" over several)."""
    return copies[""].context if "" in copies else ""


def read_objects(copies: Mapping[str, Copy], kinds: Sequence[str], target: str) -> Objects:
    """Every copy of `target` (NAMESPACE/NAME) of whichever of `kinds` exists. In a mesh
    of one, a copy that cannot be read is its error; over several, said, and the others
    go on; none read: a `BackendError` when one was out of reach or refused, else a
    `UsageError` (none has it)."""
    from meshtop.change import edits
    from meshtop.sources.kubernetes import route_name

    namespace, name = route_name(target)
    objects = asyncio.run(edits.read(copies, kinds, namespace, name))
    if list(copies) == [""] and objects.unread:
        raise objects.unread[""]
    for cluster, why in objects.unread.items():
        typer.echo(sanitize.said(f"{cluster}: cannot read {target}: {why}"))
    if not objects.found:
        unread = list(objects.unread.values())
        backend = next((e for e in unread if isinstance(e, BackendError)), None)
        if backend is not None:
            raise BackendError(f"no cluster could be read for {target}: {backend}")
        raise UsageError(f"no cluster has {target}: {unread[0]}")
    return objects


def refuse_steered(
    change: Workflow, plans: Mapping[str, EditPlan], objects: Objects, *, force: bool
) -> None:
    """A copy Flagger or Argo Rollouts steers is refused unless forced (it would undo the
    change, or fight it): audited, and said in one line."""
    steered = {c: who for c, who in objects.steered().items() if c in plans}
    if not steered or force:
        return
    for cluster, who in steered.items():
        change.record(cluster, plans[cluster], f"refused: steered by {who}")
    plan = next(iter(plans.values()))
    where = ", ".join(f"{c} (by {who})" if c else f"by {who}" for c, who in steered.items())
    raise UsageError(
        f"{plan.ref} is steered {'in ' if '' not in steered else ''}{where}: a change here "
        "would be undone or fight it; give --force to change it all the same"
    )


def show(
    plans: Mapping[str, EditPlan], after: Callable[[EditPlan], list[str]] | None = None
) -> None:
    """Each copy's change: in words, its diff, and what `after` says of the result."""
    several = list(plans) != [""]
    pad = "  " if several else ""
    for cluster, plan in plans.items():
        if several:
            typer.echo(f"{cluster}:")
        lines = [f"{plan.ref}: {plan.what}"]
        lines += plan.diff() if plan.changed else ["(no change)"]
        lines += after(plan) if after is not None else []
        typer.echo(sanitize.said("\n".join(pad + line for line in lines)))


def edit_and_say(
    copies: Mapping[str, Copy],
    plans: Mapping[str, EditPlan],
    objects: Objects,
    *,
    by: str,
    dry_run: bool,
    yes: bool,
    force: bool,
    after: Callable[[EditPlan], list[str]] | None = None,
) -> list[EditOutcome]:
    """A planned edit the rest of the way: refused if steered (unless forced), shown,
    then asked, checked, audited under `by`, applied and said (`apply_and_say`)."""
    from meshtop.change import workflow

    change = workflow.Workflow({c: copies[c] for c in plans}, by=by)
    refuse_steered(change, plans, objects, force=force)
    show(plans, after)
    if not any(p.changed for p in plans.values()):
        typer.echo("nothing to change")
        if objects.unread:
            raise typer.Exit(EXIT_BACKEND)
        return []
    return apply_and_say(
        change, plans, here(copies), dry_run=dry_run, yes=yes, unread=objects.unread
    )
