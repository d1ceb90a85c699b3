"""Content-based steering and the edit plans of issue 21: conditions read and checked as
Envoy would (RE2, whole-value regexes, header names without case), rules tested in
Envoy's order, and every plan a JSON patch that tests what it read."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meshtop.errors import ConflictError, UsageError
from meshtop.model.policy import FAULT_EXPIRES
from meshtop.sources.routing import (
    breakers_from_destination_rule,
    go_duration,
    route_from_virtual_service,
)
from meshtop.steering.edit import (
    OFF,
    circuit_breaker,
    clear_fault,
    fault,
    parse_targets,
    resilience,
    steer,
    undo_edit,
)
from meshtop.steering.match import (
    parse_condition,
    parse_request,
    route_test_gateway,
    route_test_istio,
)

REGEX = "^(.*?;)?(iPhone)(;.*)?$"  # the regex
IPHONE = f"header:user-agent~{REGEX}"


def _reviews() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "bookinfo", "resourceVersion": "41"},
        "spec": {
            "hosts": ["reviews"],
            "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}],
        },
    }


def _verdict(obj: dict[str, Any], request: str) -> int | None:
    return route_test_istio(obj["spec"]["http"], parse_request(request)).rule


def test_the_iphone_rule_takes_iphones_and_the_default_takes_the_rest() -> None:
    plan = steer(_reviews(), "", conditions=[parse_condition(IPHONE)], targets=[("v3", 100)])
    after = {**_reviews(), "spec": plan.after}
    assert plan.what == "add rule 0: header user-agent ~ ^(.*?;)?(iPhone)(;.*)?$ → v3"
    assert after["spec"]["http"][0]["route"] == [
        {"destination": {"host": "reviews", "subset": "v3"}}
    ]
    assert _verdict(after, 'user-agent="iPhone; CPU iPhone OS 17_0 like Mac OS X"') == 0
    assert _verdict(after, 'User-Agent="x;iPhone;y"') == 0  # header names ignore case
    assert _verdict(after, 'user-agent="curl/8.5"') == 1
    # Envoy matches the whole value: a browser's "(iPhone; …)" is not the regex's form
    verdict = route_test_istio(after["spec"]["http"], parse_request('user-agent="a (iPhone; b)"'))
    assert verdict.rule == 1 and verdict.why == ("rule 0: header user-agent does not match",)


def test_a_regex_that_matches_only_a_part_is_said_so() -> None:
    plan = steer(_reviews(), "", conditions=[parse_condition("header:end-user~jason")],
                 targets=[("v2", 100)])  # fmt: skip
    verdict = route_test_istio(plan.after["http"], parse_request("end-user=jason-2"))
    assert verdict.rule == 1
    assert "the regex matches a part, Envoy needs the whole value" in verdict.why[0]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("header:x~(?=a)", "is not an RE2 regex as Envoy reads it (invalid perl operator"),
        (r"header:x~(a)\1", "is not an RE2 regex"),
        ("header:x", "is not FIELD[:NAME]OP VALUE"),
        ("cookie=1", "is not FIELD[:NAME]OP VALUE"),
        ("source:app^=web", "a source label is matched exactly (=) only"),
        ("header:x~" + "a" * 2000, "longer than 1024"),
    ],
)
def test_a_bad_condition_is_one_clear_line(text: str, said: str) -> None:
    with pytest.raises(UsageError, match=re.escape(said)):
        parse_condition(text)


def test_every_kind_of_condition_is_written_as_istio_reads_it() -> None:
    said = ("header:End-User=jason", "uri^=/api", "query:v~[0-9]+", "source:app=web", "method=POST")
    conditions = [parse_condition(c) for c in said]
    plan = steer(_reviews(), "", conditions=conditions, targets=parse_targets("v1=80,v3=20"))
    rule = plan.after["http"][0]
    assert rule["match"] == [{
        "headers": {"end-user": {"exact": "jason"}}, "uri": {"prefix": "/api"},
        "queryParams": {"v": {"regex": "[0-9]+"}}, "sourceLabels": {"app": "web"},
        "method": {"exact": "POST"},
    }]  # fmt: skip
    assert [d["weight"] for d in rule["route"]] == [80, 20]
    request = "end-user=jason uri=/api/x?v=12 source:app=web method=post"
    assert route_test_istio(plan.after["http"], parse_request(request)).rule == 0
    parsed = route_from_virtual_service({**_reviews(), "spec": plan.after}, "", "bookinfo")
    assert parsed.rules[0].matches == (
        "header end-user = jason and uri ^= /api and query v ~ [0-9]+ and source app = web "
        "and method = POST",
    )


def test_rules_are_added_moved_edited_and_removed_with_their_guards() -> None:
    vs = _reviews()
    first = steer(vs, "", conditions=[parse_condition("header:end-user=jason")],
                  targets=[("v2", 100)])  # fmt: skip
    vs = {**vs, "spec": first.after}
    second = steer(vs, "", conditions=[parse_condition(IPHONE)], targets=[("v3", 100)])
    vs = {**vs, "spec": second.after}
    assert [r.get("match") is None for r in vs["spec"]["http"]] == [False, False, True]
    with pytest.raises(UsageError, match="would come after rule 2, which takes every request"):
        steer(vs, "", conditions=[parse_condition("uri=/x")], targets=[("v1", 100)], position=3)
    with pytest.raises(UsageError, match="rules after it would never match"):
        steer(vs, "", move="2", position=0)
    moved = steer(vs, "", move="1", position=0)
    assert moved.after["http"][0]["match"][0]["headers"] == {"user-agent": {"regex": REGEX}}
    edited = steer(vs, "", edit="0", targets=[("v1", 100)])
    assert edited.after["http"][0]["route"][0]["destination"]["subset"] == "v1"
    with pytest.raises(UsageError, match="rule 2 is the default route"):
        steer(vs, "", remove="2")
    removed = steer(vs, "", remove="0")
    assert len(removed.after["http"]) == 2 and removed.what == "remove rule 0"
    with pytest.raises(UsageError, match="has no rule '7'"):
        steer(vs, "", remove="7")
    with pytest.raises(UsageError, match=r"no subset v9 in its DestinationRules \(they define v1"):
        steer(vs, "", conditions=[parse_condition("uri=/x")], targets=[("v9", 100)],
              subsets=["v1", "v2", "v3"])  # fmt: skip


def test_the_patch_tests_the_version_and_the_spec_read() -> None:
    plan = steer(_reviews(), "", conditions=[parse_condition(IPHONE)], targets=[("v3", 100)])
    ops = plan.json_patch()
    assert ops[:2] == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "41"},
        {"op": "test", "path": "/spec", "value": _reviews()["spec"]},
    ]
    assert ops[2] == {"op": "replace", "path": "/spec", "value": plan.after}
    assert "+      subset: v3" in plan.diff()


def test_a_fault_is_time_boxed_on_the_object_and_cleared_whole() -> None:
    until = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    plan = fault(_reviews(), "", abort=(503, 10.0), delay=(2.0, 25.0), expires=until)
    ops = plan.json_patch()
    assert ops[-1] == {
        "op": "add", "path": "/metadata/annotations",
        "value": {FAULT_EXPIRES: "2026-12-01T16:00:00+00:00"},
    }  # fmt: skip
    meta = {**_reviews()["metadata"], "annotations": {FAULT_EXPIRES: "2026-12-01T16:00:00+00:00"}}
    written = {**_reviews(), "spec": plan.after, "metadata": meta}
    route = route_from_virtual_service(written, "", "bookinfo")
    assert route.rules[0].policy.words() == ("fault: abort 503 to 10%, delay 2s to 25%",)
    assert route.fault_expires == until
    cleared = clear_fault(written, "")
    assert "fault" not in cleared.after["http"][0]
    assert cleared.json_patch()[-1] == {
        "op": "remove",
        "path": "/metadata/annotations/meshtop.io~1fault-expires",
    }


def test_a_fault_for_a_match_only_is_a_rule_of_its_own_routed_as_the_default() -> None:
    plan = fault(_reviews(), "", abort=(500, 100.0),
                 conditions=[parse_condition("header:end-user=jason")])  # fmt: skip
    rules = plan.after["http"]
    assert rules[0]["name"] == "meshtop-fault" and rules[0]["route"] == rules[1]["route"]
    assert route_test_istio(rules, parse_request("end-user=jason")).rule == 0
    assert route_test_istio(rules, parse_request("end-user=ann")).rule == 1
    assert clear_fault({**_reviews(), "spec": plan.after}, "").after == _reviews()["spec"]


def test_timeouts_and_retries_are_set_and_taken_off() -> None:
    plan = resilience(_reviews(), "", timeout=0.5, attempts=3, per_try_timeout=0.2,
                      retry_on="5xx,reset")  # fmt: skip
    rule = plan.after["http"][0]
    assert (rule["timeout"], rule["retries"]) == (
        "500ms",
        {"attempts": 3, "perTryTimeout": "200ms", "retryOn": "5xx,reset"},
    )
    again = resilience({**_reviews(), "spec": plan.after}, "", timeout=OFF, attempts=0)
    assert "timeout" not in again.after["http"][0]
    assert again.after["http"][0]["retries"]["attempts"] == 0


def test_a_circuit_breaker_is_read_back_as_written() -> None:
    rule = {
        "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": "bookinfo", "resourceVersion": "3"},
        "spec": {"host": "reviews", "subsets": [{"name": "v3", "labels": {"version": "v3"}}]},
    }
    plan = circuit_breaker(rule, "", subset="v3", max_connections=1, max_pending=1,
                           consecutive_errors=1, interval=1.0, base_ejection=180.0)  # fmt: skip
    (breaker,) = breakers_from_destination_rule({**rule, "spec": plan.after}, "", "bookinfo")
    assert breaker.target == "reviews/v3"
    assert breaker.words() == (
        "pool: max connections 1, max pending 1",
        "eject after 1 consecutive 5xx per 1s for 3m",
    )
    with pytest.raises(UsageError, match="has no subset v9"):
        circuit_breaker(rule, "", subset="v9", max_connections=1)


def test_undo_takes_back_only_what_is_still_as_the_change_left_it() -> None:
    plan = steer(_reviews(), "", conditions=[parse_condition(IPHONE)], targets=[("v3", 100)])
    now = {**copy.deepcopy(_reviews()), "spec": copy.deepcopy(plan.after)}
    now["metadata"]["resourceVersion"] = "42"
    back = undo_edit(now, plan)
    assert (back.before, back.after, back.resource_version) == (
        plan.after,
        _reviews()["spec"],
        "42",
    )
    now["spec"]["http"][0]["route"][0]["destination"]["subset"] = "v2"  # someone else's
    with pytest.raises(ConflictError, match="changed since meshtop's change"):
        undo_edit(now, plan)


def test_an_httproute_is_steered_where_the_gateway_api_can_say_it() -> None:
    route = {
        "kind": "HTTPRoute",
        "metadata": {"name": "reviews", "namespace": "bookinfo", "resourceVersion": "9"},
        "spec": {"parentRefs": [{"kind": "Service", "name": "reviews"}],
                 "rules": [{"backendRefs": [{"name": "reviews-v1", "port": 9080}]}]},
    }  # fmt: skip
    plan = steer(route, "", conditions=[parse_condition(IPHONE)], targets=[("reviews-v3", 100)])
    assert plan.after["rules"][0] == {
        "matches": [{"headers": [{"type": "RegularExpression", "name": "user-agent",
                                  "value": REGEX}]}],
        "backendRefs": [{"name": "reviews-v3", "port": 9080, "weight": 100}],
    }  # fmt: skip
    assert route_test_gateway(plan.after["rules"], parse_request("user-agent=iPhone")).rule == 0
    assert route_test_gateway(plan.after["rules"], parse_request("user-agent=curl")).rule == 1
    with pytest.raises(UsageError, match="an HTTPRoute has no header prefix match: use a regex"):
        steer(route, "", conditions=[parse_condition("header:x^=a")], targets=[("b", 100)])
    with pytest.raises(UsageError, match="ranked by how specific their matches are"):
        steer(route, "", conditions=[parse_condition("uri=/a")], targets=[("b", 100)], position=0)
    with pytest.raises(UsageError, match="faults are injected by a VirtualService"):
        fault(route, "", abort=(503, 1.0))


def test_the_most_specific_httproute_match_wins_whatever_the_order() -> None:
    rules = [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api/v2"}}]},
        {"matches": [{"path": {"type": "Exact", "value": "/api/v2/x"}}]},
    ]
    assert route_test_gateway(rules, parse_request("uri=/api/v2/x")).rule == 2
    assert route_test_gateway(rules, parse_request("uri=/api/v2/y")).rule == 1
    assert route_test_gateway(rules, parse_request("uri=/apix")).rule is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2s", 2.0), ("0.5s", 0.5), ("100ms", 0.1), ("1h30m", 5400.0), ("1m", 60.0)],
)
def test_durations_read_as_the_crds_write_them(text: str, seconds: float) -> None:
    assert go_duration(text, "x") == pytest.approx(seconds)


def test_a_malformed_duration_names_where_it_is() -> None:
    bad = _reviews()
    bad["spec"]["http"][0]["timeout"] = "soon"
    with pytest.raises(
        Exception, match="VirtualService bookinfo/reviews: 'soon' is not a duration"
    ):
        route_from_virtual_service(bad, "", "bookinfo")


def test_only_a_fault_past_its_end_is_planned_for_removal() -> None:
    from meshtop.change.edits import expiry_plans

    until = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    plan = fault(_reviews(), "", abort=(503, 10.0), expires=until)
    meta = {**_reviews()["metadata"], "annotations": {FAULT_EXPIRES: until.isoformat()}}
    written = {**_reviews(), "spec": plan.after, "metadata": meta}
    never = {**_reviews(), "spec": plan.after}  # a fault with no end set is not meshtop's
    objects = {"west": written, "east": never}
    assert expiry_plans(objects, until - timedelta(seconds=1)) == {}
    (gone,) = expiry_plans(objects, until).values()
    assert (gone.cluster, gone.action, gone.after) == ("west", "expire fault", _reviews()["spec"])
