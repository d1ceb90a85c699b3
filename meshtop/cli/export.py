"""`meshtop export`: one snapshot of the mesh as a report, and the gates a CI job checks."""

from __future__ import annotations

import math
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from meshtop import connect, sanitize
from meshtop.cli import options
from meshtop.cli.options import (
    CaOpt,
    ClustersOpt,
    ContextsOpt,
    DemoOpt,
    DialectOpt,
    HeaderOpt,
    InsecureOpt,
    KubeconfigOpt,
    NamespaceOpt,
    PasswordFileOpt,
    PrometheusOpt,
    SeedOpt,
    ServicesOpt,
    TimeoutOpt,
    TokenFileOpt,
    UserOpt,
    WindowOpt,
)
from meshtop.errors import GateFailed, UsageError

if TYPE_CHECKING:
    from meshtop.posture import SecurityConfig


class Format(StrEnum):
    json = "json"
    markdown = "markdown"
    html = "html"
    csv = "csv"
    dot = "dot"
    mermaid = "mermaid"
    svg = "svg"


def export(
    ctx: typer.Context,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.json,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to FILE (atomically) instead of stdout."),
    ] = None,
    demo: DemoOpt = False,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    clusters: ClustersOpt = None,
    window: WindowOpt = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="A past moment: 2026-11-25T10:00:00Z, epoch seconds, or -1h (ago)."
        ),
    ] = None,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Only the N worst edges.")] = None,
    edge: Annotated[
        tuple[str, str] | None,
        typer.Option("--edge", help="Only the edge SOURCE DESTINATION.", metavar="SRC DST"),
    ] = None,
    fail_on: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 when an edge breaks EXPR: error_rate>1%, p99>500ms, mtls<100%, "
            "rps<0.1, plaintext>0; SCOPE:EXPR for some workloads (shop/*:error_rate>1%), "
            "EXPR ns=NS for the calls into a namespace; mtls-mode!=STRICT ns=NS for the "
            "workloads' modes (with --context or --demo); repeatable.",
        ),
    ] = None,
    prometheus: PrometheusOpt = None,
    dialect: DialectOpt = None,
    namespace: NamespaceOpt = None,
    prometheus_token_file: TokenFileOpt = None,
    prometheus_user: UserOpt = None,
    prometheus_password_file: PasswordFileOpt = None,
    prometheus_header: HeaderOpt = None,
    prometheus_ca: CaOpt = None,
    insecure: InsecureOpt = False,
    timeout: TimeoutOpt = None,
    context: ContextsOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Write one snapshot of the mesh as JSON, Markdown, HTML, CSV, DOT, Mermaid or SVG,
    with the routes of the cluster of --context (or of each); with --fail-on, exit 1 when
    an edge breaks a gate."""
    from meshtop.export import renderer
    from meshtop.gates import check, check_faults, check_modes, parse_gate
    from meshtop.output import progress, write_report
    from meshtop.report import Report, Selection, scoped, worst

    flags = options.backend(
        prometheus, dialect, namespace, prometheus_token_file, prometheus_user,
        prometheus_password_file, prometheus_header, prometheus_ca, insecure, timeout,
    )  # fmt: skip
    if demo:  # the simulated mesh is narrowed here, not by a Prometheus query
        flags["prometheus.namespaces"] = ()
    settings = options.settings(
        ctx, window=window, **flags, **options.kubernetes(context, kubeconfig)
    )
    render = renderer(fmt.value)
    gates = [parse_gate(text) for text in fail_on or ()]
    moment = parse_moment(at) if at is not None else None
    if clusters and not demo:
        raise UsageError("--clusters simulates a mesh: give it with --demo")
    sim = connect.simulation(services, seed, moment, clusters) if demo else None
    # the routes of a cluster the command line names, or of each of several; not of the
    # console's cluster in MESHTOP_CONTEXT or [kubernetes]: an export asks Kubernetes only
    # when told to
    routes = options.cluster_named(ctx, context, kubeconfig) or settings.several
    routes = routes or any(g.on_routes for g in gates)  # a fault gate reads the routes
    sources = connect.connect(settings, sim, moment, routes=routes)
    namespaces = settings.namespaces if not demo else tuple(namespace or ())
    configs = _security(sources, any(g.on_workloads for g in gates))
    chosen = Selection(namespaces=namespaces, top=top, edge=edge)
    with progress(f"asking {sources.metrics.name}…") as say:
        snapshot = connect.snapshot(settings, sources)
        say(f"rendering {fmt.value}…")
        judged = scoped(snapshot, chosen)  # what gates and the security posture judge
        scope = [f"namespace {n}" for n in namespaces]
        scope += [f"edge {edge[0]} → {edge[1]}"] if edge else []
        scope += [f"the {top} worst edges"] if top else []
        shown = worst(judged, top, settings.thresholds)
        report = Report(shown, settings.thresholds, tuple(scope), whole=judged,
                        security=configs, namespaces=namespaces)  # fmt: skip
        text = render(report)
        if output is not None:
            say(f"writing {output}…")
            write_report(output, text)
    # the report goes to stdout only once the spinner is gone from the terminal
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    for h in snapshot.sources.values():
        if h.reason:  # fresh, with a warning from the backend: say it, carry on
            typer.echo(f"meshtop: warning: {sanitize.said(h.reason)}", err=True)
    if not judged.edges and (namespaces or edge) and not gates:
        typer.echo(f"meshtop: warning: no edge matched {sanitize.said(', '.join(scope))}", err=True)
    if not gates:
        return
    if any(g.on_routes for g in gates):
        plane = [h for k, h in snapshot.sources.items() if k.startswith("control_plane")]
        if not plane or any(h.state.value in ("failed", "absent") for h in plane):
            raise GateFailed("a fault gate reads the routes, and the control plane did not answer")
    if not judged.edges and not all(g.on_routes for g in gates):
        raise GateFailed("no edges to check: a gate cannot pass on no traffic")
    workloads = report.posture.workloads if report.posture is not None else ()
    for g in gates:
        if not (g.scope or g.namespace):
            continue
        if g.on_routes:  # a namespace with no route injects no fault: the gate holds
            continue
        if g.on_workloads and not any(g.judges(w) for w in workloads):
            raise GateFailed(f"gate {g.text!r}: its scope matches no workload to check")
        if not g.on_workloads and not any(g.applies(judged, e) for e in judged.edges):
            raise GateFailed(f"gate {g.text!r}: its scope matches no edge to check")
    said = [v.describe(judged) for v in check(judged, gates)]
    if report.posture is not None:
        said += [v.describe() for v in check_modes(report.posture, gates)]
    said += [sanitize.said(v.describe()) for v in check_faults(snapshot, gates)]
    if said:
        lines = [f"{len(said)} gate violation{'s' if len(said) > 1 else ''}:"]
        lines += [f"  {line}" for line in said]
        raise GateFailed("\n".join(lines))


def _security(sources: connect.Sources, needed: bool) -> dict[str, SecurityConfig] | None:
    """Each cluster's security configuration, where there is a control plane to read it
    from; a cluster that cannot answer is a warning (the report has no modes from it),
    unless a gate needs the modes."""
    from meshtop.errors import MeshtopError

    if not any(s.security for s in sources.clusters.values()):
        if needed:
            raise UsageError(
                "--fail-on mtls-mode judges the mesh's configuration: give --context (or "
                "--kubeconfig) for the cluster, or --demo"
            )
        return None
    try:
        configs, unread = connect.security(sources)
    except MeshtopError as exc:
        if needed:
            raise
        typer.echo(sanitize.said(f"meshtop: warning: no mTLS modes: {exc}"), err=True)
        return None
    for cluster, why in unread.items():
        if needed:
            raise why
        typer.echo(sanitize.said(f"meshtop: warning: {cluster}: no mTLS modes: {why}"), err=True)
    return configs


def parse_moment(text: str) -> float:
    """`--at`: RFC 3339 (`2026-11-25T10:00:00Z`), seconds since the epoch, or `-1h`
    (that long ago). Raises `UsageError` for anything else, or a moment in the future."""
    from datetime import datetime

    from meshtop.units import parse_duration

    now = time.time()
    value: float | None = None
    if text.startswith("-"):
        try:
            value = now - parse_duration(text[1:], what="--at")
        except UsageError:
            raise UsageError(f"--at {text!r}: write -1h, -30m, … (that long ago)") from None
    else:
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
            except ValueError:
                value = None
            else:
                if parsed.tzinfo is None:
                    raise UsageError(f"--at {text!r}: give a time zone, e.g. Z for UTC") from None
                value = parsed.timestamp()
    if value is None:
        raise UsageError(
            f"--at {text!r} is not a time: write 2026-11-25T10:00:00Z, epoch seconds, or -1h"
        )
    if not math.isfinite(value) or value < EARLIEST:
        raise UsageError(f"--at {text!r} is not a moment a mesh was running")
    if value > now + 60:
        raise UsageError(f"--at {text!r} is in the future")
    return value


EARLIEST = 946_684_800.0  # 2000-01-01: before it, a number is a mistake, not a moment
