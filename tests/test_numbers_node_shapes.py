"""The node shapes issue 18 added, from label sets alone: what each dialect's telemetry
makes of a peer it names only in part, and the label matchers that find its series again
for an edge's detail."""

from __future__ import annotations

import pytest

from meshtop.model import NodeKind, NodeMark, Protocol
from meshtop.sources.dialects import ISTIO, LINKERD
from meshtop.sources.prometheus import _node, _peer_selector, join
from tests.test_prometheus_queries import sample


@pytest.mark.parametrize(
    ("host", "expected", "mark"),
    [
        ("reviews.bookinfo.svc.cluster.local", "Kubernetes/bookinfo/service:reviews", None),
        ("reviews.bookinfo.svc.mesh.internal:9080", "Kubernetes/bookinfo/service:reviews", None),
        ("10.1.2.3", "external/external/10.1.2.3", NodeMark.RAW_IP),
        ("10.1.2.3:8080", "external/external/10.1.2.3", NodeMark.RAW_IP),
        ("[fe80::1]:8080", "external/external/[fe80::1]", NodeMark.RAW_IP),
        ("www.googleapis.com", "external/external/www.googleapis.com", None),
        ("unknown", "Kubernetes/bookinfo/service:unknown", NodeMark.UNKNOWN_DESTINATION),
    ],
)
def test_a_destination_no_workload_answered(host: str, expected: str, mark: NodeMark) -> None:
    labels = {
        "source_workload_namespace": "bookinfo",
        "destination_workload": "unknown",
        "destination_workload_namespace": "unknown",
        "destination_service": host,
        "destination_service_name": host.split(".")[0],
        "destination_service_namespace": "unknown",
    }
    w = _node(ISTIO, labels, "destination")
    assert (w.id, w.mark) == (expected, mark)


def test_an_unknown_destination_is_in_the_callers_namespace_not_the_unknown_source() -> None:
    nowhere = _node(ISTIO, {"source_workload_namespace": "shop", "destination_service": "unknown"},
                    "destination")  # fmt: skip
    unmeshed = _node(ISTIO, {"source_workload": "unknown"}, "source")
    assert nowhere.id == "Kubernetes/shop/service:unknown" and nowhere.kind is NodeKind.SERVICE
    assert unmeshed.id == "unknown/unknown/unknown" and unmeshed.mark is None
    assert nowhere.label == "shop/service:unknown" and unmeshed.label == "unknown"


def test_an_unnamed_linkerd_caller_is_found_again_by_its_missing_name() -> None:
    """A meshed pod that no Deployment, StatefulSet or DaemonSet owns (a Job): Linkerd's
    outbound series name its namespace and no workload."""
    w = _node(LINKERD, {"namespace": "batch", "dst_deployment": "api"}, "source")
    assert (w.id, w.mark) == ("Kubernetes/batch/unknown", NodeMark.UNNAMED)
    # by no workload label of any kind: `deployment=""` alone matches a StatefulSet too
    assert _peer_selector(LINKERD, w.id, "source") == [
        'namespace="batch"', 'deployment=""', 'statefulset=""', 'daemonset=""'
    ]  # fmt: skip
    assert _peer_selector(ISTIO, w.id, "source") == [
        'source_workload_namespace="batch"',
        'source_workload="unknown"',
    ]


def test_the_unknown_destination_is_found_again_from_its_callers_namespace() -> None:
    selector = _peer_selector(ISTIO, "Kubernetes/shop/service:unknown", "destination")
    assert selector == [
        'destination_workload="unknown"',
        'destination_service=~"unknown|"',
        'source_workload_namespace="shop"',
    ]


def test_linkerd_keeps_its_inferred_protocol() -> None:
    """Linkerd says no protocol: gRPC where any answer has a gRPC status, one protocol."""
    labels = {"namespace": "shop", "deployment": "web", "dst_namespace": "shop",
              "dst_deployment": "api", "direction": "outbound", "tls": "true"}  # fmt: skip
    answers = [
        sample(2.0, LINKERD, status_code="200", grpc_status="0", **labels),
        sample(1.0, LINKERD, status_code="0", classification="failure", **labels),
    ]
    (edge,) = join(LINKERD, {"requests": answers}).edges
    assert edge.stats.carried == (Protocol.GRPC,)
    assert edge.stats.error_rate == pytest.approx(1 / 3)
