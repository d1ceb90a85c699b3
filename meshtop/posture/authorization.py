"""Which AuthorizationPolicy allows or denies a call, in words, from what the metrics
know of the caller: its identity (principal, namespace) over mutual TLS only; paths,
methods and JWT claims decide per request. Istio's order: CUSTOM first, then DENY, then
ALLOW; no ALLOW policy on a workload allows everything; AUDIT never decides."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from meshtop.posture.config import (
    ROOT_NAMESPACE,
    Action,
    AuthorizationPolicy,
    Condition,
    Rule,
    Source,
    WorkloadInfo,
    selects,
)


class Match(enum.IntEnum):
    """Whether a rule matches a call: known from the caller alone, or only per request
    (paths, methods, a JWT claim: what the metrics do not tell)."""

    NO = 0
    MAYBE = 1
    YES = 2


@dataclass(frozen=True, slots=True)
class Peer:
    """A caller as authorization sees it: its identity (principal, namespace) is known
    only over mutual TLS; `mtls` is the share of its calls that carry it."""

    principal: str = ""
    namespace: str = ""
    mtls: float = 1.0


def value_matches(pattern: str, value: str) -> bool:
    """Istio's value matching: exact, a `*` prefix or suffix, or `*` for anything present."""
    if pattern == "*":
        return bool(value)
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def _identity(peer: Peer, values: Sequence[str], what: str) -> Match:
    """Whether the caller's principal or namespace is one of `values`."""
    if peer.mtls <= 0:
        return Match.NO  # plain text carries no identity
    mine = peer.principal if what == "principal" else peer.namespace
    hit = Match.YES if any(value_matches(v, mine) for v in values) else Match.NO
    return hit if peer.mtls >= 1 or hit is Match.NO else Match.MAYBE


def _negated(m: Match) -> Match:
    return {Match.YES: Match.NO, Match.NO: Match.YES, Match.MAYBE: Match.MAYBE}[m]


_IDENTITY = {"principals": "principal", "namespaces": "namespace"}


def _source_matches(source: Source, peer: Peer) -> Match:
    out = Match.YES
    for key, values in source.fields.items():
        base = key.removeprefix("not")
        base = base[:1].lower() + base[1:]
        if base in _IDENTITY:
            m = _identity(peer, values, _IDENTITY[base])
            if key.startswith("not"):
                # a plaintext caller has no identity: it is not any of them
                m = Match.YES if peer.mtls <= 0 else _negated(m)
        else:
            m = Match.MAYBE  # request principals, IP blocks: not in the metrics
        out = min(out, m)
    return out


def _condition_matches(c: Condition, peer: Peer) -> Match:
    what = {"source.principal": "principal", "source.namespace": "namespace"}.get(c.key)
    if what is None:
        return Match.MAYBE
    m = _identity(peer, c.values, what) if c.values else Match.YES
    if c.not_values:
        m = min(m, _negated(_identity(peer, c.not_values, what)))
    return m


def rule_matches(rule: Rule, peer: Peer) -> Match:
    source = max((_source_matches(s, peer) for s in rule.sources), default=Match.YES)
    operation = max(
        (Match.MAYBE if any(o.fields.values()) else Match.YES for o in rule.operations),
        default=Match.YES,
    )
    conditions = min((_condition_matches(c, peer) for c in rule.conditions), default=Match.YES)
    return min(source, operation, conditions)


def policy_matches(policy: AuthorizationPolicy, peer: Peer) -> Match:
    return max((rule_matches(r, peer) for r in policy.rules), default=Match.NO)


def applies(
    policy: AuthorizationPolicy,
    namespace: str,
    labels: Mapping[str, str],
    root: str = ROOT_NAMESPACE,
) -> bool:
    """Whether a policy applies to a workload: its namespace's (or the root's, for
    every namespace), with a selector that matches."""
    return policy.namespace in (namespace, root) and selects(policy.selector, labels)


def rule_words(rule: Rule) -> str:
    """`from principals a or namespaces b; to methods GET; when key in v`."""
    parts = []
    if rule.sources:
        parts.append("from " + " or ".join(_fields(s.fields) or "anyone" for s in rule.sources))
    if rule.operations:
        parts.append("to " + " or ".join(_fields(o.fields) or "anything" for o in rule.operations))
    for c in rule.conditions:
        said = f"in {', '.join(c.values)}" if c.values else ""
        said += f"{' and ' if said else ''}not in {', '.join(c.not_values)}" if c.not_values else ""
        parts.append(f"when {c.key} {said}".rstrip())
    return "; ".join(parts) or "any request"


def _fields(fields: Mapping[str, tuple[str, ...]]) -> str:
    return ", ".join(f"{k} {' '.join(v)}" for k, v in fields.items() if v)


def policy_words(policy: AuthorizationPolicy) -> str:
    """A policy in one line: `DENY AuthorizationPolicy ns/x (from namespaces legacy)`."""
    rules = " | ".join(rule_words(r) for r in policy.rules) if policy.rules else "no rules"
    provider = f" by {policy.provider}" if policy.provider else ""
    return f"{policy.action.value}{provider} {policy.ref} ({rules})"


class Decision(enum.StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    DEPENDS = "depends on the request"


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    words: str  # why, in words: which policies, in Istio's order
    policies: tuple[str, ...] = ()  # the refs of the policies that decided


def authorize(
    policies: Sequence[AuthorizationPolicy],
    destination: WorkloadInfo,
    peer: Peer,
    root: str = ROOT_NAMESPACE,
) -> Verdict:
    """Which AuthorizationPolicy allows or denies calls from `peer` to `destination`, in
    Istio's order: CUSTOM first (its provider's answer is not known here), then DENY,
    then ALLOW (none applying: allowed; some, none matching: denied); AUDIT is said."""
    mine = [p for p in policies if applies(p, destination.namespace, destination.labels, root)]
    by = {a: [(p, policy_matches(p, peer)) for p in mine if p.action is a] for a in Action}

    def matched(action: Action, *how: Match) -> list[AuthorizationPolicy]:
        return [p for p, m in by[action] if m in how]

    words: list[str] = []
    custom = matched(Action.CUSTOM, Match.YES, Match.MAYBE)
    if custom:
        words.append(f"first {_each(custom)} asks its provider, which may deny")
    audited = matched(Action.AUDIT, Match.YES, Match.MAYBE)
    audit = [f"audited by {', '.join(p.ref for p in audited)}"] if audited else []
    denied = matched(Action.DENY, Match.YES)
    if denied:
        said = [*words, f"denied by {policy_words(denied[0])}", *audit]
        return Verdict(Decision.DENIED, _said(said), tuple(p.ref for p in denied))
    maybe_denied = matched(Action.DENY, Match.MAYBE)
    if maybe_denied:
        words.append(f"denied for requests {_each(maybe_denied)} matches")
    refs = tuple(p.ref for p in maybe_denied)
    # allowed, but for the requests a DENY policy may match
    allowed_as = Decision.DEPENDS if maybe_denied else Decision.ALLOWED
    allows = [p for p, _ in by[Action.ALLOW]]
    target = f"{destination.namespace}/{destination.name}"
    if not allows:
        said = [*words, f"allowed: no ALLOW policy applies to {target}", *audit]
        return Verdict(allowed_as, _said(said), refs)
    allowed = matched(Action.ALLOW, Match.YES)
    if allowed:
        said = [*words, f"allowed by {policy_words(allowed[0])}", *audit]
        return Verdict(allowed_as, _said(said), (*refs, allowed[0].ref))
    maybe = matched(Action.ALLOW, Match.MAYBE)
    if maybe:
        said = [*words, f"allowed only for requests {_each(maybe)} matches", *audit]
        return Verdict(Decision.DEPENDS, _said(said), (*refs, *(p.ref for p in maybe)))
    why = " (plain text carries no identity)" if peer.mtls <= 0 else ""
    names = ", ".join(p.ref for p in allows)
    none = f"denied: ALLOW policies apply to {target} ({names}) and none matches this caller"
    said = [*words, none + why, *audit]
    return Verdict(Decision.DENIED, _said(said), tuple(p.ref for p in allows))


def _each(policies: Sequence[AuthorizationPolicy]) -> str:
    return ", ".join(policy_words(p) for p in policies)


def _said(parts: Sequence[str]) -> str:
    return "; ".join(parts)
