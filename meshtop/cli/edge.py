"""`meshtop edge`: one edge over a window, as the detail screen's panels in text or its
series as JSON."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from meshtop import connect
from meshtop.cli import options
from meshtop.cli.options import (
    DemoOpt,
    DialectOpt,
    PrometheusOpt,
    SeedOpt,
    ServicesOpt,
    TextOrJson,
    TimeoutOpt,
)


def edge(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="The caller: namespace/workload, or any unambiguous id.")
    ],
    destination: Annotated[str, typer.Argument(help="The callee, named the same way.")],
    window: Annotated[
        str, typer.Option("--window", help="History window, 1m to 30d (5m, 15m, 1h, 6h, 24h, 7d).")
    ] = "15m",
    fmt: Annotated[
        TextOrJson, typer.Option("--format", "-f", help="text: panels; json: the series.")
    ] = TextOrJson.text,
    demo: DemoOpt = False,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    prometheus: PrometheusOpt = None,
    dialect: DialectOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Print one edge's panels over a window: rate, errors by kind, latency, response
    codes and flags, mTLS, and its destination's versions side by side; and which
    AuthorizationPolicy allows or denies its calls, where the cluster's security
    configuration is read (a context in the config file, or --demo); weight changes from
    the audit log (▲) and the control plane's changes to its routes and Deployments (◆)
    are marked on the charts. Credentials and TLS options come from the config file or go
    before the command."""
    import asyncio

    from meshtop.detail import change_sources, fetch, subject
    from meshtop.history import parse_window
    from meshtop.model import resolve_node

    window_s = parse_window(window)
    flags = {"prometheus.url": prometheus, "prometheus.dialect": dialect, "timeout": timeout}
    settings = options.settings(ctx, **flags)
    # the security configuration where a control plane is named: not the kubeconfig's
    # current context unasked, as `meshtop posture` reads it
    named = demo or any(c.reaches_kubernetes for c in settings.clusters)
    sim = connect.simulation(services, seed) if demo else None
    sources = connect.connect(settings, sim, security=named)
    snapshot = connect.snapshot(settings, sources)

    def node(text: str) -> str:
        # A full id stands as given: the node may have been quiet in the last minute
        # (an incident an hour ago), and its history is what is asked for.
        if text.count("/") == 2 and text not in snapshot.nodes:
            return text
        return resolve_node(snapshot.nodes, text)

    def label(node_id: str) -> str:
        w = snapshot.nodes.get(node_id)
        return w.label if w is not None else node_id

    src, dst = node(source), node(destination)
    about = subject(snapshot, f"{label(src)} → {label(dst)}", [src], [dst])
    # when the control planes say its routes and Deployments changed (◆), as the console
    planes = change_sources({c: s.control_plane for c, s in sources.clusters.items()})
    detail = asyncio.run(fetch(sources.metrics, about, window_s, planes))
    if fmt is TextOrJson.json:
        from meshtop.export.history_json import render

        sys.stdout.write(render(detail, src, dst))
        return
    from meshtop.detail import authorization
    from meshtop.panels import edge_report
    from meshtop.sanitize import said

    edge_report(snapshot.edge(src, dst), about, detail, settings.thresholds)
    from meshtop.detail import traffic_policy

    calls = snapshot.edge(src, dst)
    policy = traffic_policy(snapshot, [dst], calls.stats if calls else None, snapshot.generated_at)
    sys.stdout.write(
        "\nTraffic policy\n"
        + "".join(f"{'  ' if p.heading else '    '}{said(p.text)}\n" for p in policy)
    )
    readers = {c: s.security for c, s in sources.clusters.items() if s.security is not None}
    lines = asyncio.run(authorization(about, readers, settings.timeout_s))
    sys.stdout.write("\nAuthorization\n" + "".join(f"  {said(line)}\n" for line in lines))
