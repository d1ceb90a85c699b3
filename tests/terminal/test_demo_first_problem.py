"""The done-when of issue 19 on the demo, in a real terminal: the first `n` selects
reviews v3, the failing node, and the status line says so, whenever it is pressed."""

from __future__ import annotations

import pytest

from tests.terminal.term import Terminal


@pytest.mark.parametrize(("cols", "rows"), [(80, 24), (160, 48)])
def test_the_first_n_on_the_demo_selects_reviews_v3_failing(cols: int, rows: int) -> None:
    with Terminal(["demo", "--window", "10s", "--refresh", "1s"], cols=cols, rows=rows) as t:
        t.ready()
        t.press("n")
        t.wait_for_re(r"1/1:? reviews v3 failing, ")
