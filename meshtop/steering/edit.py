"""The changes to a route's rules (issue 21) as `EditPlan`s, each a pure function of the
object as read: steering rules added, edited, moved or removed; a fault injected
(time-boxed by meshtop's annotation) or cleared; a rule's timeout and retries. The plan
itself and its undo are `steering.plan`'s, a DestinationRule's circuit breaker
`steering.breaker`'s (both importable from here too)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from meshtop.errors import UsageError
from meshtop.model.policy import FAULT_EXPIRES
from meshtop.steering.breaker import OUTLIER as OUTLIER
from meshtop.steering.breaker import POOL as POOL
from meshtop.steering.breaker import circuit_breaker as circuit_breaker
from meshtop.steering.match import Condition, gateway_match, istio_match
from meshtop.steering.plan import EditPlan as EditPlan
from meshtop.steering.plan import plan_of, read
from meshtop.steering.plan import undo_edit as undo_edit
from meshtop.units import duration

FAULT_RULE = "meshtop-fault"  # the name of a rule meshtop adds to inject a fault on a match


def _rules(spec: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    key = "http" if kind == "VirtualService" else "rules"
    return [copy.deepcopy(dict(r)) for r in spec.get(key) or []]


def _is_default(rule: Mapping[str, Any], kind: str) -> bool:
    """A rule that takes every request no earlier rule took."""
    if kind == "VirtualService":
        return not rule.get("match")
    matches = rule.get("matches") or []
    return not matches or any(
        m == {} or m == {"path": {"type": "PathPrefix", "value": "/"}} for m in matches
    )


def _rule_index(rules: Sequence[Mapping[str, Any]], which: str, ref: str) -> int:
    """A rule by its index or its name."""
    if which.isdigit() and int(which) < len(rules):
        return int(which)
    for i, rule in enumerate(rules):
        if rule.get("name") == which:
            return i
    names = ", ".join(
        f"{i}" + (f" ({r['name']})" if r.get("name") else "") for i, r in enumerate(rules)
    )
    raise UsageError(f"{ref} has no rule {which!r}: its rules are {names or 'none'}")


def describe_targets(targets: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{t}={w}" if len(targets) > 1 else t for t, w in targets)


def parse_targets(text: str) -> list[tuple[str, int]]:
    """`v3`, or a weighted split `v1=80,v3=20` (whole percents that add up to 100)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UsageError("--to names a subset (v3) or a split of subsets (v1=80,v3=20)")
    if len(parts) == 1 and "=" not in parts[0]:
        return [(parts[0], 100)]
    targets = []
    for part in parts:
        name, sep, weight = part.partition("=")
        if not sep or not weight.strip().isdigit():
            raise UsageError(f"--to {text!r}: {part!r} is not SUBSET=PERCENT")
        targets.append((name.strip(), int(weight)))
    if sum(w for _, w in targets) != 100:
        raise UsageError(
            f"--to {text!r}: the weights add up to {sum(w for _, w in targets)}, not 100"
        )
    return targets


def _destinations(
    kind: str, rules: Sequence[Mapping[str, Any]], targets: Sequence[tuple[str, int]], ref: str
) -> list[dict[str, Any]]:
    """Where a steered rule sends: for a VirtualService, subsets of the host its default
    rule routes to; for an HTTPRoute, backend Services (with the default's port)."""
    default = next(
        (r for r in reversed(rules) if _is_default(r, kind)), rules[-1] if rules else None
    )
    if default is None:
        raise UsageError(f"{ref} has no rule to take the destination's host from")
    if kind == "VirtualService":
        first = (default.get("route") or [{}])[0].get("destination") or {}
        host = first.get("host")
        if not host:
            raise UsageError(f"{ref}'s default rule has no destination host")
        out = []
        for subset, weight in targets:
            d: dict[str, Any] = {"destination": {"host": host, "subset": subset}}
            if "port" in first:
                d["destination"]["port"] = first["port"]
            if len(targets) > 1:
                d["weight"] = weight
            out.append(d)
        return out
    port = (default.get("backendRefs") or [{}])[0].get("port")
    return [
        {"name": service, **({"port": port} if port else {}), "weight": weight}
        for service, weight in targets
    ]


def steer(
    obj: Mapping[str, Any],
    cluster: str,
    *,
    conditions: Sequence[Condition] = (),
    targets: Sequence[tuple[str, int]] = (),
    position: int | None = None,
    remove: str | None = None,
    edit: str | None = None,
    move: str | None = None,
    subsets: Sequence[str] | None = None,
) -> EditPlan:
    """Add a rule (matching `conditions`, sending to `targets`) before the default rule
    or at `position`; or `edit` a rule's match and/or destinations; `move` one to
    `position`; `remove` one. Refused, with why: a rule after the default one (it would
    never match), removing the last default rule (unmatched requests would get 404),
    a subset the DestinationRules do not define (`subsets`, when known)."""
    kind, namespace, name, *_ = read(obj)
    ref = f"{kind} {namespace}/{name}"
    if kind not in ("VirtualService", "HTTPRoute"):
        raise UsageError(f"{ref}: only a VirtualService or an HTTPRoute is steered")
    spec = copy.deepcopy(dict(obj.get("spec") or {}))
    rules = _rules(spec, kind)
    if subsets is not None and kind == "VirtualService":
        unknown = [t for t, _ in targets if t not in subsets]
        if unknown:
            known = ", ".join(sorted(subsets)) or "none"
            raise UsageError(
                f"{ref}: no subset {', '.join(unknown)} in its DestinationRules "
                f"(they define {known})"
            )
    if kind == "HTTPRoute" and (position is not None or move is not None):
        raise UsageError(
            f"{ref}: an HTTPRoute's rules are ranked by how specific their matches are "
            "(Gateway API), not by order: --position and --move do not apply"
        )

    def match_of(conds: Sequence[Condition]) -> dict[str, Any]:
        return istio_match(conds) if kind == "VirtualService" else gateway_match(conds)

    match_key = "match" if kind == "VirtualService" else "matches"
    route_key = "route" if kind == "VirtualService" else "backendRefs"
    if remove is not None:
        i = _rule_index(rules, remove, ref)
        if _is_default(rules[i], kind) and sum(_is_default(r, kind) for r in rules) == 1:
            raise UsageError(
                f"{ref}: rule {i} is the default route; without it, requests no rule "
                "matches are answered 404 (NR): steer them elsewhere first"
            )
        gone = rules.pop(i)
        what = f"remove rule {i}" + (f" ({gone['name']})" if gone.get("name") else "")
    elif move is not None:
        i = _rule_index(rules, move, ref)
        rule = rules.pop(i)
        to = len(rules) if position is None else min(position, len(rules))
        rules.insert(to, rule)
        what = f"move rule {i} to {to}"
    elif edit is not None:
        i = _rule_index(rules, edit, ref)
        if conditions:
            rules[i][match_key] = [match_of(conditions)]
        if targets:
            rules[i][route_key] = _destinations(kind, rules, targets, ref)
        if not conditions and not targets:
            raise UsageError("--edit changes a rule's --match and/or --to: give one")
        what = f"edit rule {i}: " + " and ".join(
            ([" and ".join(c.words() for c in conditions)] if conditions else [])
            + ([f"→ {describe_targets(targets)}"] if targets else [])
        )
    else:
        if not conditions or not targets:
            raise UsageError("a new steering rule needs --match and --to")
        new = {
            match_key: [match_of(conditions)],
            route_key: _destinations(kind, rules, targets, ref),
        }
        first_default = next((i for i, r in enumerate(rules) if _is_default(r, kind)), len(rules))
        at = first_default if position is None else position
        if kind == "VirtualService" and at > first_default:
            raise UsageError(
                f"{ref}: at position {at} the rule would come after rule {first_default}, "
                "which takes every request: it would never match"
            )
        rules.insert(min(at, len(rules)), new)
        said = " and ".join(c.words() for c in conditions)
        what = f"add rule {at}: {said} → {describe_targets(targets)}"
    if kind == "VirtualService" and move is not None:
        shadow = next((i for i, r in enumerate(rules) if _is_default(r, kind)), len(rules) - 1)
        if shadow < len(rules) - 1:
            raise UsageError(
                f"{ref}: rule {shadow} takes every request; rules after it would never match"
            )
    spec["http" if kind == "VirtualService" else "rules"] = rules
    return plan_of(obj, cluster, "steer", what, spec)


def fault(
    obj: Mapping[str, Any],
    cluster: str,
    *,
    abort: tuple[int, float] | None = None,
    delay: tuple[float, float] | None = None,
    conditions: Sequence[Condition] = (),
    rule: str | None = None,
    expires: datetime | None = None,
) -> EditPlan:
    """Inject a fault: on `rule` (default: the default rule), or only for requests that
    meet `conditions` (a rule of meshtop's, named `meshtop-fault`, just before the
    default rule, routed as the default is); `expires` is written as meshtop's annotation."""
    kind, namespace, name, *_ = read(obj)
    ref = f"{kind} {namespace}/{name}"
    if kind != "VirtualService":
        raise UsageError(
            f"{ref}: faults are injected by a VirtualService (the Gateway API has none)"
        )
    if abort is None and delay is None:
        raise UsageError("a fault needs --abort STATUS:PERCENT and/or --delay DURATION:PERCENT")
    spec = copy.deepcopy(dict(obj.get("spec") or {}))
    rules = _rules(spec, kind)
    if not rules:
        raise UsageError(f"{ref} has no rule to inject a fault into")
    injected: dict[str, Any] = {}
    if abort is not None:
        injected["abort"] = {"httpStatus": abort[0], "percentage": {"value": abort[1]}}
    if delay is not None:
        injected["delay"] = {"fixedDelay": duration(delay[0]), "percentage": {"value": delay[1]}}
    said = ", ".join(
        ([f"abort {abort[0]} to {abort[1]:g}%"] if abort else [])
        + ([f"delay {duration(delay[0])} to {delay[1]:g}%"] if delay else [])
    )
    default = next((i for i, r in enumerate(rules) if _is_default(r, kind)), len(rules) - 1)
    if conditions:
        rules = [r for r in rules if r.get("name") != FAULT_RULE]
        default = next((i for i, r in enumerate(rules) if _is_default(r, kind)), len(rules) - 1)
        base = copy.deepcopy(rules[default])
        base.pop("match", None)
        base.update(name=FAULT_RULE, match=[istio_match(conditions)], fault=injected)
        rules.insert(default, base)
        where = f"for {' and '.join(c.words() for c in conditions)}"
    else:
        i = default if rule is None else _rule_index(rules, rule, ref)
        rules[i]["fault"] = injected
        where = f"on rule {i}"
    spec["http"] = rules
    end = expires.isoformat(timespec="seconds") if expires else None
    until = f" until {end}" if end else ""
    return plan_of(
        obj, cluster, "fault", f"fault {said} {where}{until}", spec, {FAULT_EXPIRES: end}
    )


def clear_fault(obj: Mapping[str, Any], cluster: str, *, action: str = "clear fault") -> EditPlan:
    """Every injected fault taken out: meshtop's own fault rules removed, other rules'
    `fault` dropped, the expiry annotation removed. `action` "expire fault" when the
    time box ran out."""
    kind, namespace, name, *_ = read(obj)
    if kind != "VirtualService":
        raise UsageError(f"{kind} {namespace}/{name}: only a VirtualService has faults")
    spec = copy.deepcopy(dict(obj.get("spec") or {}))
    rules = [r for r in _rules(spec, kind) if r.get("name") != FAULT_RULE]
    for r in rules:
        r.pop("fault", None)
    spec["http"] = rules
    return plan_of(obj, cluster, action, "remove every injected fault", spec, {FAULT_EXPIRES: None})


OFF = -1.0  # a timeout or retries to remove (back to Istio's default)


def resilience(
    obj: Mapping[str, Any],
    cluster: str,
    *,
    rule: str | None = None,
    timeout: float | None = None,
    attempts: int | None = None,
    per_try_timeout: float | None = None,
    retry_on: str | None = None,
) -> EditPlan:
    """A rule's (default: the default rule's) timeout and retries: `timeout` OFF removes
    it; `attempts` 0 turns retries off; OFF removes the retry policy (Istio's default,
    2 attempts, is then in force). An HTTPRoute has a request timeout only."""
    kind, namespace, name, *_ = read(obj)
    ref = f"{kind} {namespace}/{name}"
    spec = copy.deepcopy(dict(obj.get("spec") or {}))
    rules = _rules(spec, kind)
    if not rules:
        raise UsageError(f"{ref} has no rule to set a timeout or retries on")
    i = (
        next((j for j, r in enumerate(rules) if _is_default(r, kind)), 0)
        if rule is None
        else _rule_index(rules, rule, ref)
    )
    target = rules[i]
    said = []
    if kind == "HTTPRoute":
        if attempts is not None or per_try_timeout is not None or retry_on is not None:
            raise UsageError(f"{ref}: meshtop sets an HTTPRoute's request timeout only")
        if timeout is not None:
            if timeout == OFF:
                (target.get("timeouts") or {}).pop("request", None)
                if not target.get("timeouts"):
                    target.pop("timeouts", None)
            else:
                target.setdefault("timeouts", {})["request"] = duration(timeout)
    else:
        if timeout is not None:
            if timeout == OFF:
                target.pop("timeout", None)
            else:
                target["timeout"] = duration(timeout)
        if attempts is not None and attempts < 0:
            target.pop("retries", None)
        elif attempts is not None or per_try_timeout is not None or retry_on is not None:
            retries = dict(target.get("retries") or {"attempts": 2})
            if attempts is not None:
                retries["attempts"] = attempts
            if per_try_timeout is not None:
                retries["perTryTimeout"] = duration(per_try_timeout)
            if retry_on is not None:
                retries["retryOn"] = retry_on
            target["retries"] = retries
    if timeout is not None:
        said.append("no timeout" if timeout == OFF else f"timeout {duration(timeout)}")
    if attempts is not None and attempts < 0:
        said.append("retries back to Istio's default")
    elif attempts == 0:
        said.append("no retries")
    elif attempts is not None or per_try_timeout is not None or retry_on is not None:
        kept = target.get("retries") or {}
        said.append(
            f"retries: {kept.get('attempts')} attempts"
            + (f", {kept['perTryTimeout']} each" if kept.get("perTryTimeout") else "")
            + (f", on {kept['retryOn']}" if kept.get("retryOn") else "")
        )
    if not said:
        raise UsageError("give --timeout and/or --retries/--per-try-timeout/--retry-on")
    spec["http" if kind == "VirtualService" else "rules"] = rules
    return plan_of(obj, cluster, "resilience", f"rule {i}: {', '.join(said)}", spec)
