"""The routes tab sorted in a real terminal (issue 19): on `meshtop demo` without colour,
`3` then `:sort weight desc` lists the destinations by weight, the largest first, under
`weight ▼`; a refresh fills the table again and keeps both."""

from __future__ import annotations

import re

import pytest

from .term import Terminal

ROW = re.compile(r"\s(\S+ v\d)\s+(\d+)\s+\d+%")  # a destination, its weight, configured


def _weights(t: Terminal) -> list[tuple[str, int]]:
    """The routes tab's destinations and weights as drawn, top to bottom."""
    found = (ROW.search(line) for line in t.lines())
    return [(m.group(1), int(m.group(2))) for m in found if m]


def _clock(t: Terminal) -> str:
    """The status line's time of the snapshot."""
    found = re.search(r"\d\d:\d\d:\d\d", "\n".join(t.lines()[:3]))
    return found.group(0) if found else ""


def test_routes_sorted_by_weight_kept_across_a_refresh_at_160x48() -> None:
    env = {"NO_COLOR": "1"}
    with Terminal(["demo", "--refresh", "1s"], cols=160, rows=48, env=env) as t:
        t.ready()
        t.press("3")
        t.wait_for("VirtualService bookinfo/reviews")
        t.wait("six destinations", lambda: len(_weights(t)) == 6)
        listed = [name for name, _ in _weights(t)]
        assert listed[:2] == ["productpage v1", "reviews v1"]  # the precedence order
        t.command("sort weight desc")
        t.wait_for_re(r"destination\s+weight ▼\s+configured")
        largest_first = ["productpage v1", "ratings v1", "details v1",
                         "reviews v1", "reviews v2", "reviews v3"]  # fmt: skip
        t.wait("the rows by weight", lambda: [n for n, _ in _weights(t)] == largest_first)
        assert [w for _, w in _weights(t)] == [100, 100, 100, 70, 20, 10]
        for _ in range(2):  # two refreshes: the routes read again after the first
            seen = _clock(t)
            t.wait("a refresh", lambda: _clock(t) not in ("", seen))  # noqa: B023
        assert [n for n, _ in _weights(t)] == largest_first
        assert re.search(r"destination\s+weight ▼\s+configured", t.text())
        t.command("sort off")
        t.wait("the precedence order", lambda: [n for n, _ in _weights(t)] == listed)
        assert "▼" not in t.text().split("weight")[1].split("\n")[0]


# the edge table's RPS cell: requests a second, or a TCP edge's connections
RPS = re.compile(r"\s(\d+(?:\.\d+)?)(k?)(rps|c/s)\s")


def _rates(t: Terminal) -> tuple[str, list[tuple[float, float]]]:
    """The edge table's header and its rows' rates, top to bottom, from one look: each
    as (requests, connections) a second, which is the column's order."""
    lines = t.lines()
    head = next((i for i, line in enumerate(lines) if "DESTINATION" in line), None)
    if head is None:
        return "", []
    rates = []
    for line in lines[head + 1 :]:
        m = RPS.search(line)
        if m:
            rate = float(m.group(1)) * (1000 if m.group(2) else 1)
            rates.append((rate, 0.0) if m.group(3) == "rps" else (0.0, rate))
    return lines[head], rates


@pytest.mark.parametrize("services", [200, 2000])  # sorted at once; by the table's worker
def test_the_edge_tables_mark_moves_with_its_sort_and_the_rows_follow_at_80x24(
    services: int,
) -> None:
    """Only the header is drawn again as a sort is asked, the rows when they come in
    their new order: the old mark must go, the new one show, the rows be in its order."""
    env = {"NO_COLOR": "1"}
    with Terminal(["demo", "--services", str(services)], cols=80, rows=24, env=env) as t:
        t.ready()
        t.press("2")
        t.wait("the header, worst first", lambda: _rates(t)[0].lstrip().startswith("▼"))
        # `S` sorts without the prompt, whose focus going back draws the table whole
        steps = (("sort rps asc", "RPS ▲", True), ("", "RPS ▼", False), ("", "RPS ▲", True))
        for command, mark, ascending in steps:
            if command:
                t.command(command)
            else:
                t.press("S")  # the same column, the other way round

            def sorted_so(mark: str = mark, ascending: bool = ascending) -> bool:
                header, rates = _rates(t)
                return (
                    mark in header
                    and header.count("▼") + header.count("▲") == 1
                    and len(rates) >= 10
                    and rates == sorted(rates, reverse=not ascending)
                )

            t.wait(f"{mark}, the rows in its order", sorted_so)
