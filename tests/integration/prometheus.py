"""A real Prometheus server for tests: started on a free loopback port with its own
storage in a temporary folder, scraping the targets given every second."""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from meshtop.sim.exposition import MeshExposition
from meshtop.sim.server import MetricsServer
from tests.conftest import need

# How far back a test's fixed moment is (`PrometheusMetrics(at=…)`), for every query of a
# test to read the same samples: every scrape begun before it is stored by then (a scrape
# times out after the 1 s interval)
SETTLED_S = 3.0


def prometheus_binary() -> str:
    found = os.environ.get("MESHTOP_PROMETHEUS_BIN") or shutil.which("prometheus")
    need(
        found is not None,
        "no prometheus binary on PATH: `make test` installs Debian's package when run as "
        "root; elsewhere install it or set MESHTOP_PROMETHEUS_BIN",
    )
    assert found is not None
    return found


def scrape_config(targets: list[str], interval: str, evaluation_interval: str = "") -> str:
    """A Prometheus scrape configuration (VictoriaMetrics reads the same) for `targets`,
    host:port pairs serving /metrics, every `interval`."""
    evaluation = f"  evaluation_interval: {evaluation_interval}\n" if evaluation_interval else ""
    return (
        f"global:\n  scrape_interval: {interval}\n{evaluation}"
        "scrape_configs:\n  - job_name: envoy-stats\n    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: [{', '.join(repr(t) for t in targets)}]\n"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    def __init__(self, url: str, proc: subprocess.Popen[bytes] | None = None) -> None:
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=10)
        self._proc = proc

    def stop(self) -> None:
        """Stop the server now, as an outage would."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)

    def query(self, promql: str) -> list[dict[str, Any]]:
        body = self.client.get("/api/v1/query", params={"query": promql}).json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 45) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.5)
        raise AssertionError(f"Prometheus: {what} not seen within {timeout}s")


@contextmanager
def running_prometheus(
    targets: list[str], workdir: Path, scrape_interval: str = "1s"
) -> Iterator[Prometheus]:
    """`targets` are host:port pairs serving /metrics."""
    binary = prometheus_binary()
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(scrape_config(targets, scrape_interval, evaluation_interval="1s"))
    log = (workdir / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    prom = Prometheus(f"http://127.0.0.1:{port}", proc)
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(
                    f"prometheus exited: {(workdir / 'prometheus.log').read_text()}"
                )
            try:
                return prom.client.get("/-/ready").status_code == 200
            except httpx.TransportError:
                return False

        prom.wait_for("readiness", ready, timeout=30)
        yield prom
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        prom.client.close()
        log.close()


@contextmanager
def scraping(
    exposition: MeshExposition, workdir: Path, scrape_interval: str = "1s"
) -> Iterator[Prometheus]:
    """A real Prometheus scraping `exposition`, served on loopback for as long."""
    server = MetricsServer(exposition, "127.0.0.1", 0)
    server.start_in_thread()
    host, port = server.server_address[:2]
    try:
        with running_prometheus([f"{host!s}:{port}"], workdir, scrape_interval) as prom:
            yield prom
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def scraped_mesh(workdir: Path, window_s: float) -> Iterator[Prometheus]:
    """A real Prometheus scraping a generated mesh of 40 services every second, once it
    holds `window_s` of samples: rate() over a window the series do not fill reads low."""
    from meshtop.sim.sources import Simulation
    from meshtop.sim.topology import generated

    with scraping(MeshExposition(Simulation(generated(40, seed=3)), "istio"), workdir) as prom:
        prom.wait_for(
            "two scrapes", lambda: prom.scalar("count(count_over_time(up[1m]) >= 2)") is not None
        )
        time.sleep(window_s + 2)
        yield prom


def same_figures(a: object, b: object) -> bool:
    """The same figures to 1e-9 (Prometheus sums series in an order of its own), every
    other value equal, through tuples, mappings and dataclasses (a `History`)."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(b)) or (math.isnan(a) and math.isnan(b))
    if is_dataclass(a) and type(a) is type(b):
        return all(same_figures(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_figures(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same_figures(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def bounds_in(promql: str, op: str = "!~") -> set[float]:
    """The bucket bounds a query's `le` matchers (`op`) name, as numbers: Prometheus 3
    writes `2500` as `2500.0`."""
    return {
        float(le.replace("\\", ""))
        for pattern in re.findall(rf'le{op}"([^"]*)"', promql)
        for le in pattern.split("|")
    }


def forwarded(
    handler: BaseHTTPRequestHandler, upstream: str, method: str, body: bytes | None
) -> tuple[int, bytes, str]:
    """A proxy's request asked of the Prometheus at `upstream` as it came: its answer's
    status, body and content type."""
    answer = httpx.request(
        method,
        upstream + handler.path,
        content=body,
        headers={"Content-Type": handler.headers.get("Content-Type", "")} if body else {},
        timeout=30,
    )
    return answer.status_code, answer.content, answer.headers.get("Content-Type", "")
