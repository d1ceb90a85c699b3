"""Time travel in a real terminal (issue 19): `:at -10m` on the demo shows the mesh ten
minutes ago, marked `AT 10:02 (−10m)` in reverse video (readable without colour too),
`[` and `]` step by the window, past now and `esc` are live again; `:compare` says what
changed since."""

# the status line writes a moment ago with a minus sign (U+2212), as the issue does
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest

from .term import Terminal

MARK = re.compile(r"AT (\d\d:\d\d) \(−(\d+)m\)")


def _clock(minutes_ago: float) -> set[str]:
    """The moment `minutes_ago`, as the status line may say it (a minute may turn)."""
    now = time.time() - minutes_ago * 60
    return {datetime.fromtimestamp(now + d).strftime("%H:%M") for d in (-60, 0, 60)}


def _reverse(t: Terminal, needle: str) -> bool:
    return all(c.reverse for c in t.cells_of(needle))


@pytest.mark.parametrize(("cols", "rows", "env"), [(80, 24, {}), (160, 48, {"NO_COLOR": "1"})])
def test_at_ten_minutes_ago_is_marked_and_brackets_and_esc_go_back(
    cols: int, rows: int, env: dict[str, str]
) -> None:
    with Terminal(["demo"], cols=cols, rows=rows, env=env) as t:
        t.ready()
        t.command("at -10m")
        found = t.wait_for_re(MARK.pattern)
        assert found.group(1) in _clock(10) and found.group(2) == "10", found.group(0)
        assert _reverse(t, found.group(0)), "the moment is not in reverse video"
        # the snapshot's time is the moment's, not now
        assert re.search(rf"\b{found.group(1)}:\d\d\b", t.lines()[t.row_of("AT ") or 0])
        t.press("[")  # one window (1m) further back
        t.wait_for_re(r"AT \d\d:\d\d \(−11m\)")
        t.press("]")
        t.wait_for_re(r"AT \d\d:\d\d \(−10m\)")
        t.press("esc")  # back to live
        t.wait_gone("AT ")
        t.wait_for_re(r"\d+ edges")
        t.press("[")  # from live: one window back
        t.wait_for_re(r"AT \d\d:\d\d \(−1m\)")
        t.press("]")  # now again: live
        t.wait_gone("AT ")


def test_a_moment_in_the_future_or_nonsense_is_one_line_in_place() -> None:
    with Terminal(["demo"], cols=80, rows=24) as t:
        t.ready()
        t.command("at 2999-01-01T00:00:00Z")
        t.wait_for("is in the future")
        t.command("at yesterday")
        t.wait_for("is not a moment")
        assert "AT " not in t.text()


def test_compare_says_what_changed_since_a_moment_before() -> None:
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.ready()
        t.command("compare -10m")
        t.wait_for_re(r"vs \d\d:\d\d \(−10m\): \d+ edges, 0 new, 0 gone; rps [\d.]+rps → ")
        t.wait_for_re(r"compare \d\d:\d\d")  # the status line says what it compares with
        t.command("compare off")
        t.wait_gone("vs ")


@pytest.mark.parametrize(("cols", "rows"), [(80, 24), (160, 48)])
def test_compare_shows_a_weight_shift_on_the_reviews_edges(cols: int, rows: int) -> None:
    """All of reviews shifted to v1 on the demo: `:compare -5m` puts beside each edge how
    it moved, v1's calls up by what v2 and v3 had, their calls rows of their own, gone,
    with their figures then; at 80 columns the changes at least, at 160 the figures then
    too."""
    with Terminal(["demo", "--window", "10s", "--refresh", "1s"], cols=cols, rows=rows) as t:
        t.ready()
        t.press("3")
        t.wait_for("VirtualService bookinfo/reviews")
        t.press("down", "w")
        t.wait_for("Shift VirtualService bookinfo/reviews", "▸ v1")
        t.press("4", "enter")  # v1 to 100%
        t.wait_for("+   reviews v1: weight 100", "y apply")
        t.press("y")
        t.wait_for("applied to VirtualService bookinfo/reviews")
        t.wait_for_re(r"\b6 edges")  # v2's and v3's calls left the 10s window
        t.command("compare -5m")
        t.wait_for_re(r"vs \d\d:\d\d \(−5m\): 6 edges, 0 new, 4 gone")
        t.press("2")
        t.wait_for("SOURCE", "ΔRPS", "ΔERR")
        then = r"\s+[\d.]+rps\s+[\d.]+rps" if cols >= 160 else r"\s+[\d.]+rps"
        # v1 had 70% of the calls: all of them is +43%, more than the traffic's drift
        up = t.wait_for_re(rf"ok\s+productpage-v1\s+reviews-v1{then}\s+\+(\d+)%")
        assert int(up.group(1)) >= 20, up.group(0)
        for callee in ("reviews-v2", "reviews-v3"):
            t.wait_for_re(rf"gone\s+productpage-v1\s+{callee}\s+[\d.]+rps\s+gone")
            t.wait_for_re(rf"gone\s+{callee}\s+ratings-v1\s+[\d.]+rps\s+gone")
        # v3's error rate then, said once: in its own column at 160, in ERR% at 80
        failing = t.wait_for_re(
            r"gone\s+productpage-v1\s+reviews-v3\s+[\d.]+rps\s+gone\s+([\d.]+)%"
        )
        assert float(failing.group(1)) > 5, failing.group(0)
        t.command("compare off")
        t.wait_gone("ΔRPS")
        t.wait_gone("gone ")
