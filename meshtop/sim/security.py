"""The simulated mesh's security configuration, one copy per cluster as each cluster's
control plane holds it: a mesh-wide PERMISSIVE PeerAuthentication in the root namespace,
every workload's labels and service account and, for Bookinfo, what a real installation
shows beside it: bookinfo's own namespace-wide PERMISSIVE policy, its DestinationRules'
ISTIO_MUTUAL, an AuthorizationPolicy letting only reviews read ratings, a DENY for a
legacy namespace, a ServiceEntry for Google's book API and a VM (a WorkloadEntry).

The traffic obeys it (`guard`, asked by `sim/traffic.py` at every moment, so a change
shows in the next refresh and in history from the moment it was made), as Istio's
proxies would: a caller without a proxy (plain text) into a workload whose effective
mode is STRICT is answered 503 by the server's proxy; a client whose DestinationRule
says `tls.mode: DISABLE` sends plain text, which a STRICT server refuses (the client's
proxy counts 503 `UC`: the connection closed before any answer); a call an
AuthorizationPolicy denies is answered 403 with Envoy's `RBAC` flag. PeerAuthentications
are written as a cluster's API server writes them (`apply`: a resource version that moves
on, a change since the read a conflict), only through the change workflow; an operator's
DestinationRules and AuthorizationPolicies with `set_destination_rule` and
`set_authorization_policy`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import resources

import yaml

from meshtop.errors import ConflictError
from meshtop.model import RBAC, NodeKind
from meshtop.posture import (
    ROOT_NAMESPACE,
    Action,
    AuthorizationPolicy,
    Decision,
    DestinationRuleTls,
    MtlsMode,
    MtlsPlan,
    Operation,
    Peer,
    PeerAuthentication,
    Rule,
    SecurityConfig,
    ServiceEntry,
    Source,
    TlsMode,
    WorkloadInfo,
    authorize,
    effective,
    rules_towards,
)
from meshtop.sim.topology import (
    BOOKINFO_NAMESPACE,
    GOOGLEAPIS,
    TRUST_DOMAIN,
    VM_NAME,
    VM_NAMESPACE,
    Guard,
    Refusal,
    SimMesh,
    SimWorkload,
)
from meshtop.sources.security import destination_rule

CREATED = "2025-01-01T00:00:00Z"  # when the simulated mesh's policies were made


def bookinfo_extras(namespace: str = BOOKINFO_NAMESPACE) -> SecurityConfig:
    """Bookinfo's own security configuration, as its samples and a real mesh have it."""
    reviews = f"cluster.local/ns/{namespace}/sa/bookinfo-reviews"
    text = resources.files("meshtop.sim").joinpath("bookinfo", "destination-rule-all-mtls.yaml")
    docs = [doc for doc in yaml.safe_load_all(text.read_text("utf-8")) if doc]
    rules = tuple(destination_rule(doc, namespace) for doc in docs)
    return SecurityConfig(
        peer_authentications=(
            PeerAuthentication(
                namespace, "default", MtlsMode.PERMISSIVE, created=CREATED, resource_version="1"
            ),
        ),
        destination_rules=rules,
        authorization_policies=(
            AuthorizationPolicy(
                namespace,
                "ratings-viewer",
                Action.ALLOW,
                {"app": "ratings"},
                (Rule((Source({"principals": (reviews,)}),), (Operation({"methods": ("GET",)}),)),),
            ),
            AuthorizationPolicy(
                namespace,
                "deny-legacy",
                Action.DENY,
                {},
                (Rule((Source({"namespaces": ("legacy",)}),)),),
            ),
        ),
        service_entries=(
            ServiceEntry(namespace, "googleapis", (GOOGLEAPIS,), "MESH_EXTERNAL", "DNS"),
        ),
        workloads=(
            WorkloadInfo(
                VM_NAMESPACE,
                VM_NAME,
                {"app": VM_NAME},
                VM_NAME,
                "10.0.0.7",
                f"WorkloadEntry {VM_NAMESPACE}/{VM_NAME}",
            ),
        ),
    )


class SimSecurity:
    """One cluster's copy of the simulated mesh's security configuration."""

    def __init__(
        self, mesh: SimMesh, clock: Callable[[], float], cluster: str | None = None
    ) -> None:
        self.mesh = mesh
        self.clock = clock
        self.cluster = cluster
        mine = [  # a VM's is its WorkloadEntry, in the extras
            w
            for w in mesh.workloads.values()
            if w.workload.kind is NodeKind.WORKLOAD and self._mine(w.workload.cluster)
        ]
        workloads = tuple(
            WorkloadInfo(
                w.workload.namespace,
                w.workload.name,
                {k: v for k, v in (("app", w.workload.app), ("version", w.workload.version)) if v},
                w.service_account,
            )
            for w in sorted(mine, key=lambda w: w.id)
        )
        extras = bookinfo_extras() if mesh.name.startswith("bookinfo") else SecurityConfig()
        mesh_wide = PeerAuthentication(
            ROOT_NAMESPACE, "default", MtlsMode.PERMISSIVE, created=CREATED, resource_version="1"
        )
        self._config = replace(
            extras,
            peer_authentications=(mesh_wide, *extras.peer_authentications),
            workloads=(*workloads, *extras.workloads),
        )
        # every change of the policies since loading, with when: traffic at a past moment
        # obeys the policies of then
        self._changes: list[tuple[float, tuple[PeerAuthentication, ...]]] = []
        self._rule_changes: list[tuple[float, tuple[DestinationRuleTls, ...]]] = []
        self._grant_changes: list[tuple[float, tuple[AuthorizationPolicy, ...]]] = []
        self._version = 1  # as an API server's: every write moves it on, for every object

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    @property
    def name(self) -> str:
        where = f" {self.cluster}" if self.cluster else ""
        return f"simulated{where} ({self.mesh.name})"

    def _mine(self, cluster: str) -> bool:
        return self.cluster is None or cluster == self.cluster

    def policies(self, at: float | None = None) -> tuple[PeerAuthentication, ...]:
        """The PeerAuthentications now, or at an earlier moment."""
        now = self._config.peer_authentications
        for when, policies in self._changes:
            if at is not None and when > at:
                break
            now = policies
        return now

    def rules(self, at: float | None = None) -> tuple[DestinationRuleTls, ...]:
        """The DestinationRules' TLS settings now, or at an earlier moment."""
        now = self._config.destination_rules
        for when, rules in self._rule_changes:
            if at is not None and when > at:
                break
            now = rules
        return now

    def grants(self, at: float | None = None) -> tuple[AuthorizationPolicy, ...]:
        """The AuthorizationPolicies now, or at an earlier moment."""
        now = self._config.authorization_policies
        for when, grants in self._grant_changes:
            if at is not None and when > at:
                break
            now = grants
        return now

    async def security(self) -> SecurityConfig:
        return replace(
            self._config,
            peer_authentications=self.policies(),
            destination_rules=self.rules(),
            authorization_policies=self.grants(),
        )

    def set_authorization_policy(self, policy: AuthorizationPolicy) -> AuthorizationPolicy:
        """Create or replace an AuthorizationPolicy (by namespace and name), as an
        operator's `kubectl apply` would: the traffic obeys it from now on."""
        now = self.grants()
        kept = tuple(p for p in now if (p.namespace, p.name) != (policy.namespace, policy.name))
        self._next_version()
        self._grant_changes.append((self.clock(), (*kept, policy)))
        return policy

    def set_destination_rule(self, rule: DestinationRuleTls) -> DestinationRuleTls:
        """Create or replace a DestinationRule's TLS settings (by namespace and name), as
        an operator's `kubectl apply` would: the traffic obeys it from now on."""
        now = self.rules()
        kept = tuple(r for r in now if (r.namespace, r.name) != (rule.namespace, rule.name))
        self._next_version()
        self._rule_changes.append((self.clock(), (*kept, rule)))
        return rule

    def set_policy(self, policy: PeerAuthentication) -> PeerAuthentication:
        """Create or replace a PeerAuthentication (by namespace and name) as an operator's
        `kubectl apply` would: its resource version moves on, the traffic obeys it from
        now on."""
        now = self.policies()
        old = next(
            (p for p in now if (p.namespace, p.name) == (policy.namespace, policy.name)), None
        )
        made = replace(
            policy,
            created=old.created if old else _stamp(self.clock()),
            resource_version=self._next_version(),
        )
        self._changes.append((self.clock(), (*(p for p in now if p is not old), made)))
        return made

    async def apply(self, plan: MtlsPlan, *, dry_run: bool = False) -> PeerAuthentication | None:
        """A PeerAuthentication created, changed or deleted as the Kubernetes API does it:
        only if it is still as the plan read it (else `ConflictError`, nothing changed);
        with `dry_run`, checked and not written. Only the change workflow calls it."""
        policy = plan.policy
        now = self.policies()
        current = next(
            (p for p in now if (p.namespace, p.name) == (policy.namespace, policy.name)), None
        )
        if plan.before is None and current is not None:
            raise ConflictError(
                f"{policy.ref} exists since it was read (resourceVersion "
                f"{current.resource_version}); nothing was written"
            )
        if plan.before is not None and (
            current is None or current.resource_version != plan.before.resource_version
        ):
            now_said = "deleted" if current is None else f"now {current.resource_version}"
            raise ConflictError(
                f"{policy.ref} changed since it was read (resourceVersion "
                f"{plan.before.resource_version}, {now_said}); nothing was written"
            )
        if dry_run:
            return plan.after
        if plan.after is None:
            self._changes.append((self.clock(), tuple(p for p in now if p is not current)))
            return None
        return self.set_policy(plan.after)

    def guard(self, source: SimWorkload, destination: SimWorkload, at: float) -> Guard:
        """What this cluster's configuration at `at` does to calls from `source` to
        `destination`: plain text where the caller has no proxy or its DestinationRule
        says DISABLE; refused where plain text meets STRICT (Istio checks the connection
        first), else where an AuthorizationPolicy denies the caller."""
        w = destination.workload
        if not destination.sidecar or not w.is_workload or not self._mine(w.cluster):
            return OPEN
        rules, policies = self.rules(at), self.grants(at)
        if source.sidecar and not rules and not policies:
            return OPEN  # a generated mesh's every call: nothing to judge
        labels = {k: v for k, v in (("app", w.app), ("version", w.version)) if v}
        disabled = source.sidecar and self._disabled(destination, rules, labels)
        plaintext = not source.sidecar or disabled
        root = self._config.root_namespace
        if plaintext and effective(self.policies(at), w.namespace, labels, root).mode is (
            MtlsMode.STRICT
        ):
            # no proxy on the caller: the server's proxy answers; a proxy sending plain
            # text: the server closes the connection, its client's proxy says 503 UC
            refused = Refusal("503") if not source.sidecar else Refusal("503", "UC", False)
            return Guard(plaintext, refused)
        if not policies:
            return Guard(plaintext) if plaintext else OPEN
        caller = source.workload
        peer = (
            Peer(mtls=0.0)
            if plaintext or not caller.is_workload
            else Peer(
                WorkloadInfo(caller.namespace, caller.name, {}, source.service_account).principal,
                caller.namespace,
            )
        )
        verdict = authorize(policies, WorkloadInfo(w.namespace, w.name, labels), peer, root)
        # a verdict that depends on the request (a path, a method) lets the simulated
        # requests through: they are the GETs the policies of the demo allow
        denied = Refusal("403", RBAC) if verdict.decision is Decision.DENIED else None
        return Guard(plaintext, denied)

    @staticmethod
    def _disabled(
        destination: SimWorkload, rules: Sequence[DestinationRuleTls], labels: dict[str, str]
    ) -> bool:
        """Whether one of `rules` towards `destination` sends plain text: its subset's
        `tls` over the rule's own (the simulated calls name no port)."""
        if not rules or not destination.service:
            return False
        w = destination.workload
        host = f"{destination.service}.{w.namespace}.svc.{TRUST_DOMAIN}"
        found = [s for _, s in rules_towards(rules, [host], labels) if s.port is None]
        found.sort(key=lambda s: not s.subset)  # a subset's setting first
        return bool(found) and found[0].mode is TlsMode.DISABLE


OPEN = Guard()  # a call the configuration lets through, on mutual TLS where both have a proxy


def guarding(
    securities: dict[str, SimSecurity],
) -> Callable[[SimWorkload, SimWorkload, float], Guard]:
    """The mesh's `guard`: the destination's cluster's copy decides."""
    only = next(iter(securities.values())) if len(securities) == 1 else None

    def guard(source: SimWorkload, destination: SimWorkload, at: float) -> Guard:
        copy = only or securities.get(destination.workload.cluster)
        return copy.guard(source, destination, at) if copy is not None else OPEN

    return guard


def _stamp(t: float) -> str:
    """A creation time as the API server writes one."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
