"""A trace of 10,000 spans: building its tree (with skew correction and the critical
path), listing its rows, and, in the headless console, opening it as a waterfall and
paging through it. Budget (issue 6): it opens and scrolls smoothly; the tree is built in
linear time and only the rows on screen are drawn.

    .venv/bin/python benchmarks/bench_waterfall.py [--spans 10000] [--repeat 9]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import sys
import time

from bench_snapshot import median_ms  # the script's own folder is on the path

from meshtop.cli import tune_gc
from meshtop.model import Span, Trace
from meshtop.waterfall import Tree


def big_trace(n: int, seed: int = 7) -> Trace:
    """A trace of `n` spans: each under a random earlier one, inside its parent's time."""
    rng = random.Random(seed)
    spans = [Span("0" * 16, None, "gateway", "GET /", 0, 10_000_000)]
    bounds = [(0, 10_000_000)]
    for i in range(1, n):
        p = rng.randrange(max(0, i - 50), i)  # recent parents: deep and wide at once
        start, length = bounds[p]
        s = start + rng.randrange(0, max(1, length // 2))
        d = max(1, rng.randrange(0, max(2, (start + length - s))))
        spans.append(Span(f"{i:016x}", spans[p].span_id, f"svc-{i % 40}", f"op-{i % 300}", s, d,
                          rng.random() < 0.01))  # fmt: skip
        bounds.append((s, d))
    return Trace("b" * 32, tuple(spans))


async def screen(trace: Trace, repeat: int) -> tuple[float, float]:
    """Median ms to open the waterfall (drawn, in Textual's harness), and to draw the
    rows of one screen after a page down (meshtop's own drawing)."""
    from textual.app import App

    from meshtop.sim.sources import Simulation
    from meshtop.sim.topology import bookinfo
    from meshtop.tui.screens.traces import WaterfallScreen
    from meshtop.tui.widgets.waterfall import Waterfall

    source = Simulation(bookinfo()).traces  # named on screen; the trace is given, not fetched

    class Harness(App[None]):
        pass

    opens, pages = [], []
    app = Harness()
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(repeat):
            started = time.perf_counter()
            await app.push_screen(WaterfallScreen(source, trace.trace_id, trace))
            await pilot.pause()
            app.screen.query_one(Waterfall)
            await pilot.pause()
            opens.append((time.perf_counter() - started) * 1000)
            view = app.screen.query_one(Waterfall)
            for _ in range(10):  # meshtop's own drawing of a page: every row on screen
                view.action_move(38)
                started = time.perf_counter()
                for y in range(40):
                    view.render_line(y)
                pages.append((time.perf_counter() - started) * 1000)
            app.pop_screen()
            await pilot.pause()
    return statistics.median(opens), statistics.median(pages)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    tune_gc()
    print(f"{platform.processor() or platform.machine()}, Python {sys.version.split()[0]}")
    print("\n| spans | tree (ms) | rows (ms) |\n|---:|---:|---:|")
    for n in (1_000, args.spans):
        trace = big_trace(n)
        tree = Tree(trace)
        build = median_ms(lambda trace=trace: Tree(trace), args.repeat)  # type: ignore[misc]
        rows = median_ms(tree.rows, args.repeat)
        print(f"| {n:,} | {build:.1f} | {rows:.1f} |")
    opened, paged = asyncio.run(screen(big_trace(args.spans), max(3, args.repeat // 3)))
    print(f"\nwaterfall of {args.spans:,} spans at 120x40:", end=" ")
    print(f"open {opened:.0f} ms, a page of rows drawn {paged:.2f} ms")


if __name__ == "__main__":
    main()
