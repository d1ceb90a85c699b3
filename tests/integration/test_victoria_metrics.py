"""A second real PromQL engine: VictoriaMetrics (single node, Debian's package) and a real
Prometheus scrape the same simulated mesh, and meshtop reads the same edges and figures
from both, within tolerances each explained below. The figures of both engines are
printed at the end of the test run.

Why the engines differ at all:

- Each engine scrapes on its own, at its own phase: their samples are of the same
  counters, a fraction of a second apart.
- The proxies count whole requests (the simulator floors its counters, as Envoy's are
  whole), so a count over the window is off by up to one request at each end.
- `rate()`: Prometheus extrapolates the increase between the first and last sample in the
  window to the window's edges; VictoriaMetrics does not extrapolate, and takes the
  increase from the last sample *before* the window. Both then measure the same slope of
  a counter that grows steadily, so they agree up to the whole-request counts above.
- `histogram_quantile` interpolates inside the bucket the quantile falls in, in both: a
  bucket count off by one request moves the quantile by the bucket's width divided by the
  requests in it, "the last digits".
"""

from __future__ import annotations

import asyncio
import bisect
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from meshtop import units
from meshtop.config import PrometheusConfig
from meshtop.model import Edge, Protocol
from meshtop.sim.exposition import DURATION_BUCKETS_MS, MeshExposition
from meshtop.sim.server import MetricsServer
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, generated
from meshtop.sources.dialects import ISTIO
from meshtop.sources.prometheus import PrometheusMetrics
from tests.conftest import need

from .prometheus import free_port, running_prometheus, scrape_config

pytestmark = pytest.mark.integration

WINDOW_S = 30  # long enough that one request more or less is a few percent, not a fifth
# Tolerances, and why each is what it is:
COUNT_SLACK = 3  # requests (failed ones too): one at each end of the window, per engine
RATE_REL = 0.05  # the simulator's rates drift by the second; the engines sample ~0.5s apart
# A quantile is interpolated from the requests beyond it: with at least QUANTILE_TAIL of
# them, one request more or less moves it by under QUANTILE_REL; with fewer (a p99 of a
# few hundred requests), one request can move it anywhere in its bucket, so it must be in
# the same or the next bucket; with under FEW_TAIL (a p99 of under 300 requests) it is
# the bucket of the slowest request or two, which one engine's window holds and the
# other's, half a second off, may not: any bucket, as long as both have one.
QUANTILE_TAIL = 20
QUANTILE_REL = 0.10
FEW_TAIL = 3
PAGE = "Kubernetes/bookinfo/productpage-v1"
V3 = "Kubernetes/bookinfo/reviews-v3"


def victoria_binary() -> str:
    found = os.environ.get("MESHTOP_VICTORIA_BIN") or shutil.which("victoria-metrics")
    need(
        found is not None,
        "no victoria-metrics binary on PATH: `make test` installs Debian's victoria-metrics "
        "package when run as root; elsewhere install it or set MESHTOP_VICTORIA_BIN",
    )
    assert found is not None
    return found


@contextmanager
def running_victoria(targets: list[str], workdir: Path) -> Iterator[str]:
    """VictoriaMetrics on a free loopback port, its storage in `workdir`, scraping the
    targets every second. `-search.latencyOffset` is 1s: by default it hides the last 30s
    of samples, which would leave a 30s window empty."""
    binary = victoria_binary()
    port = free_port()
    config = workdir / "scrape.yml"
    config.write_text(scrape_config(targets, "1s"))
    log = (workdir / "victoria.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={workdir / 'data'}",
            f"-promscrape.config={config}",
            "-retentionPeriod=1d",
            "-search.latencyOffset=1s",
            "-search.disableCache",  # every query from the samples, none from a cache
            "-loggerLevel=WARN",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"victoria-metrics exited: {(workdir / 'victoria.log').read_text()}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).text.strip() == "OK":
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("victoria-metrics not ready within 30s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _scalar(url: str, promql: str) -> float | None:
    rows = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    result = rows["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@dataclass
class Engines:
    prometheus: str
    victoria: str
    sims: list[Simulation]

    def configured(self, source: str, destination: str) -> float:
        """The rate the simulator was set to for an edge."""
        return next(
            f.rate
            for sim in self.sims
            for f in sim.flows()
            if (f.source.id, f.destination.id) == (source, destination)
        )

    def edges(self, url: str, at: float, dialect: str = "istio") -> dict[tuple[str, str], Edge]:
        source = PrometheusMetrics(PrometheusConfig(url, dialect=dialect), at=at)
        return {e.key: e for e in asyncio.run(source.traffic(WINDOW_S)).edges}


FIGURES: list[str] = []  # printed at the end of the run


class _Summary:
    """Prints both engines' figures at the end of the test run, in the normal output."""

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if FIGURES:
            terminalreporter.section("the same mesh, read from Prometheus and VictoriaMetrics")
            for line in FIGURES:
                terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def engines(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engines]:
    victoria_binary()  # before anything starts: skipped, or failed under CI=true
    if not request.config.pluginmanager.has_plugin("meshtop-engine-figures"):
        request.config.pluginmanager.register(_Summary(), "meshtop-engine-figures")
    with ExitStack() as stack:
        targets = []
        sims = [Simulation(bookinfo()), Simulation(generated(20, seed=3))]
        for sim in sims:
            server = MetricsServer(MeshExposition(sim), "127.0.0.1", 0)
            server.start_in_thread()
            stack.callback(server.server_close)
            stack.callback(server.shutdown)
            targets.append(f"127.0.0.1:{server.server_address[1]}")
        prom = stack.enter_context(running_prometheus(targets, tmp_path_factory.mktemp("prom")))
        victoria = stack.enter_context(running_victoria(targets, tmp_path_factory.mktemp("vm")))
        both = Engines(prom.url, victoria, sims)
        deadline = time.monotonic() + 60
        # both engines hold a full window of samples before anything is compared
        while any(
            (_scalar(url, f"min(count_over_time(up[{WINDOW_S + 5}s]))") or 0) < WINDOW_S + 2
            for url in (both.prometheus, both.victoria)
        ):
            assert time.monotonic() < deadline, "the engines did not fill a window in 60s"
            time.sleep(1)
        yield both


def _approx_rate(a: float, b: float) -> bool:
    return abs(a - b) <= RATE_REL * max(a, b) + COUNT_SLACK / WINDOW_S


def _same_quantile(q: float, rps: float, a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    tail = (1 - q) * rps * WINDOW_S
    if tail >= QUANTILE_TAIL:
        return b == pytest.approx(a, rel=QUANTILE_REL)
    if tail < FEW_TAIL:
        return True
    bucket = [bisect.bisect_left(DURATION_BUCKETS_MS, x) for x in (a, b)]
    return abs(bucket[0] - bucket[1]) <= 1


def _row(key: tuple[str, str], p: Edge, v: Edge) -> str:
    ends = " → ".join(k.split("/", 1)[1] for k in key)
    ps, vs = p.stats, v.stats
    if ps.protocol is Protocol.TCP:
        return (
            f"{ends:<52} tcp  conn/s {ps.tcp_connections_per_s:7.3f} | "
            f"{vs.tcp_connections_per_s:7.3f}  B/s {ps.tcp_request_bps:9.1f} | "
            f"{vs.tcp_request_bps:9.1f}"
        )
    return (
        f"{ends:<52} {ps.protocol.value:<4} rps {ps.rps:7.3f} | {vs.rps:7.3f}"
        f"  err {units.percent(ps.error_rate):>6} | {units.percent(vs.error_rate):>6}"
        f"  p50 {units.ms(ps.p50_ms):>6} | {units.ms(vs.p50_ms):>6}"
        f"  p99 {units.ms(ps.p99_ms):>6} | {units.ms(vs.p99_ms):>6}"
    )


def test_both_engines_read_the_same_edges_and_figures(engines: Engines) -> None:
    at = time.time() - 2  # one moment for both, past VictoriaMetrics' latency offset
    prom = engines.edges(engines.prometheus, at)
    vm = engines.edges(engines.victoria, at)
    FIGURES.append(
        f"{len(prom)} edges over {WINDOW_S}s at {time.strftime('%H:%M:%S', time.gmtime(at))}Z; "
        "each figure Prometheus | VictoriaMetrics"
    )
    FIGURES.extend(_row(k, prom[k], vm[k]) for k in sorted(set(prom) & set(vm)))
    assert set(prom) == set(vm)
    assert len(prom) > 20
    problems = []
    for key, p in prom.items():
        ps, vs = p.stats, vm[key].stats
        checks = [
            ("protocol", ps.protocol == vs.protocol),
            ("protocols", ps.carried == vs.carried),
            ("mtls", ps.mtls == pytest.approx(vs.mtls, abs=1e-9)),
        ]
        if ps.protocol is Protocol.TCP:
            checks += [
                ("conn/s", _approx_rate(ps.tcp_connections_per_s, vs.tcp_connections_per_s)),
                # bytes: thousands per connection, so a share, not a count, is the slack
                ("bytes", vs.tcp_request_bps == pytest.approx(ps.tcp_request_bps, rel=0.1)),
            ]
        else:
            checks += [
                ("rps", _approx_rate(ps.rps, vs.rps)),
                # failed requests per second, as counts: a share of a few requests is coarse
                ("errors", _approx_rate(ps.error_rate * ps.rps, vs.error_rate * vs.rps)),
                ("4xx", _approx_rate(
                    ps.client_error_rate * ps.rps, vs.client_error_rate * vs.rps)),
            ]  # fmt: skip
            for q, a, b in ((0.5, ps.p50_ms, vs.p50_ms), (0.95, ps.p95_ms, vs.p95_ms),
                            (0.99, ps.p99_ms, vs.p99_ms)):  # fmt: skip
                checks.append((f"p{q * 100:g}", _same_quantile(q, ps.rps, a, b)))
        problems += [f"{key} {name}: {p.stats} vs {vs}" for name, ok in checks if not ok]
    assert not problems, "\n".join(problems)


def test_both_engines_give_the_bounds_the_first_latency_query_leaves_out(
    engines: Engines,
) -> None:
    """The first latency query leaves out the buckets above a second, by the bounds the
    backend's `le` label has (its label lookup, which VictoriaMetrics answers too)."""
    above = {b for b in DURATION_BUCKETS_MS if b > 1000}
    for url in (engines.prometheus, engines.victoria):
        source = PrometheusMetrics(PrometheusConfig(url, dialect="istio"), at=time.time() - 2)
        cuts = asyncio.run(source._first_cuts(ISTIO, WINDOW_S, time.monotonic() + 5))
        assert {float(le) for le in cuts.left_out} == above, url


def test_both_engines_match_the_simulation(engines: Engines) -> None:
    """Neither engine is the reference: each is checked against the rate the simulator
    was set to, as the Prometheus tests do."""
    at = time.time() - 2
    for url in (engines.prometheus, engines.victoria):
        edges = engines.edges(url, at)
        v3 = edges[(PAGE, V3)]
        # the simulation drifts a few percent over the window, as in the Prometheus tests
        assert v3.stats.rps == pytest.approx(engines.configured(PAGE, V3), rel=0.15), url
        assert 0.02 < v3.stats.error_rate < 0.4  # v3 fails about 15%
        assert v3.stats.p50_ms is not None and 25 <= v3.stats.p50_ms <= 50


def test_dialect_is_detected_on_victoria_metrics(engines: Engines) -> None:
    source = PrometheusMetrics(PrometheusConfig(engines.victoria), at=time.time() - 2)
    traffic = asyncio.run(source.traffic(WINDOW_S))
    assert source.dialect is not None and source.dialect.name == "istio"
    assert traffic.edges


def test_history_of_an_edge_from_both_engines(engines: Engines) -> None:
    """The detail screen's three queries (two range queries, one instant) on both, over a
    window both engines hold samples for."""
    at = time.time() - 2
    found = {}
    for name, url in (("prometheus", engines.prometheus), ("victoria", engines.victoria)):
        source = PrometheusMetrics(PrometheusConfig(url, dialect="istio"), at=at)
        found[name] = asyncio.run(source.history(PAGE, V3, WINDOW_S))
    p, v = found["prometheus"].summary, found["victoria"].summary
    assert p.error_rate is not None and v.error_rate is not None
    FIGURES.append(
        f"history productpage-v1 → reviews-v3 over {WINDOW_S}s: rps {p.rps:.3f} | {v.rps:.3f}, "
        f"errors {units.percent(p.error_rate)} | {units.percent(v.error_rate)}, "
        f"p99 {units.ms(p.p99_ms)} | {units.ms(v.p99_ms)}"
    )
    assert _approx_rate(p.rps, v.rps)
    assert _approx_rate(p.error_rate * p.rps, v.error_rate * v.rps)
    assert p.mtls == v.mtls == 1.0
    assert p.destination_principals == v.destination_principals


def test_a_series_younger_than_the_window_reads_differently(engines: Engines) -> None:
    """Documented, not hidden: over a window longer than the series has existed,
    Prometheus spreads the increase over the whole window (a rate that reads low), while
    VictoriaMetrics divides by the time the samples span (the rate since it began)."""
    at = time.time() - 2
    long = 3600  # the engines have run for well under a minute
    rates = {}
    for name, url in (("prometheus", engines.prometheus), ("victoria", engines.victoria)):
        source = PrometheusMetrics(PrometheusConfig(url, dialect="istio"), at=at)
        edges = {e.key: e for e in asyncio.run(source.traffic(long)).edges}
        rates[name] = edges[(PAGE, V3)].stats.rps
    configured = engines.configured(PAGE, V3)
    FIGURES.append(
        f"productpage-v1 → reviews-v3 over 1h, the series under a minute old: rps "
        f"{rates['prometheus']:.3f} | {rates['victoria']:.3f} (configured {configured:.3f})"
    )
    assert rates["prometheus"] < configured / 10
    assert rates["victoria"] == pytest.approx(configured, rel=0.15)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    """Both engines scraping the hand-written telemetry of Kiali's cases."""
    victoria_binary()
    from .test_numbers_kiali_cases import SERIES, Telemetry

    with ExitStack() as stack:
        server = Telemetry(SERIES)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        targets = [f"127.0.0.1:{server.server_address[1]}"]
        prom = stack.enter_context(running_prometheus(targets, tmp_path_factory.mktemp("kp")))
        victoria = stack.enter_context(running_victoria(targets, tmp_path_factory.mktemp("kv")))
        deadline = time.monotonic() + 60
        while any(
            (_scalar(url, "min(count_over_time(up[15s]))") or 0) < 12
            for url in (prom.url, victoria)
        ):
            assert time.monotonic() < deadline, "the engines did not fill 12s in 60s"
            time.sleep(1)
        yield Engines(prom.url, victoria, [])


def test_both_engines_read_kialis_cases_alike(recorded: Engines) -> None:
    """The namespace's host regex, the protocol label and the unknown peers, on both."""
    at = time.time() - 2
    for scope in ((), ("bookinfo",)):
        found = {}
        for name, url in (("prometheus", recorded.prometheus), ("victoria", recorded.victoria)):
            config = PrometheusConfig(url, dialect="istio", namespaces=scope)
            source = PrometheusMetrics(config, at=at)
            found[name] = {e.key: e.stats for e in asyncio.run(source.traffic(10)).edges}
        p, v = found["prometheus"], found["victoria"]
        assert set(p) == set(v), scope
        for key in p:
            assert p[key].carried == v[key].carried, key
            # steady counters served to three decimals: shares equal to the fourth digit
            assert abs(p[key].error_rate - v[key].error_rate) < 1e-3, key
            assert abs(p[key].client_error_rate - v[key].client_error_rate) < 1e-3, key
            assert _approx_rate(p[key].rps, v[key].rps)
        ingress = ("Kubernetes/istio-system/istio-ingressgateway",
                   "Kubernetes/bookinfo/service:reviews")  # fmt: skip
        assert v[ingress].error_rate == 1.0  # kept under -n bookinfo too: the host's namespace
        if not scope:
            grpc = v[("Kubernetes/shop/frontend", "Kubernetes/shop/checkout")]
            assert grpc.protocol is Protocol.GRPC and grpc.error_rate == 1.0


def test_victoria_metrics_says_why_a_dialect_finds_nothing(recorded: Engines) -> None:
    source = PrometheusMetrics(
        PrometheusConfig(recorded.victoria, dialect="linkerd"), at=time.time() - 2
    )
    traffic = asyncio.run(source.traffic(10))
    assert not traffic.edges
    assert any("no Linkerd series" in w and "--dialect istio" in w for w in traffic.warnings)
