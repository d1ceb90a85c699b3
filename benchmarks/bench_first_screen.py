"""Time to the first screen in a real terminal: the installed `meshtop demo` started in a
pseudo-terminal, read through a terminal emulator (the real-terminal suite's harness),
timed from the start of the process to the first screen that shows the graph and the
status line's edge count (and the zoom level `fit` chose); then `:zoom full`, timed
from its enter to its screen; and the resident memory then. Medians over `--repeat`
runs; each run is a new process.

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

CASES = [  # at 160 columns or more, where the status line has room for the zoom level
    ("Bookinfo", [], 160, 48),
    ("Bookinfo", [], 200, 60),
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


def once(args: list[str], cols: int, rows: int) -> tuple[float, float, float, str]:
    start = time.perf_counter()
    with Terminal(["demo", *args], cols=cols, rows=rows) as t:
        t.wait("the first screen", lambda: drawn(t), limit=120)
        first = time.perf_counter() - start
        level = re.search(r"zoom (\w+) \(fit\)", t.text())
        t.press(":")
        t.type("zoom full", after=":")
        pressed = time.perf_counter()
        t.press("enter")
        t.wait_for("zoom full ", limit=120)  # the status line says it once it is drawn
        t.wait("the status line's zoom to be full", lambda: "(fit)" not in t.lines()[1])
        zoom = time.perf_counter() - pressed
        rss = rss_mib(t.proc.pid)
    return first * 1000, zoom * 1000, rss, level.group(1) if level else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    a = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}, repeat {a.repeat}\n")
    print(
        "| mesh | terminal | fit chose | first screen (ms) | `:zoom full` drawn (ms) | RSS (MiB) |"
    )
    print("|---|---|---|---:|---:|---:|")
    for name, args, cols, rows in CASES:
        runs = [once(args, cols, rows) for _ in range(a.repeat)]
        first, zoom, rss = (statistics.median(float(r[i]) for r in runs) for i in range(3))
        fitted = "/".join(sorted({str(r[3]) for r in runs}))
        print(f"| {name} | {cols}x{rows} | {fitted} | {first:.0f} | {zoom:.0f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
