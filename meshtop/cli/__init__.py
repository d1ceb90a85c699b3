"""The `meshtop` command: the console, the demo, exports and the simulator's server.
Every error a user can cause ends here as one line on stderr and a documented exit code.
Heavy modules (Textual, networkx, the simulator) load inside the commands that need them,
so `meshtop --help` stays quick."""

from __future__ import annotations

import gc
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meshtop import __version__, sanitize
from meshtop.errors import EXIT_BUG, BackendError, GateFailed, MeshtopError, UsageError

if TYPE_CHECKING:
    from meshtop.config import ClusterConfig, Settings
    from meshtop.model import MeshSnapshot
    from meshtop.sim.sources import Simulation
    from meshtop.sources.kubernetes import KubernetesControlPlane
    from meshtop.sources.protocols import ControlPlane, MetricsSource, TraceSource

app = typer.Typer(
    name="meshtop",
    help="A terminal console for service meshes: live topology, errors, latency, traces "
    "and canary weights. With no command, opens the console.",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
sim_app = typer.Typer(help="The simulated mesh meshtop embeds for demos and tests.")
app.add_typer(sim_app, name="sim")


class Format(StrEnum):
    json = "json"
    markdown = "markdown"
    html = "html"
    csv = "csv"
    dot = "dot"
    mermaid = "mermaid"
    svg = "svg"


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Config file (default: config.toml in your config directory)."),
]
RefreshOpt = Annotated[
    str | None, typer.Option("--refresh", help="How often to refresh, e.g. 2s (default 2s).")
]
WindowOpt = Annotated[
    str | None,
    typer.Option("--window", help="Window for rates and latencies, e.g. 1m (default 1m)."),
]
ServicesOpt = Annotated[
    int | None,
    typer.Option(
        "--services",
        min=1,
        max=20000,
        help="Simulate a generated mesh of N services instead of Bookinfo.",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the generated mesh.")]
ClustersOpt = Annotated[
    int | None,
    typer.Option(
        "--clusters",
        min=1,
        max=3,
        help="Simulate the mesh over 2 or 3 clusters (east, west, south), multi-primary.",
    ),
]
PrometheusOpt = Annotated[
    str | None,
    typer.Option(
        "--prometheus",
        help="Prometheus API URL, with any path prefix (Thanos, Mimir, Cortex, "
        "VictoriaMetrics too).",
    ),
]
DialectOpt = Annotated[
    str | None, typer.Option("--dialect", help="auto (default), istio, ambient or linkerd.")
]
NamespaceOpt = Annotated[
    list[str] | None,
    typer.Option("--namespace", "-n", help="Only calls from or to this namespace; repeatable."),
]
TokenFileOpt = Annotated[
    Path | None,
    typer.Option("--prometheus-token-file", help="File holding a bearer token for Prometheus."),
]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--prometheus-user",
        help="Basic auth user; the password from --prometheus-password-file or "
        "MESHTOP_PROMETHEUS_PASSWORD.",
    ),
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option("--prometheus-password-file", help="File holding the basic auth password."),
]
HeaderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--prometheus-header", help="Extra header 'NAME: VALUE', e.g. X-Scope-OrgID; repeatable."
    ),
]
CaOpt = Annotated[
    Path | None, typer.Option("--prometheus-ca", help="CA bundle to verify Prometheus's TLS.")
]
InsecureOpt = Annotated[
    bool, typer.Option("--insecure", help="Do not verify Prometheus's TLS certificate.")
]
ThemeOpt = Annotated[
    str | None, typer.Option("--theme", help="Theme: meshtop, meshtop-light, meshtop-colorblind, …")
]
TracingOpt = Annotated[
    str | None,
    typer.Option("--tracing", help="Trace backend: jaeger=URL, tempo=URL or zipkin=URL."),
]
TenantOpt = Annotated[
    str | None,
    typer.Option("--tracing-tenant", help="Tenant for a multi-tenant Tempo (X-Scope-OrgID)."),
]
TimeoutOpt = Annotated[
    str | None, typer.Option("--timeout", help="How long a backend may take, e.g. 10s.")
]


@dataclass
class Given:
    """What the top-level options said, for the commands to merge their own into."""

    config: Path | None = None
    flags: dict[str, Any] = field(default_factory=dict)


def _contexts(given: list[str] | None) -> dict[str, Any]:
    """`--context`: one names the cluster; two or more, the clusters of one view."""
    contexts = tuple(given or ())
    return {
        "kubernetes.context": contexts[0] if len(contexts) == 1 else None,
        "kubernetes.contexts": contexts,
    }


def _backend_flags(
    prometheus: str | None,
    dialect: str | None,
    namespace: list[str] | None,
    token_file: Path | None,
    user: str | None,
    password_file: Path | None,
    header: list[str] | None,
    ca: Path | None,
    insecure: bool,
    timeout: str | None,
) -> dict[str, Any]:
    return {
        "prometheus.url": prometheus,
        "prometheus.dialect": dialect,
        "prometheus.namespaces": tuple(namespace or ()),
        "prometheus.token_file": token_file,
        "prometheus.user": user,
        "prometheus.password_file": password_file,
        "prometheus.headers": tuple(header or ()),
        "prometheus.ca_file": ca,
        "prometheus.insecure": insecure,
        "timeout": timeout,
    }


def _settings(ctx: typer.Context, **flags: Any) -> Settings:
    """Settings from the config file, the environment, the top-level options and then
    this command's own options."""
    from meshtop.config import load

    given: Given = ctx.obj if isinstance(ctx.obj, Given) else Given()
    mine = {k: v for k, v in flags.items() if v not in (None, (), False)}
    settings = load({**given.flags, **mine}, config_file=given.config)
    for warning in settings.warnings:  # a secret others can read: said, not refused
        typer.echo(sanitize.said(f"meshtop: warning: {warning}"), err=True)
    return settings


def _simulation(
    services: int | None, seed: int, at: float | None = None, clusters: int | None = None
) -> Simulation:
    """The simulated mesh, on one cluster or `clusters`; at a fixed moment `at`, as
    `--at` asks, else live."""
    from meshtop.sim.sources import Simulation
    from meshtop.sim.topology import DEMO_CLUSTERS, bookinfo, generated, spread

    mesh = generated(services, seed) if services else bookinfo()
    if clusters and clusters > 1:
        mesh = spread(mesh, DEMO_CLUSTERS[:clusters])
    return Simulation(mesh) if at is None else Simulation(mesh, clock=lambda: at)


@dataclass
class Sources:
    metrics: MetricsSource
    control_plane: ControlPlane | None
    simulated: bool
    clock: Callable[[], float]
    traces: TraceSource | None = None


def _sources(
    settings: Settings, sim: Simulation | None, at: float | None = None, *, routes: bool = False
) -> Sources:
    """The metrics (and trace) backends; with `routes`, the control plane too: the
    console's, and an export's over several clusters (each cluster's copies)."""
    if sim is not None:
        return Sources(sim.metrics, sim.control_plane, True, sim.clock, sim.traces)
    from meshtop.sources.prometheus import PrometheusMetrics

    clock = time.time if at is None else (lambda: at)
    clusters = settings.clusters
    own = [c for c in clusters if c.prometheus is not None]
    if own and len(own) != len(clusters):
        raise UsageError(
            f"cluster {next(c.name for c in clusters if c.prometheus is None)} has no "
            "prometheus of its own: give every cluster its own, or none (one aggregated "
            "backend, [prometheus] url)"
        )
    metrics: MetricsSource
    if own:
        from meshtop.federation import FederatedMetrics

        each = {c.name: PrometheusMetrics(c.prometheus, at=at) for c in own if c.prometheus}
        metrics = FederatedMetrics(each) if len(each) > 1 else next(iter(each.values()))
    elif settings.prometheus is None:
        raise UsageError(
            "no metrics backend is configured: give --prometheus URL (or [prometheus] url "
            "in the config file), or --demo for the simulated mesh"
        )
    else:
        metrics = PrometheusMetrics(settings.prometheus, at=at)
    plane = _control_plane(settings) if routes else None
    return Sources(metrics, plane, False, clock, _traces(settings))


def _control_plane(settings: Settings) -> ControlPlane | None:
    """The cluster of [kubernetes] context (or --context), or one control plane per
    cluster of several; None when no cluster is named."""
    namespaces = settings.prometheus.namespaces if settings.prometheus else ()
    if settings.clusters:
        from meshtop.federation import FederatedControlPlane

        planes = _cluster_planes(settings, namespaces)
        return FederatedControlPlane(planes) if len(planes) > 1 else next(iter(planes.values()))
    if settings.kube_context or settings.kubeconfig:
        return _plane(settings, namespaces)
    return None


def _plane(
    settings: Settings,
    namespaces: tuple[str, ...],
    cluster: ClusterConfig | None = None,
) -> KubernetesControlPlane:
    """The Kubernetes control plane of [kubernetes] (or of one of several clusters), with
    the settings' deadline and size cap."""
    from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane

    config = KubeConfig(
        context=settings.kube_context,
        kubeconfig=settings.kubeconfig,
        namespaces=namespaces,
        timeout_s=settings.timeout_s,
        max_response_mb=settings.kube_max_response_mb,
    )
    if cluster is not None:
        config = replace(
            config, context=cluster.context, kubeconfig=cluster.kubeconfig, cluster=cluster.name
        )
    return KubernetesControlPlane(config)


def _cluster_planes(settings: Settings, namespaces: tuple[str, ...]) -> dict[str, Any]:
    """A Kubernetes control plane per configured cluster, by cluster name."""
    return {c.name: _plane(settings, namespaces, c) for c in settings.clusters}


def _traces(settings: Settings) -> TraceSource | None:
    from meshtop.sources.traces import trace_source

    own = {c.name: trace_source(c.tracing) for c in settings.clusters if c.tracing is not None}
    if len(own) > 1:
        from meshtop.federation import FederatedTraces

        return FederatedTraces(own)
    if own:
        return next(iter(own.values()))
    return trace_source(settings.tracing) if settings.tracing is not None else None


def _run_console(sources: Sources, settings: Settings) -> None:
    from meshtop.tui.theme import load_themes, theme_names

    themes = load_themes()
    if settings.theme not in theme_names(themes):
        raise UsageError(
            f"unknown theme {settings.theme!r}; choose one of {', '.join(theme_names(themes))}"
        )
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the console needs a terminal; for scripts use `meshtop export`")
    if os.environ.get("NO_COLOR") == "":  # https://no-color.org: only a value means it
        del os.environ["NO_COLOR"]  # (Textual would turn every colour grey for any)
    from textual.worker import WorkerFailed

    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.terminal import EXIT_TERMINAL_LOST, TerminalWatch

    console = MeshtopApp(
        metrics=sources.metrics,
        control_plane=sources.control_plane,
        settings=settings,
        simulated=sources.simulated,
        clock=sources.clock,
        themes=themes,
        traces=sources.traces,
        # where weights are written: the simulated mesh, or the cluster of --context
        writer=sources.control_plane,
    )
    # A terminal that goes away ends the console, even with SIGHUP ignored (terminal.py).
    watch = TerminalWatch(sys.stdin.fileno(), lambda: console.exit(return_code=EXIT_TERMINAL_LOST))
    try:
        with watch:
            console.run()
    except Exception:
        if not watch.lost:
            raise  # a bug: main() says it in one line
    if watch.lost:  # nobody is there to read a word
        raise typer.Exit(EXIT_TERMINAL_LOST)
    if console.return_code == EXIT_BUG:
        # An exception the console did not handle: MeshtopApp kept Textual's traceback off
        # the screen; main() says it in one line and keeps the traceback in a file.
        error = getattr(console, "_exception", None)  # Textual's record of the first
        if isinstance(error, WorkerFailed):
            error = error.error
        if isinstance(error, MeshtopError):  # ours, but the console should have said it in
            # place and gone on: out here it is a bug all the same, not the user's (exit 2)
            raise RuntimeError(f"{type(error).__name__}: {error}") from error
        raise error if isinstance(error, Exception) else RuntimeError("the console failed")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meshtop {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def console(
    ctx: typer.Context,
    config: ConfigOpt = None,
    refresh: RefreshOpt = None,
    window: WindowOpt = None,
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
    theme: ThemeOpt = None,
    tracing: TracingOpt = None,
    tracing_tenant: TenantOpt = None,
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            help="Read routes from this kubeconfig context (and write weights); repeat it "
            "for one view over several clusters.",
        ),
    ] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option("--kubeconfig", help="The kubeconfig file for --context.")
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Write nothing: no write key, no write command.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Open the console on the configured mesh (--prometheus, or the config file); with
    no backend configured, on the simulated Bookinfo mesh, marked SIMULATED."""
    flags = _backend_flags(
        prometheus, dialect, namespace, prometheus_token_file, prometheus_user,
        prometheus_password_file, prometheus_header, prometheus_ca, insecure, timeout,
    )  # fmt: skip
    ctx.obj = Given(
        config,
        {"refresh": refresh, "window": window, "theme": theme, **flags,
         "tracing.url": tracing, "tracing.tenant": tracing_tenant,
         "read_only": read_only or None,
         **_contexts(context), "kubernetes.kubeconfig": kubeconfig},
    )  # fmt: skip
    if ctx.invoked_subcommand is None:
        settings = _settings(ctx)
        configured = settings.prometheus is not None or any(c.prometheus for c in settings.clusters)
        sim = None if configured else _simulation(None, 1)
        _run_console(_sources(settings, sim, routes=True), settings)


@app.command()
def demo(
    ctx: typer.Context,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    clusters: ClustersOpt = None,
    refresh: RefreshOpt = None,
    window: WindowOpt = None,
    theme: ThemeOpt = None,
) -> None:
    """Open the console on the simulated mesh (Bookinfo, or --services N; on several
    clusters with --clusters N)."""
    settings = _settings(ctx, refresh=refresh, window=window, theme=theme)
    _run_console(_sources(settings, _simulation(services, seed, clusters=clusters)), settings)


@app.command()
def export(
    ctx: typer.Context,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.json,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to FILE (atomically) instead of stdout."),
    ] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Export the simulated mesh.")] = False,
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
            "rps<0.1; SCOPE:EXPR for some workloads (shop/*:error_rate>1%); repeatable.",
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
) -> None:
    """Write one snapshot of the mesh as JSON, Markdown, HTML, CSV, DOT, Mermaid or SVG;
    with --fail-on, exit 1 when an edge breaks a gate."""
    from meshtop.export import renderer
    from meshtop.gates import check, parse_gate
    from meshtop.output import progress, write_report
    from meshtop.report import Report, Selection, scoped, worst

    flags = _backend_flags(
        prometheus, dialect, namespace, prometheus_token_file, prometheus_user,
        prometheus_password_file, prometheus_header, prometheus_ca, insecure, timeout,
    )  # fmt: skip
    if demo:  # the simulated mesh is narrowed here, not by a Prometheus query
        flags["prometheus.namespaces"] = ()
    settings = _settings(ctx, window=window, **flags)
    render = renderer(fmt.value)
    gates = [parse_gate(text) for text in fail_on or ()]
    moment = parse_moment(at) if at is not None else None
    if clusters and not demo:
        raise UsageError("--clusters simulates a mesh: give it with --demo")
    sim = _simulation(services, seed, moment, clusters) if demo else None
    sources = _sources(settings, sim, moment, routes=bool(settings.clusters))
    namespaces = (
        settings.prometheus.namespaces
        if settings.prometheus and not demo
        else tuple(namespace or ())
    )
    chosen = Selection(namespaces=namespaces, top=top, edge=edge)
    with progress(f"asking {sources.metrics.name}…") as say:
        snapshot = _snapshot(settings, sources)
        say(f"rendering {fmt.value}…")
        judged = scoped(snapshot, chosen)  # what gates and the security posture judge
        scope = [f"namespace {n}" for n in namespaces]
        scope += [f"edge {edge[0]} → {edge[1]}"] if edge else []
        scope += [f"the {top} worst edges"] if top else []
        shown = worst(judged, top, settings.thresholds)
        report = Report(shown, settings.thresholds, tuple(scope), whole=judged)
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
    if not judged.edges:
        raise GateFailed("no edges to check: a gate cannot pass on no traffic")
    unmatched = [
        g.text for g in gates if g.scope and not any(g.applies(judged, e) for e in judged.edges)
    ]
    if unmatched:
        raise GateFailed(f"gate {unmatched[0]!r}: its scope matches no edge to check")
    broken = check(judged, gates)
    if broken:
        lines = [f"{len(broken)} gate violation{'s' if len(broken) > 1 else ''}:"]
        lines += [f"  {v.describe(judged)}" for v in broken]
        raise GateFailed("\n".join(lines))


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


class EdgeFormat(StrEnum):
    text = "text"
    json = "json"


def _snapshot(settings: Settings, sources: Sources) -> MeshSnapshot:
    """One refresh; a metrics backend that cannot answer ends the command (exit 3)."""
    import asyncio

    from meshtop.mesh import refresh
    from meshtop.model import SourceState

    snapshot = asyncio.run(
        refresh(
            sources.metrics,
            sources.control_plane,
            window_s=settings.window_s,
            timeout_s=settings.timeout_s,
            clock=sources.clock,
        )
    )
    # no metrics is no report; a control plane out of reach is a warning (no routes from it)
    failed = [
        h for key, h in snapshot.sources.items()
        if h.state is SourceState.FAILED and key.startswith("metrics")
    ]  # fmt: skip
    if failed:
        raise BackendError(failed[0].reason)
    return snapshot


@app.command()
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
        EdgeFormat, typer.Option("--format", "-f", help="text: panels; json: the series.")
    ] = EdgeFormat.text,
    demo: Annotated[bool, typer.Option("--demo", help="Ask the simulated mesh.")] = False,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    prometheus: PrometheusOpt = None,
    dialect: DialectOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Print one edge's panels over a window: rate, errors by kind, latency, response
    codes and flags, mTLS, and its destination's versions side by side. Credentials and
    TLS options come from the config file or go before the command."""
    import asyncio

    from meshtop.detail import fetch, subject
    from meshtop.history import parse_window
    from meshtop.model import resolve_node

    window_s = parse_window(window)
    settings = _settings(ctx, **{"prometheus.url": prometheus, "prometheus.dialect": dialect,
                                 "timeout": timeout})  # fmt: skip
    sources = _sources(settings, _simulation(services, seed) if demo else None)
    snapshot = _snapshot(settings, sources)

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
    detail = asyncio.run(fetch(sources.metrics, about, window_s))
    if fmt is EdgeFormat.json:
        from meshtop.export.history_json import render

        sys.stdout.write(render(detail, src, dst))
        return
    from meshtop.panels import edge_report

    edge_report(snapshot.edge(src, dst), about, detail, settings.thresholds)


def _trace_backend(settings: Settings, demo: bool, services: int | None, seed: int) -> TraceSource:
    if demo:
        return _simulation(services, seed).traces
    found = _traces(settings)
    if found is None:
        raise UsageError(
            "no trace backend is configured: give --tracing jaeger=URL, tempo=URL or "
            "zipkin=URL (or [tracing] in the config file), or --demo"
        )
    return found


@app.command()
def trace(
    ctx: typer.Context,
    trace_id: Annotated[str, typer.Argument(help="The trace id, hex or base64.")],
    fmt: Annotated[
        EdgeFormat, typer.Option("--format", "-f", help="text: the waterfall; json: spans.")
    ] = EdgeFormat.text,
    tracing: TracingOpt = None,
    tracing_tenant: TenantOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="Ask the simulated mesh.")] = False,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    timeout: TimeoutOpt = None,
) -> None:
    """Print one trace as a waterfall, or its normalised spans as JSON."""
    import asyncio

    from meshtop.sources.tracing import user_trace_id

    wanted = user_trace_id(trace_id)
    settings = _settings(ctx, **{"tracing.url": tracing, "tracing.tenant": tracing_tenant,
                                 "timeout": timeout})  # fmt: skip
    source = _trace_backend(settings, demo, services, seed)
    found = asyncio.run(source.get_trace(wanted))
    if fmt is EdgeFormat.json:
        from meshtop.export.trace_json import render

        sys.stdout.write(render(found))
        return
    import shutil

    from meshtop.waterfall import Tree, text

    width = shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 100
    lines = [f"trace {found.trace_id}", *text(Tree(found), width)]
    sys.stdout.write(sanitize.shown("\n".join(lines), newlines=True) + "\n")


@app.command()
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
        EdgeFormat, typer.Option("--format", "-f", help="text: a table; json: the list.")
    ] = EdgeFormat.text,
    tracing: TracingOpt = None,
    tracing_tenant: TenantOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="Ask the simulated mesh.")] = False,
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
    settings = _settings(ctx, **{"tracing.url": tracing, "tracing.tenant": tracing_tenant,
                                 "timeout": timeout})  # fmt: skip
    sim = _simulation(services, seed) if demo else None
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
    if fmt is EdgeFormat.json:
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
    if sim is not None or settings.prometheus is not None:
        snapshot = _snapshot(settings, _sources(settings, sim))
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


class RouteKind(StrEnum):
    auto = "auto"
    VirtualService = "VirtualService"
    HTTPRoute = "HTTPRoute"


@app.command()
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
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Have the server check the change; write nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Change a route that Flagger or Argo Rollouts steers.")
    ] = False,
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            help="The kubeconfig context (default: current); repeat it to change the "
            "route's copy in each of several clusters.",
        ),
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig", help="The kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."
        ),
    ] = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Change a route's weights, safely: show the change, have the server check it (a
    dry run), ask (or --yes), then apply it as a JSON patch that tests the version it was
    read at and each destination changed; a concurrent change is refused, never
    overwritten. Every attempt is written to the audit log."""
    import asyncio

    from meshtop import audit, copies
    from meshtop.canary import parse_set, rule_index
    from meshtop.change import workflow
    from meshtop.errors import EXIT_CONFLICT
    from meshtop.sources.kubernetes import KINDS, route_name

    settings = _settings(ctx, timeout=timeout, **_contexts(context),
                         **{"kubernetes.kubeconfig": kubeconfig})  # fmt: skip
    if settings.read_only:
        raise UsageError("read-only: meshtop writes nothing here (read_only in the config file)")
    namespace, name = route_name(target)
    kinds = list(KINDS) if kind is RouteKind.auto else [kind.value]
    several = bool(settings.clusters)  # one cluster: a mesh of one, said as before
    planes = (
        _cluster_planes(settings, (namespace,)) if several else {"": _plane(settings, (namespace,))}
    )
    stores = {c: workflow.Copy(c, p, p.context) for c, p in planes.items()}
    reading = asyncio.run(workflow.read(stores, kinds, namespace, name))
    if not several and reading.unread:
        raise reading.unread[""]
    for cluster, why in reading.unread.items():
        typer.echo(sanitize.said(f"{cluster}: cannot read {target}: {why}"))
    if not reading.found:
        raise UsageError(f"no cluster has {target}: {next(iter(reading.unread.values()))}")
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

    def ask() -> bool:
        if not sys.stdin.isatty():
            raise UsageError("not a terminal to ask on: give --yes to apply, or --dry-run")
        there = ", ".join(plans) if several else planes[""].context
        return typer.confirm(f"apply to {there}?", default=False)

    outcomes = asyncio.run(
        change.apply(plans, dry_run=dry_run, confirm=None if dry_run or yes else ask)
    )
    for o in outcomes:
        if o.note:
            typer.echo(sanitize.said(f"meshtop: {o.cluster or planes[''].context}: {o.note}"),
                       err=True)  # fmt: skip
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
        typer.echo(sanitize.said(workflow.summary(outcomes, reading.unread)))
    if any(o.result.startswith("conflict") for o in outcomes):
        raise typer.Exit(EXIT_CONFLICT)
    if reading.unread or not all(o.ok for o in outcomes):
        raise typer.Exit(3)


@app.command()
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
    demo: Annotated[bool, typer.Option("--demo", help="Roll out in the simulated mesh.")] = False,
    context: Annotated[
        str | None, typer.Option("--context", help="The kubeconfig context.")
    ] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option("--kubeconfig", help="The kubeconfig file.")
    ] = None,
    prometheus: PrometheusOpt = None,
    dialect: DialectOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Move the canary's weight up a step at a time while its own metrics stay inside the
    gates (Flagger's request-success-rate and request-duration); abort to the stable
    version at the first breach, or when the canary gets no traffic. Exit 0 promoted,
    1 aborted by a gate, 4 stopped because someone else changed the route."""
    import asyncio

    from meshtop.change.workflow import Copy, Workflow
    from meshtop.gates import parse_gate
    from meshtop.rollout import Gates, workloads_behind
    from meshtop.rollout import rollout as run_rollout
    from meshtop.sources.kubernetes import route_name
    from meshtop.units import parse_duration

    settings = _settings(ctx, **{"prometheus.url": prometheus, "prometheus.dialect": dialect,
                                 "timeout": timeout, "kubernetes.kubeconfig": kubeconfig},
                         **_contexts([context] if context else None))  # fmt: skip
    if settings.read_only:
        raise UsageError("read-only: meshtop writes nothing here (read_only in the config file)")
    if settings.clusters and not demo:
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
    sim = _simulation(None, 1) if demo else None
    sources = _sources(settings, sim)
    if sim is not None:
        store: Any = sim.control_plane
        where = "the simulated mesh"
    else:
        store = _plane(settings, (namespace,))
        where = store.context
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("not a terminal to ask on: give --yes to start the rollout")
        if not typer.confirm(f"roll out {to} in {target} on {where}?", default=False):
            return
    snapshot = _snapshot(settings, sources)
    route_kind = "VirtualService" if kind is RouteKind.auto else kind.value

    change = Workflow({where: Copy(where, store, where)}, by="rollout")

    async def go() -> Any:
        return await run_rollout(
            change, sources.metrics, cluster=where, kind=route_kind, namespace=namespace,
            name=name, to=to, step=step, interval_s=interval_s, gates=gates,
            nodes=workloads_behind(snapshot), sleep=asyncio.sleep,
            say=lambda text: typer.echo(sanitize.said(text)), rule=rule,
        )  # fmt: skip

    try:
        outcome = asyncio.run(go())
    except KeyboardInterrupt:
        # say which state the route is in, as read now, so that nothing is left unsaid
        try:
            route, _ = asyncio.run(store.read(route_kind, namespace, name))
            now = ", ".join(
                f"{d.subset or d.host}={d.weight}" for r in route.rules[:1] for d in r.destinations
            )
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


class SimDialect(StrEnum):
    istio = "istio"
    ambient = "ambient"
    linkerd = "linkerd"


@sim_app.command("serve")
def sim_serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0 picks a free one).")
    ] = 15090,
    dialect: Annotated[
        SimDialect,
        typer.Option("--dialect", help="Whose telemetry: Istio sidecars, ambient, Linkerd."),
    ] = SimDialect.istio,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    clusters: ClustersOpt = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="With --clusters: only what this cluster's proxies report, as its own "
            "Prometheus scrapes them.",
        ),
    ] = None,
) -> None:
    """Serve the simulated mesh's traffic as the mesh's proxies would, at /metrics."""
    from meshtop.sim.exposition import MeshExposition
    from meshtop.sim.server import MetricsServer

    sim = _simulation(services, seed, clusters=clusters)
    if cluster is not None and cluster not in sim.mesh.clusters:
        raise UsageError(
            f"no cluster {cluster!r} in the simulated mesh; it has {', '.join(sim.mesh.clusters)}"
        )
    exposition = MeshExposition(sim, dialect.value, cluster=cluster)
    try:
        server = MetricsServer(exposition, host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    typer.echo(f"serving simulated {dialect.value} metrics on {server.url}")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def tune_gc() -> None:
    """A refresh decodes tens of thousands of small dicts that die together. With the
    default threshold (700 allocations) the collector runs hundreds of times per refresh
    and walks everything loaded at start-up each time; freeze that, and collect less often
    (benchmarks/RESULTS.md has the effect)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _crash_report(error: BaseException) -> Path | None:
    """The traceback of a bug, for its report, in a file of its own in the user's state
    directory (`$XDG_STATE_HOME/meshtop` on Linux); None if it cannot be written."""
    import traceback
    from datetime import UTC, datetime

    from platformdirs import user_state_path

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    where = user_state_path("meshtop") / f"crash-{stamp}-{os.getpid()}.txt"
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_text(
            # not the command line: a header flag may carry a token
            f"meshtop {__version__}\n\n" + "".join(traceback.format_exception(error)),
            encoding="utf-8",
        )
    except OSError:
        return None
    return where


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn every user error into one line and an exit code."""
    tune_gc()
    try:
        code = app(args=argv, prog_name="meshtop", standalone_mode=False)
    except typer.TyperException as exc:  # bad flags and values, as the parser words them
        message = exc.format_message().replace("Value error, ", "")
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        print(sanitize.said(f"meshtop: {message}{hint}"), file=sys.stderr)
        sys.exit(exc.exit_code)
    except MeshtopError as exc:
        print(sanitize.said(f"meshtop: {exc}"), file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    except Exception as exc:  # a bug: said in one line, and never exit 1 (a failed gate)
        said = sanitize.said(" ".join(f"{type(exc).__name__}: {exc}".split()))
        report = _crash_report(exc)
        kept = f"the traceback is in {report}; " if report is not None else ""
        print(f"meshtop: unexpected error, a bug in meshtop: {said} ({kept}please report it)",
              file=sys.stderr)  # fmt: skip
        sys.exit(EXIT_BUG)
    sys.exit(code if isinstance(code, int) else 0)
