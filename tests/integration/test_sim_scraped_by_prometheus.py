"""A real Prometheus scrapes `meshtop sim serve` and sees what it would see in a real
mesh: the series parse, both reporters are there, and PromQL over them gives back the
rates and latencies the simulator was set to."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from meshtop.sim.exposition import MeshExposition
from meshtop.sim.server import MetricsServer
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo

from .prometheus import Prometheus, free_port, running_prometheus

pytestmark = pytest.mark.integration

V3 = 'destination_workload="reviews-v3",source_workload="productpage-v1"'
WINDOW_S = 10
W = f"[{WINDOW_S}s]"


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulation, Prometheus]]:
    sim = Simulation(bookinfo())
    server = MetricsServer(MeshExposition(sim), "127.0.0.1", 0)
    server.start_in_thread()
    host, port = server.server_address[:2]
    try:
        with running_prometheus([f"{host!s}:{port}"], tmp_path_factory.mktemp("prom")) as prom:
            prom.wait_for(
                "a rate over two scrapes",
                lambda: (
                    prom.scalar(
                        f'sum(rate(istio_requests_total{{reporter="destination",{V3}}}{W}))'
                    )
                    is not None
                ),
            )
            # rate() over a window the series does not yet fill reads low: fill it first.
            time.sleep(WINDOW_S + 2)
            yield sim, prom
    finally:
        server.shutdown()
        server.server_close()


def test_prometheus_scrapes_the_simulator_without_errors(
    scraped: tuple[Simulation, Prometheus],
) -> None:
    _, prom = scraped
    targets = prom.client.get("/api/v1/targets").json()["data"]["activeTargets"]
    assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")]


def test_request_rate_matches_the_simulation(scraped: tuple[Simulation, Prometheus]) -> None:
    sim, prom = scraped
    measured = prom.scalar(f'sum(rate(istio_requests_total{{reporter="destination",{V3}}}{W}))')
    configured = next(
        e.rate
        for e in sim.flows()
        if e.source.workload.name == "productpage-v1"
        and e.destination.workload.name == "reviews-v3"
    )
    # The simulation drifts a few percent over the window and Envoy counts whole requests.
    assert measured == pytest.approx(configured, rel=0.15)


def test_sidecar_traffic_is_reported_twice_and_edges_once_each_side(
    scraped: tuple[Simulation, Prometheus],
) -> None:
    _, prom = scraped

    def reporters(selector: str, metric: str = "istio_requests_total") -> set[str]:
        return {
            r["metric"]["reporter"]
            for r in prom.query(f"count by (reporter) ({metric}{{{selector}}})")
        }

    assert reporters(V3) == {"source", "destination"}
    assert reporters('source_workload="unknown",destination_workload="productpage-v1"') == {
        "destination"
    }
    assert reporters(
        'source_workload="details-v1",destination_service_name="www.googleapis.com"',
        "istio_tcp_sent_bytes_total",
    ) == {"source"}


def test_error_rate_and_latency_through_promql(scraped: tuple[Simulation, Prometheus]) -> None:
    _, prom = scraped
    errors = prom.scalar(
        f'sum(rate(istio_requests_total{{reporter="destination",{V3},response_code=~"5.."}}{W}))'
        f' / sum(rate(istio_requests_total{{reporter="destination",{V3}}}{W}))'
    )
    assert errors is not None and 0.02 < errors < 0.4  # v3 fails about 15%
    p50 = prom.scalar(
        "histogram_quantile(0.5, sum by (le) (rate("
        f'istio_request_duration_milliseconds_bucket{{reporter="destination",{V3}}}{W})))'
    )
    # The simulated median is about 31ms; Envoy's buckets around it are 25 and 50.
    assert p50 is not None and 25 <= p50 <= 50


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("istio", 'destination_workload="reviews-v3"'),
        ("ambient", 'reporter="waypoint"'),
        ("linkerd", 'response_total{direction="outbound",namespace="bookinfo"'),
    ],
)
def test_sim_serve_command_serves_metrics(dialect: str, expected: str) -> None:
    """The command a user runs, as a process: it prints where it serves, and serves."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meshtop",
            "sim",
            "serve",
            "--port",
            str(port),
            "--dialect",
            dialect,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = f"http://127.0.0.1:{port}/metrics"
        assert line.strip() == f"serving simulated {dialect} metrics on {url}"
        time.sleep(1.1)  # let a second of traffic accumulate
        assert expected in httpx.get(url, timeout=5).text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
