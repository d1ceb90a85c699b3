"""Weight shifting's core: splits that stay valid whatever is pressed (property tests),
presets, promote and abort, the JSON patch that pins what was read, and the simulated
mesh refusing a patch planned against a route that changed meanwhile."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshtop.canary import PRESETS, Plan, Split, parse_set, rule_index, stable_index
from meshtop.errors import ConflictError, UsageError
from meshtop.sim.sources import Simulation
from meshtop.sources.routing import json_patch

Op = tuple[str, int, int]
STEPS = (1, -1, 5, -5, 10, -10)


def _press(split: Split, op: Op) -> Split:
    """One key in the shift dialog."""
    what, i, arg = op
    i %= len(split.weights)
    if what == "shift":
        return split.shift(i, STEPS[arg % len(STEPS)])
    if what == "preset":
        return split.set(i, PRESETS[arg % len(PRESETS)])
    if what == "promote":
        return split.promote(i)
    return split.abort(stable_index(split))


ops = st.lists(
    st.tuples(
        st.sampled_from(["shift", "preset", "promote", "abort"]),
        st.integers(0, 5),
        st.integers(0, 20),
    ),
    max_size=60,
)


@st.composite
def splits(draw: st.DrawFn, kind: str) -> Split:
    n = draw(st.integers(1, 5))
    if kind == "VirtualService":
        cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=n - 1, max_size=n - 1)))
        weights = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    else:
        weights = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n))
        if sum(weights) == 0:
            weights[0] = 1
    return Split(kind, tuple(f"v{i}" for i in range(n)), tuple(weights))


@settings(max_examples=300, deadline=None)
@given(splits("VirtualService"), ops)
def test_no_key_sequence_breaks_a_virtual_service_split(split: Split, keys: list[Op]) -> None:
    assert split.valid
    for op in keys:
        split = _press(split, op)
        assert split.valid, (op, split)
        assert sum(split.weights) == 100 and min(split.weights) >= 0


@settings(max_examples=300, deadline=None)
@given(splits("HTTPRoute"), ops)
def test_no_key_sequence_breaks_an_httproute_split(split: Split, keys: list[Op]) -> None:
    for op in keys:
        split = _press(split, op)
        assert split.valid, (op, split)
        assert all(isinstance(w, int) and w >= 0 for w in split.weights) and sum(split.weights) > 0


def test_shifting_the_canary_takes_from_the_stable_one() -> None:
    split = Split("VirtualService", ("v1", "v2", "v3"), (70, 20, 10))
    assert split.shift(2, 5).weights == (65, 20, 15)
    assert split.shift(2, -5).weights == (75, 20, 5)
    assert split.shift(2, 100).weights == (0, 0, 100)
    assert split.set(2, 50).weights == (39, 11, 50)  # the others keep their 7:2 as near as whole
    assert split.promote(2).weights == (0, 0, 100)
    assert split.abort(stable_index(split)).weights == (100, 0, 0)


def test_set_weights_by_name() -> None:
    split = Split("VirtualService", ("v1", "v2"), (90, 10))
    assert parse_set("v1=50,v2=50", split).weights == (50, 50)
    for bad, says in (("v3=10", "no destination 'v3'"), ("v1=ten", "write NAME=WEIGHT")):
        with pytest.raises(UsageError, match=says):
            parse_set(bad, split)


def _plan(sim: Simulation, weights: tuple[int, ...]) -> Plan:
    route = sim.route("bookinfo", "reviews")
    i = rule_index(route, None)
    before = Split.of(route, route.rules[i])
    return Plan(route, i, before, Split(before.kind, before.names, weights))


def test_a_plan_must_be_valid_and_its_patch_pins_what_was_read(sim: Simulation) -> None:
    with pytest.raises(UsageError, match="add up to 110, not 100"):
        _plan(sim, (80, 20, 10))
    plan = _plan(sim, (60, 20, 20))
    assert json_patch(plan) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "test", "path": "/spec/http/0/route/0/destination/host", "value": "reviews"},
        {"op": "test", "path": "/spec/http/0/route/0/destination/subset", "value": "v1"},
        {"op": "test", "path": "/spec/http/0/route/2/destination/host", "value": "reviews"},
        {"op": "test", "path": "/spec/http/0/route/2/destination/subset", "value": "v3"},
        {"op": "add", "path": "/spec/http/0/route/0/weight", "value": 60},
        {"op": "add", "path": "/spec/http/0/route/2/weight", "value": 20},
    ]
    assert "-   reviews v3: weight 10" in plan.diff() and "+   reviews v3: weight 20" in plan.diff()


def test_the_simulated_mesh_applies_a_plan_and_refuses_a_stale_one(sim: Simulation) -> None:
    first, second = _plan(sim, (60, 20, 20)), _plan(sim, (50, 0, 50))
    updated = sim.apply_patch("bookinfo", "reviews", json_patch(first))
    assert updated.resource_version == "2"
    assert [d.weight for d in updated.rules[0].destinations] == [60, 20, 20]
    with pytest.raises(ConflictError, match="changed since it was read"):
        sim.apply_patch("bookinfo", "reviews", json_patch(second))  # planned against version 1
    assert sim.route("bookinfo", "reviews") is updated  # nothing overwritten
    routes = asyncio.run(sim.control_plane.routes())
    assert next(r for r in routes if r.name == "reviews").resource_version == "2"


@pytest.mark.parametrize("value", ["²", "٣", "9" * 5000, "1e3", "-5", " "])
def test_a_weight_that_is_not_plain_digits_is_a_usage_error(value: str) -> None:
    """`²` is a digit to str.isdigit() but not to int(); 5,000 digits are more than int()
    reads: each was a crash (exit 70), each is now the user's mistake, said (exit 2)."""
    split = Split("VirtualService", ("v1", "v2"), (90, 10))
    with pytest.raises(UsageError, match="write NAME=WEIGHT"):
        parse_set(f"v1={value}", split)


def test_a_subset_name_two_hosts_share_changes_neither_until_named_with_its_host() -> None:
    """`v1` of reviews and `v1` of ratings in one rule: `--set v1=45` wrote both."""
    from meshtop.model import Route, RouteRule, WeightedDestination

    rule = RouteRule(
        name="",
        matches=(),
        destinations=(
            WeightedDestination("reviews.bookinfo.svc.cluster.local", "v1", 50),
            WeightedDestination("ratings", "v1", 30),
            WeightedDestination("reviews", "v2", 20),
        ),
    )
    route = Route("VirtualService", "c", "bookinfo", "mixed", ("reviews",), (rule,), "7")
    split = Split.of(route, rule)
    assert split.names == ("reviews/v1", "ratings/v1", "v2")
    with pytest.raises(UsageError, match=r"'v1' is a subset of 2 hosts here: name one as "
                       r"reviews/v1 or ratings/v1"):  # fmt: skip
        parse_set("v1=45", split)
    assert parse_set("reviews/v1=45,v2=25", split).weights == (45, 30, 25)
    patch = json_patch(Plan(route, 0, split, parse_set("reviews/v1=45,v2=25", split)))
    assert [op["path"] for op in patch if op["op"] == "add"] == [
        "/spec/http/0/route/0/weight",
        "/spec/http/0/route/2/weight",
    ]


def test_the_workloads_behind_a_subset_two_hosts_share_are_its_hosts_own() -> None:
    """The routes tab's observed share and a rollout's canary are found by the same
    names as `--set` takes: `reviews/v1` is reviews' v1, not ratings'."""
    from types import SimpleNamespace

    from meshtop.model import Route, RouteRule, WeightedDestination, Workload
    from meshtop.routes_view import workloads_behind

    rule = RouteRule(
        destinations=(
            WeightedDestination("reviews", "v1", 50),
            WeightedDestination("ratings", "v1", 50),
        ),
    )
    route = Route("VirtualService", "c", "bookinfo", "mixed", ("reviews",), (rule,), "7")
    nodes = {
        w.id: w
        for w in (
            Workload("c", "bookinfo", "reviews-v1", app="reviews", version="v1"),
            Workload("c", "bookinfo", "ratings-v1", app="ratings", version="v1"),
        )
    }
    find = workloads_behind(SimpleNamespace(nodes=nodes, edges=()))  # type: ignore[arg-type]
    names = Split.of(route, rule).names
    assert [find(route, n) for n in names] == [
        [nodes_id for nodes_id in nodes if "reviews" in nodes_id],
        [nodes_id for nodes_id in nodes if "ratings" in nodes_id],
    ]
    twins = RouteRule(
        destinations=(
            WeightedDestination("reviews.a.svc.cluster.local", "v1", 50),
            WeightedDestination("reviews.b.svc.cluster.local", "v1", 50),
        ),
    )
    twin = Route("VirtualService", "c", "a", "twins", ("reviews",), (twins,), "1")
    assert Split.of(twin, twins).names == (
        "reviews.a.svc.cluster.local/v1",
        "reviews.b.svc.cluster.local/v1",
    )
