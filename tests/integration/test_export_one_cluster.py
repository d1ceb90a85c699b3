"""`meshtop export` over one cluster: Bookinfo's traffic from a real Prometheus (scraping
the simulated proxies), Bookinfo's routes from that cluster's API server (a Kubernetes API
emulator, tests/kube/emulator.py, behind a kubeconfig context): the report lists the
cluster's routes, as it does over several, whether --context comes after `export` or before."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshtop.sim.exposition import MeshExposition
from meshtop.sim.server import MetricsServer
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo

from ..conftest import FIXTURES
from ..kube.emulator import Emulator, running
from .prometheus import Prometheus, running_prometheus

pytestmark = pytest.mark.integration

NETWORKING = FIXTURES / "istio" / "networking"


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = MetricsServer(MeshExposition(Simulation(bookinfo())), "127.0.0.1", 0)
    server.start_in_thread()
    try:
        target = f"127.0.0.1:{server.server_address[1]}"
        with running_prometheus([target], tmp_path_factory.mktemp("prom")) as prom:
            prom.wait_for(
                "traffic",
                lambda: prom.scalar("sum(rate(istio_requests_total[10s]))") is not None,
            )
            yield prom
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    emulator = Emulator()
    emulator.load(NETWORKING / "virtual-service-reviews-90-10.yaml")
    emulator.load(NETWORKING / "destination-rule-all.yaml")
    with running(emulator, tmp_path) as config:
        yield config


@pytest.mark.parametrize("where", ["after export", "before export"])
def test_export_over_one_cluster_lists_its_routes(
    prom: Prometheus, kubeconfig: Path, where: str
) -> None:
    cluster = ["--context", "emulator", "--kubeconfig", str(kubeconfig)]
    export = ["export", "--format", "json", "--prometheus", prom.url, "--window", "10s"]
    args = [*export, *cluster] if where == "after export" else [*cluster, *export]
    result = subprocess.run(
        [sys.executable, "-m", "meshtop", *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["edges"]
    assert doc["sources"]["control_plane"]["state"] == "fresh"
    routes = [(r["kind"], r["namespace"], r["name"]) for r in doc["routes"]]
    assert routes == [("VirtualService", "bookinfo", "reviews")]
    (reviews,) = doc["routes"]
    weights = [(d["subset"], d["weight"]) for d in reviews["rules"][0]["destinations"]]
    assert weights == [("v1", 90), ("v2", 10)]
