"""The Kubernetes adapter and `meshtop shift`, over HTTP against a Kubernetes API emulator
with real REST semantics (tests/kube/emulator.py), through a kubeconfig that points at it,
with Bookinfo's real VirtualServices, DestinationRules and HTTPRoutes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshtop.canary import Plan, Split, parse_set
from meshtop.errors import BackendError, ConflictError, UsageError
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


def test_routes_and_subsets_are_read_with_their_versions(cluster: tuple[Emulator, Path]) -> None:
    emulator, kubeconfig = cluster
    plane = _plane(kubeconfig, "bookinfo", "gamma")
    assert plane.name == "kubernetes emulator"
    routes = {(r.kind, r.name): r for r in asyncio.run(plane.routes())}
    reviews = routes[("VirtualService", "reviews")]
    assert [(d.subset, d.weight) for d in reviews.rules[0].destinations] == [("v1", 90), ("v2", 10)]
    assert (
        reviews.resource_version
        == emulator.objects[("virtualservices", "bookinfo", "reviews")]["metadata"][
            "resourceVersion"
        ]
    )
    gamma = routes[("HTTPRoute", "reviews")]
    assert [(d.host, d.weight) for d in gamma.rules[0].destinations] == [
        ("reviews-v1", 50),
        ("reviews-v3", 50),
    ]
    subsets = asyncio.run(plane.subsets())
    assert subsets[("bookinfo", "reviews")] == {"v1", "v2", "v3"}
    listed = [r["path"] for r in emulator.requests]
    assert "/apis/networking.istio.io/v1/namespaces/bookinfo/virtualservices" in listed


def test_istio_v1beta1_when_v1_is_not_served(cluster: tuple[Emulator, Path]) -> None:
    emulator, kubeconfig = cluster
    emulator.served["networking.istio.io"] = {"v1beta1"}
    routes = asyncio.run(_plane(kubeconfig, "bookinfo").routes())
    assert [r.name for r in routes if r.kind == "VirtualService"] == ["reviews"]
    paths = [r["path"] for r in emulator.requests]
    assert "/apis/networking.istio.io/v1/namespaces/bookinfo/virtualservices" in paths
    assert "/apis/networking.istio.io/v1beta1/namespaces/bookinfo/virtualservices" in paths


def _plan(plane: KubernetesControlPlane, text: str) -> Plan:
    route, _ = asyncio.run(plane.read("VirtualService", "bookinfo", "reviews"))
    before = Split.of(route, route.rules[0])
    return Plan(route, 0, before, parse_set(text, before))


def test_a_change_is_a_json_patch_that_tests_first(cluster: tuple[Emulator, Path]) -> None:
    emulator, kubeconfig = cluster
    plane = _plane(kubeconfig, "bookinfo")
    plan = _plan(plane, "v1=50,v2=50")
    checked = asyncio.run(plane.apply(plan, dry_run=True))
    assert [d.weight for d in checked.rules[0].destinations] == [50, 50]
    stored = emulator.objects[("virtualservices", "bookinfo", "reviews")]
    assert [d["weight"] for d in stored["spec"]["http"][0]["route"]] == [90, 10]  # dry run
    applied = asyncio.run(plane.apply(plan))
    assert [d.weight for d in applied.rules[0].destinations] == [50, 50]
    assert int(applied.resource_version) > int(plan.route.resource_version)
    patch = [r for r in emulator.requests if r["verb"] == "patch"]
    assert [p["query"].get("dryRun") for p in patch] == [["All"], None]
    assert {p["content_type"] for p in patch} == {"application/json-patch+json"}
    assert patch[-1]["body"] == plan.patch()
    assert patch[-1]["body"][0] == {"op": "test", "path": "/metadata/resourceVersion",
                                     "value": plan.route.resource_version}  # fmt: skip


def test_a_concurrent_change_is_refused_never_overwritten(cluster: tuple[Emulator, Path]) -> None:
    emulator, kubeconfig = cluster
    plane = _plane(kubeconfig, "bookinfo")
    plan = _plan(plane, "v1=50,v2=50")

    def someone_else(obj: dict[str, Any]) -> None:
        obj["spec"]["http"][0]["route"][0]["weight"] = 80
        obj["spec"]["http"][0]["route"][1]["weight"] = 20

    emulator.touch("virtualservices", "bookinfo", "reviews", someone_else)
    with pytest.raises(ConflictError, match="changed since it was read"):
        asyncio.run(plane.apply(plan))
    stored = emulator.objects[("virtualservices", "bookinfo", "reviews")]
    assert [d["weight"] for d in stored["spec"]["http"][0]["route"]] == [80, 20]


def test_a_409_is_a_conflict_too(cluster: tuple[Emulator, Path]) -> None:
    emulator, kubeconfig = cluster
    plane = _plane(kubeconfig, "bookinfo")
    plan = _plan(plane, "v1=50,v2=50")
    emulator.conflict_next = True
    with pytest.raises(ConflictError, match="the object has been modified"):
        asyncio.run(plane.apply(plan))


def test_services_are_listed_for_routes_to_hosts_without_one(
    cluster: tuple[Emulator, Path],
) -> None:
    emulator, kubeconfig = cluster
    emulator.load(ISTIO / "platform-kube" / "bookinfo.yaml")
    services = asyncio.run(_plane(kubeconfig, "bookinfo").services())
    assert {("bookinfo", "reviews"), ("bookinfo", "productpage")} <= services


def test_rbac_and_missing_objects_are_clear(cluster: tuple[Emulator, Path]) -> None:
    emulator, kubeconfig = cluster
    plane = _plane(kubeconfig, "bookinfo")
    plan = _plan(plane, "v1=50,v2=50")
    emulator.forbidden.add(("patch", "bookinfo"))
    with pytest.raises(BackendError, match="forbidden by RBAC in emulator"):
        asyncio.run(plane.apply(plan))
    with pytest.raises(UsageError, match="there is none"):
        asyncio.run(plane.read("VirtualService", "bookinfo", "nope"))


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


def _audit(state: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (state / "meshtop" / "audit.jsonl").read_text().splitlines()
    ]


def test_shift_shows_checks_applies_and_records(
    cluster: tuple[Emulator, Path], tmp_path: Path
) -> None:
    emulator, kubeconfig = cluster
    state = tmp_path / "state"
    dry = _shift(kubeconfig, state, "bookinfo/reviews", "--set", "v1=75,v2=25", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "-   reviews v1: weight 90" in dry.stdout and "+   reviews v1: weight 75" in dry.stdout
    assert "nothing was written" in dry.stdout
    refused = _shift(kubeconfig, state, "bookinfo/reviews", "--set", "v1=75,v2=25")
    assert refused.returncode == 2 and "give --yes" in refused.stderr  # no terminal to ask on
    done = _shift(kubeconfig, state, "bookinfo/reviews", "--set", "v1=75,v2=25", "--yes")
    assert done.returncode == 0, done.stderr
    stored = emulator.objects[("virtualservices", "bookinfo", "reviews")]
    assert [d["weight"] for d in stored["spec"]["http"][0]["route"]] == [75, 25]
    log = _audit(state)
    assert [e["outcome"] for e in log] == ["dry run: the server accepted it", "applied"]
    assert log[-1]["before"] == {"v1": 90, "v2": 10} and log[-1]["after"] == {"v1": 75, "v2": 25}
    assert log[-1]["context"] == "emulator" and log[-1]["user"]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("bookinfo/reviews", "--set", "v1=80,v2=10"), 2, "add up to 90, not 100"),
        (("bookinfo/reviews", "--set", "v9=10"), 2, "no destination 'v9'"),
        (("reviews", "--set", "v1=10"), 2, "give the route as NAMESPACE/NAME"),
        (("bookinfo/nope", "--set", "v1=10"), 2, "there is none"),
        (("gamma/reviews", "--set", "reviews-v3=100", "--kind", "HTTPRoute", "--rule", "7"), 2,
         "has no rule '7'"),
    ],
)  # fmt: skip
def test_shift_errors_are_one_line(
    cluster: tuple[Emulator, Path], tmp_path: Path, args: tuple[str, ...], code: int, says: str
) -> None:
    _, kubeconfig = cluster
    result = _shift(kubeconfig, tmp_path / "state", *args)
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("meshtop: ") and says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_shift_leaves_a_route_flagger_steers_unless_forced(
    cluster: tuple[Emulator, Path], tmp_path: Path
) -> None:
    emulator, kubeconfig = cluster
    canary = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "reviews"}
    emulator.touch(
        "virtualservices", "bookinfo", "reviews",
        lambda o: o["metadata"].update(ownerReferences=[canary]),
    )  # fmt: skip
    state = tmp_path / "state"
    refused = _shift(kubeconfig, state, "bookinfo/reviews", "--set", "v1=50,v2=50", "--yes")
    assert refused.returncode == 2 and "steered by Flagger (Canary reviews)" in refused.stderr
    forced = _shift(
        kubeconfig, state, "bookinfo/reviews", "--set", "v1=50,v2=50", "--yes", "--force"
    )
    assert forced.returncode == 0, forced.stderr
    assert [e["outcome"][:8] for e in _audit(state)] == ["refused:", "applied"]


def test_read_only_flag_writes_nothing(cluster: tuple[Emulator, Path], tmp_path: Path) -> None:
    _, kubeconfig = cluster
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "meshtop", "--read-only", "shift", "--kubeconfig", str(kubeconfig),
         "bookinfo/reviews", "--set", "v1=50,v2=50", "--yes"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert result.returncode == 2 and "read-only" in result.stderr


def test_shift_read_only_writes_nothing(cluster: tuple[Emulator, Path], tmp_path: Path) -> None:
    _, kubeconfig = cluster
    config = tmp_path / "config.toml"
    config.write_text("read_only = true\n")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "meshtop", "--config", str(config), "shift", "--kubeconfig",
         str(kubeconfig), "bookinfo/reviews", "--set", "v1=50,v2=50", "--yes"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert result.returncode == 2 and "read-only" in result.stderr


async def test_the_console_reads_and_shifts_routes_in_the_cluster(
    cluster: tuple[Emulator, Path], sim: Any
) -> None:
    from textual.widgets import DataTable

    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.screens.shift import ShiftScreen

    from ..tui.test_console import _first_snapshot, keys, settled, until

    emulator, kubeconfig = cluster
    emulator.load(ISTIO / "platform-kube" / "bookinfo.yaml")
    plane = _plane(kubeconfig, "bookinfo")
    app = MeshtopApp(sim.metrics, plane, clock=sim.clock, writer=plane)
    async with app.run_test(size=(120, 34)) as pilot:
        await _first_snapshot(app)
        assert app.snapshot is not None
        assert app.snapshot.sources["control_plane"].state.value == "fresh"
        assert {w.name for w in app.snapshot.nodes.values()} >= {"reviews-v1", "reviews-v2"}
        await keys(pilot, "3")
        await settled(pilot)
        table = app.query_one("#routes", DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[3] for r in rows] == ["reviews v1", "reviews v2"]
        assert [r[7] for r in rows] == ["", ""]  # both subsets are in the DestinationRule
        await keys(pilot, "w")  # the route is read again first
        await until(pilot, lambda: isinstance(app.screen, ShiftScreen), "the shift dialog")
        await keys(pilot, "4", "enter", "y")  # v1 (selected) to 100%
        await until(pilot, lambda: not isinstance(app.screen, ShiftScreen), "the write")
    stored = emulator.objects[("virtualservices", "bookinfo", "reviews")]
    assert [d["weight"] for d in stored["spec"]["http"][0]["route"]] == [100, 0]
    patches = [r for r in emulator.requests if r["verb"] == "patch"]
    assert [p["query"].get("dryRun") for p in patches] == [["All"], None]


async def test_the_console_leaves_a_route_flagger_steers_alone(
    cluster: tuple[Emulator, Path], sim: Any
) -> None:
    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.screens.shift import ShiftScreen

    from ..tui.test_console import _first_snapshot, keys, settled, until

    emulator, kubeconfig = cluster
    emulator.load(ISTIO / "platform-kube" / "bookinfo.yaml")
    canary = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "reviews"}
    emulator.touch(
        "virtualservices", "bookinfo", "reviews",
        lambda o: o["metadata"].update(ownerReferences=[canary]),
    )  # fmt: skip
    plane = _plane(kubeconfig, "bookinfo")
    app = MeshtopApp(sim.metrics, plane, clock=sim.clock, writer=plane)
    async with app.run_test(size=(120, 34)) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "3")
        await settled(pilot)
        await keys(pilot, "w")

        def said() -> bool:
            return "steered by Flagger" in str(app.query_one("#notice").render())

        await until(pilot, said, "why the route is left alone")
        assert not isinstance(app.screen, ShiftScreen)
        assert "steered by Flagger (Canary reviews)" in str(app.query_one("#notice").render())


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
