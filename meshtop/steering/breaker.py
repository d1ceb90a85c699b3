"""A DestinationRule's circuit breaker as an `EditPlan` (issue 21): its connection pool
and outlier detection, for the host or one subset."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from meshtop.errors import UsageError
from meshtop.steering.plan import EditPlan, plan_of, read
from meshtop.units import duration

POOL = {
    "max_connections": ("tcp", "maxConnections"),
    "max_pending": ("http", "http1MaxPendingRequests"),
    "max_requests": ("http", "http2MaxRequests"),
    "max_retries": ("http", "maxRetries"),
}
OUTLIER = {
    "consecutive_errors": "consecutive5xxErrors",
    "interval": "interval",
    "base_ejection": "baseEjectionTime",
    "max_ejection_percent": "maxEjectionPercent",
}


def circuit_breaker(
    obj: Mapping[str, Any],
    cluster: str,
    *,
    subset: str = "",
    clear: bool = False,
    **settings: float | int | None,
) -> EditPlan:
    """A DestinationRule's connection pool and outlier detection, for the host or one
    `subset` (`settings`: the keys of `POOL` and `OUTLIER`; durations in seconds; None
    leaves one as it is). `clear` removes both."""
    kind, namespace, name, *_ = read(obj)
    ref = f"{kind} {namespace}/{name}"
    if kind != "DestinationRule":
        raise UsageError(f"{ref}: circuit breaking is a DestinationRule's")
    unknown = set(settings) - set(POOL) - set(OUTLIER)
    if unknown:
        raise UsageError(f"no circuit breaker setting {', '.join(sorted(unknown))}")
    spec = copy.deepcopy(dict(obj.get("spec") or {}))
    if subset:
        found = [s for s in spec.get("subsets") or [] if s.get("name") == subset]
        if not found:
            names = ", ".join(str(s.get("name")) for s in spec.get("subsets") or []) or "none"
            raise UsageError(f"{ref} has no subset {subset} (it has {names})")
        holder = found[0]
    else:
        holder = spec
    policy = holder.setdefault("trafficPolicy", {})
    said = []
    if clear:
        policy.pop("connectionPool", None)
        policy.pop("outlierDetection", None)
        said.append("no connection pool limits, no outlier detection")
    for key, value in settings.items():
        if value is None:
            continue
        if key in POOL:
            group, field_ = POOL[key]
            policy.setdefault("connectionPool", {}).setdefault(group, {})[field_] = int(value)
        else:
            field_ = OUTLIER[key]
            policy.setdefault("outlierDetection", {})[field_] = (
                duration(float(value)) if key in ("interval", "base_ejection") else int(value)
            )
        said.append(
            f"{key.replace('_', ' ')} {duration(float(value))}"
            if key in ("interval", "base_ejection")
            else f"{key.replace('_', ' ')} {value}"
        )
    if not policy:
        holder.pop("trafficPolicy", None)
    if not said:
        raise UsageError("give a connection pool or outlier detection setting, or --clear")
    where = f" for subset {subset}" if subset else ""
    return plan_of(obj, cluster, "circuit breaker", f"{', '.join(said)}{where}", spec)
