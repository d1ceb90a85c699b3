"""Consoles against one Prometheus (issue 17): `meshtop sim serve --services N` scraped
every 5 s by a real Prometheus (`bench_console.with_prometheus`), and K console-like
refresh loops at once, each in a process of its own, as the console refreshes: the
Prometheus source with `latency_later`, a refresh 2 s after each answer, for M minutes.
Per loop: when the first latency showed, how many refreshes had latency, said it
unavailable or still coming, the refresh's median wall time and how old the latency was
(`Traffic.latency_age_s`, where said).

    python benchmarks/bench_latency_consoles.py --services 2000 --consoles 2 --minutes 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import bench_console


def loop(url: str, minutes: float) -> list[dict[str, Any]]:
    """One console's refreshes against `url`, as the console asks them."""
    from meshtop.sources.prometheus import PrometheusMetrics
    from meshtop.sources.prometheus_config import PrometheusConfig

    seen: list[dict[str, Any]] = []

    async def refreshes() -> None:
        source = PrometheusMetrics(PrometheusConfig(url=url), latency_later=True)
        began = time.monotonic()
        while time.monotonic() - began < minutes * 60:
            started = time.monotonic()
            traffic = await source.traffic(60)
            seen.append(
                {
                    "at_s": started - began,
                    "took_s": time.monotonic() - started,
                    "latency": sum(1 for e in traffic.edges if e.stats.p95_ms is not None),
                    "age_s": getattr(traffic, "latency_age_s", None),
                    "warnings": [w[:200] for w in traffic.warnings],
                }
            )
            await asyncio.sleep(2)

    asyncio.run(refreshes())
    return seen


def summary(refreshes: list[dict[str, Any]]) -> dict[str, Any]:
    shown = [r for r in refreshes if r["latency"]]
    ages = [r["age_s"] for r in refreshes if r["age_s"] is not None]
    said = [w for r in refreshes for w in r["warnings"]]
    return {
        "refreshes": len(refreshes),
        "first_latency_s": round(shown[0]["at_s"], 1) if shown else None,
        "with_latency": len(shown),
        "unavailable": sum(1 for w in said if "unavailable" in w),
        "coming": sum(1 for w in said if "still coming" in w),
        "refresh_median_s": round(statistics.median(r["took_s"] for r in refreshes), 2),
        "age_median_s": round(statistics.median(ages), 1) if ages else None,
        "age_max_s": round(max(ages), 1) if ages else None,
        "why": sorted({w.split(" within ")[0] for w in said if "unavailable" in w}),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=2000)
    p.add_argument("--consoles", type=int, default=2)
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--json", help="every refresh of every console, written here")
    p.add_argument("--loop", nargs=2, metavar=("URL", "OUT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.loop:  # one console, in a process of its own
        Path(a.loop[1]).write_text(json.dumps(loop(a.loop[0], a.minutes)))
        return
    out: dict[str, Any] = {}

    def go(url: str) -> None:
        files = [Path(f"/tmp/bench_latency_consoles.{i}.json") for i in range(a.consoles)]
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--minutes", str(a.minutes), "--loop", url, str(f)]
            )
            for f in files
        ]
        for proc in procs:
            proc.wait()
        out["consoles"] = [json.loads(f.read_text()) for f in files]

    bench_console.with_prometheus(a.services, go)
    for i, refreshes in enumerate(out["consoles"]):
        print(f"console {i + 1}: {json.dumps(summary(refreshes))}")
    if a.json:
        Path(a.json).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
