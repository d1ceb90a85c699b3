"""`meshtop rollout`: a guarded progressive rollout of one route, step by step while the
canary's own metrics stay inside the gates."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from meshtop import connect, sanitize
from meshtop.cli import options
from meshtop.cli.options import DialectOpt, KubeconfigOpt, PrometheusOpt, RouteKind, TimeoutOpt
from meshtop.errors import MeshtopError, UsageError


def rollout(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The route: NAMESPACE/NAME.")],
    to: Annotated[str, typer.Option("--to", help="The canary: a subset, or a backend.")],
    step: Annotated[int, typer.Option("--step", min=1, max=100, help="Percent per step.")] = 10,
    interval: Annotated[str, typer.Option("--interval", help="Time per step, e.g. 1m.")] = "1m",
    max_error_rate: Annotated[
        str, typer.Option("--max-error-rate", help="Abort above this error rate, e.g. 1%.")
    ] = "1%",
    max_p99: Annotated[
        str | None, typer.Option("--max-p99", help="Abort above this p99, e.g. 500ms.")
    ] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Which rule (name or index).")] = None,
    kind: Annotated[
        RouteKind, typer.Option("--kind", help="VirtualService or HTTPRoute.")
    ] = RouteKind.VirtualService,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Start without asking.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Roll out a route that Flagger or Argo Rollouts steers.")
    ] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Roll out in the simulated mesh.")] = False,
    context: Annotated[
        str | None, typer.Option("--context", help="The kubeconfig context.")
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    prometheus: PrometheusOpt = None,
    dialect: DialectOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Move the canary's weight up a step at a time, from the stable version alone, while
    its own metrics stay inside the gates (Flagger's request-success-rate and
    request-duration); refuse a canary that already breaks them; abort back to the weights
    from before at the first breach, or when the canary gets no traffic or the metrics
    fail. Exit 0 promoted, 1 refused or aborted by a gate, 3 a backend failed, 4 stopped
    because someone else changed the route."""
    import asyncio

    from meshtop.canary import Split, rule_index
    from meshtop.change.workflow import Copy, Workflow
    from meshtop.gates import parse_gate
    from meshtop.rollout import Gates, workloads_behind
    from meshtop.rollout import rollout as run_rollout
    from meshtop.sources.kubernetes import route_name
    from meshtop.units import parse_duration

    flags = {"prometheus.url": prometheus, "prometheus.dialect": dialect, "timeout": timeout}
    kube = options.kubernetes([context] if context else None, kubeconfig)
    settings = options.settings(ctx, **flags, **kube)
    if settings.read_only:
        raise UsageError("read-only: meshtop writes nothing here (read_only in the config file)")
    if settings.several and not demo:
        raise UsageError(
            "a rollout steps one cluster's copy of a route: give --context with one of "
            f"{', '.join(c.name for c in settings.clusters)}"
        )
    namespace, name = route_name(target)
    interval_s = parse_duration(interval, what="--interval")
    gates = Gates(
        max_error_rate=parse_gate(f"error_rate>{max_error_rate}").value,
        max_p99_ms=parse_gate(f"p99>{max_p99}").value if max_p99 else None,
    )
    sim = connect.simulation(None, 1) if demo else None
    sources = connect.connect(settings, sim)
    if sim is not None:
        store: Any = sim.control_plane
        where = "the simulated mesh"
    else:
        store = connect.stores(settings, (namespace,))[""]
        where = store.context
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("not a terminal to ask on: give --yes to start the rollout")
        if not typer.confirm(f"roll out {to} in {target} on {where}?", default=False):
            return
    snapshot = connect.snapshot(settings, sources)
    route_kind = "VirtualService" if kind is RouteKind.auto else kind.value

    change = Workflow({where: Copy(where, store, where)}, by="rollout")

    async def go() -> Any:
        return await run_rollout(
            change, sources.metrics, cluster=where, kind=route_kind, namespace=namespace,
            name=name, to=to, step=step, interval_s=interval_s, gates=gates,
            nodes=workloads_behind(snapshot), sleep=asyncio.sleep,
            say=lambda text: typer.echo(sanitize.said(text)), rule=rule, force=force,
        )  # fmt: skip

    try:
        outcome = asyncio.run(go())
    except KeyboardInterrupt:
        # say which state the route is in, as read now, so that nothing is left unsaid
        try:
            route, _ = asyncio.run(store.read(route_kind, namespace, name))
            i = rule_index(route, rule)
            now = Split.of(route, route.rules[i]).text()
            typer.echo(sanitize.said(f"meshtop: interrupted; {target} is left at {now}"), err=True)
        except MeshtopError as exc:
            typer.echo(sanitize.said(f"meshtop: interrupted; {target} could not be read: {exc}"),
                       err=True)  # fmt: skip
        raise
    typer.echo(sanitize.said(outcome.reason))
    if outcome.promoted:
        return
    # a gate (refused before the first step, or aborted): 1; stopped by a conflict: 4; by
    # a backend: 3; by a value the server refused: 2
    raise typer.Exit(1 if outcome.error is None else outcome.error.exit_code)
