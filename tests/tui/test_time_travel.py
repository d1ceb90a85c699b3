"""Time travel driven by keys and commands (issue 19): the whole console at a moment,
every metrics source moved there and back; compare mode beside a moment before; and the
words `:at` takes."""

# the status line writes a moment ago with a minus sign (U+2212), as the issue does
# ruff: noqa: RUF001

from __future__ import annotations

from datetime import datetime

import pytest

from meshtop.connect import Sources
from meshtop.errors import UsageError
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.travel import ago, moment_words, parse_moment
from meshtop.tui.widgets.notice import Notice

from ..conftest import Clock, only
from .test_console import _first_snapshot, keys, until

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
