from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshtop.canary import Plan, Split, rule_index
from meshtop.sources.routing import (
    default_rule,
    json_patch,
    route_from_httproute,
    route_from_virtual_service,
)

from .kube.emulator import apply_json_patch


def _docs(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_virtual_service_weights_are_read(fixtures: Path) -> None:
    (doc,) = _docs(fixtures / "istio/networking/virtual-service-reviews-90-10.yaml")
    route = route_from_virtual_service(doc, "Kubernetes", "bookinfo")
    assert (route.kind, route.namespace, route.name, route.hosts) == (
        "VirtualService",
        "bookinfo",
        "reviews",
        ("reviews",),
    )
    rule = default_rule(route)
    assert rule is not None
    assert [(d.host, d.subset, d.weight) for d in rule.destinations] == [
        ("reviews", "v1", 90),
        ("reviews", "v2", 10),
    ]


def test_single_destination_without_weight_takes_all(fixtures: Path) -> None:
    (doc,) = _docs(fixtures / "istio/networking/virtual-service-reviews-v3.yaml")
    rule = default_rule(route_from_virtual_service(doc, "c", "ns"))
    assert rule is not None
    assert [(d.subset, d.weight) for d in rule.destinations] == [("v3", 100)]


def test_header_match_is_described_in_words(fixtures: Path) -> None:
    (doc,) = _docs(fixtures / "istio/networking/virtual-service-reviews-jason-v2-v3.yaml")
    route = route_from_virtual_service(doc, "c", "ns")
    assert route.rules[0].matches == ("header end-user = jason",)
    assert route.rules[0].destinations[0].subset == "v2"
    default = default_rule(route)
    assert default is not None and default.destinations[0].subset == "v3"


def test_gateway_uri_matches_are_alternatives(fixtures: Path) -> None:
    docs = _docs(fixtures / "istio/networking/bookinfo-gateway.yaml")
    vs = next(d for d in docs if d["kind"] == "VirtualService")
    route = route_from_virtual_service(vs, "c", "ns")
    assert route.rules[0].matches[:2] == ("uri = /productpage", "uri ^= /static")
    assert route.rules[0].destinations[0].port == 9080
    assert default_rule(route) is None  # every rule has a match


def test_httproute_backend_weights_are_relative(fixtures: Path) -> None:
    (doc,) = _docs(fixtures / "istio/gateway-api/route-reviews-90-10.yaml")
    route = route_from_httproute(doc, "c", "bookinfo")
    assert route.kind == "HTTPRoute"
    assert route.hosts == ("reviews",)
    rule = route.rules[0]
    assert [(d.host, d.weight, d.port) for d in rule.destinations] == [
        ("reviews-v1", 90, 9080),
        ("reviews-v2", 10, 9080),
    ]


@pytest.mark.parametrize(
    ("fixture", "parse", "weights"),
    [
        (
            "istio/networking/virtual-service-reviews-90-10.yaml",
            route_from_virtual_service,
            (25, 75),
        ),
        (
            "istio/networking/virtual-service-reviews-50-v3.yaml",
            route_from_virtual_service,
            (0, 100),
        ),
        ("istio/gateway-api/route-reviews-90-10.yaml", route_from_httproute, (3, 1)),
    ],
)
def test_a_plans_patch_writes_where_the_parser_reads(
    fixtures: Path, fixture: str, parse: Any, weights: tuple[int, ...]
) -> None:
    """The patch, applied to the object as it was read, gives back the plan's weights
    when the same parser reads it; applied to the object changed since, it is refused."""
    (doc,) = _docs(fixtures / fixture)
    doc["metadata"]["resourceVersion"] = "7"
    route = parse(doc, "c", "bookinfo")
    i = rule_index(route, None)
    before = Split.of(route, route.rules[i])
    plan = Plan(route, i, before, replace(before, weights=weights))
    written = parse(apply_json_patch(doc, json_patch(plan)), "c", "bookinfo")
    assert [d.weight for d in written.rules[i].destinations] == list(weights)
    assert [d.host for d in written.rules[i].destinations] == [
        d.host for d in route.rules[i].destinations
    ]
    doc["metadata"]["resourceVersion"] = "8"
    with pytest.raises(ValueError, match="resourceVersion"):
        apply_json_patch(doc, json_patch(plan))


def test_a_route_knows_who_steers_it(fixtures: Path) -> None:
    (vs,) = _docs(fixtures / "istio/networking/virtual-service-reviews-90-10.yaml")
    assert route_from_virtual_service(vs, "c", "bookinfo").steered_by == ""
    flagger = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "reviews"}
    vs["metadata"]["ownerReferences"] = [flagger]
    assert route_from_virtual_service(vs, "c", "bookinfo").steered_by == (
        "Flagger (Canary reviews)"
    )
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": "reviews",
            "labels": {"app.kubernetes.io/managed-by": "argo-rollouts"},
        },
        "spec": {"rules": [{"backendRefs": [{"name": "reviews-v1", "port": 9080}]}]},
    }
    assert route_from_httproute(route, "c", "bookinfo").steered_by == (
        "Argo Rollouts (app.kubernetes.io/managed-by)"
    )
