"""The console at scale in a real terminal (issue 17): `meshtop demo --services N` runs in a
pseudo-terminal read through a terminal emulator (the real-terminal suite's `Terminal`),
and this measures what an operator feels:

- **launch**: from the process's start to the first useful frame (the graph or the edge
  table drawn, with the status line's edge count), and to the first line that is not
  "connecting…" (a progress line, or the frame itself); the first figure's median over
  `--launches` launches (5), the others after the run, 7 s apart;
- **keys**: from a key's bytes written to its effect on screen, for a fixed script (move,
  enter, esc, `/`, esc, `g`, the edge table's tab and back, tab to the next edge), three
  rounds, medians per key and over all; each split where the console's process notes it
  (`_note_io`): the key read by Textual's input thread (an `esc` waits there for the
  escape delay, 25 ms as the console sets it, to tell it from a sequence), the last frame
  before the effect was
  seen handed to Textual's output thread, and that output read from the terminal (a
  frame waits in the pseudo-terminal while the emulator reads the one before);
- **blocked**: the longest time the console's event loop (its UI thread) could not run a
  callback handed to it, from a probe thread inside the process (`--child` below: the
  console itself is not changed); before the first frame, during the keys, when idle
  (over the rest of the run, below), and over all after the first frame;
- **idle CPU**: the process's CPU time over `--idle` seconds between key presses, as a
  share of one core (the refresh runs every 2 s, as by default), the probe paused (its
  rounds wake the UI thread 50 times a second: at 20,000 services about 3 points of a
  core, `benchmarks/RESULTS.md`); and over the rest of the run (no key pressed), the
  probe asking, which holds several rounds of the latency query against a Prometheus;
  the timed callbacks and messages (`_note_slow`, `_note_io`, `_note_gc`) in both;
- **memory**: resident memory sampled until `--minutes` after the start;
- **q**: from `q` to the process's end, once the graph is up and once while the first
  view is still being made (one second after the start).

With `--prometheus`, the same against a real Prometheus scraping `meshtop sim serve
--services N` (the first size given) every 15 s, as Istio's Prometheus addon does
(`--scrape-interval`), the console reading it with `--prometheus URL`; the backend's
processes (Prometheus and what it scrapes) run at the idle priority (SCHED_IDLE,
`--backend-priority`): on an operator's bastion they are elsewhere, and beside the
console on these two cores they took the CPU from its screen's thread while Prometheus
evaluated the latency query (`same`: they and the console share the CPUs as equals).
With `--hostile N`, against a hostile backend: a real Prometheus scraping, every 20 s, one
workload's sidecar that calls N destinations (`hostile_series`, served by this bench in
a process of its own: Istio's standard metrics with every label its sidecars write,
counters growing so that rates are not zero, some errors, names spread over N/50
namespaces, some long, some with escape sequences), the console reading it with
`--prometheus URL --window 1m` and no Kubernetes; the run also says whether any of those
escape sequences reached the terminal, and what Prometheus held.

    .venv/bin/python benchmarks/bench_console.py [--services 200 2000 20000] [--minutes 5]
        [--rounds 3] [--idle 30] [--cols 160 --rows 48]
        [--prometheus [--scrape-interval 15] | --hostile N] [--backend-priority idle]

It prints one Markdown table per run, and the raw figures as JSON with `--json FILE`.
To see where the time goes: `MESHTOP_BENCH_SAMPLES=FILE` samples every thread's stack in
the console every 5 ms (the keys' times are in the JSON, `key_windows`), and
`MESHTOP_BENCH_PROFILE=DIR` profiles its CPU by function and thread with yappi if it is
installed, and `MESHTOP_BENCH_HEAP=FILE` writes where the heap is held and what grew,
every 60 s (tracemalloc); each slows the console a little (the sampler) or a lot (yappi,
tracemalloc), so their runs' figures are not the budget's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
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
HEAP = "MESHTOP_BENCH_HEAP"  # a file: where the heap is held and grows, every 60 s
# `--launches`: the launches after the first this far apart (not a divisor of the
# backends' 15 s and 20 s scrapes: each starts at another moment of one)
LAUNCH_SPACING_S = 7.0


# -- inside the console's process ---------------------------------------------------------


def _run_delay_ns(tid: int) -> int:
    """How long the thread `tid` has waited, runnable, for a CPU (the kernel's
    `schedstat`); 0 where it is not kept. A thread waiting for the GIL sleeps: not this."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _stolen_ms() -> float:
    """The time the hypervisor ran others on this machine's CPUs (`steal` in /proc/stat,
    every CPU's, in ms; 10 ms steps): a virtual machine's thread stopped with no sign of
    it in its own `schedstat`."""
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8]) * 1000 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _probe(loop: asyncio.AbstractEventLoop, path: str, tid: int) -> None:
    """Every 20 ms, hand the loop a callback and write how long it took to run: the time
    the UI thread was busy (or starved of the GIL) when something asked it for a turn;
    and of that, about how long the UI thread (thread `tid`) waited, runnable, for a CPU
    (given to another process, or to our own threads; the kernel counts a wait when it
    ends, so one begun before the ask is counted whole); and the time the machine's CPUs
    were stolen by the hypervisor meanwhile. The callback notes when it ran, on the UI
    thread: this thread may wait for a CPU itself before it sees that it has. While the
    file `path.pause` is there (the idle CPU's window), it asks nothing: its rounds woke
    the UI thread 50 times a second, which the console alone does not do (at 20,000
    services about 3 points of a core, `benchmarks/RESULTS.md`)."""
    pause = path + ".pause"
    with open(path, "a", buffering=1) as out:
        while not loop.is_closed():
            if os.path.exists(pause):
                time.sleep(0.05)
                continue
            ran = threading.Event()
            ran_at: list[float] = []

            def run(ran: threading.Event = ran, ran_at: list[float] = ran_at) -> None:
                ran_at.append(time.monotonic())
                ran.set()

            delayed, stolen = _run_delay_ns(tid), _stolen_ms()
            start = time.monotonic()
            try:
                loop.call_soon_threadsafe(run)
            except RuntimeError:  # closed meanwhile
                return
            while not ran.wait(1.0):
                if loop.is_closed():
                    return
            took = (ran_at[0] - start) * 1000
            waited = (_run_delay_ns(tid) - delayed) / 1e6
            out.write(f"{start:.4f} {took:.2f} {waited:.2f} {_stolen_ms() - stolen:.0f}\n")
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


def _heap(path: str) -> None:
    """tracemalloc from the start (12 frames); every 60 s the places holding the most
    memory, by traceback, and the lines whose memory grew the most since the last time.
    A snapshot of a large heap holds the GIL for seconds: such a run's figures are not
    the budget's."""
    import tracemalloc

    tracemalloc.start(12)

    def dump() -> None:
        last: tracemalloc.Snapshot | None = None
        ignore = (tracemalloc.Filter(False, tracemalloc.__file__),)
        while True:
            time.sleep(60)
            snap = tracemalloc.take_snapshot().filter_traces(ignore)
            traced = tracemalloc.get_traced_memory()[0] / 2**20
            with open(path, "a") as out:
                out.write(f"== {time.monotonic():.1f} traced {traced:.1f} MiB\n")
                for stat in snap.statistics("traceback")[:12]:
                    out.write(f"{stat.size / 2**20:9.1f} MiB in {stat.count} blocks\n")
                    for line in stat.traceback.format(limit=12, most_recent_first=True):
                        out.write(f"    {line}\n")
                if last is not None:
                    out.write("-- grew since the last\n")
                    for diff in snap.compare_to(last, "lineno")[:15]:
                        out.write(f"  {diff}\n")
            last = snap

    threading.Thread(target=dump, daemon=True).start()


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


def _note_gc(path: str) -> None:
    """Each pass of the garbage collector: when it began, its generation, how long it
    held the GIL (every thread, the UI thread too, waits for it) and how many objects its
    youngest generation held as it began (what the pass reads grows with it)."""
    import gc

    out = open(path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
    began = [0.0, 0.0, 0.0]

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[:] = time.monotonic(), time.thread_time(), gc.get_count()[0]
        else:
            ms = (time.monotonic() - began[0]) * 1000
            cpu_ms = (time.thread_time() - began[1]) * 1000  # the pass's own work
            young = int(began[2])
            out.write(f"{began[0]:.4f} {info['generation']} {ms:.2f} {cpu_ms:.2f} {young}\n")

    gc.callbacks.append(note)


def _note_slow(path: str) -> None:
    """Each event-loop callback that ran 20 ms or more: when it began, its wall and CPU
    time (the UI thread's), what it ran (a task's coroutine, or the callback), the
    messages it handled and the screen's layouts and frames made in it, each with its
    time: whose a block after launch is, the console itself not changed."""
    from textual.app import App
    from textual.message_pump import MessagePump
    from textual.screen import Screen

    out = open(path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
    inside: list[str] = []
    run = asyncio.events.Handle._run

    def timed(self: Any) -> None:
        inside.clear()
        start, cpu = time.monotonic(), time.thread_time()
        try:
            run(self)
        finally:
            ms = (time.monotonic() - start) * 1000
            if ms >= 20:
                task = getattr(self._callback, "__self__", None)
                what = (
                    task.get_coro().__qualname__
                    if isinstance(task, asyncio.Task)
                    else getattr(self._callback, "__qualname__", type(self._callback).__name__)
                )
                cpu_ms = (time.thread_time() - cpu) * 1000
                out.write(f"{start:.4f}\t{ms:.1f}\t{cpu_ms:.1f}\t{what}\t{' '.join(inside)}\n")

    def timing(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            try:
                return call(*args, **kwargs)
            finally:
                inside.append(f"{name}={(time.monotonic() - start) * 1000:.1f}")

        return timed_call

    dispatch = MessagePump._dispatch_message

    async def dispatched(self: Any, message: Any) -> None:
        start = time.monotonic()
        try:
            await dispatch(self, message)
        finally:
            ms = (time.monotonic() - start) * 1000
            if ms >= 2:
                inside.append(f"{type(self).__name__}.{type(message).__name__}={ms:.1f}")

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    MessagePump._dispatch_message = dispatched  # type: ignore[method-assign]
    Screen._refresh_layout = timing("layout", Screen._refresh_layout)  # type: ignore[method-assign]
    App._display = timing("display", App._display)  # type: ignore[method-assign]


def slow_callbacks(path: str, start: float = 0.0) -> list[tuple[float, float, float, str, str]]:
    """(when, ms, CPU ms, what, inside) of the event loop's callbacks of 20 ms or more
    that began from `start` (`_note_slow`)."""
    try:
        with open(path) as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
    except OSError:
        return []
    return [
        (float(t), float(ms), float(cpu), what, inside)
        for t, ms, cpu, what, inside in rows
        if float(t) >= start
    ]


def gc_passes(path: str, start: float = 0.0, end: float = float("inf")) -> list[tuple[int, float]]:
    """(generation, ms) of the collector's passes that began between `start` and `end`."""
    try:
        with open(path) as f:
            rows = [line.split() for line in f]
    except OSError:
        return []
    return [(int(g), float(ms)) for t, g, ms, *_ in rows if start <= float(t) < end]


def gc_times(path: str, start: float = 0.0) -> list[tuple[float, int, float, float, int]]:
    """(when, generation, ms, CPU ms, young objects) of the collector's passes from
    `start`: on a loaded machine a pass's wall time includes the time the system gave
    other processes."""
    try:
        with open(path) as f:
            rows = [line.split() for line in f]
    except OSError:
        return []
    return [
        (float(t), int(g), float(ms), float(c), int(young))
        for t, g, ms, c, young in rows
        if float(t) >= start
    ]


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
    # what the console sets before Textual is imported (its escape delay): `_note_io`
    # imports Textual first, which would read the environment without it
    from meshtop.cli.console import terminal_environment

    terminal_environment()
    if os.environ.get(PROFILE_DIR):
        _profile(os.environ[PROFILE_DIR])
    if os.environ.get(SAMPLES):
        _sample(os.environ[SAMPLES])
    if os.environ.get(HEAP):
        _heap(os.environ[HEAP])
    base = asyncio.get_event_loop_policy()

    class Probing(type(base)):  # type: ignore[misc]
        probed = False

        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            loop = super().new_event_loop()
            if not Probing.probed and threading.current_thread() is threading.main_thread():
                Probing.probed = True
                ui = threading.get_native_id()
                threading.Thread(target=_probe, args=(loop, path, ui), daemon=True).start()
            return loop

    asyncio.set_event_loop_policy(Probing())
    _note_io(path + ".io")
    _note_gc(path + ".gc")
    _note_slow(path + ".slow")
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
    return [ms for t, ms, *_ in lag_times(path, start) if t < end]


def lag_times(path: str, start: float = 0.0) -> list[tuple[float, float, float, float]]:
    """The probe's (when, ms, of it ms waiting for a CPU, ms the machine's CPUs were
    stolen meanwhile) from `start` (monotonic), to set beside other events."""
    out = []
    with open(path) as f:
        for line in f:
            t, ms, waited, stolen = map(float, line.split())
            if t >= start:
                out.append((t, ms, waited, stolen))
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
        # the status line's word, or at the namespaces zoom level (where a long status
        # line drops that word) what `g` says in its place
        if f"graph {nxt}" in status_line(now) or f"grouped by {nxt}:" in now:
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
        ("1 (graph)", "1", lambda b, n: "DESTINATION" not in n and _graph_drawn(n)),
        ("tab (next edge)", "tab", lambda b, n: selected(n) != selected(b) and "→" in selected(n)),
    ]


def _graph_drawn(text: str) -> bool:
    """Some of the graph on screen: a band's corner, a box's side or a line. Not only a
    band's corner: back from the edge table the canvas shows the selected edge's place,
    which can be inside a band wider than the screen (against a Prometheus at 2,000
    services, every round)."""
    return re.search("[╭╰│┃╎┌└▶◀]", text) is not None


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


def _remove(lag_file: str) -> None:
    """A console's probe files (`child`), once it has ended."""
    for suffix in ("", ".io", ".gc", ".slow", ".pause"):
        leftover = lag_file + suffix
        if os.path.exists(leftover):
            os.unlink(leftover)


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
    forbidden: tuple[bytes, ...] = (),
    launch_limit_s: float = 900,
    launches: int = 1,
) -> dict[str, Any]:
    """The figures of one console; a console that grows past `rss_limit_mib` is killed
    (the machine is shared) and said so. `forbidden`: byte strings that must never be
    in what the console wrote to its terminal (a hostile backend's escape sequences)."""
    figures: dict[str, Any] = {"args": args}
    try:
        _run(
            figures, args, cols, rows, rounds, idle_s, minutes, rss_limit_mib, env, forbidden,
            launch_limit_s, launches,
        )  # fmt: skip
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
    forbidden: tuple[bytes, ...] = (),
    launch_limit_s: float = 900,
    launches: int = 1,
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
        try:
            t.wait(
                "a progress line or a frame",
                lambda: progress(t.text()) or useful(t.text()),
                launch_limit_s,
            )
            figures["first_line_s"] = time.monotonic() - started
            t.wait("the first useful frame", lambda: useful(t.text()), launch_limit_s)
        except AssertionError:
            # what the console said instead: its status line, and a failure's words
            figures["screen_at_failure"] = t.text()
            raise
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
                    # what was on screen instead, once per key
                    figures.setdefault("failure_screens", {}).setdefault(name, t.text())
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
        pause = Path(lag_file + ".pause")  # the probe paused: the console's CPU alone
        pause.touch()
        time.sleep(0.1)  # the probe's round under way is over
        cpu0, t0 = cpu_s(pid), time.monotonic()
        time.sleep(idle_s)
        cpu1, t1 = cpu_s(pid), time.monotonic()
        pause.unlink()
        figures["idle_cpu"] = (cpu1 - cpu0) / (t1 - t0)
        figures["idle_s"] = t1 - t0
        idle_gc = gc_passes(lag_file + ".gc", t0, t1)
        figures["idle_gc"] = {  # per generation: passes, longest ms, share of a core
            g: (len(ms), max(ms), sum(ms) / 1000 / (t1 - t0))
            for g in (0, 1, 2)
            if (ms := [m for gen, m in idle_gc if gen == g])
        }
        left = minutes * 60 - (time.monotonic() - started)
        if left > 0:
            time.sleep(left)
        # and over the rest of the run, no key pressed: several of the latency queries'
        # rounds (one every 4 times as long as the last took, against a Prometheus), which
        # a window of 30 s may hold none, one or two of
        cpu2, t2 = cpu_s(pid), time.monotonic()
        if t2 - t1 >= 60:
            figures["idle_cpu_rest"] = ((cpu2 - cpu1) / (t2 - t1), t2 - t1)
        figures["blocked_idle_ms"] = max(lags(lag_file, t1, t2), default=0.0)
        after = lag_times(lag_file, first)
        figures["blocked_after_launch_ms"] = max((ms for _, ms, *_ in after), default=0.0)
        # the longest less the time the machine kept the UI thread waiting for a CPU
        figures["blocked_running_after_launch_ms"] = max(
            (ms - waited for _, ms, waited, _ in after), default=0.0
        )
        # the longest during which the hypervisor ran no other machine on our CPUs: a
        # virtual machine's thread stopped by it shows in no `schedstat`
        figures["blocked_unstolen_after_launch_ms"] = max(
            (ms for _, ms, _, stolen in after if not stolen), default=0.0
        )
        figures["gc_longest_after_launch_ms"] = max(
            (ms for _, ms in gc_passes(lag_file + ".gc", first)), default=0.0
        )
        figures["gc_passes_after_launch"] = [  # (when, generation, ms, CPU ms, young), the longer
            p for p in gc_times(lag_file + ".gc", first) if p[2] >= 10
        ]
        figures["slow_after_launch"] = slow_callbacks(lag_file + ".slow", first)
        figures["lags_after_launch"] = [  # (when, ms, waiting for a CPU, stolen), the longer
            lag for lag in after if lag[1] >= 30
        ]
        figures["rss_end_mib"] = rss_mib(pid)
        figures["rss_peak_mib"] = max((m for _, m in memory), default=0.0)
        figures["rss_samples"] = memory
        figures["minutes"] = (time.monotonic() - started) / 60
        stop.set()
        quit_at = time.monotonic()
        t.press("q")
        t.exit_code(60)
        figures["quit_ms"] = (time.monotonic() - quit_at) * 1000
        if forbidden:
            with t._changed:
                raw = bytes(t.raw)
            figures["escapes_leaked"] = [repr(b) for b in forbidden if b in raw]
            # what shows an escape from a label value made visible (sanitize's ␛)
            figures["escapes_shown"] = raw.count("␛".encode())
    _remove(lag_file)
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
    _remove(lag_file)
    # launch again, `launches` in all, at other moments of the backend's scrapes: one
    # launch is one sample of a figure that moves with what the backend is doing
    figures["launches_s"] = [figures["launch_s"]]
    for _ in range(launches - 1):
        time.sleep(LAUNCH_SPACING_S)
        lag_file = tempfile.mktemp(prefix="meshtop-lag-")
        started = time.monotonic()
        with Terminal(args, cols=cols, rows=rows, env={LAG_FILE: lag_file, **(env or {})},
                      command=[sys.executable, __file__, "--child", *args]) as t:  # fmt: skip
            t.wait("the first useful frame", lambda: useful(t.text()), launch_limit_s)
            figures["launches_s"].append(time.monotonic() - started)
            t.press("q")
            t.exit_code(120)
        _remove(lag_file)


def report(name: str, f: dict[str, Any]) -> str:
    if "failed" in f:
        seen = ", ".join(
            f"{k} {f[k]:.1f}" for k in ("first_line_s", "launch_s", "rss_peak_mib") if k in f
        )
        screen = [x.strip() for x in f.get("screen_at_failure", "").splitlines() if x.strip()]
        said = [x for x in screen if EDGES.search(x) or re.search(r"^\w+: |retrying|fail|error", x)]
        shown = "".join(f"\n    {x}" for x in said[:6])
        return f"### {name}\n\nfailed: {f['failed']} ({seen}); the screen said:{shown}"
    keys = f["keys_ms"]
    every = [ms for v in keys.values() for ms in v]
    lines = [
        f"### {name}",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| first line other than connecting… (s) | {f['first_line_s']:.2f} |",
        "| launch to first useful frame (s), median of {} ({}) | {:.2f} |".format(
            len(f["launches_s"]),
            ", ".join(f"{x:.2f}" for x in f["launches_s"]),
            statistics.median(f["launches_s"]),
        )
        if len(f.get("launches_s", ())) > 1
        else f"| launch to first useful frame (s) | {f['launch_s']:.2f} |",
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
        f"| UI thread blocked, longest: launch / keys / idle (the rest of the run) / "
        f"after launch (ms) | "
        f"{f['blocked_launch_ms']:.0f} / {f['blocked_keys_ms']:.0f} / "
        f"{f['blocked_idle_ms']:.0f} / {f['blocked_after_launch_ms']:.0f} |",
        f"| the same after launch, less the time it waited, runnable, for a CPU (ms) | "
        f"{f['blocked_running_after_launch_ms']:.0f} |"
        if "blocked_running_after_launch_ms" in f
        else None,
        f"| the longest after launch during which the hypervisor took no CPU time (ms) | "
        f"{f['blocked_unstolen_after_launch_ms']:.0f} |"
        if "blocked_unstolen_after_launch_ms" in f
        else None,
        f"| the garbage collector's longest pass after launch (ms) | "
        f"{f.get('gc_longest_after_launch_ms', 0.0):.0f} |",
        f"| idle CPU (share of a core), over {f.get('idle_s', 30):.0f} s after the keys, "
        f"the probe paused | {f['idle_cpu'] * 100:.1f}% |",
        "| the same over the rest of the run ({:.0f} s), the probe asking | {:.1f}% |".format(
            f["idle_cpu_rest"][1], f["idle_cpu_rest"][0] * 100
        )
        if "idle_cpu_rest" in f
        else None,
        "| of it the garbage collector's, per generation: passes, longest, share | "
        + "; ".join(
            f"gen {g}: {n}, {ms:.0f} ms, {share * 100:.1f}%"
            for g, (n, ms, share) in sorted(f.get("idle_gc", {}).items())
        )
        + " |",
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
    if "escapes_leaked" in f:
        leaked = ", ".join(f["escapes_leaked"]) or "none"
        lines.append(
            f"\nthe backend's escape sequences written to the terminal: {leaked}; "
            f"shown as ␛: {f['escapes_shown']} times"
        )
    if f["key_failures"]:
        lines.append(f"\nkeys whose effect never showed (120 s): {', '.join(f['key_failures'])}")
    return "\n".join(line for line in lines if line is not None)


# the backend's processes' CPU priority (`--backend-priority`), as the command they run
# under: on an operator's bastion the backend runs elsewhere; here it shares the console's
# two cores, and while Prometheus evaluated the latency query (seconds of CPU) the
# console's screen thread waited 50-80 ms, runnable, for a CPU, at nice 19 too (a waking
# thread need not preempt a niced one at once). A SCHED_IDLE process runs only on a CPU
# no other thread wants: the nearest to a backend elsewhere that a shared machine has.
BACKEND_PRIORITY = {
    "idle": ["chrt", "--idle", "0"],
    "low": ["nice", "-n", "19"],
    "same": [],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_prometheus(
    services: int,
    go: Callable[[str], None],
    seen: dict[str, Any] | None = None,
    dialect: str = "istio",
    interval_s: int = 5,
    priority: str = "same",
) -> dict[str, Any]:
    """`meshtop sim serve --services N` scraped every `interval_s` by a real Prometheus,
    both at `priority` (`BACKEND_PRIORITY`); `go(url)` once a window of samples is in.
    What Prometheus held and took is returned (`scraped`), in `seen` if given (as `go`
    runs: its `prometheus_pid`)."""
    meshtop = str(Path(sys.executable).parent / "meshtop")
    port = free_port()
    serve = [meshtop, "sim", "serve", "--services", str(services), "--port", str(port),
             "--dialect", dialect]  # fmt: skip
    seen = {} if seen is None else seen

    def wait(url: str) -> None:  # a window (1m) and more
        time.sleep(60 + 3 * interval_s)

    scraped(serve, port, interval_s, wait, go, seen, priority)
    return seen


def with_hostile(n: int, go: Callable[[str], None], priority: str = "same") -> dict[str, Any]:
    """`hostile_series(n)` served by this bench in a process of its own (`--hostile-serve`)
    and scraped every 20 s by a real Prometheus, both at `priority`; `go(url)` once five
    scrapes are in (more than a window of 1m). What Prometheus holds and what a scrape
    cost it is returned."""
    port = free_port()
    serve = [sys.executable, __file__, "--hostile-serve", str(n), str(port)]
    seen: dict[str, Any] = {}

    def loaded(url: str) -> None:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            scrapes = _scalar(url, 'count_over_time(up{job="mesh"}[10m])')
            if scrapes >= 5 and _scalar(url, 'up{job="mesh"}') == 1:
                break
            time.sleep(5)
        for name, q in (
            ("samples", 'scrape_samples_scraped{job="mesh"}'),
            ("scrape_s", 'scrape_duration_seconds{job="mesh"}'),
            ("edges", "count(count by (destination_workload_namespace, destination_workload) "
                      "({__name__=~\"istio_requests_total|istio_tcp_sent_bytes_total\"}))"),
        ):  # fmt: skip
            seen[name] = _scalar(url, q)

    scraped(serve, port, HOSTILE_SCRAPE_S, loaded, go, seen, priority)
    return seen


def refresh_queries(url: str) -> dict[str, Any]:
    """meshtop's refresh queries (Istio's, a 1m window, every reporter asked about every
    call: a first refresh's), each asked alone: its wall time, Prometheus's own evaluation
    time and its answer's size. What a first frame waits for at the least."""
    import httpx

    from meshtop.sources.dialects import ISTIO
    from meshtop.sources.prometheus.queries import snapshot_queries

    out: dict[str, Any] = {}
    with httpx.Client(timeout=120) as client:
        for name, promql in snapshot_queries(ISTIO, 60).items():
            start = time.monotonic()
            answer = client.post(f"{url}/api/v1/query", data={"query": promql, "stats": "all"})
            wall = time.monotonic() - start
            stats = answer.json().get("data", {}).get("stats", {}).get("timings", {})
            out[name] = {
                "wall_s": wall,
                "eval_s": stats.get("evalTotalTime", 0.0),
                "answer_mib": len(answer.content) / 2**20,
                "series": len(answer.json().get("data", {}).get("result", [])),
            }
    return out


def backend_line(seen: dict[str, Any]) -> str:
    """What the backend held and cost, in one paragraph."""
    queries = seen.get("queries", {})
    each = ", ".join(
        f"{name} {q['wall_s']:.1f} s ({q['eval_s']:.1f} s evaluating; "
        f"{q['series']:,} series, {q['answer_mib']:.1f} MiB)"
        for name, q in queries.items()
    )
    said = [
        f"meshtop's refresh queries asked one at a time before the console: {each}"
        if queries
        else "",
        f"{seen['samples']:,.0f} samples a scrape, {seen.get('edges', 0):,.0f} edges, "
        f"a scrape {seen.get('scrape_s', 0):.1f} s"
        if "samples" in seen
        else "",
        f"Prometheus {seen.get('prometheus_rss_mib', 0):,.0f} MiB resident at the console's "
        f"start, {seen.get('prometheus_rss_end_mib', 0):,.0f} at the end",
        f"the backend's processes at priority {seen.get('priority', 'same')}",
    ]
    return "backend: " + "; ".join(x for x in said if x)


def _scalar(url: str, query: str) -> float:
    """The first value of an instant query's answer, 0 if none (or an error)."""
    import httpx

    try:
        answer = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=60).json()
        return float(answer["data"]["result"][0]["value"][1])
    except (httpx.HTTPError, KeyError, IndexError, ValueError):
        return 0.0


def scraped(
    serve: list[str],
    port: int,
    interval_s: int,
    loaded: Callable[[str], None],
    go: Callable[[str], None],
    seen: dict[str, Any] | None = None,
    priority: str = "same",
) -> None:
    """`serve` (a command serving /metrics on `port`) scraped every `interval_s` by a real
    Prometheus, both at `priority` (`BACKEND_PRIORITY`); `go(url)` once `loaded(url)`
    returns."""
    import httpx

    binary = os.environ.get("MESHTOP_PROMETHEUS_BIN") or shutil.which("prometheus")
    if binary is None:
        sys.exit("no prometheus binary on PATH (or MESHTOP_PROMETHEUS_BIN)")
    prom_port = free_port()
    under = BACKEND_PRIORITY[priority]
    if under and shutil.which(under[0]) is None:
        sys.exit(f"--backend-priority {priority} needs {under[0]} on PATH")
    server = subprocess.Popen(
        [*under, *serve], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    with tempfile.TemporaryDirectory() as work:
        config = Path(work) / "prometheus.yml"
        config.write_text(
            f"global:\n  scrape_interval: {interval_s}s\n  scrape_timeout: {interval_s}s\n"
            "scrape_configs:\n  - job_name: mesh\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{port}']\n"
        )
        prom = subprocess.Popen(
            [*under, binary, f"--config.file={config}", f"--storage.tsdb.path={work}/data",
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
            loaded(url)
            if seen is not None:
                seen["priority"] = priority
                seen["queries"] = refresh_queries(url)
                seen["prometheus_rss_mib"] = rss_mib(prom.pid)
                seen["prometheus_pid"] = prom.pid
            go(url)
            if seen is not None:
                seen["prometheus_rss_end_mib"] = rss_mib(prom.pid)
        finally:
            prom.terminate()
            server.terminate()
            prom.wait(30)
            server.wait(30)


# -- a hostile backend: one workload's proxy calling N destinations ------------------------

# Istio's default buckets for istio_request_duration_milliseconds (meshtop/sim/exposition.py)
HOSTILE_BUCKETS_MS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    300000, 600000, 1800000, 3600000,
)  # fmt: skip
# Escape sequences a publisher may put in a label value, each with a tail of its own so
# that the console's output cannot hold it by chance: none may ever reach the terminal.
HOSTILE_ESCAPES = (
    "\x1b]0;meshtop-pwned\x07",  # the window's title
    "\x1b]52;c;bWVzaHRvcA==\x07",  # the clipboard
    "\x1b[38;5;201mPWN",  # a colour
    "\x1b[2J\x1b[HCLR",  # clear the screen, cursor home
    "\x1b[6nDSR",  # ask the terminal to type its cursor position
)
HOSTILE_OTHER = ("\u202eRTL", "|pipe", "/slash", "\nnewline", "\rreturn", "\x9bC1")
HOSTILE_SCRAPE_S = 20


def _hostile_name(i: int, base: str) -> str:
    """`base` as a hostile publisher may spell it: every 50th with an escape sequence or
    another character a terminal or meshtop's parsing must not take as it is, every 7th
    long (well past Kubernetes' 63)."""
    if i % 50 == 3:
        odd = (*HOSTILE_ESCAPES, *HOSTILE_OTHER)
        return f"{base}{odd[(i // 50) % len(odd)]}-{i}"
    if i % 7 == 5:
        return f"{base}-" + "long-name-" * 12 + str(i)
    return base


def hostile_series(n: int) -> tuple[list[str], list[float], list[bool]]:
    """The series one Istio sidecar (`edge/fanout`) exposes when its workload calls `n`
    destinations: per destination, `istio_requests_total` by response code (reporter
    `source`, with every label Istio's templates write, as `sim/exposition.py` writes
    them) and the latency histogram (Istio's buckets, `_sum`, `_count`), or for one
    destination in 20 the four TCP counters instead. Destinations are spread over n/50
    namespaces, some names long and some with escape sequences (`_hostile_name`); one
    edge in 12 fails a share of its calls, the hostile-named ones half of them. Returned
    as each series' text before its value, its growth per second, and whether it is a
    `_sum` (the others are whole counts)."""
    namespaces = max(1, n // 50)
    source = [
        ("reporter", "source"),
        ("source_workload", "fanout"),
        ("source_canonical_service", "fanout"),
        ("source_canonical_revision", "v1"),
        ("source_workload_namespace", "edge"),
        ("source_principal", "spiffe://cluster.local/ns/edge/sa/fanout"),
        ("source_app", "fanout"),
        ("source_version", "v1"),
        ("source_cluster", "Kubernetes"),
    ]
    families: dict[str, list[tuple[str, float, bool]]] = {
        name: []
        for name in (
            "istio_requests_total",
            "istio_request_duration_milliseconds_bucket",
            "istio_request_duration_milliseconds_sum",
            "istio_request_duration_milliseconds_count",
            "istio_tcp_received_bytes_total",
            "istio_tcp_sent_bytes_total",
            "istio_tcp_connections_opened_total",
            "istio_tcp_connections_closed_total",
        )
    }

    def text(labels: list[tuple[str, str]]) -> str:
        return ",".join(
            f'{k}="' + v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') + '"'
            for k, v in labels
        )

    for i in range(n):
        j = i % namespaces
        namespace = _hostile_name(j, f"tenant-{j:04d}")
        app = _hostile_name(i, f"svc-{i:05d}")
        tcp = i % 20 == 11
        hostile = (app != f"svc-{i:05d}" and len(app) < 60) or namespace != f"tenant-{j:04d}"
        labels = [
            *source,
            ("destination_workload", f"{app}-v1"),
            ("destination_canonical_service", app),
            ("destination_canonical_revision", "v1"),
            ("destination_workload_namespace", namespace),
            ("destination_principal", f"spiffe://cluster.local/ns/{namespace}/sa/{app}"),
            ("destination_app", app),
            ("destination_version", "v1"),
            ("destination_service", f"{app}.{namespace}.svc.cluster.local"),
            ("destination_service_name", app),
            ("destination_service_namespace", namespace),
            ("destination_cluster", "Kubernetes"),
            ("request_protocol", "tcp" if tcp else "http"),
            ("connection_security_policy", "unknown"),
        ]
        rps = 0.05 + (i * 7919 % 1000) / 100  # 0.05 to 10 a second
        if tcp:
            base = text([*labels, ("response_flags", "-")])
            for name, per_s in (
                ("istio_tcp_received_bytes_total", rps * 800),
                ("istio_tcp_sent_bytes_total", rps * 12000),
                ("istio_tcp_connections_opened_total", rps),
                ("istio_tcp_connections_closed_total", rps),
            ):
                families[name].append((f"{name}{{{base}}} ", per_s, False))
            continue
        failing = 0.5 if hostile else (0.01 + (i % 13) / 50 if i % 12 == 1 else 0.0)
        outcomes = [("200", "-", rps * (1 - failing))]
        if failing:
            outcomes.append(("503", "UF", rps * failing))
        median_ms = 2 + (i * 104729 % 400)
        for code, flags, per_s in outcomes:
            base = text([*labels, ("response_code", code), ("grpc_response_status", ""),
                         ("response_flags", flags)])  # fmt: skip
            families["istio_requests_total"].append(
                (f"istio_requests_total{{{base}}} ", per_s, False)
            )
            for le in (*HOSTILE_BUCKETS_MS, math.inf):
                share = 1.0 if le == math.inf else _lognormal_cdf(le, median_ms)
                bound = "+Inf" if le == math.inf else f"{le:g}"
                families["istio_request_duration_milliseconds_bucket"].append(
                    (f'istio_request_duration_milliseconds_bucket{{{base},le="{bound}"}} ',
                     per_s * share, False)
                )  # fmt: skip
            families["istio_request_duration_milliseconds_sum"].append(
                (f"istio_request_duration_milliseconds_sum{{{base}}} ",
                 per_s * median_ms * 1.2, True)
            )  # fmt: skip
            families["istio_request_duration_milliseconds_count"].append(
                (f"istio_request_duration_milliseconds_count{{{base}}} ", per_s, False)
            )
    heads = {
        "istio_requests_total": "# TYPE istio_requests_total counter\n",
        "istio_request_duration_milliseconds_bucket": (
            "# TYPE istio_request_duration_milliseconds histogram\n"
        ),
        "istio_tcp_received_bytes_total": "# TYPE istio_tcp_received_bytes_total counter\n",
        "istio_tcp_sent_bytes_total": "# TYPE istio_tcp_sent_bytes_total counter\n",
        "istio_tcp_connections_opened_total": (
            "# TYPE istio_tcp_connections_opened_total counter\n"
        ),
        "istio_tcp_connections_closed_total": (
            "# TYPE istio_tcp_connections_closed_total counter\n"
        ),
    }
    prefixes: list[str] = []
    slopes: list[float] = []
    sums: list[bool] = []
    for name, series in families.items():
        for k, (prefix, per_s, is_sum) in enumerate(series):
            prefixes.append((heads.get(name, "") if k == 0 else "") + prefix)
            slopes.append(per_s)
            sums.append(is_sum)
    return prefixes, slopes, sums


def _lognormal_cdf(le: float, median_ms: float) -> float:
    return 0.5 * (1 + math.erf(math.log(le / median_ms) / (0.8 * math.sqrt(2))))


def serve_hostile(n: int, port: int) -> None:
    """Serve `hostile_series(n)` on 127.0.0.1:`port`, each counter grown by the time since
    an hour before the start (a proxy that has run a while), so that rates are not zero."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    texts, slopes, sums = hostile_series(n)
    prefixes = [x.encode() for x in texts]
    del texts
    start = time.time() - 3600

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            t = time.time() - start
            parts: list[bytes] = [b""] * (2 * len(prefixes))
            parts[0::2] = prefixes
            parts[1::2] = [
                b"%.3f\n" % (k * t) if s else b"%d\n" % int(k * t)
                for k, s in zip(slopes, sums, strict=True)
            ]
            body = b"".join(parts)  # one copy of some 600 MB at 20,000: 0.4 s
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


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
    if sys.argv[1:2] == ["--hostile-serve"]:
        serve_hostile(int(sys.argv[2]), int(sys.argv[3]))
        return
    # every process this starts (the console, the simulator) imports the meshtop of the
    # tree this file is in, before the one installed (an editable install points at the
    # checkout it was made in): a copy of the tree, made to bench while the checkout is
    # edited, benches its own code
    tree = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, os.environ.get("PYTHONPATH")]))
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--services", type=int, nargs="+", default=[200, 2000, 20000])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--cols", type=int, default=160)
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--prometheus", action="store_true")
    parser.add_argument(
        "--scrape-interval", type=int, default=15, metavar="S",
        help="with --prometheus: how often it scrapes the simulator (Istio's addon: 15 s)",
    )  # fmt: skip
    parser.add_argument(
        "--hostile", type=int, default=None, metavar="N",
        help="a real Prometheus scraping one workload that calls N destinations",
    )  # fmt: skip
    parser.add_argument(
        "--backend-priority", choices=sorted(BACKEND_PRIORITY), default="idle",
        help="with --prometheus or --hostile: the backend's processes' (Prometheus, what it "
        "scrapes) CPU priority: idle (SCHED_IDLE, as if on a host of its own), low (nice "
        "19), same (as the console's)",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", default=None,
        help="the console's --timeout against a Prometheus (e.g. 120s; its default is 10s)",
    )  # fmt: skip
    parser.add_argument(
        "--max-response-mb", type=float, default=None,
        help="the console's [prometheus] max_response_mb (its default is 64), by a config file",
    )  # fmt: skip
    parser.add_argument(
        "--launch-limit", type=float, default=900, help="s; no first frame by then: failed"
    )
    parser.add_argument(
        "--launches", type=int, default=5,
        help="launches measured in all, the first the run's own, the rest after it "
        "(7 s apart); the figure is their median",
    )  # fmt: skip
    parser.add_argument("--json", default=None)
    parser.add_argument("--rss-limit", type=float, default=6000, help="MiB; killed beyond")
    opts = parser.parse_args()
    common: dict[str, Any] = {
        "cols": opts.cols,
        "rows": opts.rows,
        "rounds": opts.rounds,
        "idle_s": opts.idle,
        "minutes": opts.minutes,
        "rss_limit_mib": opts.rss_limit,
        "launch_limit_s": opts.launch_limit,
        "launches": opts.launches,
    }
    reading = ["--window", "1m", *(["--timeout", opts.timeout] if opts.timeout else [])]
    settings = tempfile.TemporaryDirectory(prefix="meshtop-bench-")
    if opts.max_response_mb is not None:
        config = Path(settings.name) / "config.toml"
        config.write_text(f"[prometheus]\nmax_response_mb = {opts.max_response_mb:g}\n")
        common["env"] = {"MESHTOP_CONFIG": str(config)}
    print(f"{machine()}; terminal {opts.cols}x{opts.rows}\n", flush=True)
    results: dict[str, Any] = {}
    if opts.hostile is not None:
        n = opts.hostile
        name = f"Prometheus scraping one workload calling {n:,} destinations (hostile)"
        forbidden = tuple(e.encode() for e in HOSTILE_ESCAPES)

        def go_hostile(url: str) -> None:
            results[name] = run(["--prometheus", url, *reading], forbidden=forbidden, **common)

        backend = with_hostile(n, go_hostile, priority=opts.backend_priority)
        results[name]["backend"] = backend
        print(report(name, results[name]), "\n", flush=True)
        print(backend_line(backend), "\n", flush=True)
    elif opts.prometheus:
        n = opts.services[0]
        name = (
            f"Prometheus scraping `meshtop sim serve --services {n}` every {opts.scrape_interval} s"
        )

        def go(url: str) -> None:
            results[name] = run(["--prometheus", url, *reading], **common)

        backend = with_prometheus(
            n, go, interval_s=opts.scrape_interval, priority=opts.backend_priority
        )
        backend["scrape_interval_s"] = opts.scrape_interval
        results[name]["backend"] = backend
        print(report(name, results[name]), "\n", flush=True)
        print(backend_line(backend), "\n", flush=True)
    else:
        for n in opts.services:
            name = f"`meshtop demo --services {n}`"
            results[name] = run(["demo", "--services", str(n)], **common)
            print(report(name, results[name]), "\n", flush=True)
    settings.cleanup()
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
