"""The options several commands share, each declared once, and how a command's options
become settings: the config file, the environment, the options given before the command,
then the command's own."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meshtop import sanitize

if TYPE_CHECKING:
    from meshtop.config import Settings

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
ThemeOpt = Annotated[
    str | None, typer.Option("--theme", help="Theme: meshtop, meshtop-light, meshtop-colorblind, …")
]
TimeoutOpt = Annotated[
    str | None, typer.Option("--timeout", help="How long a backend may take, e.g. 10s.")
]

# the simulated mesh
DemoOpt = Annotated[bool, typer.Option("--demo", help="Ask the simulated mesh.")]
# what every command that changes the cluster takes (shift, steer, fault, resilience,
# breaker, mtls)
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Have the server check the change; write nothing.")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Change a route that Flagger or Argo Rollouts steers.")
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

# the metrics backend
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

# the trace backend
TracingOpt = Annotated[
    str | None,
    typer.Option("--tracing", help="Trace backend: jaeger=URL, tempo=URL or zipkin=URL."),
]
TenantOpt = Annotated[
    str | None,
    typer.Option("--tracing-tenant", help="Tenant for a multi-tenant Tempo (X-Scope-OrgID)."),
]

# the clusters: where routes are read from and weights written to
ContextsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        help="The cluster, by kubeconfig context, whose routes are read (and weights "
        "written); repeat it for several clusters.",
    ),
]
KubeconfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        help="The kubeconfig file for --context (default: $KUBECONFIG, ~/.kube/config).",
    ),
]


class RouteKind(StrEnum):
    auto = "auto"
    VirtualService = "VirtualService"
    HTTPRoute = "HTTPRoute"


class TextOrJson(StrEnum):
    text = "text"
    json = "json"


@dataclass
class Given:
    """What the top-level options said, for the commands to merge their own into."""

    config: Path | None = None
    flags: dict[str, Any] = field(default_factory=dict)


def _given(ctx: typer.Context) -> Given:
    return ctx.obj if isinstance(ctx.obj, Given) else Given()


def kubernetes(contexts: list[str] | None, kubeconfig: Path | None) -> dict[str, Any]:
    """`--context` and `--kubeconfig`: one context names the cluster; two or more, the
    clusters of one view."""
    given = tuple(contexts or ())
    return {
        "kubernetes.context": given[0] if len(given) == 1 else None,
        "kubernetes.contexts": given,
        "kubernetes.kubeconfig": kubeconfig,
    }


def cluster_named(ctx: typer.Context, contexts: list[str] | None, kubeconfig: Path | None) -> bool:
    """Whether --context or --kubeconfig was given, to the command or before it: a cluster
    asked for on the command line, not one the environment or the config file name for
    the console (MESHTOP_CONTEXT, [kubernetes])."""
    flags = _given(ctx).flags
    before = flags.get("kubernetes.contexts") or flags.get("kubernetes.kubeconfig")
    return bool(contexts or kubeconfig or before)


def backend(
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
    """The metrics backend's options, as settings keys."""
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


def settings(ctx: typer.Context, **flags: Any) -> Settings:
    """Settings from the config file, the environment, the top-level options and then
    this command's own options."""
    from meshtop.config import load

    given = _given(ctx)
    mine = {k: v for k, v in flags.items() if v not in (None, (), False)}
    loaded = load({**given.flags, **mine}, config_file=given.config)
    for warning in loaded.warnings:  # a secret others can read: said, not refused
        typer.echo(sanitize.said(f"meshtop: warning: {warning}"), err=True)
    return loaded
