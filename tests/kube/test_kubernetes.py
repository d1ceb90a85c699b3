"""The Kubernetes adapter in the one case a real API server cannot be made to produce,
over HTTP against a Kubernetes API emulator (tests/kube/emulator.py) through a kubeconfig
that points at it: a 409 Conflict answering meshtop's patch (a real server answers a JSON
patch whose `test` fails with 422, and retries its own internal update conflicts, so it
never answers 409 to one); and `owner()`, which needs no server. Everything a real server
can answer is tested against one: tests/kube/test_real_*.py, tests/servers/kube.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshtop.canary import Plan, Split, parse_set
from meshtop.errors import ConflictError
from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane
from meshtop.sources.routing import owner

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


def test_shift_over_clusters_none_of_which_answers_is_the_backends_exit_3(
    tmp_path: Path,
) -> None:
    """Out of reach everywhere is a backend's failure (3), not "no cluster has it" (2)."""
    import socket

    import yaml

    from ..test_cli import meshtop

    def closed_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    names = ("east", "west")
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "east",
        "clusters": [{"name": n, "cluster": {"server": f"http://127.0.0.1:{closed_port()}"}}
                     for n in names],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "u"}} for n in names],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }))  # fmt: skip
    config.chmod(0o600)
    result = meshtop("shift", "bookinfo/reviews", "--set", "v1=50,v2=50", "--kubeconfig",
                     str(config), "--context", "east", "--context", "west", "--yes")  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("meshtop: no cluster could be read for bookinfo/reviews: "), last
    assert "cannot reach the Kubernetes API" in last
