"""`meshtop shift` over the copies of one VirtualService in two clusters, each a REAL
Kubernetes API server (tests/servers/kube.py: `east` and `west`, each its own etcd and
kube-apiserver), behind the contexts of one kubeconfig: every copy checked and written at
its own version by its own server; a copy a real second writer changes between meshtop's
read and its write refused by that server and left as the other writer left it; a copy
RBAC refuses means nothing is written anywhere."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshtop.connect import Sources
from meshtop.mesh import refresh
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo
from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane
from meshtop.sources.protocols import ClusterSources

from ..servers import kube as real
from ..servers.kube import Interposer, KubeServer, interposed, write_kubeconfig

# the fixtures: the session's two real API servers, two clusters
kube = real.kube
kube_west = real.kube_west

VS = "VirtualService"
_NAMES = itertools.count()


def _weights(server: KubeServer, namespace: str) -> list[int]:
    return [d["weight"] for d in server.get(VS, namespace, "reviews")["spec"]["http"][0]["route"]]


def _set(server: KubeServer, namespace: str, weights: list[int]) -> None:
    server.patch(VS, namespace, "reviews", [
        {"op": "replace", "path": f"/spec/http/0/route/{i}/weight", "value": w}
        for i, w in enumerate(weights)
    ])  # fmt: skip


class Clusters:
    """Bookinfo in the same namespace of both servers, west's reviews drifted to 80/20,
    and a kubeconfig whose contexts `east` and `west` reach each through an Interposer."""

    def __init__(self, east: KubeServer, west: KubeServer, tmp: Path, stack: ExitStack) -> None:
        self.east, self.west = east, west
        self.namespace = f"multi-{next(_NAMES)}"
        for server in (east, west):
            server.namespace(self.namespace)
        _set(west, self.namespace, [80, 20])
        self.proxies: dict[str, Interposer] = {
            "east": stack.enter_context(interposed(east)),
            "west": stack.enter_context(interposed(west)),
        }
        self.tmp = tmp

    def kubeconfig(self, west_user: str = "admin") -> Path:
        return write_kubeconfig(self.tmp / "kubeconfig", [
            ("east", self.east, "admin", self.proxies["east"].url),
            ("west", self.west, west_user, self.proxies["west"].url),
        ])  # fmt: skip

    def weights(self) -> tuple[list[int], list[int]]:
        return _weights(self.east, self.namespace), _weights(self.west, self.namespace)


@pytest.fixture
def clusters(kube: KubeServer, kube_west: KubeServer, tmp_path: Path) -> Iterator[Clusters]:
    with ExitStack() as stack:
        yield Clusters(kube, kube_west, tmp_path, stack)


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


def test_every_copy_is_shown_checked_and_changed(clusters: Clusters, tmp_path: Path) -> None:
    ns, state, config = clusters.namespace, tmp_path / "state", clusters.kubeconfig()
    dry = _shift(config, state, f"{ns}/reviews", "--set", "v1=50,v2=50", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"east:\n  VirtualService {ns}/reviews" in dry.stdout
    assert "-   reviews v1: weight 90" in dry.stdout and "-   reviews v1: weight 80" in dry.stdout
    assert "east: checked" in dry.stdout and "west: checked" in dry.stdout
    assert clusters.weights() == ([90, 10], [80, 20])  # nothing written
    for proxy in clusters.proxies.values():  # each server checked its own copy
        patches = [r for r in proxy.requests if r["verb"] == "PATCH"]
        assert [p["query"].get("dryRun") for p in patches] == [["All"]]

    done = _shift(config, state, f"{ns}/reviews", "--set", "v1=50,v2=50", "--yes")
    assert done.returncode == 0, done.stderr
    assert clusters.weights() == ([50, 50], [50, 50])
    assert "east: applied" in done.stdout and "west: applied" in done.stdout
    assert "every copy is changed" in done.stdout
    applied = [e for e in _audit(state) if e["outcome"] == "applied"]
    assert sorted(e["context"] for e in applied) == ["east", "west"]
    assert {e["context"]: e["before"]["v1"] for e in applied} == {"east": 90, "west": 80}
    # each copy written by its own server, at that server's own version (each etcd's
    # revision, unrelated to the other's)
    for name, server in (("east", clusters.east), ("west", clusters.west)):
        version = server.get(VS, ns, "reviews")["metadata"]["resourceVersion"]
        assert f"{name}: applied (resourceVersion {version})" in done.stdout


def test_a_copy_changed_underneath_is_reported_and_never_overwritten(
    clusters: Clusters, tmp_path: Path
) -> None:
    ns, state = clusters.namespace, tmp_path / "state"
    # someone else, on west's server, between meshtop's read and its write
    clusters.proxies["west"].before_next_write = lambda: _set(clusters.west, ns, [70, 30])
    result = _shift(clusters.kubeconfig(), state, f"{ns}/reviews", "--set", "v1=50,v2=50",
                    "--yes")  # fmt: skip
    assert clusters.proxies["west"].before_next_write is None
    assert result.returncode == 4, result.stdout + result.stderr
    assert clusters.weights() == ([50, 50], [70, 30])  # the other writer's change stands
    assert "east: applied" in result.stdout and "west: conflict" in result.stdout
    assert "applied in east; NOT in west: the copies now differ" in result.stdout
    outcomes = {e["context"]: e["outcome"] for e in _audit(state)}
    assert outcomes["east"] == "applied" and outcomes["west"].startswith("conflict:")


def test_a_copy_rbac_refuses_means_nothing_is_written_anywhere(
    clusters: Clusters, tmp_path: Path
) -> None:
    ns = clusters.namespace
    config = clusters.kubeconfig(west_user="restricted")  # may read west's copy, not write it
    result = _shift(config, tmp_path / "state", f"{ns}/reviews", "--set", "v1=50,v2=50", "--yes")
    assert result.returncode == 3, result.stdout + result.stderr
    assert clusters.weights() == ([90, 10], [80, 20])
    assert "west: failed: refused by the server's dry run" in result.stdout
    assert 'User "restricted" cannot patch' in result.stdout
    assert "east: not written: another cluster's server refused" in result.stdout
    assert "nothing was written" in result.stdout
    east_patches = [r for r in clusters.proxies["east"].requests if r["verb"] == "PATCH"]
    assert all(p["query"].get("dryRun") == ["All"] for p in east_patches)


def test_a_cluster_that_goes_away_is_stale_and_the_other_is_read(
    clusters: Clusters,
) -> None:
    config = clusters.kubeconfig()
    sim = Simulation(bookinfo(), clock=lambda: 1_800_000_000.0)
    planes = {
        c: ClusterSources(sim.metrics, KubernetesControlPlane(KubeConfig(
            context=c, kubeconfig=config, cluster=c, namespaces=(clusters.namespace,),
            timeout_s=5)))
        for c in ("east", "west")
    }  # fmt: skip
    first = asyncio.run(refresh(planes, clock=sim.clock))
    reviews = {r.cluster: r for r in first.routes if r.name == "reviews" and r.kind == VS}
    assert {c: [d.weight for d in r.rules[0].destinations] for c, r in reviews.items()} == {
        "east": [90, 10],
        "west": [80, 20],
    }
    assert first.sources["control_plane:west"].state.value == "fresh"
    clusters.proxies["west"].close()  # west's API server is out of reach from now on
    second = asyncio.run(refresh(planes, previous=first, clock=sim.clock))
    assert second.sources["control_plane:east"].state.value == "fresh"
    assert second.sources["control_plane:west"].state.value == "stale"
    assert "cannot reach the Kubernetes API (west)" in (
        second.sources["control_plane:west"].reason or ""
    )
    assert {r.cluster for r in second.routes if r.name == "reviews" and r.kind == VS} == {
        "east",
        "west",
    }


def test_an_unreachable_cluster_is_said_and_the_others_are_changed(
    clusters: Clusters, tmp_path: Path
) -> None:
    """A third cluster whose API server is out of reach: said, and the two real ones are
    changed; the exit code says not every copy is."""
    config = clusters.kubeconfig()
    doc = yaml.safe_load(config.read_text())
    gone = Interposer(clusters.east)
    gone.close()  # a port that was a server's and is no more
    doc["clusters"].append({"name": "south", "cluster": {"server": gone.url}})
    doc["contexts"].append({"name": "south", "context": {"cluster": "south", "user": "east"}})
    config.write_text(yaml.safe_dump(doc))
    settings = tmp_path / "config.toml"
    settings.write_text(
        "".join(f'[[clusters]]\nname = "{c}"\n\n' for c in ("east", "west", "south"))
    )
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    ns = clusters.namespace
    result = subprocess.run(
        [sys.executable, "-m", "meshtop", "--config", str(settings), "--kubeconfig", str(config),
         "shift", f"{ns}/reviews", "--set", "v1=50,v2=50", "--yes"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"south: cannot read {ns}/reviews" in result.stdout
    assert clusters.weights() == ([50, 50], [50, 50])
    assert "applied in east, west; NOT in south" in result.stdout


async def test_the_console_shift_dialog_changes_every_copy_and_undo_takes_all_back(
    clusters: Clusters, sim: Any
) -> None:
    """The console over both real servers: west's copy opened, `A` (every copy), v1 -10,
    applied to each server at its own version; `:undo` puts each back as it was."""
    from textual.widgets import DataTable

    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.screens.shift import ShiftScreen

    from ..tui.test_console import _first_snapshot, keys, settled, undo, until

    ns, config = clusters.namespace, clusters.kubeconfig()
    planes = {
        c: KubernetesControlPlane(KubeConfig(context=c, kubeconfig=config, cluster=c,
                                             namespaces=(ns,)))
        for c in ("east", "west")
    }  # fmt: skip
    each = {c: ClusterSources(sim.metrics, p, store=p) for c, p in planes.items()}
    app = MeshtopApp(Sources(each, False, sim.clock))

    def notice() -> str:
        return str(app.query_one("#notice").render())

    async with app.run_test(size=(140, 40)) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "3")
        await settled(pilot)
        table = app.query_one("#routes", DataTable)
        heads = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        table.move_cursor(row=heads.index(f"west: VirtualService {ns}/reviews"))
        await keys(pilot, "w")
        await until(pilot, lambda: isinstance(app.screen, ShiftScreen), "the shift dialog")
        screen = app.screen
        assert isinstance(screen, ShiftScreen) and screen.route.cluster == "west"
        await keys(pilot, "A")
        await until(pilot, lambda: set(screen.known) == {"east", "west"}, "every copy read")
        await keys(pilot, "left_square_bracket", "enter")  # v1 -10: 70/30
        assert screen.everywhere and screen.split.weights == (70, 30)
        await keys(pilot, "y")
        await until(pilot, lambda: ":undo takes it back" in notice(), "the write said")
        assert "in west, east" in notice() or "in east, west" in notice()
        assert clusters.weights() == ([70, 30], [70, 30])
        await undo(pilot)
        await until(pilot, lambda: "undone:" in notice(), "the undo said")
    assert clusters.weights() == ([90, 10], [80, 20])
    for proxy in clusters.proxies.values():  # each server: the change and the undo, each
        patches = [r for r in proxy.requests if r["verb"] == "PATCH"]  # checked, then written
        assert [p["query"].get("dryRun") for p in patches] == [["All"], None, ["All"], None]
