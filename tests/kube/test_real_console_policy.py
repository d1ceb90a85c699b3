"""The console's traffic-policy commands (issue 21) against a REAL Kubernetes API server
(tests/servers/kube.py): `:steer` writes the rule the server keeps and `:route-test` reads
it back; a real second writer between the preview and the write is a conflict said in
place, its change standing; a user who may not patch routes is refused in place, nothing
written; `:undo` takes the steer back on the server; `--read-only` refuses before any
request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshtop.connect import Sources
from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane
from meshtop.sources.protocols import ClusterSources

from ..servers import kube as real
from ..servers.kube import KubeServer, interposed

kube = real.kube
bookinfo = real.bookinfo

VS = "VirtualService"
REGEX = "^(.*?;)?(iPhone)(;.*)?$"
IPHONE = 'user-agent="iPhone; CPU iPhone OS 17_0"'


def _app(kubeconfig: Path, namespace: str, sim: Any, read_only: bool = False) -> Any:
    from meshtop.config import Settings
    from meshtop.tui.app import MeshtopApp

    plane = KubernetesControlPlane(KubeConfig(kubeconfig=kubeconfig, namespaces=(namespace,)))
    sources = Sources(ClusterSources.one(sim.metrics, plane, None, plane), False, sim.clock)
    return MeshtopApp(sources, settings=Settings(read_only=read_only))


def _http(kube: KubeServer, namespace: str) -> list[dict[str, Any]]:
    http: list[dict[str, Any]] = kube.get(VS, namespace, "reviews")["spec"]["http"]
    return http


async def test_steer_route_test_and_undo_on_a_real_server(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any
) -> None:
    from ..tui.test_console import _first_snapshot, keys
    from ..tui.test_policy import _command, _confirm, _said

    before = _http(kube, bookinfo)
    app = _app(kube.kubeconfig(tmp_path / "kubeconfig"), bookinfo, sim)
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await _command(pilot, f"steer {bookinfo}/reviews --match header:user-agent~{REGEX} --to v3")
        await _confirm(pilot)
        await keys(pilot, "y")
        assert "applied; :undo takes it back" in _said(app), _said(app)
        written = _http(kube, bookinfo)
        assert written[0]["match"] == [{"headers": {"user-agent": {"regex": REGEX}}}]
        assert written[0]["route"] == [{"destination": {"host": "reviews", "subset": "v3"}}]
        assert written[1:] == before
        await _command(pilot, f"route-test {bookinfo}/reviews {IPHONE}")
        assert _said(app).endswith("→ reviews v3"), _said(app)
        await _command(pilot, f'route-test {bookinfo}/reviews user-agent="curl/8.5"')
        assert "the default rule 1 → reviews v1 90%, v2 10%" in _said(app), _said(app)
        await _command(pilot, "undo")
        await _confirm(pilot)
        await keys(pilot, "y")
        assert _http(kube, bookinfo) == before, _said(app)


async def test_a_second_writer_between_preview_and_write_is_said_and_stands(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any
) -> None:
    from ..tui.test_console import _first_snapshot, keys
    from ..tui.test_policy import _command, _confirm, _said

    with interposed(kube) as proxy:
        app = _app(kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url), bookinfo, sim)
        async with app.run_test(size=(160, 48)) as pilot:
            await _first_snapshot(app)
            await _command(pilot, f"timeout {bookinfo}/reviews 2s")
            await _confirm(pilot)

            def someone_else() -> None:
                kube.patch(VS, bookinfo, "reviews", [
                    {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 70},
                    {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 30},
                ])  # fmt: skip

            proxy.before_next_write = someone_else
            await keys(pilot, "y")
            assert "nothing was written" in _said(app) and "conflict" in _said(app), _said(app)
            assert app.is_running
    assert proxy.before_next_write is None
    http = _http(kube, bookinfo)
    assert [d["weight"] for d in http[0]["route"]] == [70, 30] and "timeout" not in http[0]


async def test_a_user_who_may_not_patch_is_refused_in_place_and_nothing_is_written(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any
) -> None:
    from ..tui.test_console import _first_snapshot, keys
    from ..tui.test_policy import _command, _confirm, _said

    before = _http(kube, bookinfo)
    with interposed(kube) as proxy:
        config = kube.kubeconfig(tmp_path / "kubeconfig", "reader", server=proxy.url)
        app = _app(config, bookinfo, sim)
        async with app.run_test(size=(160, 48)) as pilot:
            await _first_snapshot(app)
            await _command(pilot, f"fault {bookinfo}/reviews --abort 503:10% --for 1m")
            said = _said(app)
            if "forbidden" not in said:  # the server's dry run comes after the preview
                await _confirm(pilot)
                await keys(pilot, "y")
                said = _said(app)
            assert "forbidden by RBAC in reader" in said, said
            assert app.is_running
    assert _http(kube, bookinfo) == before
    writes = [r for r in proxy.requests if r["verb"] == "PATCH"]
    assert all(w["query"].get("dryRun") == ["All"] for w in writes)


async def test_read_only_refuses_before_any_request(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any
) -> None:
    from ..tui.test_console import _first_snapshot
    from ..tui.test_policy import _command, _said

    with interposed(kube) as proxy:
        config = kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url)
        app = _app(config, bookinfo, sim, read_only=True)
        async with app.run_test(size=(160, 48)) as pilot:
            await _first_snapshot(app)
            reads = len(proxy.requests)
            await _command(pilot, f"steer {bookinfo}/reviews --match uri^=/api --to v3")
            assert "read-only: :steer writes nothing here" in _said(app), _said(app)
            assert len(proxy.requests) == reads or all(
                r["verb"] == "GET" and "reviews" not in r["path"] for r in proxy.requests[reads:]
            )
    assert not [r for r in proxy.requests if r["verb"] == "PATCH"]
