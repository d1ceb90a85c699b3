"""The posture tab (5) and :mtls on the simulated mesh: each namespace's and workload's
mode beside its traffic, what STRICT would refuse; STRICT previewed, written through the
change workflow (audited), the caller's calls refused by the next refresh, and :undo
taking back the last change of the session, whichever kind; --read-only, no control
plane, a change made meanwhile, and outside text."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from meshtop.config import Settings
from meshtop.connect import Sources
from meshtop.errors import BackendError
from meshtop.posture import MtlsMode, PeerAuthentication, SecurityConfig
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, spread
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.confirm import ConfirmScreen
from meshtop.tui.screens.shift import ShiftScreen

from ..conftest import Clock, only
from .test_console import _first_snapshot, keys, settled, until

UNKNOWN = "unknown/unknown/unknown"
PRODUCTPAGE = "Kubernetes/bookinfo/productpage-v1"


def _app(sim: Simulation, **kw: object) -> MeshtopApp:
    return MeshtopApp(Sources(only(sim.clusters, writable=True), True, sim.clock), **kw)  # type: ignore[arg-type]


def _rows(app: MeshtopApp) -> dict[str, list[str]]:
    """The posture table's rows by their first cell, stripped."""
    table = app.query_one("#posture", DataTable)
    rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
    return {r[0].strip(): r for r in rows}


def _line(app: MeshtopApp) -> str:
    return str(app.query_one("#posture-said", Static).render())


def _notice(app: MeshtopApp) -> str:
    return str(app.query_one("#notice").render())


def _mode(sim: Simulation) -> MtlsMode:
    (policy,) = [p for p in sim.security[""].policies() if p.namespace == "bookinfo"]
    return policy.mode


async def _posture_tab(app: MeshtopApp, pilot: Pilot[None]) -> None:
    await keys(pilot, "5")
    table = app.query_one("#posture", DataTable)
    await until(pilot, lambda: table.row_count > 0, "the posture tab's rows")


async def _command(pilot: Pilot[None], line: str) -> None:
    await keys(pilot, "colon", *line, "enter")
    await settled(pilot)


def _refusals(app: MeshtopApp) -> float:
    """The error rate of the unmeshed caller's calls into productpage, as last refreshed."""
    assert app.snapshot is not None
    (edge,) = [e for e in app.snapshot.edges if e.key == (UNKNOWN, PRODUCTPAGE)]
    return edge.stats.error_rate


async def _refreshed(app: MeshtopApp, pilot: Pilot[None]) -> None:
    before = app.snapshot
    app.request_refresh()
    await until(pilot, lambda: app.snapshot is not before, "a refresh")
    await settled(pilot)


async def test_the_tab_shows_each_mode_beside_the_traffic_and_what_strict_refuses(
    sim: Simulation,
) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        await _posture_tab(app, pilot)
        rows = _rows(app)
        assert rows["bookinfo"][1:3] == ["PERMISSIVE", "1 plaintext caller (unknown)"]
        refused = rows["bookinfo"][3]  # its rate over the window
        assert refused.startswith("unknown ") and refused.endswith("rps"), refused
        assert rows["productpage-v1"][1:3] == ["PERMISSIVE", "1 plaintext caller (unknown)"]
        assert rows["details-v1"][1:4] == ["PERMISSIVE", "100% mTLS", "none"]
        assert rows["legacy-batch (VM)"][1] == "PERMISSIVE"  # a WorkloadEntry, outside Kubernetes
        assert ":mtls NAMESPACE[/WORKLOAD] strict|permissive" in _line(app)


async def test_strict_is_previewed_written_refuses_the_caller_and_undo_restores_it(
    sim: Simulation,
) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 34)) as pilot:
        await _first_snapshot(app)
        assert _refusals(app) == 0.0
        await _command(pilot, "mtls bookinfo strict")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert "STRICT would refuse 1 plaintext caller (unknown):" in screen.lines
        assert "  bookinfo/productpage-v1: PERMISSIVE → STRICT" in screen.lines
        assert _mode(sim) is MtlsMode.PERMISSIVE  # shown first: nothing written before `y`
        await keys(pilot, "y")
        await settled(pilot)
        assert _mode(sim) is MtlsMode.STRICT
        assert "bookinfo is STRICT; :undo takes it back" in _notice(app)
        await _refreshed(app, pilot)
        assert _refusals(app) == 1.0  # the unmeshed caller's calls are refused: 503s
        await _posture_tab(app, pilot)
        rows = _rows(app)
        assert rows["productpage-v1"][1:3] == [
            "STRICT",
            "1 plaintext caller (unknown): 100% refused",
        ]
        assert rows["productpage-v1"][4].startswith("unknown calls bookinfo/productpage-v1")
        await _command(pilot, "undo")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert screen.lines[1:3] == ["-   mode: STRICT", "+   mode: PERMISSIVE"]
        assert _mode(sim) is MtlsMode.STRICT
        await keys(pilot, "y")
        await settled(pilot)
        assert _mode(sim) is MtlsMode.PERMISSIVE
        assert "undone: bookinfo is back to what it was" in _notice(app)
        await _refreshed(app, pilot)
        assert _refusals(app) == 0.0
        log = Path(os.environ["XDG_STATE_HOME"]) / "meshtop" / "audit.jsonl"
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        assert [(e["by"], e["outcome"], e["resource"], e["after"]["mode"]) for e in lines] == [
            ("console", "about to apply", "PeerAuthentication bookinfo/default", "STRICT"),
            ("console", "applied", "PeerAuthentication bookinfo/default", "STRICT"),
            ("undo", "about to apply", "PeerAuthentication bookinfo/default", "PERMISSIVE"),
            ("undo", "applied", "PeerAuthentication bookinfo/default", "PERMISSIVE"),
        ]


async def test_a_workload_is_made_strict_by_a_policy_of_its_own_and_undo_deletes_it(
    sim: Simulation,
) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 34)) as pilot:
        await _first_snapshot(app)
        await _command(pilot, "mtls bookinfo/productpage-v1 STRICT")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert screen.lines[0].endswith(
            "PeerAuthentication bookinfo/productpage-v1-mtls is created"
        )
        await keys(pilot, "y")
        await settled(pilot)
        made = {p.name: p.mode for p in sim.security[""].policies() if p.namespace == "bookinfo"}
        assert made == {"default": MtlsMode.PERMISSIVE, "productpage-v1-mtls": MtlsMode.STRICT}
        await _command(pilot, "undo")
        assert isinstance(app.screen, ConfirmScreen)
        await keys(pilot, "y")
        await settled(pilot)
        left = {p.name for p in sim.security[""].policies() if p.namespace == "bookinfo"}
        assert left == {"default"}


async def test_undo_takes_back_the_last_change_whichever_kind(sim: Simulation) -> None:
    """A mode, then weights: :undo takes the weights back and leaves the mode; the other
    way round, the mode back and the weights left."""
    app = _app(sim)

    def weights() -> list[int]:
        return [d.weight for d in sim.route("bookinfo", "reviews").rules[0].destinations]

    async with app.run_test(size=(120, 34)) as pilot:
        await _first_snapshot(app)
        await _command(pilot, "mtls bookinfo strict")
        await keys(pilot, "y")
        await settled(pilot)
        await keys(pilot, "3")
        await settled(pilot)
        table = app.query_one("#routes", DataTable)
        row = next(i for i in range(table.row_count) if str(table.get_row_at(i)[3]) == "reviews v3")
        table.move_cursor(row=row)
        await keys(pilot, "w")
        await until(pilot, lambda: isinstance(app.screen, ShiftScreen), "the shift dialog")
        await keys(pilot, "right_square_bracket", "enter", "y")
        await settled(pilot)
        assert weights() == [60, 20, 20] and _mode(sim) is MtlsMode.STRICT
        await _command(pilot, "undo")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen) and "reviews" in screen.title_text
        await keys(pilot, "y")
        await settled(pilot)
        assert weights() == [70, 20, 10] and _mode(sim) is MtlsMode.STRICT
        await _command(pilot, "undo")  # one change back only: the weights were the last
        assert "nothing to undo" in _notice(app) and _mode(sim) is MtlsMode.STRICT
        await _command(pilot, "mtls bookinfo permissive")
        await keys(pilot, "y")
        await settled(pilot)
        await _command(pilot, "undo")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen) and "bookinfo/default" in screen.title_text
        await keys(pilot, "y")
        await settled(pilot)
        assert _mode(sim) is MtlsMode.STRICT and weights() == [70, 20, 10]


async def test_read_only_says_so_in_place_and_writes_nothing(sim: Simulation) -> None:
    app = _app(sim, settings=Settings(read_only=True))
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        await _posture_tab(app, pilot)
        assert "read-only: the modes are shown, not changed" in _line(app)
        await _command(pilot, "mtls bookinfo strict")
        assert not isinstance(app.screen, ConfirmScreen)
        assert "read-only: :mtls writes nothing here" in _notice(app)
        assert _mode(sim) is MtlsMode.PERMISSIVE


async def test_bad_words_are_said_in_one_line(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(160, 30)) as pilot:
        await _first_snapshot(app)
        for line, said in (
            ("mtls bookinfo", "mtls takes NAMESPACE[/WORKLOAD] and one of strict, permissive"),
            ("mtls bookinfo disable", "mtls takes NAMESPACE[/WORKLOAD] and one of strict"),
            ("mtls Book_Info strict", "'Book_Info' is not a Kubernetes namespace"),
            ("mtls bookinfo/nothing strict", "no workload nothing in namespace bookinfo"),
            ("mtls istio-system permissive", "nothing to change: istio-system is PERMISSIVE"),
        ):
            await _command(pilot, line)
            assert said in _notice(app), (line, _notice(app))
            assert not isinstance(app.screen, ConfirmScreen)
        assert all(p.mode is MtlsMode.PERMISSIVE for p in sim.security[""].policies())


async def test_a_change_made_meanwhile_is_a_conflict_and_nothing_is_written(
    sim: Simulation,
) -> None:
    app = _app(sim)
    async with app.run_test(size=(160, 34)) as pilot:
        await _first_snapshot(app)
        await _command(pilot, "mtls bookinfo strict")
        assert isinstance(app.screen, ConfirmScreen)
        # someone else, between the preview and `y`
        sim.security[""].set_policy(PeerAuthentication("bookinfo", "default", MtlsMode.DISABLE))
        await keys(pilot, "y")
        await settled(pilot)
        assert "nothing was written: conflict" in _notice(app)
        assert _mode(sim) is MtlsMode.DISABLE
        await _command(pilot, "undo")
        assert "nothing to undo" in _notice(app)


async def test_without_a_control_plane_the_tab_and_the_command_say_where_it_is_read(
    sim: Simulation,
) -> None:
    clusters = {c: replace(s, security=None) for c, s in only(sim.clusters).items()}
    app = MeshtopApp(Sources(clusters, True, sim.clock))
    async with app.run_test(size=(160, 30)) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "5")
        await until(pilot, lambda: "--context" in _line(app), "the tab's line")
        assert app.query_one("#posture", DataTable).row_count == 0
        await _command(pilot, "mtls bookinfo strict")
        assert "no control plane to write to" in _notice(app)


class _Hostile:
    """A cluster's security source that answers with an error holding control characters."""

    name = "hostile"

    async def security(self) -> SecurityConfig:
        raise BackendError("refused \x1b]0;owned\x07 \x1b[2J")

    async def apply(self, plan: object, *, dry_run: bool = False) -> None:
        raise AssertionError("never written")


async def test_outside_text_in_the_tab_is_shown_never_obeyed(sim: Simulation) -> None:
    clusters = {c: replace(s, security=_Hostile()) for c, s in only(sim.clusters).items()}
    app = MeshtopApp(Sources(clusters, True, sim.clock))
    async with app.run_test(size=(160, 30)) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "5")
        await until(pilot, lambda: "refused" in _line(app), "the tab's line")
        line = _line(app)
        assert "cannot read its configuration: refused ␛]0;owned␇ ␛[2J" in line
        assert "\x1b" not in line and "\x07" not in line


def test_a_long_preview_lists_the_first_ones_and_how_many_more() -> None:
    """A namespace of many workloads: its preview still fits a screen, `y` on it."""
    from meshtop.tui.changes import condensed

    lines = ["workloads whose effective mode changes:", *(f"  w{i}: A → B" for i in range(9))]
    lines += ["STRICT would refuse 2 plaintext callers (a, b):", "  a: 1rps", "  b: 1rps"]
    assert condensed(lines, most=3) == [
        "workloads whose effective mode changes:", "  w0: A → B", "  w1: A → B", "  w2: A → B",
        "  … and 6 more",
        "STRICT would refuse 2 plaintext callers (a, b):", "  a: 1rps", "  b: 1rps",
    ]  # fmt: skip


async def test_over_several_clusters_each_copy_is_shown_by_name_written_and_undone(
    clock: Clock,
) -> None:
    sim = Simulation(spread(bookinfo(), ("east", "west")), clock=clock)
    app = MeshtopApp(Sources(only(sim.clusters, writable=True), True, sim.clock))

    def modes() -> dict[str, MtlsMode]:
        return {
            c: next(
                p.mode for p in s.policies() if (p.namespace, p.name) == ("bookinfo", "default")
            )
            for c, s in sim.security.items()
        }

    async with app.run_test(size=(160, 40)) as pilot:
        await _first_snapshot(app)
        await _posture_tab(app, pilot)
        assert {"east/bookinfo", "west/bookinfo"} <= set(_rows(app))
        await _command(pilot, "mtls bookinfo strict")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert "east:" in screen.lines and "west:" in screen.lines
        await keys(pilot, "y")
        await settled(pilot)
        assert modes() == {"east": MtlsMode.STRICT, "west": MtlsMode.STRICT}
        assert "bookinfo is STRICT in east, west" in _notice(app)
        await _command(pilot, "undo")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert screen.lines[0] == "east:" and "west:" in screen.lines
        await keys(pilot, "y")
        await settled(pilot)
        assert modes() == {"east": MtlsMode.PERMISSIVE, "west": MtlsMode.PERMISSIVE}
