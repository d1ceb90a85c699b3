"""The console's time travel on a real Prometheus (issue 19): a source moved to a moment
(`moment(at)`) answers exactly what one made for it (`--at`) does, and leaves the live
source live; a moment before anything the backend keeps says so."""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from meshtop.config import PrometheusConfig
from meshtop.errors import BackendError
from meshtop.sim.exposition import MeshExposition
from meshtop.sim.server import MetricsServer
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo
from meshtop.sources.prometheus import PrometheusMetrics

from .prometheus import running_prometheus

WINDOW_S = 10


def test_a_moved_source_answers_as_one_made_at_that_moment_and_before_retention_says_so(
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        server = MetricsServer(MeshExposition(Simulation(bookinfo()), "istio"), "127.0.0.1", 0)
        server.start_in_thread()
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        host, port = server.server_address[:2]
        prom = stack.enter_context(running_prometheus([f"{host!s}:{port}"], tmp_path))
        prom.wait_for(
            "two scrapes", lambda: prom.scalar("count(count_over_time(up[1m]) >= 2)") is not None
        )
        time.sleep(WINDOW_S + 2)
        config = PrometheusConfig(prom.url)
        live = PrometheusMetrics(config)
        at = time.time() - 1
        moved = live.moment(at)
        made = PrometheusMetrics(config, at=at)
        there = asyncio.run(moved.traffic(WINDOW_S))
        assert there.edges and {e.key: e.stats for e in there.edges} == {
            e.key: e.stats for e in asyncio.run(made.traffic(WINDOW_S)).edges
        }
        assert live.at is None  # the live source is still live
        assert asyncio.run(live.traffic(WINDOW_S)).edges  # and knows the mesh's dialect now
        long_ago = time.time() - 6 * 3600
        empty = asyncio.run(live.moment(long_ago).traffic(WINDOW_S))  # the dialect known
        assert not empty.edges
        assert any("before what it keeps (its retention)" in w for w in empty.warnings), empty
        with pytest.raises(BackendError, match="before what it keeps"):  # nothing to know it by
            asyncio.run(PrometheusMetrics(config).moment(long_ago).traffic(WINDOW_S))
