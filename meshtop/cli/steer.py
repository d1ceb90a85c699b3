"""`meshtop steer NAMESPACE/NAME`: content-based steering (issue 21): add a rule that
sends the requests a match picks (a header, the URI, a query parameter, the caller's
labels) to a subset or a split of subsets, or edit, move or remove one; through the
change workflow (shown with the rules in words after it and the diff, checked by the
server, confirmed, audited, written only if the route is still as read)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meshtop.cli import applying, options
from meshtop.cli.options import (
    ContextsOpt,
    DemoOpt,
    DryRunOpt,
    ForceOpt,
    KubeconfigOpt,
    RouteKind,
    TimeoutOpt,
    YesOpt,
)
from meshtop.errors import UsageError

if TYPE_CHECKING:
    from meshtop.sources.protocols import ControlPlane

MatchOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--match",
        help="A condition, FIELD[:NAME]OP VALUE: 'header:end-user=jason', "
        "'header:user-agent~REGEX' (RE2, the whole value), 'uri^=/api', 'query:v=2', "
        "'source:app=web', 'method=POST' (= exact, ^= prefix, ~ regex); repeat it: all must hold.",
    ),
]


def _host(obj: dict[str, Any]) -> str:
    """The short name of the host a VirtualService's default rule routes to ("" none)."""
    rules = (obj.get("spec") or {}).get("http") or []
    default = next((r for r in reversed(rules) if not r.get("match")), rules[-1] if rules else {})
    first = ((default.get("route") or [{}])[0]).get("destination") or {}
    return str(first.get("host", "")).split(".")[0]


async def _subsets(planes: dict[str, ControlPlane]) -> dict[str, dict[tuple[str, str], set[str]]]:
    answers = await asyncio.gather(*(p.subsets() for p in planes.values()))
    return dict(zip(planes, answers, strict=True))


def steer(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The route: NAMESPACE/NAME.")],
    match: MatchOpt = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Where matching requests go: a subset (v3) or a split "
            "(v1=80,v3=20); for an HTTPRoute, backend Services.",
        ),
    ] = None,
    position: Annotated[
        int | None,
        typer.Option("--position", min=0, help="The new rule's place, or --move's (0: first)."),
    ] = None,
    edit: Annotated[
        str | None,
        typer.Option("--edit", help="Change this rule's --match and/or --to (name or index)."),
    ] = None,
    move: Annotated[
        str | None, typer.Option("--move", help="Move this rule to --position (name or index).")
    ] = None,
    remove: Annotated[
        str | None, typer.Option("--remove", help="Remove this rule (name or index).")
    ] = None,
    kind: Annotated[
        RouteKind,
        typer.Option("--kind", help="VirtualService, HTTPRoute, or auto (whichever exists)."),
    ] = RouteKind.auto,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    force: ForceOpt = False,
    demo: DemoOpt = False,
    context: ContextsOpt = None,
    kubeconfig: KubeconfigOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Steer requests by content: add a rule (--match … --to …, before the default rule
    or at --position), --edit, --move or --remove one. Regexes are checked as Envoy
    compiles them (RE2) and match the whole value; subsets are checked against the
    cluster's DestinationRules. Shows the rules in words after the change and the diff,
    has the server check it (a dry run), asks (or --yes), then writes it only if the
    route is still as read; every attempt is in the audit log."""
    from meshtop.change import edits
    from meshtop.sources.kubernetes import KINDS, route_name
    from meshtop.steering.edit import EditPlan, parse_targets
    from meshtop.steering.edit import steer as plan_steer
    from meshtop.steering.match import parse_condition

    settings = options.settings(ctx, timeout=timeout, **options.kubernetes(context, kubeconfig))
    if settings.read_only:
        raise UsageError("read-only: meshtop writes nothing here (read_only in the config file)")
    if sum(x is not None for x in (edit, move, remove)) > 1:
        raise UsageError("give one of --edit, --move and --remove")
    if (move is not None or remove is not None) and (match or to):
        raise UsageError("--move and --remove take no --match or --to")
    if move is not None and position is None:
        raise UsageError("--move needs --position")
    conditions = [parse_condition(m) for m in match or ()]
    targets = parse_targets(to) if to is not None else []
    namespace, _ = route_name(target)
    kinds = list(KINDS) if kind is RouteKind.auto else [kind.value]
    copies, planes = applying.edit_copies(settings, (namespace,), demo)
    objects = applying.read_objects(copies, kinds, target)
    found = objects.objects()
    known: dict[str, dict[tuple[str, str], set[str]]] = {}
    if targets and any(o.get("kind") == "VirtualService" for o in found.values()):
        known = asyncio.run(_subsets({c: planes[c] for c in found}))

    def make(obj: dict[str, Any], cluster: str) -> EditPlan:
        subsets = None
        if obj.get("kind") == "VirtualService" and cluster in known:
            subsets = sorted(known[cluster].get((namespace, _host(obj)), set()))
        return plan_steer(
            obj, cluster, conditions=conditions, targets=targets, position=position,
            remove=remove, edit=edit, move=move, subsets=subsets,
        )  # fmt: skip

    plans = edits.plans(found, make)
    from meshtop.cli.route_test import rule_lines

    applying.edit_and_say(
        copies, plans, objects, by="steer", dry_run=dry_run, yes=yes, force=force,
        after=lambda plan: ["after the change, " + line if i == 0 else line
                            for i, line in enumerate(rule_lines(found[plan.cluster], plan.after))],
    )  # fmt: skip
