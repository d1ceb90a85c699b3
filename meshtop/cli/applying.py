"""What `meshtop shift` and `meshtop mtls` share once a change is planned and shown:
ask (or --yes), apply it through the change workflow, and say each cluster's outcome in
one line, with the exit code the README documents (3 a backend, 4 a conflict)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer

from meshtop import audit, sanitize
from meshtop.errors import EXIT_BACKEND, EXIT_CONFLICT, UsageError

if TYPE_CHECKING:
    from meshtop.change.workflow import Workflow


def apply_and_say(
    change: Workflow,
    plans: Mapping[str, Any],
    here: str,
    *,
    dry_run: bool,
    yes: bool,
    unread: Mapping[str, object],
) -> None:
    """Apply `plans` (cluster -> plan; "" alone for a mesh of one, written at `here`)
    and say how each went; a declined change writes nothing."""
    from meshtop.change import workflow

    several = list(plans) != [""]

    def ask() -> bool:
        if not sys.stdin.isatty():
            raise UsageError("not a terminal to ask on: give --yes to apply, or --dry-run")
        there = ", ".join(plans) if several else here
        return typer.confirm(f"apply to {there}?", default=False)

    outcomes = asyncio.run(
        change.apply(plans, dry_run=dry_run, confirm=None if dry_run or yes else ask)
    )
    for o in outcomes:
        if o.note:
            typer.echo(sanitize.said(f"meshtop: {o.cluster or here}: {o.note}"), err=True)
    if any(o.result == "declined" for o in outcomes):
        typer.echo("nothing was written")
        return
    if not several:
        (one,) = outcomes
        if one.error is not None:
            raise one.error
        if dry_run:
            typer.echo("dry run: the server accepted the change; nothing was written")
        else:
            version = one.applied.resource_version if one.applied else "?"
            typer.echo(f"applied: resourceVersion {version} (audit log {audit.path()})")
        return
    for o in outcomes:
        version = f" (resourceVersion {o.applied.resource_version})" if o.applied else ""
        typer.echo(sanitize.said(f"{o.cluster}: {o.result}{version}"))
    if dry_run and all(o.ok for o in outcomes):
        typer.echo("dry run: every server accepted the change; nothing was written")
    else:
        typer.echo(sanitize.said(workflow.summary(outcomes, unread)))
    if any(o.result.startswith("conflict") for o in outcomes):
        raise typer.Exit(EXIT_CONFLICT)
    if unread or not all(o.ok for o in outcomes):
        raise typer.Exit(EXIT_BACKEND)
