"""What a view is made of is worked out once per topology (issue 17): a refresh of the same
mesh (the same nodes, the same calls in the same order) adds up its figures into the boxes
and lines of the view before, under the same options; a new call, a new node, other
options or a fault's mark make it again. The views are the same as made afresh, and a
line's figures, added up in one pass, the same as each by its definition."""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import replace

import pytest

from meshtop import graphview
from meshtop.graphview import Grouping, ViewOptions, build
from meshtop.mesh import refresh
from meshtop.model import EdgeStats, MeshSnapshot, Protocol, add_rates
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, generated
from meshtop.steering.edit import fault
from meshtop.tui.placement import level_options

from .conftest import Clock
from .test_sim_policy import _change


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[ViewOptions]:
    """The options of each shape worked out."""
    shapes: list[ViewOptions] = []
    real = graphview._make_shape

    def counted(
        snapshot: MeshSnapshot, options: ViewOptions, faults: dict[str, str]
    ) -> graphview.Shape:
        shapes.append(options)
        return real(snapshot, options, faults)

    monkeypatch.setattr(graphview, "_make_shape", counted)
    return shapes


def _afresh(snapshot: MeshSnapshot, options: ViewOptions) -> graphview.GraphView:
    with graphview._topology_lock:
        graphview._topologies.clear()
    return build(snapshot, options)


def test_a_refresh_of_the_same_mesh_makes_no_shape_again(
    clock: Clock, made: list[ViewOptions]
) -> None:
    sim = Simulation(generated(300), clock=clock)
    first = asyncio.run(refresh(sim.clusters))
    level = level_options(ViewOptions(), first, "namespaces")
    options = (ViewOptions(), level, ViewOptions(grouping=Grouping.APP, filter="error>1%"))
    for o in options:
        build(first, o)
    assert len(made) == 3
    clock.advance(2)
    second = asyncio.run(refresh(sim.clusters, previous=first))
    assert second.edges != first.edges  # other figures, the same calls
    views = [build(second, o) for o in options]
    assert len(made) == 3
    for o, view in zip(options, views, strict=True):
        again = _afresh(second, o)
        assert view == again and list(view.nodes) == list(again.nodes)
        assert list(view.edges) == list(again.edges)
    # the namespaces level's figures are the second snapshot's own
    rps = sum(e.stats.rps for e in views[1].edges.values())
    assert rps == pytest.approx(sum(e.stats.rps for e in second.edges if _drawn(e.key, level)))


def _drawn(key: tuple[str, str], level: ViewOptions) -> bool:
    """Whether a call is drawn at the namespaces level: not inside one namespace's box."""
    a, b = (k.split("/") for k in key)
    return (a[0], a[1]) != (b[0], b[1]) or "unknown" in (a[1], b[1])


def test_a_new_call_a_fault_or_other_options_make_the_shape_again(
    sim: Simulation, clock: Clock, made: list[ViewOptions]
) -> None:
    o = ViewOptions()
    build(asyncio.run(refresh(sim.clusters)), o)
    sim.set_weights("bookinfo", "reviews", {"v1": 0, "v2": 50, "v3": 50})  # v1's call goes
    clock.advance(2)
    fewer = asyncio.run(refresh(sim.clusters))
    view = build(fewer, o)
    assert len(made) == 2 and view == _afresh(fewer, o)
    build(fewer, replace(o, collapsed={"bookinfo"}))
    assert len(made) == 4  # (and the one made afresh)
    _change(sim, "VirtualService", "ratings", lambda obj: fault(obj, "", abort=(503, 40.0)),
            by="fault")  # fmt: skip
    clock.advance(2)
    faulted = asyncio.run(refresh(sim.clusters))
    view = build(faulted, o)
    assert len(made) == 5 and view == _afresh(faulted, o)
    assert any(e.fault for e in view.edges.values())


def test_bookinfo_views_are_as_made_afresh_over_refreshes(clock: Clock) -> None:
    sim = Simulation(bookinfo(), clock=clock)
    previous = None
    for _ in range(3):
        snapshot = asyncio.run(refresh(sim.clusters, previous=previous))
        for grouping in Grouping:
            o = ViewOptions(grouping=grouping)
            assert build(snapshot, o) == _afresh(snapshot, o)
        previous = snapshot
        clock.advance(2)


def _by_definition(stats: list[EdgeStats]) -> EdgeStats:
    """Several edges drawn as one, each figure by its definition, a pass per figure."""
    known = [
        [x for x in xs if x is not None and math.isfinite(x)]
        for xs in ([s.p50_ms for s in stats], [s.p95_ms for s in stats], [s.p99_ms for s in stats])
    ]
    rates = [s.error_rate for s in stats if s.rps > 0]
    weights = [s.rps or s.tcp_connections_per_s for s in stats]
    protocols = {s.protocol for s in stats}
    protocol = Protocol.HTTP if len(protocols) > 1 else next(iter(protocols))
    order = sorted(range(len(stats)), key=lambda i: -weights[i])
    carried = tuple(dict.fromkeys([protocol, *(p for i in order for p in stats[i].carried)]))
    return EdgeStats(
        protocol=protocol,
        protocols=carried if len(carried) > 1 else (),
        rps=sum(s.rps for s in stats),
        error_rate=max(rates, default=0.0) if all(map(math.isfinite, rates)) else math.nan,
        p50_ms=max(known[0]) if known[0] else None,
        p95_ms=max(known[1]) if known[1] else None,
        p99_ms=max(known[2]) if known[2] else None,
        mtls=sum(s.mtls * w for s, w in zip(stats, weights, strict=True)) / sum(weights)
        if sum(weights)
        else 0.0,
        response_codes=add_rates(s.response_codes for s in stats),
        response_flags=add_rates(s.response_flags for s in stats),
        grpc_statuses=add_rates(s.grpc_statuses for s in stats),
        tcp_request_bps=sum(s.tcp_request_bps for s in stats),
        tcp_response_bps=sum(s.tcp_response_bps for s in stats),
        tcp_connections_per_s=sum(s.tcp_connections_per_s for s in stats),
    )


def test_lines_add_up_in_one_pass_as_each_figure_by_its_definition() -> None:
    rng = random.Random(17)
    odd = [0.0, -0.0, 1.0, 2.5, math.nan, math.inf, None, 3]
    for _ in range(3_000):
        stats = [
            EdgeStats(
                protocol=rng.choice(list(Protocol)),
                rps=rng.choice([0.0, 1.5, 3, math.nan, 2.0, 1e308]),
                error_rate=rng.choice([0.0, 0.1, math.nan, 0.5]),
                p50_ms=rng.choice(odd),
                p95_ms=rng.choice(odd),
                p99_ms=rng.choice(odd),
                mtls=rng.choice([0.0, 1.0, 0.5]),
                response_codes=rng.choice([{}, {"200": 1.0}, {"503": 0.5, "200": 2.0}]),
                response_flags=rng.choice([{}, {"UH": 1.0}]),
                grpc_statuses=rng.choice([{}, {"0": 1.0, "14": 0.2}]),
                tcp_request_bps=rng.choice([0.0, 5.0]),
                tcp_connections_per_s=rng.choice([0.0, 0.5, 2]),
                protocols=rng.choice([(), (Protocol.HTTP, Protocol.GRPC), (Protocol.TCP,)]),
            )
            for _ in range(rng.randint(2, 5))
        ]
        line, share = graphview.merged(stats)
        assert repr(line) == repr(_by_definition(stats))  # NaN and -0.0 as they are
        assert repr(share) == repr(graphview.error_share(stats))


def test_a_lines_figures_are_a_frozen_edge_stats_of_every_field() -> None:
    calls = [
        EdgeStats(rps=1.0, response_codes={"200": 1.0}),
        EdgeStats(protocol=Protocol.TCP, tcp_request_bps=5.0, tcp_connections_per_s=0.5),
    ]
    line, _ = graphview.merged(calls)
    assert type(line) is EdgeStats and line == _by_definition(calls)
    assert all(hasattr(line, f) for f in EdgeStats.__slots__)
    with pytest.raises(AttributeError):
        line.rps = 2.0  # type: ignore[misc]  # still frozen


def test_a_views_lines_are_frozen_view_edges_of_every_field(clock: Clock) -> None:
    sim = Simulation(bookinfo(), clock=clock)
    view = build(asyncio.run(refresh(sim.clusters)), ViewOptions())
    for line in view.edges.values():
        assert type(line) is graphview.ViewEdge
        assert all(hasattr(line, f) for f in graphview.ViewEdge.__slots__)
        with pytest.raises(AttributeError):
            line.health = line.health  # type: ignore[misc]  # still frozen
