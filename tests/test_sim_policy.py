"""The simulated mesh serves and edits whole objects (issue 21): each VirtualService and
DestinationRule kept as the Kubernetes API serves it, a plan's JSON patch applied as the
API server applies one, and what the traffic reads derived from the objects again."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from meshtop.canary import Plan, Split, parse_set
from meshtop.change.workflow import Copy, Workflow
from meshtop.errors import ConflictError, UsageError
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, spread
from meshtop.steering.edit import circuit_breaker, fault, resilience

from .conftest import T0

VS, DR = "VirtualService", "DestinationRule"


def _copy(sim: Simulation) -> dict[str, Copy]:
    return {"": Copy("", sim.planes[""], "the simulated mesh")}


def _run(sim: Simulation, plan: Any, by: str = "fault", dry_run: bool = False) -> Any:
    (outcome,) = asyncio.run(Workflow(_copy(sim), by=by).apply({"": plan}, dry_run=dry_run))
    return outcome


# -- whole objects ----------------------------------------------------------------------


def test_get_serves_a_copy_of_the_object_whole(sim: Simulation) -> None:
    plane = sim.planes[""]
    reviews = asyncio.run(plane.get(VS, "bookinfo", "reviews"))
    assert reviews["kind"] == VS and reviews["metadata"]["resourceVersion"] == "1"
    assert [d["weight"] for d in reviews["spec"]["http"][0]["route"]] == [70, 20, 10]
    reviews["spec"]["http"][0]["route"][0]["weight"] = 0  # the reader's copy, not the mesh's
    again = asyncio.run(plane.get(VS, "bookinfo", "reviews"))
    assert again["spec"]["http"][0]["route"][0]["weight"] == 70
    rule = asyncio.run(plane.get(DR, "bookinfo", "reviews"))
    assert [s["name"] for s in rule["spec"]["subsets"]] == ["v1", "v2", "v3"]
    with pytest.raises(UsageError, match="no VirtualService bookinfo/carts in the simulated mesh"):
        asyncio.run(plane.get(VS, "bookinfo", "carts"))


def test_a_fault_written_through_the_workflow_is_in_the_object_and_its_route(
    sim: Simulation,
) -> None:
    obj = asyncio.run(sim.planes[""].get(VS, "bookinfo", "ratings"))
    outcome = _run(sim, fault(obj, "", abort=(503, 40.0)))
    assert outcome.result == "applied"
    now = sim.get(VS, "bookinfo", "ratings")
    assert now["spec"]["http"][0]["fault"] == {
        "abort": {"httpStatus": 503, "percentage": {"value": 40.0}}
    }
    assert (now["metadata"]["resourceVersion"], now["metadata"]["generation"]) == ("2", 2)
    route = sim.route("bookinfo", "ratings")  # what the traffic reads: derived again
    assert route.resource_version == "2"
    got = route.rules[0].policy.fault
    assert got is not None and (got.abort_status, got.abort_percent) == (503, 40.0)
    (change,) = sim.route_changes()
    assert (change.kind, change.name, change.generation, change.manager) == (
        VS, "ratings", 2, "meshtop",
    )  # fmt: skip


def test_a_stale_plan_is_a_conflict_naming_the_object_and_nothing_changes(
    sim: Simulation,
) -> None:
    obj = asyncio.run(sim.planes[""].get(VS, "bookinfo", "reviews"))
    plan = resilience(obj, "", timeout=0.05)
    sim.set_weights("bookinfo", "reviews", {"v1": 80, "v2": 10, "v3": 10})  # someone else
    before = sim.get(VS, "bookinfo", "reviews")
    with pytest.raises(ConflictError, match="VirtualService bookinfo/reviews changed since"):
        sim.edit(plan)
    outcome = _run(sim, plan, by="resilience")
    assert outcome.result.startswith("conflict")
    assert sim.get(VS, "bookinfo", "reviews") == before
    assert sim.route("bookinfo", "reviews").rules[0].policy.timeout_s is None


def test_a_spec_changed_under_the_same_version_is_refused_by_its_test(sim: Simulation) -> None:
    """The plan's `test` of the spec read holds as well as the version's."""
    obj = asyncio.run(sim.planes[""].get(VS, "bookinfo", "reviews"))
    plan = resilience(obj, "", timeout=0.05)
    sim.mesh.objects[("Kubernetes", VS, "bookinfo", "reviews")]["spec"]["http"][0]["timeout"] = "9s"
    with pytest.raises(ConflictError, match="VirtualService bookinfo/reviews changed at /spec"):
        sim.edit(plan)


def test_a_dry_run_is_checked_and_not_written(sim: Simulation) -> None:
    obj = asyncio.run(sim.planes[""].get(VS, "bookinfo", "reviews"))
    answer = sim.edit(resilience(obj, "", timeout=0.05), dry_run=True)
    assert answer["spec"]["http"][0]["timeout"] == "50ms"
    assert "timeout" not in sim.get(VS, "bookinfo", "reviews")["spec"]["http"][0]
    assert sim.route("bookinfo", "reviews").resource_version == "1" and not sim.route_changes()


def test_an_object_the_api_server_would_refuse_is_refused_and_not_written(
    sim: Simulation,
) -> None:
    obj = asyncio.run(sim.planes[""].get(VS, "bookinfo", "reviews"))
    plan = resilience(obj, "", timeout=0.05)
    broken = {**plan.after, "http": [{**plan.after["http"][0], "timeout": "soon"}]}
    with pytest.raises(UsageError, match="VirtualService bookinfo/reviews would be invalid"):
        sim.edit(replace(plan, after=broken))
    assert sim.get(VS, "bookinfo", "reviews")["metadata"]["resourceVersion"] == "1"


def test_a_circuit_breaker_is_served_by_breakers(sim: Simulation) -> None:
    plane = sim.planes[""]
    assert asyncio.run(plane.breakers()) == []  # Bookinfo's DestinationRules set none
    obj = asyncio.run(plane.get(DR, "bookinfo", "reviews"))
    plan = circuit_breaker(obj, "", subset="v3", max_connections=1, max_pending=1)
    assert _run(sim, plan, by="resilience").result == "applied"
    (breaker,) = asyncio.run(plane.breakers())
    assert (breaker.name, breaker.host, breaker.subset) == ("reviews", "reviews", "v3")
    assert (breaker.max_connections, breaker.max_pending) == (1, 1)
    assert sim.get(DR, "bookinfo", "reviews")["metadata"]["resourceVersion"] == "2"
    # the subsets are still what the DestinationRule says
    assert sim.mesh.subsets[("bookinfo", "reviews", "v3")] == {"version": "v3"}
    assert [c.kind for c in sim.route_changes()] == [DR]


def test_the_weight_path_writes_the_same_object(sim: Simulation) -> None:
    route = sim.route("bookinfo", "reviews")
    before = Split.of(route, route.rules[0])
    plan = Plan(route, 0, before, parse_set("v1=50,v2=40,v3=10", before))
    assert _run(sim, plan, by="shift").result == "applied"
    obj = sim.get(VS, "bookinfo", "reviews")
    assert [d["weight"] for d in obj["spec"]["http"][0]["route"]] == [50, 40, 10]
    assert obj["metadata"]["resourceVersion"] == "2"
    route = sim.route("bookinfo", "reviews")
    assert [d.weight for d in route.rules[0].destinations] == [50, 40, 10]
    # and an edit planned from the object now sees the weights written
    timed = resilience(asyncio.run(sim.planes[""].get(VS, "bookinfo", "reviews")), "", timeout=1)
    assert _run(sim, timed, by="resilience").result == "applied"
    route = sim.route("bookinfo", "reviews")
    assert [d.weight for d in route.rules[0].destinations] == [50, 40, 10]
    assert route.rules[0].policy.timeout_s == 1.0 and route.resource_version == "3"


def test_each_cluster_edits_its_own_copy() -> None:
    sim = Simulation(spread(bookinfo(), ("east", "west")), clock=lambda: T0)
    west = sim.planes["west"]
    obj = asyncio.run(west.get(VS, "bookinfo", "reviews"))
    copies = {"west": Copy("west", west, "west")}
    plan = resilience(obj, "west", timeout=0.5)
    (outcome,) = asyncio.run(Workflow(copies, by="resilience").apply({"west": plan}))
    assert outcome.result == "applied"
    assert sim.route("bookinfo", "reviews", "west").rules[0].policy.timeout_s == 0.5
    assert sim.route("bookinfo", "reviews", "east").rules[0].policy.timeout_s is None
    assert [c.cluster for c in sim.route_changes()] == ["west"]
