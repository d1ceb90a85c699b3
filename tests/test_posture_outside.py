"""Workloads outside Kubernetes and the simulated mesh obeying its configuration (issue
22): a VM (a WorkloadEntry) and a ServiceEntry's host are nodes of their own kind; the
VM's calls into bookinfo are denied by an AuthorizationPolicy, as the proxies report it
(403, Envoy's RBAC flag); a DestinationRule's DISABLE towards a STRICT workload fails the
simulated calls; policies that decide no observed call are possibly stale."""

from __future__ import annotations

import asyncio

import pytest

from meshtop.graphview import Grouping, ViewOptions, build
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot, NodeKind
from meshtop.posture import (
    Action,
    AuthorizationPolicy,
    DestinationRuleTls,
    MtlsMode,
    PeerAuthentication,
    Rule,
    SecurityConfig,
    Source,
    TlsMode,
    TlsSetting,
    posture,
)
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, spread

from .conftest import Clock

NS = "Kubernetes/bookinfo/"
VM = "Kubernetes/bookinfo/legacy-batch"
RATINGS = NS + "ratings-v1"
PRODUCTPAGE, DETAILS = NS + "productpage-v1", NS + "details-v1"
GOOGLE = "external/external/www.googleapis.com"


def _snap(sim: Simulation) -> MeshSnapshot:
    return asyncio.run(refresh(sim.clusters, window_s=60, clock=sim.clock))


def _config(sim: Simulation) -> SecurityConfig:
    return asyncio.run(sim.security[""].security())


def test_the_vm_and_the_service_entrys_host_are_nodes_of_their_own_kind(
    sim: Simulation,
) -> None:
    snapshot = _snap(sim)
    assert snapshot.nodes[VM].kind is NodeKind.VM and snapshot.nodes[VM].is_workload
    assert snapshot.nodes[VM].clustered  # in a namespace of the mesh, with a proxy
    assert snapshot.nodes[GOOGLE].kind is NodeKind.SERVICE_ENTRY
    assert not snapshot.nodes[GOOGLE].clustered
    view = build(snapshot, ViewOptions())
    assert view.nodes[VM.replace("legacy-batch", "app:legacy-batch")].label == "▣ legacy-batch"
    assert view.nodes[GOOGLE].label == "◇ www.googleapis.com"
    by_workload = build(snapshot, ViewOptions(grouping=Grouping.WORKLOAD))
    assert by_workload.nodes[VM].label == "▣ legacy-batch"
    collapsed = build(snapshot, ViewOptions(collapsed={"bookinfo"}))  # its namespace's
    assert collapsed.nodes["Kubernetes/bookinfo/*"].label == "bookinfo (all)"
    assert VM not in collapsed.nodes


# a DENY on the VM (its app label) for callers from bookinfo, as an operator adds one
DENY_BOOKINFO = AuthorizationPolicy(
    "bookinfo", "deny-bookinfo", Action.DENY, {"app": "legacy-batch"},
    (Rule((Source({"namespaces": ("bookinfo",)}),)),),
)  # fmt: skip


def test_the_vm_has_traffic_and_a_denial_is_answered_403_with_rbacs_flag(
    sim: Simulation, clock: Clock
) -> None:
    before = _snap(sim)
    e = before.edge(DETAILS, VM)
    assert e is not None and e.stats.rps > 0 and e.stats.mtls == 1.0  # both have a proxy
    assert e.stats.response_codes.keys() == {"200"} and e.stats.denied_rps == 0
    found = posture(before, {"": _config(sim)})
    assert found.workload(VM) is not None and found.workload(VM).mtls == 1.0  # type: ignore[union-attr]
    clock.advance(30)
    sim.security[""].set_authorization_policy(DENY_BOOKINFO)
    after = _snap(sim)
    e = after.edge(DETAILS, VM)
    assert e is not None
    assert e.stats.response_codes == {"403": pytest.approx(e.stats.rps)}
    assert e.stats.response_flags == {"RBAC": pytest.approx(e.stats.rps)}
    assert e.stats.denied_rps == pytest.approx(e.stats.rps)
    # the calls it does not match are let through
    allowed = after.edge(NS + "reviews-v2", RATINGS)
    assert allowed is not None and allowed.stats.response_codes.keys() == {"200"}
    found = posture(after, {"": _config(sim)})
    (vm,) = [v for v in found.authorizations if v.destination == VM]
    assert vm.verdict.words == (
        "denied by DENY AuthorizationPolicy bookinfo/deny-bookinfo (from namespaces bookinfo)"
    )
    assert vm.denied_rps == pytest.approx(e.stats.rps)
    assert "AuthorizationPolicy bookinfo/deny-bookinfo" not in found.stale
    # history: the denials start at the change
    history = asyncio.run(sim.metrics.history(DETAILS, VM, 120))
    assert history.summary.response_flags.get("RBAC", 0) > 0
    assert 0 < history.summary.client_error_rate < 1  # type: ignore[operator]


def test_a_policy_that_decides_no_observed_call_is_possibly_stale(sim: Simulation) -> None:
    config = _config(sim)
    retired = AuthorizationPolicy(
        "bookinfo", "allow-old-frontend", Action.DENY, {"app": "productpage"},
        (Rule((Source({"namespaces": ("frontend-old",)}),)),),
    )  # fmt: skip
    audit = AuthorizationPolicy("bookinfo", "audit-all", Action.AUDIT, {}, (Rule(),))
    with_more = SecurityConfig(
        peer_authentications=config.peer_authentications,
        authorization_policies=(*config.authorization_policies, retired, audit),
        workloads=config.workloads,
    )
    found = posture(_snap(sim), {"": with_more})
    assert found.stale == (  # AUDIT decides none; deny-legacy decides no observed call
        "AuthorizationPolicy bookinfo/deny-legacy",
        "AuthorizationPolicy bookinfo/allow-old-frontend",
    )
    assert (
        "AuthorizationPolicy bookinfo/allow-old-frontend decided no observed call: possibly stale"
        in found.notes
    )


# bookinfo's own DestinationRule for details, changed to send plain text
DETAILS_PLAIN = DestinationRuleTls("bookinfo", "details", "details", (TlsSetting(TlsMode.DISABLE),))


def test_disable_towards_a_strict_workload_fails_its_calls(sim: Simulation, clock: Clock) -> None:
    security = sim.security[""]
    security.set_policy(PeerAuthentication("bookinfo", "default", MtlsMode.STRICT))
    assert _snap(sim).edge(PRODUCTPAGE, DETAILS).stats.error_rate == 0  # type: ignore[union-attr]
    clock.advance(30)
    security.set_destination_rule(DETAILS_PLAIN)
    after = _snap(sim)
    e = after.edge(PRODUCTPAGE, DETAILS)
    assert e is not None
    assert e.stats.mtls == 0.0  # sent in plain text by productpage's proxy
    assert e.stats.error_rate == 1.0
    # the server closes the connection: the client's proxy says 503 UC
    assert e.stats.response_codes == {"503": pytest.approx(e.stats.rps)}
    assert e.stats.response_flags == {"UC": pytest.approx(e.stats.rps)}
    other = after.edge(PRODUCTPAGE, NS + "reviews-v1")
    assert other is not None and other.stats.error_rate == 0 and other.stats.mtls == 1.0
    history = asyncio.run(sim.metrics.history(PRODUCTPAGE, DETAILS, 120))
    errors = [x for x in history.error_rate if x is not None]
    assert errors[0] == 0 and errors[-1] == 1.0  # from the moment of the change
    found = posture(after, {"": _config(sim)})
    assert any(
        c.startswith("DestinationRule bookinfo/details sends plain text (tls DISABLE) to "
                     "bookinfo/details-v1, which is STRICT")
        for c in found.conflicts
    )  # fmt: skip


def test_disable_towards_permissive_is_plain_text_let_in(sim: Simulation) -> None:
    sim.security[""].set_destination_rule(DETAILS_PLAIN)
    e = _snap(sim).edge(PRODUCTPAGE, DETAILS)
    assert e is not None and e.stats.mtls == 0.0 and e.stats.error_rate == 0
    assert posture(_snap(sim), {"": _config(sim)}).conflicts == ()


def test_a_subsets_tls_is_over_the_rules_own(sim: Simulation) -> None:
    sim.security[""].set_policy(PeerAuthentication("bookinfo", "default", MtlsMode.STRICT))
    sim.security[""].set_destination_rule(
        DestinationRuleTls(
            "bookinfo", "details", "details",
            (TlsSetting(TlsMode.DISABLE), TlsSetting(TlsMode.ISTIO_MUTUAL, "v1")),
            {"v1": {"version": "v1"}},
        )
    )  # fmt: skip
    e = _snap(sim).edge(PRODUCTPAGE, DETAILS)
    assert e is not None and e.stats.mtls == 1.0 and e.stats.error_rate == 0


def test_a_mesh_spread_over_clusters_leaves_the_vm_out(clock: Clock) -> None:
    sim = Simulation(spread(bookinfo(), ["east", "west"]), clock=clock)
    snapshot = _snap(sim)
    assert not [n for n, w in snapshot.nodes.items() if w.kind is NodeKind.VM]
    assert not [e for e in snapshot.edges if "legacy" in e.destination]
