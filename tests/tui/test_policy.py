"""The console's traffic-policy commands (issue 21), driven by keys: `:route-test` says
which rule takes a request; `:steer`, `:fault`, `:timeout`, `:retries` and `:breaker`
show their diff, write on `y` through the change workflow (audited, by console) and
`:undo` takes them back; read-only refuses in place; a fault is removed at its end (by
expiry, audited). The route store here keeps whole objects, as the Kubernetes API does:
the console reads and edits them through `get` and `edit`."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from meshtop import audit
from meshtop.config import Settings
from meshtop.connect import Sources
from meshtop.errors import ConflictError, UsageError
from meshtop.sim.sources import Simulation
from meshtop.steering.plan import EditPlan
from meshtop.steering.values import abort
from meshtop.tui.app import MeshtopApp
from meshtop.tui.policy import (
    asked,
    retries_of,
    split_target,
    verdict_words,
    words_of,
)
from meshtop.tui.screens.confirm import ConfirmScreen
from meshtop.tui.widgets.notice import Notice

from ..conftest import Clock, only
from .test_console import _first_snapshot, keys, settled, until

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"
REGEX = "^(.*?;)?(iPhone)(;.*)?$"


def reviews() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "bookinfo", "resourceVersion": "1"},
        "spec": {
            "hosts": ["reviews"],
            "http": [{"route": [
                {"destination": {"host": "reviews", "subset": "v1"}, "weight": 70},
                {"destination": {"host": "reviews", "subset": "v2"}, "weight": 20},
                {"destination": {"host": "reviews", "subset": "v3"}, "weight": 10},
            ]}],
        },
    }  # fmt: skip


def reviews_rule() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": "bookinfo", "resourceVersion": "1"},
        "spec": {"host": "reviews", "subsets": [{"name": v, "labels": {"version": v}}
                                                for v in ("v1", "v2", "v3")]},
    }  # fmt: skip


class Objects:
    """A route store that keeps whole objects and edits them as the API server applies
    a JSON patch: the version and the spec read must hold, else a conflict; the version
    moves on. Weights are the simulated mesh's own store's (`inner`)."""

    def __init__(self, inner: Any, *objects: dict[str, Any]) -> None:
        self.inner = inner
        self.objects = {self._key(o): o for o in objects}
        self.edits: list[tuple[EditPlan, bool]] = []

    @staticmethod
    def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
        meta = obj["metadata"]
        return (obj["kind"], meta["namespace"], meta["name"])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        found = self.objects.get((kind, namespace, name))
        if found is None:
            raise UsageError(f"no {kind} {namespace}/{name}")
        return copy.deepcopy(found)

    async def edit(self, plan: EditPlan, *, dry_run: bool = False) -> dict[str, Any]:
        self.edits.append((plan, dry_run))
        now = self.objects[(plan.kind, plan.namespace, plan.name)]
        meta = now["metadata"]
        if meta["resourceVersion"] != plan.resource_version or now["spec"] != plan.before:
            raise ConflictError(f"{plan.ref} changed since it was read")
        after = copy.deepcopy(now)
        after["spec"] = copy.deepcopy(dict(plan.after))
        notes = after["metadata"].setdefault("annotations", {})
        for key, value in plan.annotations.items():
            if value is None:
                notes.pop(key, None)
            else:
                notes[key] = value
        if not dry_run:
            after["metadata"]["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
            self.objects[self._key(after)] = after
        return copy.deepcopy(after)


def _app(sim: Simulation, store: Objects, read_only: bool = False) -> MeshtopApp:
    clusters = {c: replace(s, store=store) for c, s in only(sim.clusters).items()}
    settings = Settings(read_only=read_only)
    return MeshtopApp(Sources(clusters, True, sim.clock), settings=settings)


def _said(app: MeshtopApp) -> str:
    return " ".join(app.main.query_one(Notice).said)


async def _command(pilot: Pilot[None], line: str) -> None:
    """`:line` and enter: the line put in the prompt whole (a regex has keys of its own)."""
    await keys(pilot, "colon")
    prompt = pilot.app.query_one("#prompt", Input)
    prompt.value = line
    await keys(pilot, "enter")
    await settled(pilot)


async def _confirm(pilot: Pilot[None]) -> ConfirmScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the change shown")
    screen = pilot.app.screen
    assert isinstance(screen, ConfirmScreen)
    return screen


def _select(app: MeshtopApp, node: str) -> None:
    app.main._canvas().select(node)


def _audit() -> list[dict[str, Any]]:
    return [json.loads(line) for line in audit.path().read_text().splitlines()]


# -- the words ---------------------------------------------------------------------------


def test_a_regex_keeps_its_backslashes_and_quotes_group() -> None:
    assert words_of(r"--match 'header:x~\d+ a' --to v3") == [
        "--match",
        r"header:x~\d+ a",
        "--to",
        "v3",
    ]
    assert split_target('bookinfo/reviews user-agent="a b"') == (
        "bookinfo/reviews",
        'user-agent="a b"',
    )
    assert split_target('uri=/api/v1 user-agent="a/b"') == ("", 'uri=/api/v1 user-agent="a/b"')


def test_options_are_read_and_a_wrong_one_is_one_line() -> None:
    a = asked("steer", f"bookinfo/reviews --match header:user-agent~{REGEX} --to=v3",
              ("match", "to"))  # fmt: skip
    assert a.target == "bookinfo/reviews"
    assert a.options == {"match": (f"header:user-agent~{REGEX}",), "to": ("v3",)}
    with pytest.raises(UsageError, match=r":steer has no --bogus; it takes --match, --to"):
        asked("steer", "--bogus 1", ("match", "to"))
    with pytest.raises(UsageError, match=r":steer --to needs a value"):
        asked("steer", "--to", ("match", "to"))
    with pytest.raises(UsageError):
        asked("steer", "Bad_Name/reviews --to v3", ("to",))


def test_fault_and_retries_words() -> None:
    assert abort("503:10%") == (503, 10.0)
    for wrong in ("503", "999:10%", "503:0%", "503:101%", "x:10%"):
        with pytest.raises(UsageError):
            abort(wrong)
    assert retries_of(["3", "500ms", "5xx,reset"]) == {
        "attempts": 3, "per_try_timeout": 0.5, "retry_on": "5xx,reset"
    }  # fmt: skip
    assert retries_of(["off"]) == {"attempts": 0}
    assert retries_of(["default"])["attempts"] < 0
    with pytest.raises(UsageError, match="neither a per-try timeout"):
        retries_of(["3", "sometimes"])


def test_route_test_words_say_the_rule_and_why_not_the_ones_before() -> None:
    vs = reviews()
    iphone = {"match": [{"headers": {"user-agent": {"regex": REGEX}}}],
              "route": [{"destination": {"host": "reviews", "subset": "v3"}}]}  # fmt: skip
    vs["spec"]["http"].insert(0, iphone)
    said = verdict_words(vs, "", 'user-agent="iPhone; CPU iPhone OS 17_0"')
    assert said == f"bookinfo/reviews: rule 0 (header user-agent ~ {REGEX}) → reviews v3"
    other = verdict_words(vs, "", 'user-agent="Mozilla/5.0 (X11; Linux)"')
    assert other.startswith("bookinfo/reviews: the default rule 1 → reviews v1 70%, v2 20%")
    assert "rule 0 did not match: header user-agent does not match" in other
    # Envoy matches a regex against the whole value: Safari's on an iPhone is not this one
    safari = verdict_words(vs, "", f'user-agent="{IPHONE}"')
    assert safari.startswith("bookinfo/reviews: the default rule 1 →")
    partly = {"match": [{"headers": {"user-agent": {"regex": "iPhone"}}}],
              "route": [{"destination": {"host": "reviews", "subset": "v3"}}]}  # fmt: skip
    vs["spec"]["http"][0] = partly
    assert "the regex matches a part, Envoy needs the whole value" in verdict_words(
        vs, "", f'user-agent="{IPHONE}"'
    )


# -- in the console ------------------------------------------------------------------------


async def test_steer_then_route_test_says_v3_for_an_iphone_and_undo_takes_it_back(
    sim: Simulation,
) -> None:
    store = Objects(sim.clusters[next(iter(sim.clusters))].store, reviews(), reviews_rule())
    app = _app(sim, store)
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await _command(pilot, 'route-test bookinfo/reviews user-agent="iPhone"')
        assert _said(app).startswith("route-test bookinfo/reviews: the default rule 0 → reviews")
        await _command(pilot, f"steer bookinfo/reviews --match header:user-agent~{REGEX} --to v3")
        screen = await _confirm(pilot)
        assert screen.title_text == (
            f"VirtualService bookinfo/reviews: add rule 0: header user-agent ~ {REGEX} → v3"
        )
        assert "+- match:" in screen.lines and "+      subset: v3" in screen.lines
        await keys(pilot, "y")
        await settled(pilot)
        assert "applied; :undo takes it back" in _said(app)
        written = [p for p, dry in store.edits if not dry]
        assert len(written) == 1 and written[0].action == "steer"
        entry = _audit()[-1]
        assert entry["by"] == "console" and entry["outcome"] == "applied"
        await _command(pilot, 'route-test bookinfo/reviews user-agent="iPhone; CPU iPhone OS 17"')
        assert "rule 0 (header user-agent ~" in _said(app) and _said(app).endswith("→ reviews v3")
        await _command(pilot, 'route-test bookinfo/reviews user-agent="curl/8.0"')
        assert "the default rule 1 → reviews v1 70%" in _said(app)
        await _command(pilot, "undo")
        screen = await _confirm(pilot)
        assert screen.title_text == "undo the last change of VirtualService bookinfo/reviews"
        await keys(pilot, "y")
        await settled(pilot)
        assert _said(app) == "undone: VirtualService bookinfo/reviews is back to what it was"
        assert store.objects[("VirtualService", "bookinfo", "reviews")]["spec"] == reviews()["spec"]
        assert _audit()[-1]["by"] == "undo"


async def test_the_selection_names_the_route_and_esc_writes_nothing(sim: Simulation) -> None:
    store = Objects(sim.clusters[next(iter(sim.clusters))].store, reviews())
    app = _app(sim, store)
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        _select(app, "Kubernetes/bookinfo/app:reviews:v3")
        await _command(pilot, "timeout 500ms")
        screen = await _confirm(pilot)
        assert screen.title_text == "VirtualService bookinfo/reviews: rule 0: timeout 500ms"
        assert "+  timeout: 500ms" in screen.lines
        await keys(pilot, "escape")
        await settled(pilot)
        assert not [p for p, dry in store.edits if not dry]
        await _command(pilot, "retries 3 250ms 5xx")
        await _confirm(pilot)
        await keys(pilot, "y")
        await settled(pilot)
        rule = store.objects[("VirtualService", "bookinfo", "reviews")]["spec"]["http"][0]
        assert rule["retries"] == {"attempts": 3, "perTryTimeout": "250ms", "retryOn": "5xx"}


async def test_breaker_on_the_selected_callees_destination_rule(sim: Simulation) -> None:
    store = Objects(sim.clusters[next(iter(sim.clusters))].store, reviews(), reviews_rule())
    app = _app(sim, store)
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        _select(app, "Kubernetes/bookinfo/app:reviews:v3")
        await _command(pilot, "breaker --subset v3 --max-connections 1 --max-pending 1")
        screen = await _confirm(pilot)
        assert screen.title_text.startswith("DestinationRule bookinfo/reviews: max connections 1")
        await keys(pilot, "y")
        await settled(pilot)
        subset = store.objects[("DestinationRule", "bookinfo", "reviews")]["spec"]["subsets"][2]
        assert subset["trafficPolicy"]["connectionPool"] == {
            "tcp": {"maxConnections": 1}, "http": {"http1MaxPendingRequests": 1}
        }  # fmt: skip
        await _command(pilot, "undo")
        await _confirm(pilot)
        await keys(pilot, "y")
        await settled(pilot)
        assert (
            store.objects[("DestinationRule", "bookinfo", "reviews")]["spec"]
            == (reviews_rule()["spec"])
        )


async def test_read_only_refuses_every_change_in_place_and_still_tests_routes(
    sim: Simulation,
) -> None:
    store = Objects(sim.clusters[next(iter(sim.clusters))].store, reviews(), reviews_rule())
    app = _app(sim, store, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        for line in (
            "steer bookinfo/reviews --match uri^=/api --to v3",
            "fault bookinfo/reviews --abort 503:10%",
            "timeout bookinfo/reviews 2s",
            "retries bookinfo/reviews off",
            "breaker bookinfo/reviews --clear",
        ):
            await _command(pilot, line)
            assert _said(app) == f"read-only: :{line.split()[0]} writes nothing here"
        assert not store.edits
        await _command(pilot, "route-test bookinfo/reviews uri=/")
        assert _said(app).startswith("route-test bookinfo/reviews: the default rule 0")


async def test_a_fault_ends_at_its_time_through_the_workflow(sim: Simulation, clock: Clock) -> None:
    store = Objects(sim.clusters[next(iter(sim.clusters))].store, reviews())
    app = _app(sim, store)
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await _command(pilot, "fault bookinfo/reviews --abort 503:10% --for 1s")
        screen = await _confirm(pilot)
        ends = datetime.fromtimestamp(clock(), UTC) + timedelta(seconds=1)
        assert f"+annotation meshtop.io/fault-expires: {ends.isoformat(timespec='seconds')}" in (
            screen.lines
        )
        await keys(pilot, "y")
        await settled(pilot)
        vs = store.objects[("VirtualService", "bookinfo", "reviews")]
        assert vs["spec"]["http"][0]["fault"]["abort"]["httpStatus"] == 503
        clock.advance(2)  # the console's timer, in real time, finds it past its end
        key = ("VirtualService", "bookinfo", "reviews")
        gone = lambda: "fault" not in store.objects[key]["spec"]["http"][0]  # noqa: E731
        await until(pilot, gone, "the fault removed")
        await settled(pilot)
        assert _said(app) == "the fault on bookinfo/reviews reached its end: removed (audited)"
        entry = _audit()[-1]
        assert entry["by"] == "expiry" and entry["outcome"] == "applied"


async def test_a_conflict_is_said_in_place_and_nothing_is_overwritten(sim: Simulation) -> None:
    store = Objects(sim.clusters[next(iter(sim.clusters))].store, reviews())
    app = _app(sim, store)
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        await _command(pilot, "timeout bookinfo/reviews 2s")
        await _confirm(pilot)
        theirs = store.objects[("VirtualService", "bookinfo", "reviews")]
        theirs["spec"]["http"][0]["timeout"] = "9s"  # someone else, meanwhile
        theirs["metadata"]["resourceVersion"] = "7"
        await keys(pilot, "y")
        await settled(pilot)
        assert "nothing was written to VirtualService bookinfo/reviews: conflict" in _said(app)
        assert theirs["spec"]["http"][0]["timeout"] == "9s"
