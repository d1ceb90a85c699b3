"""The console on a real Prometheus that goes away: the last good edges stay, marked
stale with their age, the reason shows in place, and retries back off."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from meshtop.config import PrometheusConfig, Settings
from meshtop.connect import Sources
from meshtop.model import SourceState
from meshtop.sim.exposition import MeshExposition
from meshtop.sim.server import MetricsServer
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo
from meshtop.sources.prometheus import PrometheusMetrics
from meshtop.sources.protocols import ClusterSources
from meshtop.tui.app import MeshtopApp
from meshtop.tui.widgets.edge_table import EdgeTable

from .prometheus import running_prometheus

pytestmark = pytest.mark.integration


async def test_prometheus_going_away_leaves_stale_edges_and_a_reason(tmp_path: Path) -> None:
    server = MetricsServer(MeshExposition(Simulation(bookinfo())), "127.0.0.1", 0)
    server.start_in_thread()
    try:
        with running_prometheus([f"127.0.0.1:{server.server_address[1]}"], tmp_path) as prom:
            prom.wait_for(
                "traffic",
                lambda: prom.scalar("sum(rate(istio_requests_total[10s]))") is not None,
            )
            metrics = PrometheusMetrics(PrometheusConfig(prom.url, timeout_s=2))
            app = MeshtopApp(
                Sources(ClusterSources.one(metrics), False, time.time),
                settings=Settings(refresh_s=0.2, window_s=10),
            )
            async with app.run_test(size=(120, 30)) as pilot:
                while app.snapshot is None or not app.snapshot.edges:
                    await asyncio.sleep(0.1)
                    if app.snapshot is not None and not app.snapshot.edges:
                        await pilot.press("r")
                shown = app.query_one(EdgeTable).row_count
                assert shown >= 8
                assert "SIMULATED" not in str(app.query_one("#status").render())
                prom.stop()  # Prometheus goes away
                while app.snapshot.sources["metrics"].state is not SourceState.STALE:
                    await asyncio.sleep(0.1)
                await pilot.pause()
                notice = str(app.query_one("#notice").render())
                assert f"cannot reach Prometheus at {prom.url}: connection refused" in notice
                assert "retrying in" in notice
                assert "metrics stale" in str(app.query_one("#status").render())
                assert app.query_one(EdgeTable).row_count == shown  # the last good edges stay
                assert app.retry_delay() > 0.2  # and it backs off
    finally:
        server.shutdown()
        server.server_close()
