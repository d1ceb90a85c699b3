"""The mesh's security posture: each workload's effective mTLS mode from the control
plane's configuration (PeerAuthentication, with Istio's precedence), which
AuthorizationPolicy allows or denies a call, in words, and all of it beside the traffic
that actually flows: who still calls in plain text, what STRICT would break, and the
configuration that contradicts itself (issue 22).

Istio's rules, as its documentation states them (istio.io/latest/docs/concepts/security/):
a PeerAuthentication in the root namespace without a selector is mesh-wide, one in
another namespace without a selector is namespace-wide, one with a selector is
workload-specific; the narrowest that matches applies; where rivals match, the oldest
wins; UNSET inherits the parent's mode, and the mesh's default is PERMISSIVE; a
port-level mode (on a workload-specific policy only) overrides the workload's mode on that
port. Authorization: CUSTOM first, then DENY, then ALLOW; no ALLOW policy on a workload
allows everything; AUDIT never decides."""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from meshtop import units
from meshtop.errors import UsageError
from meshtop.model import Edge, MeshSnapshot, NodeKind, Protocol, Workload

ROOT_NAMESPACE = "istio-system"  # Istio's default root namespace: mesh-wide policies
CLUSTER_DOMAIN = "cluster.local"
DEFAULT_ACCOUNT = "default"


class MtlsMode(enum.StrEnum):
    """A PeerAuthentication's mode: what the server's proxy accepts."""

    UNSET = "UNSET"  # inherit the parent scope's mode
    DISABLE = "DISABLE"
    PERMISSIVE = "PERMISSIVE"  # mutual TLS and plain text
    STRICT = "STRICT"  # mutual TLS only


class TlsMode(enum.StrEnum):
    """A DestinationRule's `trafficPolicy.tls.mode`: what the client's proxy sends."""

    DISABLE = "DISABLE"  # plain text
    SIMPLE = "SIMPLE"  # TLS to the server, no client certificate
    MUTUAL = "MUTUAL"  # mutual TLS with certificates the rule names
    ISTIO_MUTUAL = "ISTIO_MUTUAL"  # Istio's own mutual TLS


class Action(enum.StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    CUSTOM = "CUSTOM"  # an external authorizer decides
    AUDIT = "AUDIT"  # marks requests to be audited; never allows or denies


# -- the configuration -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerAuthentication:
    namespace: str
    name: str
    mode: MtlsMode = MtlsMode.UNSET
    selector: Mapping[str, str] = field(default_factory=dict)  # matchLabels; empty: none
    ports: Mapping[int, MtlsMode] = field(default_factory=dict)  # portLevelMtls
    created: str = ""  # metadata.creationTimestamp (RFC 3339): of rivals, the oldest wins
    resource_version: str = ""

    @property
    def ref(self) -> str:
        return f"PeerAuthentication {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class TlsSetting:
    """One `tls` of a DestinationRule: the rule's own (`subset` "" and `port` None), a
    port's (`portLevelSettings`), a subset's, or a subset's port's."""

    mode: TlsMode
    subset: str = ""
    port: int | None = None

    def where(self) -> str:
        parts = [f"subset {self.subset}" if self.subset else ""]
        parts.append(f"port {self.port}" if self.port else "")
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class DestinationRuleTls:
    namespace: str
    name: str
    host: str
    settings: tuple[TlsSetting, ...] = ()
    subset_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"DestinationRule {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Source:
    """One `from.source` of a rule: each field's values (`principals`, `notNamespaces`,
    `requestPrincipals`, …), as written."""

    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Operation:
    """One `to.operation` of a rule: `methods`, `paths`, `hosts`, `ports` and their `not`s."""

    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Condition:
    """One `when` of a rule."""

    key: str
    values: tuple[str, ...] = ()
    not_values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    sources: tuple[Source, ...] = ()  # any of them (none: any caller)
    operations: tuple[Operation, ...] = ()  # any of them (none: any request)
    conditions: tuple[Condition, ...] = ()  # all of them


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    namespace: str
    name: str
    action: Action = Action.ALLOW
    selector: Mapping[str, str] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()  # none: matches no request
    provider: str = ""  # CUSTOM's external authorizer

    @property
    def ref(self) -> str:
        return f"AuthorizationPolicy {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    namespace: str
    name: str
    hosts: tuple[str, ...]
    location: str = "MESH_EXTERNAL"  # or MESH_INTERNAL
    resolution: str = ""

    @property
    def ref(self) -> str:
        return f"ServiceEntry {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class WorkloadInfo:
    """What the configuration says of one workload: its pods' labels (what selectors
    match) and service account (its identity), and, for a workload outside Kubernetes
    (a VM's WorkloadEntry), its address."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = DEFAULT_ACCOUNT
    address: str = ""  # a WorkloadEntry's
    entry: str = ""  # "WorkloadEntry ns/name" for a workload outside Kubernetes

    @property
    def principal(self) -> str:
        """Its identity as authorization policies write it."""
        return f"{CLUSTER_DOMAIN}/ns/{self.namespace}/sa/{self.service_account}"


@dataclass(frozen=True)
class SecurityConfig:
    """One cluster's security configuration, as read."""

    peer_authentications: tuple[PeerAuthentication, ...] = ()
    destination_rules: tuple[DestinationRuleTls, ...] = ()
    authorization_policies: tuple[AuthorizationPolicy, ...] = ()
    service_entries: tuple[ServiceEntry, ...] = ()
    workloads: tuple[WorkloadInfo, ...] = ()  # Deployments, StatefulSets, WorkloadEntries
    root_namespace: str = ROOT_NAMESPACE
    malformed: tuple[str, ...] = ()  # what was left out, and why

    def info(self, namespace: str, name: str) -> WorkloadInfo | None:
        return self._by_name.get((namespace, name))

    @cached_property
    def _by_name(self) -> dict[tuple[str, str], WorkloadInfo]:
        return {(w.namespace, w.name): w for w in reversed(self.workloads)}  # the first wins


# -- the effective mTLS mode -------------------------------------------------------------


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a selector's matchLabels match a workload's labels (an empty one: all)."""
    return all(labels.get(k) == v for k, v in selector.items())


def scope(pa: PeerAuthentication, root: str = ROOT_NAMESPACE) -> str:
    """`mesh-wide`, `namespace-wide`, `workload`, or `ignored`: Istio ignores a policy
    with a selector in the root namespace (istio/api#3604)."""
    if pa.namespace == root:
        return "ignored" if pa.selector else "mesh-wide"
    return "workload" if pa.selector else "namespace-wide"


def _oldest(policies: Iterable[PeerAuthentication]) -> PeerAuthentication | None:
    # a missing creation time sorts last: the API server always sets one
    return min(policies, key=lambda p: (not p.created, p.created, p.name), default=None)


@dataclass(frozen=True, slots=True)
class Effective:
    """A workload's effective mode (never UNSET), its ports' own, and why."""

    mode: MtlsMode
    ports: Mapping[int, MtlsMode] = field(default_factory=dict)
    by: str = ""  # the policy that set the mode, in words; "" for Istio's default

    def text(self) -> str:
        """`STRICT`, `STRICT (port 8080 DISABLE)`."""
        if not self.ports:
            return self.mode.value
        ports = ", ".join(f"port {p} {m.value}" for p, m in sorted(self.ports.items()))
        return f"{self.mode.value} ({ports})"

    def why(self) -> str:
        return self.by or "no PeerAuthentication applies: Istio's default"


def effective(
    policies: Sequence[PeerAuthentication],
    namespace: str,
    labels: Mapping[str, str],
    root: str = ROOT_NAMESPACE,
) -> Effective:
    """The mode Istio enforces on a workload of `namespace` with `labels`: the narrowest
    policy that sets one (workload, then namespace, then mesh), UNSET inheriting from
    the wider scope, PERMISSIVE where none sets one; a workload policy's port-level modes
    on top, an UNSET port taking the workload's mode."""
    mesh = _oldest(p for p in policies if p.namespace == root and not p.selector)
    ns = (
        _oldest(p for p in policies if p.namespace == namespace and not p.selector)
        if namespace != root
        else None
    )
    workload = (
        _oldest(
            p
            for p in policies
            if p.namespace == namespace and p.selector and selects(p.selector, labels)
        )
        if namespace != root
        else None
    )
    mode, by = MtlsMode.PERMISSIVE, ""
    for policy in (mesh, ns, workload):
        if policy is not None and policy.mode is not MtlsMode.UNSET:
            mode, by = policy.mode, f"{scope(policy, root)} {policy.ref}"
    ports: dict[int, MtlsMode] = {}
    if workload is not None:
        ports = {port: mode if m is MtlsMode.UNSET else m for port, m in workload.ports.items()}
        ports = {p: m for p, m in ports.items() if m is not mode}
        if ports and not by.startswith("workload"):
            by = f"{by or 'the default'}; its ports by workload {workload.ref}"
    return Effective(mode, ports, by)


def ignored(policies: Sequence[PeerAuthentication], root: str = ROOT_NAMESPACE) -> list[str]:
    """The policies Istio does not apply, each with why: a newer rival of a mesh-wide or
    namespace-wide one, a selector in the root namespace, port-level modes without one."""
    out: list[str] = []
    wide: dict[str, list[PeerAuthentication]] = {}
    for p in policies:
        if scope(p, root) == "ignored":
            out.append(f"{p.ref}: a selector in the root namespace is ignored by Istio")
        elif not p.selector:
            wide.setdefault(p.namespace, []).append(p)
            if p.ports:
                out.append(f"{p.ref}: port-level modes need a selector; they are ignored")
    for rivals in wide.values():
        kept = _oldest(rivals)
        out += [
            f"{p.ref}: ignored, {kept.ref} is older and covers the same {scope(p, root)} scope"
            for p in rivals
            if kept is not None and p is not kept
        ]
    return sorted(out)


# -- authorization -----------------------------------------------------------------------


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


# -- observed traffic --------------------------------------------------------------------


def carries_traffic(e: Edge) -> bool:
    s = e.stats
    return bool(s.rps > 0 or s.tcp_connections_per_s > 0 or s.tcp_request_bps > 0)


def volume(e: Edge) -> float:
    """An edge's traffic: requests per second, or TCP connections per second."""
    return e.stats.rps or e.stats.tcp_connections_per_s


def in_plain_text(e: Edge) -> bool:
    """Whether some of an edge's traffic is not on mutual TLS."""
    return carries_traffic(e) and not e.stats.mtls >= 1.0


def plaintext_rate(e: Edge) -> float:
    """The part of an edge's traffic not on mutual TLS, per second."""
    return volume(e) * (1.0 - min(1.0, max(0.0, e.stats.mtls)))


def refused_share(e: Edge) -> float:
    """The share of an edge's requests answered 503 (as a STRICT server's refusal of
    plain text shows), 0..1."""
    if not e.stats.rps or e.stats.protocol is Protocol.TCP:
        return 0.0
    return e.stats.response_codes.get("503", 0.0) / e.stats.rps


@dataclass(frozen=True, slots=True)
class Caller:
    """One caller of a workload (or a namespace) in plain text, over the window."""

    node: str  # node id
    label: str
    rps: float  # plaintext requests (or TCP connections) per second
    refused: float = 0.0  # share of its requests answered 503


def _callers(edges: Iterable[Edge], label: Mapping[str, str]) -> tuple[Caller, ...]:
    """The plaintext callers of these edges, one per caller, most traffic first."""
    rates: dict[str, float] = {}
    refused: dict[str, float] = {}
    for e in edges:
        if in_plain_text(e):
            rates[e.source] = rates.get(e.source, 0.0) + plaintext_rate(e)
            refused[e.source] = refused.get(e.source, 0.0) + refused_share(e) * volume(e)
    total = {e.source: 0.0 for e in edges}
    for e in edges:
        total[e.source] += volume(e)
    return tuple(
        sorted(
            (
                Caller(s, label.get(s, s), r, refused[s] / total[s] if total[s] else 0.0)
                for s, r in rates.items()
            ),
            key=lambda c: (-c.rps, c.label),
        )
    )


def callers_text(callers: Sequence[Caller], shown: int = 3) -> str:
    """`3 plaintext callers (unknown, legacy-batch, …)`."""
    if not callers:
        return "no plaintext caller"
    names = ", ".join(c.label for c in callers[:shown]) + (", …" if len(callers) > shown else "")
    return f"{len(callers)} plaintext caller{'s' if len(callers) > 1 else ''} ({names})"


@dataclass(frozen=True, slots=True)
class WorkloadPosture:
    node: str  # node id
    workload: Workload
    effective: Effective
    mtls: float | None  # share of its inbound traffic on mutual TLS; None: no traffic
    callers: tuple[Caller, ...] = ()  # in plain text, most traffic first
    conflicts: tuple[str, ...] = ()
    entry: str = ""  # for a workload outside Kubernetes: its WorkloadEntry and address

    def text(self) -> str:
        """`STRICT, 100% mTLS`; `PERMISSIVE, 3 plaintext callers (unknown, …)`."""
        return f"{self.effective.text()}, {traffic_text(self.mtls, self.callers)}"


def traffic_text(mtls: float | None, callers: Sequence[Caller]) -> str:
    if mtls is None:
        return "no inbound traffic"
    if not callers:
        # all or nothing reads as a whole number: `100% mTLS`
        return f"{'100%' if mtls >= 1 else units.percent(mtls)} mTLS"
    return callers_text(callers)


@dataclass(frozen=True, slots=True)
class NamespacePosture:
    cluster: str
    namespace: str
    effective: Effective  # the namespace's own mode (a workload's may differ)
    workloads: tuple[WorkloadPosture, ...]
    callers: tuple[Caller, ...] = ()  # plaintext callers from outside it

    @property
    def mtls(self) -> float | None:
        known = [(w.mtls, w) for w in self.workloads if w.mtls is not None]
        return min((m for m, _ in known), default=None) if known else None

    def text(self) -> str:
        mixed = {w.effective.text() for w in self.workloads} - {self.effective.text()}
        mode = self.effective.text()
        if mixed:
            mode += f" (some workloads {', '.join(sorted(mixed))})"
        return f"{mode}, {traffic_text(self.mtls, self.callers)}"


@dataclass(frozen=True, slots=True)
class HostPosture:
    """A ServiceEntry's hosts and the traffic to them."""

    entry: ServiceEntry
    plaintext_rps: float
    rps: float


@dataclass(frozen=True, slots=True)
class EdgeVerdict:
    """Which AuthorizationPolicy allows or denies an observed call, in words, and the
    denials the proxies reported on it (403 with Envoy's RBAC flag)."""

    source: str  # node ids
    destination: str
    verdict: Verdict
    denied_rps: float = 0.0

    def text(self, label: Mapping[str, str]) -> str:
        source, destination = (label.get(n, n) for n in (self.source, self.destination))
        ends = f"{source} → {destination}"
        seen = f"; observed: {units.rps(self.denied_rps)} denied by RBAC" if self.denied_rps else ""
        return f"{ends}: {self.verdict.words}{seen}"


@dataclass(frozen=True)
class Posture:
    namespaces: tuple[NamespacePosture, ...]
    conflicts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # policies Istio ignores, configuration left out
    hosts: tuple[HostPosture, ...] = ()
    policies: tuple[str, ...] = ()  # every AuthorizationPolicy, in words
    # the observed calls some AuthorizationPolicy decides (or the proxies denied)
    authorizations: tuple[EdgeVerdict, ...] = ()

    @property
    def workloads(self) -> tuple[WorkloadPosture, ...]:
        return tuple(w for n in self.namespaces for w in n.workloads)

    def workload(self, node: str) -> WorkloadPosture | None:
        return self._by_node.get(node)

    @cached_property
    def _by_node(self) -> dict[str, WorkloadPosture]:
        return {w.node: w for w in self.workloads}

    def namespace(self, namespace: str) -> list[NamespacePosture]:
        return [n for n in self.namespaces if n.namespace == namespace]


def config_for(configs: Mapping[str, SecurityConfig], cluster: str) -> SecurityConfig | None:
    """A cluster's configuration: by its name, or the only one there is (a mesh of one,
    whose control plane is keyed "" while its workloads carry their cluster's name)."""
    if cluster in configs:
        return configs[cluster]
    return next(iter(configs.values())) if len(configs) == 1 else None


def labels_of(w: Workload, config: SecurityConfig | None) -> Mapping[str, str]:
    """A workload's labels as read, else what the telemetry says of it (app, version)."""
    info = config.info(w.namespace, w.name) if config else None
    if info is not None:
        return info.labels
    return {k: v for k, v in (("app", w.app), ("version", w.version)) if v}


def _host_fqdn(host: str, namespace: str) -> str:
    """A host as a DestinationRule writes it, whole: `reviews` is the rule's namespace's."""
    if host.startswith("*") or host.count(".") >= 2:
        return host
    if "." in host:
        return f"{host}.svc.{CLUSTER_DOMAIN}"
    return f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}"


def rules_towards(
    rules: Sequence[DestinationRuleTls], services: Iterable[str], labels: Mapping[str, str]
) -> list[tuple[DestinationRuleTls, TlsSetting]]:
    """The TLS settings of the DestinationRules whose host is one of `services` (whole
    host names) and whose subset, if any, selects a workload with `labels`."""
    wanted = set(services)
    out = []
    for dr in rules:
        host = _host_fqdn(dr.host, dr.namespace)
        if not any(fnmatch.fnmatchcase(s, host) for s in wanted):
            continue
        for s in dr.settings:
            if s.subset and not selects(dr.subset_labels.get(s.subset, {"": "?"}), labels):
                continue
            out.append((dr, s))
    return out


def posture(snapshot: MeshSnapshot, configs: Mapping[str, SecurityConfig]) -> Posture:
    """Each namespace's and workload's effective mode beside the traffic into it, and
    what contradicts itself: a DestinationRule sending plain text to a STRICT workload,
    plain text into STRICT (refused: 503s). `configs`: each cluster's configuration."""
    labels = {n: w.label for n, w in snapshot.nodes.items()}
    into: dict[str, list[Edge]] = {}
    for e in snapshot.edges:
        into.setdefault(e.destination, []).append(e)
    members, entries = _members(snapshot, configs)
    conflicts: list[str] = []
    namespaces: list[NamespacePosture] = []
    for (cluster, namespace), nodes in sorted(members.items()):
        config = config_for(configs, cluster)
        if config is None:
            continue
        pas, root = config.peer_authentications, config.root_namespace
        found: list[WorkloadPosture] = []
        for node, w in sorted(nodes.items()):
            mine = labels_of(w, config)
            eff = effective(pas, namespace, mine, root)
            edges = into.get(node, [])
            inbound = [e for e in edges if carries_traffic(e)]
            total = sum(volume(e) for e in inbound)
            mtls = (sum(volume(e) * e.stats.mtls for e in inbound) / total) if total else None
            callers = _callers(inbound, labels)
            said = _conflicts(w, eff, edges, callers, config, mine)
            conflicts += said
            entry = entries.get(node, "")
            found.append(WorkloadPosture(node, w, eff, mtls, callers, tuple(said), entry))
        outside = [
            e
            for w in found
            for e in into.get(w.node, [])
            if snapshot.nodes.get(e.source, Workload.unknown()).namespace != namespace
        ]
        mode = effective(pas, namespace, {}, root)
        namespaces.append(
            NamespacePosture(cluster, namespace, mode, tuple(found), _callers(outside, labels))
        )
    notes: list[str] = []
    policies: list[str] = []
    for each in configs.values():
        notes += ignored(each.peer_authentications, each.root_namespace)
        notes += each.malformed
        policies += [policy_words(p) for p in each.authorization_policies]
    hosts = [_host(se, snapshot) for each in configs.values() for se in each.service_entries]
    verdicts = _authorizations(snapshot, configs)
    decided = {ref for v in verdicts for ref in v.verdict.policies}
    for each in configs.values():
        notes += [
            f"{p.ref} decided no observed call: possibly stale"
            for p in each.authorization_policies
            if p.ref not in decided and p.action in (Action.ALLOW, Action.DENY)
        ]
    return Posture(
        tuple(namespaces),
        tuple(conflicts),
        tuple(dict.fromkeys(notes)),
        tuple(hosts),
        tuple(policies),
        verdicts,
    )


def _authorizations(
    snapshot: MeshSnapshot, configs: Mapping[str, SecurityConfig]
) -> tuple[EdgeVerdict, ...]:
    """The verdict on each observed call into a workload that some AuthorizationPolicy
    decides, or that the proxies denied (403 with Envoy's RBAC flag)."""
    out: list[EdgeVerdict] = []
    for e in snapshot.edges:
        target = snapshot.nodes.get(e.destination)
        caller = snapshot.nodes.get(e.source)
        if target is None or target.kind is not NodeKind.WORKLOAD:
            continue
        config = config_for(configs, target.cluster)
        if config is None:
            continue
        denied = e.stats.response_flags.get("RBAC", 0.0)
        if not config.authorization_policies and not denied:
            continue
        info = config.info(target.namespace, target.name) or WorkloadInfo(
            target.namespace, target.name, labels_of(target, None)
        )
        peer = Peer(mtls=0.0)
        if caller is not None and caller.kind is NodeKind.WORKLOAD:
            mine = config_for(configs, caller.cluster)
            known = mine.info(caller.namespace, caller.name) if mine else None
            account = known.service_account if known else DEFAULT_ACCOUNT
            principal = WorkloadInfo(caller.namespace, caller.name, {}, account).principal
            peer = Peer(principal, caller.namespace, max(0.0, min(1.0, e.stats.mtls)))
        verdict = authorize(config.authorization_policies, info, peer, config.root_namespace)
        if verdict.policies or denied:
            out.append(EdgeVerdict(e.source, e.destination, verdict, denied))
    return tuple(out)


def _members(
    snapshot: MeshSnapshot, configs: Mapping[str, SecurityConfig], only: str | None = None
) -> tuple[dict[tuple[str, str], dict[str, Workload]], dict[str, str]]:
    """The workloads by (cluster, namespace): those with traffic, and those the
    configuration knows without it; and the ones outside Kubernetes, with their entry.
    `only`: those of one namespace."""
    members: dict[tuple[str, str], dict[str, Workload]] = {}
    for node, w in snapshot.nodes.items():
        if w.kind is NodeKind.WORKLOAD and w.clustered and only in (None, w.namespace):
            members.setdefault((w.cluster, w.namespace), {})[node] = w
    entries: dict[str, str] = {}
    for cluster, config in configs.items():
        for info in config.workloads:
            if only not in (None, info.namespace):
                continue
            home = cluster or _cluster_of(snapshot, info.namespace)
            app, version = info.labels.get("app", ""), info.labels.get("version", "")
            w = Workload(home, info.namespace, info.name, app, version)
            members.setdefault((home, info.namespace), {}).setdefault(w.id, w)
            if info.entry:
                where = info.address or "no address"
                entries[w.id] = f"{info.entry} (outside Kubernetes, {where})"
    return members, entries


def _host(se: ServiceEntry, snapshot: MeshSnapshot) -> HostPosture:
    edges = [
        e
        for e in snapshot.edges
        if e.destination in snapshot.nodes
        and any(fnmatch.fnmatchcase(snapshot.nodes[e.destination].name, h) for h in se.hosts)
    ]
    plain = sum(plaintext_rate(e) for e in edges)
    return HostPosture(se, plain, sum(volume(e) for e in edges))


def _cluster_of(snapshot: MeshSnapshot, namespace: str) -> str:
    """The cluster the mesh's workloads of a namespace are in (a mesh of one)."""
    return next(
        (w.cluster for w in snapshot.nodes.values() if w.namespace == namespace and w.clustered),
        next((w.cluster for w in snapshot.nodes.values() if w.clustered), ""),
    )


def _conflicts(
    w: Workload,
    eff: Effective,
    edges: Sequence[Edge],
    callers: Sequence[Caller],
    config: SecurityConfig,
    labels: Mapping[str, str],
) -> list[str]:
    if eff.mode is not MtlsMode.STRICT:
        return []
    out: list[str] = []
    services = {e.service for e in edges if e.service}
    if w.app:
        services.add(f"{w.app}.{w.namespace}.svc.{CLUSTER_DOMAIN}")
    for dr, s in rules_towards(config.destination_rules, services, labels):
        if s.mode is TlsMode.DISABLE:
            where = f", {s.where()}" if s.where() else ""
            out.append(
                f"{dr.ref} sends plain text (tls DISABLE{where}) to {w.label}, which is "
                f"STRICT ({eff.why()}): its callers' requests are refused"
            )
    for c in callers:
        refused = f", {units.percent(c.refused)} answered 503" if c.refused else ""
        out.append(
            f"{c.label} calls {w.label} in plain text ({units.rps(c.rps)}{refused}), "
            f"but {w.label} is STRICT ({eff.why()}): those calls are refused"
        )
    return out


# -- a change of mode, and what it would break -------------------------------------------


@dataclass(frozen=True, slots=True)
class MtlsPlan:
    """Setting `mode` on a namespace or one workload: the PeerAuthentication as it is
    (None: there is none, it is created) and as it will be (None: it is deleted, as the
    way back from a creation), which workloads change mode, and the plaintext callers the
    change would cut off (`observed` False: no traffic was known to judge by)."""

    cluster: str
    namespace: str
    workload: str  # "" for the whole namespace
    mode: MtlsMode
    before: PeerAuthentication | None
    after: PeerAuthentication | None
    changes: tuple[tuple[str, str, str], ...] = ()  # (workload label, mode before, after)
    breaks: tuple[Caller, ...] = ()
    observed: bool = True

    @property
    def policy(self) -> PeerAuthentication:
        """The object written: as it will be, or (deleted) as it was."""
        found = self.after or self.before
        assert found is not None, "a plan changes a policy"
        return found

    @property
    def action(self) -> str:
        return "create" if self.before is None else "delete" if self.after is None else "change"

    @property
    def changed(self) -> bool:
        if self.before is None or self.after is None:
            return True
        return self.before.mode is not self.after.mode

    @property
    def target(self) -> str:
        return f"{self.namespace}/{self.workload}" if self.workload else self.namespace

    def preview(self) -> list[str]:
        """The change as a person reviews it, with what STRICT would break."""
        policy = self.policy
        if self.before is None:
            was = f"no PeerAuthentication of its own: {policy.ref} is created"
        else:
            was = f"{policy.ref} (resourceVersion {self.before.resource_version})"
            was += (
                " is deleted: the wider policies' modes apply again" if self.after is None else ""
            )
        selector = ", ".join(f"{k}={v}" for k, v in sorted(policy.selector.items()))
        lines = [
            was,
            f"-   mode: {self.before.mode.value if self.before else '(none)'}",
            f"+   mode: {self.after.mode.value if self.after else '(none)'}"
            + (f" (selector {selector})" if selector else ""),
        ]
        if self.changes:
            lines.append("workloads whose effective mode changes:")
            lines += [f"  {name}: {a} → {b}" for name, a, b in self.changes]
        elif self.observed:
            lines.append("no workload's effective mode changes")
        if self.mode is MtlsMode.STRICT and self.after is not None:
            if not self.observed:
                lines.append("what STRICT would refuse is not known: no metrics were read")
            elif self.breaks:
                lines.append(f"STRICT would refuse {callers_text(self.breaks)}:")
                lines += [f"  {c.label}: {units.rps(c.rps)} in plain text" for c in self.breaks]
            else:
                lines.append("STRICT would refuse no observed caller (no plain text seen)")
        return lines


def plan_mode(
    snapshot: MeshSnapshot,
    config: SecurityConfig,
    cluster: str,
    namespace: str,
    workload: str,
    mode: MtlsMode,
) -> MtlsPlan:
    """The PeerAuthentication change that sets `mode` on a namespace (its namespace-wide
    policy: the one Istio applies, or a new `default`) or on one workload (the oldest
    workload policy that selects it, or a new one selecting its labels), and its effect
    on every workload the snapshot and the configuration know."""
    pas = config.peer_authentications
    if workload:
        known = [
            x
            for x in snapshot.nodes.values()
            if (x.namespace, x.name) == (namespace, workload) and x.clustered
        ]
        info = config.info(namespace, workload)
        if not known and info is None:
            raise UsageError(
                f"no workload {workload} in namespace {namespace}: neither the metrics nor "
                "the cluster know it"
            )
        labels = labels_of(known[0] if known else Workload(cluster, namespace, workload), config)
        selector = {k: v for k, v in labels.items() if k in ("app", "version")} or dict(labels)
        if not selector:
            raise UsageError(
                f"{namespace}/{workload}: no labels known to select it by; a PeerAuthentication "
                "without a selector would be the whole namespace's"
            )
        before = _oldest(
            p
            for p in pas
            if p.namespace == namespace and p.selector and selects(p.selector, labels)
        )
        after = (
            replace(before, mode=mode)
            if before is not None
            else PeerAuthentication(namespace, f"{workload}-mtls", mode, selector)
        )
    else:
        before, after = _namespace_wide(config, namespace, mode)
    rest = tuple(p for p in pas if p is not before)
    changes, breaks = _effect(snapshot, config, cluster, namespace, (*rest, after))
    return MtlsPlan(cluster, namespace, workload, mode, before, after, changes, breaks)


def _namespace_wide(
    config: SecurityConfig, namespace: str, mode: MtlsMode
) -> tuple[PeerAuthentication | None, PeerAuthentication]:
    """A namespace's mode set: its namespace-wide policy as it is (the one Istio applies;
    None: none) and as it will be (a new `default`, where there is none)."""
    pas = config.peer_authentications
    before = _oldest(p for p in pas if p.namespace == namespace and not p.selector)
    if before is not None:
        return before, replace(before, mode=mode)
    return None, PeerAuthentication(namespace, "default", mode)


def strict_would_refuse(n: NamespacePosture, config: SecurityConfig) -> tuple[Caller, ...]:
    """The plaintext callers STRICT on a namespace (`plan_mode` for the namespace) would
    refuse, from its workloads' posture as judged already: those of each workload it
    would make STRICT (one with a mode of its own keeps it), one per caller."""
    before, after = _namespace_wide(config, n.namespace, MtlsMode.STRICT)
    policies = (*(p for p in config.peer_authentications if p is not before), after)
    root = config.root_namespace
    rates: dict[str, Caller] = {}
    for w in n.workloads:
        if w.effective.mode is MtlsMode.STRICT or not w.callers:
            continue
        labels = labels_of(w.workload, config)
        if effective(policies, n.namespace, labels, root).mode is not MtlsMode.STRICT:
            continue
        for c in w.callers:
            had = rates.get(c.node)
            if had is None:
                rates[c.node] = c
                continue
            rps = had.rps + c.rps
            refused = (had.refused * had.rps + c.refused * c.rps) / rps if rps else 0.0
            rates[c.node] = replace(had, rps=rps, refused=refused)
    return tuple(sorted(rates.values(), key=lambda c: (-c.rps, c.label)))


def _effect(
    snapshot: MeshSnapshot,
    config: SecurityConfig,
    cluster: str,
    namespace: str,
    policies: Sequence[PeerAuthentication],
) -> tuple[tuple[tuple[str, str, str], ...], tuple[Caller, ...]]:
    """What `policies` instead of the configuration's would change in a namespace (a
    policy of one namespace changes no other's; one of the root namespace, every one's):
    each workload whose effective mode changes (label, before, after), and the plaintext
    callers of those that become STRICT."""
    root = config.root_namespace
    # a namespace's policy changes its own workloads only; the root namespace's, all
    members, _ = _members(snapshot, {cluster: config}, None if namespace == root else namespace)
    changes: list[tuple[str, str, str]] = []
    stricter: set[str] = set()
    for (_, ns), nodes in sorted(members.items()):
        for node, w in sorted(nodes.items()):
            labels = labels_of(w, config)
            old = effective(config.peer_authentications, ns, labels, root)
            new = effective(policies, ns, labels, root)
            if old.text() != new.text():
                changes.append((w.label, old.text(), new.text()))
                if new.mode is MtlsMode.STRICT:
                    stricter.add(node)
    breaks = [e for e in snapshot.edges if e.destination in stricter] if stricter else []
    names = {e.source: _label(snapshot, e.source) for e in breaks}
    return tuple(changes), _callers(breaks, names)


def _label(snapshot: MeshSnapshot, node: str) -> str:
    w = snapshot.nodes.get(node)
    return w.label if w is not None else node
