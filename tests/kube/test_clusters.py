"""`meshtop shift` over the copies of one VirtualService in two clusters, each cluster's
API server a Kubernetes API emulator (tests/kube/emulator.py) behind a context of one
kubeconfig: every copy checked and written at its own version, and a copy changed
underneath reported and left as the other writer left it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshtop.federation import FederatedControlPlane
from meshtop.mesh import refresh
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo
from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane

from ..conftest import FIXTURES
from .emulator import Emulator, running_clusters

REVIEWS = FIXTURES / "istio" / "networking" / "virtual-service-reviews-90-10.yaml"
SUBSETS = FIXTURES / "istio" / "networking" / "destination-rule-all.yaml"
KEY = ("virtualservices", "bookinfo", "reviews")


def _weights(emulator: Emulator) -> list[int]:
    return [d["weight"] for d in emulator.objects[KEY]["spec"]["http"][0]["route"]]


def _set(weights: list[int]) -> Any:
    def change(obj: dict[str, Any]) -> None:
        for d, w in zip(obj["spec"]["http"][0]["route"], weights, strict=True):
            d["weight"] = w

    return change


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[tuple[Emulator, Emulator, Path]]:
    east, west = Emulator(), Emulator()
    for emulator in (east, west):
        emulator.load(REVIEWS)
        emulator.load(SUBSETS)
    west.touch(*KEY, _set([80, 20]))  # west's copy has drifted
    with running_clusters({"east": east, "west": west}, tmp_path) as kubeconfig:
        yield east, west, kubeconfig


def _shift(kubeconfig: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "meshtop", "shift", "--kubeconfig", str(kubeconfig),
         "--context", "east", "--context", "west", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def _audit(state: Path) -> list[dict[str, Any]]:
    """The audit log's outcomes (each write's intent, logged before it, left out)."""
    lines = (state / "meshtop" / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["outcome"] != "about to apply"]


def test_every_copy_is_shown_checked_and_changed(
    clusters: tuple[Emulator, Emulator, Path], tmp_path: Path
) -> None:
    east, west, kubeconfig = clusters
    state = tmp_path / "state"
    dry = _shift(kubeconfig, state, "bookinfo/reviews", "--set", "v1=50,v2=50", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    # each copy's own diff, from what that copy has
    assert "east:\n  VirtualService bookinfo/reviews" in dry.stdout
    assert "-   reviews v1: weight 90" in dry.stdout and "-   reviews v1: weight 80" in dry.stdout
    assert "east: checked" in dry.stdout and "west: checked" in dry.stdout
    assert _weights(east) == [90, 10] and _weights(west) == [80, 20]  # nothing written

    done = _shift(kubeconfig, state, "bookinfo/reviews", "--set", "v1=50,v2=50", "--yes")
    assert done.returncode == 0, done.stderr
    assert _weights(east) == [50, 50] and _weights(west) == [50, 50]
    assert "east: applied" in done.stdout and "west: applied" in done.stdout
    assert "every copy is changed" in done.stdout
    applied = [e for e in _audit(state) if e["outcome"] == "applied"]
    assert sorted(e["context"] for e in applied) == ["east", "west"]
    assert {e["context"]: e["before"]["v1"] for e in applied} == {"east": 90, "west": 80}


def test_a_copy_changed_underneath_is_reported_and_never_overwritten(
    clusters: tuple[Emulator, Emulator, Path], tmp_path: Path
) -> None:
    east, west, kubeconfig = clusters
    west.before_next_write = _set([70, 30])  # someone else, between meshtop's read and write
    state = tmp_path / "state"
    result = _shift(kubeconfig, state, "bookinfo/reviews", "--set", "v1=50,v2=50", "--yes")
    assert result.returncode == 4, result.stdout + result.stderr
    assert _weights(east) == [50, 50]  # the other copy applied
    assert _weights(west) == [70, 30]  # the other writer's change stands
    assert "east: applied" in result.stdout and "west: conflict" in result.stdout
    assert "applied in east; NOT in west: the copies now differ" in result.stdout
    outcomes = {e["context"]: e["outcome"] for e in _audit(state)}
    assert outcomes["east"] == "applied" and outcomes["west"].startswith("conflict:")


def test_a_copy_the_server_refuses_means_nothing_is_written_anywhere(
    clusters: tuple[Emulator, Emulator, Path], tmp_path: Path
) -> None:
    east, west, kubeconfig = clusters
    west.forbidden.add(("patch", "bookinfo"))  # RBAC: may read here, not write
    result = _shift(kubeconfig, tmp_path / "state", "bookinfo/reviews", "--set", "v1=50,v2=50",
                    "--yes")  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert _weights(east) == [90, 10] and _weights(west) == [80, 20]
    assert "west: failed: refused by the server's dry run" in result.stdout
    assert "east: not written: another cluster's server refused" in result.stdout
    assert "nothing was written" in result.stdout


def test_an_unreachable_cluster_is_said_and_the_others_are_changed(
    clusters: tuple[Emulator, Emulator, Path], tmp_path: Path
) -> None:
    east, west, kubeconfig = clusters
    doc = yaml.safe_load(kubeconfig.read_text())
    doc["clusters"].append({"name": "south", "cluster": {"server": "http://127.0.0.1:9"}})
    doc["contexts"].append({"name": "south", "context": {"cluster": "south", "user": "meshtop"}})
    kubeconfig.write_text(yaml.safe_dump(doc))  # a third cluster, out of reach
    config = tmp_path / "config.toml"
    config.write_text(
        '[[clusters]]\nname = "east"\n\n[[clusters]]\nname = "west"\n\n'
        '[[clusters]]\nname = "south"\n'
    )
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    result = subprocess.run(
        [sys.executable, "-m", "meshtop", "--config", str(config), "--kubeconfig",
         str(kubeconfig), "shift", "bookinfo/reviews", "--set", "v1=50,v2=50", "--yes"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert "south: cannot read bookinfo/reviews" in result.stdout
    assert _weights(east) == [50, 50] and _weights(west) == [50, 50]
    assert "applied in east, west; NOT in south" in result.stdout


async def test_routes_of_every_cluster_are_read_and_one_down_goes_stale(
    clusters: tuple[Emulator, Emulator, Path],
) -> None:
    _, west, kubeconfig = clusters
    planes = FederatedControlPlane({
        c: KubernetesControlPlane(KubeConfig(context=c, kubeconfig=kubeconfig, cluster=c,
                                             namespaces=("bookinfo",)))
        for c in ("east", "west")
    })  # fmt: skip
    sim = Simulation(bookinfo(), clock=lambda: 1_800_000_000.0)
    first = await refresh(sim.metrics, planes, clock=sim.clock)
    reviews = {r.cluster: r for r in first.routes if r.name == "reviews"}
    assert {c: [d.weight for d in r.rules[0].destinations] for c, r in reviews.items()} == {
        "east": [90, 10],
        "west": [80, 20],
    }
    assert first.sources["control_plane:east"].state.value == "fresh"
    west.forbidden.add(("get", "bookinfo"))
    second = await refresh(sim.metrics, planes, previous=first, clock=sim.clock)
    assert second.sources["control_plane:east"].state.value == "fresh"
    assert second.sources["control_plane:west"].state.value == "stale"
    assert "forbidden" in second.sources["control_plane:west"].reason
    # west's routes as last read stand, marked stale; east's are as read now
    assert {r.cluster for r in second.routes if r.name == "reviews"} == {"east", "west"}
