"""The simulated mesh's security configuration, one copy per cluster as each cluster's
control plane holds it: a mesh-wide PERMISSIVE PeerAuthentication in the root namespace,
every workload's labels and service account and, for Bookinfo, what a real installation
shows beside it: bookinfo's own namespace-wide PERMISSIVE policy, its DestinationRules'
ISTIO_MUTUAL, an AuthorizationPolicy letting only reviews read ratings, a DENY for a
legacy namespace, a ServiceEntry for Google's book API and a VM (a WorkloadEntry).

The traffic obeys it: a caller without a proxy (plain text) into a workload whose
effective mode is STRICT is refused, its calls answered 503 (`refuses`, asked by
`sim/traffic.py` at every moment, so a change shows in the next refresh and in history
from the moment it was made). PeerAuthentications are written as a cluster's API server
writes them (`apply`: a resource version that moves on, a change since the read a
conflict), only through the change workflow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from importlib import resources

import yaml

from meshtop.errors import ConflictError
from meshtop.model import NodeKind
from meshtop.posture import (
    ROOT_NAMESPACE,
    Action,
    AuthorizationPolicy,
    MtlsMode,
    MtlsPlan,
    Operation,
    PeerAuthentication,
    Rule,
    SecurityConfig,
    ServiceEntry,
    Source,
    WorkloadInfo,
    effective,
)
from meshtop.sim.topology import BOOKINFO_NAMESPACE, GOOGLEAPIS, SimMesh, SimWorkload
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
                "legacy",
                "legacy-batch",
                {"app": "legacy-batch"},
                "legacy-batch",
                "10.0.0.7",
                "WorkloadEntry legacy/legacy-batch",
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
        mine = [
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

    async def security(self) -> SecurityConfig:
        return replace(self._config, peer_authentications=self.policies())

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

    def refuses(self, source: SimWorkload, destination: SimWorkload, at: float) -> bool:
        """Whether calls from `source` to `destination` at `at` are refused: plain text
        (the caller has no proxy) into a workload whose effective mode is STRICT."""
        if source.sidecar or not destination.sidecar:
            return False
        w = destination.workload
        if w.kind is not NodeKind.WORKLOAD or not self._mine(w.cluster):
            return False
        labels = {k: v for k, v in (("app", w.app), ("version", w.version)) if v}
        return effective(self.policies(at), w.namespace, labels).mode is MtlsMode.STRICT


def refusing(
    securities: dict[str, SimSecurity],
) -> Callable[[SimWorkload, SimWorkload, float], bool]:
    """The mesh's `refuses`: the destination's cluster's copy decides."""
    only = next(iter(securities.values())) if len(securities) == 1 else None

    def refuses(source: SimWorkload, destination: SimWorkload, at: float) -> bool:
        copy = only or securities.get(destination.workload.cluster)
        return copy is not None and copy.refuses(source, destination, at)

    return refuses


def _stamp(t: float) -> str:
    """A creation time as the API server writes one."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
