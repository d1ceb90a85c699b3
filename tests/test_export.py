from __future__ import annotations

import asyncio
import json
from importlib import resources

import jsonschema
import pytest

from meshtop.errors import UsageError
from meshtop.export import renderer
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot
from meshtop.report import Report
from meshtop.sim.sources import Simulation

SCHEMA = json.loads(
    resources.files("meshtop.export").joinpath("snapshot.schema.json").read_text("utf-8")
)
PAGE = "Kubernetes/bookinfo/productpage-v1"


def _snap(sim: Simulation) -> MeshSnapshot:
    return asyncio.run(refresh(sim.clusters, window_s=300))


def _edges(doc: dict) -> dict[tuple[str, str], dict]:  # type: ignore[type-arg]
    return {(e["source"], e["destination"]): e for e in doc["edges"]}


def test_json_follows_the_documented_contract(sim: Simulation) -> None:
    doc = json.loads(renderer("json")(Report(_snap(sim))))
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)
    assert doc["schema"] == 1
    assert doc["window"] == "5m" and doc["window_seconds"] == 300
    assert doc["generated_at"].endswith("Z")
    node = next(n for n in doc["nodes"] if n["id"] == "Kubernetes/bookinfo/reviews-v3")
    assert node == {
        "id": "Kubernetes/bookinfo/reviews-v3",
        "cluster": "Kubernetes",
        "namespace": "bookinfo",
        "workload": "reviews-v3",
        "app": "reviews",
        "version": "v3",
        "kind": "workload",
        "mark": None,
        "health": "failing",  # a node is as healthy as what it answers: 15% errors
    }
    v3 = _edges(doc)[(PAGE, "Kubernetes/bookinfo/reviews-v3")]
    assert v3["protocol"] == "http" and v3["health"] == "failing"
    assert v3["protocols"] == ["http"] and v3["client_error_rate"] == 0.0
    assert v3["p50_ms"] < v3["p95_ms"] < v3["p99_ms"]
    assert sum(v3["response_codes"].values()) == pytest.approx(v3["rps"], rel=1e-3)
    assert v3["response_flags"]["URX"] > 0
    assert v3["mtls"] == 1
    tcp = _edges(doc)[("Kubernetes/bookinfo/details-v1", "external/external/www.googleapis.com")]
    assert tcp["protocol"] == "tcp" and tcp["tcp"]["connections_per_s"] > 0
    assert tcp["p50_ms"] is None
    reviews = next(r for r in doc["routes"] if r["name"] == "reviews")
    assert [(d["subset"], d["weight"]) for d in reviews["rules"][0]["destinations"]] == [
        ("v1", 70),
        ("v2", 20),
        ("v3", 10),
    ]


def test_schema_rejects_what_breaks_the_contract(sim: Simulation) -> None:
    """The schema is a real check: a document missing a field or out of range fails it."""
    doc = json.loads(renderer("json")(Report(_snap(sim))))
    validator = jsonschema.Draft202012Validator(SCHEMA)
    broken = json.loads(json.dumps(doc))
    del broken["edges"][0]["error_rate"]
    assert not validator.is_valid(broken)
    broken = json.loads(json.dumps(doc))
    broken["edges"][0]["mtls"] = 1.5
    assert not validator.is_valid(broken)


def test_export_numbers_move_after_a_weight_change(sim: Simulation) -> None:
    render = renderer("json")
    before = _edges(json.loads(render(Report(_snap(sim)))))
    sim.set_weights("bookinfo", "reviews", {"v1": 50, "v2": 0, "v3": 50})
    after = _edges(json.loads(render(Report(_snap(sim)))))
    v1, v2, v3 = ((PAGE, f"Kubernetes/bookinfo/reviews-{v}") for v in ("v1", "v2", "v3"))
    assert after[v3]["rps"] > 4 * before[v3]["rps"]
    assert after[v1]["rps"] < before[v1]["rps"]
    assert v2 not in after
    ratings = ("Kubernetes/bookinfo/reviews-v3", "Kubernetes/bookinfo/ratings-v1")
    assert after[ratings]["rps"] > 4 * before[ratings]["rps"]


def test_markdown_report_puts_the_worst_edge_first(sim: Simulation) -> None:
    text = renderer("markdown")(Report(_snap(sim)))
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| bookinfo/") or line.startswith("| istio")
    ]
    assert rows[0].startswith("| bookinfo/productpage-v1 | bookinfo/reviews-v3 |")
    assert rows[0].rstrip().endswith("| failing |")
    assert (
        "| VirtualService bookinfo/reviews | reviews | default "
        "| reviews v1 70%, reviews v2 20%, reviews v3 10% |" in text
    )
    assert "edges not fully on mTLS: 2" in text


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown format 'xml'; choose one of json, markdown"):
        renderer("xml")


def test_numbers_that_are_not_numbers_become_null() -> None:
    from datetime import UTC, datetime

    from meshtop.mesh import build_snapshot
    from meshtop.model import Edge, EdgeStats

    nan = float("nan")
    snapshot = build_snapshot(
        generated_at=datetime(2027, 1, 1, tzinfo=UTC),
        window_s=90,
        workloads=[],
        edges=[Edge("c/a/x", "c/a/y", EdgeStats(rps=2.0, error_rate=nan, p99_ms=float("inf")))],
        routes=[],
        sources={},
    )
    doc = json.loads(renderer("json")(Report(snapshot)))
    (edge,) = doc["edges"]
    assert edge["error_rate"] is None and edge["p99_ms"] is None
    assert edge["health"] == "failing"  # traffic that cannot be judged is not healthy
    assert doc["window"] == "90s"
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)


def test_schema_checks_dates() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    doc = {"schema": 1, "generated_at": "not a date", "window": "1m", "window_seconds": 60,
           "sources": {}, "nodes": [], "edges": [], "routes": [], "breakers": [], "scope": [],
           "security": {"plaintext_edges": [], "without_proxy": []}}  # fmt: skip
    assert not validator.is_valid(doc)
    doc["generated_at"] = "2027-01-01T00:00:00Z"
    assert validator.is_valid(doc)  # the date was the only fault
