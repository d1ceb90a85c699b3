"""Turns Istio `VirtualService` and Gateway API `HTTPRoute` objects (as the Kubernetes API
serves them, or as YAML manifests hold them) into `Route`s, match conditions in words; and
back: the JSON patch that writes a weight plan to the same paths it was read from."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from meshtop.canary import PERCENT, Plan
from meshtop.errors import BackendError, UsageError
from meshtop.model import (
    CircuitBreaker,
    Fault,
    Retries,
    Route,
    RouteRule,
    RulePolicy,
    WeightedDestination,
)
from meshtop.model.policy import FAULT_EXPIRES

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
        policy = _istio_policy(http, where)
        rules.append(RouteRule(destinations, matches, str(http.get("name", "")), policy))
    return Route(
        kind="VirtualService",
        cluster=cluster,
        namespace=namespace or default_namespace,
        name=name,
        hosts=tuple(str(h) for h in spec.get("hosts") or []),
        rules=tuple(rules),
        resource_version=version,
        steered_by=owner(obj) or "",
        fault_expires=fault_expiry(obj, where),
    )


_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_duration(value: Any, where: str) -> float:
    """A duration as Istio's and the Gateway API's CRDs hold one (Go's form: `2s`,
    `0.5s`, `100ms`, `1h30m`), in seconds; anything else is the backend's malformed
    answer, said with where it is."""
    text = str(value).strip()
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise BackendError(f"{where}: {text[:40]!r} is not a duration")
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def _percent(value: Any, where: str) -> float:
    """A fault's share: `percentage.value` (a float), 100 when absent, as Istio has it."""
    share = (value or {}).get("value", 100.0) if isinstance(value, Mapping) else 100.0
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 100:
        raise BackendError(f"{where}: fault percentage {share!r} is not from 0 to 100")
    return float(share)


def _istio_policy(http: Mapping[str, Any], where: str) -> RulePolicy:
    """A VirtualService rule's fault, timeout and retries."""
    fault = None
    if isinstance(spec := http.get("fault"), Mapping):
        abort, delay = spec.get("abort") or {}, spec.get("delay") or {}
        fault = Fault(
            abort_status=int(abort["httpStatus"]) if "httpStatus" in abort else None,
            abort_percent=_percent(abort.get("percentage"), where) if abort else 0.0,
            delay_s=go_duration(delay["fixedDelay"], where) if "fixedDelay" in delay else None,
            delay_percent=_percent(delay.get("percentage"), where) if delay else 0.0,
        )
    retries = None
    if isinstance(spec := http.get("retries"), Mapping):
        per_try = spec.get("perTryTimeout")
        retries = Retries(
            attempts=int(spec.get("attempts", 0)),
            per_try_timeout_s=go_duration(per_try, where) if per_try else None,
            retry_on=str(spec.get("retryOn", "")),
        )
    timeout = http.get("timeout")
    return RulePolicy(fault, go_duration(timeout, where) if timeout else None, retries)


def fault_expiry(obj: Mapping[str, Any], where: str) -> datetime | None:
    """When meshtop's fault on this route ends, from its annotation (None: no end set)."""
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    said = annotations.get(FAULT_EXPIRES) if isinstance(annotations, Mapping) else None
    if not said:
        return None
    try:
        when = datetime.fromisoformat(str(said))
    except ValueError:
        raise BackendError(f"{where}: {FAULT_EXPIRES} {str(said)[:40]!r} is not a time") from None
    if when.tzinfo is None:
        raise BackendError(f"{where}: {FAULT_EXPIRES} {str(said)[:40]!r} has no time zone")
    return when


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
        timeouts = rule.get("timeouts") or {}
        timeout = go_duration(timeouts["request"], where) if timeouts.get("request") else None
        policy = RulePolicy(timeout_s=timeout or None)  # "0s": no timeout, as Envoy takes it
        rules.append(RouteRule(destinations, matches, str(rule.get("name", "")), policy))
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


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BackendError(f"{where}: {value!r} is not a whole number from 0")
    return value


def _breaker(policy: Mapping[str, Any], where: str, **names: str) -> CircuitBreaker | None:
    """A traffic policy's connection pool and outlier detection (None: it sets neither)."""
    pool = policy.get("connectionPool") or {}
    outlier = policy.get("outlierDetection") or {}
    if not pool and not outlier:
        return None
    tcp, http = pool.get("tcp") or {}, pool.get("http") or {}
    errors = outlier.get("consecutive5xxErrors", outlier.get("consecutiveErrors"))
    if errors is None and outlier:
        errors = 5  # Istio's default once outlier detection is there
    interval, ejection = outlier.get("interval"), outlier.get("baseEjectionTime")
    return CircuitBreaker(
        **names,
        max_connections=_count(tcp.get("maxConnections"), where),
        max_pending=_count(http.get("http1MaxPendingRequests"), where),
        max_requests=_count(http.get("http2MaxRequests"), where),
        max_retries=_count(http.get("maxRetries"), where),
        consecutive_errors=_count(errors, where),
        interval_s=go_duration(interval, where) if interval else None,
        base_ejection_s=go_duration(ejection, where) if ejection else None,
        max_ejection_percent=_count(outlier.get("maxEjectionPercent"), where),
    )


def breakers_from_destination_rule(
    obj: Mapping[str, Any], cluster: str, default_namespace: str
) -> list[CircuitBreaker]:
    """A DestinationRule's circuit breakers: the host's traffic policy, and each subset's
    own (which Istio applies instead of the host's for that subset). A malformed one is a
    `BackendError` that names it."""
    name, namespace, _ = _metadata(obj)
    namespace = namespace or default_namespace
    where = f"DestinationRule {namespace}/{name}"
    try:
        spec = obj.get("spec") or {}
        host = str(spec.get("host", "")).split(".")[0]
        names = {"cluster": cluster, "namespace": namespace, "name": name, "host": host}
        found = [_breaker(spec.get("trafficPolicy") or {}, where, **names)]
        for subset in spec.get("subsets") or []:
            policy = subset.get("trafficPolicy") or {}
            found.append(_breaker(policy, where, **names, subset=str(subset.get("name", ""))))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BackendError(f"{where} is malformed: {exc}") from None
    return [b for b in found if b is not None]


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
