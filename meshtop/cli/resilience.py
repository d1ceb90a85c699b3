"""`meshtop resilience NAMESPACE/NAME`: a route rule's timeout and retries, and `meshtop
breaker NAMESPACE/NAME`: a DestinationRule's circuit breaker (connection pool and outlier
detection, the host's or a subset's) (issue 21); each through the change workflow
(shown, checked by the server, confirmed, audited, written only if still as read)."""

from __future__ import annotations

from typing import Annotated, Any

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


def _seconds(text: str | None, flag: str, *, off: bool = False) -> float | None:
    """A duration given to `flag` in seconds (`off`: `OFF`, where `off` is allowed)."""
    from meshtop.steering import values
    from meshtop.steering.edit import OFF

    if text is None:
        return None
    if off and text.strip().lower() == "off":
        return OFF
    return values.seconds(text, flag)


def _edit(
    ctx: typer.Context,
    target: str,
    kinds: list[str],
    make: Any,
    *,
    by: str,
    dry_run: bool,
    yes: bool,
    force: bool,
    demo: bool,
    context: list[str] | None,
    kubeconfig: Any,
    timeout: str | None = None,
) -> None:
    from meshtop.change import edits
    from meshtop.sources.kubernetes import route_name

    settings = options.settings(ctx, timeout=timeout, **options.kubernetes(context, kubeconfig))
    if settings.read_only:
        raise UsageError("read-only: meshtop writes nothing here (read_only in the config file)")
    make.check()  # every value said before anything is asked
    namespace, _ = route_name(target)
    copies, _ = applying.edit_copies(settings, (namespace,), demo)
    objects = applying.read_objects(copies, kinds, target)
    plans = edits.plans(objects.objects(), make)
    applying.edit_and_say(copies, plans, objects, by=by, dry_run=dry_run, yes=yes, force=force)


class _Resilience:
    def __init__(self, rule: str | None, timeout: str | None, retries: str | None,
                 per_try: str | None, retry_on: str | None) -> None:  # fmt: skip
        self.rule, self.raw = rule, (timeout, retries, per_try, retry_on)

    def check(self) -> None:
        from meshtop.steering import values

        timeout, retries, per_try, retry_on = self.raw
        self.timeout = _seconds(timeout, "--timeout", off=True)
        self.attempts = None if retries is None else values.attempts(retries)
        self.per_try = _seconds(per_try, "--per-try-timeout")
        self.retry_on = None if retry_on is None else values.retry_on(retry_on)
        if all(v is None for v in (self.timeout, self.attempts, self.per_try, self.retry_on)):
            raise UsageError("give --timeout and/or --retries, --per-try-timeout, --retry-on")
        if self.attempts is not None and self.attempts <= 0 and (self.per_try or self.retry_on):
            raise UsageError("--per-try-timeout and --retry-on need retries: --retries N")

    def __call__(self, obj: dict[str, Any], cluster: str) -> Any:
        from meshtop.steering.edit import resilience

        return resilience(obj, cluster, rule=self.rule, timeout=self.timeout,
                          attempts=self.attempts, per_try_timeout=self.per_try,
                          retry_on=self.retry_on)  # fmt: skip


def resilience(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The route: NAMESPACE/NAME.")],
    rule: Annotated[
        str | None,
        typer.Option("--rule", help="Which rule, by name or index (default: the default rule)."),
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            help="The rule's request timeout (2s), or off (none, Istio's "
            "default). meshtop's own deadline goes before the command: meshtop "
            "--timeout 10s resilience …",
        ),
    ] = None,
    retries: Annotated[
        str | None,
        typer.Option("--retries", help="Attempts (3), off (no retries), or default (Istio's: 2)."),
    ] = None,
    per_try_timeout: Annotated[
        str | None, typer.Option("--per-try-timeout", help="Each attempt's timeout (500ms).")
    ] = None,
    retry_on: Annotated[
        str | None,
        typer.Option("--retry-on", help="What to retry on, as Envoy says it: 5xx,reset,…"),
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
) -> None:
    """Set a route rule's timeout and retries (a VirtualService's `timeout` and `retries`;
    an HTTPRoute's request timeout): shown as a diff, checked by the server (a dry run),
    confirmed (or --yes), written only if the route is still as read, audited."""
    from meshtop.sources.kubernetes import KINDS

    kinds = list(KINDS) if kind is RouteKind.auto else [kind.value]
    make = _Resilience(rule, timeout, retries, per_try_timeout, retry_on)
    _edit(ctx, target, kinds, make, by="resilience", dry_run=dry_run, yes=yes, force=force,
          demo=demo, context=context, kubeconfig=kubeconfig)  # fmt: skip


class _Breaker:
    def __init__(self, subset: str, clear: bool, counts: dict[str, int | None],
                 durations: dict[str, str | None]) -> None:  # fmt: skip
        self.subset, self.clear, self.counts, self.durations = subset, clear, counts, durations

    def check(self) -> None:
        flags = {"interval": "--interval", "base_ejection": "--ejection"}
        self.settings: dict[str, float | int | None] = {
            **self.counts,
            **{k: _seconds(v, flags[k]) for k, v in self.durations.items()},
        }
        given = any(v is not None for v in self.settings.values())
        if self.clear and given:
            raise UsageError("--clear removes the circuit breaker: give no setting with it")
        if not self.clear and not given:
            raise UsageError(
                "give a connection pool setting (--max-connections, --max-pending, "
                "--max-requests, --max-retries), an outlier detection one "
                "(--consecutive-errors, --interval, --ejection, --max-ejection), or --clear"
            )

    def __call__(self, obj: dict[str, Any], cluster: str) -> Any:
        from meshtop.steering.edit import circuit_breaker

        return circuit_breaker(obj, cluster, subset=self.subset, clear=self.clear,
                               **self.settings)  # fmt: skip


def _count(flag: str, help_: str, least: int = 1, most: int | None = None) -> Any:
    return typer.Option(flag, min=least, max=most, help=help_)


def breaker(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The DestinationRule: NAMESPACE/NAME.")],
    subset: Annotated[
        str, typer.Option("--subset", help="One subset's policy (default: the whole host's).")
    ] = "",
    max_connections: Annotated[
        int | None, _count("--max-connections", "TCP connections to the host, at most.")
    ] = None,
    max_pending: Annotated[
        int | None, _count("--max-pending", "Requests waiting for a connection, at most.")
    ] = None,
    max_requests: Annotated[
        int | None, _count("--max-requests", "Requests in flight to the host, at most.")
    ] = None,
    max_retries: Annotated[
        int | None, _count("--max-retries", "Retries in flight to the host, at most.", 0)
    ] = None,
    consecutive_errors: Annotated[
        int | None, _count("--consecutive-errors", "5xx in a row that eject a host.")
    ] = None,
    interval: Annotated[
        str | None, typer.Option("--interval", help="How often hosts are judged (10s).")
    ] = None,
    ejection: Annotated[
        str | None, typer.Option("--ejection", help="The least time a host is ejected (30s).")
    ] = None,
    max_ejection: Annotated[
        int | None, _count("--max-ejection", "The share of hosts ejected at most, percent.", 0, 100)
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove the connection pool and outlier detection.")
    ] = False,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    force: ForceOpt = False,
    demo: DemoOpt = False,
    context: ContextsOpt = None,
    kubeconfig: KubeconfigOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Set a DestinationRule's circuit breaker, for its host or one --subset: the
    connection pool (Envoy answers 503 UO past it) and outlier detection (hosts ejected
    after errors; UH when none is left). Shown as a diff, checked by the server (a dry
    run), confirmed (or --yes), written only if it is still as read, audited."""
    counts = {
        "max_connections": max_connections,
        "max_pending": max_pending,
        "max_requests": max_requests,
        "max_retries": max_retries,
        "consecutive_errors": consecutive_errors,
        "max_ejection_percent": max_ejection,
    }
    make = _Breaker(subset, clear, counts, {"interval": interval, "base_ejection": ejection})
    _edit(
        ctx,
        target,
        ["DestinationRule"],
        make,
        by="resilience",
        dry_run=dry_run,
        yes=yes,
        force=force,
        demo=demo,
        context=context,
        kubeconfig=kubeconfig,
        timeout=timeout,
    )
