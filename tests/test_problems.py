"""`n` goes to the problems worst first: failing before degraded, then by failed requests
per second (impact), not by error rate; a node drawn for several workloads sums them."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from meshtop.graphview import Grouping, ViewOptions, build
from meshtop.health import grade, problems
from meshtop.model import Edge, EdgeStats, Health, MeshSnapshot, Protocol, Workload

T0 = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
K = "Kubernetes"
GATEWAY = Workload(K, "istio-system", "istio-ingressgateway", app="istio-ingressgateway")
PAGE = Workload(K, "shop", "page-v1", app="page", version="v1")
CART = Workload(K, "shop", "cart-v1", app="cart", version="v1")
PRICE = Workload(K, "shop", "price-v1", app="price", version="v1")
SHIP1 = Workload(K, "shop", "ship-v1", app="ship", version="v1")
SHIP2 = Workload(K, "shop", "ship-v2", app="ship", version="v2")
BOOM = Workload(K, "shop", "boom-v1", app="boom", version="v1")


def http(rps: float, errors: float = 0.0, client_errors: float = 0.0) -> EdgeStats:
    codes = {"200": rps * (1 - errors - client_errors)}
    if errors:
        codes["503"] = rps * errors
    if client_errors:
        codes["404"] = rps * client_errors
    return EdgeStats(protocol=Protocol.HTTP, rps=rps, error_rate=errors, response_codes=codes)


def snapshot(*edges: tuple[Workload, Workload, EdgeStats]) -> MeshSnapshot:
    nodes = {w.id: w for a, b, _ in edges for w in (a, b)}
    return MeshSnapshot(T0, 60.0, nodes, tuple(Edge(a.id, b.id, s) for a, b, s in edges), (), {})


def ranked(s: MeshSnapshot, grouping: Grouping = Grouping.WORKLOAD) -> list[str]:
    view = build(s, ViewOptions(grouping=grouping))
    return [p.node for p in problems(s, view.grades, {n: v.members for n, v in view.nodes.items()})]


def test_a_busy_edge_at_a_low_rate_ranks_before_an_idle_one_at_a_higher_rate() -> None:
    # the case: 174 rps at 1.6% is 2.8 failures a second, 0.9 rps at 2% is 0.018
    s = snapshot(
        (GATEWAY, PAGE, http(200)),
        (PAGE, CART, http(0.9, errors=0.02)),
        (PAGE, PRICE, http(174, errors=0.016)),
    )
    assert ranked(s) == [PRICE.id, CART.id]


def test_failing_comes_before_degraded_whatever_the_impact() -> None:
    s = snapshot(
        (GATEWAY, PAGE, http(200)),
        (PAGE, PRICE, http(174, errors=0.05)),  # degraded, 8.7 errors a second
        (PAGE, CART, http(1, errors=0.5)),  # failing, 0.5 a second
        (PAGE, SHIP1, http(10, client_errors=0.12)),  # degraded by 4xx alone, 0 errors
    )
    found = problems(s, grade(s), {w: (w,) for w in s.nodes})
    assert [p.node for p in found] == [CART.id, PRICE.id, SHIP1.id]
    assert [p.health for p in found] == [Health.FAILING, Health.DEGRADED, Health.DEGRADED]
    assert math.isclose(found[1].errors_per_s, 8.7)
    assert math.isclose(found[1].error_rate, 0.05)
    assert math.isclose(found[2].client_errors_per_s, 1.2) and found[2].errors_per_s == 0
    assert found[0].edge == (PAGE.id, CART.id)


def test_healthy_and_idle_nodes_are_no_problem() -> None:
    s = snapshot((GATEWAY, PAGE, http(20)), (PAGE, CART, http(0)))
    assert ranked(s) == []


def test_a_node_drawn_for_several_workloads_sums_them_and_names_its_worst_edge() -> None:
    s = snapshot(
        (GATEWAY, PAGE, http(200)),
        (PAGE, SHIP1, http(10, errors=0.01)),
        (PAGE, SHIP2, http(30, errors=0.2)),
        (PAGE, PRICE, http(300, errors=0.02)),  # 6 a second, but only degraded
    )
    view = build(s, ViewOptions(grouping=Grouping.APP))
    found = problems(s, view.grades, {n: v.members for n, v in view.nodes.items()})
    ship = found[0]
    assert view.nodes[ship.node].label == "ship"
    assert ship.health is Health.FAILING
    assert math.isclose(ship.errors_per_s, 0.1 + 6.0) and math.isclose(ship.rps, 40)
    assert ship.edge == (PAGE.id, SHIP2.id)  # the failing one of its two
    assert view.nodes[found[1].node].label == "price"


def test_a_caller_nobody_calls_is_graded_by_its_calls_out() -> None:
    s = snapshot((GATEWAY, BOOM, http(5, errors=0.3)))
    found = problems(s, grade(s), {w: (w,) for w in s.nodes})
    # boom fails by its inbound call; the gateway, called by nobody, by the same call out
    assert {p.node for p in found} == {GATEWAY.id, BOOM.id}
    assert all(math.isclose(p.errors_per_s, 1.5) for p in found)


def test_a_rate_that_is_not_a_number_fails_without_an_impact_of_nan() -> None:
    s = snapshot((GATEWAY, PAGE, http(10)), (PAGE, CART, http(10, errors=math.nan)))
    found = problems(s, grade(s), {w: (w,) for w in s.nodes})
    assert [p.node for p in found] == [CART.id]
    assert found[0].health is Health.FAILING and found[0].errors_per_s == 0.0
