"""meshtop works latency quantiles out from the buckets' rates itself (one reading of the
buckets instead of one per quantile): here its `histogram_quantile` and a real
Prometheus's answer the same histograms, the awkward ones included (buckets that
decrease, two spellings of one bound, no +Inf bucket, no observations, a quantile past
the last finite bound, a bound at or below zero, a bound Prometheus cannot read), and
must agree exactly: the same floats, in the same order of operations."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from meshtop.sim.exposition import DURATION_BUCKETS_MS
from meshtop.sources.prometheus.quantiles import quantiles, upper_bound

from .prometheus import Prometheus, running_prometheus

pytestmark = pytest.mark.integration

QS = (-0.5, 0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0, 1.5)

CASES: dict[str, list[tuple[str, float]]] = {
    "plain": [("1", 2), ("2", 5), ("5", 9), ("+Inf", 10)],
    "decreasing": [("1", 5), ("2", 3), ("5", 8), ("10", 7.5), ("+Inf", 10)],
    "two spellings": [("1", 2), ("1.0", 1), ("2", 6), ("+Inf", 10)],
    "no +Inf": [("1", 2), ("2", 5), ("5", 9)],
    "no observations": [("1", 0), ("2", 0), ("+Inf", 0)],
    "past the last bound": [("1", 0), ("2", 0), ("5", 1), ("+Inf", 10)],
    "at or below zero": [("-1", 3), ("0", 5), ("1", 8), ("+Inf", 10)],
    "+Inf alone": [("+Inf", 10)],
    "unreadable bound": [("1", 2), ("x", 4), (" 5", 6), ("5", 9), ("+Inf", 10)],
    "tiny": [("0.5", 0.0), ("1", 1e-300), ("5", 2e-300), ("+Inf", 3e-300)],
    "all in one": [("25", 0), ("50", 7.25), ("100", 7.25), ("+Inf", 7.25)],
}
_rng = random.Random(17)
for _i in range(6):  # Istio's buckets, counts of a log-normal-ish shape, as rates come
    total = _rng.uniform(0.1, 500)
    shares = sorted(_rng.random() for _ in DURATION_BUCKETS_MS)
    CASES[f"istio {_i}"] = [
        *((f"{b:g}", total * s) for b, s in zip(DURATION_BUCKETS_MS, shares, strict=True)),
        ("+Inf", total),
    ]


def _exposition() -> str:
    lines = ["# TYPE h untyped"]
    for case, buckets in CASES.items():
        lines += [f'h_bucket{{case="{case}",le="{le}"}} {count!r}' for le, count in buckets]
    return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = _exposition().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    workdir: Path = tmp_path_factory.mktemp("quantiles")
    try:
        with running_prometheus([f"127.0.0.1:{server.server_address[1]}"], workdir) as p:
            p.wait_for("a scrape", lambda: p.scalar("count(h_bucket)") is not None)
            yield p
    finally:
        server.shutdown()
        server.server_close()


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("case", list(CASES))
def test_quantiles_are_prometheus_histogram_quantile(prom: Prometheus, case: str) -> None:
    at = time.time()
    readable = [(b, count) for le, count in CASES[case] if (b := upper_bound(le)) is not None]
    ours = quantiles(QS, readable)
    for q, mine in zip(QS, ours, strict=True):
        rows = prom.client.get(
            "/api/v1/query",
            params={"query": f'histogram_quantile({q}, h_bucket{{case="{case}"}})', "time": at},
        ).json()["data"]["result"]
        theirs = float(rows[0]["value"][1]) if rows else math.nan
        assert _same(mine, theirs), (case, q, mine, theirs)


def test_bounds_are_read_as_prometheus_reads_them() -> None:
    assert upper_bound("+Inf") == math.inf and upper_bound("2.5e2") == 250.0
    assert upper_bound("x") is None and upper_bound(" 5") is None  # Go's ParseFloat: errors
    assert upper_bound("1_000") is None and upper_bound("") is None
