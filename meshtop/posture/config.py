"""The security configuration as the posture reads it: PeerAuthentication, DestinationRule
`tls`, AuthorizationPolicy, ServiceEntry and the workloads (their labels, service account,
and for a VM its WorkloadEntry), one cluster's in a `SecurityConfig` (issue 22)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

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


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a selector's matchLabels match a workload's labels (an empty one: all)."""
    return all(labels.get(k) == v for k, v in selector.items())
