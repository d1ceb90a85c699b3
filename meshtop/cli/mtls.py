"""`meshtop mtls NAMESPACE[/WORKLOAD] --strict|--permissive`: set the mTLS mode of a
namespace or one workload (its PeerAuthentication), through the change workflow:
previewed with the workloads whose mode changes and the plaintext callers STRICT would
refuse, checked by the server, confirmed, audited, written only if the policy is still
as it was read."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from meshtop import connect, sanitize
from meshtop.cli import applying, options
from meshtop.cli.options import (
    ContextsOpt,
    DemoOpt,
    DryRunOpt,
    KubeconfigOpt,
    PrometheusOpt,
    TimeoutOpt,
    WindowOpt,
    YesOpt,
)
from meshtop.errors import EXIT_BACKEND, BackendError, MeshtopError, UsageError

if TYPE_CHECKING:
    from meshtop.change.workflow import PolicyCopy
    from meshtop.config import Settings
    from meshtop.model import MeshSnapshot
    from meshtop.posture import SecurityConfig


def mtls(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(help="NAMESPACE, or NAMESPACE/WORKLOAD for one workload.")
    ],
    strict: Annotated[bool, typer.Option("--strict", help="Mutual TLS only.")] = False,
    permissive: Annotated[
        bool, typer.Option("--permissive", help="Mutual TLS and plain text.")
    ] = False,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    demo: DemoOpt = False,
    window: WindowOpt = None,
    prometheus: PrometheusOpt = None,
    timeout: TimeoutOpt = None,
    context: ContextsOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Set the mTLS mode of a namespace (its namespace-wide PeerAuthentication) or of one
    workload (a PeerAuthentication that selects it), safely: show the workloads whose
    mode changes and, for STRICT, the plaintext callers it would refuse (from the metrics
    of --prometheus over --window; none given: not known), have the server check it (a
    dry run), ask (or --yes), then write it only if the policy is still as it was read;
    every attempt is in the audit log. With no --context, the kubeconfig's current
    context."""
    from meshtop.change import workflow
    from meshtop.posture import MtlsMode, plan_mode
    from meshtop.sources.kubernetes import check_names

    if strict == permissive:
        raise UsageError("give one of --strict and --permissive")
    mode = MtlsMode.STRICT if strict else MtlsMode.PERMISSIVE
    namespace, _, workload = target.partition("/")
    if not namespace or "/" in workload or (target.endswith("/") and not workload):
        raise UsageError(f"{target!r}: give NAMESPACE or NAMESPACE/WORKLOAD")
    check_names(namespace, workload or "x")
    flags = {"prometheus.url": prometheus, "timeout": timeout}
    settings = options.settings(
        ctx, window=window, **flags, **options.kubernetes(context, kubeconfig)
    )
    if settings.read_only:
        raise UsageError("read-only: meshtop writes nothing here (read_only in the config file)")
    stores, snapshot = _stores(settings, namespace, demo)
    several = len(stores) > 1
    answers = asyncio.run(_read(stores))
    unread = {c: a for c, a in answers.items() if isinstance(a, MeshtopError)}
    if unread and not several:
        raise unread[""]
    for cluster, why in unread.items():
        typer.echo(sanitize.said(f"{cluster}: cannot read its PeerAuthentications: {why}"))
    configs = {c: a for c, a in answers.items() if not isinstance(a, MeshtopError)}
    if not configs:
        raise BackendError(f"no cluster could be read: {next(iter(unread.values()))}")
    plans = {
        c: plan_mode(snapshot or _nothing(settings), config, c, namespace, workload, mode)
        for c, config in configs.items()
    }
    if snapshot is None:  # no metrics: what STRICT would refuse is not known
        from dataclasses import replace

        plans = {c: replace(p, observed=False) for c, p in plans.items()}
    for cluster, plan in plans.items():
        pad = "  " if several else ""
        if several:
            typer.echo(f"{cluster}:")
        typer.echo(sanitize.said("\n".join(pad + line for line in plan.preview())))
    if not any(p.changed for p in plans.values()):
        typer.echo(f"nothing to change: {target} is {mode.value} already")
        if unread:
            raise typer.Exit(EXIT_BACKEND)
        return

    change = workflow.Workflow({c: stores[c] for c in plans}, by="mtls")
    here = stores[""].context if "" in stores else ""
    applying.apply_and_say(change, plans, here, dry_run=dry_run, yes=yes, unread=unread)


def _stores(
    settings: Settings, namespace: str, demo: bool
) -> tuple[dict[str, PolicyCopy], MeshSnapshot | None]:
    """Where each cluster's PeerAuthentications are read and written, and the traffic
    to judge the change by (None: no metrics backend is configured)."""
    from meshtop.change.workflow import PolicyCopy
    from meshtop.sources.security import KubernetesPolicies

    if demo:
        sim = connect.simulation(None, 1)
        sources = connect.connect(settings, sim)
        stores = {c: PolicyCopy(c, sim.security[c], "the simulated mesh") for c in sim.security}
        return stores, connect.snapshot(settings, sources)
    planes = connect.stores(settings, (namespace,))
    stores = {c: PolicyCopy(c, KubernetesPolicies(p), p.context) for c, p in planes.items()}
    if not any(c.prometheus for c in settings.clusters):
        return stores, None
    return stores, connect.snapshot(settings, connect.connect(settings))


async def _read(stores: dict[str, PolicyCopy]) -> dict[str, SecurityConfig | MeshtopError]:
    """Each cluster's security configuration, or why it could not be read."""
    answers = await asyncio.gather(
        *(copy.store.security() for copy in stores.values()), return_exceptions=True
    )
    out: dict[str, SecurityConfig | MeshtopError] = {}
    for cluster, answer in zip(stores, answers, strict=True):
        if isinstance(answer, BaseException) and not isinstance(answer, MeshtopError):
            raise answer  # a bug, not the cluster's answer
        out[cluster] = answer
    return out


def _nothing(settings: Settings) -> MeshSnapshot:
    """A snapshot with no traffic, for a change judged without metrics."""
    from datetime import UTC, datetime

    from meshtop.model import MeshSnapshot

    return MeshSnapshot(datetime.now(UTC), settings.window_s, {}, (), (), {})
