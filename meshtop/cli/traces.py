"""`meshtop trace` and `meshtop traces`: one trace as a waterfall, and the traces that
crossed an edge or a node, slowest first."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from meshtop import connect, sanitize
from meshtop.cli import options
from meshtop.cli.options import (
    DemoOpt,
    SeedOpt,
    ServicesOpt,
    TenantOpt,
    TextOrJson,
    TimeoutOpt,
    TracingOpt,
)
from meshtop.errors import UsageError

if TYPE_CHECKING:
    from meshtop.config import Settings
    from meshtop.sim.sources import Simulation
    from meshtop.sources.protocols import TraceSource


def _trace_backend(settings: Settings, demo: bool, services: int | None, seed: int) -> TraceSource:
    if demo:
        return connect.simulation(services, seed).traces
    found = connect.traces(settings)
    if found is None:
        raise UsageError(
            "no trace backend is configured: give --tracing jaeger=URL, tempo=URL or "
            "zipkin=URL (or [tracing] in the config file), or --demo"
        )
    return found


def trace(
    ctx: typer.Context,
    trace_id: Annotated[str, typer.Argument(help="The trace id, hex or base64.")],
    fmt: Annotated[
        TextOrJson, typer.Option("--format", "-f", help="text: the waterfall; json: spans.")
    ] = TextOrJson.text,
    tracing: TracingOpt = None,
    tracing_tenant: TenantOpt = None,
    demo: DemoOpt = False,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    timeout: TimeoutOpt = None,
) -> None:
    """Print one trace as a waterfall, or its normalised spans as JSON."""
    import asyncio

    from meshtop.sources.tracing import user_trace_id

    wanted = user_trace_id(trace_id)
    settings = options.settings(ctx, **{"tracing.url": tracing, "tracing.tenant": tracing_tenant,
                                        "timeout": timeout})  # fmt: skip
    source = _trace_backend(settings, demo, services, seed)
    found = asyncio.run(source.get_trace(wanted))
    if fmt is TextOrJson.json:
        from meshtop.export.trace_json import render

        sys.stdout.write(render(found))
        return
    import shutil

    from meshtop.waterfall import Tree, text

    width = shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 100
    lines = [f"trace {found.trace_id}", *text(Tree(found), width)]
    sys.stdout.write(sanitize.shown("\n".join(lines), newlines=True) + "\n")


def traces(
    ctx: typer.Context,
    edge: Annotated[
        tuple[str, str] | None,
        typer.Option("--edge", help="The traces where SRC called DST.", metavar="SRC DST"),
    ] = None,
    node: Annotated[str | None, typer.Option("--node", help="The traces through NODE.")] = None,
    errors: Annotated[bool, typer.Option("--errors", help="Only traces with an error.")] = False,
    min_duration: Annotated[
        str | None,
        typer.Option("--min-duration", help="Only traces at least this long, e.g. 200ms."),
    ] = None,
    operation: Annotated[
        str | None, typer.Option("--operation", help="Only this operation.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many.")] = 20,
    lookback: Annotated[str, typer.Option("--lookback", help="How far back, e.g. 1h.")] = "1h",
    fmt: Annotated[
        TextOrJson, typer.Option("--format", "-f", help="text: a table; json: the list.")
    ] = TextOrJson.text,
    tracing: TracingOpt = None,
    tracing_tenant: TenantOpt = None,
    demo: DemoOpt = False,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    timeout: TimeoutOpt = None,
) -> None:
    """List the traces of an edge (or a node), slowest first: start, duration, spans,
    services, error mark. Names are namespace/workload, as everywhere; the workload's app
    is what the traces are searched for."""
    import asyncio

    from meshtop.model import TraceQuery
    from meshtop.units import parse_duration

    if (edge is None) == (node is None):
        raise UsageError("give --edge SRC DST or --node NODE")
    settings = options.settings(ctx, **{"tracing.url": tracing, "tracing.tenant": tracing_tenant,
                                        "timeout": timeout})  # fmt: skip
    sim = connect.simulation(services, seed) if demo else None
    source = sim.traces if sim is not None else _trace_backend(settings, False, None, seed)
    names = _services(settings, sim, [*(edge or ()), *([node] if node else [])])
    query = TraceQuery(
        service=names[0][0],
        namespace=names[0][1],
        version=names[0][2],
        peer_service=names[1][0] if edge else None,
        peer_namespace=names[1][1] if edge else "",
        peer_version=names[1][2] if edge else "",
        errors_only=errors,
        min_duration_ms=parse_duration(min_duration, what="--min-duration") * 1000
        if min_duration
        else None,
        operation=operation,
        limit=limit,
        lookback_s=parse_duration(lookback, what="--lookback"),
    )
    found = asyncio.run(source.find_traces(query))
    if fmt is TextOrJson.json:
        from meshtop.export.trace_json import render_list

        sys.stdout.write(render_list(found))
        return
    from meshtop.units import clock_time, ms

    if not found:
        typer.echo("no trace matched", err=True)
        return
    print(f"{'':1} {'start (UTC)':<23} {'duration':>9} {'spans':>5}  {'trace id':<32}  root")
    for t in found:
        when = clock_time(t.start_us, "%Y-%m-%d %H:%M:%S.%f")
        spans = "?" if t.span_count is None else str(t.span_count)
        print(f"{'!' if t.error else ' '} {when:<23} {ms(t.duration_us / 1000):>9} {spans:>5}  "
              f"{sanitize.shown(t.trace_id):<32}  {sanitize.shown(t.root)}")  # fmt: skip


def _services(
    settings: Settings, sim: Simulation | None, names: list[str]
) -> list[tuple[str, str, str]]:
    """(app, namespace, version) for each name: through the mesh's nodes where a metrics
    source is at hand, else read from the name itself (`namespace/app`, `app.namespace`),
    any version."""
    if sim is not None or any(c.prometheus for c in settings.clusters):
        snapshot = connect.snapshot(settings, connect.connect(settings, sim))
        from meshtop.model import resolve_node

        out = []
        for name in names:
            w = snapshot.nodes[resolve_node(snapshot.nodes, name)]
            out.append((w.app or w.name, w.namespace, w.version))
        return out
    out = []
    for name in names:
        parts = name.split("/")
        if len(parts) >= 2:
            out.append((parts[-1], parts[-2], ""))
        else:
            app_name, _, namespace = name.partition(".")
            out.append((app_name, namespace, ""))
    return out
