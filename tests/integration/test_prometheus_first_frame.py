"""The console's first frame against a real Prometheus (issue 17): a first refresh's latency
query asks every call's buckets up to a second (seconds at 2,000 services), and in the
console (`latency_later`) the refresh gives its edges without waiting for it, says the
latency is still coming, and a later refresh has it, the same figures as export's, which
waits.
Here the latency answer is made late by a proxy on loopback in front of Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from meshtop.config import PrometheusConfig
from meshtop.model import Edge
from meshtop.sim.exposition import DURATION_BUCKETS_MS
from meshtop.sources.prometheus import PrometheusMetrics
from meshtop.sources.prometheus import source as source_module
from meshtop.sources.protocols import Traffic
from tests.loopback import serving

from .prometheus import SETTLED_S, Prometheus, bounds_in, forwarded, scraped_mesh

pytestmark = pytest.mark.integration

WINDOW_S = 10
LATE_S = 2.0  # how late the proxy makes a latency answer


class _Late(BaseHTTPRequestHandler):
    """Prometheus's answers as they are, a refresh's latency query `late` after the first
    ones given in `delays` (one each, in order): a number of seconds, or ("fail", seconds)
    for Prometheus's refusal when overloaded then (HTTP 503). `asked`: every such query
    seen; not the one asking again for the buckets left out (`le=~`) of the calls whose
    quantiles fell among them, answered at once (the storefront's calls from ingress have
    their p99 near a second, above it in some windows). A requests query's
    `requests_late` seconds late."""

    upstream: ClassVar[str] = ""
    delays: ClassVar[list[float | tuple[str, float]]] = []
    asked: ClassVar[list[str]] = []
    requests_late: ClassVar[float] = 0.0
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query).get("query", [""])[0]
        self._answer(query, "GET", None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer(parse_qs(body.decode()).get("query", [""])[0], "POST", body)

    def _answer(self, query: str, method: str, body: bytes | None) -> None:
        how: float | tuple[str, float] = 0.0
        if "duration" in query and "_bucket" in query and "le=~" not in query:
            self.asked.append(query)
            if self.delays:
                how = self.delays.pop(0)
        elif "istio_requests_total" in query:
            how = self.requests_late
        time.sleep(how[1] if isinstance(how, tuple) else how)
        if isinstance(how, tuple):
            content = b'{"status":"error","errorType":"unavailable","error":"overloaded"}'
            status, kind = 503, "application/json"
        else:
            status, content, kind = forwarded(self, self.upstream, method, body)
            kind = kind or "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with scraped_mesh(tmp_path_factory.mktemp("p"), WINDOW_S) as p:
        yield p


@pytest.fixture(scope="module")
def proxy(prom: Prometheus) -> Iterator[str]:
    _Late.upstream = prom.url
    with serving(_Late) as url:
        yield url


@pytest.fixture
def late(proxy: str) -> Iterator[type[_Late]]:
    _Late.delays, _Late.asked, _Late.requests_late = [], [], 0.0
    yield _Late
    _Late.delays, _Late.requests_late = [], 0.0


def _source(url: str, at: float, *, console: bool) -> PrometheusMetrics:
    config = PrometheusConfig(url, dialect="istio")
    return PrometheusMetrics(config, at=at, latency_later=console)


def _latency(edges: Sequence[Edge]) -> dict[tuple[str, str], tuple[float | None, ...]]:
    return {e.key: (e.stats.p50_ms, e.stats.p95_ms, e.stats.p99_ms) for e in edges}


def _same_latency(got: Traffic, whole: Traffic) -> None:
    want = _latency(whole.edges)
    assert set(_latency(got.edges)) == set(want)
    for key, figures in _latency(got.edges).items():
        for a, b in zip(figures, want[key], strict=True):
            assert (a is None) == (b is None), key
            if a is not None and b is not None:
                assert a == pytest.approx(b, rel=1e-9, abs=1e-9), key


def _calls(traffic: Traffic) -> int:
    return sum(1 for e in traffic.edges if e.stats.rps > 0)


def test_console_draws_the_edges_before_the_first_latency_answer_and_has_it_next(
    prom: Prometheus, proxy: str, late: type[_Late]
) -> None:
    at = time.time() - SETTLED_S
    whole = asyncio.run(_source(prom.url, at, console=False).traffic(WINDOW_S))
    assert any(e.stats.p99_ms is not None for e in whole.edges) and not whole.warnings
    late.delays = [LATE_S]

    async def console() -> tuple[Traffic, float, Traffic]:
        source = _source(proxy, at, console=True)
        started = time.monotonic()
        first = await source.traffic(WINDOW_S)
        took = time.monotonic() - started
        await asyncio.sleep(LATE_S + 0.5)  # the answer comes meanwhile
        return first, took, await source.traffic(WINDOW_S)

    first, took, second = asyncio.run(console())
    assert took < LATE_S - 0.5
    assert {e.key: e.stats.rps for e in first.edges} == {e.key: e.stats.rps for e in whole.edges}
    assert all(v == (None, None, None) for v in _latency(first.edges).values())
    assert list(first.warnings) == [
        f"latency: the first answer ({_calls(whole)} calls) is still coming"
    ]
    assert not second.warnings
    _same_latency(second, whole)
    assert len(late.asked) == 1  # the first answer's, not asked again before it is due


def test_export_waits_for_the_first_latency_answer(
    prom: Prometheus, proxy: str, late: type[_Late]
) -> None:
    at = time.time() - SETTLED_S
    whole = asyncio.run(_source(prom.url, at, console=False).traffic(WINDOW_S))
    late.delays = [1.0]
    started = time.monotonic()
    waited = asyncio.run(_source(proxy, at, console=False).traffic(WINDOW_S))
    assert time.monotonic() - started >= 1.0
    assert not waited.warnings
    _same_latency(waited, whole)


def test_a_refresh_while_the_first_answer_is_coming_shows_the_edges_and_asks_no_other(
    prom: Prometheus, proxy: str, late: type[_Late]
) -> None:
    at = time.time() - SETTLED_S
    whole = asyncio.run(_source(prom.url, at, console=False).traffic(WINDOW_S))
    late.delays = [LATE_S]

    async def console() -> list[Traffic]:
        source = _source(proxy, at, console=True)
        first = await source.traffic(WINDOW_S)
        second = await source.traffic(WINDOW_S)  # the first answer still coming
        await asyncio.sleep(LATE_S + 1.0)
        return [first, second, await source.traffic(WINDOW_S)]

    first, second, third = asyncio.run(console())
    assert first.warnings == second.warnings
    assert all(v == (None, None, None) for v in _latency(second.edges).values())
    assert len(late.asked) == 1  # the first query, once
    assert not third.warnings
    _same_latency(third, whole)


def test_the_console_asks_the_latency_again_once_it_is_due_and_learns_from_the_last(
    prom: Prometheus, proxy: str, late: type[_Late], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked again once `LATENCY_SPACING` times as long as the last one took has gone by
    since it was asked, only the buckets it needs; the refreshes meanwhile, and while the
    next answer is coming, carry the last one's figures without a word."""
    monkeypatch.setattr(source_module, "LATENCY_SPACING", 3.0)
    at = time.time() - SETTLED_S
    whole = asyncio.run(_source(prom.url, at, console=False).traffic(WINDOW_S))
    late.delays = [1.0, 1.0]

    async def console() -> list[tuple[int, float, object, Traffic]]:
        source = _source(proxy, at, console=True)
        seen = []
        for pause in (1.2, 0.5, 3.0, 0.3, 1.2, 0.1):
            started = time.monotonic()
            traffic = await source.traffic(WINDOW_S)
            took = time.monotonic() - started
            newest = source._latest.get("istio")
            await asyncio.sleep(pause)
            seen.append((len(late.asked), took, newest, traffic))  # asked by then
        return seen

    (asked, _, _, first), *after = asyncio.run(console())
    assert asked == 1 and "still coming" in first.warnings[0]
    # at about 1.5 s the answer is in (it took 1 s), and at 2.1 s not due (3 s after it
    # was asked); at 5.1 s due, asked again, the first answer's figures meanwhile (the
    # refresh not waiting for it: the last took longer than the grace), also at 5.5 s;
    # at 6.8 s the second answer's (not due before 8 s)
    assert [n for n, _, _, _ in after] == [1, 1, 2, 2, 2]
    assert after[2][1] < source_module.LATENCY_GRACE_S  # (about 0.1 s here)
    answers = [newest for _, _, newest, _ in after]
    assert answers[0] is answers[1] is answers[2] is answers[3] is not answers[4]
    for _, _, _, traffic in after:
        assert not traffic.warnings
        _same_latency(traffic, whole)
    # the first leaves out the buckets above a second, the next what the first taught
    assert bounds_in(late.asked[0]) == {b for b in DURATION_BUCKETS_MS if b > 1000}
    assert bounds_in(late.asked[1])


def test_a_refresh_cancelled_before_its_answers_asks_no_latency(
    prom: Prometheus, proxy: str, late: type[_Late], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh cancelled (a newer one asked) before its requests answer is in leaves no
    latency query going on behind it: it would be asked for nothing, seconds of
    Prometheus at 2,000 services, and hold up the next refresh's."""
    monkeypatch.setattr(source_module, "LATENCY_GRACE_S", 1.5)  # the next one's comes in it
    at = time.time() - SETTLED_S
    late.requests_late = 1.0

    async def console() -> tuple[list[str], Traffic]:
        source = _source(proxy, at, console=True)
        refresh = asyncio.ensure_future(source.traffic(WINDOW_S))
        await asyncio.sleep(0.5)
        refresh.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresh
        late.requests_late = 0.0
        await asyncio.sleep(1.5)  # the requests answer has come to nobody
        asked = list(late.asked)
        return asked, await source.traffic(WINDOW_S)

    asked, after = asyncio.run(console())
    assert asked == []
    assert len(late.asked) == 1 and not after.warnings  # the next refresh's, in its grace


def test_a_window_changed_while_the_latency_is_coming_gets_its_own(
    prom: Prometheus, proxy: str, late: type[_Late]
) -> None:
    """The newest answer is of its window: a refresh of another window never shows it,
    says its own is coming, and asks it once the one going on is in (without the grace:
    the last one took longer), for the next refresh to show."""
    at = time.time() - SETTLED_S
    whole = asyncio.run(_source(prom.url, at, console=False).traffic(2 * WINDOW_S))
    late.delays = [LATE_S]

    async def console() -> list[Traffic]:
        source = _source(proxy, at, console=True)
        first = await source.traffic(WINDOW_S)
        other = await source.traffic(2 * WINDOW_S)  # the first window's still coming
        await asyncio.sleep(LATE_S + 1.0)  # it has come
        again = await source.traffic(2 * WINDOW_S)  # asks its own
        await asyncio.sleep(1.5)  # which comes at once
        return [first, other, again, await source.traffic(2 * WINDOW_S)]

    first, other, again, then = asyncio.run(console())
    for traffic in (first, other, again):
        assert all(v == (None,) * 3 for v in _latency(traffic.edges).values())
        assert traffic.warnings[-1].endswith("is still coming")
    # the first window's, then the second's (and the next refresh's own, a quick one due)
    assert "[10s]" in late.asked[0] and all("[20s]" in q for q in late.asked[1:])
    assert not then.warnings
    _same_latency(then, whole)


def test_a_first_latency_answer_that_fails_after_its_refresh_is_said_until_one_comes(
    prom: Prometheus, proxy: str, late: type[_Late], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed answer is the newest: its figures none, why said by every refresh until
    the next answer is in; asked again only once due (Prometheus said it was overloaded)."""
    monkeypatch.setattr(source_module, "LATENCY_SPACING", 2.0)
    at = time.time() - SETTLED_S
    whole = asyncio.run(_source(prom.url, at, console=False).traffic(WINDOW_S))
    late.delays = [("fail", 1.0), 1.0]

    async def console() -> list[tuple[int, Traffic]]:
        source = _source(proxy, at, console=True)
        seen = []
        for pause in (1.2, 0.9, 1.8, 0.0):
            traffic = await source.traffic(WINDOW_S)
            await asyncio.sleep(pause)
            seen.append((len(late.asked), traffic))  # asked by then
        return seen

    (_, first), (one, second), (two, third), (_, fourth) = asyncio.run(console())
    assert len(first.warnings) == 1 and "still coming" in first.warnings[0]
    failed = f"latency unavailable: Prometheus at {proxy} rejected a query: unavailable: overloaded"
    # at about 1.5 s it has failed (after 1 s), and is not due again before 2 s; at 2.5 s
    # asked again, its answer still coming; at 4.3 s it is in
    assert list(second.warnings) == [failed] and one == 1
    assert list(third.warnings) == [failed] and two == 2
    for traffic in (second, third):
        assert traffic.edges and all(v == (None,) * 3 for v in _latency(traffic.edges).values())
    assert not fourth.warnings
    _same_latency(fourth, whole)


def test_a_latency_answer_that_fails_after_a_good_one_leaves_its_figures_said_stale(
    prom: Prometheus, proxy: str, late: type[_Late], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query that fails after one that answered leaves the last good answer's figures
    on the edges, as a stale source's edges stay, and every refresh says why until the
    next answer is in (Prometheus said it was overloaded)."""
    monkeypatch.setattr(source_module, "LATENCY_SPACING", 2.0)
    at = time.time() - SETTLED_S
    whole = asyncio.run(_source(prom.url, at, console=False).traffic(WINDOW_S))
    late.delays = [0.0, ("fail", 1.5), 0.0]

    async def console() -> list[tuple[int, Traffic]]:
        source = _source(proxy, at, console=True)
        seen = []
        for pause in (1.5, 2.0, 1.5, 0.8, 0.0):
            traffic = await source.traffic(WINDOW_S)
            await asyncio.sleep(pause)
            seen.append((len(late.asked), traffic))  # asked by then
        return seen

    _, (one, second), (two, third), (three, fourth), (_, fifth) = asyncio.run(console())
    stale = f"latency stale: Prometheus at {proxy} rejected a query: unavailable: overloaded"
    # the first answer in by the second refresh, which asks again: refused 1.5 s later
    # and not due again for 3 s, so the third refresh (2 s later) has the first answer's
    # figures, stale; the fourth asks again and the fifth has that answer
    assert one == 2 and not second.warnings
    assert two == 2 and list(third.warnings) == [stale]
    assert three == 3 and not fifth.warnings
    for traffic in (second, third, fourth, fifth):
        _same_latency(traffic, whole)


def test_stale_latency_says_the_age_of_the_good_answer_not_of_the_failed_one(
    proxy: str, late: type[_Late], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live, the figures kept from a good answer are as old as its query, asked before the
    one that failed: the status line's age keeps growing until an answer comes."""
    monkeypatch.setattr(source_module, "LATENCY_SPACING", 2.0)
    late.delays = [0.0, ("fail", 1.5)]

    async def console() -> list[tuple[float, Traffic]]:
        source = PrometheusMetrics(PrometheusConfig(proxy, dialect="istio"), latency_later=True)
        seen = []
        for pause in (1.5, 2.0, 0.0):
            started = time.monotonic()
            seen.append((started, await source.traffic(WINDOW_S)))
            await asyncio.sleep(pause)
        return seen

    (began, _), _, (now, third) = asyncio.run(console())
    assert "latency stale" in third.warnings[0]
    assert any(e.stats.p99_ms is not None for e in third.edges)
    # the good answer was asked within the first refresh, the failed one in the second
    assert third.latency_age_s is not None
    assert now - began - 0.5 < third.latency_age_s <= now - began, third.latency_age_s


def test_a_refresh_says_how_much_older_its_latency_is_than_its_rates(
    proxy: str, late: type[_Late], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live (each query evaluated as it is asked), a refresh that joins a latency answer
    asked refreshes before its own rates says how much older it is (by a scrape interval
    or more: 1 s here); one whose own latency query answered within its grace, nothing."""
    monkeypatch.setattr(source_module, "LATENCY_SPACING", 2.0)
    late.delays = [LATE_S]

    async def console() -> list[tuple[float, int, Traffic]]:
        source = PrometheusMetrics(PrometheusConfig(proxy, dialect="istio"), latency_later=True)
        seen = []
        for pause in (LATE_S + 0.5, 2.5, 1.2, 0.0):
            started = time.monotonic()
            traffic = await source.traffic(WINDOW_S)
            await asyncio.sleep(pause)
            seen.append((started, len(late.asked), traffic))  # asked by then
        return seen

    (began, _, first), (joined, _, second), (_, asked, third), (_, _, fourth) = asyncio.run(
        console()
    )
    assert first.latency_age_s is None and "still coming" in first.warnings[0]
    # the first refresh's query, asked once its rates were in (it took 2 s)
    assert second.latency_age_s is not None and not second.warnings
    assert joined - began - 0.5 < second.latency_age_s <= joined - began, second.latency_age_s
    assert any(e.stats.p99_ms is not None for e in second.edges)
    # due again 2 x 2 s after it was asked: the third refresh asks it, and does not wait
    # for it (the last took longer than its grace), the first answer 2.5 s older again
    assert asked == 2 and not third.warnings
    assert third.latency_age_s is not None and third.latency_age_s > second.latency_age_s + 2
    # that one in at once, due again at once: the fourth (a scrape after the third)
    # asks its own and waits its grace for it
    assert fourth.latency_age_s is None and not fourth.warnings
    assert any(e.stats.p99_ms is not None for e in fourth.edges)
    assert len(late.asked) == 3
