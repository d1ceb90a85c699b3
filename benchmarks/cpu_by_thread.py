"""Whose CPU a block waited behind (issue 17): every thread's time on a CPU and time
waiting, runnable, for one (`/proc/PID/task/TID/schedstat`), sampled every 5 ms for the
processes whose name holds one of `--names`, beside a `bench_console.py` run; then, for
a window of time (`time.monotonic()`, as the bench's JSON gives its keys and blocks),
each process's share, the console's screen thread (its main thread) apart.

    .venv/bin/python benchmarks/cpu_by_thread.py sample FILE SECONDS &
    .venv/bin/python benchmarks/bench_console.py --prometheus ... --json RUN.json
    .venv/bin/python benchmarks/cpu_by_thread.py window FILE START END
    .venv/bin/python benchmarks/cpu_by_thread.py keys FILE RUN.json

`keys` gives Prometheus's CPU in each 100 ms after each `enter` and `esc` of the run.
The sampler reads a few hundred small files every 5 ms: a few percent of a core, and a
sample late when the machine is busy (its own wait shows in the gaps between samples).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time
from pathlib import Path

NAMES = ("prometheus", "python", "meshtop", "victoria")


def sample(path: Path, seconds: float, names: tuple[str, ...] = NAMES) -> None:
    """Lines of `when pid tid comm ns-on-a-cpu ns-waiting` (changes since the sample
    before), and `# pid cmdline` once per process."""
    me = str(os.getpid())
    before: dict[tuple[str, str], tuple[int, int]] = {}
    known: set[str] = set()
    pids: list[tuple[str, str]] = []
    scanned = 0.0
    end = time.monotonic() + seconds
    with path.open("w", buffering=1 << 20) as out:
        while (now := time.monotonic()) < end:
            if now - scanned > 0.5:  # processes come and go
                pids = []
                for pid in filter(str.isdigit, os.listdir("/proc")):
                    try:
                        comm = Path(f"/proc/{pid}/comm").read_text().strip()
                        if pid == me or not any(n in comm for n in names):
                            continue
                        if pid not in known:
                            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                            out.write(f"# {pid} {cmd.decode(errors='replace')[:200]}\n")
                            known.add(pid)
                    except OSError:
                        continue
                    pids.append((pid, comm))
                scanned = now
            for pid, comm in pids:
                try:
                    tids = os.listdir(f"/proc/{pid}/task")
                except OSError:
                    continue
                for tid in tids:
                    try:
                        on, waiting, _ = (
                            Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
                        )
                    except (OSError, ValueError):
                        continue
                    last = before.get((pid, tid))
                    before[(pid, tid)] = int(on), int(waiting)
                    if last is not None and (int(on) - last[0] or int(waiting) - last[1]):
                        out.write(
                            f"{now:.4f} {pid} {tid} {comm} {int(on) - last[0]} "
                            f"{int(waiting) - last[1]}\n"
                        )
            time.sleep(0.005)


def _read(path: Path) -> tuple[dict[str, str], list[tuple[float, str, str, int, int]]]:
    """Each process's name (what it runs), and the samples."""
    who: dict[str, str] = {}
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            pid, _, cmd = line[2:].partition(" ")
            words = cmd.split()
            name = next((Path(w).name for w in words if not w.startswith("-")), pid)
            if len(words) > 1 and Path(words[0]).name.startswith("python"):
                name = Path(words[1]).name
            who[pid] = (
                name
                + (" --child" if "--child" in words else "")
                + (" sim" if "sim" in words else "")
            )
            continue
        when, pid, tid, _, on, waiting = line.split()
        rows.append((float(when), pid, tid, int(on), int(waiting)))
    return who, rows


def window(path: Path, start: float, end: float) -> dict[str, tuple[float, float]]:
    """(ms on a CPU, ms waiting for one) of each process from `start` to `end`, the
    console's screen thread as its own."""
    who, rows = _read(path)
    on: dict[str, float] = collections.defaultdict(float)
    waiting: dict[str, float] = collections.defaultdict(float)
    for when, pid, tid, ran, waited in rows:
        if start <= when <= end + 0.005:  # a sample counts what came before it
            name = who.get(pid, pid)
            if tid == pid and "--child" in name:
                name += " (screen thread)"
            on[name] += ran / 1e6
            waiting[name] += waited / 1e6
    return {k: (on[k], waiting[k]) for k in sorted(on, key=lambda k: -on[k])}


def keys(path: Path, run: Path) -> list[tuple[str, float, list[float]]]:
    """Prometheus's ms on a CPU in each 100 ms of the 1.2 s after each enter and esc."""
    who, rows = _read(path)
    figures = next(iter(json.loads(run.read_text()).values()))
    found = []
    for key, start, _ in figures["key_windows"]:
        if not key.startswith(("enter", "esc (close)")):
            continue
        tenths = [0.0] * 12
        for when, pid, _, ran, _ in rows:
            if who.get(pid) == "prometheus" and start <= when < start + 1.2:
                tenths[int((when - start) * 10)] += ran / 1e6
        found.append((key, start, tenths))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("sample")
    s.add_argument("file", type=Path)
    s.add_argument("seconds", type=float)
    w = sub.add_parser("window")
    w.add_argument("file", type=Path)
    w.add_argument("start", type=float)
    w.add_argument("end", type=float)
    k = sub.add_parser("keys")
    k.add_argument("file", type=Path)
    k.add_argument("run", type=Path)
    args = parser.parse_args()
    if args.what == "sample":
        sample(args.file, args.seconds)
    elif args.what == "window":
        ms = 1000 * (args.end - args.start)
        cpus = os.cpu_count() or 1
        print(f"{ms:.0f} ms: {cpus * ms:.0f} ms of {cpus} CPUs")
        for name, (ran, waited) in window(args.file, args.start, args.end).items():
            print(f"  {name:40s} on a CPU {ran:7.1f} ms, waiting for one {waited:7.1f} ms")
    else:
        for key, start, tenths in keys(args.file, args.run):
            print(f"{key:14s} {start:.2f}  {[round(t) for t in tenths]}")


if __name__ == "__main__":
    main()
