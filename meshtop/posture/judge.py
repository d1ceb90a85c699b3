"""The posture judged: each namespace's and workload's effective mode beside the traffic
into it, the configuration that contradicts itself (a DestinationRule's DISABLE towards a
STRICT workload, plain text into STRICT), the policies Istio ignores or that decided no
observed call, and which AuthorizationPolicy decides each observed call."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from meshtop import units
from meshtop.model import Edge, MeshSnapshot, Workload
from meshtop.posture.authorization import Peer, Verdict, authorize, policy_words
from meshtop.posture.config import (
    CLUSTER_DOMAIN,
    DEFAULT_ACCOUNT,
    Action,
    DestinationRuleTls,
    MtlsMode,
    SecurityConfig,
    ServiceEntry,
    TlsMode,
    TlsSetting,
    WorkloadInfo,
    selects,
)
from meshtop.posture.modes import Effective, effective, ignored
from meshtop.posture.traffic import (
    Caller,
    carries_traffic,
    plaintext_callers,
    plaintext_rate,
    traffic_text,
    volume,
)


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
    # the ALLOW and DENY policies that decided no observed call: possibly stale
    stale: tuple[str, ...] = ()

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
    members, entries = workloads_by_namespace(snapshot, configs)
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
            callers = plaintext_callers(inbound, labels)
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
            NamespacePosture(
                cluster, namespace, mode, tuple(found), plaintext_callers(outside, labels)
            )
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
    stale = [
        p.ref
        for each in configs.values()
        for p in each.authorization_policies
        if p.ref not in decided and p.action in (Action.ALLOW, Action.DENY)
    ]
    notes += [f"{ref} decided no observed call: possibly stale" for ref in stale]
    return Posture(
        tuple(namespaces),
        tuple(conflicts),
        tuple(dict.fromkeys(notes)),
        tuple(hosts),
        tuple(policies),
        verdicts,
        tuple(dict.fromkeys(stale)),
    )


def _authorizations(
    snapshot: MeshSnapshot, configs: Mapping[str, SecurityConfig]
) -> tuple[EdgeVerdict, ...]:
    """The verdict on each observed call into a workload that some AuthorizationPolicy
    decides, or that the proxies denied (403 with Envoy's RBAC flag)."""
    out: list[EdgeVerdict] = []
    for e in snapshot.edges:
        v = verdict_on(e, snapshot.nodes, configs)
        if v is not None and (v.verdict.policies or v.denied_rps):
            out.append(v)
    return tuple(out)


def verdict_on(
    e: Edge, nodes: Mapping[str, Workload], configs: Mapping[str, SecurityConfig]
) -> EdgeVerdict | None:
    """Which AuthorizationPolicy allows or denies an observed call, in words, with the
    requests the proxies denied on it; None for a call into no workload (a host, a
    service without workloads) or into a cluster whose configuration is not known."""
    target, caller = nodes.get(e.destination), nodes.get(e.source)
    if target is None or not target.is_workload:
        return None
    config = config_for(configs, target.cluster)
    if config is None:
        return None
    info = config.info(target.namespace, target.name) or WorkloadInfo(
        target.namespace, target.name, labels_of(target, None)
    )
    peer = Peer(mtls=0.0)
    if caller is not None and caller.is_workload:
        mine = config_for(configs, caller.cluster)
        known = mine.info(caller.namespace, caller.name) if mine else None
        account = known.service_account if known else DEFAULT_ACCOUNT
        principal = WorkloadInfo(caller.namespace, caller.name, {}, account).principal
        peer = Peer(principal, caller.namespace, max(0.0, min(1.0, e.stats.mtls)))
    verdict = authorize(config.authorization_policies, info, peer, config.root_namespace)
    return EdgeVerdict(e.source, e.destination, verdict, e.stats.denied_rps)


def workloads_by_namespace(
    snapshot: MeshSnapshot, configs: Mapping[str, SecurityConfig], only: str | None = None
) -> tuple[dict[tuple[str, str], dict[str, Workload]], dict[str, str]]:
    """The workloads by (cluster, namespace): those with traffic, and those the
    configuration knows without it; and the ones outside Kubernetes, with their entry.
    `only`: those of one namespace."""
    members: dict[tuple[str, str], dict[str, Workload]] = {}
    for node, w in snapshot.nodes.items():
        if w.is_workload and only in (None, w.namespace):
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
