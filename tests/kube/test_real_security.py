"""The security configuration against a REAL Kubernetes API server (tests/servers/kube.py):
PeerAuthentication and AuthorizationPolicy (security.istio.io/v1), DestinationRule tls,
ServiceEntry and WorkloadEntry (networking.istio.io/v1) with their real CRD schemas, read
with RBAC on (the reader may list them; `nobody` is refused in one line)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from meshtop.errors import BackendError
from meshtop.model import MeshSnapshot
from meshtop.posture import (
    Action,
    MtlsMode,
    PeerAuthentication,
    TlsMode,
    TlsSetting,
    effective,
)
from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane

from ..servers import kube as real
from ..servers.kube import KubeServer, interposed

kube = real.kube
bookinfo = real.bookinfo

ROOT = "istio-system"


def _plane(kubeconfig: Path, *namespaces: str) -> KubernetesControlPlane:
    return KubernetesControlPlane(KubeConfig(kubeconfig=kubeconfig, namespaces=namespaces))


def _doc(kind: str, name: str, spec: dict[str, Any], api: str = "security.istio.io/v1") -> dict:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec}


def peer_authentication(name: str, mode: str, selector: dict[str, str] | None = None,
                        ports: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    spec: dict[str, Any] = {"mtls": {"mode": mode}}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = {p: {"mode": m} for p, m in ports.items()}
    return _doc("PeerAuthentication", name, spec)


# Istio's examples (istio.io/latest/docs/reference/config/security/), in Bookinfo's names
SECURITY = [
    peer_authentication("default", "PERMISSIVE"),
    peer_authentication("reviews", "STRICT", {"app": "reviews"}, {"9080": "UNSET",
                                                                   "15090": "DISABLE"}),
    _doc("AuthorizationPolicy", "ratings-viewer", {
        "selector": {"matchLabels": {"app": "ratings"}},
        "action": "ALLOW",
        "rules": [{"from": [{"source": {"principals": [
            "cluster.local/ns/bookinfo/sa/bookinfo-reviews"]}}],
            "to": [{"operation": {"methods": ["GET"]}}]}],
    }),
    _doc("AuthorizationPolicy", "deny-legacy", {
        "action": "DENY", "rules": [{"from": [{"source": {"namespaces": ["legacy"]}}]}],
    }),
    _doc("DestinationRule", "details-plain", {
        "host": "details", "trafficPolicy": {"tls": {"mode": "DISABLE"}},
        "subsets": [{"name": "v1", "labels": {"version": "v1"},
                     "trafficPolicy": {"portLevelSettings": [
                         {"port": {"number": 9080}, "tls": {"mode": "ISTIO_MUTUAL"}}]}}],
    }, api="networking.istio.io/v1"),
    _doc("ServiceEntry", "googleapis", {
        "hosts": ["www.googleapis.com"], "location": "MESH_EXTERNAL", "resolution": "DNS",
        "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
    }, api="networking.istio.io/v1"),
    _doc("WorkloadEntry", "legacy-batch", {
        "address": "10.0.0.7", "labels": {"app": "legacy-batch"},
        "serviceAccount": "legacy-batch",
    }, api="networking.istio.io/v1"),
]  # fmt: skip


def _apply(kube: KubeServer, namespace: str, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        kube.create(doc, namespace)


def test_the_security_configuration_is_read_as_the_reader(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    _apply(kube, bookinfo, SECURITY)
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", "reader"), bookinfo)
    config = asyncio.run(plane.security())
    assert config.malformed == ()
    pas = {p.name: p for p in config.peer_authentications}
    assert set(pas) == {"default", "reviews"}
    assert (pas["default"].namespace, pas["default"].mode) == (bookinfo, MtlsMode.PERMISSIVE)
    assert pas["reviews"].selector == {"app": "reviews"}
    assert pas["reviews"].ports == {9080: MtlsMode.UNSET, 15090: MtlsMode.DISABLE}
    assert pas["reviews"].created and pas["reviews"].resource_version
    # the precedence on what the server served: reviews-v2's pods carry app=reviews
    info = config.info(bookinfo, "reviews-v2")
    assert info is not None
    assert info.labels == {"app": "reviews", "version": "v2"}
    assert info.service_account == "bookinfo-reviews"
    got = effective(config.peer_authentications, bookinfo, info.labels)
    assert got.text() == "STRICT (port 15090 DISABLE)"
    page = config.info(bookinfo, "productpage-v1")
    assert page is not None
    assert effective(config.peer_authentications, bookinfo, page.labels).text() == "PERMISSIVE"
    aps = {p.name: p for p in config.authorization_policies}
    assert aps["ratings-viewer"].action is Action.ALLOW
    assert aps["ratings-viewer"].rules[0].sources[0].fields == {
        "principals": ("cluster.local/ns/bookinfo/sa/bookinfo-reviews",)
    }
    assert aps["deny-legacy"].action is Action.DENY
    (plain,) = [r for r in config.destination_rules if r.name == "details-plain"]
    assert plain.settings == (
        TlsSetting(TlsMode.DISABLE),
        TlsSetting(TlsMode.ISTIO_MUTUAL, "v1", 9080),
    )
    assert plain.subset_labels == {"v1": {"version": "v1"}}
    # Bookinfo's own DestinationRules set no tls: not security configuration
    assert {r.name for r in config.destination_rules} == {"details-plain"}
    (entry,) = config.service_entries
    assert (entry.hosts, entry.location) == (("www.googleapis.com",), "MESH_EXTERNAL")
    vm = config.info(bookinfo, "legacy-batch")
    assert vm is not None
    assert (vm.address, vm.service_account, vm.entry) == (
        "10.0.0.7",
        "legacy-batch",
        f"WorkloadEntry {bookinfo}/legacy-batch",
    )


@contextlib.contextmanager
def _mesh_wide(kube: KubeServer, mode: str) -> Any:
    """A mesh-wide PeerAuthentication in the root namespace, for one test."""
    from kubernetes import client

    api = kube.api()
    with contextlib.suppress(client.ApiException):  # made by an earlier test
        client.CoreV1Api(api).create_namespace({"metadata": {"name": ROOT}})
    kube.create(peer_authentication("default", mode), ROOT)
    try:
        yield
    finally:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            "security.istio.io", "v1", ROOT, "peerauthentications", "default"
        )


def test_a_scoped_read_takes_the_root_namespaces_mesh_wide_policies(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", "reader"), bookinfo)
    with _mesh_wide(kube, "STRICT"):
        config = asyncio.run(plane.security())
    assert [(p.namespace, p.name, p.mode) for p in config.peer_authentications] == [
        (ROOT, "default", MtlsMode.STRICT)
    ]
    page = config.info(bookinfo, "productpage-v1")
    assert page is not None
    found = effective(config.peer_authentications, bookinfo, page.labels)
    assert (found.text(), found.why()) == (
        "STRICT",
        "mesh-wide PeerAuthentication istio-system/default",
    )


def test_the_real_schema_refuses_a_mode_that_is_not_one(kube: KubeServer, bookinfo: str) -> None:
    """What meshtop says of a malformed mode (tests/test_posture_config.py) the server
    never stores: its CRD's enum refuses it at creation."""
    from kubernetes import client

    with pytest.raises(client.ApiException) as refused:
        kube.create(peer_authentication("bad", "STRIKT"), bookinfo)
    assert refused.value.status == 422
    assert "STRIKT" in str(refused.value.body)
    assert PeerAuthentication  # the model's own name for what was refused


def test_a_user_without_rights_is_refused_in_one_line(kube: KubeServer, tmp_path: Path) -> None:
    plane = _plane(kube.kubeconfig(tmp_path / "nobody", "nobody"), "default")
    with pytest.raises(BackendError, match="forbidden by RBAC in nobody") as forbidden:
        asyncio.run(plane.security())
    said = str(forbidden.value)
    assert "\n" not in said
    assert 'User "nobody" cannot list resource' in said


# -- meshtop mtls: the one write, through the change workflow -----------------------------


def _mtls(kubeconfig: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "meshtop", "mtls", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def _audit(state: Path) -> list[dict[str, Any]]:
    path = state / "meshtop" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _policy(kube: KubeServer, namespace: str, name: str = "default") -> dict[str, Any] | None:
    from kubernetes import client

    try:
        return kube.get("PeerAuthentication", namespace, name)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_strict_is_created_then_set_back_by_the_admin(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """No PeerAuthentication in the namespace: STRICT creates its namespace-wide one (the
    server checks it first), PERMISSIVE patches it, each audited; without metrics, what
    STRICT would refuse is said to be unknown."""
    state, config = tmp_path / "state", kube.kubeconfig(tmp_path / "kubeconfig")
    checked = _mtls(config, state, bookinfo, "--strict", "--dry-run")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines()[0] == (
        f"no PeerAuthentication of its own: PeerAuthentication {bookinfo}/default is created"
    )
    assert "what STRICT would refuse is not known: no metrics were read" in checked.stdout
    assert _policy(kube, bookinfo) is None  # a dry run: the server checked, wrote nothing
    made = _mtls(config, state, bookinfo, "--strict", "--yes")
    assert made.returncode == 0, made.stderr
    stored = _policy(kube, bookinfo)
    assert stored is not None and stored["spec"] == {"mtls": {"mode": "STRICT"}}
    version = stored["metadata"]["resourceVersion"]
    assert made.stdout.splitlines()[-1].startswith(f"applied: resourceVersion {version} ")
    managers = {m["manager"] for m in stored["metadata"]["managedFields"]}
    assert managers == {"meshtop"}
    back = _mtls(config, state, bookinfo, "--permissive", "--yes")
    assert back.returncode == 0, back.stderr
    assert f"PeerAuthentication {bookinfo}/default (resourceVersion {version})" in back.stdout
    assert _policy(kube, bookinfo)["spec"]["mtls"] == {"mode": "PERMISSIVE"}  # type: ignore[index]
    outcomes = [(e["action"], e["outcome"]) for e in _audit(state)]
    assert outcomes == [
        ("create", "dry run: the server accepted it"),
        ("create", "about to apply"), ("create", "applied"),
        ("change", "about to apply"), ("change", "applied"),
    ]  # fmt: skip


def test_a_workload_gets_a_policy_that_selects_it(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    state, config = tmp_path / "state", kube.kubeconfig(tmp_path / "kubeconfig")
    result = _mtls(config, state, f"{bookinfo}/reviews-v2", "--strict", "--yes")
    assert result.returncode == 0, result.stderr
    stored = _policy(kube, bookinfo, "reviews-v2-mtls")
    assert stored is not None
    assert stored["spec"]["selector"] == {"matchLabels": {"app": "reviews", "version": "v2"}}
    assert f"{bookinfo}/reviews-v2: PERMISSIVE → STRICT" in result.stdout


@pytest.mark.parametrize("user", ["reader", "restricted"])
def test_a_user_rbac_refuses_writes_nothing_one_line_exit_3(
    kube: KubeServer, bookinfo: str, tmp_path: Path, user: str
) -> None:
    state = tmp_path / "state"
    result = _mtls(kube.kubeconfig(tmp_path / "kubeconfig", user), state, bookinfo, "--strict",
                   "--yes")  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    said = result.stderr.strip()
    assert said.count("\n") == 0 and said.startswith("meshtop: ")
    assert f"forbidden by RBAC in {user}" in said
    assert f'User \\"{user}\\" cannot create' in said or f'User "{user}" cannot create' in said
    assert _policy(kube, bookinfo) is None
    assert [e["outcome"].partition(":")[0] for e in _audit(state)] == [
        "refused by the server's dry run"
    ]


def test_a_change_by_a_second_writer_between_read_and_write_is_a_conflict(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """The namespace's policy is changed on the server after meshtop read it (and after
    the server's check): meshtop's patch tests the resource version it read, exit 4, the
    other writer's change stands."""
    kube.create(peer_authentication("default", "PERMISSIVE"), bookinfo)
    state = tmp_path / "state"

    def second_writer() -> None:
        kube.patch("PeerAuthentication", bookinfo, "default",
                   [{"op": "replace", "path": "/spec/mtls/mode", "value": "DISABLE"}])  # fmt: skip

    with interposed(kube) as proxy:
        proxy.before_next_write = second_writer
        config = kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url)
        result = _mtls(config, state, bookinfo, "--strict", "--yes")
    assert proxy.before_next_write is None
    assert result.returncode == 4, result.stdout + result.stderr
    said = result.stderr.strip()
    assert "changed since it was read" in said and "nothing was written" in said
    assert _policy(kube, bookinfo)["spec"]["mtls"] == {"mode": "DISABLE"}  # type: ignore[index]
    assert [e["outcome"].partition(":")[0] for e in _audit(state)] == ["about to apply", "conflict"]


def test_undo_deletes_what_meshtop_created_on_the_server(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """Through the workflow itself, as the console's :undo: a policy meshtop created is
    deleted with its resource version as a precondition; the server's check before it
    deletes nothing (a deletion's dryRun is in its options' body, where the server reads
    it: one in the query was ignored, and the check deleted, until this test)."""
    from meshtop.change.workflow import PolicyCopy, Workflow, undo_mode
    from meshtop.posture import plan_mode
    from meshtop.sources.security import KubernetesPolicies

    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig"), bookinfo)
    policies = KubernetesPolicies(plane)
    copies = {"": PolicyCopy("", policies, plane.context)}
    config = asyncio.run(policies.security())
    snapshot = MeshSnapshot(datetime.now(UTC), 60.0, {}, (), (), {})
    plan = plan_mode(snapshot, config, "", bookinfo, "", MtlsMode.STRICT)
    (done,) = asyncio.run(Workflow(copies, by="mtls").apply({"": plan}))
    assert done.result == "applied" and _policy(kube, bookinfo) is not None
    (undone,) = asyncio.run(Workflow(copies, by="undo").apply({"": undo_mode(done.applied, plan)}))
    assert (undone.result, undone.applied) == ("applied", None)
    assert _policy(kube, bookinfo) is None
