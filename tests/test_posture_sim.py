"""The simulated mesh carries a security configuration and its traffic obeys it (a plain
text caller into STRICT is refused), and `meshtop posture` and `meshtop export` show it on
the demo: bookinfo's effective mode, and the unmeshed caller of productpage as what STRICT
would break."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from importlib import resources

import jsonschema
import pytest

from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot
from meshtop.posture import MtlsMode, PeerAuthentication, posture
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, generated, spread

from .conftest import Clock

PRODUCTPAGE = "Kubernetes/bookinfo/productpage-v1"
UNKNOWN = "unknown/unknown/unknown"


def _snap(sim: Simulation) -> MeshSnapshot:
    return asyncio.run(refresh(sim.clusters, window_s=60, clock=sim.clock))


def meshtop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshtop", *args], capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, env=dict(os.environ),
    )  # fmt: skip


def test_the_demo_carries_bookinfos_security_configuration(sim: Simulation) -> None:
    config = asyncio.run(sim.security[""].security())
    assert [(p.namespace, p.name, p.mode) for p in config.peer_authentications] == [
        ("istio-system", "default", MtlsMode.PERMISSIVE),
        ("bookinfo", "default", MtlsMode.PERMISSIVE),
    ]
    assert [(p.name, p.action.value) for p in config.authorization_policies] == [
        ("ratings-viewer", "ALLOW"),
        ("deny-legacy", "DENY"),
    ]
    vm = config.info("bookinfo", "legacy-batch")
    assert vm is not None and vm.entry == "WorkloadEntry bookinfo/legacy-batch"
    reviews = config.info("bookinfo", "reviews-v2")
    assert reviews is not None and reviews.service_account == "bookinfo-reviews"
    assert {r.name for r in config.destination_rules} == {"productpage", "reviews", "ratings",
                                                           "details"}  # fmt: skip


def test_plain_text_into_strict_is_refused_from_the_moment_of_the_change(
    sim: Simulation, clock: Clock
) -> None:
    before = _snap(sim)
    assert before.edge(UNKNOWN, PRODUCTPAGE).stats.error_rate == 0  # type: ignore[union-attr]
    clock.advance(30)
    made = sim.security[""].set_policy(PeerAuthentication("bookinfo", "default", MtlsMode.STRICT))
    assert made.resource_version == "2" and made.created == "2025-01-01T00:00:00Z"
    after = _snap(sim)
    refused = after.edge(UNKNOWN, PRODUCTPAGE)
    assert refused is not None
    assert refused.stats.error_rate == 1.0
    assert refused.stats.response_codes == {"503": pytest.approx(refused.stats.rps)}
    gateway = after.edge("Kubernetes/istio-system/istio-ingressgateway", PRODUCTPAGE)
    assert gateway is not None and gateway.stats.error_rate == 0  # on mTLS: let in
    # history: the failures start at the change, not before
    history = asyncio.run(sim.metrics.history(UNKNOWN, PRODUCTPAGE, 120))
    errors = [e for e in history.error_rate if e is not None]
    assert errors[0] == 0 and errors[-1] == 1.0
    found = posture(after, {"": asyncio.run(sim.security[""].security())})
    (conflict,) = found.conflicts
    assert conflict.startswith("unknown calls bookinfo/productpage-v1 in plain text (")
    assert "100.00% answered 503" in conflict


def test_every_cluster_has_its_own_copy(clock: Clock) -> None:
    sim = Simulation(spread(bookinfo(), ["east", "west"]), clock=clock)
    assert set(sim.security) == {"east", "west"}
    sim.security["east"].set_policy(PeerAuthentication("bookinfo", "default", MtlsMode.STRICT))
    west = asyncio.run(sim.security["west"].security())
    assert {p.mode for p in west.peer_authentications} == {MtlsMode.PERMISSIVE}
    snapshot = _snap(sim)
    # the unmeshed client lives beside the first cluster: its calls to east's productpage
    # are refused, west's are not
    into = {e.destination: e.stats.error_rate for e in snapshot.edges if e.source == UNKNOWN}
    assert into == {"east/bookinfo/productpage-v1": 1.0}


def test_a_generated_mesh_has_the_mesh_wide_policy_and_its_workloads() -> None:
    sim = Simulation(generated(40, seed=2), clock=lambda: 1_800_000_000.0)
    config = asyncio.run(sim.security[""].security())
    assert [p.name for p in config.peer_authentications] == ["default"]
    assert len(config.workloads) == sum(
        1 for w in sim.mesh.workloads.values() if w.workload.kind.value == "workload"
    )


def test_posture_on_the_demo_lists_bookinfo_and_what_strict_would_break() -> None:
    result = meshtop("posture", "--demo", "-n", "bookinfo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "bookinfo: PERMISSIVE, 1 plaintext caller (unknown)"
    assert lines[1] == "  set by namespace-wide PeerAuthentication bookinfo/default"
    assert re.fullmatch(r"  STRICT would refuse: unknown [0-9.]+rps", lines[2])  # live rates
    assert "  productpage-v1     PERMISSIVE  1 plaintext caller (unknown)" in lines
    assert "  ratings-v1         PERMISSIVE  100% mTLS" in lines
    assert "  legacy-batch (VM)  PERMISSIVE  100% mTLS" in lines  # the VM, in bookinfo
    assert not any(line.startswith("istio-system") for line in lines)  # -n bookinfo
    assert any("bookinfo/reviews-v2 → bookinfo/ratings-v1: allowed only for requests" in line
               for line in lines)  # fmt: skip


def test_posture_as_json_and_markdown() -> None:
    doc = json.loads(meshtop("posture", "--demo", "--format", "json").stdout)
    bookinfo_ns = next(n for n in doc["namespaces"] if n["namespace"] == "bookinfo")
    assert [c["label"] for c in bookinfo_ns["strict_would_refuse"]] == ["unknown"]
    (vm,) = [w for w in bookinfo_ns["workloads"] if w["outside_kubernetes"]]
    assert (
        vm["outside_kubernetes"]
        == "WorkloadEntry bookinfo/legacy-batch (outside Kubernetes, 10.0.0.7)"
    )
    assert doc["unread"] == {} and doc["schema"] == 1
    text = meshtop("posture", "--demo", "--format", "markdown").stdout
    assert text.startswith("# meshtop security posture\n")
    assert "| bookinfo | PERMISSIVE | namespace-wide PeerAuthentication bookinfo/default |" in text


def test_posture_errors_are_one_line() -> None:
    result = meshtop("posture", "--prometheus", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert result.stderr == (
        "meshtop: cannot use the kubeconfig: Invalid kube-config file. No configuration found.\n"
    )


def test_the_demos_export_carries_the_modes_and_its_gates_judge_them() -> None:
    result = meshtop("export", "--demo")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    schema = json.loads(
        resources.files("meshtop.export").joinpath("snapshot.schema.json").read_text()
    )
    jsonschema.validate(doc, schema)
    assert doc["security"]["modes"]["namespaces"][0]["namespace"] == "bookinfo"
    modes = meshtop("export", "--demo", "--fail-on", "mtls-mode!=STRICT ns=bookinfo")
    assert modes.returncode == 1
    assert "7 gate violations:" in modes.stderr  # bookinfo's six and its VM
    assert ("mtls-mode!=STRICT ns=bookinfo: bookinfo/productpage-v1 is PERMISSIVE "
            "(namespace-wide PeerAuthentication bookinfo/default)") in modes.stderr  # fmt: skip
    plain = meshtop("export", "--demo", "--fail-on", "plaintext>0 ns=bookinfo")
    assert plain.returncode == 1
    assert "plaintext>0 ns=bookinfo: unknown → bookinfo/productpage-v1 has plaintext" in (
        plain.stderr
    )
    nothing = meshtop("export", "--demo", "--fail-on", "mtls-mode!=STRICT ns=nowhere")
    assert nothing.returncode == 1
    assert "its scope matches no workload to check" in nothing.stderr
    on_mtls = meshtop("export", "--demo", "--fail-on", "bookinfo/ratings-*:plaintext>0 ns=bookinfo")
    assert on_mtls.returncode == 0, on_mtls.stderr
