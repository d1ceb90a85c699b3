"""`meshtop fault NAMESPACE/NAME --abort 503:10% | --delay 2s:25%`: inject a fault into a
route, always time-boxed (`--for`, 10m by default; the end is the annotation
`meshtop.io/fault-expires`), through the change workflow; then wait in the foreground
and take it out at its end (audited `by: expiry`), unless `--detach`. `--clear` takes
every fault out now; `--expire` takes out every fault past its end (for cron or a
systemd timer on a bastion)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meshtop import audit, sanitize
from meshtop.cli import applying, options
from meshtop.cli.options import (
    ContextsOpt,
    DemoOpt,
    DryRunOpt,
    ForceOpt,
    KubeconfigOpt,
    TimeoutOpt,
    YesOpt,
)
from meshtop.cli.steer import MatchOpt
from meshtop.errors import EXIT_BACKEND, ConflictError, MeshtopError, UsageError

if TYPE_CHECKING:
    from meshtop.change.workflow import Copy

DEFAULT_FOR = "10m"


def _when(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def expire(
    copies: Mapping[str, Copy], namespace: str, name: str, now: datetime | None = None
) -> int:
    """Take the fault of each copy of VirtualService NAMESPACE/NAME out if its time is up,
    through the change workflow (`by: expiry`), saying each in a line. A fault someone
    removed first (no end left on the object, or gone by the time of the write) is said
    and nothing is written: no error. The exit code: 0, 3 (a copy unread or not
    written), 4 (changed since read, and still has a fault)."""
    from meshtop.change import edits, workflow

    ref = f"VirtualService {namespace}/{name}"
    objects = asyncio.run(edits.read(copies, ["VirtualService"], namespace, name))
    now = now or datetime.now(UTC)
    code = 0

    def where(cluster: str) -> str:
        return f"{cluster}: " if cluster else ""

    for cluster, why in objects.unread.items():
        typer.echo(sanitize.said(f"{where(cluster)}cannot read {ref}: {why}"), err=True)
        code = EXIT_BACKEND
    found = objects.objects()
    plans = edits.expiry_plans(found, now)
    for cluster, obj in found.items():
        if cluster in plans:
            continue
        end = edits.expires(obj)
        said = (
            "has no fault end set: removed already (by someone else); nothing written"
            if end is None
            else f"now ends its fault at {_when(end)} (changed since): left as it is"
        )
        typer.echo(sanitize.said(f"{where(cluster)}{ref} {said}"))
    if not plans:
        return code
    change = workflow.Workflow({c: copies[c] for c in plans}, by="expiry")
    for o in asyncio.run(change.apply(plans)):
        if o.note:
            typer.echo(sanitize.said(f"meshtop: {where(o.cluster)}{o.note}"), err=True)
        if o.result == "applied":
            typer.echo(sanitize.said(
                f"{where(o.cluster)}{ref}: the fault's time was up; removed "
                f"(resourceVersion {applying.version(o.applied)}, audit log {audit.path()})"
            ))  # fmt: skip
        elif isinstance(o.error, ConflictError) and _gone(copies[o.cluster], namespace, name):
            typer.echo(sanitize.said(
                f"{where(o.cluster)}{ref}: someone removed the fault first; nothing written"
            ))  # fmt: skip
        elif not o.ok:
            typer.echo(sanitize.said(f"{where(o.cluster)}{ref}: {o.result}"), err=True)
            code = max(code, o.error.exit_code if o.error is not None else EXIT_BACKEND)
    return code


def _gone(copy: Copy, namespace: str, name: str) -> bool:
    """Whether the object has no fault end set any more (someone took the fault out)."""
    from meshtop.change import edits

    try:
        obj = asyncio.run(copy.store.get("VirtualService", namespace, name))
    except MeshtopError:
        return False
    return edits.expires(obj) is None


def _expire_all(copies: Mapping[str, Copy], planes: Mapping[str, Any], target: str | None) -> int:
    """`--expire`: every VirtualService (or `target` alone) whose fault's time is up."""
    from meshtop.sources.kubernetes import route_name

    if target is not None:
        namespace, name = route_name(target)
        return expire(copies, namespace, name)
    now = datetime.now(UTC)
    answers = asyncio.run(_routes(planes))
    due: dict[tuple[str, str], list[str]] = {}
    code = 0
    for cluster, answer in answers.items():
        if isinstance(answer, MeshtopError):
            typer.echo(sanitize.said(f"{cluster or 'the cluster'}: cannot list routes: {answer}"),
                       err=True)  # fmt: skip
            code = EXIT_BACKEND
            continue
        for route in answer:
            ends = route.fault_expires
            if route.kind == "VirtualService" and ends is not None and ends <= now:
                due.setdefault((route.namespace, route.name), []).append(cluster)
    if not due and not code:
        typer.echo("no fault is past its end")
    for (namespace, name), clusters in sorted(due.items()):
        code = max(code, expire({c: copies[c] for c in clusters}, namespace, name, now))
    return code


async def _routes(planes: Mapping[str, Any]) -> dict[str, Any]:
    answers = await asyncio.gather(*(p.routes() for p in planes.values()), return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, MeshtopError):
            raise answer
    return dict(zip(planes, answers, strict=True))


def fault(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(help="The route: NAMESPACE/NAME (optional with --expire)."),
    ] = None,
    abort: Annotated[
        str | None,
        typer.Option("--abort", help="Answer this share with a status: STATUS:PERCENT, 503:10%."),
    ] = None,
    delay: Annotated[
        str | None,
        typer.Option("--delay", help="Hold this share of requests: DURATION:PERCENT, 2s:25%."),
    ] = None,
    match: MatchOpt = None,
    rule: Annotated[
        str | None,
        typer.Option("--rule", help="The rule to inject into (default: the default rule)."),
    ] = None,
    for_: Annotated[
        str,
        typer.Option("--for", help="How long the fault lasts (always time-boxed)."),
    ] = DEFAULT_FOR,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Return at once; `meshtop fault --expire` or a running "
            "console removes the fault at its end.",
        ),
    ] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Remove every fault now.")] = False,
    expire_: Annotated[
        bool,
        typer.Option(
            "--expire",
            help="Remove every fault past its end (in --namespace, or "
            "every namespace visible): for cron or a systemd timer.",
        ),
    ] = False,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="With --expire: only this namespace; repeatable."),
    ] = None,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    force: ForceOpt = False,
    demo: DemoOpt = False,
    context: ContextsOpt = None,
    kubeconfig: KubeconfigOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Inject a fault into a route for a while: abort a share of its requests with a
    status, or delay them, on its default rule (or --rule), or only for a --match. The
    fault ends after --for (10m by default; its end is written on the route as the
    annotation meshtop.io/fault-expires): this command waits and removes it then
    (audited `by: expiry`); with --detach it returns at once, and `meshtop fault
    --expire` (cron, a timer) or a running console removes it. --clear removes every
    fault now. Shown, checked by the server, confirmed (or --yes) and audited as every
    change."""
    from meshtop.change import edits
    from meshtop.sources.kubernetes import route_name
    from meshtop.steering import values
    from meshtop.steering.edit import EditPlan, clear_fault
    from meshtop.steering.edit import fault as plan_fault
    from meshtop.steering.match import parse_condition
    from meshtop.units import parse_duration

    settings = options.settings(ctx, timeout=timeout, **options.kubernetes(context, kubeconfig))
    if settings.read_only:
        raise UsageError("read-only: meshtop writes nothing here (read_only in the config file)")
    injects = abort is not None or delay is not None
    if sum((injects, clear, expire_)) != 1:
        raise UsageError("give --abort and/or --delay, or --clear, or --expire")
    if not injects and (match or rule is not None):
        raise UsageError("--match and --rule go with --abort or --delay")
    if match and rule is not None:
        raise UsageError("give --match (a rule of its own) or --rule, not both")
    if namespace and not expire_:
        raise UsageError("--namespace goes with --expire; give the route as NAMESPACE/NAME")
    if expire_:
        scope = tuple(namespace or ()) if target is None else (route_name(target)[0],)
        copies, planes = applying.edit_copies(settings, scope, demo)
        code = _expire_all(copies, planes, target)
        if code:
            raise typer.Exit(code)
        return
    if target is None:
        raise UsageError("give the route as NAMESPACE/NAME")
    aborted = values.abort(abort) if abort is not None else None
    delayed = values.delay(delay) if delay is not None else None
    conditions = [parse_condition(m) for m in match or ()]
    lasts = parse_duration(for_, what="--for")
    route_ns, route = route_name(target)
    copies, _ = applying.edit_copies(settings, (route_ns,), demo)
    objects = applying.read_objects(copies, ["VirtualService"], target)
    ends = datetime.now(UTC) + timedelta(seconds=lasts)
    if ends.microsecond:  # the annotation says whole seconds: the later one, never less
        ends = ends.replace(microsecond=0) + timedelta(seconds=1)

    def make(obj: dict[str, Any], cluster: str) -> EditPlan:
        if clear:
            return clear_fault(obj, cluster)
        return plan_fault(obj, cluster, abort=aborted, delay=delayed, conditions=conditions,
                          rule=rule, expires=ends)  # fmt: skip

    plans = edits.plans(objects.objects(), make)
    outcomes = applying.edit_and_say(
        copies, plans, objects, by="fault", dry_run=dry_run, yes=yes, force=force
    )
    applied = {o.cluster: o.applied for o in outcomes if o.result == "applied" and o.applied}
    if clear or not applied:
        return
    end = max((edits.expires(obj) or ends) for obj in applied.values())
    later = (
        f"`meshtop fault {target} --clear` removes it now, `meshtop fault --expire` "
        f"(or a running console) once it has ended"
    )
    if detach:
        typer.echo(sanitize.said(f"the fault ends at {_when(end)}: {later}"))
        return
    try:  # the line inside: a Ctrl-C right after it is said as one too
        typer.echo(sanitize.said(
            f"waiting until {_when(end)} to remove the fault (Ctrl-C leaves it in place)"
        ))  # fmt: skip
        while (left := (end - datetime.now(UTC)).total_seconds()) > 0:
            time.sleep(min(left, 1.0))
    except KeyboardInterrupt:
        typer.echo(
            sanitize.said(f"meshtop: interrupted; the fault stays until removed: {later}"),
            err=True,
        )
        raise typer.Exit(130) from None
    code = expire({c: copies[c] for c in applied}, route_ns, route)
    if code:
        raise typer.Exit(code)
