"""Time travel driven by keys and commands (issue 19): the whole console at a moment,
every metrics source moved there and back; compare mode beside a moment before; and the
words `:at` takes."""

# the status line writes a moment ago with a minus sign (U+2212), as the issue does
# ruff: noqa: RUF001

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from meshtop.connect import Sources
from meshtop.errors import UsageError
from meshtop.model import EdgeStats
from meshtop.model import Protocol as Proto
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.travel import ago, moment_words, parse_moment, then_cells, then_order
from meshtop.tui.widgets.edge_table import EdgeTable
from meshtop.tui.widgets.notice import Notice

from ..conftest import Clock, only
from .test_console import _edges_tab, _first_snapshot, _rows, keys, until

NS = "Kubernetes/bookinfo/"
V3 = (NS + "productpage-v1", NS + "reviews-v3")


def _shifted_to_v1_ten_minutes_ago(sim: Simulation, clock: Clock) -> float:
    clock.advance(-600)
    sim.set_weights("bookinfo", "reviews", {"v1": 100, "v2": 0, "v3": 0})
    changed = clock()
    clock.advance(600)
    return changed


async def test_at_shows_the_mesh_then_and_esc_is_live_again(sim: Simulation, clock: Clock) -> None:
    _shifted_to_v1_ten_minutes_ago(sim, clock)
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        assert app.snapshot is not None and app.snapshot.edge(*V3) is None  # v3 gets none now
        app.main.run_command("at -15m")
        at = clock() - 900
        await until(pilot, lambda: app.snapshot is not None, "the snapshot at -15m")
        await _first_snapshot(app)
        snapshot = app.snapshot
        assert snapshot is not None and snapshot.edge(*V3) is not None  # before the shift
        assert abs(snapshot.generated_at.timestamp() - at) < 5
        assert app.metrics.at is not None  # type: ignore[attr-defined]
        await keys(pilot, "escape")
        await until(pilot, lambda: app.main.travel.at is None and app.snapshot is not None,
                    "live again")  # fmt: skip
        await _first_snapshot(app)
        assert app.snapshot is not None and app.snapshot.edge(*V3) is None
        assert app.metrics.at is None  # type: ignore[attr-defined]


async def test_compare_lists_the_vanished_edge_and_the_route_change(
    sim: Simulation, clock: Clock
) -> None:
    changed = _shifted_to_v1_ten_minutes_ago(sim, clock)
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        app.main.run_command("compare -15m")

        def said() -> str:
            return "\n".join(app.main.query_one(Notice).content.plain.splitlines())  # type: ignore[union-attr]

        await until(pilot, lambda: "gone:" in said(), "compare mode's lines")
        text = said()
        assert "(−15m)" in text and "0 new, 4 gone" in text, text
        assert "productpage-v1→reviews-v3" in text, text
        at = datetime.fromtimestamp(changed).strftime("%H:%M")
        assert f"◆ {at} VirtualService reviews generation 2 (kubectl)" in text, text
        app.main.run_command("compare off")
        await until(pilot, lambda: "gone:" not in said(), "compare mode off")


def _headers(app: MeshtopApp) -> list[str]:
    return [str(c.label) for c in app.query_one(EdgeTable).columns.values()]


def _row(app: MeshtopApp, source: str, destination: str) -> dict[str, str]:
    headers = ["health", *(h.removesuffix(" ▼").removesuffix(" ▲") for h in _headers(app)[1:])]
    found = [r for r in _rows(app) if r[1:3] == [source, destination]]
    assert len(found) == 1, _rows(app)
    return dict(zip(headers, found[0], strict=True))


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_compare_puts_the_figures_then_beside_now_in_the_edge_table(
    sim: Simulation, clock: Clock, size: tuple[int, int]
) -> None:
    """Reviews shifted to v1 ten minutes ago: beside a moment before it, v1's calls rose
    and v3's are rows of their own, gone, with their figures then; `:sort Δerr` and `S`
    sort by the change; `:compare off` takes the columns and the rows away."""
    _shifted_to_v1_ten_minutes_ago(sim, clock)
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=size) as pilot:
        await _first_snapshot(app)
        await _edges_tab(pilot)
        plain = _headers(app)
        assert not any("THEN" in h or "Δ" in h for h in plain), plain
        app.main.run_command("compare -15m")
        table = app.query_one(EdgeTable)
        await until(pilot, lambda: "ΔRPS" in _headers(app) and table.fitted, "compare columns")
        headers = _headers(app)
        assert {"ΔRPS", "ΔERR"} <= set(headers), headers  # at 80 columns too
        wide = size[0] >= 160
        assert ({"RPS THEN", "ERR THEN", "P99 THEN", "ΔP99"} <= set(headers)) is wide, headers
        v1 = _row(app, "productpage-v1", "reviews-v1")
        assert v1["ΔRPS"].startswith("+") and v1["ΔRPS"].endswith("%"), v1
        assert v1["ΔERR"] == "=", v1
        v3 = _row(app, "productpage-v1", "reviews-v3")
        assert v3["health"] == "gone" and v3["ΔRPS"] == "gone" and v3["ΔERR"] == "gone", v3
        then = v3["ERR THEN"] if wide else v3["ERR%"]  # its error rate then, said once
        assert then.endswith("%") and float(then.rstrip("%")) > 5, v3
        if wide:
            assert v3["ERR%"] == "" and v3["RPS"] == "" and v3["RPS THEN"].endswith("rps"), v3
        assert _row(app, "reviews-v3", "ratings-v1")["health"] == "gone"
        assert [r[0] for r in _rows(app)][-2:] == ["gone", "gone"]  # after the live edges
        app.main.run_command("sort Δrps")
        await until(pilot, lambda: table.fitted, "sorted by Δrps")
        assert "ΔRPS ▼" in _headers(app) and table.sort_said == "Δrps ▼"
        assert [r[0] for r in _rows(app)][-2:] == ["gone", "gone"]  # gone: the least
        await keys(pilot, "S")
        await until(pilot, lambda: table.fitted, "reversed")
        assert [r[0] for r in _rows(app)][:2] == ["gone", "gone"]  # the drops first
        app.main.run_command("sort derr desc")  # Δ is hard to type: d for it
        await until(pilot, lambda: table.fitted, "sorted by Δerr")
        assert table.sort_said == "Δerr ▼"
        app.main.run_command("compare off")
        await until(pilot, lambda: "ΔRPS" not in _headers(app) and table.fitted, "columns gone")
        assert table.sort_said == "health ▼"  # its column gone: worst first again
        assert all(r[0] != "gone" for r in _rows(app)), _rows(app)
        assert _headers(app) == plain


def test_compare_cells_say_the_change_new_and_gone() -> None:
    was = EdgeStats(rps=10.0, error_rate=0.01, p99_ms=40.0)
    now = EdgeStats(rps=12.5, error_rate=0.031, p99_ms=52.0)
    assert then_cells(now, was) == {"rps-then": "10.0rps", "Δrps": "+25%",
                                    "err-then": "1.00%", "Δerr": "+2.10pp",
                                    "p99-then": "40ms", "Δp99": "+12ms"}  # fmt: skip
    assert then_cells(was, now)["Δerr"] == "−2.10pp"
    assert set(then_cells(now, None).values()) == {"-", "new"}
    gone = then_cells(None, was)
    assert gone["rps-then"] == "10.0rps" and gone["Δrps"] == gone["Δerr"] == "gone"
    tcp = EdgeStats(protocol=Proto.TCP, tcp_connections_per_s=2.0)
    assert then_cells(replace(tcp, tcp_connections_per_s=3.0), tcp)["Δrps"] == "+50%"
    # sorted largest first: a new edge's change the most, a gone one's the least
    assert then_order(now, None)["Δrps"] > then_order(now, was)["Δrps"] == 0.25
    assert then_order(None, was)["Δerr"] < then_order(was, now)["Δerr"] < 0


def test_at_takes_a_time_ago_a_clock_time_today_an_rfc3339_time_or_now() -> None:
    now = datetime(2026, 11, 25, 10, 32, 0).timestamp()
    assert parse_moment("now", now) is None
    assert parse_moment("-30m", now) == now - 1800
    assert parse_moment("10:02", now) == datetime(2026, 11, 25, 10, 2).timestamp()
    assert parse_moment("10:02:30", now) == datetime(2026, 11, 25, 10, 2, 30).timestamp()
    assert (
        parse_moment("2026-11-25T09:00:00Z", now + 86400)
        == datetime.fromisoformat("2026-11-25T09:00:00+00:00").timestamp()
    )
    for bad, why in [("10:45", "in the future"), ("soon", "is not a moment"),
                     ("-x", "that long ago"), ("2026-11-25T09:00:00", "time zone"),
                     ("1999-01-01T00:00:00Z", "not a moment a mesh")]:  # fmt: skip
        with pytest.raises(UsageError, match=why):
            parse_moment(bad, now)


def test_the_moment_reads_as_the_issue_writes_it() -> None:
    now = datetime(2026, 11, 25, 10, 32, 0).timestamp()
    assert moment_words(now - 1800, now) == ("AT 10:02 (−30m)", "AT 10:02")
    assert moment_words(now - 86400 - 3600, now)[0] == "AT 2026-11-24 09:32 (−1d1h)"
    assert [ago(s) for s in (45, 5400, 7200)] == ["−45s", "−1h30m", "−2h"]
