"""The copies of one route across clusters. In a multi-primary mesh each primary has its
own copy of a VirtualService, and each cluster's proxies follow their own: copies that
drifted apart split traffic differently depending on where a call starts. This says
where copies differ, which rule of one copy is which of another, and plans the same
change for every copy; `meshtop.change.workflow` writes them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from meshtop.canary import Plan, Split
from meshtop.errors import UsageError
from meshtop.model import Route, RouteRule, WeightedDestination


def same_route(route: Route) -> tuple[str, str, str]:
    """What makes two routes copies of one: kind, namespace and name."""
    return (route.kind, route.namespace, route.name)


def differences(routes: Sequence[Route]) -> dict[tuple[str, int, int], str]:
    """(route id, rule, destination) -> what the other copies have there, for every
    destination whose weight is not the same in all copies of its route. Destinations
    are matched by name (subset, or host), rules as `matching_rule` matches them."""
    groups: dict[tuple[str, str, str], list[Route]] = {}
    for r in routes:
        groups.setdefault(same_route(r), []).append(r)
    out: dict[tuple[str, int, int], str] = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        for r in group:
            for i, rule in enumerate(r.rules):
                for j, d in enumerate(rule.destinations):
                    others = [
                        f"{o.cluster} has {there}"
                        for o in group
                        if o is not r and (there := _weight_in(o, rule, i, d)) != str(d.weight)
                    ]
                    if others:
                        out[(r.id, i, j)] = ", ".join(others)
    return out


def _weight_in(copy: Route, rule: RouteRule, index: int, d: WeightedDestination) -> str:
    """The weight `copy` gives destination `d` of `rule`, or "none"."""
    try:
        theirs = copy.rules[matching_rule(copy, rule, index)]
    except UsageError:
        return "none"
    name = d.subset or d.host
    return next((str(x.weight) for x in theirs.destinations if (x.subset or x.host) == name),
                "none")  # fmt: skip


def matching_rule(copy: Route, rule: RouteRule, index: int) -> int:
    """The rule of `copy` that is `rule` (rule `index` of another copy): the one of the
    same name; else, for the default rule (no match conditions), the copy's default
    rule; else the one at the same index with the same match conditions. Raises
    `UsageError` when the copy has no such rule."""
    if rule.name:
        found = [i for i, r in enumerate(copy.rules) if r.name == rule.name]
    elif not rule.matches:
        found = [i for i, r in enumerate(copy.rules) if not r.matches][:1]
    else:
        same = index < len(copy.rules) and copy.rules[index].matches == rule.matches
        found = [index] if same else []
    if not found:
        what = rule.name or ("the default rule" if not rule.matches else f"rule {index}")
        raise UsageError(f"the copy in {copy.cluster} has no {what} like this one's")
    return found[0]


def plans(
    copies: Mapping[str, Route], rule_of: Callable[[Route], int], after: Callable[[Split], Split]
) -> dict[str, Plan]:
    """One plan per copy, from the weights that copy has now to what `after` makes of
    them (the same target for every copy, whatever each had)."""
    out: dict[str, Plan] = {}
    for cluster, route in copies.items():
        i = rule_of(route)
        before = Split.of(route, route.rules[i])
        out[cluster] = Plan(route, i, before, after(before))
    return out
