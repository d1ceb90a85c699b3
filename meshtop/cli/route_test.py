"""`meshtop route-test NAMESPACE/NAME REQUEST…`: which rule of a route takes a request
and where it sends it, with why each earlier rule did not (Envoy's semantics: a
VirtualService's rules in order, whole-value regexes; an HTTPRoute's most specific
match). Read-only: it writes nothing, so `--read-only` allows it. The rules in words
here are also what `meshtop steer` shows after a change."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from meshtop import sanitize
from meshtop.cli import applying, options
from meshtop.cli.options import ContextsOpt, DemoOpt, KubeconfigOpt, RouteKind, TimeoutOpt
from meshtop.errors import BackendError


def _destinations(rule: Any, kind: str) -> str:
    dests = rule.destinations
    if not dests:
        return "nowhere (no destination)"

    def one(d: Any) -> str:
        name = d.subset or d.host if kind == "VirtualService" else d.host
        if len(dests) == 1:
            return str(name)
        return f"{name} {d.weight}%" if kind == "VirtualService" else f"{name} (weight {d.weight})"

    return ", ".join(one(d) for d in dests)


def rule_lines(obj: Mapping[str, Any], spec: Mapping[str, Any] | None = None) -> list[str]:
    """A route's rules in words, in precedence order (`spec`: as it would be, else as
    read): `0. header user-agent ~ … → v3`, the default rule as `every other request`,
    each rule's fault, timeout and retries after it."""
    from meshtop.sources.routing import route_from_httproute, route_from_virtual_service

    kind = str(obj.get("kind", ""))
    namespace = str((obj.get("metadata") or {}).get("namespace", ""))
    view = {**obj, "spec": dict(spec if spec is not None else obj.get("spec") or {})}
    parse = route_from_virtual_service if kind == "VirtualService" else route_from_httproute
    route = parse(view, "", namespace)
    head = (
        "its rules, in the order Envoy tries them:"
        if kind == "VirtualService"
        else "its rules (of the matches that hold, the most specific wins, not the first):"
    )
    lines = [head]
    for i, rule in enumerate(route.rules):
        when = " or ".join(f"({m})" if len(rule.matches) > 1 else m for m in rule.matches)
        name = f" [{rule.name}]" if rule.name else ""
        policy = "".join(f"; {w}" for w in rule.policy.words())
        lines.append(
            f"  {i}.{name} {when or 'every other request'} → {_destinations(rule, kind)}{policy}"
        )
    if len(lines) == 1:
        lines.append("  none: every request is answered 404 (NR)")
    return lines


def verdict_lines(obj: Mapping[str, Any], request_text: str) -> list[str]:
    """Which rule takes the request (`parse_request`'s words), where it sends it, and why
    each rule before it did not."""
    from meshtop.policy_view import route_verdict

    verdict = route_verdict(obj, request_text)
    kind = verdict.route.kind
    lines = []
    if verdict.rule is None:
        lines.append("no rule takes it: Envoy answers 404 (NR)")
    else:
        rule = verdict.route.rules[verdict.rule]
        when = " or ".join(rule.matches) or "every other request"
        name = f" [{rule.name}]" if rule.name else ""
        lines.append(f"rule {verdict.rule}{name} takes it ({when}) → {_destinations(rule, kind)}")
        if rule.policy.fault is not None:
            lines.append(f"  with an injected fault: {rule.policy.fault.words()}")
    # each rule passed over, and why: "rule 0: header user-agent does not match (…)"
    lines += [f"  passed over {why}" if why.startswith("rule ") else f"  {why}"
              for why in verdict.passed]  # fmt: skip
    return lines


def route_test(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The route: NAMESPACE/NAME.")],
    request: Annotated[
        list[str] | None,
        typer.Argument(
            help='The request: NAME=VALUE a header (user-agent="Mozilla/5.0 (iPhone; …)"), '
            "uri=/path?q=1, method=POST, query:NAME=VALUE, source:LABEL=VALUE; "
            "none: GET / with no headers.",
        ),
    ] = None,
    kind: Annotated[
        RouteKind,
        typer.Option("--kind", help="VirtualService, HTTPRoute, or auto (whichever exists)."),
    ] = RouteKind.auto,
    demo: DemoOpt = False,
    context: ContextsOpt = None,
    kubeconfig: KubeconfigOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Say which rule of a route takes a request and where it sends it, and why each
    earlier rule does not, as Envoy decides: a VirtualService's rules in order, a regex
    matching the whole value; an HTTPRoute's most specific match. Writes nothing."""
    from meshtop.sources.kubernetes import KINDS, route_name
    from meshtop.steering.match import parse_request

    text = shlex.join(request or ())
    parse_request(text)  # a request that cannot be read is said before anything is asked
    namespace, _ = route_name(target)
    settings = options.settings(ctx, timeout=timeout, **options.kubernetes(context, kubeconfig))
    kinds = list(KINDS) if kind is RouteKind.auto else [kind.value]
    copies, _ = applying.edit_copies(settings, (namespace,), demo)
    objects = applying.read_objects(copies, kinds, target)
    several = list(copies) != [""]
    for cluster, obj in objects.objects().items():
        meta = obj.get("metadata") or {}
        ref = f"{obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}"
        lines = [f"{cluster}: {ref}" if several else ref, *rule_lines(obj)]
        lines += ["this request:", *("  " + line for line in verdict_lines(obj, text))]
        typer.echo(sanitize.said("\n".join(lines)))
    if objects.unread:
        raise typer.Exit(BackendError.exit_code)
