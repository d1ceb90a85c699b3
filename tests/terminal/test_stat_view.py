"""The stat tab (`4`, issue 19) as the operator sees it in a real terminal: on `meshtop
demo`, one row per node, the failing `reviews v3` first with its errors per second and a
sparkline; at 80 columns the inbound figures and the sparkline stay; `s` moves the sort
and its marker; `enter` opens the node; `g` regroups the rows."""

from __future__ import annotations

import re

from .term import Terminal

SPARK = "[ ▁▂▃▄▅▆▇█]*[▁▂▃▄▅▆▇█]"  # the sparkline: at least one point seen


def _names(t: Terminal) -> list[str]:
    """The rows' names as drawn, top to bottom (a name's first word)."""
    return [line.split()[1] for line in t.lines() if re.match(r"\s*(FAIL|warn|ok|idle)\s", line)]


def test_worst_first_with_errors_per_second_and_a_sparkline_at_80x24() -> None:
    with Terminal(["demo"], cols=80, rows=24) as t:
        t.ready()
        t.press("4")
        t.wait_for_re(r"▼\s+NAME\s+SR\s+RPS\s+ERR/S\s+P99\s+MTLS\s+LAST 1m")
        first = t.wait_for_re(
            r"\n\s*(FAIL|warn)\s+reviews v3\s+\d+\.\d+%\s+\d+\.\d+rps\s+(\d+\.\d+)/s\s+\d+ms\s+"
            r"yes\s+" + SPARK
        )
        assert float(first.group(2)) > 0
        t.wait("reviews v3 first", lambda: _names(t)[:1] == ["reviews"])
        # a row per node, every line within the screen
        every = {"reviews", "productpage", "details", "ratings", "unknown"}
        t.wait("a row per node", lambda: every <= set(_names(t)))
        assert all(len(line) <= 80 for line in t.lines())


def test_sort_marker_enter_and_grouping_at_160x48() -> None:
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.ready()
        t.press("4")
        t.wait_for_re(r"OUT SR\s+OUT RPS\s+OUT ERR/S\s+OUT P99\s+LAST 1m")
        # productpage: what it answers, and what it calls (errors from reviews v3)
        t.wait_for_re(
            r"productpage v1\s+100\.00%\s+\d+\.\drps\s+0/s\s+.*\d+\.\d+%\s+\d+\.\drps\s+\d\.\d+/s"
        )
        t.press("s")  # the name, A to Z
        t.wait_for_re(r"NAME▲")
        t.wait("the rows A to Z", lambda: _names(t) == sorted(_names(t), key=str.casefold))
        t.press("s", "s", "s")  # SR, RPS, then ERR/S: the most failed requests a second first
        t.wait_for_re(r"ERR/S▼")
        t.wait_for_re(r"\n\s*(FAIL|warn)\s+reviews v3 ")
        t.press("enter")  # the first row: reviews v3's detail
        t.wait_for_re(r"reviews v3   window 15m(.|\n)*\S*/bookinfo · workload · reviews-v3")
        t.wait_for("Requests", "Latency")
        t.press("esc")
        t.wait_for_re(r"ERR/S▼")
        t.press("g")  # versioned apps -> apps: reviews is one row
        t.wait_for_re(r"\n\s*(FAIL|warn)\s+reviews\s+\d+\.\d+%\s+\d+\.\drps")
        assert "reviews v3" not in t.text()
