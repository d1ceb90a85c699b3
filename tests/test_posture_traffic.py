"""The posture beside the traffic: each workload's effective mode with what actually
calls it, the configuration that contradicts itself, and what STRICT would break, on the
simulated Bookinfo (its unmeshed client calls productpage in plain text)."""

from __future__ import annotations

import asyncio

import pytest

from meshtop.errors import UsageError
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot
from meshtop.posture import (
    DestinationRuleTls,
    MtlsMode,
    PeerAuthentication,
    SecurityConfig,
    TlsMode,
    TlsSetting,
    WorkloadInfo,
    plan_mode,
    posture,
)
from meshtop.report import Report
from meshtop.sim.sources import Simulation

PRODUCTPAGE = "Kubernetes/bookinfo/productpage-v1"
UNKNOWN = "unknown/unknown/unknown"


def _snap(sim: Simulation) -> MeshSnapshot:
    return asyncio.run(refresh(sim.clusters, window_s=60, clock=sim.clock))


def config(*policies: PeerAuthentication, **more: object) -> SecurityConfig:
    return SecurityConfig(peer_authentications=policies, **more)  # type: ignore[arg-type]


def test_each_workload_has_its_mode_beside_its_traffic(sim: Simulation) -> None:
    found = posture(_snap(sim), {"": config(PeerAuthentication("bookinfo", "default",
                                                               MtlsMode.PERMISSIVE))})  # fmt: skip
    page = found.workload(PRODUCTPAGE)
    assert page is not None
    assert page.text() == "PERMISSIVE, 1 plaintext caller (unknown)"
    assert page.effective.why() == "namespace-wide PeerAuthentication bookinfo/default"
    (caller,) = page.callers
    assert (caller.node, caller.refused) == (UNKNOWN, 0.0)
    assert caller.rps == pytest.approx(1.0, rel=0.1)  # the client's 1 rps, wobbling
    ratings = found.workload("Kubernetes/bookinfo/ratings-v1")
    assert ratings is not None and ratings.text() == "PERMISSIVE, 100% mTLS"
    (bookinfo,) = found.namespace("bookinfo")
    assert bookinfo.text() == "PERMISSIVE, 1 plaintext caller (unknown)"
    assert not found.conflicts


def test_a_workload_the_cluster_knows_without_traffic_is_listed(sim: Simulation) -> None:
    idle = WorkloadInfo("bookinfo", "reviews-v4", {"app": "reviews", "version": "v4"})
    found = posture(_snap(sim), {"": config(workloads=(idle,))})
    listed = found.workload("Kubernetes/bookinfo/reviews-v4")
    assert listed is not None and listed.text() == "PERMISSIVE, no inbound traffic"


def test_a_vm_outside_kubernetes_is_a_workload_of_its_own(sim: Simulation) -> None:
    vm = WorkloadInfo("legacy", "batch-vm", {"app": "batch"}, "batch", "10.0.0.7",
                      "WorkloadEntry legacy/batch-vm")  # fmt: skip
    found = posture(_snap(sim), {"": config(workloads=(vm,))})
    listed = found.workload("Kubernetes/legacy/batch-vm")
    assert listed is not None
    assert listed.entry == "WorkloadEntry legacy/batch-vm (outside Kubernetes, 10.0.0.7)"


def test_plain_text_into_strict_is_a_conflict(sim: Simulation) -> None:
    strict = config(PeerAuthentication("bookinfo", "default", MtlsMode.STRICT))
    found = posture(_snap(sim), {"": strict})
    page = found.workload(PRODUCTPAGE)
    assert page is not None and page.text() == "STRICT, 1 plaintext caller (unknown)"
    (said,) = found.conflicts
    assert said.startswith("unknown calls bookinfo/productpage-v1 in plain text (")
    assert said.endswith(
        "but bookinfo/productpage-v1 is STRICT (namespace-wide PeerAuthentication "
        "bookinfo/default): those calls are refused"
    )


def test_a_destination_rule_sending_plain_text_to_strict_is_a_conflict(sim: Simulation) -> None:
    rule = DestinationRuleTls(
        "bookinfo", "reviews", "reviews",
        (TlsSetting(TlsMode.ISTIO_MUTUAL), TlsSetting(TlsMode.DISABLE, subset="v2")),
        {"v2": {"version": "v2"}},
    )  # fmt: skip
    strict_reviews = PeerAuthentication("bookinfo", "reviews", MtlsMode.STRICT, {"app": "reviews"})
    found = posture(_snap(sim), {"": config(strict_reviews, destination_rules=(rule,))})
    assert found.conflicts == (
        "DestinationRule bookinfo/reviews sends plain text (tls DISABLE, subset v2) to "
        "bookinfo/reviews-v2, which is STRICT (workload PeerAuthentication bookinfo/reviews): "
        "its callers' requests are refused",
    )


def test_strict_on_the_namespace_would_break_the_unmeshed_client(sim: Simulation) -> None:
    snapshot = _snap(sim)
    plan = plan_mode(snapshot, config(), "", "bookinfo", "", MtlsMode.STRICT)
    assert plan.before is None
    assert plan.after == PeerAuthentication("bookinfo", "default", MtlsMode.STRICT)
    assert [c.label for c in plan.breaks] == ["unknown"]
    assert plan.breaks[0].rps == pytest.approx(1.0, rel=0.1)
    assert ("bookinfo/productpage-v1", "PERMISSIVE", "STRICT") in plan.changes
    preview = "\n".join(plan.preview())
    assert "no PeerAuthentication of its own: PeerAuthentication bookinfo/default is created" in (
        preview
    )
    assert "STRICT would refuse 1 plaintext caller (unknown):" in preview


def test_strict_on_a_namespace_leaves_a_workload_with_its_own_mode(sim: Simulation) -> None:
    own = PeerAuthentication("bookinfo", "page", MtlsMode.PERMISSIVE, {"app": "productpage"})
    plan = plan_mode(_snap(sim), config(own), "", "bookinfo", "", MtlsMode.STRICT)
    assert plan.breaks == ()  # productpage keeps its own PERMISSIVE
    assert all(name != "bookinfo/productpage-v1" for name, _, _ in plan.changes)
    assert "STRICT would refuse no observed caller" in "\n".join(plan.preview())


def test_a_workload_plan_changes_its_own_policy_or_makes_one(sim: Simulation) -> None:
    snapshot = _snap(sim)
    made = plan_mode(snapshot, config(), "", "bookinfo", "productpage-v1", MtlsMode.STRICT)
    assert made.after == PeerAuthentication(
        "bookinfo", "productpage-v1-mtls", MtlsMode.STRICT, {"app": "productpage", "version": "v1"}
    )
    assert made.changes == (("bookinfo/productpage-v1", "PERMISSIVE", "STRICT"),)
    mine = PeerAuthentication("bookinfo", "page", MtlsMode.STRICT, {"app": "productpage"},
                              resource_version="7")  # fmt: skip
    back = plan_mode(snapshot, config(mine), "", "bookinfo", "productpage-v1", MtlsMode.PERMISSIVE)
    assert (back.before, back.after.mode, back.breaks) == (mine, MtlsMode.PERMISSIVE, ())
    with pytest.raises(UsageError, match="no workload nothing in namespace bookinfo"):
        plan_mode(snapshot, config(), "", "bookinfo", "nothing", MtlsMode.STRICT)


def test_the_report_counts_plain_text_as_the_posture_does(sim: Simulation) -> None:
    snapshot = _snap(sim)
    plaintext = {e.key for e in Report(snapshot).plaintext}
    assert plaintext == {
        (UNKNOWN, PRODUCTPAGE),
        ("Kubernetes/bookinfo/details-v1", "external/external/www.googleapis.com"),
    }
