"""Bytes written to the terminal per refresh in steady state: `meshtop demo` runs in a
real pseudo-terminal (80x24 and 160x48), refreshing every second; after it has settled,
everything it writes for a while is counted. This is what a slow SSH link carries.

    .venv/bin/python benchmarks/bench_terminal_bytes.py [--seconds 12]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
import time


def measure(
    args: list[str], cols: int, rows: int, settle: float, seconds: float
) -> tuple[int, float]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshtop", *args],
        stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    counts: list[tuple[float, int]] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            counts.append((time.monotonic(), len(data)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(settle)
    start = time.monotonic()
    time.sleep(seconds)
    end = time.monotonic()
    os.write(master, b"q")
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    os.close(master)
    total = sum(n for t, n in counts if start <= t < end)
    return total, end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--settle", type=float, default=6)
    opts = parser.parse_args()
    print("| mesh | terminal | refreshes | bytes | bytes per refresh |")
    print("|---|---|---:|---:|---:|")
    for name, extra in (("Bookinfo", []), ("200 services", ["--services", "200"])):
        for cols, rows in ((80, 24), (160, 48)):
            total, took = measure(
                ["demo", "--refresh", "1s", *extra], cols, rows, opts.settle, opts.seconds
            )
            refreshes = took / 1.0
            size = f"{cols}x{rows}"
            print(f"| {name} | {size} | {refreshes:.0f} | {total:,} | {total / refreshes:,.0f} |")


if __name__ == "__main__":
    main()
