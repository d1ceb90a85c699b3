"""The cases where meshtop's numbers differed from an independent peer's, the mocked Istio
telemetry of Kiali's graph-generation tests, as raw counters a real Prometheus scrapes:
a 503 from a service with no workload behind it under `-n`, an unroutable call beside an
unmeshed caller, the protocol as the proxy said it (`request_protocol`), raw IP
destinations and unnamed workloads, the 4xx share, and a report that is empty saying why.

The telemetry is written by hand, label for label as Envoy's Istio stats write it, and
served as counters that grow at the stated rates: what each test expects is those rates."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from meshtop.config import PrometheusConfig
from meshtop.model import Edge, Protocol
from meshtop.sources.prometheus import PrometheusMetrics

from .prometheus import Prometheus, running_prometheus

pytestmark = pytest.mark.integration

WINDOW_S = 10
UNKNOWN_PEER = {
    "workload": "unknown", "workload_namespace": "unknown", "app": "unknown",
    "version": "unknown", "canonical_service": "unknown", "principal": "unknown",
}  # fmt: skip


def peer(namespace: str, workload: str, app: str = "", version: str = "v1") -> dict[str, str]:
    return {
        "workload": workload,
        "workload_namespace": namespace,
        "app": app or workload,
        "version": version,
        "canonical_service": app or workload,
        "principal": f"spiffe://cluster.local/ns/{namespace}/sa/{app or workload}",
    }


def istio(
    reporter: str,
    source: dict[str, str],
    destination: dict[str, str],
    service: str,
    *,
    service_name: str = "",
    service_namespace: str = "",
    protocol: str = "http",
    code: str = "200",
    grpc: str = "",
    flags: str = "-",
) -> dict[str, str]:
    """One `istio_requests_total` label set, every standard label there."""
    mesh = service.split(".")
    return {
        "reporter": reporter,
        **{f"source_{k}": v for k, v in source.items()},
        "source_cluster": "Kubernetes",
        **{f"destination_{k}": v for k, v in destination.items()},
        "destination_cluster": "Kubernetes" if destination["workload"] != "unknown" else "unknown",
        "destination_service": service,
        "destination_service_name": service_name or mesh[0],
        "destination_service_namespace": service_namespace or (mesh[1] if len(mesh) > 2 else ""),
        "request_protocol": protocol,
        "response_code": code,
        "grpc_response_status": grpc,
        "response_flags": flags,
        "connection_security_policy": "unknown" if reporter == "source" else "none",
    }


INGRESS = peer("istio-system", "istio-ingressgateway", version="unknown")
REVIEWS_V3 = peer("bookinfo", "reviews-v3", "reviews", "v3")
PAGE = peer("bookinfo", "productpage-v1", "productpage")
SHOP = {name: peer("shop", name) for name in ("frontend", "checkout", "web", "api", "cart")}
SHOP["catalog"] = peer("shop", "catalog")
SHOP["edge"] = peer("shop", "edge")


def svc(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


# (labels, requests per second)
SERIES: list[tuple[dict[str, str], float]] = [
    # Ingress calls reviews, which has no workload: only the host names bookinfo.
    (istio("source", INGRESS, UNKNOWN_PEER, svc("reviews", "bookinfo"),
           service_namespace="unknown", code="503", flags="UH"), 2.0),
    # reviews-v3's proxy found no route (404 NR): the destination is unknown.
    (istio("source", REVIEWS_V3, UNKNOWN_PEER, "unknown", service_name="unknown",
           service_namespace="unknown", code="404", flags="NR"), 1.0),
    # An unmeshed caller of productpage: only productpage's proxy reports it.
    (istio("destination", UNKNOWN_PEER, PAGE, svc("productpage", "bookinfo")), 3.0),
    # gRPC calls that ended with no response (the caller went away): no gRPC status.
    (istio("source", SHOP["frontend"], SHOP["checkout"], svc("checkout", "shop"),
           protocol="grpc", code="0", flags="DC"), 1.5),
    # HTTP calls whose series carry grpc_response_status="0" (seen in the wild).
    (istio("source", SHOP["web"], SHOP["api"], svc("api", "shop"), grpc="0"), 4.0),
    (istio("source", SHOP["web"], SHOP["api"], svc("api", "shop"), code="503", grpc="0"), 1.0),
    # One edge, two protocols.
    (istio("source", SHOP["edge"], SHOP["catalog"], svc("catalog", "shop")), 3.0),
    (istio("source", SHOP["edge"], SHOP["catalog"], svc("catalog", "shop"), protocol="grpc",
           grpc="0"), 1.0),
    # A destination known only by its IP address (Kiali drops it as bad telemetry).
    (istio("source", SHOP["web"], UNKNOWN_PEER, "10.1.2.3", service_name="10.1.2.3",
           service_namespace="unknown"), 0.5),
    # A caller in shop its proxy did not name (Kiali drops it as bad telemetry).
    (istio("destination", {**UNKNOWN_PEER, "workload_namespace": "shop"}, SHOP["api"],
           svc("api", "shop")), 0.75),
    # The caller's mistakes: 4xx, not errors.
    (istio("source", SHOP["cart"], SHOP["api"], svc("api", "shop")), 6.0),
    (istio("source", SHOP["cart"], SHOP["api"], svc("api", "shop"), code="404"), 2.0),
]  # fmt: skip


class Telemetry(ThreadingHTTPServer):
    """Serves `SERIES` as counters that grow at their rates since the server started."""

    daemon_threads = True

    def __init__(self, series: list[tuple[dict[str, str], float]]) -> None:
        self.series = series
        self.started = time.time() - 600  # as if the proxies had counted for ten minutes
        super().__init__(("127.0.0.1", 0), _Handler)

    def render(self) -> str:
        elapsed = time.time() - self.started
        lines = ["# TYPE istio_requests_total counter"]
        for labels, rps in self.series:
            text = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines.append(f"istio_requests_total{{{text}}} {rps * elapsed:.3f}")
        return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    server: Telemetry

    def do_GET(self) -> None:
        data = self.server.render().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Scrapes every second would drown the output."""


@dataclass
class Mesh:
    prom: Prometheus
    slow: Prometheus  # the same telemetry, scraped every 5s

    def edges(self, **kw: object) -> dict[tuple[str, str], Edge]:
        config = PrometheusConfig(self.prom.url, dialect="istio", **kw)  # type: ignore[arg-type]
        source = PrometheusMetrics(config, at=time.time() - 1)
        return {e.key: e for e in asyncio.run(source.traffic(WINDOW_S)).edges}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with ExitStack() as stack:
        server = Telemetry(SERIES)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        target = f"127.0.0.1:{server.server_address[1]}"
        prom = stack.enter_context(running_prometheus([target], tmp_path_factory.mktemp("p")))
        slow = stack.enter_context(
            running_prometheus([target], tmp_path_factory.mktemp("slow"), scrape_interval="5s")
        )
        for p in (prom, slow):
            p.wait_for(
                "two scrapes",
                lambda p=p: p.scalar("count(count_over_time(up[1m]) >= 2)") is not None,
            )
        time.sleep(WINDOW_S + 1)  # rate() over a window the series does not fill reads low
        yield Mesh(prom, slow)


def test_namespace_keeps_the_503_of_a_service_with_no_workload(mesh: Mesh) -> None:
    """Without -n the edge is in bookinfo; with -n bookinfo it must still be there."""
    key = ("Kubernetes/istio-system/istio-ingressgateway", "Kubernetes/bookinfo/service:reviews")
    for scoped in ((), ("bookinfo",)):
        edges = mesh.edges(namespaces=scoped)
        assert key in edges, scoped
        assert edges[key].stats.error_rate == 1.0
        assert edges[key].stats.rps == pytest.approx(2.0, rel=0.05)


def test_export_with_namespace_keeps_the_503(mesh: Mesh) -> None:
    report, _ = export(mesh.prom, "-n", "bookinfo")
    edges = {(e["source"], e["destination"]): e for e in report["edges"]}
    failing = edges[
        ("Kubernetes/istio-system/istio-ingressgateway", "Kubernetes/bookinfo/service:reviews")
    ]
    assert failing["error_rate"] == 1.0 and failing["health"] == "failing"


def test_unroutable_call_and_unmeshed_caller_are_two_nodes(mesh: Mesh) -> None:
    """reviews-v3 → (no route) and (unmeshed) → productpage share no node: no false path
    reviews-v3 → unknown → productpage."""
    edges = mesh.edges()
    v3 = "Kubernetes/bookinfo/reviews-v3"
    page = "Kubernetes/bookinfo/productpage-v1"
    (nowhere,) = [d for s, d in edges if s == v3]
    (caller,) = [s for s, d in edges if d == page]
    assert nowhere != caller
    assert caller == "unknown/unknown/unknown"
    assert nowhere == "Kubernetes/bookinfo/service:unknown"  # in the caller's namespace
    assert not [s for s, _ in edges if s == nowhere]
    no_route = edges[(v3, nowhere)].stats
    assert no_route.response_flags.keys() == {"NR"} and no_route.error_rate == 0.0


def test_unroutable_and_unnamed_nodes_are_marked(mesh: Mesh) -> None:
    report, _ = export(mesh.prom)
    nodes = {n["id"]: n for n in report["nodes"]}
    assert nodes["Kubernetes/bookinfo/service:unknown"]["mark"] == "unknown_destination"
    assert nodes["external/external/10.1.2.3"]["kind"] == "external"
    assert nodes["external/external/10.1.2.3"]["mark"] == "raw_ip"
    unnamed = nodes["Kubernetes/shop/unknown"]
    assert (unnamed["kind"], unnamed["mark"], unnamed["namespace"]) == (
        "unknown",
        "unnamed_workload",
        "shop",
    )
    assert nodes["unknown/unknown/unknown"]["mark"] is None
    said = {p["id"]: p["reason"] for p in report["security"]["without_proxy"]}
    assert "IP address" in said["external/external/10.1.2.3"]
    assert "no route" in said["Kubernetes/bookinfo/service:unknown"]


def test_grpc_failing_with_no_response_only_is_grpc(mesh: Mesh) -> None:
    stats = mesh.edges()[("Kubernetes/shop/frontend", "Kubernetes/shop/checkout")].stats
    assert stats.protocol is Protocol.GRPC
    assert stats.error_rate == 1.0 and stats.response_flags.keys() == {"DC"}


def test_http_with_grpc_status_zero_stays_http(mesh: Mesh) -> None:
    """Its 200s are not "gRPC status 0", and its 503s are errors."""
    stats = mesh.edges()[("Kubernetes/shop/web", "Kubernetes/shop/api")].stats
    assert stats.protocol is Protocol.HTTP and stats.protocols == ()
    assert stats.grpc_statuses == {}
    assert stats.error_rate == pytest.approx(0.2, rel=1e-4)  # counters served to 3 decimals


def test_an_edge_with_two_protocols_shows_both(mesh: Mesh) -> None:
    stats = mesh.edges()[("Kubernetes/shop/edge", "Kubernetes/shop/catalog")].stats
    assert stats.protocol is Protocol.HTTP  # most of its traffic
    assert stats.protocols == (Protocol.HTTP, Protocol.GRPC)
    report, _ = export(mesh.prom)
    (edge,) = [e for e in report["edges"] if e["destination"] == "Kubernetes/shop/catalog"]
    assert (edge["protocol"], edge["protocols"]) == ("http", ["http", "grpc"])


def test_client_error_rate_beside_the_error_rate(mesh: Mesh) -> None:
    stats = mesh.edges()[("Kubernetes/shop/cart", "Kubernetes/shop/api")].stats
    assert stats.error_rate == 0.0
    assert stats.client_error_rate == pytest.approx(0.25, rel=1e-4)
    report, _ = export(mesh.prom, "--fail-on", "client_error_rate>20%", check=False)
    (edge,) = [e for e in report["edges"] if e["source"] == "Kubernetes/shop/cart"]
    assert edge["client_error_rate"] == pytest.approx(0.25, rel=1e-4)


def test_client_error_gate_fails_the_export(mesh: Mesh) -> None:
    proc = run_export(mesh.prom, "--fail-on", "client_error_rate>20%")
    assert proc.returncode == 1, proc.stderr
    assert "client_error_rate>20%: shop/cart → shop/api has client_error_rate 25.00%" in (
        proc.stderr
    )


def test_empty_report_for_another_dialect_says_why(mesh: Mesh) -> None:
    proc = run_export(mesh.prom, "--dialect", "linkerd", dialect=None)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["edges"] == []
    assert "no Linkerd series" in proc.stderr and "--dialect istio" in proc.stderr


def test_empty_report_for_a_window_shorter_than_the_scrape_interval_says_why(
    mesh: Mesh,
) -> None:
    proc = run_export(mesh.slow, "--window", "4s")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["edges"] == []
    assert "shorter than two scrape intervals" in proc.stderr
    assert "5s apart" in proc.stderr  # read from Prometheus: the samples' spacing


def test_empty_report_for_a_namespace_matching_nothing_says_why(mesh: Mesh) -> None:
    proc = run_export(mesh.prom, "-n", "nosuch")
    assert proc.returncode == 0, proc.stderr
    assert "namespace nosuch" in proc.stderr
    assert "bookinfo, istio-system, shop" in proc.stderr  # where the calls are


def run_export(
    prom: Prometheus, *args: str, dialect: str | None = "istio", window: str = "10s"
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "meshtop", "export", "--prometheus", prom.url]
    if dialect:
        command += ["--dialect", dialect]
    if "--window" not in args:
        command += ["--window", window]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent
    )


def export(prom: Prometheus, *args: str, check: bool = True) -> tuple[Any, str]:
    proc = run_export(prom, *args)
    if check:
        assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    return report, proc.stderr


def test_top_keeps_every_peer_without_a_proxy_in_the_security_section(mesh: Mesh) -> None:
    """`--top` shortens what is shown; the security posture judges the whole scope: the
    unmeshed caller's plaintext edge and the caller itself are both still there."""
    report, _ = export(mesh.prom, "--top", "1")
    assert len(report["edges"]) == 1
    plain = {(e["source"], e["destination"]) for e in report["security"]["plaintext_edges"]}
    assert ("unknown/unknown/unknown", "Kubernetes/bookinfo/productpage-v1") in plain
    without = {p["id"] for p in report["security"]["without_proxy"]}
    assert {"unknown/unknown/unknown", "external/external/10.1.2.3"} <= without


@pytest.mark.parametrize(
    ("source", "destination", "rps", "kinds"),
    [
        ("Kubernetes/istio-system/istio-ingressgateway", "Kubernetes/bookinfo/service:reviews",
         2.0, {"5xx"}),
        ("Kubernetes/bookinfo/reviews-v3", "Kubernetes/bookinfo/service:unknown", 1.0, {"4xx"}),
        ("Kubernetes/shop/unknown", "Kubernetes/shop/api", 0.75, set()),
        ("Kubernetes/shop/web", "external/external/10.1.2.3", 0.5, set()),
        ("Kubernetes/shop/frontend", "Kubernetes/shop/checkout", 1.5, {"no response"}),
    ],
)  # fmt: skip
def test_the_detail_of_each_marked_edge_finds_its_series(
    mesh: Mesh, source: str, destination: str, rps: float, kinds: set[str]
) -> None:
    """An edge's detail asks for its own series: the node ids of the new shapes turn back
    into the right label matchers (the host's namespace, the caller's for an unknown
    destination, the unnamed caller's namespace, the raw IP)."""
    config = PrometheusConfig(mesh.prom.url, dialect="istio")
    history = asyncio.run(  # over the window the series fill: a longer one reads low
        PrometheusMetrics(config, at=time.time() - 1).history(source, destination, WINDOW_S)
    )
    assert history.summary.rps == pytest.approx(rps, rel=0.05)
    assert set(history.summary.errors) == kinds
