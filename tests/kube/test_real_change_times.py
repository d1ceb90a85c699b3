"""When a route or a Deployment changed, as a REAL Kubernetes API server says it
(tests/servers/kube.py): `metadata.generation` and the managed fields' times, read by the
control plane as the read-only user; a write to a Deployment's status (a controller's
progress) is no change (issue 19)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane

from ..servers import kube as real
from ..servers.kube import KubeServer

kube = real.kube
bookinfo = real.bookinfo

SECOND = 1.0  # the managed fields' times are to the second


def test_a_route_and_a_deployment_changed_are_said_with_their_generation_and_time(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    from kubernetes import client

    api = kube.api()
    time.sleep(SECOND * 1.5)  # the change is seconds after the creation
    before = time.time()
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        "networking.istio.io", "v1", bookinfo, "virtualservices", "reviews",
        [{"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 80},
         {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 20}],
        field_manager="ops-edit", _content_type="application/json-patch+json",
    )  # fmt: skip
    apps = client.AppsV1Api(api)
    template = {"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}}
    apps.patch_namespaced_deployment("reviews-v3", bookinfo, template, field_manager="ops-edit")
    after = time.time()
    time.sleep(SECOND * 2)
    # a controller's progress, later: the status subresource, no change of configuration
    status = {"status": {"observedGeneration": 2, "replicas": 1}}
    apps.patch_namespaced_deployment_status(
        "reviews-v3", bookinfo, status, field_manager="kube-controller-manager"
    )
    plane = KubernetesControlPlane(
        KubeConfig(kubeconfig=kube.kubeconfig(tmp_path / "kubeconfig", "reader"),
                   namespaces=(bookinfo,))
    )  # fmt: skip
    said = {c.resource: c for c in asyncio.run(plane.changes())}
    vs = said["VirtualService " + bookinfo + "/reviews"]
    assert (vs.generation, vs.manager) == (2, "ops-edit")
    assert before - SECOND <= vs.time <= after + SECOND
    v3 = said["Deployment " + bookinfo + "/reviews-v3"]
    assert (v3.generation, v3.manager) == (2, "ops-edit")
    assert before - SECOND <= v3.time <= after + SECOND  # not the status write's time
    untouched = said["Deployment " + bookinfo + "/ratings-v1"]
    assert untouched.generation == 1 and untouched.time < before - SECOND / 2
    assert "HTTPRoute " + bookinfo + "/reviews" in said
    assert said["VirtualService " + bookinfo + "/ratings"].generation == 1
