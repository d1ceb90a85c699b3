"""History: the step a window is shown at, counting a window once per edge, gaps for
missing data, merging edges; and the simulated mesh's history, which keeps the routes of
each moment so a weight change shows where it happened."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from meshtop.history import (
    Answer,
    Points,
    history_step,
    known,
    merge,
    point_times,
    summarize,
)
from meshtop.model import History, WindowSummary, error_kind
from meshtop.sim.sources import Simulation

from .conftest import Clock

NS = "Kubernetes/bookinfo/"
PAGE = NS + "productpage-v1"
V3 = NS + "reviews-v3"


@pytest.mark.parametrize(
    ("code", "grpc", "failed", "kind"),
    [
        ("200", "", None, None),
        ("500", "", None, "5xx"),
        ("503", "", None, "5xx"),
        ("404", "", None, "4xx"),
        ("0", "", None, "no response"),
        ("200", "14", None, "grpc"),
        ("200", "0", None, None),
        ("200", "", True, "failure"),  # Linkerd's verdict on an answer that looks fine
    ],
)
def test_error_kinds(code: str, grpc: str, failed: bool | None, kind: str | None) -> None:
    assert error_kind(code, grpc, failed) == kind


def test_points_line_up_with_a_range_query() -> None:
    times = point_times(1000.0, 300.0, history_step(300.0))
    assert times[0] == 700.0 and times[-1] == 1000.0 and len(times) == 61


def test_summary_counts_each_edge_once_from_its_first_reporter() -> None:
    answers = [
        Answer("a>b", "source", 9.0, "200"),
        Answer("a>b", "source", 1.0, "503", flags="UF", kind="5xx"),
        # the server's proxy never saw the failed connection
        Answer("a>b", "destination", 9.0, "200", secured=True, source_principal="spiffe://a"),
        # an unmeshed caller: only the server's proxy reports it
        Answer("u>b", "destination", 2.0, "404", kind="4xx", secured=False),
    ]
    s = summarize(answers, ("source", "destination"), ("destination",), {0.99: 120.0})
    assert s.rps == 12.0
    assert s.error_rate == pytest.approx(1 / 12)  # 4xx is shown, not counted as an error
    assert s.errors == {"5xx": 1.0, "4xx": 2.0}
    assert s.response_flags == {"UF": 1.0}
    assert s.by_reporter == {"source": 10.0, "destination": 9.0}  # only edges both saw
    assert s.mtls == pytest.approx(9 / 11)
    assert s.source_principals == ("spiffe://a",)
    assert s.p99_ms == 120.0 and s.p50_ms is None


def test_no_traffic_is_a_gap_not_a_zero() -> None:
    points = Points((0.0, 10.0, 20.0), 10.0)
    points.add(0, None, 4.0)
    points.add(0, "5xx", 1.0)
    points.add(2, None, 2.0)
    points.latency(2, 0.99, float("nan"))
    h = points.history("a", "b", 20.0, WindowSummary())
    assert h.rps == (5.0, None, 2.0)
    assert h.error_rate == (0.2, None, 0.0)
    assert h.errors == {"5xx": (1.0, None, 0.0)}
    assert h.p99_ms == (None, None, None)
    assert points.index(35.0) is None


def _history(rps: tuple[float | None, ...], err: float, p99: float) -> History:
    n = len(rps)
    return History(
        None, "x", 20.0, 10.0, tuple(float(i) for i in range(n)), rps,
        tuple(None if r is None else err for r in rps), (None,) * n, (None,) * n,
        tuple(None if r is None else p99 for r in rps), {},
        WindowSummary(rps=sum(known(rps)) / n, error_rate=err, p99_ms=p99, mtls=1.0),
    )  # fmt: skip


def test_merged_histories_add_rates_and_keep_the_slowest_latency() -> None:
    m = merge([_history((1.0, None, 3.0), 0.5, 100.0), _history((1.0, None, None), 0.0, 300.0)])
    assert m.rps == (2.0, None, 3.0)
    assert m.error_rate == (0.25, None, 0.5)
    assert m.p99_ms == (300.0, None, 100.0)
    assert m.summary.p99_ms == 300.0
    assert m.summary.rps == pytest.approx(4 / 3 + 1 / 3)


# -- the simulated mesh's history ------------------------------------------------------


def test_simulated_history_is_full_the_moment_it_starts(sim: Simulation) -> None:
    h = asyncio.run(sim.metrics.history(PAGE, V3, 3600))
    assert h.step_s == 30 and len(h.times) == 121
    assert all(v is not None and v > 0 for v in h.rps)
    assert h.summary.error_rate is not None and h.summary.error_rate > 0.05
    assert set(h.errors) == {"5xx"}
    p99 = known(h.p99_ms)
    assert len(p99) == 121 and all(p > 100 for p in p99)  # v3 is the slow canary


def test_simulated_history_keeps_the_weights_of_each_moment(sim: Simulation, clock: Clock) -> None:
    sim.set_weights("bookinfo", "reviews", {"v1": 100, "v2": 0, "v3": 0})
    clock.advance(120)
    h = asyncio.run(sim.metrics.history(PAGE, V3, 300))
    change = sum(t < clock.now - 120 for t in h.times)  # from the change on, the new weights
    before, after = h.rps[:change], h.rps[change:]
    assert all(v is not None and v > 0 for v in before)
    assert after and all(v is None for v in after)  # no traffic since: gaps, not zeros
    v1 = asyncio.run(sim.metrics.history(PAGE, NS + "reviews-v1", 300))
    assert v1.rps[-1] is not None and v1.rps[0] is not None and v1.rps[-1] > 1.3 * v1.rps[0]


def test_simulated_failed_connections_never_reach_the_server(sim: Simulation) -> None:
    s = asyncio.run(sim.metrics.history(PAGE, V3, 300)).summary
    lost = s.by_reporter["source"] - s.by_reporter["destination"]
    assert lost == pytest.approx(s.response_flags["UF"])
    assert s.mtls == 1.0
    assert s.source_principals == ("spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage",)
    assert s.destination_principals == ("spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews",)


def test_simulated_node_history_is_what_it_answers(sim: Simulation) -> None:
    node = asyncio.run(sim.metrics.history(None, PAGE, 300))
    edge = asyncio.run(
        sim.metrics.history("Kubernetes/istio-system/istio-ingressgateway", PAGE, 300)
    )
    assert node.rps[-1] is not None and edge.rps[-1] is not None
    assert node.rps[-1] > edge.rps[-1]  # the unmeshed client calls it too
    assert node.summary.mtls is not None and 0 < node.summary.mtls < 1
    assert node.summary.errors.keys() == {"4xx"}


def test_merging_keeps_a_zero_where_there_was_traffic_without_errors() -> None:
    n = 3
    quiet = History(
        None, "x", 20.0, 10.0, (0.0, 10.0, 20.0), (5.0, 5.0, 5.0), (0.0, 0.0, 0.0),
        (None,) * n, (None,) * n, (None,) * n, {}, WindowSummary(rps=5.0),
    )  # fmt: skip
    failing = History(
        None, "y", 20.0, 10.0, (0.0, 10.0, 20.0), (2.0, None, None), (0.5, None, None),
        (None,) * n, (None,) * n, (None,) * n, {"5xx": (1.0, None, None)},
        WindowSummary(rps=2.0),
    )  # fmt: skip
    m = merge([quiet, failing])
    assert m.rps == (7.0, 5.0, 5.0)
    assert m.errors == {"5xx": (1.0, 0.0, 0.0)}  # traffic, no errors: 0, not a gap


def test_linkerd_failures_count_as_errors_in_history_as_in_the_snapshot() -> None:
    from meshtop.sources.dialects import LINKERD
    from meshtop.sources.prometheus import _is_error, _kind

    for labels in (
        {"status_code": "404", "classification": "failure"},  # a ServiceProfile's verdict
        {"status_code": "200", "classification": "failure"},
        {"status_code": "503", "classification": "failure"},
    ):
        assert _is_error(LINKERD, labels)
        assert _kind(LINKERD, labels) in ("failure", "5xx")
    assert _kind(LINKERD, {"status_code": "404", "classification": "success"}) == "4xx"


def test_a_node_that_answers_nothing_has_the_history_of_its_calls(sim: Simulation) -> None:
    from meshtop.detail import fetch, subject
    from meshtop.mesh import refresh

    snapshot = asyncio.run(refresh(sim.clusters, clock=sim.clock))
    gateway = "Kubernetes/istio-system/istio-ingressgateway"
    about = subject(snapshot, "gateway", (), [gateway], outbound=True)
    h = asyncio.run(fetch(sim.metrics, about, 300)).history
    assert h.rps[-1] is not None and h.rps[-1] > 15  # what it sends to productpage


def test_routes_to_a_node_include_those_from_other_namespaces(sim: Simulation) -> None:
    from dataclasses import replace

    from meshtop.detail import routes_to
    from meshtop.mesh import refresh
    from meshtop.model import RouteRule, WeightedDestination

    snapshot = asyncio.run(refresh(sim.clusters, clock=sim.clock))
    reviews = next(r for r in snapshot.routes if r.name == "reviews")
    gateway_route = replace(
        reviews, namespace="istio-system", name="edge",
        rules=(RouteRule((WeightedDestination("reviews.bookinfo.svc.cluster.local", "v3", 100),)),),
    )  # fmt: skip
    elsewhere = replace(reviews, namespace="other", name="mirror")  # `reviews` there is another
    both = replace(snapshot, routes=(*snapshot.routes, gateway_route, elsewhere))
    found = {(r.namespace, r.name) for r in routes_to(both, [V3])}
    assert found == {("bookinfo", "reviews"), ("istio-system", "edge")}


def test_a_simulated_history_nobody_awaits_stops_at_its_next_point(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A detail screen closed while its history is worked out cancels its await; the
    thread doing the work stops at its next point rather than walking the whole window
    (at 20,000 services, minutes of a core after the screen is gone)."""
    walked: list[float] = []
    first = threading.Event()
    go_on = threading.Event()
    flows = sim.flows

    def counted(*args: Any, **kwargs: Any) -> Any:
        walked.append(kwargs["at"])
        first.set()
        go_on.wait(5)
        return flows(*args, **kwargs)

    monkeypatch.setattr(sim, "flows", counted)

    async def closed_meanwhile() -> None:
        task = asyncio.ensure_future(sim.metrics.history(PAGE, V3, 3600))
        await asyncio.to_thread(first.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        go_on.set()

    asyncio.run(closed_meanwhile())  # which waits for its threads to end
    assert len(walked) == 1  # of the 121 points of an hour's window


def test_a_detail_asks_a_bounded_number_of_histories_at_once(sim: Simulation) -> None:
    """A namespace's box asks a history for each of its members, a line between two boxes
    one for each pair of their members: each three requests and a thread against
    Prometheus. Asked all at once, a box of 40 members opened 120 of each; now no more
    than HISTORIES_AT_ONCE histories at a time, and every one asked, merged as before."""
    from meshtop.detail import fetch, subject
    from meshtop.mesh import refresh
    from meshtop.sources.protocols import HISTORIES_AT_ONCE

    snapshot = asyncio.run(refresh(sim.clusters, clock=sim.clock))
    members = sorted(snapshot.nodes)
    assert len(members) > HISTORIES_AT_ONCE
    asked: list[tuple[str | None, str | None]] = []
    now = [0]
    most = [0]
    real = sim.metrics.history

    async def history(source: str | None, destination: str | None, window_s: float) -> Any:
        asked.append((source, destination))
        now[0] += 1
        most[0] = max(most[0], now[0])
        try:
            await asyncio.sleep(0.01)
            return await real(source, destination, window_s)
        finally:
            now[0] -= 1

    about = subject(snapshot, "everything", (), members)
    bounded = asyncio.run(fetch(_Asking(sim.metrics, history), about, 300)).history
    assert sorted(asked, key=str) == sorted(about.pairs(), key=str)
    assert most[0] == HISTORIES_AT_ONCE
    assert bounded == asyncio.run(fetch(sim.metrics, about, 300)).history


def test_the_simulated_histories_of_many_pairs_walk_the_mesh_once_a_point(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A namespace's detail asks one history for each member (255 at 20,000 services),
    and each walk of the simulated mesh is of all of it: the simulation works them out
    together, one walk at each point for them all, each the history it would be alone."""
    from meshtop.detail import fetch, subject
    from meshtop.history import merge
    from meshtop.mesh import refresh

    snapshot = asyncio.run(refresh(sim.clusters, clock=sim.clock))
    about = subject(snapshot, "everything", (), sorted(snapshot.nodes))
    pairs = [*about.pairs(), (PAGE, V3), (PAGE, None), (PAGE, V3)]  # one twice
    alone = [asyncio.run(sim.metrics.history(s, d, 300)) for s, d in pairs]
    walks: list[float] = []
    flows = sim.flows

    def counted(*args: Any, **kwargs: Any) -> Any:
        walks.append(kwargs["at"])
        return flows(*args, **kwargs)

    monkeypatch.setattr(sim, "flows", counted)
    together = asyncio.run(sim.metrics.histories(pairs, 300))
    assert together == alone
    assert len(walks) == len(alone[0].times)  # once a point, not once a pair and point
    assert any(h.rps != alone[0].rps for h in alone)  # pairs that differ, each its own
    walks.clear()
    assert asyncio.run(fetch(sim.metrics, about, 300)).history == merge(alone[: len(pairs) - 3])
    assert len(walks) == len(alone[0].times)
    # a version's detail: its history and each version's, for the canary, in one walk
    reviews = subject(snapshot, "reviews-v3", (), [V3])
    assert len(reviews.versions) == 3
    walks.clear()
    detail = asyncio.run(fetch(sim.metrics, reviews, 300))
    assert len(walks) == len(alone[0].times)
    monkeypatch.setattr(sim, "flows", flows)
    one_by_one = asyncio.run(fetch(_Asking(sim.metrics, sim.metrics.history), reviews, 300))
    assert (detail.history, detail.canary) == (one_by_one.history, one_by_one.canary)
    assert [v for v, _ in detail.canary] == ["v1", "v2", "v3"]


class _Asking:
    """A metrics source whose histories go through `history`."""

    def __init__(self, metrics: Any, history: Any) -> None:
        self._metrics, self.history = metrics, history

    def __getattr__(self, name: str) -> Any:
        if name == "histories":  # one at a time, each through `history`
            raise AttributeError(name)
        return getattr(self._metrics, name)
