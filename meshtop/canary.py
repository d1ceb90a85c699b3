"""Weight shifting, the one thing meshtop writes: a rule's split edited so that it stays
valid at every step (non-negative whole weights; a VirtualService's adding up to 100; an
HTTPRoute's relative, never all 0), and a plan of the change with the version it was read
at. The JSON patch that applies a plan to the resource is built beside the resource's
parser (`sources/routing.py`). Headless: the console, `meshtop shift` and the simulated
mesh all go through here."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from meshtop.errors import UsageError
from meshtop.model import Route, RouteRule

PRESETS = (0, 10, 25, 50, 100)
PERCENT = "VirtualService"  # whose weights are percent and add up to 100


@dataclass(frozen=True, slots=True)
class Split:
    """The weights of one rule's destinations, as the shift dialog edits them."""

    kind: str  # "VirtualService" or "HTTPRoute"
    names: tuple[str, ...]  # each destination's subset, or host / backend name
    weights: tuple[int, ...]

    @staticmethod
    def of(route: Route, rule: RouteRule) -> Split:
        """Each destination named by its subset, or its host: a subset name that two
        hosts share in the rule (`v1` of reviews and of ratings) is named with its host
        (`reviews/v1`), so that no name changes two destinations."""
        plain = [d.subset or d.host for d in rule.destinations]
        short = [
            f"{d.host.split('.')[0]}/{d.subset}" if d.subset and plain.count(d.subset) > 1 else n
            for d, n in zip(rule.destinations, plain, strict=True)
        ]
        names = tuple(  # two hosts alike in their first label: the whole host
            f"{d.host}/{d.subset}" if "/" in n and short.count(n) > 1 else n
            for d, n in zip(rule.destinations, short, strict=True)
        )
        return Split(route.kind, names, tuple(d.weight for d in rule.destinations))

    @property
    def valid(self) -> bool:
        ok = all(isinstance(w, int) and w >= 0 for w in self.weights) and bool(self.weights)
        total = sum(self.weights)
        return ok and (total == 100 if self.kind == PERCENT else total > 0)

    def text(self) -> str:
        """`v1=90,v2=10`, as `--set` takes it."""
        return ",".join(f"{n}={w}" for n, w in zip(self.names, self.weights, strict=True))

    def share(self, i: int) -> float:
        """Destination `i`'s share of the traffic, 0..1."""
        total = sum(self.weights)
        return self.weights[i] / total if total else 0.0

    def shift(self, i: int, delta: int) -> Split:
        """Move destination `i` by `delta`. In a percent split the difference comes from,
        or goes to, the others, largest first; a relative split never reaches all 0."""
        w = list(self.weights)
        if self.kind != PERCENT:
            w[i] = max(0, w[i] + delta)
            return self if sum(w) == 0 else replace(self, weights=tuple(w))
        new = max(0, min(100, w[i] + delta))
        need = new - w[i]  # > 0: take from the others; < 0: give to them
        w[i] = new
        others = sorted((j for j in range(len(w)) if j != i), key=lambda j: (-w[j], j))
        if not others:
            return self  # a single destination takes 100, always
        if need < 0:
            w[others[0]] -= need  # to the largest other: the stable one
        else:
            for j in others:
                taken = min(need, w[j])
                w[j] -= taken
                need -= taken
        return replace(self, weights=tuple(w))

    def set(self, i: int, percent: int) -> Split:
        """Destination `i` at `percent` of the traffic, the others sharing the rest as
        they did (largest remainder, so the weights stay whole)."""
        percent = max(0, min(100, percent))
        rest = 100 - percent
        others = [j for j in range(len(self.weights)) if j != i]
        if not others:
            return self
        base = sum(self.weights[j] for j in others)
        raw = {j: rest * (self.weights[j] / base if base else 1 / len(others)) for j in others}
        w = {j: int(v) for j, v in raw.items()}
        for j in sorted(others, key=lambda j: (-(raw[j] - w[j]), j))[: rest - sum(w.values())]:
            w[j] += 1
        weights = tuple(percent if j == i else w[j] for j in range(len(self.weights)))
        if self.kind != PERCENT and sum(weights) == 0:
            return self
        return replace(self, weights=weights)

    def move(self, source: int, to: int, percent: int) -> Split:
        """`percent` of the traffic from destination `source` to destination `to` (all
        `source` has, at most); no other destination changes. In a relative split the
        percent is of the weights' total, whole weights, at least one."""
        total = sum(self.weights)
        amount = percent if self.kind == PERCENT else max(1, round(percent * total / 100))
        moved = min(amount, self.weights[source])
        w = list(self.weights)
        w[source] -= moved
        w[to] += moved
        return replace(self, weights=tuple(w))

    def promote(self, canary: int) -> Split:
        """All traffic to the canary."""
        return self.set(canary, 100)

    def abort(self, stable: int) -> Split:
        """All traffic back to the stable destination."""
        return self.set(stable, 100)


def stable_index(split: Split) -> int:
    """The destination taking the most traffic (the first of equals): the stable one."""
    return max(range(len(split.weights)), key=lambda j: (split.weights[j], -j))


@dataclass(frozen=True, slots=True)
class Plan:
    """A weight change of one rule of one route, against the version it was read at."""

    route: Route
    rule: int  # the rule's index in the route
    before: Split
    after: Split

    def __post_init__(self) -> None:
        if not self.after.valid:
            total = sum(self.after.weights)
            raise UsageError(
                f"weights {dict(zip(self.after.names, self.after.weights, strict=True))} are "
                f"not valid for a {self.route.kind}"
                + (f": they add up to {total}, not 100" if self.route.kind == PERCENT else "")
            )

    @property
    def changed(self) -> list[int]:
        return [
            j
            for j, (a, b) in enumerate(zip(self.before.weights, self.after.weights, strict=True))
            if a != b
        ]

    def diff(self) -> list[str]:
        """The change as a person reviews it: the rule's destinations, before and after."""
        rule = self.route.rules[self.rule]
        where = "http" if self.route.kind == PERCENT else "rules"
        lines = [
            f"{self.route.kind} {self.route.namespace}/{self.route.name} "
            f"(resourceVersion {self.route.resource_version})",
            f"  {where}[{self.rule}]{' ' + rule.name if rule.name else ''}:",
        ]
        for j, d in enumerate(rule.destinations):
            name = f"{d.host} {d.subset}".strip()
            before, after = self.before.weights[j], self.after.weights[j]
            if before == after:
                lines.append(f"    {name}: weight {before}")
            else:
                lines.append(f"-   {name}: weight {before}")
                lines.append(f"+   {name}: weight {after}")
        return lines


WEIGHT = re.compile(r"[0-9]{1,9}", re.ASCII)  # a weight or an index as a user writes it


def parse_set(text: str, split: Split) -> Split:
    """`--set v1=90,v2=10`: weights by destination name; those not named stay."""
    weights = dict(zip(split.names, split.weights, strict=True))
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = part.partition("=")
        # ASCII digits, and few: `²` is a digit to str.isdigit() but not to int(), and a
        # number of 5,000 digits is more than int() will read
        if not sep or not WEIGHT.fullmatch(value.strip()):
            raise UsageError(f"--set {text!r}: write NAME=WEIGHT,…, e.g. v1=90,v2=10")
        if name.strip() not in weights:
            shared = [n for n in split.names if n.endswith(f"/{name.strip()}")]
            if len(shared) > 1:
                raise UsageError(
                    f"--set {text!r}: {name.strip()!r} is a subset of {len(shared)} hosts here: "
                    f"name one as {' or '.join(shared)}"
                )
            raise UsageError(
                f"--set {text!r}: no destination {name.strip()!r}; it has {', '.join(split.names)}"
            )
        weights[name.strip()] = int(value)
    return replace(split, weights=tuple(weights[n] for n in split.names))


def rule_index(route: Route, which: str | None) -> int:
    """The rule `--rule` names (its name or index); else the default rule (no match
    conditions), else the only rule. Raises `UsageError`."""
    if which is not None:
        if WEIGHT.fullmatch(which) and int(which) < len(route.rules):
            return int(which)
        found = [i for i, r in enumerate(route.rules) if r.name == which]
        if found:
            return found[0]
        raise UsageError(
            f"{route.name} has no rule {which!r}: its rules are 0 to {len(route.rules) - 1}"
        )
    defaults = [i for i, r in enumerate(route.rules) if not r.matches]
    if defaults:
        return defaults[0]
    if len(route.rules) == 1:
        return 0
    raise UsageError(
        f"{route.name} has {len(route.rules)} rules and none without matches: give --rule"
    )


def splittable(rules: Sequence[RouteRule]) -> list[int]:
    """The rules with more than one destination: where there is a split to shift."""
    return [i for i, r in enumerate(rules) if len(r.destinations) > 1]


@dataclass(frozen=True, slots=True)
class RouteLine:
    """One destination of one rule, as the routes view shows it."""

    route: Route
    rule: int
    destination: int
    configured: float  # share 0..1 the weights give it
    actual: float | None  # share of the rule's traffic the metrics saw; None: cannot tell
    problem: str  # "" when none


def route_lines(
    routes: Sequence[Route],
    subsets: Mapping[tuple[str, str], set[str]] | None,
    services: set[tuple[str, str]] | None,
    observed: Callable[[Route, str], float],
) -> list[RouteLine]:
    """Every destination of every rule, in order, with its configured share, the share
    observed (for the default rule: the only traffic the metrics can tell apart), and what
    is wrong with the configuration: a subset missing from the DestinationRules (where
    they are known), weights that add up to 0, a host with no service (where the services
    are known)."""
    out: list[RouteLine] = []
    for route in routes:
        default = next((i for i, r in enumerate(route.rules) if not r.matches), None)
        for i, rule in enumerate(route.rules):
            split = Split.of(route, rule)
            total = sum(split.weights)
            seen = [observed(route, n) for n in split.names] if i == default else []
            seen_total = sum(seen)
            for j, d in enumerate(rule.destinations):
                host = d.host.split(".")[0]
                problem = ""
                if total == 0:
                    problem = "weights add up to 0: no traffic can go"
                elif (
                    d.subset
                    and subsets is not None
                    and d.subset not in subsets.get((route.namespace, host), set())
                ):
                    problem = f"no subset {d.subset} in a DestinationRule for {host}"
                elif services is not None and (route.namespace, host) not in services:
                    problem = f"no service {host} in {route.namespace}"
                actual = seen[j] / seen_total if seen and seen_total else None
                out.append(RouteLine(route, i, j, split.share(j), actual, problem))
    return out
