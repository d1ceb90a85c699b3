"""meshtop reads lists a page at a time (`limit`, then the server's `continue` token, as
kubectl does): against a REAL API server (tests/servers/kube.py) with more routes in a
namespace than fit in one page, every one of them is read, through the pages the server
hands out."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from meshtop.sources.kubernetes import PAGE, KubeConfig, KubernetesControlPlane

from ..servers import kube as real
from ..servers.kube import KubeServer, interposed

# the fixtures: the session's real API server, and a namespace of the test's own in it
kube = real.kube
bookinfo = real.bookinfo


def test_more_routes_than_a_page_are_all_read_through_the_servers_pages(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    from kubernetes import client

    extra = PAGE + 7  # beside Bookinfo's four

    def create(i: int) -> None:
        custom = client.CustomObjectsApi(kube.api())
        custom.create_namespaced_custom_object(
            "networking.istio.io", "v1", bookinfo, "virtualservices",
            {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
             "metadata": {"name": f"route-{i:04d}"},
             "spec": {"hosts": [f"svc-{i}"], "http": [{"route": [
                 {"destination": {"host": f"svc-{i}", "subset": "v1"}, "weight": 100}]}]}},
        )  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(extra)))
    with interposed(kube) as proxy:
        config = kube.kubeconfig(tmp_path / "kubeconfig", "reader", server=proxy.url)
        plane = KubernetesControlPlane(KubeConfig(kubeconfig=config, namespaces=(bookinfo,)))
        routes = asyncio.run(plane.routes())
    names = {r.name for r in routes if r.kind == "VirtualService"}
    assert names == {f"route-{i:04d}" for i in range(extra)} | {
        "productpage", "reviews", "ratings", "details",
    }  # fmt: skip
    assert len([r for r in routes if r.kind == "VirtualService"]) == extra + 4  # none twice
    path = f"/apis/networking.istio.io/v1/namespaces/{bookinfo}/virtualservices"
    lists = [r for r in proxy.requests if r["path"] == path]
    assert [r["query"].get("limit") for r in lists] == [[str(PAGE)], [str(PAGE)]]
    assert "continue" not in lists[0]["query"] and lists[1]["query"]["continue"][0]
