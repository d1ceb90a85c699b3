"""The Kubernetes adapter and `meshtop shift` in the cases a real API server cannot be made
to produce, over HTTP against a Kubernetes API emulator (tests/kube/emulator.py) through a
kubeconfig that points at it. Everything a real server can answer is tested against one
(tests/kube/test_real_*.py, tests/servers/kube.py); left here:

- a 409 Conflict answering meshtop's patch: a real server answers a JSON patch whose
  `test` fails with 422, and retries its own internal update conflicts, so it never
  answers 409 to it;
- routes the cluster serves malformed (a weight "ninety", a destination without a host):
  Istio's CRD schema refuses them at creation (test_real_apiserver.py shows it), so only a
  cluster whose CRDs carry no schema serves them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshtop.canary import Plan, Split, parse_set
from meshtop.errors import ConflictError
from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane, owner

from ..conftest import FIXTURES
from .emulator import Emulator, running

ISTIO = FIXTURES / "istio"


@pytest.fixture
def cluster(tmp_path: Path, fixtures: Path) -> Iterator[tuple[Emulator, Path]]:
    emulator = Emulator()
    emulator.load(ISTIO / "networking" / "virtual-service-reviews-90-10.yaml")
    emulator.load(ISTIO / "networking" / "destination-rule-all.yaml")
    emulator.load(ISTIO / "gateway-api" / "route-reviews-50-v3.yaml", namespace="gamma")
    with running(emulator, tmp_path) as kubeconfig:
        yield emulator, kubeconfig


def _plane(kubeconfig: Path, *namespaces: str) -> KubernetesControlPlane:
    return KubernetesControlPlane(KubeConfig(kubeconfig=kubeconfig, namespaces=namespaces))


def _plan(plane: KubernetesControlPlane, text: str) -> Plan:
    route, _ = asyncio.run(plane.read("VirtualService", "bookinfo", "reviews"))
    before = Split.of(route, route.rules[0])
    return Plan(route, 0, before, parse_set(text, before))


def test_a_409_is_a_conflict_too(cluster: tuple[Emulator, Path]) -> None:
    emulator, kubeconfig = cluster
    plane = _plane(kubeconfig, "bookinfo")
    plan = _plan(plane, "v1=50,v2=50")
    emulator.conflict_next = True
    with pytest.raises(ConflictError, match="the object has been modified"):
        asyncio.run(plane.apply(plan))


def test_routes_steered_by_flagger_or_argo_are_known() -> None:
    assert owner({"metadata": {"ownerReferences": [
        {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "reviews"}]}}) == (
        "Flagger (Canary reviews)"
    )  # fmt: skip
    assert owner({"metadata": {"managedFields": [{"manager": "argo-rollouts"}]}}) == (
        "Argo Rollouts (manages its fields)"
    )
    assert owner({"metadata": {"labels": {"app.kubernetes.io/managed-by": "flagger"}}})
    assert owner({"metadata": {"managedFields": [{"manager": "kubectl"}]}}) is None


# -- meshtop shift ----------------------------------------------------------------------


def _shift(kubeconfig: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "meshtop", "shift", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def test_a_malformed_route_is_left_out_and_said_the_rest_shown(
    cluster: tuple[Emulator, Path], tmp_path: Path
) -> None:
    """A VirtualService whose weight is "ninety", another without a host: each is said on
    its own, the others are read; `meshtop shift` of one is one line and exit 3, not 70."""
    emulator, kubeconfig = cluster
    bad = {
        "ninety": {"destination": {"host": "reviews"}, "weight": "ninety"},
        "hostless": {"destination": {"subset": "v1"}, "weight": 100},
    }
    for name, destination in bad.items():
        emulator.add({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "bookinfo"},
            "spec": {"hosts": [name], "http": [{"route": [destination]}]},
        })  # fmt: skip
    plane = _plane(kubeconfig, "bookinfo")
    routes = {r.name for r in asyncio.run(plane.routes())}
    assert "reviews" in routes and not routes & {"ninety", "hostless"}
    said = " ".join(plane.malformed)
    assert "VirtualService bookinfo/ninety: weight 'ninety' is not a whole number" in said
    assert "VirtualService bookinfo/hostless: a destination without a host" in said
    from meshtop.mesh import refresh
    from meshtop.sim.sources import Simulation
    from meshtop.sim.topology import bookinfo

    snapshot = asyncio.run(refresh(Simulation(bookinfo()).metrics, plane))
    health = snapshot.sources["control_plane"]
    assert health.state.value == "fresh" and "bookinfo/ninety" in (health.reason or "")
    done = _shift(kubeconfig, tmp_path / "state", "bookinfo/ninety", "--set", "v1=100", "--yes")
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines() == [
        "meshtop: VirtualService bookinfo/ninety: weight 'ninety' is not a whole number from 0"
    ]
