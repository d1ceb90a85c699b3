"""The console at scale in a real terminal (issue 17): `meshtop demo --services N` runs in a
pseudo-terminal read through a terminal emulator (the real-terminal suite's `Terminal`),
and this measures what an operator feels:

- **launch**: from the process's start to the first useful frame (the graph or the edge
  table drawn, with the status line's edge count), and to the first line that is not
  "connecting…" (a progress line, or the frame itself);
- **keys**: from a key's bytes written to its effect on screen, for a fixed script (move,
  enter, esc, `/`, esc, `g`, the edge table's tab and back, tab to the next edge), three
  rounds, medians per key and over all;
- **blocked**: the longest time the console's event loop (its UI thread) could not run a
  callback handed to it, from a probe thread inside the process (`--child` below: the
  console itself is not changed); before the first frame, during the keys, when idle;
- **idle CPU**: the process's CPU time over `--idle` seconds between key presses, as a
  share of one core (the refresh runs every 2 s, as by default);
- **memory**: resident memory sampled until `--minutes` after the start;
- **q**: from `q` to the process's end, once the graph is up and once while the first
  view is still being made (one second after the start).

With `--prometheus`, the same against a real Prometheus scraping `meshtop sim serve
--services N` (the first size given), the console reading it with `--prometheus URL`.

    .venv/bin/python benchmarks/bench_console.py [--services 200 2000 20000] [--minutes 5]
        [--rounds 3] [--idle 30] [--cols 160 --rows 48] [--prometheus]

It prints one Markdown table per run, and the raw figures as JSON with `--json FILE`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EDGES = re.compile(r"\d+ (of \d+ )?edges")
SELECTED = re.compile(r"▸ (\S.*?)(  |$)")
LAG_FILE = "MESHTOP_BENCH_LAG_FILE"


# -- inside the console's process ---------------------------------------------------------


def _probe(loop: asyncio.AbstractEventLoop, path: str) -> None:
    """Every 20 ms, hand the loop a callback and write how long it took to run: the time
    the UI thread was busy (or starved of the GIL) when something asked it for a turn."""
    with open(path, "a", buffering=1) as out:
        while not loop.is_closed():
            ran = threading.Event()
            start = time.monotonic()
            try:
                loop.call_soon_threadsafe(ran.set)
            except RuntimeError:  # closed meanwhile
                return
            while not ran.wait(1.0):
                if loop.is_closed():
                    return
            out.write(f"{start:.4f} {(time.monotonic() - start) * 1000:.2f}\n")
            time.sleep(0.02)


def child(argv: list[str]) -> None:
    """Run `meshtop argv` with the probe on the first event loop made in this thread
    (Textual's, made by `asyncio.run`)."""
    path = os.environ[LAG_FILE]
    base = asyncio.get_event_loop_policy()

    class Probing(type(base)):  # type: ignore[misc]
        probed = False

        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            loop = super().new_event_loop()
            if not Probing.probed and threading.current_thread() is threading.main_thread():
                Probing.probed = True
                threading.Thread(target=_probe, args=(loop, path), daemon=True).start()
            return loop

    asyncio.set_event_loop_policy(Probing())
    from meshtop.cli import main

    sys.argv = ["meshtop", *argv]
    main(argv)


# -- outside: the terminal ------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lags(path: str, start: float = 0.0, end: float = float("inf")) -> list[float]:
    """The probe's waits (ms) that began between `start` and `end` (monotonic)."""
    out = []
    with open(path) as f:
        for line in f:
            t, ms = line.split()
            if start <= float(t) < end:
                out.append(float(ms))
    return out


def status_line(text: str) -> str:
    return next((line for line in text.splitlines() if EDGES.search(line)), "")


def selected(text: str) -> str:
    m = SELECTED.search(status_line(text))
    return m.group(1) if m else ""


def useful(text: str) -> bool:
    """A first useful frame: the edge count said, and the graph (a band) or the edge
    table (its header) drawn."""
    return bool(EDGES.search(text)) and ("╭─" in text or "DESTINATION" in text)


def progress(text: str) -> bool:
    """A line that says what the console is doing before its first frame."""
    return bool(re.search(r"(laying out|building|grouping|filtering|reading) .*…", text))


GROUPINGS = ("version", "app", "workload", "service")


def key_script(grouping: list[str]) -> list[tuple[str, str, Callable[[str, str], bool]]]:
    """(name, key, done(before, now)): each key and how its effect shows on screen."""
    nxt = GROUPINGS[(GROUPINGS.index(grouping[0]) + 1) % len(GROUPINGS)]

    def grouped(before: str, now: str) -> bool:
        if f"graph {nxt}" in status_line(now):
            grouping[0] = nxt
            return True
        return False

    return [
        ("move (j)", "j", lambda b, n: selected(n) != selected(b) and bool(selected(n))),
        ("enter (open)", "enter", lambda b, n: "esc back" in n),
        ("esc (close)", "esc", lambda b, n: "esc back" not in n and "/ filter" in n),
        ("/ (prompt)", "/", lambda b, n: "filter: names" in n),
        ("esc (prompt)", "esc", lambda b, n: "filter: names" not in n),
        ("g (grouping)", "g", grouped),
        ("2 (edge table)", "2", lambda b, n: "DESTINATION" in n and bool(_table_row(n))),
        ("1 (graph)", "1", lambda b, n: "DESTINATION" not in n and "╭─" in n),
        ("tab (next edge)", "tab", lambda b, n: selected(n) != selected(b) and "→" in selected(n)),
    ]


def _table_row(text: str) -> str:
    return next((x for x in text.splitlines() if re.match(r"\s*(FAIL|warn|ok|idle)\s", x)), "")


def run(
    args: list[str],
    *,
    cols: int,
    rows: int,
    rounds: int,
    idle_s: float,
    minutes: float,
    rss_limit_mib: float,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The figures of one console; a console that grows past `rss_limit_mib` is killed
    (the machine is shared) and said so."""
    figures: dict[str, Any] = {"args": args}
    try:
        _run(figures, args, cols, rows, rounds, idle_s, minutes, rss_limit_mib, env)
    except AssertionError as exc:
        figures.setdefault("failed", str(exc).splitlines()[0])
    return figures


def _run(
    figures: dict[str, Any],
    args: list[str],
    cols: int,
    rows: int,
    rounds: int,
    idle_s: float,
    minutes: float,
    rss_limit_mib: float,
    env: dict[str, str] | None,
) -> None:
    from tests.terminal.term import Terminal

    lag_file = tempfile.mktemp(prefix="meshtop-lag-")
    command = [sys.executable, __file__, "--child", *args]
    environ = {LAG_FILE: lag_file, **(env or {})}
    started = time.monotonic()
    with Terminal(args, cols=cols, rows=rows, env=environ, command=command) as t:
        pid = t.proc.pid
        memory: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    now = rss_mib(pid)
                except OSError:
                    return
                memory.append((time.monotonic() - started, now))
                figures["rss_peak_mib"] = max(now, figures.get("rss_peak_mib", 0.0))
                if now > rss_limit_mib:
                    figures["failed"] = (
                        f"killed at {now:,.0f} MiB resident, "
                        f"{time.monotonic() - started:.0f} s after the start"
                    )
                    os.kill(pid, 9)
                    return
                stop.wait(2.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t.wait("a progress line or a frame", lambda: progress(t.text()) or useful(t.text()), 600)
        figures["first_line_s"] = time.monotonic() - started
        t.wait("the first useful frame", lambda: useful(t.text()), 900)
        first = time.monotonic()
        figures["launch_s"] = first - started
        figures["launch_rss_mib"] = rss_mib(pid)
        figures["blocked_launch_ms"] = max(lags(lag_file, 0, first), default=0.0)
        time.sleep(2.0)  # the first frame's row caches and the next refresh
        grouping = [m.group(1) if (m := re.search(r"graph (\w+)", t.text())) else "version"]
        latencies: dict[str, list[float]] = {}
        keys_start = time.monotonic()
        failures: list[str] = []
        for _ in range(rounds):
            for name, key, done in key_script(grouping):
                before = t.text()
                sent = time.monotonic()
                t.press(key)
                try:
                    t.wait(name, lambda b=before, d=done: d(b, t.text()), 120)  # type: ignore[misc]
                except AssertionError:
                    failures.append(name)
                    continue
                latencies.setdefault(name, []).append((time.monotonic() - sent) * 1000)
                time.sleep(0.3)  # a person's pace; and the next key's `before`
        keys_end = time.monotonic()
        figures["keys_ms"] = latencies
        figures["key_failures"] = failures
        figures["blocked_keys_ms"] = max(lags(lag_file, keys_start, keys_end), default=0.0)
        time.sleep(3.0)
        cpu0, t0 = cpu_s(pid), time.monotonic()
        time.sleep(idle_s)
        cpu1, t1 = cpu_s(pid), time.monotonic()
        figures["idle_cpu"] = (cpu1 - cpu0) / (t1 - t0)
        figures["blocked_idle_ms"] = max(lags(lag_file, t0, t1), default=0.0)
        left = minutes * 60 - (time.monotonic() - started)
        if left > 0:
            time.sleep(left)
        figures["blocked_after_launch_ms"] = max(lags(lag_file, first), default=0.0)
        figures["rss_end_mib"] = rss_mib(pid)
        figures["rss_peak_mib"] = max((m for _, m in memory), default=0.0)
        figures["rss_samples"] = memory
        figures["minutes"] = (time.monotonic() - started) / 60
        stop.set()
        quit_at = time.monotonic()
        t.press("q")
        t.exit_code(60)
        figures["quit_ms"] = (time.monotonic() - quit_at) * 1000
    os.unlink(lag_file)
    # q while the first view is still being made
    lag_file = tempfile.mktemp(prefix="meshtop-lag-")
    with Terminal(args, cols=cols, rows=rows, env={LAG_FILE: lag_file, **(env or {})},
                  command=[sys.executable, __file__, "--child", *args]) as t:  # fmt: skip
        time.sleep(1.0)
        t.wait("the console to start", lambda: "meshtop" in t.text(), 60)
        quit_at = time.monotonic()
        t.press("q")
        t.exit_code(120)
        figures["quit_early_ms"] = (time.monotonic() - quit_at) * 1000
    os.unlink(lag_file)


def report(name: str, f: dict[str, Any]) -> str:
    if "failed" in f:
        seen = ", ".join(
            f"{k} {f[k]:.1f}" for k in ("first_line_s", "launch_s", "rss_peak_mib") if k in f
        )
        return f"### {name}\n\nfailed: {f['failed']} ({seen})"
    keys = f["keys_ms"]
    every = [ms for v in keys.values() for ms in v]
    lines = [
        f"### {name}",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| first line other than connecting… (s) | {f['first_line_s']:.2f} |",
        f"| launch to first useful frame (s) | {f['launch_s']:.2f} |",
        f"| key to effect, median of all keys (ms) | {statistics.median(every):.0f} |"
        if every
        else "| key to effect | none measured |",
        f"| key to effect, slowest key's median (ms) | "
        f"{max(statistics.median(v) for v in keys.values()):.0f} |"
        if keys
        else "",
        f"| UI thread blocked, longest: launch / keys / idle / after launch (ms) | "
        f"{f['blocked_launch_ms']:.0f} / {f['blocked_keys_ms']:.0f} / "
        f"{f['blocked_idle_ms']:.0f} / {f['blocked_after_launch_ms']:.0f} |",
        f"| idle CPU (share of a core) | {f['idle_cpu'] * 100:.1f}% |",
        f"| resident memory at first frame / after {f['minutes']:.1f} min / peak (MiB) | "
        f"{f['launch_rss_mib']:.0f} / {f['rss_end_mib']:.0f} / {f['rss_peak_mib']:.0f} |",
        f"| q to exit, graph up / while the first view is made (ms) | "
        f"{f['quit_ms']:.0f} / {f['quit_early_ms']:.0f} |",
        "",
        "| key | median (ms) | each round (ms) |",
        "|---|---:|---|",
    ]
    for key, v in keys.items():
        each = ", ".join(f"{ms:.0f}" for ms in v)
        lines.append(f"| {key} | {statistics.median(v):.0f} | {each} |")
    if f["key_failures"]:
        lines.append(f"\nkeys whose effect never showed (120 s): {', '.join(f['key_failures'])}")
    return "\n".join(line for line in lines if line is not None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_prometheus(services: int, go: Callable[[str], None]) -> None:
    """`meshtop sim serve --services N` scraped every 5 s by a real Prometheus; `go(url)`
    once a window of samples is in."""
    import httpx

    binary = os.environ.get("MESHTOP_PROMETHEUS_BIN") or shutil.which("prometheus")
    if binary is None:
        sys.exit("no prometheus binary on PATH (or MESHTOP_PROMETHEUS_BIN)")
    meshtop = str(Path(sys.executable).parent / "meshtop")
    sim_port, prom_port = free_port(), free_port()
    serve = subprocess.Popen(
        [meshtop, "sim", "serve", "--services", str(services), "--port", str(sim_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        config = Path(work) / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\nscrape_configs:\n"
            "  - job_name: mesh\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{sim_port}']\n"
        )
        prom = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={work}/data",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{prom_port}"
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/-/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            time.sleep(75)  # a window (1m) of samples and more
            go(url)
        finally:
            prom.terminate()
            serve.terminate()
            prom.wait(30)
            serve.wait(30)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}"


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--services", type=int, nargs="+", default=[200, 2000, 20000])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--cols", type=int, default=160)
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--prometheus", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--rss-limit", type=float, default=6000, help="MiB; killed beyond")
    opts = parser.parse_args()
    common = {
        "cols": opts.cols,
        "rows": opts.rows,
        "rounds": opts.rounds,
        "idle_s": opts.idle,
        "minutes": opts.minutes,
        "rss_limit_mib": opts.rss_limit,
    }
    print(f"{machine()}; terminal {opts.cols}x{opts.rows}\n", flush=True)
    results: dict[str, Any] = {}
    if opts.prometheus:
        n = opts.services[0]

        def go(url: str) -> None:
            name = f"Prometheus scraping `meshtop sim serve --services {n}`"
            results[name] = run(["--prometheus", url, "--window", "1m"], **common)  # type: ignore[arg-type]
            print(report(name, results[name]), "\n", flush=True)

        with_prometheus(n, go)
    else:
        for n in opts.services:
            name = f"`meshtop demo --services {n}`"
            results[name] = run(["demo", "--services", str(n)], **common)  # type: ignore[arg-type]
            print(report(name, results[name]), "\n", flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
