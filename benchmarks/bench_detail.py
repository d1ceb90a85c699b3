"""The cost of opening an edge's (or a node's) detail: meshtop's own time, the backend's
left out.

- **parse**: the three Prometheus answers behind a `History` (answers by outcome and
  latency quantiles as range queries, the window summed up as one instant query), in the
  shape the HTTP API returns them, turned into a `History`. For an edge, and for a node
  with 200 callers (the window summary then has a row per caller, reporter and outcome).
- **render**: the panels drawn to text at 120 columns, as the screen draws them.
- **simulated source**: the simulated mesh answering one edge's history in a generated
  mesh of 1,000 services (the demo's backend; not meshtop's own time), and the largest
  namespace's detail there, every member's history as the detail asks them, against one
  member's alone.
- **screen**: in the headless console, from `enter` to the screen drawn with its plots,
  with a metrics source that answers at once from a history computed beforehand.

Prints a Markdown table of medians.

    .venv/bin/python benchmarks/bench_detail.py [--repeat 9]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import platform
import random
import statistics
import sys
import time
from functools import partial
from typing import Any

from bench_snapshot import median_ms
from rich.console import Console

from meshtop.cli import tune_gc
from meshtop.connect import Sources
from meshtop.detail import Detail
from meshtop.history import history_step, point_times
from meshtop.model import History
from meshtop.panels import canary_view, history_view, window_view
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, generated
from meshtop.sources.dialects import ISTIO
from meshtop.sources.prometheus import EDGE, parse_history
from meshtop.sources.protocols import ClusterSources

END = 1_800_000_000.0
OUTCOMES = (("200", "", "-"), ("503", "", "UF"), ("500", "", "-"), ("404", "", "-"))


def answers(window_s: float, callers: int) -> tuple[list[Any], list[Any], list[Any]]:
    """Range answers by outcome and by quantile, and the window summary by edge,
    reporter, outcome, security and principals, as Prometheus returns them."""
    rng = random.Random(7)
    times = point_times(END, window_s, history_step(window_s))

    def values(base: float) -> list[list[Any]]:
        return [[t, f"{base * (0.9 + 0.2 * rng.random()):.6f}"] for t in times]

    codes = [
        {"metric": {"response_code": code, "grpc_response_status": grpc}, "values": values(rate)}
        for (code, grpc, _), rate in zip(OUTCOMES, (20.0, 0.1, 0.3, 0.2), strict=True)
    ]
    quantiles = [
        {"metric": {"quantile": str(q)}, "values": values(ms)}
        for q, ms in ((0.5, 20.0), (0.95, 80.0), (0.99, 150.0))
    ]
    window = [{"metric": {"quantile": str(q)}, "value": [END, "42.0"]} for q in (0.5, 0.95, 0.99)]
    for c in range(callers):
        for reporter in ("source", "destination"):
            for code, _, flags in OUTCOMES:
                window.append(
                    {
                        "metric": {
                            EDGE: f"caller-{c}|server",
                            "reporter": reporter,
                            "response_code": code,
                            "response_flags": flags,
                            "connection_security_policy": "mutual_tls"
                            if reporter == "destination"
                            else "unknown",
                            "source_principal": f"spiffe://cluster.local/ns/a/sa/caller-{c}",
                            "destination_principal": "spiffe://cluster.local/ns/b/sa/server",
                        },
                        "value": [END, f"{rng.random():.6f}"],
                    }
                )
    return codes, quantiles, window


def render(detail: Detail) -> str:
    out = Console(width=120, file=io.StringIO(), record=True)
    h = detail.history
    out.print(history_view(h, 118))
    out.print(window_view(h.summary, h.window_s))
    out.print(canary_view("reviews", detail.canary, "v3"))
    return out.export_text()


class Ready:
    """A metrics source whose history is computed beforehand: the screen's time only."""

    def __init__(self, sim: Simulation, histories: dict[tuple[str | None, str], History]):
        self.sim = sim
        self.ready = histories

    @property
    def name(self) -> str:
        return "ready"

    async def traffic(self, window_s: float) -> Any:
        return await self.sim.metrics.traffic(window_s)

    async def history(self, source: str | None, destination: str, window_s: float) -> History:
        return self.ready[(source, destination)]


def namespace_ms(sim: Simulation, repeat: int) -> tuple[int, float, float]:
    """A namespace's detail against the simulated mesh: every member's history, asked
    as the detail asks them (`detail.fetch`), and one member's alone."""
    from meshtop.detail import fetch, subject
    from meshtop.mesh import refresh

    snapshot = asyncio.run(refresh(sim.clusters, clock=sim.clock))
    by_namespace: dict[str, list[str]] = {}
    for n, w in snapshot.nodes.items():
        by_namespace.setdefault(w.namespace, []).append(n)
    name, members = max(by_namespace.items(), key=lambda kv: len(kv[1]))
    about = subject(snapshot, name, (), sorted(members))
    all_ms = median_ms(lambda: asyncio.run(fetch(sim.metrics, about, 900.0)), repeat)
    first = about.pairs()[0]
    one_ms = median_ms(lambda: asyncio.run(sim.metrics.history(*first, 900.0)), repeat)
    return len(members), one_ms, all_ms


async def screen_ms(repeat: int) -> tuple[float, float]:
    """Enter to drawn for the edge screen, and for the help screen (a static dialog) in
    the same harness: Textual's own cost of pushing and painting a screen, for scale."""
    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.screens.detail import DetailScreen
    from meshtop.tui.screens.help import HelpScreen

    sim = Simulation(bookinfo(), clock=lambda: END)
    page, v3 = "Kubernetes/bookinfo/productpage-v1", "Kubernetes/bookinfo/reviews-v3"
    pairs = [(page, f"Kubernetes/bookinfo/reviews-v{i}") for i in (1, 2, 3)]
    histories = {p: await sim.metrics.history(*p, 900) for p in pairs}
    app = MeshtopApp(
        Sources(ClusterSources.one(Ready(sim, histories), sim.control_plane), False, lambda: END)
    )  # type: ignore[arg-type]
    times = []
    async with app.run_test(size=(120, 60)) as pilot:
        while app.main.graph.view is None:
            await pilot.pause(0.01)
        key = next(k for k, e in app.main.graph.view.edges.items() if (page, v3) in e.members)
        for _ in range(repeat):
            started = time.perf_counter()
            app.main.open_edge(key)
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, DetailScreen)
            while screen.detail is None:
                await pilot.pause(0.001)
            await pilot.pause()  # drawn
            times.append((time.perf_counter() - started) * 1000)
            screen.dismiss()
            await pilot.pause()
        baseline = []
        for _ in range(repeat):
            started = time.perf_counter()
            app.push_screen(HelpScreen())
            await pilot.pause()
            await pilot.pause()
            baseline.append((time.perf_counter() - started) * 1000)
            app.pop_screen()
            await pilot.pause()
    return statistics.median(times), statistics.median(baseline)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    tune_gc()
    repeat = args.repeat
    print(f"{platform.processor() or platform.machine()}, Python {sys.version.split()[0]}")
    print("\n| window | points | edge: parse (ms) | node, 200 callers: parse (ms) | render (ms) |")
    print("|---|---:|---:|---:|---:|")
    sim = Simulation(bookinfo(), clock=lambda: END)
    for label, window in (("15m", 900.0), ("24h", 86400.0), ("7d", 7 * 86400.0)):
        edge = answers(window, 1)
        node = answers(window, 200)
        h = parse_history(ISTIO, "a", "b", window, END, *edge)
        edge_ms = median_ms(partial(parse_history, ISTIO, "a", "b", window, END, *edge), repeat)
        node_ms = median_ms(partial(parse_history, ISTIO, None, "b", window, END, *node), repeat)
        real = asyncio.run(
            sim.metrics.history(
                "Kubernetes/bookinfo/productpage-v1", "Kubernetes/bookinfo/reviews-v3", window
            )
        )
        detail = Detail(real, (("v1", real), ("v2", real), ("v3", real)))
        render_ms = median_ms(partial(render, detail), repeat)
        print(f"| {label} | {len(h.times)} | {edge_ms:.2f} | {node_ms:.2f} | {render_ms:.1f} |")
    big = Simulation(generated(1000, seed=1), clock=lambda: END)
    busiest = max(big.flows(), key=lambda e: e.rate)
    ask = partial(big.metrics.history, busiest.source.id, busiest.destination.id, 900.0)
    sim_ms = median_ms(lambda: asyncio.run(ask()), max(3, repeat // 3))
    print(f"\nsimulated source (not meshtop's own), 1,000 services, 15m: {sim_ms:.0f} ms")
    members, one_ms, all_ms = namespace_ms(big, max(3, repeat // 3))
    print(
        f"simulated source, the largest namespace's detail ({members} members, every "
        f"history): {all_ms:.0f} ms together, {one_ms:.0f} ms for one member alone"
    )
    edge_screen, help_screen = asyncio.run(screen_ms(args.repeat))
    print(f"\nedge screen, enter to drawn (Bookinfo, 15m, 120x60): {edge_screen:.1f} ms")
    print(f"help screen, same harness: {help_screen:.1f} ms")


if __name__ == "__main__":
    main()
