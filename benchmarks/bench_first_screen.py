"""Time to the first screen in a real terminal: the installed `meshtop demo` started in a
pseudo-terminal, read through a terminal emulator (the real-terminal suite's harness),
timed from the start of the process to the first screen that shows the graph and the
status line's edge count; then `:zoom namespaces`, timed from its enter to its screen;
and the resident memory then. Medians over `--repeat` runs; each run is a new process.

    .venv/bin/python benchmarks/bench_first_screen.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.terminal.term import Terminal

CASES = [
    ("Bookinfo", [], 80, 24),
    ("Bookinfo", [], 160, 48),
    ("generated 200 services", ["--services", "200"], 160, 48),
    ("generated 1,000 services", ["--services", "1000"], 160, 48),
]
EDGES = re.compile(r"\d+ (of \d+ )?edges")


def drawn(t: Terminal) -> bool:
    lines = t.lines()
    return bool(EDGES.search("\n".join(lines[:3]))) and any("│" in line for line in lines[4:])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def once(args: list[str], cols: int, rows: int) -> tuple[float, float, float]:
    start = time.perf_counter()
    with Terminal(["demo", *args], cols=cols, rows=rows) as t:
        t.wait("the first screen", lambda: drawn(t), limit=120)
        first = time.perf_counter() - start
        t.press(":")
        t.type("zoom namespaces", after=":")
        pressed = time.perf_counter()
        t.press("enter")
        t.wait_for("(all)", limit=120)  # every namespace drawn as one box
        zoom = time.perf_counter() - pressed
        rss = rss_mib(t.proc.pid)
    return first * 1000, zoom * 1000, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    a = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}, repeat {a.repeat}\n")
    print("| mesh | terminal | first screen (ms) | `:zoom namespaces` drawn (ms) | RSS (MiB) |")
    print("|---|---|---:|---:|---:|")
    for name, args, cols, rows in CASES:
        runs = [once(args, cols, rows) for _ in range(a.repeat)]
        first, zoom, rss = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"| {name} | {cols}x{rows} | {first:.0f} | {zoom:.0f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
