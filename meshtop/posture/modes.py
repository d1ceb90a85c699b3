"""Each workload's effective mTLS mode, with the precedence Istio documents
(istio.io/latest/docs/concepts/security/), and the PeerAuthentications Istio ignores.

A PeerAuthentication in the root namespace without a selector is mesh-wide, one in
another namespace without a selector is namespace-wide, one with a selector is
workload-specific; the narrowest that matches applies; where rivals match, the oldest
wins; UNSET inherits the parent's mode, and the mesh's default is PERMISSIVE; a
port-level mode (on a workload-specific policy only) overrides the workload's mode on that
port."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from meshtop.posture.config import ROOT_NAMESPACE, MtlsMode, PeerAuthentication, selects


def scope(pa: PeerAuthentication, root: str = ROOT_NAMESPACE) -> str:
    """`mesh-wide`, `namespace-wide`, `workload`, or `ignored`: Istio ignores a policy
    with a selector in the root namespace (istio/api#3604)."""
    if pa.namespace == root:
        return "ignored" if pa.selector else "mesh-wide"
    return "workload" if pa.selector else "namespace-wide"


def oldest(policies: Iterable[PeerAuthentication]) -> PeerAuthentication | None:
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
    mesh = oldest(p for p in policies if p.namespace == root and not p.selector)
    ns = (
        oldest(p for p in policies if p.namespace == namespace and not p.selector)
        if namespace != root
        else None
    )
    workload = (
        oldest(
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
        kept = oldest(rivals)
        out += [
            f"{p.ref}: ignored, {kept.ref} is older and covers the same {scope(p, root)} scope"
            for p in rivals
            if kept is not None and p is not kept
        ]
    return sorted(out)
