"""Turns Istio `VirtualService` and Gateway API `HTTPRoute` objects (as the Kubernetes API
serves them, or as YAML manifests hold them) into `Route`s, match conditions in words; and
back: the JSON patch that writes a weight plan to the same paths it was read from."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from meshtop.canary import PERCENT, Plan
from meshtop.errors import BackendError, UsageError
from meshtop.model import Route, RouteRule, WeightedDestination

_OPS = {"exact": "=", "prefix": "^=", "regex": "~"}


def _condition(field: str, spec: Any) -> str:
    """`{"exact": "jason"}` under `headers.end-user` becomes `header end-user = jason`."""
    if isinstance(spec, Mapping):
        for op, symbol in _OPS.items():
            if op in spec:
                return f"{field} {symbol} {spec[op]}"
    return f"{field} = {spec}"


def _describe_istio_match(match: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for key, value in match.items():
        if key in ("headers", "queryParams", "withoutHeaders") and isinstance(value, Mapping):
            word = {"headers": "header", "queryParams": "query", "withoutHeaders": "no header"}
            parts.extend(_condition(f"{word[key]} {name}", v) for name, v in value.items())
        elif key == "sourceLabels" and isinstance(value, Mapping):
            parts.extend(f"source {k} = {v}" for k, v in value.items())
        elif key in ("uri", "scheme", "method", "authority"):
            parts.append(_condition(key, value))
        elif key == "name":
            continue
        else:
            parts.append(f"{key} = {value}")
    return " and ".join(parts)


def _metadata(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise UsageError(f"{obj.get('kind', 'resource')} without metadata.name")
    return str(name), str(meta.get("namespace", "")), str(meta.get("resourceVersion", ""))


def _weight(value: Any, default: int, where: str) -> int:
    """A destination's weight as the cluster has it: a whole number (the CRD's schema says
    so, but an API server without it, or an emulator, may serve anything)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise BackendError(f"{where}: weight {value!r} is not a whole number from 0")
    return value


def _host(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BackendError(f"{where}: a destination without a host")
    return value


def _malformed(parse: Callable[[Mapping[str, Any], str, str], Route]) -> Callable[..., Route]:
    """A route the cluster serves malformed is a backend's answer gone wrong (exit 3, or
    that route flagged on its own), never a crash: a missing key or a wrong type in it
    becomes a `BackendError` that names the route."""

    def parsed(obj: Mapping[str, Any], cluster: str, default_namespace: str) -> Route:
        try:
            return parse(obj, cluster, default_namespace)
        except BackendError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            meta = obj.get("metadata") if isinstance(obj, Mapping) else None
            name = meta.get("name", "?") if isinstance(meta, Mapping) else "?"
            kind = obj.get("kind", "route") if isinstance(obj, Mapping) else "route"
            what = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
            raise BackendError(f"{kind} {default_namespace}/{name} is malformed: {what}") from None

    return parsed


@_malformed
def route_from_virtual_service(
    obj: Mapping[str, Any], cluster: str, default_namespace: str
) -> Route:
    name, namespace, version = _metadata(obj)
    where = f"VirtualService {namespace or default_namespace}/{name}"
    spec = obj.get("spec") or {}
    rules: list[RouteRule] = []
    for http in spec.get("http") or []:
        destinations = tuple(
            WeightedDestination(
                host=_host(d["destination"].get("host"), where),
                subset=str(d["destination"].get("subset", "")),
                # A single destination without a weight takes all traffic.
                weight=_weight(d.get("weight"), 100 if len(http["route"]) == 1 else 0, where),
                port=(d["destination"].get("port") or {}).get("number"),
            )
            for d in http.get("route") or []
        )
        matches = tuple(_describe_istio_match(m) for m in http.get("match") or [])
        rules.append(RouteRule(destinations, matches, str(http.get("name", ""))))
    return Route(
        kind="VirtualService",
        cluster=cluster,
        namespace=namespace or default_namespace,
        name=name,
        hosts=tuple(str(h) for h in spec.get("hosts") or []),
        rules=tuple(rules),
        resource_version=version,
        steered_by=owner(obj) or "",
    )


def _describe_gateway_match(match: Mapping[str, Any]) -> str:
    parts: list[str] = []
    path = match.get("path")
    # a prefix of / is every path: the CRD's default for a match, and for a rule written
    # without matches (the API server serves it so); said as no condition at all
    if path and (path.get("type", "PathPrefix"), path.get("value", "/")) != ("PathPrefix", "/"):
        path_ops = {"Exact": "=", "PathPrefix": "^=", "RegularExpression": "~"}
        op = path_ops.get(path.get("type", "PathPrefix"), "^=")
        parts.append(f"uri {op} {path.get('value', '/')}")
    for kind, word in (("headers", "header"), ("queryParams", "query")):
        for h in match.get(kind) or []:
            op = "~" if h.get("type") == "RegularExpression" else "="
            parts.append(f"{word} {h['name']} {op} {h['value']}")
    if "method" in match:
        parts.append(f"method = {match['method']}")
    return " and ".join(parts)


@_malformed
def route_from_httproute(obj: Mapping[str, Any], cluster: str, default_namespace: str) -> Route:
    name, namespace, version = _metadata(obj)
    where = f"HTTPRoute {namespace or default_namespace}/{name}"
    spec = obj.get("spec") or {}
    rules: list[RouteRule] = []
    for rule in spec.get("rules") or []:
        destinations = tuple(
            WeightedDestination(
                host=_host(ref.get("name"), where),
                subset="",
                weight=_weight(ref.get("weight"), 1, where),  # Gateway API's default is 1
                port=ref.get("port"),
            )
            for ref in rule.get("backendRefs") or []
        )
        matches = tuple(_describe_gateway_match(m) for m in rule.get("matches") or [])
        if "" in matches:  # one match takes every request: the rule matches everything
            matches = ()
        rules.append(RouteRule(destinations, matches, str(rule.get("name", ""))))
    hosts = tuple(
        str(p["name"]) for p in spec.get("parentRefs") or [] if p.get("kind") == "Service"
    ) or tuple(str(h) for h in spec.get("hostnames") or [])
    return Route(
        kind="HTTPRoute",
        cluster=cluster,
        namespace=namespace or default_namespace,
        name=name,
        hosts=hosts,
        rules=tuple(rules),
        resource_version=version,
        steered_by=owner(obj) or "",
    )


# who may steer a route's weights besides meshtop: a field manager or managed-by label
CONTROLLERS = {
    "flagger": "Flagger",
    "argo-rollouts": "Argo Rollouts",
    "rollouts-controller": "Argo Rollouts",
}


def owner(obj: Mapping[str, Any]) -> str | None:
    """The controller that owns or manages this object, in words, or None: owner
    references to a Flagger Canary or an Argo Rollout, their managed fields, their labels."""

    def table(value: Any) -> Mapping[str, Any]:
        return value if isinstance(value, Mapping) else {}

    def entries(value: Any) -> list[Mapping[str, Any]]:
        return [e for e in value if isinstance(e, Mapping)] if isinstance(value, list) else []

    meta = table(obj.get("metadata"))
    for ref in entries(meta.get("ownerReferences")):
        api = str(ref.get("apiVersion", ""))
        if api.startswith("flagger.app/"):
            return f"Flagger (Canary {ref.get('name', '?')})"
        if api.startswith("argoproj.io/"):
            return f"Argo Rollouts ({ref.get('kind', 'Rollout')} {ref.get('name', '?')})"
    for entry in entries(meta.get("managedFields")):
        manager = str(entry.get("manager", "")).lower()
        for key, who in CONTROLLERS.items():
            if key in manager:
                return f"{who} (manages its fields)"
    managed = str(table(meta.get("labels")).get("app.kubernetes.io/managed-by", "")).lower()
    for key, who in CONTROLLERS.items():
        if key in managed:
            return f"{who} (app.kubernetes.io/managed-by)"
    return None


def default_rule(route: Route) -> RouteRule | None:
    """The rule that takes traffic no match condition picks: the first without matches."""
    for rule in route.rules:
        if not rule.matches:
            return rule
    return None


def _destination_path(plan: Plan, j: int) -> str:
    """Where destination `j` of the plan's rule is in the object, as the parsers read it."""
    if plan.route.kind == PERCENT:
        return f"/spec/http/{plan.rule}/route/{j}"
    return f"/spec/rules/{plan.rule}/backendRefs/{j}"


def json_patch(plan: Plan) -> list[dict[str, Any]]:
    """The JSON patch (RFC 6902) that makes the plan's change only if nothing changed
    since it was read: `test` operations pin the resource version and each changed
    destination first, so a concurrent change is refused by the server (409/422), never
    overwritten."""
    route = plan.route
    rule = route.rules[plan.rule]
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": route.resource_version}
    ]
    for j in plan.changed:
        d, base = rule.destinations[j], _destination_path(plan, j)
        if route.kind == PERCENT:
            ops.append({"op": "test", "path": f"{base}/destination/host", "value": d.host})
            if d.subset:
                ops.append({"op": "test", "path": f"{base}/destination/subset", "value": d.subset})
        else:
            ops.append({"op": "test", "path": f"{base}/name", "value": d.host})
    for j in plan.changed:
        # `add` sets a member whether it is there or not (a lone destination has none)
        weight = plan.after.weights[j]
        ops.append({"op": "add", "path": f"{_destination_path(plan, j)}/weight", "value": weight})
    return ops
