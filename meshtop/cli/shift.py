"""`meshtop shift`: change a route's weights in the cluster (every cluster's copy, over
several), through the change workflow, and say what it did."""

from __future__ import annotations

from typing import Annotated

import typer

from meshtop import connect, sanitize
from meshtop.cli import applying, options
from meshtop.cli.options import (
    ContextsOpt,
    DryRunOpt,
    ForceOpt,
    KubeconfigOpt,
    RouteKind,
    TimeoutOpt,
    YesOpt,
)
from meshtop.errors import BackendError, UsageError


def shift(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The route: NAMESPACE/NAME.")],
    weights: Annotated[
        str, typer.Option("--set", help="Weights by subset or backend: v1=90,v2=10.")
    ],
    rule: Annotated[
        str | None,
        typer.Option(
            "--rule", help="Which rule, by name or index (default: the one without matches)."
        ),
    ] = None,
    kind: Annotated[
        RouteKind,
        typer.Option("--kind", help="VirtualService, HTTPRoute, or auto (whichever exists)."),
    ] = RouteKind.auto,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    force: ForceOpt = False,
    context: ContextsOpt = None,
    kubeconfig: KubeconfigOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Change a route's weights, safely: show the change, have the server check it (a
    dry run), ask (or --yes), then apply it as a JSON patch that tests the version it was
    read at and each destination changed; a concurrent change is refused, never
    overwritten. Every attempt is written to the audit log. With no --context, the
    kubeconfig's current context."""
    import asyncio

    from meshtop import copies
    from meshtop.canary import parse_set, rule_index
    from meshtop.change import workflow
    from meshtop.sources.kubernetes import KINDS, route_name

    settings = options.settings(ctx, timeout=timeout, **options.kubernetes(context, kubeconfig))
    if settings.read_only:
        raise UsageError("read-only: meshtop writes nothing here (read_only in the config file)")
    namespace, name = route_name(target)
    kinds = list(KINDS) if kind is RouteKind.auto else [kind.value]
    several = settings.several  # one cluster: a mesh of one, said as before
    planes = connect.stores(settings, (namespace,))
    stores = {c: workflow.Copy(c, p, p.context) for c, p in planes.items()}
    reading = asyncio.run(workflow.read(stores, kinds, namespace, name))
    if not several and reading.unread:
        raise reading.unread[""]
    for cluster, why in reading.unread.items():
        typer.echo(sanitize.said(f"{cluster}: cannot read {target}: {why}"))
    if not reading.found:
        unread = list(reading.unread.values())
        backend = next((e for e in unread if isinstance(e, BackendError)), None)
        if backend is not None:  # out of reach, refused: the backends', exit 3
            raise BackendError(f"no cluster could be read for {target}: {backend}")
        raise UsageError(f"no cluster has {target}: {unread[0]}")
    routes = reading.routes()
    plans = copies.plans(
        routes, lambda r: rule_index(r, rule), lambda before: parse_set(weights, before)
    )
    change = workflow.Workflow(stores, by="shift")
    steered = reading.steered()
    if steered and not force:
        for cluster, who in steered.items():
            change.record(cluster, plans[cluster], f"refused: steered by {who}")
        if several:
            where = ", ".join(f"{c} (by {who})" for c, who in steered.items())
            raise UsageError(
                f"{target} is steered in {where}: a change there would be undone or fight "
                "it; give --force to change it all the same"
            )
        route = routes[""]
        raise UsageError(
            f"{route.kind} {namespace}/{name} is steered by {steered['']}: a change here "
            "would be undone or fight it; give --force to change it all the same"
        )
    for cluster, plan in plans.items():
        if several:
            typer.echo(f"{cluster}:")
        typer.echo(sanitize.said("\n".join(("  " if several else "") + line
                                            for line in plan.diff())))  # fmt: skip
    if not any(p.changed for p in plans.values()):
        typer.echo("nothing to change")
        if several and reading.unread:
            raise typer.Exit(3)
        return

    here = planes[""].context if "" in planes else ""
    applying.apply_and_say(change, plans, here, dry_run=dry_run, yes=yes, unread=reading.unread)
