"""The console against a REAL Kubernetes API server (tests/servers/kube.py): what the
server refuses is said in place and the console goes on; the shift dialog meets RBAC, a
real second writer, and a user with no rights at all, and the server keeps what it had."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshtop.connect import Sources
from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane
from meshtop.sources.protocols import ClusterSources

from ..servers import kube as real
from ..servers.kube import KubeServer, interposed

# the fixtures: the session's real API server, and a namespace of the test's own in it
kube = real.kube
bookinfo = real.bookinfo

VS = "VirtualService"


def _plane(kubeconfig: Path, namespace: str) -> KubernetesControlPlane:
    return KubernetesControlPlane(KubeConfig(kubeconfig=kubeconfig, namespaces=(namespace,)))


def _weights(kube: KubeServer, namespace: str) -> list[int]:
    route = kube.get(VS, namespace, "reviews")["spec"]["http"][0]["route"]
    return [d["weight"] for d in route]


async def _open_shift_dialog(app: Any, pilot: Any) -> Any:
    """The routes tab, the cursor on reviews v1, `w`: the shift dialog, once it is up."""
    from textual.widgets import DataTable

    from meshtop.tui.screens.shift import ShiftScreen

    from ..tui.test_console import keys, settled, until

    await keys(pilot, "3")
    await settled(pilot)
    table = app.query_one("#routes", DataTable)
    column = [str(table.get_row_at(i)[3]) for i in range(table.row_count)]
    table.move_cursor(row=column.index("reviews v1"))
    await keys(pilot, "w")
    await until(pilot, lambda: isinstance(app.screen, ShiftScreen), "the shift dialog")
    return app.screen


async def test_reads_rbac_refuses_are_said_in_place_and_the_console_goes_on(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any
) -> None:
    """`nobody` may read nothing: the control plane's health says RBAC's refusal, the
    traffic is shown all the same, and `w` has no route to change."""
    from meshtop.tui.app import MeshtopApp

    from ..tui.test_console import _first_snapshot

    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", "nobody"), bookinfo)
    app = MeshtopApp(Sources(ClusterSources.one(sim.metrics, plane, None, plane), False, sim.clock))
    async with app.run_test(size=(120, 34)):
        await _first_snapshot(app)
        assert app.snapshot is not None
        health = app.snapshot.sources["control_plane"]
        assert health.state.value == "failed", health
        assert "forbidden by RBAC in nobody" in (health.reason or "")
        assert 'User "nobody" cannot list' in (health.reason or "")
        assert app.snapshot.sources["metrics"].state.value == "fresh"
        assert app.snapshot.edges  # the traffic, without the routes
        assert app.is_running


async def test_the_shift_dialog_of_a_read_only_user_is_refused_and_writes_nothing(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any
) -> None:
    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.screens.shift import ShiftScreen

    from ..tui.test_console import _first_snapshot, keys, until

    with interposed(kube) as proxy:
        plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", "reader", server=proxy.url),
                       bookinfo)  # fmt: skip
        app = MeshtopApp(
            Sources(ClusterSources.one(sim.metrics, plane, None, plane), False, sim.clock)
        )
        async with app.run_test(size=(120, 34)) as pilot:
            await _first_snapshot(app)
            screen = await _open_shift_dialog(app, pilot)
            await keys(pilot, "4", "enter", "y")  # v1 to 100%
            await until(pilot, lambda: "forbidden" in screen.message, "the refusal said")
            assert "forbidden by RBAC in reader" in screen.message
            assert isinstance(app.screen, ShiftScreen)  # the dialog stays, saying why
    assert _weights(kube, bookinfo) == [90, 10]
    patches = [r for r in proxy.requests if r["verb"] == "PATCH"]
    assert patches and all(p["query"].get("dryRun") == ["All"] for p in patches)


async def test_the_shift_dialog_meets_a_real_second_writer_and_writes_nothing(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any
) -> None:
    """Between the dialog's dry run and its write, another writer changes the weights on
    the server: the server refuses meshtop's patch, the dialog says so with the weights the
    route has now, and the other writer's stand."""
    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.screens.shift import ShiftScreen

    from ..tui.test_console import _first_snapshot, keys, until

    with interposed(kube) as proxy:
        plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url), bookinfo)
        app = MeshtopApp(
            Sources(ClusterSources.one(sim.metrics, plane, None, plane), False, sim.clock)
        )
        async with app.run_test(size=(120, 34)) as pilot:
            await _first_snapshot(app)
            screen = await _open_shift_dialog(app, pilot)

            def someone_else() -> None:
                kube.patch(VS, bookinfo, "reviews", [
                    {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 70},
                    {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 30},
                ])  # fmt: skip

            proxy.before_next_write = someone_else
            await keys(pilot, "4", "enter", "y")
            await until(pilot, lambda: "v1=70,v2=30" in screen.message, "the weights now")
            assert "nothing was written" in screen.message
            assert isinstance(app.screen, ShiftScreen)
    assert proxy.before_next_write is None
    assert _weights(kube, bookinfo) == [70, 30]
