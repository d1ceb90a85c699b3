"""The simulated control plane's objects, whole (issue 21): each VirtualService, HTTPRoute
and DestinationRule as the Kubernetes API serves it; a JSON patch applied to one as the API
server applies it (every `test` first, else a conflict, nothing changed); and what the
traffic model reads, derived from them by the parsers the Kubernetes adapter uses: the
routes, the subsets and the circuit breakers. One source of truth: nothing else is kept."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from meshtop.errors import BackendError, ConflictError, UsageError
from meshtop.model import CircuitBreaker, Route
from meshtop.sources.routing import (
    breakers_from_destination_rule,
    route_from_httproute,
    route_from_virtual_service,
)

ObjectKey = tuple[str, str, str, str]  # (cluster, kind, namespace, name)
ROUTE_KINDS = ("VirtualService", "HTTPRoute")
DESTINATION_RULE = "DestinationRule"
KINDS = (*ROUTE_KINDS, DESTINATION_RULE)


def key_of(obj: Mapping[str, Any], cluster: str) -> ObjectKey:
    meta = obj["metadata"]
    return (cluster, str(obj["kind"]), str(meta["namespace"]), str(meta["name"]))


def ref(key: ObjectKey) -> str:
    """`VirtualService bookinfo/reviews`, as errors name an object."""
    return f"{key[1]} {key[2]}/{key[3]}"


def route_of(obj: Mapping[str, Any], cluster: str) -> Route:
    """The route a VirtualService or an HTTPRoute says, as the Kubernetes adapter reads it."""
    meta = obj["metadata"]
    parse = route_from_virtual_service if obj["kind"] == "VirtualService" else route_from_httproute
    return parse(obj, cluster, str(meta["namespace"]))


def breakers_of(obj: Mapping[str, Any], cluster: str) -> list[CircuitBreaker]:
    return breakers_from_destination_rule(obj, cluster, str(obj["metadata"]["namespace"]))


def routes_of(
    objects: Mapping[ObjectKey, Mapping[str, Any]],
) -> dict[tuple[str, str, str], Route]:
    """(cluster, namespace, host) -> the route each route object says for that host."""
    out: dict[tuple[str, str, str], Route] = {}
    for (cluster, kind, namespace, _), obj in objects.items():
        if kind in ROUTE_KINDS:
            route = route_of(obj, cluster)
            for host in route.hosts:
                out[(cluster, namespace, host)] = route
    return out


def subsets_of(obj: Mapping[str, Any]) -> dict[tuple[str, str, str], dict[str, str]]:
    """(namespace, host, subset) -> the labels a DestinationRule's subset selects."""
    spec = obj.get("spec") or {}
    namespace, host = str(obj["metadata"]["namespace"]), str(spec.get("host", "")).split(".")[0]
    return {
        (namespace, host, str(s["name"])): {
            str(k): str(v) for k, v in (s.get("labels") or {}).items()
        }
        for s in spec.get("subsets") or []
    }


BreakerKey = tuple[str, str, str]  # (cluster, namespace, host)


def breakers_by_host(
    objects: Mapping[ObjectKey, Mapping[str, Any]],
) -> dict[BreakerKey, tuple[CircuitBreaker, ...]]:
    """Every DestinationRule's circuit breakers, by the host they protect."""
    out: dict[BreakerKey, tuple[CircuitBreaker, ...]] = {}
    for (cluster, kind, namespace, _), obj in objects.items():
        if kind == DESTINATION_RULE:
            for b in breakers_of(obj, cluster):
                out[(cluster, namespace, b.host)] = (*out.get((cluster, namespace, b.host), ()), b)
    return out


def served(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the object, as the API server answers a read."""
    return copy.deepcopy(dict(obj))


# RFC 6902, as the API server applies a `application/json-patch+json` body


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise UsageError(f"the JSON patch path {path!r} does not start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


class _Missing(Exception):
    pass


def _index(container: list[Any], token: str, *, adding: bool = False) -> int:
    if adding and token == "-":
        return len(container)
    if not token.isdigit():
        raise _Missing
    i = int(token)
    if i > len(container) or (i == len(container) and not adding):
        raise _Missing
    return i


def _parent(doc: Any, tokens: Sequence[str]) -> Any:
    at = doc
    for token in tokens:
        if isinstance(at, dict):
            if token not in at:
                raise _Missing
            at = at[token]
        elif isinstance(at, list):
            at = at[_index(at, token)]
        else:
            raise _Missing
    return at


def _get(doc: Any, tokens: Sequence[str]) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _Missing
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last)]
    raise _Missing


def _same(a: Any, b: Any) -> bool:
    """JSON equality: a boolean is not a number, 1 and 1.0 are the same number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def patched(obj: Mapping[str, Any], ops: Iterable[Mapping[str, Any]], where: str) -> dict[str, Any]:
    """The object with the patch applied, as the API server applies one: a `test` that
    does not hold, or a path that is not there, refuses the whole patch (`ConflictError`,
    naming `where` and the path); the object given is left as it is."""
    doc = copy.deepcopy(dict(obj))
    for op in ops:
        kind, path = str(op.get("op", "")), str(op.get("path", ""))
        tokens = _pointer(path)
        try:
            if kind == "test":
                value = _get(doc, tokens)
                if not _same(value, op.get("value")):
                    if tokens == ["metadata", "resourceVersion"]:
                        raise ConflictError(
                            f"{where} changed since it was read "
                            f"(version {op.get('value')}, now {value})"
                        )
                    raise ConflictError(f"{where} changed at {path}")
            elif kind in ("add", "replace"):
                if not tokens:
                    raise UsageError(f"the simulated mesh does not {kind} a whole object")
                parent = _parent(doc, tokens[:-1])
                value = copy.deepcopy(op.get("value"))
                if isinstance(parent, dict):
                    if kind == "replace" and tokens[-1] not in parent:
                        raise _Missing
                    parent[tokens[-1]] = value
                elif isinstance(parent, list):
                    i = _index(parent, tokens[-1], adding=kind == "add")
                    if kind == "add":
                        parent.insert(i, value)
                    else:
                        parent[i] = value
                else:
                    raise _Missing
            elif kind == "remove":
                parent = _parent(doc, tokens[:-1])
                if isinstance(parent, dict):
                    if tokens[-1] not in parent:
                        raise _Missing
                    del parent[tokens[-1]]
                elif isinstance(parent, list):
                    del parent[_index(parent, tokens[-1])]
                else:
                    raise _Missing
            else:
                raise UsageError(f"the simulated mesh does not apply a JSON patch's {kind!r}")
        except _Missing:
            raise ConflictError(f"{where} changed: no {path}") from None
    return doc


def checked(obj: Mapping[str, Any], cluster: str) -> None:
    """What the API server (the CRD's schema, Istio's validation) refuses of an object
    about to be written, as a `UsageError`: a route or a DestinationRule meshtop's own
    parser cannot read, a VirtualService rule's weights that do not add up to 100."""
    where = f"{obj.get('kind')} {obj['metadata'].get('namespace')}/{obj['metadata'].get('name')}"
    try:
        if obj["kind"] in ROUTE_KINDS:
            route = route_of(obj, cluster)
            if route.kind == "VirtualService":
                for rule in route.rules:
                    total = sum(d.weight for d in rule.destinations)
                    if len(rule.destinations) > 1 and total != 100:
                        raise UsageError(
                            f"a VirtualService's weights must add up to 100, not {total}"
                        )
        else:
            breakers_of(obj, cluster)
    except BackendError as exc:
        raise UsageError(f"{where} would be invalid: {exc}") from None
