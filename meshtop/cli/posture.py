"""`meshtop posture`: each namespace's and workload's effective mTLS mode (read from the
cluster's PeerAuthentications, with Istio's precedence) beside the traffic that flows,
what STRICT would refuse, and the configuration that contradicts itself; as text, JSON or
Markdown."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

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
from meshtop.errors import EXIT_BACKEND

if TYPE_CHECKING:  # the report loads inside the command
    from meshtop.report import Report


class PostureFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


def posture(
    ctx: typer.Context,
    fmt: Annotated[
        PostureFormat, typer.Option("--format", "-f", help="text, json or markdown.")
    ] = PostureFormat.text,
    demo: DemoOpt = False,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    clusters: ClustersOpt = None,
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
    context: ContextsOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Show the mesh's security posture: each namespace's and workload's effective mTLS
    mode (PeerAuthentication, with Istio's precedence) beside the traffic over the window,
    the plaintext callers STRICT would refuse, DestinationRules and callers at odds with
    STRICT, and the authorization policies. The configuration is read from the cluster
    of --context (with none, the kubeconfig's current context)."""
    from meshtop.errors import UsageError
    from meshtop.report import Report

    flags = options.backend(
        prometheus, dialect, namespace, prometheus_token_file, prometheus_user,
        prometheus_password_file, prometheus_header, prometheus_ca, insecure, timeout,
    )  # fmt: skip
    if demo:  # the simulated mesh is narrowed here, not by a Prometheus query
        flags["prometheus.namespaces"] = ()
    settings = options.settings(
        ctx, window=window, **flags, **options.kubernetes(context, kubeconfig)
    )
    if clusters and not demo:
        raise UsageError("--clusters simulates a mesh: give it with --demo")
    sim = connect.simulation(services, seed, None, clusters) if demo else None
    sources = connect.connect(settings, sim, security=True)
    snapshot = connect.snapshot(settings, sources)
    configs, unread = connect.security(sources)
    namespaces = tuple(namespace or ())
    report = Report(
        snapshot, settings.thresholds, whole=snapshot, security=configs, namespaces=namespaces
    )
    for cluster, why in unread.items():
        typer.echo(sanitize.said(f"meshtop: {cluster}: {why}"), err=True)
    if fmt is PostureFormat.json:
        text = _json(report, unread)
    elif fmt is PostureFormat.markdown:
        text = _markdown(report)
    else:
        text = _text(report)
    sys.stdout.write(text)
    sys.stdout.flush()
    if namespaces and report.posture is not None and not report.posture.namespaces:
        shown = ", ".join(namespaces)
        typer.echo(sanitize.said(f"meshtop: warning: no workload in {shown}"), err=True)
    if unread:
        raise typer.Exit(EXIT_BACKEND)


def _json(report: Report, unread: dict[str, Any]) -> str:
    from meshtop.export import security
    from meshtop.export.json_report import SCHEMA, one_item_per_line, rfc3339
    from meshtop.units import duration

    snapshot = report.snapshot
    doc = {
        "schema": SCHEMA,
        "generated_at": rfc3339(snapshot.generated_at),
        "window": duration(snapshot.window_s),
        "window_seconds": snapshot.window_s,
        **(security.document(report) or {}),
        "unread": {cluster: str(why) for cluster, why in unread.items()},
    }
    return one_item_per_line(doc)


def _markdown(report: Report) -> str:
    from meshtop import units
    from meshtop.export.markdown_report import modes

    when = report.snapshot.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    window = units.duration(report.snapshot.window_s)
    lines = ["# meshtop security posture", "", f"Generated {when} over a {window} window."]
    lines += modes(report)[1:]  # its own blank line first, as a section of a report
    return "\n".join(lines) + "\n"


def _text(report: Report) -> str:
    """A block per namespace: its mode and traffic, what set it, what STRICT would refuse,
    then its workloads in aligned columns; then the conflicts, notes and policies."""
    from meshtop.export import security

    found = report.posture
    if found is None:
        return "no security configuration was read\n"
    lines: list[str] = []
    breaks = report.strict_would_break
    for n in found.namespaces:
        name = f"{n.cluster}/{n.namespace}" if report.several_clusters else n.namespace
        lines.append(f"{name}: {n.text()}")
        lines.append(f"  set by {n.effective.why()}")
        key = (n.cluster, n.namespace)
        if key in breaks:
            lines.append(f"  STRICT would refuse: {security.refused_text(breaks[key])}")
        rows = [
            (w.workload.name + (" (VM)" if w.entry else ""), w.effective.text(), w.text())
            for w in n.workloads
        ]
        width = [max(len(r[i]) for r in rows) for i in range(2)] if rows else [0, 0]
        lines += [f"  {a:<{width[0]}}  {b:<{width[1]}}  {c.partition(', ')[2]}" for a, b, c in rows]
    said = security.said(found)
    if said:
        lines += ["", *said]
    if found.policies:
        lines += ["", "authorization policies:", *(f"  {p}" for p in found.policies)]
    calls = security.authorizations(report)
    if calls:
        lines += ["", "observed calls they decide:", *(f"  {c}" for c in calls)]
    if found.hosts:
        lines += ["", "service entries:"]
        lines += [
            f"  {h.entry.namespace}/{h.entry.name} ({h.entry.location}): {', '.join(h.entry.hosts)}"
            for h in found.hosts
        ]
    return sanitize.shown("\n".join(lines), newlines=True) + "\n"
