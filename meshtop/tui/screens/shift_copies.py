"""The shift dialog over every cluster's copy of a route (`A`): each copy read again with
who steers it, the other copies' splits of the rule being edited, and one change written
to all of them through the change workflow, each at the version read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from textual.message import Message

from meshtop import copies
from meshtop.canary import Plan, Split, parse_set
from meshtop.change import workflow
from meshtop.change.workflow import Copy, Workflow
from meshtop.errors import UsageError
from meshtop.model import Route


@dataclass
class CopiesRead(Message):
    found: dict[str, Route]
    unread: dict[str, str]


@dataclass
class DoneEverywhere(Message):
    """What happened to each cluster's copy, and the copies that could not be read."""

    outcomes: list[workflow.Outcome]
    unread: dict[str, str]


def others(route: Route, rule: int, known: Mapping[str, Route]) -> dict[str, Split]:
    """The other copies' splits of `route`'s rule `rule`, from the copies `known`; a
    copy without a rule like this one is left out (and said on apply)."""
    model = route.rules[rule]
    out: dict[str, Split] = {}
    for cluster, copy in known.items():
        if cluster == route.cluster:
            continue
        try:
            found = copy.rules[copies.matching_rule(copy, model, rule)]
        except UsageError:
            continue
        out[cluster] = Split.of(copy, found)
    return out


async def read_copies(stores: Mapping[str, Copy], route: Route, mine_too: bool) -> CopiesRead:
    """Every other copy as it is now (and `route`'s own too, after a write), and which
    are steered by Flagger or Argo Rollouts: those are left alone, as `w` leaves this
    one (`meshtop shift --force` changes them)."""
    r = route
    asked = {c: s for c, s in stores.items() if mine_too or c != r.cluster}
    try:
        reading = await workflow.read(asked, [r.kind], r.namespace, r.name)
    except Exception as exc:  # a bug must not take the console down
        return CopiesRead({}, {c: f"cannot read: {exc}" for c in asked})
    found: dict[str, Route] = {} if mine_too else {r.cluster: r}
    unread = {c: f"cannot read: {why}" for c, why in reading.unread.items()}
    for cluster, (copy, who) in reading.found.items():
        if who:
            unread[cluster] = f"steered by {who}: left alone"
        else:
            found[cluster] = copy
    return CopiesRead(found, unread)


async def write_everywhere(
    change: Workflow,
    route: Route,
    rule: int,
    known: Mapping[str, Route],
    unread: Mapping[str, str],
    target: Split,
) -> DoneEverywhere:
    """Every copy `known` given the weights of `target`, each checked by its own server
    and written against the version it was read at (the change workflow)."""
    left = dict(unread)
    plans: dict[str, Plan] = {}
    model = route.rules[rule]
    for cluster, copy in known.items():  # each at the version read
        try:
            i = copies.matching_rule(copy, model, rule)
            before = Split.of(copy, copy.rules[i])
            plans[cluster] = Plan(copy, i, before, parse_set(target.text(), before))
        except UsageError as exc:
            left[cluster] = f"its copy is not like this one: {exc}"
    return DoneEverywhere(await change.apply(plans), left)
