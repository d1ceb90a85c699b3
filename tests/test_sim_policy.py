"""The simulated mesh serves and edits whole objects (issue 21): each VirtualService and
DestinationRule kept as the Kubernetes API serves it, a plan's JSON patch applied as the
API server applies one, and what the traffic reads derived from the objects again."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from meshtop.canary import Plan, Split, parse_set
from meshtop.change.workflow import Copy, Workflow
from meshtop.errors import ConflictError, UsageError
from meshtop.mesh import refresh
from meshtop.model import EdgeStats, MeshSnapshot, TraceQuery
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, spread
from meshtop.steering.edit import circuit_breaker, fault, resilience, steer
from meshtop.steering.match import parse_condition

from .conftest import T0, Clock

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


# -- the traffic model honours the policies ----------------------------------------------

NS = "Kubernetes/bookinfo/"
PAGE, GATEWAY = NS + "productpage-v1", "Kubernetes/istio-system/istio-ingressgateway"


def _snap(sim: Simulation) -> MeshSnapshot:
    return asyncio.run(refresh(sim.clusters))


def _stats(snapshot: MeshSnapshot, source: str, destination: str) -> EdgeStats:
    edge = snapshot.edge(source, destination)
    assert edge is not None, f"no edge {source} -> {destination}"
    return edge.stats


def _change(sim: Simulation, kind: str, name: str, make: Any, by: str = "resilience") -> None:
    obj = asyncio.run(sim.planes[""].get(kind, "bookinfo", name))
    assert _run(sim, make(obj), by=by).result == "applied"


def test_a_timeout_below_the_callees_p99_shows_ut_in_the_next_snapshot(sim: Simulation) -> None:
    before = _stats(_snap(sim), PAGE, NS + "reviews-v3")
    assert before.p99_ms is not None and before.p99_ms > 100 and "UT" not in before.response_flags
    _change(sim, VS, "reviews", lambda obj: resilience(obj, "", timeout=0.08))
    after = _stats(_snap(sim), PAGE, NS + "reviews-v3")
    assert after.response_flags["UT"] > 0.05 * after.rps  # v3's slow tail, cut at 80 ms
    assert after.response_codes["504"] == pytest.approx(after.response_flags["UT"])
    assert after.p99_ms is not None and after.p99_ms <= 80.0
    assert after.error_rate > before.error_rate
    fast = _stats(_snap(sim), PAGE, NS + "reviews-v1")  # v1 answers well within it
    assert "UT" not in fast.response_flags and fast.error_rate == 0.0


def test_a_pool_of_one_connection_on_a_busy_destination_shows_uo(sim: Simulation) -> None:
    service = NS + "service:productpage"
    assert _snap(sim).edge(GATEWAY, service) is None
    _change(sim, DR, "productpage",
            lambda obj: circuit_breaker(obj, "", max_connections=1, max_pending=1))  # fmt: skip
    snapshot = _snap(sim)
    overflow = _stats(snapshot, GATEWAY, service)  # answered by the gateway's own proxy
    served = _stats(snapshot, GATEWAY, PAGE)
    assert set(overflow.response_flags) == {"UO"} and overflow.response_codes == {
        "503": pytest.approx(overflow.rps)
    }
    # 20 requests a second, each ~30 ms: the pool of 2 overflows for a few percent
    assert 0.01 < overflow.rps / (overflow.rps + served.rps) < 0.3


def test_an_aborts_share_is_answered_by_the_callers_proxy_and_a_delay_adds_latency(
    sim: Simulation,
) -> None:
    before = _snap(sim)
    page_p99 = _stats(before, NS + "reviews-v2", NS + "ratings-v1").p99_ms
    _change(sim, VS, "ratings", lambda obj: fault(obj, "", abort=(503, 40.0), delay=(0.5, 20.0)),
            by="fault")  # fmt: skip
    snapshot = _snap(sim)
    for caller in ("reviews-v2", "reviews-v3"):
        aborted = _stats(snapshot, NS + caller, NS + "service:ratings")
        reached = _stats(snapshot, NS + caller, NS + "ratings-v1")
        assert aborted.response_flags == {"FI": pytest.approx(aborted.rps)}
        assert aborted.rps / (aborted.rps + reached.rps) == pytest.approx(0.40, abs=0.02)
        # of those sent on, a fifth waits half a second first
        assert reached.response_flags["DI"] / reached.rps == pytest.approx(0.20, abs=0.01)
        assert reached.p99_ms is not None and page_p99 is not None
        assert reached.p99_ms > 500 > page_p99
    assert "FI" not in _stats(snapshot, NS + "reviews-v2", NS + "ratings-v1").response_flags


def test_retries_lower_the_callers_errors_and_raise_the_callees_load(sim: Simulation) -> None:
    def seen() -> tuple[float, float]:
        snapshot = _snap(sim)
        calls = _stats(snapshot, PAGE, NS + "reviews-v3")
        below = _stats(snapshot, NS + "reviews-v3", NS + "ratings-v1")  # what v3 serves, asks
        return calls.error_rate, below.rps

    default_errors, default_load = seen()  # Istio's default: 2 retries on 503s
    _change(sim, VS, "reviews", lambda obj: resilience(obj, "", attempts=5, retry_on="5xx"))
    errors, load = seen()
    assert errors < default_errors / 5  # the transient failures retried away
    assert load > default_load * 1.05  # the callee serving every attempt
    _change(sim, VS, "reviews", lambda obj: resilience(obj, "", attempts=0))
    errors, load = seen()
    assert errors > default_errors * 2 and load < default_load  # no retries: all seen
    flags = _stats(_snap(sim), PAGE, NS + "reviews-v3").response_flags
    assert "URX" not in flags  # nothing retried, so nothing exhausted


def test_outlier_detection_ejects_a_failing_destination_and_all_ejected_is_uh(
    sim: Simulation,
) -> None:
    v3_before = _stats(_snap(sim), PAGE, NS + "reviews-v3").rps
    _change(sim, DR, "reviews", lambda obj: circuit_breaker(
        obj, "", subset="v3", consecutive_errors=1, base_ejection=30.0))  # fmt: skip
    snapshot = _snap(sim)
    v3 = _stats(snapshot, PAGE, NS + "reviews-v3").rps
    none_left = _stats(snapshot, PAGE, NS + "service:reviews")  # v3's only pod ejected
    assert none_left.response_flags == {"UH": pytest.approx(none_left.rps)}
    assert v3 < v3_before / 2 and v3 + none_left.rps == pytest.approx(v3_before, rel=0.01)
    assert "UH" not in _stats(snapshot, PAGE, NS + "reviews-v1").response_flags


def test_a_source_labels_rule_takes_its_callers_and_a_header_rule_takes_none(
    sim: Simulation,
) -> None:
    _change(sim, VS, "ratings", lambda obj: steer(
        obj, "", conditions=[parse_condition("source:version=v3")], targets=[("v2", 100)]),
        by="steer")  # fmt: skip
    _change(sim, VS, "reviews", lambda obj: steer(
        obj, "", conditions=[parse_condition("header:user-agent~.*iPhone.*")],
        targets=[("v3", 100)]), by="steer")  # fmt: skip
    snapshot = _snap(sim)
    # v3's calls go to subset v2 of ratings, which no pod backs; v2's are as they were
    assert _snap(sim).edge(NS + "reviews-v3", NS + "ratings-v1") is None
    assert _stats(snapshot, NS + "reviews-v3", NS + "service:ratings").response_flags == {
        "UH": pytest.approx(_stats(snapshot, NS + "reviews-v3", NS + "service:ratings").rps)
    }
    assert _stats(snapshot, NS + "reviews-v2", NS + "ratings-v1").rps > 0
    # the simulated requests carry no user-agent: reviews is split 70/20/10 as before
    rps = {v: _stats(snapshot, PAGE, NS + f"reviews-{v}").rps for v in ("v1", "v2", "v3")}
    assert rps["v3"] / sum(rps.values()) == pytest.approx(0.10, abs=0.03)


def test_a_fault_past_its_expiry_is_still_injected(sim: Simulation, clock: Clock) -> None:
    until = datetime.fromtimestamp(clock() + 60, UTC)
    _change(sim, VS, "ratings", lambda obj: fault(obj, "", abort=(500, 100.0), expires=until),
            by="fault")  # fmt: skip
    clock.advance(3600)  # Istio does not know meshtop's annotation
    route = sim.route("bookinfo", "ratings")
    assert route.fault_expires == until
    aborted = _stats(_snap(sim), NS + "reviews-v2", NS + "service:ratings")
    assert aborted.response_codes == {"500": pytest.approx(aborted.rps)}


def test_the_past_before_a_change_has_none_of_its_policies(sim: Simulation, clock: Clock) -> None:
    before = clock()
    clock.advance(60)
    _change(sim, VS, "reviews", lambda obj: resilience(obj, "", timeout=0.08))
    _change(sim, DR, "productpage",
            lambda obj: circuit_breaker(obj, "", max_connections=1, max_pending=1))  # fmt: skip
    then = {(e.source.id, e.destination.id): e for e in sim.flows(at=before)}
    assert not any("UT" in e.stats().response_flags for e in then.values())
    assert (GATEWAY, NS + "service:productpage") not in then
    now = {(e.source.id, e.destination.id): e for e in sim.flows()}
    assert "UT" in now[(PAGE, NS + "reviews-v3")].stats().response_flags


def test_traces_carry_the_flags_of_the_policies(sim: Simulation, clock: Clock) -> None:
    _change(sim, VS, "ratings", lambda obj: fault(obj, "", abort=(503, 100.0)), by="fault")
    _change(sim, VS, "reviews", lambda obj: resilience(obj, "", timeout=0.03))
    clock.advance(60)  # the traces listed are of the last seconds
    found = asyncio.run(sim.traces.find_traces(TraceQuery("reviews", limit=40)))
    flags: dict[str, set[str]] = {}
    for summary in found:
        for span in asyncio.run(sim.traces.get_trace(summary.trace_id)).spans:
            if span.kind == "client":
                flags.setdefault(span.tags["response_flags"], set()).add(
                    span.tags["http.status_code"]
                )
    assert flags.get("FI") == {"503"}  # every call to ratings aborted by the caller's proxy
    assert flags.get("UT") == {"504"}  # and reviews' slow answers cut at 30 ms
