"""The 4xx share (`client_error_rate`) beside the error rate: its figure, its gate, its
place in the JSON and its schema, and the edge table's sort by it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest

from meshtop.export import renderer
from meshtop.export.json_report import figures
from meshtop.gates import check, parse_gate
from meshtop.health import Health
from meshtop.model import Edge, EdgeStats, MeshSnapshot, Protocol, WindowSummary
from meshtop.model.stats import client_errors
from meshtop.report import Report
from meshtop.sim.sources import Simulation
from meshtop.tui.widgets.edge_table import SORTS, proto
from tests.test_export import SCHEMA, _snap

HTTP = EdgeStats(rps=10.0, response_codes={"200": 7.0, "404": 2.0, "429": 0.5, "503": 0.5},
                 error_rate=0.05)  # fmt: skip


def test_the_share_answered_4xx() -> None:
    assert HTTP.client_error_rate == pytest.approx(0.25)
    assert EdgeStats().client_error_rate == 0.0  # no requests: nothing to share
    summary = WindowSummary(rps=4.0, response_codes={"200": 3.0, "404": 1.0})
    assert summary.client_error_rate == pytest.approx(0.25)
    assert WindowSummary().client_error_rate is None
    assert figures(HTTP)["client_error_rate"] == 0.25


def test_the_4xx_share_adds_up_every_code_starting_with_4_and_nothing_else() -> None:
    """Status codes are label values: whatever a backend sends (an empty one, a bare
    `4`, `4xx`) is counted by its first character, never an error; the sum is the one
    added in the codes' order, to the last bit."""
    codes = {"": 1.0, "4": 0.1, "4xx": 0.2, "404": 0.3, "200": 5.0, "x4": 7.0, "429": 0.7}
    assert client_errors(codes, 10.0) == (0.0 + 0.1 + 0.2 + 0.3 + 0.7) / 10.0
    assert client_errors(codes, 0.0) == 0.0
    assert client_errors({}, 3.0) == 0.0


def test_a_gate_on_the_4xx_share() -> None:
    gate = parse_gate("client_error_rate>20%")
    assert gate.value == pytest.approx(0.2)
    edges = [Edge("a", "b", HTTP), Edge("a", "c", EdgeStats(protocol=Protocol.TCP))]
    snapshot = MeshSnapshot(datetime(2026, 12, 1, tzinfo=UTC), 60, {}, tuple(edges), (), {})
    (broken,) = check(snapshot, [gate])
    assert broken.edge.destination == "b"  # a TCP edge has no 4xx to judge
    assert broken.describe(snapshot) == "client_error_rate>20%: a → b has client_error_rate 25.00%"
    assert not check(snapshot, [parse_gate("client_error_rate>=30%")])


def test_the_json_and_its_schema_carry_it(sim: Simulation) -> None:
    doc = json.loads(renderer("json")(Report(_snap(sim))))
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    schema_edge = SCHEMA["properties"]["edges"]["items"]["properties"]
    assert {"client_error_rate", "protocols"} <= set(schema_edge)
    ingress = next(e for e in doc["edges"] if "ingressgateway" in e["source"])
    assert ingress["client_error_rate"] == pytest.approx(0.01, abs=0.005)  # the demo's 404s
    broken = json.loads(json.dumps(doc))
    broken["edges"][0]["client_error_rate"] = 1.5
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(broken)


def test_the_edge_table_sorts_by_it_busiest_first_among_equals() -> None:
    quiet = Edge("x", "y", EdgeStats(rps=1.0, response_codes={"404": 0.1, "200": 0.9}))
    busy = Edge("x", "z", EdgeStats(rps=20.0, response_codes={"404": 2.0, "200": 18.0}))
    clean = Edge("x", "w", EdgeStats(rps=50.0, response_codes={"200": 50.0}))
    key = SORTS["4xx"]
    ranked = sorted([clean, quiet, busy], key=lambda e: key(e, Health.HEALTHY, ""))
    assert [e.destination for e in ranked] == ["z", "y", "w"]
    both = EdgeStats(protocol=Protocol.HTTP, protocols=(Protocol.HTTP, Protocol.GRPC))
    assert proto(Edge("a", "b", both)) == "http+grpc"
