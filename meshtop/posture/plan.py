"""A change of mTLS mode planned: the PeerAuthentication as it is and as it will be, the
workloads whose effective mode changes, and the plaintext callers STRICT would refuse
(for one change, and for every namespace of a report at once)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from meshtop import units
from meshtop.errors import UsageError
from meshtop.model import MeshSnapshot, Workload
from meshtop.posture.config import MtlsMode, PeerAuthentication, SecurityConfig, selects
from meshtop.posture.judge import NamespacePosture, labels_of, workloads_by_namespace
from meshtop.posture.modes import effective, oldest
from meshtop.posture.traffic import Caller, callers_text, plaintext_callers


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
        before = oldest(
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
    before = oldest(p for p in pas if p.namespace == namespace and not p.selector)
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
    members, _ = workloads_by_namespace(
        snapshot, {cluster: config}, None if namespace == root else namespace
    )
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
    return tuple(changes), plaintext_callers(breaks, names)


def _label(snapshot: MeshSnapshot, node: str) -> str:
    w = snapshot.nodes.get(node)
    return w.label if w is not None else node
