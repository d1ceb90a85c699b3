"""What the routes and DestinationRules set on the calls (issue 21) in every export format
and in the `fault-active` / `fault-expired` gates: the simulated Bookinfo at a fixed
moment, with a fault, a timeout, retries and a circuit breaker set on reviews as the
Kubernetes adapter reads them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from meshtop import policy_view
from meshtop.errors import UsageError
from meshtop.export import renderer
from meshtop.gates import check_faults, parse_gate
from meshtop.mesh import refresh
from meshtop.model import CircuitBreaker, Fault, MeshSnapshot, Retries, RulePolicy
from meshtop.report import Report
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo

AT = 1_760_000_000.0  # 2025-10-09T08:53:20Z
NOW = datetime.fromtimestamp(AT, UTC)
FAULT = Fault(abort_status=503, abort_percent=10.0, delay_s=2.0, delay_percent=25.0)


def _snapshot(expires: datetime | None) -> MeshSnapshot:
    sim = Simulation(bookinfo(), clock=lambda: AT)
    snapshot = asyncio.run(refresh(sim.clusters, window_s=60, clock=lambda: AT))
    routes = []
    for r in snapshot.routes:
        if r.name == "reviews":
            policy = RulePolicy(FAULT, 0.5, Retries(3, 0.2, "5xx"))
            r = replace(r, rules=tuple(replace(rule, policy=policy) for rule in r.rules),
                        fault_expires=expires)  # fmt: skip
        routes.append(r)
    breaker = CircuitBreaker(
        cluster=routes[0].cluster, namespace="bookinfo", name="reviews", host="reviews",
        subset="v3", max_connections=1, max_pending=1, consecutive_errors=1,
    )  # fmt: skip
    return replace(snapshot, routes=tuple(routes), breakers=(breaker,))


def test_the_calls_into_reviews_v3_say_what_is_set_on_them() -> None:
    snapshot = _snapshot(NOW + timedelta(minutes=8))
    v3 = next(n for n, w in snapshot.nodes.items() if w.name == "reviews-v3")
    found = policy_view.into(snapshot, v3)
    assert found.words(NOW) == (
        "fault: abort 503 to 10%, delay 2s to 25% (VirtualService bookinfo/reviews rule 0) "
        "until 09:01:20 UTC (in 8m)",
        "timeout 500ms",
        "retries 3 attempts, 200ms each, on 5xx",
        "reviews/v3: pool: max connections 1, max pending 1",
        "reviews/v3: eject after 1 consecutive 5xx",
    )
    v1 = next(n for n, w in snapshot.nodes.items() if w.name == "reviews-v1")
    assert policy_view.into(snapshot, v1).breakers == ()  # the subset's, not v1's
    ratings = next(n for n, w in snapshot.nodes.items() if w.name == "ratings-v1")
    assert policy_view.into(snapshot, ratings).empty


def test_every_format_carries_the_policy() -> None:
    report = Report(_snapshot(NOW - timedelta(minutes=3)))
    doc = json.loads(renderer("json")(report))
    reviews = next(r for r in doc["routes"] if r["name"] == "reviews")
    assert reviews["fault_expired"] is True
    assert reviews["fault_expires"] == "2025-10-09T08:50:20Z"
    assert reviews["rules"][0]["fault"] == {
        "abort_status": 503, "abort_percent": 10.0, "delay_seconds": 2.0, "delay_percent": 25.0
    }  # fmt: skip
    assert reviews["rules"][0]["timeout_seconds"] == 0.5
    assert reviews["rules"][0]["retries"] == {
        "attempts": 3, "per_try_timeout_seconds": 0.2, "retry_on": "5xx"
    }  # fmt: skip
    assert doc["breakers"][0]["subset"] == "v3" and doc["breakers"][0]["max_connections"] == 1
    markdown = renderer("markdown")(report)
    assert (
        "fault: abort 503 to 10%, delay 2s to 25% EXPIRED; timeout 500ms; "
        "retries 3 attempts, 200ms each, on 5xx"
    ) in markdown
    assert "| bookinfo/reviews | reviews/v3 | pool: max connections 1, max pending 1;" in markdown
    assert "<td>reviews/v3</td>" in renderer("html")(report)
    rows = list(csv.DictReader(io.StringIO(renderer("csv")(report))))
    into_v3 = next(r for r in rows if r["destination"].endswith("reviews-v3"))
    assert "EXPIRED 3m ago" in into_v3["destination_fault"]
    assert into_v3["destination_timeout_s"] == "0.5"
    assert into_v3["destination_circuit_breaker"].startswith("reviews/v3: pool:")
    into_ratings = next(r for r in rows if r["destination"].endswith("ratings-v1"))
    assert into_ratings["destination_fault"] == "" == into_ratings["destination_timeout_s"]
    for fmt in ("dot", "mermaid", "svg"):
        assert "fault EXPIRED" in renderer(fmt)(report), fmt


def test_the_fault_gates_fail_on_a_fault_and_name_it() -> None:
    running = _snapshot(NOW + timedelta(minutes=8))
    (hit,) = check_faults(running, [parse_gate("fault-active")])
    assert hit.describe().startswith("fault-active: abort 503 to 10%, delay 2s to 25%")
    assert check_faults(running, [parse_gate("fault-active ns=prod")]) == []
    assert check_faults(running, [parse_gate("fault-expired")]) == []
    ended = _snapshot(NOW - timedelta(seconds=1))
    (late,) = check_faults(ended, [parse_gate("fault-expired ns=book*")])
    assert "EXPIRED 1s ago" in late.describe()
    with pytest.raises(UsageError, match="write fault-active alone"):
        parse_gate("fault-active>0")


def test_a_mesh_with_nothing_set_costs_no_lookup() -> None:
    sim = Simulation(bookinfo(), clock=lambda: AT)
    snapshot = asyncio.run(refresh(sim.clusters, window_s=60, clock=lambda: AT))
    assert not policy_view.any_set(snapshot) and policy_view.by_destination(snapshot) == {}
