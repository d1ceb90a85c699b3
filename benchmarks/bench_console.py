"""The console at scale in a real terminal (issue 17): `meshtop demo --services N` runs in a
pseudo-terminal read through a terminal emulator (the real-terminal suite's `Terminal`),
and this measures what an operator feels:

- **launch**: from the process's start to the first useful frame (the graph or the edge
  table drawn, with the status line's edge count), and to the first line that is not
  "connecting…" (a progress line, or the frame itself);
- **keys**: from a key's bytes written to its effect on screen, for a fixed script (move,
  enter, esc, `/`, esc, `g`, the edge table's tab and back, tab to the next edge), three
  rounds, medians per key and over all; each split where the console's process notes it
  (`_note_io`): the key read by Textual's input thread (an `esc` waits there for Textual's
  escape delay, 100 ms, to tell it from a sequence), the last frame before the effect was
  seen handed to Textual's output thread, and that output read from the terminal (a
  frame waits in the pseudo-terminal while the emulator reads the one before);
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
To see where the time goes: `MESHTOP_BENCH_SAMPLES=FILE` samples every thread's stack in
the console every 5 ms (the keys' times are in the JSON, `key_windows`), and
`MESHTOP_BENCH_PROFILE=DIR` profiles its CPU by function and thread with yappi if it is
installed; either slows the console a little (the sampler) or a lot (yappi), so their
runs' figures are not the budget's.
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
# a directory: the console's CPU by function and thread (yappi, when installed), written
# there every 10 s; a profiler slows the console down, so figures of such a run are not
# the budget's
PROFILE_DIR = "MESHTOP_BENCH_PROFILE"
SAMPLES = "MESHTOP_BENCH_SAMPLES"  # a file: the UI thread's stack every 5 ms


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


def _sample(path: str) -> None:
    """Every 5 ms, every thread's stack (innermost last) that is not waiting, with the
    time and the thread's name (the UI thread's always): a sampling profile of where the
    wall-clock time goes, to be read against the keys' times (`key_windows`)."""
    main = threading.main_thread().ident
    idle = ("select", "wait", "_wait_for_tstate_lock", "get", "sleep", "read")

    def walk() -> None:
        me = threading.get_ident()
        with open(path, "a", buffering=1 << 16) as out:
            while True:
                now = time.monotonic()
                names = {t.ident: t.name for t in threading.enumerate()}
                for ident, frame in sys._current_frames().items():
                    if ident == me or (ident != main and frame.f_code.co_name in idle):
                        continue
                    stack = []
                    f: Any = frame
                    while f is not None:
                        stack.append(f"{f.f_code.co_filename}:{f.f_code.co_name}:{f.f_lineno}")
                        f = f.f_back
                    name = "UI" if ident == main else names.get(ident, "?")
                    out.write(f"{now:.4f}\t{name}\t" + "|".join(reversed(stack)) + "\n")
                time.sleep(0.005)

    threading.Thread(target=walk, daemon=True).start()


def _profile(directory: str) -> None:
    """The process's CPU time by function, one file per thread, written every 10 s."""
    import yappi  # type: ignore[import-not-found]

    yappi.set_clock_type("cpu")
    yappi.start(builtins=False, profile_threads=True)

    def dump() -> None:
        while True:
            time.sleep(10)
            names = {t.id: t.name for t in yappi.get_thread_stats()}
            for ctx, name in names.items():
                stats = yappi.get_func_stats(filter={"ctx_id": ctx})
                stats.sort("tsub")
                with open(Path(directory) / f"{ctx}-{name}.txt", "w") as out:
                    for f in list(stats)[:60]:
                        out.write(f"{f.tsub:9.3f} {f.ttot:9.3f} {f.ncall:9d} {f.full_name}\n")

    threading.Thread(target=dump, daemon=True).start()


def _note_io(path: str) -> None:
    """When each key reached the console (Textual's input thread made its event) and
    when each frame was handed to Textual's output thread: a key's figure then splits
    into the console's part and the output's (the pseudo-terminal and the emulator
    reading it), the console itself not changed."""
    from textual import events
    from textual.drivers import _writer_thread, linux_driver

    out = open(path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
    enqueue = _writer_thread.WriterThread.write
    process = linux_driver.LinuxDriver.process_message

    def write(self: Any, text: str) -> None:
        out.write(f"w {time.monotonic():.4f} {len(text)}\n")
        enqueue(self, text)

    def message(self: Any, event: Any) -> None:
        if isinstance(event, events.Key):
            out.write(f"k {time.monotonic():.4f} 0\n")
        process(self, event)

    _writer_thread.WriterThread.write = write  # type: ignore[method-assign]
    linux_driver.LinuxDriver.process_message = message  # type: ignore[method-assign]


def io_notes(path: str) -> list[tuple[str, float]]:
    try:
        with open(path) as f:
            return [(kind, float(t)) for kind, t, _ in (line.split() for line in f)]
    except OSError:
        return []


def child(argv: list[str]) -> None:
    """Run `meshtop argv` with the probe on the first event loop made in this thread
    (Textual's, made by `asyncio.run`)."""
    path = os.environ[LAG_FILE]
    if os.environ.get(PROFILE_DIR):
        _profile(os.environ[PROFILE_DIR])
    if os.environ.get(SAMPLES):
        _sample(os.environ[SAMPLES])
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
    _note_io(path + ".io")
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


def _timed_terminal() -> type[Any]:
    """The real-terminal suite's `Terminal`, noting when each chunk of output arrived and
    when the emulator had read it: a key's figure then splits into the console's part (the
    key written to the chunk that drew its effect arriving) and the emulator's (that chunk
    read by pyte, the screen's text checked)."""
    from tests.terminal.term import Terminal

    class Timed(Terminal):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.chunks: list[tuple[float, float]] = []  # (arrived, read by the emulator)
            super().__init__(*args, **kwargs)

        def _read(self) -> None:
            while True:
                try:
                    data = self.proc.read(65536)
                except (EOFError, OSError):
                    break
                arrived = time.monotonic()
                with self._changed:
                    self.raw += data
                    self.stream.feed(data)
                    self.chunks.append((arrived, time.monotonic()))
                    self._changed.notify_all()
            with self._changed:
                self._closed = True
                self._changed.notify_all()

        def effect_arrived(self, seen: float) -> float:
            """When the last chunk the emulator had read by `seen` arrived."""
            with self._changed:
                return max((a for a, r in self.chunks if r <= seen), default=seen)

    return Timed


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
    Terminal = _timed_terminal()
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
        output_part: dict[str, list[float]] = {}  # the key to its effect's output arriving
        console_part: dict[str, list[float]] = {}  # the key to its effect's frame made
        key_in: dict[str, list[float]] = {}  # the key to the console's reading it
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
                seen = time.monotonic()
                figures.setdefault("key_windows", []).append((name, sent, seen))
                latencies.setdefault(name, []).append((seen - sent) * 1000)
                arrived = t.effect_arrived(seen)
                output_part.setdefault(name, []).append((max(arrived, sent) - sent) * 1000)
                notes = io_notes(lag_file + ".io")
                got = min((at for kind, at in notes if kind == "k" and at >= sent), default=None)
                frame = max((at for kind, at in notes if kind == "w" and sent <= at <= seen),
                            default=None)  # fmt: skip
                if got is not None and frame is not None:
                    console_part.setdefault(name, []).append((frame - sent) * 1000)
                    key_in.setdefault(name, []).append((got - sent) * 1000)
                time.sleep(0.3)  # a person's pace; and the next key's `before`
        keys_end = time.monotonic()
        figures["keys_ms"] = latencies
        figures["keys_output_ms"] = output_part
        figures["keys_console_ms"] = console_part
        figures["keys_in_ms"] = key_in
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
    for leftover in (lag_file, lag_file + ".io"):
        if os.path.exists(leftover):
            os.unlink(leftover)
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
    for leftover in (lag_file, lag_file + ".io"):
        if os.path.exists(leftover):
            os.unlink(leftover)


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
        f"| key to its effect's frame made (the console's part), median of all keys (ms) | "
        f"{statistics.median(ms for v in f['keys_console_ms'].values() for ms in v):.0f} |"
        if f.get("keys_console_ms")
        else "",
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
        "| key | median (ms) | each round (ms) | read by the console | its frame made | "
        "its output read by the emulator |",
        "|---|---:|---|---:|---:|---:|",
    ]

    def median_of(kind: str, key: str) -> str:
        v = f.get(kind, {}).get(key)
        return f"{statistics.median(v):.0f}" if v else ""

    for key, v in keys.items():
        each = ", ".join(f"{ms:.0f}" for ms in v)
        parts = " | ".join(
            median_of(kind, key) for kind in ("keys_in_ms", "keys_console_ms", "keys_output_ms")
        )
        lines.append(f"| {key} | {statistics.median(v):.0f} | {each} | {parts} |")
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
