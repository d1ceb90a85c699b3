"""The console asks a real Prometheus again only once the mesh can have been scraped since
it last asked (issue 17): between two scrapes a refresh would read, decode and join the
same samples again (at 2,000 services 20,000-30,000 series every 2 s, about a tenth of a
core). Export, and a console's moment, ask every time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from meshtop.config import PrometheusConfig
from meshtop.sim.exposition import MeshExposition
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated
from meshtop.sources.prometheus import PrometheusMetrics
from meshtop.sources.protocols import Traffic
from tests.loopback import serving

from .prometheus import Prometheus, forwarded, scraping

pytestmark = pytest.mark.integration

SCRAPE_S = 3
WINDOW_S = 30


@contextmanager
def _scraped(mesh: MeshExposition, workdir: Path) -> Iterator[Prometheus]:
    """`mesh` scraped every `SCRAPE_S` by a real Prometheus, once three scrapes are in."""
    with scraping(mesh, workdir, scrape_interval=f"{SCRAPE_S}s") as p:
        p.wait_for(
            "three scrapes", lambda: p.scalar("count(count_over_time(up[1m]) >= 3)") is not None
        )
        yield p


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    mesh = MeshExposition(Simulation(generated(20, seed=5)), "istio")
    with _scraped(mesh, tmp_path_factory.mktemp("p")) as p:
        yield p


async def _settled(source: PrometheusMetrics, warnings: tuple[str, ...]) -> Traffic:
    """The console's answer once it says `warnings` (the first latency answer in), asked
    every 0.1 s for 5 s at most: a kept answer is given back without a pause, in which
    the latency going on behind would never end."""
    traffic = await source.traffic(WINDOW_S)
    for _ in range(50):
        if traffic.warnings == warnings:
            break
        await asyncio.sleep(0.1)
        traffic = await source.traffic(WINDOW_S)
    return traffic


def test_the_console_asks_again_once_a_scrape_can_have_changed_the_answer(
    prom: Prometheus,
) -> None:
    source = PrometheusMetrics(PrometheusConfig(prom.url, dialect="istio"), latency_later=True)

    async def run() -> None:
        first = await _settled(source, ())
        assert first.edges and not first.warnings
        sent = source.queries_sent
        again = await source.traffic(WINDOW_S)  # well within a scrape interval
        # the scrape interval read once (two queries), the answer given again, nothing else
        assert again is first
        assert source.queries_sent <= sent + 2
        sent = source.queries_sent
        assert await source._scrape_interval() == pytest.approx(SCRAPE_S, abs=0.5)
        assert await source.traffic(WINDOW_S) is first and source.queries_sent == sent
        other = await source.traffic(WINDOW_S * 2)  # another window: asked
        assert other is not first and source.queries_sent > sent
        await asyncio.sleep(SCRAPE_S + 0.2)
        sent = source.queries_sent
        later = await source.traffic(WINDOW_S * 2)
        assert later is not other and source.queries_sent > sent
        assert {e.key for e in later.edges} == {e.key for e in first.edges}

    asyncio.run(run())


class _Forged(MeshExposition):
    """The mesh, and one pod's proxy that writes a `|` in a label value, its calls growing:
    a forged namespace that would shift the joined labels' fields (`answers.join`)."""

    def render(self) -> str:
        lines = super().render().splitlines()
        at = max(i for i, line in enumerate(lines) if line.startswith("istio_requests_total{"))
        forged = (
            'istio_requests_total{reporter="source",source_workload="forger",'
            'source_workload_namespace="shop",destination_workload="reviews-v1",'
            'destination_workload_namespace="bookinfo|reviews-v1",response_code="200"} '
            f"{time.time() * 10:.3f}"
        )
        return "\n".join([*lines[: at + 1], forged, *lines[at + 1 :]]) + "\n"


@pytest.fixture(scope="module")
def forged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    mesh = _Forged(Simulation(generated(20, seed=5)), "istio")
    with _scraped(mesh, tmp_path_factory.mktemp("f")) as p:
        yield p


def test_a_separator_in_a_label_value_does_not_make_every_refresh_ask(
    forged: Prometheus,
) -> None:
    """The join's word about the series (a `|` in a label value, counted between unknown
    peers) is the samples': the same answer until a scrape, given again like any other.
    Against a hostile publisher's 20,000 edges every refresh asked, decoded and joined
    again, the join alone 11% of a core."""
    source = PrometheusMetrics(PrometheusConfig(forged.url, dialect="istio"), latency_later=True)
    said = "1 series with '|' in a label value, counted between unknown peers"

    async def run() -> None:
        first = await _settled(source, (said,))
        assert first.warnings == (said,)
        sent = source.queries_sent
        assert await source.traffic(WINDOW_S) is first  # well within a scrape interval
        assert source.queries_sent <= sent + 2  # the scrape interval read once, no more
        await asyncio.sleep(SCRAPE_S + 0.2)
        later = await source.traffic(WINDOW_S)
        assert later is not first and later.warnings == (said,)

    asyncio.run(run())


class _Latency(BaseHTTPRequestHandler):
    """Prometheus's answers as they are, but a refresh's latency queries as `plan` says,
    one each in order: (refused, after seconds), refused as when overloaded (HTTP 503,
    `busy`) or answered; those after the plan, and those asking again for the buckets left
    out (`le=~`), answered at once. `requests`: the requests queries asked."""

    upstream: ClassVar[str] = ""
    plan: ClassVar[list[tuple[bool, float]]] = []
    requests: ClassVar[int] = 0
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer("GET", None, parse_qs(urlparse(self.path).query))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer("POST", body, parse_qs(body.decode()))

    def _answer(self, method: str, body: bytes | None, form: dict[str, list[str]]) -> None:
        query = form.get("query", [""])[0]
        refused, after = False, 0.0
        if "_bucket" in query and "le=~" not in query and self.plan:
            refused, after = self.plan.pop(0)
        elif query.startswith("sum") and "istio_requests_total" in query:
            type(self).requests += 1
        time.sleep(after)
        if refused:
            status, content = 503, b'{"status":"error","errorType":"unavailable","error":"busy"}'
        else:
            status, content, _ = forwarded(self, self.upstream, method, body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


def test_a_latency_in_doubt_does_not_make_every_refresh_ask(prom: Prometheus) -> None:
    """The latency still coming, or refused, is the latency's word, not the samples': the
    answer is given again until a scrape, or until the latency has another answer (or
    refusal), which the next refresh asks for and shows. Against a hostile backend whose
    latency query outlasted the timeout, every refresh asked, decoded and joined 20,000
    edges again. A good latency answer's successor waits for the scrape, as the rates do
    (at 2,000 services one comes every 12-24 s)."""
    _Latency.upstream, _Latency.requests = prom.url, 0
    # refused after 0.5 s; answered after 0.6 s; answered after 1 s. Each is asked by a
    # refresh that asks once it is due: four times as long as the last took after it
    _Latency.plan = [(True, 0.5), (False, 0.6), (False, 1.0)]
    with serving(_Latency) as url:
        source = PrometheusMetrics(PrometheusConfig(url, dialect="istio"), latency_later=True)
        busy = f"latency unavailable: Prometheus at {url} rejected a query: unavailable: busy"

        async def run() -> None:
            first = await source.traffic(WINDOW_S)
            assert first.edges and len(first.warnings) == 1
            assert "latency: the first answer" in first.warnings[0]
            asked = _Latency.requests
            assert await source.traffic(WINDOW_S) is first  # still coming: the same
            assert _Latency.requests == asked
            await asyncio.sleep(1.0)  # refused by now: asked again
            refused = await source.traffic(WINDOW_S)
            assert refused is not first and _Latency.requests == asked + 1
            assert refused.warnings == (busy,)
            assert {e.key for e in refused.edges} == {e.key for e in first.edges}
            assert all(e.stats.p99_ms is None for e in refused.edges)
            for _ in range(3):  # the refusal again until a scrape: the same answer
                assert await source.traffic(WINDOW_S) is refused
            assert _Latency.requests == asked + 1
            await asyncio.sleep(SCRAPE_S + 0.2)  # a scrape: asked, the latency too
            scraped = await source.traffic(WINDOW_S)
            assert scraped is not refused and _Latency.requests == asked + 2
            assert scraped.warnings == (busy,)  # its latency 0.6 s later
            await asyncio.sleep(1.1)  # answered: asked again, and shown
            good = await source.traffic(WINDOW_S)
            assert _Latency.requests == asked + 3 and not good.warnings
            assert any(e.stats.p99_ms is not None for e in good.edges)
            await asyncio.sleep(SCRAPE_S + 0.2)  # a scrape: asked, the latency too
            again = await source.traffic(WINDOW_S)
            assert again is not good and _Latency.requests == asked + 4
            await asyncio.sleep(1.5)  # its latency answered: it waits for the next scrape
            assert await source.traffic(WINDOW_S) is again
            assert _Latency.requests == asked + 4 and not _Latency.plan

        asyncio.run(run())


def test_export_and_a_moment_ask_every_time(prom: Prometheus) -> None:
    export = PrometheusMetrics(PrometheusConfig(prom.url, dialect="istio"))
    moment = PrometheusMetrics(
        PrometheusConfig(prom.url, dialect="istio"), latency_later=True
    ).moment(time.time() - 5)

    async def run() -> None:
        for source in (export, moment):
            first = await source.traffic(WINDOW_S)
            sent = source.queries_sent
            again = await source.traffic(WINDOW_S)
            assert again is not first and source.queries_sent >= sent + 3
            assert {e.key for e in again.edges} == {e.key for e in first.edges}

    asyncio.run(run())
