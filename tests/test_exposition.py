"""The simulator's metrics endpoint speaks Istio's standard metrics as sidecars do."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from meshtop.sim.exposition import DURATION_BUCKETS_MS, MeshExposition
from meshtop.sim.server import MetricsServer
from meshtop.sim.sources import Simulation

from .conftest import Clock

SAMPLE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>.*)\} (?P<value>[0-9.e+]+)$")
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> list[tuple[str, dict[str, str], float]]:
    samples = []
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        samples.append((m["name"], dict(LABEL.findall(m["labels"])), float(m["value"])))
    return samples


def _scrape(
    sim: Simulation, clock: Clock, seconds: float = 30
) -> list[tuple[str, dict[str, str], float]]:
    exposition = MeshExposition(sim)
    clock.advance(seconds)
    return parse(exposition.render())


def test_requests_carry_istios_full_standard_label_set(
    sim: Simulation, clock: Clock, fixtures: Path
) -> None:
    reference = (fixtures / "prometheus/exposition/datadog-istio-test-labels.txt").read_text()
    (line,) = [ln for ln in reference.splitlines() if ln.startswith("istio_requests_total{")]
    expected = set(dict(LABEL.findall(line)))
    for name, labels, _ in _scrape(sim, clock):
        if name == "istio_requests_total":
            assert set(labels) == expected


def test_each_proxy_reports_what_it_sees(sim: Simulation, clock: Clock) -> None:
    seen: dict[tuple[str, str], set[str]] = {}
    policies: dict[tuple[str, str, str], str] = {}
    for name, labels, _ in _scrape(sim, clock):
        if name not in ("istio_requests_total", "istio_tcp_connections_opened_total"):
            continue
        edge = (labels["source_workload"], labels["destination_service_name"])
        seen.setdefault(edge, set()).add(labels["reporter"])
        policies[(*edge, labels["reporter"])] = labels["connection_security_policy"]
    # sidecar to sidecar: both proxies report
    assert seen[("productpage-v1", "reviews")] == {"source", "destination"}
    assert policies[("productpage-v1", "reviews", "destination")] == "mutual_tls"
    assert policies[("productpage-v1", "reviews", "source")] == "unknown"
    # an unmeshed client: only the server's proxy, which cannot name the client
    assert seen[("unknown", "productpage")] == {"destination"}
    assert policies[("unknown", "productpage", "destination")] == "none"
    # a host outside the mesh: only the client's proxy
    assert seen[("details-v1", "www.googleapis.com")] == {"source"}


def test_counters_never_go_down_even_when_weights_change(sim: Simulation, clock: Clock) -> None:
    exposition = MeshExposition(sim)
    clock.advance(30)
    first = {(n, tuple(sorted(lb.items()))): v for n, lb, v in parse(exposition.render())}
    sim.set_weights("bookinfo", "reviews", {"v1": 0, "v2": 0, "v3": 100})
    clock.advance(30)
    second = {(n, tuple(sorted(lb.items()))): v for n, lb, v in parse(exposition.render())}
    assert set(first) <= set(second)
    assert all(second[k] >= v for k, v in first.items())
    grew = [
        k for k in first if second[k] > first[k] and ("destination_workload", "reviews-v1") in k[1]
    ]
    assert grew == []  # v1 gets nothing any more: its counters stand still


def test_latency_histograms_use_envoys_buckets_and_add_up(sim: Simulation, clock: Clock) -> None:
    samples = _scrape(sim, clock, seconds=120)
    series: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
    counts: dict[tuple[tuple[str, str], ...], float] = {}
    for name, labels, value in samples:
        if name == "istio_request_duration_milliseconds_bucket":
            le = labels.pop("le")
            series.setdefault(tuple(sorted(labels.items())), {})[le] = value
        elif name == "istio_request_duration_milliseconds_count":
            counts[tuple(sorted(labels.items()))] = value
    assert series
    for key, buckets in series.items():
        assert list(buckets) == [f"{b:g}" for b in DURATION_BUCKETS_MS] + ["+Inf"]
        values = list(buckets.values())
        assert values == sorted(values)
        assert buckets["+Inf"] == counts[key]


def test_no_bucket_grows_more_than_the_one_above_it(sim: Simulation, clock: Clock) -> None:
    """As a proxy's: each request is counted in the one bucket it falls in, so between two
    scrapes a bucket grows by at most what the next does (+Inf's, the count's, the most).
    Prometheus raises a bucket that grew less than one below it, so leaving buckets out
    would change `histogram_quantile` if the simulator broke this."""
    exposition = MeshExposition(sim)
    grown: dict[tuple[tuple[str, str], ...], list[float]] = {}
    before: dict[tuple[tuple[str, str], ...], list[float]] = {}
    broken = []
    for _ in range(40):
        clock.advance(0.7)
        now: dict[tuple[tuple[str, str], ...], list[float]] = {}
        for name, labels, value in parse(exposition.render()):
            if name == "istio_request_duration_milliseconds_bucket":
                del labels["le"]
                now.setdefault(tuple(sorted(labels.items())), []).append(value)
        for key, counts in now.items():
            if key in before:
                grown[key] = [b - a for a, b in zip(before[key], counts, strict=True)]
                if grown[key] != sorted(grown[key]):
                    broken.append((key, grown[key]))
        before = now
    assert grown and any(g[-1] > g[0] for g in grown.values())
    assert broken == []


def test_server_serves_the_text_format_over_http(sim: Simulation, clock: Clock) -> None:
    server = MetricsServer(MeshExposition(sim), "127.0.0.1", 0)
    server.start_in_thread()
    try:
        clock.advance(10)
        response = httpx.get(server.url, timeout=5)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "# TYPE istio_requests_total counter" in response.text
        assert httpx.get(server.url.replace("/metrics", "/"), timeout=5).status_code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_tcp_bytes_are_counted_from_the_servers_side(sim: Simulation, clock: Clock) -> None:
    """Istio: `received` is what the server got (the request), `sent` what it answered."""
    totals: dict[str, float] = {}
    for name, labels, value in _scrape(sim, clock, seconds=60):
        if (
            name.startswith("istio_tcp_")
            and labels["destination_service_name"] == "www.googleapis.com"
        ):
            totals[name] = value
    # details-v1 sends small requests to Google's book API and gets larger answers back
    assert 0 < totals["istio_tcp_received_bytes_total"] < totals["istio_tcp_sent_bytes_total"]
    assert totals["istio_tcp_connections_opened_total"] > 0


def test_linkerd_exposition_has_outbound_and_inbound_series(sim: Simulation, clock: Clock) -> None:
    exposition = MeshExposition(sim, "linkerd")
    clock.advance(60)
    samples = parse(exposition.render())
    out = [lb for n, lb, _ in samples if n == "response_total" and lb["direction"] == "outbound"]
    assert any(
        lb.get("dst_deployment") == "reviews-v3" and lb["classification"] == "failure" for lb in out
    )
    inbound = [lb for n, lb, _ in samples if n == "response_total" and lb["direction"] == "inbound"]
    assert inbound and all("dst_deployment" not in lb for lb in inbound)
    assert any(n == "tcp_write_bytes_total" and lb["peer"] == "dst" for n, lb, _ in samples)
