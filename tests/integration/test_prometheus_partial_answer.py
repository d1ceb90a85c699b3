"""A real Prometheus whose latency answer is over the source's cap (issue 17): the
refresh still gives every edge with its rates and errors, the latency of none, and says
why once; `meshtop export` prints the edges and that line as a warning on stderr."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshtop.config import PrometheusConfig
from meshtop.mesh import refresh
from meshtop.model import SourceState
from meshtop.sources.dialects import ISTIO
from meshtop.sources.prometheus import PrometheusMetrics
from meshtop.sources.prometheus.latency import Cuts, unmeshed
from meshtop.sources.prometheus.queries import snapshot_queries
from meshtop.sources.protocols import ClusterSources

from .prometheus import Prometheus, scraped_mesh

pytestmark = pytest.mark.integration

WINDOW_S = 10


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with scraped_mesh(tmp_path_factory.mktemp("p"), WINDOW_S) as p:
        yield p


def _cap_below_latency(prom: Prometheus, at: float) -> float:
    """A cap (MiB) over the requests and TCP answers of a first refresh, under its
    latency answer's: the sizes of Prometheus's own answers to the same queries."""
    queries = snapshot_queries(ISTIO, WINDOW_S, (), unmeshed(ISTIO), Cuts().matchers(ISTIO))
    size = {
        name: len(prom.client.get("/api/v1/query", params={"query": q, "time": at}).content)
        for name, q in queries.items()
    }
    cap = 1.2 * max(size["requests"], size["tcp"])
    assert size["latency"] > 1.2 * cap, size  # the mesh makes it so
    return cap / (1024 * 1024)


def _source(prom: Prometheus, at: float, cap_mb: float | None = None) -> PrometheusMetrics:
    kw = {} if cap_mb is None else {"max_response_mb": cap_mb}
    return PrometheusMetrics(PrometheusConfig(prom.url, dialect="istio", **kw), at=at)  # type: ignore[arg-type]


def test_latency_over_the_cap_leaves_the_edges_with_their_rates(prom: Prometheus) -> None:
    at = time.time() - 1
    cap = _cap_below_latency(prom, at)
    whole = asyncio.run(_source(prom, at).traffic(WINDOW_S))
    partial = asyncio.run(_source(prom, at, cap).traffic(WINDOW_S))
    assert whole.edges and not whole.warnings
    assert {e.key for e in partial.edges} == {e.key for e in whole.edges}
    before = {e.key: e.stats for e in whole.edges}
    for e in partial.edges:
        was = before[e.key]
        assert (e.stats.rps, e.stats.error_rate, e.stats.mtls) == (
            was.rps,
            was.error_rate,
            was.mtls,
        ), e.key
        assert (e.stats.tcp_request_bps, e.stats.protocol) == (was.tcp_request_bps, was.protocol)
        assert (e.stats.p50_ms, e.stats.p95_ms, e.stats.p99_ms) == (None, None, None), e.key
    assert any(e.stats.p99_ms is not None for e in whole.edges)
    assert list(partial.warnings) == [
        f"latency unavailable: Prometheus at {prom.url} answered more than {cap:g} MiB; "
        "raise [prometheus] max_response_mb if a query really needs it"
    ]


def test_a_refresh_marks_the_metrics_fresh_and_says_why_latency_is_missing(
    prom: Prometheus,
) -> None:
    at = time.time() - 1
    cap = _cap_below_latency(prom, at)
    source = _source(prom, at, cap)
    snapshot = asyncio.run(refresh(ClusterSources.one(source), window_s=WINDOW_S))
    health = snapshot.sources["metrics"]
    assert health.state is SourceState.FRESH
    assert health.reason.count("latency unavailable: ") == 1
    assert f"answered more than {cap:g} MiB" in health.reason
    assert snapshot.edges


def test_export_prints_the_edges_and_warns_once(prom: Prometheus, tmp_path: Path) -> None:
    at = time.time() - 1
    cap = _cap_below_latency(prom, at)
    config = tmp_path / "config.toml"
    config.write_text(f"[prometheus]\nmax_response_mb = {cap!r}\n")
    env = {**os.environ, "MESHTOP_CONFIG": str(config)}
    export = ["export", "--prometheus", prom.url, "--dialect", "istio", "--format", "json"]
    done = subprocess.run(
        [sys.executable, "-m", "meshtop", *export, "--window", f"{WINDOW_S}s"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    http = [e for e in report["edges"] if e["protocol"] != "tcp"]
    assert http and all(e["rps"] > 0 and e["p99_ms"] is None for e in http)
    warned = [line for line in done.stderr.splitlines() if "latency unavailable" in line]
    assert len(warned) == 1 and warned[0].startswith("meshtop: warning: "), done.stderr
    assert "max_response_mb" in warned[0]


def test_a_refused_latency_leaves_no_refresh_in_a_cycle(prom: Prometheus) -> None:
    """Refresh after refresh with the latency refused: nothing of a refresh (its answers,
    its edges) is left for the garbage collector to find; the console keeps the collector
    out of its way, and a hostile backend's refusals kept every refresh in a cycle."""
    import gc

    from meshtop.mesh import DaemonThreads
    from meshtop.model import Edge

    at = time.time() - 1
    source = _source(prom, at, _cap_below_latency(prom, at))

    async def refreshes() -> None:
        asyncio.get_running_loop().set_default_executor(DaemonThreads())
        for _ in range(3):
            assert "latency unavailable" in " ".join((await source.traffic(WINDOW_S)).warnings)

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        asyncio.run(refreshes())
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, Edge)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
