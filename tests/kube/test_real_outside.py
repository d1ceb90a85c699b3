"""Workloads outside Kubernetes and the root namespace, against a REAL Kubernetes API
server (tests/servers/kube.py) with Istio's CRDs (issue 22): WorkloadEntries (alone, or
owned by a WorkloadGroup as Istio's auto-registration makes them) are VMs and a
`MESH_EXTERNAL` ServiceEntry's hosts are nodes of their own kind, in a snapshot and in
`meshtop export`, as the read-only user; a user who may not list them sees the rest with
that said once; and a mesh-wide policy is read from the root namespace `[mesh]
root_namespace` names."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot, NodeKind, SourceState
from meshtop.posture import MtlsMode, posture
from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane
from meshtop.sources.protocols import ClusterSources, Traffic
from tests.loopback import serving

from ..servers import kube as real
from ..servers.kube import KubeServer

kube = real.kube
bookinfo = real.bookinfo

NET = "networking.istio.io"
GOOGLE = "external/external/www.googleapis.com"


def _doc(kind: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": f"{NET}/v1", "kind": kind, "metadata": {"name": name, **meta},
            "spec": spec}  # fmt: skip


def _outside(kube: KubeServer, namespace: str) -> None:
    """A WorkloadGroup with two VMs registered in it (their entries owned by it, as
    Istio's auto-registration makes them), a VM's WorkloadEntry of its own, a
    ServiceEntry for Google's API (a wildcard host too) and one inside the mesh."""
    from kubernetes import client

    custom = client.CustomObjectsApi(kube.api())
    group = custom.create_namespaced_custom_object(NET, "v1", namespace, "workloadgroups", _doc(
        "WorkloadGroup", "legacy-batch", {
            "metadata": {"labels": {"app": "legacy-batch", "version": "v2"}},
            "template": {"serviceAccount": "legacy-batch"},
        }))  # fmt: skip
    owner = {"apiVersion": f"{NET}/v1", "kind": "WorkloadGroup", "name": "legacy-batch",
             "uid": group["metadata"]["uid"], "controller": True}  # fmt: skip
    for address in ("10.0.0.7", "10.0.0.8"):
        kube.create(_doc("WorkloadEntry", f"legacy-batch-{address}", {
            "address": address, "labels": {"app": "legacy-batch", "version": "v2"},
            "serviceAccount": "legacy-batch",
        }, ownerReferences=[owner]), namespace)  # fmt: skip
    kube.create(_doc("WorkloadEntry", "mainframe", {
        "address": "10.0.1.1", "labels": {"app": "ledger", "version": "v7"},
        "serviceAccount": "mainframe",
    }), namespace)  # fmt: skip
    kube.create(_doc("ServiceEntry", "googleapis", {
        "hosts": ["www.googleapis.com", "*.storage.googleapis.com"],
        "location": "MESH_EXTERNAL", "resolution": "NONE",
        "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
    }), namespace)  # fmt: skip
    kube.create(_doc("ServiceEntry", "ledger", {
        "hosts": ["ledger.internal.example"], "location": "MESH_INTERNAL",
        "resolution": "STATIC", "endpoints": [{"address": "10.0.1.1"}],
        "ports": [{"number": 8080, "name": "http", "protocol": "HTTP"}],
    }), namespace)  # fmt: skip


class NoTraffic:
    """A metrics backend that saw no call: the nodes are the control plane's alone."""

    name = "no traffic"

    async def traffic(self, window_s: float) -> Traffic:
        return Traffic((), ())

    async def history(self, *args: Any) -> Any:
        raise NotImplementedError


def _plane(
    kubeconfig: Path, *namespaces: str, root: str = "istio-system"
) -> KubernetesControlPlane:
    return KubernetesControlPlane(
        KubeConfig(kubeconfig=kubeconfig, namespaces=namespaces, root_namespace=root)
    )


def _snapshot(plane: KubernetesControlPlane) -> MeshSnapshot:
    return asyncio.run(refresh({"": ClusterSources(NoTraffic(), plane)}))  # type: ignore[arg-type]


def test_vms_and_service_entry_hosts_are_nodes_of_their_kinds_as_the_reader(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    _outside(kube, bookinfo)
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", "reader"), bookinfo)
    snapshot = _snapshot(plane)
    health = snapshot.sources["control_plane"]
    assert (health.state, health.reason) == (SourceState.FRESH, "")
    kinds = {n.id: n.kind for n in snapshot.nodes.values()}
    group, alone = f"Kubernetes/{bookinfo}/legacy-batch", f"Kubernetes/{bookinfo}/mainframe"
    # the group's two entries are one VM, named as the telemetry names it: by its group
    assert {i: k for i, k in kinds.items() if k is NodeKind.VM} == {
        group: NodeKind.VM,
        alone: NodeKind.VM,
    }
    vm, mainframe = snapshot.nodes[group], snapshot.nodes[alone]
    assert (vm.app, vm.version, vm.is_workload, vm.clustered) == ("legacy-batch", "v2", True, True)
    assert (mainframe.app, mainframe.version) == ("ledger", "v7")
    # only the MESH_EXTERNAL entry's host; a wildcard names no host a call goes to
    assert {i for i, k in kinds.items() if k is NodeKind.SERVICE_ENTRY} == {GOOGLE}
    assert not any("ledger.internal" in i or "*" in i for i in kinds)
    assert kinds[f"Kubernetes/{bookinfo}/reviews-v2"] is NodeKind.WORKLOAD
    # the VM's identity: its service account, under the name its node has
    config = asyncio.run(plane.security())
    info = config.info(bookinfo, "legacy-batch")
    assert info is not None and info.principal == (f"cluster.local/ns/{bookinfo}/sa/legacy-batch")
    assert info.entry.startswith(f"WorkloadEntry {bookinfo}/legacy-batch-10.0.0.")
    judged = posture(snapshot, {"": config}).workload(group)
    assert judged is not None and judged.effective.mode is MtlsMode.PERMISSIVE


def test_a_user_who_may_not_list_the_entries_sees_the_rest_with_it_said_once(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """`nobody` may read everything else in this namespace (a Role of this test's own):
    the Deployments are read, the entries are none, said once in the control plane's
    reason with RBAC's words, not a failure of the control plane."""
    from kubernetes import client

    _outside(kube, bookinfo)
    rbac = client.RbacAuthorizationV1Api(kube.api())
    rules = [r for r in real.READS if r["apiGroups"] != [NET]] + [
        {"apiGroups": [NET], "resources": ["virtualservices", "destinationrules"],
         "verbs": ["get", "list"]},
    ]  # fmt: skip
    rbac.create_namespaced_role(bookinfo, {"metadata": {"name": "no-entries"}, "rules": rules})
    rbac.create_namespaced_role_binding(bookinfo, {
        "metadata": {"name": "nobody-no-entries"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "no-entries"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "nobody"}],
    })  # fmt: skip
    apps = client.AppsV1Api(kube.api("nobody"))
    real.poll("RBAC letting nobody list Deployments", lambda: bool(
        apps.list_namespaced_deployment(bookinfo).items), 30)  # fmt: skip
    plane = _plane(kube.kubeconfig(tmp_path / "nobody", "nobody"), bookinfo)
    snapshot = _snapshot(plane)
    health = snapshot.sources["control_plane"]
    assert health.state is SourceState.FRESH
    assert f"Kubernetes/{bookinfo}/reviews-v2" in snapshot.nodes
    assert not any(n.kind in (NodeKind.VM, NodeKind.SERVICE_ENTRY) for n in snapshot.nodes.values())
    reason = health.reason or ""
    assert "\n" not in reason
    assert reason.startswith(
        "left out: no VMs (WorkloadEntries) nor ServiceEntry hosts shown: cannot list "
        f"WorkloadEntrys in {bookinfo}: forbidden by RBAC in nobody ("
    )
    assert 'User "nobody" cannot list resource "workloadentries"' in reason
    assert reason.count("forbidden by RBAC") == 1


def test_a_user_with_no_rights_at_all_gets_rbacs_reason(kube: KubeServer, tmp_path: Path) -> None:
    plane = _plane(kube.kubeconfig(tmp_path / "nobody", "nobody"), "default")
    health = _snapshot(plane).sources["control_plane"]
    assert health.state is SourceState.FAILED
    assert "forbidden by RBAC in nobody" in (health.reason or "")
    assert "\n" not in (health.reason or "")


# -- meshtop export, with a Prometheus that saw no call ------------------------------------


class EmptyPrometheus(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        data = json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": []}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def prometheus() -> Iterator[str]:
    with serving(EmptyPrometheus) as url:
        yield url


def _meshtop(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "meshtop", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def test_export_has_the_kinds_vm_and_service_entry(
    kube: KubeServer, bookinfo: str, tmp_path: Path, prometheus: str
) -> None:
    _outside(kube, bookinfo)
    config = kube.kubeconfig(tmp_path / "kubeconfig", "reader")
    result = _meshtop(tmp_path, "export", "--format", "json", "--context", "reader",
                      "--kubeconfig", str(config), "--prometheus", prometheus,
                      "--dialect", "istio")  # fmt: skip
    assert result.returncode == 0, result.stderr
    nodes = {n["id"]: n for n in json.loads(result.stdout)["nodes"]}
    vm = nodes[f"Kubernetes/{bookinfo}/legacy-batch"]
    assert (vm["kind"], vm["namespace"], vm["app"], vm["version"]) == (
        "vm",
        bookinfo,
        "legacy-batch",
        "v2",
    )
    assert nodes[f"Kubernetes/{bookinfo}/mainframe"]["kind"] == "vm"
    assert nodes[GOOGLE]["kind"] == "service_entry"
    assert nodes[f"Kubernetes/{bookinfo}/details-v1"]["kind"] == "workload"


# -- the root namespace: [mesh] root_namespace ---------------------------------------------


@contextlib.contextmanager
def _root_policy(kube: KubeServer, root: str, mode: str) -> Iterator[None]:
    """A PeerAuthentication without a selector in `root`, for one test."""
    from kubernetes import client

    api = kube.api()
    with contextlib.suppress(client.ApiException):  # made by an earlier test
        client.CoreV1Api(api).create_namespace({"metadata": {"name": root}})
    policy = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
              "metadata": {"name": "default"}, "spec": {"mtls": {"mode": mode}}}  # fmt: skip
    kube.create(policy, root)
    try:
        yield
    finally:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            "security.istio.io", "v1", root, "peerauthentications", "default"
        )


def test_a_mesh_wide_policy_is_read_from_the_configured_root(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """A namespace-scoped read takes the root namespace's policies: the root the
    settings name, as the reader; Istio's default root does not see them."""
    config = kube.kubeconfig(tmp_path / "kubeconfig", "reader")
    with _root_policy(kube, "istio-config", "STRICT"):
        other = asyncio.run(_plane(config, bookinfo, root="istio-config").security())
        default = asyncio.run(_plane(config, bookinfo).security())
    assert other.root_namespace == "istio-config"
    assert [(p.namespace, p.mode) for p in other.peer_authentications] == [
        ("istio-config", MtlsMode.STRICT)
    ]
    assert default.peer_authentications == ()  # istio-config is not read
    node = f"Kubernetes/{bookinfo}/productpage-v1"
    snapshot = _snapshot(_plane(config, bookinfo))
    judged = posture(snapshot, {"": other}).workload(node)
    assert judged is not None
    assert (judged.effective.text(), judged.effective.why()) == (
        "STRICT",
        "mesh-wide PeerAuthentication istio-config/default",
    )
    judged = posture(snapshot, {"": default}).workload(node)
    assert judged is not None and judged.effective.text() == "PERMISSIVE"


def test_meshtop_posture_takes_the_root_from_the_config_file(
    kube: KubeServer, bookinfo: str, tmp_path: Path, prometheus: str
) -> None:
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig", "reader")
    settings = tmp_path / "meshtop.toml"
    settings.write_text('[mesh]\nroot_namespace = "istio-config"\n')
    args = ("posture", "--format", "json", "--kubeconfig", str(kubeconfig), "--prometheus",
            prometheus, "--dialect", "istio", "-n", bookinfo)  # fmt: skip
    with _root_policy(kube, "istio-config", "STRICT"):
        configured = _meshtop(tmp_path, "--config", str(settings), *args)
        default = _meshtop(tmp_path, *args)
    assert configured.returncode == 0, configured.stderr
    assert default.returncode == 0, default.stderr

    def modes(result: subprocess.CompletedProcess[str]) -> set[tuple[str, str]]:
        doc = json.loads(result.stdout)
        return {(w["mode"], w["set_by"]) for n in doc["namespaces"] for w in n["workloads"]}

    assert modes(configured) == {("STRICT", "mesh-wide PeerAuthentication istio-config/default")}
    assert {mode for mode, _ in modes(default)} == {"PERMISSIVE"}
