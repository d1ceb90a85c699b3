"""The console's traffic-policy commands (issue 21): `:route-test` (which rule takes a
request), `:steer`, `:fault`, `:timeout`, `:retries` and `:breaker`, each read from the
object as it is now, previewed as its diff (`ConfirmScreen`), written only on `y` through
the change workflow (audited, by `console`) and taken back by `:undo`; and the end of a
fault: the one the console applied, at its time (a timer), and any it sees past its end
on a refresh, removed through the workflow (by `expiry`, audited). The words are the
CLI's (`--match`, `--to`, `--abort`, `--for`, …); the route is the selection's unless
named (`NAMESPACE/NAME`). Over 400 lines: the commands' words, where each acts and the one
preview-and-write path they share change together, as the CLI's do across its modules."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from textual.widgets import TabbedContent

from meshtop.change import edits
from meshtop.change.workflow import Copy, EditOutcome, Workflow
from meshtop.detail import routes_to
from meshtop.errors import MeshtopError, UsageError
from meshtop.model import MeshSnapshot, Route
from meshtop.model.policy import expired
from meshtop.policy_view import route_verdict
from meshtop.steering import edit, values
from meshtop.steering.match import (
    parse_condition,
    parse_request,
)
from meshtop.steering.plan import EditPlan
from meshtop.tui.changes import row_route
from meshtop.tui.screens.confirm import ConfirmScreen

if TYPE_CHECKING:
    from meshtop.tui.screens.main import MainScreen

ROUTES = ("VirtualService", "HTTPRoute")
FAULT_FOR = "10m"  # a fault is always time-boxed: this long unless --for says otherwise
BREAKER = {  # :breaker's options, as `steering.edit.circuit_breaker` names them
    "max-connections": "max_connections",
    "max-pending": "max_pending",
    "max-requests": "max_requests",
    "max-retries": "max_retries",
    "consecutive-errors": "consecutive_errors",
    "interval": "interval",
    "ejection": "base_ejection",
    "max-ejection": "max_ejection_percent",
}
_TARGET = re.compile(r"^\s*([^\s=/\"'-][^\s=/\"']*/[^\s=/\"']+)(?=\s|$)")


# -- the words ---------------------------------------------------------------------------


def words_of(text: str) -> list[str]:
    """Words as a shell splits them (quotes group), backslashes kept: a regex's `\\d`
    stays `\\d`."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split, lexer.escape, lexer.commenters = True, "", ""
    try:
        return list(lexer)
    except ValueError as exc:
        raise UsageError(f"cannot read {text!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Asked:
    """A command's words: the route or DestinationRule named (NAMESPACE/NAME, "" for the
    selection's), the words that are no option, each option's values, the switches."""

    target: str = ""
    rest: tuple[str, ...] = ()
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    switches: frozenset[str] = frozenset()

    def last(self, name: str) -> str | None:
        values = self.options.get(name)
        return values[-1] if values else None


def split_target(text: str) -> tuple[str, str]:
    """`NAMESPACE/NAME` at the start of `text`, if it is there, and the rest."""
    found = _TARGET.match(text)
    if found is None:
        return "", text.strip()
    return found.group(1), text[found.end() :].strip()


def asked(
    command: str, text: str, values: Collection[str] = (), switches: Collection[str] = ()
) -> Asked:
    """`text` read as `:command [NAMESPACE/NAME] WORDS --option VALUE --switch`."""
    target, rest = split_target(text)
    words = words_of(rest)
    options: dict[str, list[str]] = {}
    found: set[str] = set()
    plain: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--"):
            plain.append(word)
            i += 1
            continue
        name, eq, value = word[2:].partition("=")
        if name in switches and not eq:
            found.add(name)
        elif name in values:
            if not eq:
                if i + 1 >= len(words):
                    raise UsageError(f":{command} --{name} needs a value")
                i += 1
                value = words[i]
            options.setdefault(name, []).append(value)
        else:
            known = ", ".join(f"--{n}" for n in (*values, *switches)) or "no option"
            raise UsageError(f":{command} has no --{name}; it takes {known}")
        i += 1
    if target:
        from meshtop.sources.kubernetes import check_names

        namespace, _, name = target.partition("/")
        check_names(namespace, name)  # names the API could hold, said in one line
    return Asked(target, tuple(plain), {k: tuple(v) for k, v in options.items()},
                 frozenset(found))  # fmt: skip


def retries_of(words: Sequence[str]) -> dict[str, Any]:
    """`3 [500ms] [5xx,reset]`, `off` (no retries) or `default` (no retry policy:
    Istio's own, 2 attempts): `steering.edit.resilience`'s arguments."""
    if not words or len(words) > 3:
        raise UsageError("retries takes ATTEMPTS [PER-TRY-TIMEOUT] [RETRY-ON], off or default")
    first = words[0].lower()
    if first in ("off", "default"):
        if len(words) > 1:
            raise UsageError(f"retries {first} takes nothing more")
        return {"attempts": values.attempts(first)}
    said: dict[str, Any] = {"attempts": values.count(words[0], "retries: attempts", 100)}
    for word in words[1:]:
        if re.fullmatch(r"[0-9.]+(ms|s|m|h)", word):
            said["per_try_timeout"] = values.seconds(word, "retries: a per-try timeout")
            continue
        try:
            said["retry_on"] = values.retry_on(word)
        except UsageError:
            raise UsageError(
                f"retries: {word!r} is neither a per-try timeout (500ms) nor conditions Envoy "
                f"retries on ({', '.join(sorted(values.RETRY_ON))}, or a status code)"
            ) from None
    return said


def verdict_words(obj: Mapping[str, Any], cluster: str, request_text: str) -> str:
    """Which rule of the route takes the request, where it sends it, and why each rule
    before it did not, in one line."""
    verdict = route_verdict(obj, request_text, cluster)
    route = verdict.route
    where = f"{route.namespace}/{route.name}"
    if verdict.rule is None:
        said = f"{where}: no rule takes it, Envoy answers 404 (NR)"
    else:
        rule = route.rules[verdict.rule]
        to = ", ".join(
            (d.subset or d.host) + (f" {d.weight}%" if len(rule.destinations) > 1 else "")
            for d in rule.destinations
        )
        host = rule.destinations[0].host.split(".")[0] if rule.destinations else ""
        when = " or ".join(rule.matches)
        which = f"rule {verdict.rule} ({when})" if when else f"the default rule {verdict.rule}"
        said = f"{where}: {which} → {host} {to}".rstrip()
        if rule.policy.fault is not None:
            said += f", with a fault: {rule.policy.fault.words()}"
    passed = [why.replace(": ", " did not match: ", 1) for why in verdict.passed]
    return "; ".join([said, *passed])


# -- the commands ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """The object a command reads and writes: its kinds (the first that exists), where,
    and where each cluster's copy is."""

    kinds: tuple[str, ...]
    namespace: str
    name: str
    copies: dict[str, Copy]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


class Policy:
    """The traffic-policy commands of one console session."""

    def __init__(self, screen: MainScreen) -> None:
        self.screen = screen
        self._expiring: set[tuple[str, str]] = set()  # (namespace, name) being ended
        self._told: set[str] = set()  # faults past their end said once (read-only)

    # -- where -------------------------------------------------------------------------

    def _writable(self, command: str) -> None:
        app = self.screen.app
        if app.settings.read_only:
            raise UsageError(f"read-only: :{command} writes nothing here")
        if not app.stores:
            raise UsageError("no control plane to write to: the console reads metrics only here")

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.screen.app.clock(), UTC)

    def _selection(self) -> tuple[list[str], Route | None]:
        """The nodes the selection sends to (an edge's callees, a node's members) and
        the route that sends to them; on the routes tab, its row's route."""
        screen, snapshot = self.screen, self.screen.app.snapshot
        if snapshot is None:
            return [], None
        if screen.query_one(TabbedContent).active == "routes-tab":
            found = row_route(screen._routes(), snapshot)
            return [], found[0] if found else None
        view, canvas = screen.graph.view, screen._canvas()
        if view is None:
            return [], None
        if canvas.edge is not None and canvas.edge in view.edges:
            members = sorted({b for _, b in view.edges[canvas.edge].members})
        elif canvas.node is not None and canvas.node in view.nodes:
            members = list(view.nodes[canvas.node].members)
        else:
            return [], None
        routes = routes_to(snapshot, members)
        return members, routes[0] if routes else None

    def _everywhere(self) -> dict[str, Copy]:
        return {c: self.screen.changes.copy_of(c) for c in self.screen.app.stores}

    def route(self, named: str) -> Target:
        """The route named, or the selection's."""
        snapshot = self.screen.app.snapshot
        changes = self.screen.changes
        if named:
            namespace, _, name = named.partition("/")
            known = [
                r
                for r in (snapshot.routes if snapshot else ())
                if (r.namespace, r.name) == (namespace, name)
            ]
            if known:
                return Target((known[0].kind,), namespace, name, changes.copies_of(known[0]))
            return Target(ROUTES, namespace, name, self._everywhere())
        _, route = self._selection()
        if route is None:
            raise UsageError(
                "no route sends the selection's traffic: select a node or an edge into a "
                "routed service, or name the route (NAMESPACE/NAME)"
            )
        return Target((route.kind,), route.namespace, route.name, changes.copies_of(route))

    def destination_rule(self, named: str) -> Target:
        """The DestinationRule named, or the one of the selection's callee (the snapshot's
        circuit breakers say its name; else, as Istio's samples do, the service's)."""
        snapshot = self.screen.app.snapshot
        breakers = snapshot.breakers if snapshot is not None else ()
        if named:
            namespace, _, name = named.partition("/")
            where = [b.cluster for b in breakers if (b.namespace, b.name) == (namespace, name)]
        else:
            members, route = self._selection()
            nodes = [snapshot.nodes[m] for m in members if snapshot and m in snapshot.nodes]
            if nodes:
                namespace, host = nodes[0].namespace, nodes[0].app or nodes[0].name
            elif route is not None and route.rules and route.rules[-1].destinations:
                namespace, host = route.namespace, route.rules[-1].destinations[0].host
                host = host.split(".")[0]
            else:
                raise UsageError(
                    "no service selected: select a node or an edge, or name the "
                    "DestinationRule (NAMESPACE/NAME)"
                )
            mine = [b for b in breakers if (b.namespace, b.host) == (namespace, host)]
            name = mine[0].name if mine else host
            where = [b.cluster for b in mine]
        copies = {c: self.screen.changes.copy_of(c) for c in dict.fromkeys(where)}
        return Target(("DestinationRule",), namespace, name, copies or self._everywhere())

    # -- :route-test --------------------------------------------------------------------

    def route_test(self, text: str) -> None:
        """`:route-test [NS/NAME] REQUEST…`: which rule takes it, said in place."""
        named, request = split_target(text)
        if not request:
            raise UsageError(
                'route-test takes [NAMESPACE/NAME] and a request: user-agent="…" '
                "uri=/api query:v=2 source:app=web method=POST"
            )
        parse_request(request)  # words that are no request: said now, in one line
        if not self.screen.app.stores:
            raise UsageError("no control plane to read routes from here")
        target = self.route(named)
        self.screen.run_worker(self._route_test(target, request), group="route-test",
                               exclusive=True, exit_on_error=False)  # fmt: skip

    async def _route_test(self, target: Target, request: str) -> None:
        cluster, copy = next(iter(target.copies.items()))
        try:
            read = await edits.read({cluster: copy}, target.kinds, target.namespace, target.name)
            if read.unread:
                raise read.unread[cluster]
            obj = read.objects()[cluster]
            self.screen.say(f"route-test {verdict_words(obj, cluster, request)}")
        except MeshtopError as exc:
            self.screen.say(f"cannot test {target.ref}: {exc}")

    # -- the changes --------------------------------------------------------------------

    def steer(self, text: str) -> None:
        """`:steer [NS/NAME] --match COND… --to v3 [--position N]`, `--edit R`, `--move R
        --position N`, `--remove R`: as `meshtop steer`."""
        self._writable("steer")
        a = asked("steer", text, ("match", "to", "position", "edit", "move", "remove"))
        if a.rest:
            raise UsageError(f"steer: {a.rest[0]!r} is no option (--match, --to, --position, "
                             "--edit, --move, --remove)")  # fmt: skip
        which = {k: a.last(k) for k in ("edit", "move", "remove")}
        if sum(v is not None for v in which.values()) > 1:
            raise UsageError("steer: give one of --edit, --move and --remove")
        conditions = [parse_condition(m) for m in a.options.get("match", ())]
        targets = edit.parse_targets(a.last("to") or "") if a.last("to") is not None else []
        position = a.last("position")
        at = values.count(position, "steer --position", 1000) if position is not None else None
        if which["move"] is not None and at is None:
            raise UsageError("steer --move needs --position")
        if (which["move"] or which["remove"]) is not None and (conditions or targets):
            raise UsageError("steer --move and --remove take no --match or --to")
        target = self.route(a.target)

        async def make(objects: Mapping[str, dict[str, Any]]) -> Callable[..., EditPlan]:
            known = await self._subsets(objects)
            return lambda obj, cluster: edit.steer(
                obj, cluster, conditions=conditions, targets=targets, position=at,
                edit=which["edit"], move=which["move"], remove=which["remove"],
                subsets=known.get(cluster),
            )  # fmt: skip

        self._start(target, make)

    async def _subsets(self, objects: Mapping[str, dict[str, Any]]) -> dict[str, list[str]]:
        """Each copy's subsets of the host its default rule routes to, as its cluster's
        DestinationRules define them (a cluster that cannot say is not checked)."""
        out: dict[str, list[str]] = {}
        for cluster, obj in objects.items():
            sources = self.screen.app.clusters.get(cluster) or next(
                iter(self.screen.app.clusters.values()), None
            )
            if obj.get("kind") != "VirtualService" or sources is None:
                continue
            if sources.control_plane is None:
                continue
            try:
                known = await sources.control_plane.subsets()
            except MeshtopError:
                continue
            rules = (obj.get("spec") or {}).get("http") or []
            default: dict[str, Any] = next((r for r in reversed(rules) if not r.get("match")), {})
            first = ((default.get("route") or [{}])[0]).get("destination") or {}
            host = str(first.get("host", "")).split(".")[0]
            namespace = str((obj.get("metadata") or {}).get("namespace", ""))
            out[cluster] = sorted(known.get((namespace, host), set()))
        return out

    def fault(self, text: str) -> None:
        """`:fault [NS/NAME] --abort 503:10% [--delay 2s:25%] [--match COND…] [--rule R]
        [--for 10m]`, or `--clear`."""
        self._writable("fault")
        a = asked("fault", text, ("abort", "delay", "match", "rule", "for"), ("clear",))
        if a.rest:
            raise UsageError(f"fault: {a.rest[0]!r} is no option (--abort, --delay, --match, "
                             "--rule, --for, --clear)")  # fmt: skip
        target = self.route(a.target)
        if "clear" in a.switches:
            if a.options:
                raise UsageError("fault --clear takes nothing more")
            self._start(target, _fixed(lambda obj, cluster: edit.clear_fault(obj, cluster)))
            return
        abort = values.abort(a.last("abort") or "") if a.last("abort") is not None else None
        delay = values.delay(a.last("delay") or "") if a.last("delay") is not None else None
        if abort is None and delay is None:
            raise UsageError("fault takes --abort STATUS:PERCENT and/or --delay DURATION:PERCENT "
                             "(or --clear)")  # fmt: skip
        lasting = values.seconds(a.last("for") or FAULT_FOR, "fault --for")
        conditions = [parse_condition(m) for m in a.options.get("match", ())]
        ends = self._now() + timedelta(seconds=lasting)

        def make(obj: dict[str, Any], cluster: str) -> EditPlan:
            return edit.fault(obj, cluster, abort=abort, delay=delay, conditions=conditions,
                              rule=a.last("rule"), expires=ends)  # fmt: skip

        self._start(target, _fixed(make), then=lambda: self._end_at(target, ends))

    def timeout(self, text: str) -> None:
        """`:timeout [NS/NAME] [--rule R] 2s|off`."""
        self._writable("timeout")
        a = asked("timeout", text, ("rule",))
        if len(a.rest) != 1:
            raise UsageError("timeout takes [NAMESPACE/NAME] [--rule R] and a duration (2s) or off")
        word = a.rest[0]
        said = edit.OFF if word.lower() == "off" else values.seconds(word, "timeout")
        target = self.route(a.target)
        self._start(target, _fixed(lambda obj, cluster: edit.resilience(
            obj, cluster, rule=a.last("rule"), timeout=said)))  # fmt: skip

    def retries(self, text: str) -> None:
        """`:retries [NS/NAME] [--rule R] 3 [500ms] [5xx,reset]|off|default`."""
        self._writable("retries")
        a = asked("retries", text, ("rule",))
        said = retries_of(a.rest)
        target = self.route(a.target)
        self._start(target, _fixed(lambda obj, cluster: edit.resilience(
            obj, cluster, rule=a.last("rule"), **said)))  # fmt: skip

    def breaker(self, text: str) -> None:
        """`:breaker [NS/NAME] [--subset v3] --max-connections 1 …` or `--clear`."""
        self._writable("breaker")
        a = asked("breaker", text, ("subset", *BREAKER), ("clear",))
        if a.rest:
            raise UsageError(f"breaker: {a.rest[0]!r} is no option (--subset, "
                             f"{', '.join('--' + k for k in BREAKER)}, --clear)")  # fmt: skip
        settings: dict[str, float | int | None] = {}
        for option, key in BREAKER.items():
            value = a.last(option)
            if value is None:
                continue
            if option in ("interval", "ejection"):
                settings[key] = values.seconds(value, f"breaker --{option}")
            else:
                settings[key] = values.count(value, f"breaker --{option}",
                                      100 if option == "max-ejection" else 1_000_000)  # fmt: skip
        if not settings and "clear" not in a.switches:
            raise UsageError("breaker takes a setting (--max-connections 1, --consecutive-errors "
                             "5, …) or --clear")  # fmt: skip
        target = self.destination_rule(a.target)
        subset = a.last("subset") or ""
        self._start(target, _fixed(lambda obj, cluster: edit.circuit_breaker(
            obj, cluster, subset=subset, clear="clear" in a.switches, **settings)))  # fmt: skip

    # -- plan, preview, write -------------------------------------------------------------

    def _start(
        self,
        target: Target,
        make: Callable[[Mapping[str, dict[str, Any]]], Any],
        then: Callable[[], None] | None = None,
    ) -> None:
        work = self._plan(target, make, then)
        self.screen.run_worker(work, group="policy", exclusive=True, exit_on_error=False)

    async def _plan(
        self,
        target: Target,
        make: Callable[[Mapping[str, dict[str, Any]]], Any],
        then: Callable[[], None] | None,
    ) -> None:
        """Every copy read as it is now and planned; a copy another controller steers
        left alone; the diff shown for `y`."""
        try:
            read = await edits.read(target.copies, target.kinds, target.namespace, target.name)
            if not read.found:
                raise next(iter(read.unread.values()))
            steered = read.steered()
            if steered:
                who = "; ".join(f"{c}: {w}" if c else w for c, w in steered.items())
                raise UsageError(f"{target.ref} is steered by {who}: meshtop leaves it alone "
                                 "here (the CLI's --force changes it)")  # fmt: skip
            plans = edits.plans(read.objects(), await make(read.objects()))
        except MeshtopError as exc:
            self.screen.say(f"cannot change {target.ref}: {exc}")
            return
        first = next(iter(plans.values()))
        if not any(p.changed for p in plans.values()):
            self.screen.say(f"nothing to change: {first.ref} is so already")
            return
        several = len(plans) > 1
        lines: list[str] = []
        for cluster, plan in plans.items():
            lines += [f"{cluster}:"] if several else []
            lines += [("  " if several else "") + line for line in plan.diff()]
        lines += [f"not read in {c or 'the cluster'}: {why}" for c, why in read.unread.items()]
        self.screen.app.push_screen(
            ConfirmScreen(f"{first.ref}: {first.what}", lines),
            lambda yes: self._confirmed(target, plans, then) if yes else None,
        )

    def _confirmed(
        self, target: Target, plans: dict[str, EditPlan], then: Callable[[], None] | None
    ) -> None:
        work = self._apply(target, plans, then)
        self.screen.run_worker(work, group="policy", exclusive=True, exit_on_error=False)

    async def _apply(
        self, target: Target, plans: dict[str, EditPlan], then: Callable[[], None] | None
    ) -> None:
        copies = {c: target.copies[c] for c in plans}
        first = next(iter(plans.values()))
        try:
            outcomes = await Workflow(copies, by="console").apply(plans)
        except MeshtopError as exc:  # the audit log: nothing was written
            self.screen.say(f"cannot change {first.ref}: {exc}")
            return
        if any(o.result == "applied" for o in outcomes):
            self.screen.changes.edited(copies, outcomes)
            if then is not None:
                then()
        self.screen.say(said(first, outcomes))
        self.screen.app.request_refresh()

    # -- a fault's end ------------------------------------------------------------------

    def _end_at(self, target: Target, ends: datetime) -> None:
        """At the fault's end, remove it (if it is still there as meshtop set it)."""
        left = max(0.0, (ends - self._now()).total_seconds())
        self.screen.set_timer(left, lambda: self._expire(target))

    def _expire(self, target: Target) -> None:
        key = (target.namespace, target.name)
        if key in self._expiring:
            return
        self._expiring.add(key)
        work = self._remove_expired(target)
        self.screen.run_worker(work, group=f"expiry {target.ref}", exit_on_error=False)

    async def _remove_expired(self, target: Target) -> None:
        """The copies whose fault is past its end, cleared through the workflow, audited
        by `expiry`; one already gone (removed by hand, or by another meshtop) is left."""
        try:
            read = await edits.read(target.copies, target.kinds, target.namespace, target.name)
            plans = edits.expiry_plans(read.objects(), self._now())
            if not plans:
                return
            copies = {c: target.copies[c] for c in plans}
            outcomes = await Workflow(copies, by="expiry").apply(plans)
        except MeshtopError as exc:
            self.screen.say(f"cannot end the fault on {target.ref}: {exc}")
            return
        finally:
            self._expiring.discard((target.namespace, target.name))
        if any(o.result == "applied" for o in outcomes):
            self.screen.say(f"the fault on {target.ref} reached its end: removed (audited)")
        else:
            failed = "; ".join(o.result for o in outcomes if not o.ok)
            self.screen.say(f"cannot end the fault on {target.ref}: {failed}")
        self.screen.app.request_refresh()

    def seen(self, snapshot: MeshSnapshot) -> None:
        """On every refresh: a fault past its end is removed (not in read-only mode,
        where it is said once, and flagged on the graph until someone removes it)."""
        now = self._now()
        late = [r for r in snapshot.routes if r.kind == "VirtualService"
                and any(rule.policy.fault for rule in r.rules)
                and expired(r.fault_expires, now)]  # fmt: skip
        if not late or not self.screen.app.stores:
            return
        changes = self.screen.changes
        for route in late:
            target = Target((route.kind,), route.namespace, route.name, changes.copies_of(route))
            if not self.screen.app.settings.read_only:
                self._expire(target)
            elif route.id not in self._told:
                self._told.add(route.id)
                ended = route.fault_expires.strftime("%H:%M") if route.fault_expires else ""
                self.screen.say(f"the fault on {target.ref} is past its end ({ended}): "
                                "read-only, left as it is")  # fmt: skip


def _fixed(
    make: Callable[[dict[str, Any], str], EditPlan],
) -> Callable[[Mapping[str, dict[str, Any]]], Any]:
    """A plan maker that needs nothing more read first."""

    async def ready(objects: Mapping[str, dict[str, Any]]) -> Callable[..., EditPlan]:
        return make

    return ready


def said(first: EditPlan, outcomes: Sequence[EditOutcome]) -> str:
    """The outcome in one line: what was written where, what was not and why."""
    applied = [o.cluster for o in outcomes if o.result == "applied"]
    several = len(outcomes) > 1
    failed = [f"{o.cluster}: {o.result}" if several else o.result
              for o in outcomes if not o.ok]  # fmt: skip
    notes = [o.note for o in outcomes if o.note]
    if not applied:
        if not failed:
            return f"nothing to change: {first.ref} is so already"
        return "; ".join([f"nothing was written to {first.ref}: {'; '.join(failed)}", *notes])
    where = f" in {', '.join(applied)}" if several else ""
    line = f"{first.ref}: {first.what}: applied{where}"
    line += f"; NOT in {'; '.join(failed)}" if failed else ""
    return "; ".join([f"{line}; :undo takes it back", *notes])
