"""The copies of one route across clusters. In a multi-primary mesh each primary has its
own copy of a VirtualService, and each cluster's proxies follow their own: copies that
drifted apart split traffic differently depending on where a call starts. This says
where copies differ, and changes every copy at once, each against the version it was
read at, reporting what happened in each cluster: a copy changed underneath is left
alone and said, never overwritten, and the others still apply."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshtop.canary import Plan, Split
from meshtop.errors import ConflictError, MeshtopError, UsageError
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


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one cluster's copy."""

    cluster: str
    plan: Plan | None  # None: nothing to do there (no copy, or already so)
    result: str  # "applied", "unchanged", "conflict: …", "failed: …", "not written: …"
    applied: Route | None = None

    @property
    def ok(self) -> bool:
        return self.result in ("applied", "unchanged", "checked")


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


async def apply_all(
    stores: Mapping[str, Any], plans: Mapping[str, Plan], *, dry_run: bool = False
) -> list[Outcome]:
    """Have every cluster's server check its change first (dry runs, concurrently); if
    any refuses it (forbidden, invalid, unreachable), write nothing anywhere. Then apply
    each, with the JSON patch that tests the version that copy was read at: a copy
    changed since (at the check or at the write) is reported as a conflict and left as
    it is; the others are written all the same."""
    todo = {c: p for c, p in plans.items() if p.changed}
    outcomes = {c: Outcome(c, None, "unchanged") for c, p in plans.items() if not p.changed}

    async def check(cluster: str, plan: Plan) -> str:
        try:
            await stores[cluster].apply(plan, dry_run=True)
        except ConflictError as exc:  # changed since read: that copy alone is left out
            outcomes[cluster] = Outcome(cluster, plan, f"conflict: {exc}")
        except Exception as exc:
            return f"refused by the server's dry run: {exc}"
        return ""

    refusals = dict(
        zip(todo, await asyncio.gather(*(check(c, p) for c, p in todo.items())), strict=True)
    )
    todo = {c: p for c, p in todo.items() if c not in outcomes}
    if any(refusals.values()) or dry_run:
        for cluster, plan in todo.items():
            said = refusals[cluster]
            if said:
                outcomes[cluster] = Outcome(cluster, plan, f"failed: {said}")
            elif dry_run:
                outcomes[cluster] = Outcome(cluster, plan, "checked")
            else:
                outcomes[cluster] = Outcome(
                    cluster, plan, "not written: another cluster's server refused"
                )
        return [outcomes[c] for c in plans]

    async def write(cluster: str, plan: Plan) -> Outcome:
        try:
            applied = await stores[cluster].apply(plan)
        except ConflictError as exc:
            return Outcome(cluster, plan, f"conflict: {exc}")
        except MeshtopError as exc:
            return Outcome(cluster, plan, f"failed: {exc}")
        except Exception as exc:  # a bug in one store: the others' outcomes still said
            return Outcome(cluster, plan, f"failed: {type(exc).__name__}: {exc}")
        return Outcome(cluster, plan, "applied", applied)

    for outcome in await asyncio.gather(*(write(c, p) for c, p in todo.items())):
        outcomes[outcome.cluster] = outcome
    return [outcomes[c] for c in plans]


def summary(outcomes: Sequence[Outcome], unread: Mapping[str, str] | None = None) -> str:
    """One line for all clusters: what was written where, and what was not (`unread`:
    the clusters whose copy could not be read or planned, with why)."""
    applied = [o.cluster for o in outcomes if o.result == "applied"]
    missed = [o.cluster for o in outcomes if not o.ok] + list(unread or {})
    if not missed:
        return "every copy is changed" if applied else "every copy already had these weights"
    left = ", ".join(missed)
    if applied:
        return (
            f"applied in {', '.join(applied)}; NOT in {left}: the copies now differ "
            "(see above for why)"
        )
    return f"nothing was written: not in {left} (see above for why)"
