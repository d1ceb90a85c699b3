"""What the routes and DestinationRules say, beside the flags they cause (issue 21): an
injected fault marked on the graph's lines into its destinations and in the edge table
(flagged past its end), the edge detail's timeout, retries, fault and circuit breaker
beside the p99 and `UT`, `URX`, `FI`, `UO`, `UH`, and the routes tab's policy words."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from meshtop import routes_view
from meshtop.change import edits
from meshtop.change.workflow import Copy, Workflow
from meshtop.connect import Sources
from meshtop.detail import traffic_policy
from meshtop.graphview import ViewOptions, build
from meshtop.mesh import refresh
from meshtop.model import CircuitBreaker, Fault, MeshSnapshot, Retries, RulePolicy
from meshtop.sim.sources import Simulation
from meshtop.steering import edit
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.detail import DetailScreen
from meshtop.tui.widgets.edge_table import EdgeTable
from meshtop.tui.widgets.graph import edge_label, fit

from ..conftest import only
from .test_console import _first_snapshot, settled, until

# -- the configuration beside the flags, and the fault's marks ------------------------------


async def _snapshot(sim: Simulation) -> MeshSnapshot:
    return await refresh(sim.clusters)


def _with_policy(
    snapshot: MeshSnapshot, policy: RulePolicy, ends: datetime | None, *breakers: CircuitBreaker
) -> MeshSnapshot:
    """The snapshot with reviews' default rule under `policy` (its fault ending at `ends`),
    as the control plane would read it back."""
    routes = tuple(
        replace(r, rules=tuple(replace(x, policy=policy) for x in r.rules), fault_expires=ends)
        if r.name == "reviews" else r
        for r in snapshot.routes
    )  # fmt: skip
    return replace(snapshot, routes=routes, breakers=breakers)


async def test_a_fault_marks_the_lines_into_its_destinations_and_flags_its_end(
    sim: Simulation,
) -> None:
    snapshot = await _snapshot(sim)
    view = build(snapshot, ViewOptions())
    assert not any(e.fault for e in view.edges.values())
    assert "↯" not in "".join(edge_label(e, "rps") for e in view.edges.values())
    later = snapshot.generated_at + timedelta(minutes=8)
    faulted = _with_policy(snapshot, RulePolicy(Fault(503, 10.0)), later)
    view = build(faulted, ViewOptions())
    into = {k: e.fault for k, e in view.edges.items() if e.fault}
    assert set(into) == {k for k in view.edges if "app:reviews:" in k[1]}
    assert set(into.values()) == {"fault"}
    label = edge_label(next(e for e in view.edges.values() if e.fault), "rps")
    assert label.endswith("↯") and fit(label, len(label) - 1).endswith("↯")  # the lock goes
    # a collapsed namespace holds those lines: its box says so
    boxes = build(faulted, ViewOptions(collapsed={"bookinfo"})).nodes
    assert [n.label for n in boxes.values() if "↯" in n.label] == ["bookinfo (all) ↯"]
    ended = _with_policy(snapshot, RulePolicy(Fault(503, 10.0)), snapshot.generated_at)
    view = build(ended, ViewOptions())
    assert {e.fault for e in view.edges.values() if e.fault} == {"expired"}
    assert all(edge_label(e, "rps").endswith("↯✗") for e in view.edges.values() if e.fault)
    assert (
        routes_view.policy_words(
            next(r for r in ended.routes if r.name == "reviews"), 0, ended.generated_at
        )
        == "fault: abort 503 to 10% EXPIRED"
    )


async def test_the_edge_detail_shows_timeout_retries_fault_and_breaker_beside_the_flags(
    sim: Simulation,
) -> None:
    snapshot = await _snapshot(sim)
    v3 = "Kubernetes/bookinfo/reviews-v3"
    page = "Kubernetes/bookinfo/productpage-v1"
    flags = {"UT": 0.31, "URX,UF": 0.04, "FI": 1.0, "UO": 0.2}
    edge = snapshot.edge(page, v3)
    assert edge is not None
    flagged = replace(edge.stats, rps=10.0, p99_ms=740.0, response_flags=flags)
    ends = snapshot.generated_at + timedelta(minutes=8)
    policy = RulePolicy(Fault(503, 10.0), 0.5, Retries(3, 0.25, "5xx"))
    pool = CircuitBreaker("Kubernetes", "bookinfo", "reviews", "reviews", "v3", max_connections=1)
    faulted = _with_policy(snapshot, policy, ends, pool)
    lines = traffic_policy(faulted, [v3], flagged, snapshot.generated_at)
    at = ends.astimezone().strftime("%H:%M")
    assert [(p.text, p.heading, p.expired) for p in lines] == [
        ("VirtualService bookinfo/reviews, rule 0 (default):", True, False),
        ("timeout 500ms · p99 740ms · UT 3.10%", False, False),
        ("retries 3 attempts, 250ms each, on 5xx · URX 0.40%", False, False),
        (f"fault: abort 503 to 10% until {at} (in 8m) · FI 10.00%", False, False),
        ("circuit breaker (DestinationRule bookinfo/reviews, reviews/v3): pool: max "
         "connections 1 · UO 2.00% · UH 0.00%", False, False),
    ]  # fmt: skip
    late = traffic_policy(faulted, [v3], flagged, ends + timedelta(minutes=3))
    assert [p.text for p in late if p.expired] == [
        "fault: abort 503 to 10% EXPIRED 3m ago · FI 10.00%"
    ]
    plain = traffic_policy(snapshot, [v3], None, snapshot.generated_at)
    assert [p.text for p in plain] == [
        "VirtualService bookinfo/reviews, rule 0 (default):",
        "no timeout",
        "retries: Istio's default (2 attempts)",
        "no circuit breaker",
    ]


async def test_the_edge_detail_and_the_edge_table_flag_an_expired_fault(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(140, 60)) as pilot:
        await _first_snapshot(app)
        snapshot = app.snapshot
        assert snapshot is not None
        app.snapshot = _with_policy(snapshot, RulePolicy(Fault(503, 10.0), 2.0),
                                    snapshot.generated_at - timedelta(minutes=3))  # fmt: skip
        app.main.graph.view = build(app.snapshot, ViewOptions())
        key = next(k for k in app.main.graph.view.edges if "app:reviews:v3" in k[1])
        app.main.open_edge(key)
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the edge's detail")
        await settled(pilot)
        shown = app.screen.query_one("#detail-policy", Static).content
        assert isinstance(shown, Group)
        text = "\n".join(t.plain for t in shown.renderables if isinstance(t, Text))
        assert "Traffic policy" in text and "timeout 2s · p99" in text
        assert "fault: abort 503 to 10% EXPIRED 3m ago" in text
        late = next(t for t in shown.renderables if isinstance(t, Text) and "EXPIRED" in t.plain)
        assert "reverse" in str(late.style)  # read without colour too
        app.screen.dismiss()
        await settled(pilot)
        table = app.query_one(EdgeTable)
        table.show(app.snapshot)
        cells = {str(c) for i in range(table.row_count) for c in table.get_row_at(i)}
        assert {"reviews-v3 ↯ EXPIRED", "reviews-v3 ↯✗"} & cells and "ratings-v1" in cells, cells


async def test_the_call_an_abort_answers_at_the_service_is_marked_with_its_policy(
    sim: Simulation,
) -> None:
    """On the simulated mesh, an abort answers at the caller's proxy: the call to the
    service (not to a workload) carries `FI`; it is marked too, with the route's fault."""
    cluster = next(iter(sim.clusters))
    store = sim.clusters[cluster].store
    assert store is not None
    copies = {cluster: Copy(cluster, store, "sim")}
    read = await edits.read(copies, ["VirtualService"], "bookinfo", "reviews")
    ends = datetime.fromtimestamp(sim.clock(), UTC) + timedelta(minutes=10)
    plans = edits.plans(read.objects(), lambda obj, c: edit.fault(obj, c, abort=(503, 50.0),
                                                                 expires=ends))  # fmt: skip
    assert [o.result for o in await Workflow(copies, by="console").apply(plans)] == ["applied"]
    snapshot = await refresh(sim.clusters)
    into = next(e for e in snapshot.edges if e.destination.endswith("/service:reviews"))
    assert into.stats.response_flags.get("FI", 0) > 0
    view = build(snapshot, ViewOptions())
    assert next(e for e in view.edges.values() if into.key in e.members).fault == "fault"
    now = snapshot.generated_at
    lines = [p.text for p in traffic_policy(snapshot, [into.destination], into.stats, now)]
    assert lines[0] == "VirtualService bookinfo/reviews, rule 0 (default):"
    # every call that edge carries is one the proxy aborted
    assert "fault: abort 503 to 50% until" in lines[3] and lines[3].endswith("FI 100.00%")
