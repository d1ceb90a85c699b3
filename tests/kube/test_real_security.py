"""The security configuration against a REAL Kubernetes API server (tests/servers/kube.py):
PeerAuthentication and AuthorizationPolicy (security.istio.io/v1), DestinationRule tls,
ServiceEntry and WorkloadEntry (networking.istio.io/v1) with their real CRD schemas, read
with RBAC on (the reader may list them; `nobody` is refused in one line)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from meshtop.errors import BackendError
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
from ..servers.kube import KubeServer

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
