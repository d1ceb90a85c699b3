"""An empty answer says why within the refresh's own deadline: a backend slow to answer
the few questions asked to tell why never makes an empty refresh late (and so failed)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

import pytest

from meshtop.config import PrometheusConfig
from meshtop.mesh import refresh
from meshtop.model import SourceState
from meshtop.sources.prometheus import PrometheusMetrics
from meshtop.sources.protocols import ClusterSources
from tests.loopback import serving

EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}


class _Slow(BaseHTTPRequestHandler):
    """The three snapshot queries empty, in 0.7s; every other question (the dialect
    probe, the diagnosis) three seconds late."""

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query).get("query", [""])[0]
        snapshot = query.startswith("sum by") or query.startswith("label_replace")
        time.sleep(0.7 if snapshot else 3)
        body = json.dumps(EMPTY).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def slow() -> Iterator[str]:
    with serving(_Slow) as url:
        yield url


def test_a_slow_diagnosis_leaves_the_empty_refresh_on_time(slow: str) -> None:
    source = PrometheusMetrics(PrometheusConfig(slow, dialect="istio", timeout_s=1.0))
    started = time.monotonic()
    snapshot = asyncio.run(refresh(ClusterSources.one(source), window_s=60, timeout_s=1.0))
    assert time.monotonic() - started < 2.0
    health = snapshot.sources["metrics"]
    assert health.state is SourceState.FRESH and not snapshot.edges
    assert "no edge in the last 1m: cannot tell why" in health.reason
    assert "did not" in health.reason  # … answer within 1s
