"""`j` and `k` move down and up a table's rows in a real terminal, as they move in the
graph and the waterfall: the edge table, the routes tab and the trace list, without
colour (the highlighted row told apart from the zebra stripes by its background). And
the mouse: a click on a row of the edge table highlights it, on a header sorts by it."""

from __future__ import annotations

import re
from collections.abc import Callable

from .term import Terminal

# a table: its header's word, and its rows' pattern (the row's name in its groups)
Table = tuple[str, re.Pattern[str]]
EDGE: Table = ("DESTINATION", re.compile(r"^\s*\S+\s+(\S+)\s+(\S+)\s+\d[\d.]*k?(?:rps|c/s)\s"))
ROUTE: Table = ("destination", re.compile(r"\s(\S+ v\d)\s+\d+\b"))  # and its weight
TRACE: Table = ("trace id", re.compile(r"\b[0-9a-f]{32}\b"))
RATE = re.compile(r"\s(\d+(?:\.\d+)?)rps\s")  # the edge table's requests a second


def _rows(t: Terminal, table: Table) -> list[tuple[int, str]]:
    """(line, the row's name) of each row of the table, top to bottom (below its header:
    the status line above names the selection too)."""
    header, row = table
    lines = t.lines()
    top = next((y for y, line in enumerate(lines) if header in line), len(lines))
    found = []
    for y, line in enumerate(lines[top + 1 :], top + 1):
        m = row.search(line)
        if m:
            found.append((y, " ".join(m.groups()) or m.group(0)))
    return found


def _highlighted(t: Terminal, table: Table) -> str | None:
    """The name of the one row whose background no other row has (the others are the
    zebra's two), or None while fewer than three rows show or none stands out."""
    rows = _rows(t, table)
    if len(rows) < 3:
        return None
    lines = t.lines()
    bgs = [t.cell(len(lines[y]) - len(lines[y].lstrip()), y).bg for y, _ in rows]
    alone = [name for (_, name), bg in zip(rows, bgs, strict=True) if bgs.count(bg) == 1]
    return alone[0] if len(alone) == 1 else None


def _j_and_k(t: Terminal, table: Table) -> None:
    t.wait("a highlighted row", lambda: _highlighted(t, table) is not None)
    names = [name for _, name in _rows(t, table)]
    first = _highlighted(t, table)
    assert first is not None
    at = names.index(first)
    assert at + 1 < len(names), f"the highlighted row is the last:\n{t.text()}"
    below = names[at + 1]

    def is_now(name: str) -> Callable[[], bool]:
        return lambda: _highlighted(t, table) == name

    t.press("j")
    t.wait(f"j: {below} highlighted", is_now(below))
    t.press("k")
    t.wait(f"k: {first} highlighted again", is_now(first))


def _paused_edge_table(t: Terminal) -> None:
    t.ready()
    t.press("p")  # paused: no refresh reorders the rows meanwhile
    t.wait_for("PAUSED")
    t.press("2")
    t.wait_for("SOURCE", "DESTINATION")


def test_j_and_k_move_through_the_edge_table_and_the_routes_at_80x24() -> None:
    with Terminal(["demo"], cols=80, rows=24, env={"NO_COLOR": "1"}) as t:
        _paused_edge_table(t)
        _j_and_k(t, EDGE)
        t.press("3")
        t.wait_for("VirtualService bookinfo/reviews")
        _j_and_k(t, ROUTE)


def test_a_click_highlights_an_edge_tables_row_and_a_header_sorts_at_80x24() -> None:
    """The cells carry no mouse place of their own (`FastRows._place` works it out from
    where the mouse is): a click must still land on the row and the column under it."""
    with Terminal(["demo"], cols=80, rows=24, env={"NO_COLOR": "1"}) as t:
        _paused_edge_table(t)
        t.wait("a highlighted row", lambda: _highlighted(t, EDGE) is not None)
        first = _highlighted(t, EDGE)
        y, name = next((y, n) for y, n in _rows(t, EDGE)[2:] if n != first)
        t.click(t.column_in(y, name.split()[1]), y)  # on its destination's name
        t.wait(f"{name} highlighted by a click", lambda: _highlighted(t, EDGE) == name)
        head = t.row_of("DESTINATION")
        assert head is not None
        assert "RPS ▼" not in t.lines()[head]
        t.click(t.column_in(head, "RPS"), head)
        t.wait_for_re(r"DESTINATION.*RPS ▼")
        rates = [float(m.group(1)) for m in map(RATE.search, t.lines()[head + 1 :]) if m]
        assert len(rates) >= 3 and rates == sorted(rates, reverse=True), t.text()


def test_j_and_k_move_through_the_trace_list() -> None:
    with Terminal(["demo"], cols=120, rows=40, env={"NO_COLOR": "1"}) as t:
        t.ready()
        t.press("2")
        t.wait_for("SOURCE", "DESTINATION")
        t.press("enter")
        t.wait_for("productpage v1 → reviews v3", "Requests")
        t.press("t")
        t.wait_for("20 traces, slowest first", "trace id")
        _j_and_k(t, TRACE)
