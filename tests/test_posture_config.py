"""Istio's security objects read into the posture's model (sources/security.py), as the
Kubernetes API serves them: what they say, and what a hostile or broken object becomes
(left out and said, the rest still read; never a crash)."""

from __future__ import annotations

from typing import Any

import pytest

from meshtop.posture import (
    Action,
    Condition,
    MtlsMode,
    Operation,
    PeerAuthentication,
    Rule,
    Source,
    TlsMode,
    TlsSetting,
)
from meshtop.sources.security import security_config


def obj(kind: str, name: str, spec: Any, namespace: str = "foo", **meta: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace, **meta}, "spec": spec}


def test_each_kind_reads_as_istio_writes_it() -> None:
    config = security_config(
        {
            "PeerAuthentication": [
                obj("PeerAuthentication", "finance", {
                    "selector": {"matchLabels": {"app": "finance"}},
                    "mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "DISABLE"}},
                }, creationTimestamp="2025-01-01T00:00:00Z", resourceVersion="12"),
                obj("PeerAuthentication", "default", {}),
            ],
            "AuthorizationPolicy": [obj("AuthorizationPolicy", "httpbin", {
                "action": "ALLOW",
                "rules": [{
                    "from": [{"source": {"principals": ["cluster.local/ns/default/sa/sleep"]}},
                             {"source": {"namespaces": ["test"]}}],
                    "to": [{"operation": {"methods": ["GET"], "paths": ["/info*"]}}],
                    "when": [{"key": "request.auth.claims[iss]",
                              "values": ["https://accounts.google.com"]}],
                }],
            }), obj("AuthorizationPolicy", "ext", {"action": "CUSTOM",
                                                   "provider": {"name": "opa"},
                                                   "rules": [{}]})],
            "DestinationRule": [
                obj("DestinationRule", "reviews", {"host": "reviews", "trafficPolicy": {
                    "tls": {"mode": "ISTIO_MUTUAL"},
                    "portLevelSettings": [{"port": {"number": 9080},
                                           "tls": {"mode": "DISABLE"}}]}}),
                obj("DestinationRule", "subsets-only", {"host": "ratings",
                                                        "subsets": [{"name": "v1"}]}),
            ],
            "ServiceEntry": [obj("ServiceEntry", "ext", {"hosts": ["api.example.com"]})],
            "WorkloadEntry": [obj("WorkloadEntry", "vm", {"address": "10.0.0.7",
                                                           "labels": {"app": "vm"}})],
        },
        [obj("Deployment", "finance-v1", {"template": {
            "metadata": {"labels": {"app": "finance", "version": "v1"}},
            "spec": {"serviceAccountName": "finance"}}})],
    )  # fmt: skip
    assert config.malformed == ()
    assert config.peer_authentications == (
        PeerAuthentication("foo", "finance", MtlsMode.STRICT, {"app": "finance"},
                           {8080: MtlsMode.DISABLE}, "2025-01-01T00:00:00Z", "12"),
        PeerAuthentication("foo", "default"),
    )  # fmt: skip
    httpbin, ext = config.authorization_policies
    assert httpbin.rules == (
        Rule(
            (Source({"principals": ("cluster.local/ns/default/sa/sleep",)}),
             Source({"namespaces": ("test",)})),
            (Operation({"methods": ("GET",), "paths": ("/info*",)}),),
            (Condition("request.auth.claims[iss]", ("https://accounts.google.com",)),),
        ),
    )  # fmt: skip
    assert (ext.action, ext.provider, ext.rules) == (Action.CUSTOM, "opa", (Rule(),))
    (reviews,) = config.destination_rules  # the rule without tls is no security setting
    assert reviews.settings == (
        TlsSetting(TlsMode.ISTIO_MUTUAL),
        TlsSetting(TlsMode.DISABLE, port=9080),
    )
    assert config.service_entries[0].location == "MESH_EXTERNAL"
    finance, vm = config.workloads
    assert (finance.labels, finance.service_account, finance.entry) == (
        {"app": "finance", "version": "v1"},
        "finance",
        "",
    )
    assert (vm.address, vm.service_account, vm.entry) == (
        "10.0.0.7",
        "default",
        "WorkloadEntry foo/vm",
    )
    assert vm.principal == "cluster.local/ns/foo/sa/default"


HOSTILE = [
    ("PeerAuthentication", {"mtls": {"mode": "STRIKT"}},
     "spec.mtls.mode 'STRIKT' is not one of UNSET, DISABLE, PERMISSIVE, STRICT"),
    ("PeerAuthentication", {"mtls": "STRICT"}, "spec.mtls is not a mapping"),
    ("PeerAuthentication", {"portLevelMtls": {"http": {"mode": "DISABLE"}}},
     "spec.portLevelMtls key 'http' is not a port"),
    ("PeerAuthentication", {"portLevelMtls": {"70000": {"mode": "DISABLE"}}},
     "spec.portLevelMtls key '70000' is not a port"),
    ("PeerAuthentication", {"selector": {"matchLabels": {"app": ["a"]}}},
     "selector.matchLabels holds a label that is not text"),
    ("AuthorizationPolicy", {"action": "PERMIT"},
     "spec.action 'PERMIT' is not one of ALLOW, DENY, CUSTOM, AUDIT"),
    ("AuthorizationPolicy", {"rules": {"from": []}}, "spec.rules is not a list of mappings"),
    ("AuthorizationPolicy", {"rules": [{"from": [{"source": {"principals": "a"}}]}]},
     "spec.rules[0].from[0].source.principals is not a list of text"),
    ("DestinationRule", {"host": "reviews", "trafficPolicy": {"tls": {"mode": "TLS"}}},
     "spec.trafficPolicy.tls.mode 'TLS' is not one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL"),
    ("DestinationRule", {"trafficPolicy": {"tls": {"mode": "DISABLE"}}}, "no spec.host"),
    ("ServiceEntry", {"hosts": "api.example.com"}, "spec.hosts is not a list of text"),
    ("WorkloadEntry", {"address": 7}, "spec.address is not text"),
    ("PeerAuthentication", [], "spec is not a mapping"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "spec", "why"), HOSTILE, ids=[h[2] for h in HOSTILE])
def test_a_malformed_object_is_left_out_and_said_the_rest_read(
    kind: str, spec: Any, why: str
) -> None:
    good = obj("PeerAuthentication", "good", {"mtls": {"mode": "STRICT"}})
    config = security_config({kind: [obj(kind, "bad", spec)], "PeerAuthentication": [good]}
                             if kind != "PeerAuthentication"
                             else {kind: [obj(kind, "bad", spec), good]})  # fmt: skip
    assert config.malformed == (f"{kind} foo/bad is malformed: {why}",)
    assert [p.name for p in config.peer_authentications] == ["good"]


def test_an_object_without_a_name_or_with_garbage_metadata_is_said_too() -> None:
    config = security_config(
        {"PeerAuthentication": [{"spec": {}}, {"metadata": "x"}, {"metadata": {"name": 5}}]}
    )
    assert config.malformed == (
        "PeerAuthentication /? is malformed: no metadata.name",
        "PeerAuthentication /? is malformed: metadata is not a mapping",
        "PeerAuthentication /? is malformed: metadata.name is not text",
    )


def _entry(name: str, owners: Any = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {} if owners is None else {"ownerReferences": owners}
    return obj("WorkloadEntry", name, spec, namespace="legacy", **meta)


def test_a_workload_entry_is_named_by_its_workload_group() -> None:
    """Istio's auto-registration makes a WorkloadEntry per VM, owned by its group: the
    telemetry names the workload by the group, so the identity is read under that name."""
    group = {"apiVersion": "networking.istio.io/v1", "kind": "WorkloadGroup",
             "name": "legacy-batch", "uid": "u"}  # fmt: skip
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "not-a-group", "uid": "c"}
    config = security_config({"WorkloadEntry": [
        _entry("legacy-batch-10.0.0.7", [other, group], address="10.0.0.7",
               serviceAccount="batch"),
        _entry("mainframe", [other], address="10.0.1.1"),
        _entry("odd", [{**group, "name": "../x\x1b[2J"}]),
    ]})  # fmt: skip
    batch = config.info("legacy", "legacy-batch")
    assert batch is not None
    assert (batch.principal, batch.entry) == (
        "cluster.local/ns/legacy/sa/batch",
        "WorkloadEntry legacy/legacy-batch-10.0.0.7",
    )
    assert config.info("legacy", "mainframe") is not None  # no group: its own name
    assert config.malformed == (
        "WorkloadEntry legacy/odd is malformed: its WorkloadGroup '../x\\x1b[2J' is not an "
        "object name",
    )


def test_outside_nodes_are_vms_and_the_external_entries_hosts() -> None:
    from meshtop.model import NodeKind
    from meshtop.sources.kubernetes import outside_nodes

    config = security_config({
        "WorkloadEntry": [
            _entry("a", labels={"app": "batch", "version": "v2"}),
            _entry("b", labels={"app.kubernetes.io/name": "ledger"}),
        ],
        "ServiceEntry": [
            obj("ServiceEntry", "out", {"hosts": ["api.example.com", "*.example.com",
                                                  "evil\x1b[31m.example", "api.example.com"]}),
            obj("ServiceEntry", "in", {"hosts": ["db.internal"], "location": "MESH_INTERNAL"}),
        ],
    })  # fmt: skip
    bad: list[str] = []
    nodes = outside_nodes(
        "east", [w for w in config.workloads if w.entry], config.service_entries, bad
    )
    assert [(n.id, n.kind, n.app, n.version) for n in nodes] == [
        ("east/legacy/a", NodeKind.VM, "batch", "v2"),
        ("east/legacy/b", NodeKind.VM, "ledger", ""),
        ("external/external/api.example.com", NodeKind.SERVICE_ENTRY, "api.example.com", ""),
    ]
    assert bad == [
        "ServiceEntry foo/out is malformed: host 'evil\\x1b[31m.example' is not a host name"
    ]
