"""A refresh against a Prometheus on loopback that answers as told (issue 17): the work on
its answers (the quantiles, the join into edges) runs off the event loop, and a latency
or TCP query that fails leaves the edges of the requests answer, that figure unavailable
and said once; a requests query that fails still fails the refresh."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from meshtop import mesh
from meshtop.config import PrometheusConfig
from meshtop.errors import BackendError
from meshtop.sources.dialects import ISTIO
from meshtop.sources.prometheus import EDGE, SEPARATOR, PrometheusMetrics
from meshtop.sources.prometheus import source as source_module
from meshtop.sources.protocols import ClusterSources
from tests.loopback import serving

CALLS = 40
BOUNDS = ("5", "10", "25", "50", "100", "250", "500", "1000", "+Inf")


def _key(i: int) -> str:
    labels = {
        "source_workload_namespace": "shop",
        "source_workload": "front-v1",
        "source_app": "front",
        "destination_workload_namespace": "shop",
        "destination_workload": f"back-{i}-v1",
        "destination_app": f"back-{i}",
        "destination_service": f"back-{i}.shop.svc.cluster.local",
    }
    return SEPARATOR.join(labels.get(x, "") for x in ISTIO.edge_labels())


def _vector(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": rows}}
    ).encode()


def _requests() -> bytes:
    return _vector(
        [
            {
                "metric": {EDGE: _key(i), "reporter": "source", "response_code": code},
                "value": [0, rate],
            }
            for i in range(CALLS)
            for code, rate in (("200", "9"), ("503", "1"))
        ]
    )


def _latency() -> bytes:
    return _vector(
        [
            {
                "metric": {EDGE: _key(i), "reporter": "source", "le": le},
                "value": [0, str(min(10.0, 2.0 * (n + 1)))],
            }
            for i in range(CALLS)
            for n, le in enumerate(BOUNDS)
        ]
    )


def _tcp() -> bytes:
    return _vector(
        [
            {
                "metric": {
                    EDGE: _key(i),
                    "reporter": "source",
                    "metric": metric,
                    "connection_security_policy": "unknown",
                },
                "value": [0, "100"],
            }
            for i in range(CALLS, CALLS + 3)  # three TCP-only calls
            for metric in ("request_bytes", "response_bytes", "opened")
        ]
    )


class _Prometheus(BaseHTTPRequestHandler):
    """Each query answered by its kind (requests, latency, tcp), and the lookup of the
    buckets' bounds (`bounds`); `broken` kinds are answered as told: `big`, an answer
    over any small cap; `slow`, nothing for 30 s; `late`, an answer after the
    console's grace; `garbage`, bounds that are not
    strings; `keys`, an object whose keys are; `many`, more than the source takes.
    `asked`: the latency queries seen."""

    broken: ClassVar[dict[str, str]] = {}
    asked: ClassVar[list[str]] = []
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/api/v1/label/le/values"):
            self._answer("", "bounds")
            return
        self._answer(parse_qs(urlparse(self.path).query).get("query", [""])[0])

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self._answer(parse_qs(self.rfile.read(length).decode()).get("query", [""])[0])

    def _answer(self, query: str, kind: str = "") -> None:
        if not kind:
            kind = (
                "latency" if "duration" in query else "tcp" if "istio_tcp" in query else "requests"
            )
        if query.startswith("topk(1,"):
            kind = "spacing"  # one series, to read its samples' spacing
        if kind == "latency":
            self.asked.append(query)
        how = self.broken.get(kind)
        if how == "slow":
            time.sleep(30)
            return
        if how == "late":  # later than a refresh waits for it in the console
            time.sleep(source_module.LATENCY_GRACE_S + 0.5)
        if how == "brief":  # within the grace a refresh gives it
            time.sleep(source_module.LATENCY_GRACE_S / 3)
        if kind == "bounds":
            bounds: Any = [*BOUNDS, "2500", "5000"]
            if how == "garbage":
                bounds = [1, 2]
            elif how == "keys":  # not a list: its keys are not bounds
                bounds = {"result": [], "2500": 0, "5000": 0}
            elif how == "many":  # more than the lookup takes
                bounds = [str(i) for i in range(source_module.MAX_BOUNDS)] + bounds
            compact = (",", ":")  # as Prometheus writes it
            body = json.dumps({"status": "success", "data": bounds}, separators=compact).encode()
        else:
            body = {"requests": _requests, "latency": _latency, "tcp": _tcp}.get(kind, _requests)()
        if how == "unlabelled":  # a sample without its labels
            body = _vector([{"value": [0, "1"]}])
        if how == "big":
            rows = json.loads(body)["data"]["result"]
            body = _vector(rows * (1 + 700_000 // len(body)))  # over half a MiB
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _serving(**broken: str) -> AbstractContextManager[str]:
    _Prometheus.asked.clear()
    return serving(type("Handler", (_Prometheus,), {"broken": broken}))


def _source(url: str, **kw: Any) -> PrometheusMetrics:
    return PrometheusMetrics(PrometheusConfig(url, dialect="istio", **kw))


def test_the_quantiles_and_the_join_run_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran_on: dict[str, set[int]] = {"join": set(), "edge_quantiles": set()}
    for name in ran_on:
        work = getattr(source_module, name)

        def spy(*args: Any, _work: Any = work, _name: str = name, **kw: Any) -> Any:
            ran_on[_name].add(threading.get_ident())
            return _work(*args, **kw)

        monkeypatch.setattr(source_module, name, spy)

    async def refresh(source: PrometheusMetrics) -> tuple[int, Any]:
        return threading.get_ident(), await source.traffic(60)

    with _serving() as url:
        loop_thread, traffic = asyncio.run(refresh(_source(url)))
    assert len(traffic.edges) == CALLS + 3
    assert all(e.stats.p99_ms is not None for e in traffic.edges if e.stats.rps)
    assert ran_on["join"] and ran_on["edge_quantiles"]
    assert loop_thread not in ran_on["join"] | ran_on["edge_quantiles"]


@pytest.mark.parametrize(
    ("console", "latency"), [(False, ""), (True, ""), (True, "late")],
    ids=["export", "console", "console, the latency after the refresh"],
)  # fmt: skip
def test_the_answers_rows_are_freed_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, console: bool, latency: str
) -> None:
    """Freed where the coroutine that read them ends, a large answer's decoded rows held
    the screen's thread for their whole length (issue 17): the requests, TCP and latency
    rows are emptied on another thread once nobody reads them, in the console once the
    latency gone on behind the refresh has read the requests too."""
    freed: list[tuple[int, list[int]]] = []
    emptied: list[bool] = []
    let_go = source_module.let_go

    def spy(*lists: list[Any]) -> None:
        freed.append((threading.get_ident(), [len(rows) for rows in lists]))
        let_go(*lists)
        emptied.append(not any(lists))

    free = source_module._free
    handed: list[list[int]] = []  # in the order handed over, on the loop's thread

    def handing(*lists: list[Any]) -> None:
        handed.append([len(rows) for rows in lists])
        free(*lists)

    monkeypatch.setattr(source_module, "_free", handing)

    monkeypatch.setattr(source_module, "let_go", spy)

    async def refresh(source: PrometheusMetrics) -> tuple[int, Any]:
        traffic = await source.traffic(60)
        for _ in range(500):  # the latency behind the refresh, in the console
            if sum(len(sizes) for _, sizes in freed) >= 4:
                break
            await asyncio.sleep(0.01)
        return threading.get_ident(), traffic

    with _serving(latency=latency) as url:
        source = PrometheusMetrics(PrometheusConfig(url, dialect="istio"), latency_later=console)
        loop_thread, traffic = asyncio.run(refresh(source))
    assert len(traffic.edges) == CALLS + 3
    sizes = sorted(n for _, lists in freed for n in lists)
    # the requests, the TCP answer, and the latency's (its answer, and the whole of it)
    assert sizes == sorted([2 * CALLS, 3 * 3, CALLS * len(BOUNDS), CALLS * len(BOUNDS)])
    assert loop_thread not in {thread for thread, _ in freed}
    assert emptied == [True] * len(freed)
    if latency == "late":  # the requests' rows not before the latency, which reads them
        assert handed[0] == [CALLS * len(BOUNDS)] * 2


def test_a_refresh_cancelled_leaves_the_latency_going_on_behind_it() -> None:
    """A refresh cancelled (a newer one: `r`) has its requests cut off (`bounded`), but
    not the console's latency query, which goes on behind the refreshes for the next."""

    async def run(source: PrometheusMetrics) -> None:
        task = asyncio.ensure_future(mesh.refresh({"c1": ClusterSources(source)}))
        end = time.monotonic() + 10
        while not _Prometheus.asked:  # the latency asked: the refresh waits its grace
            assert time.monotonic() < end
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        behind = source._learning["istio"]
        await asyncio.wait_for(behind, 10)

    with _serving(latency="late") as url:
        source = PrometheusMetrics(PrometheusConfig(url, dialect="istio"), latency_later=True)
        asyncio.run(run(source))
    newest = source._latest["istio"]
    assert newest.why == ""
    assert newest.latencies is not None and newest.latencies.quantiles


@pytest.mark.parametrize("grace_rows", [1000, 10])
def test_the_first_refresh_waits_for_the_latency_only_of_a_small_mesh(
    grace_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console's first refresh gives its latency query the grace only where the
    requests answer has at most LATENCY_GRACE_ROWS rows (80 here): a larger mesh's
    first latency answer cannot come in it, and the first frame waited for nothing."""
    monkeypatch.setattr(source_module, "LATENCY_GRACE_ROWS", grace_rows)

    async def first(source: PrometheusMetrics) -> Any:
        return await source.traffic(60)

    with _serving(latency="brief") as url:
        source = PrometheusMetrics(PrometheusConfig(url, dialect="istio"), latency_later=True)
        traffic = asyncio.run(first(source))
    coming = any("is still coming" in w for w in traffic.warnings)
    with_latency = [e for e in traffic.edges if e.stats.p99_ms is not None]
    if grace_rows >= 2 * CALLS:  # waited: the answer, come within the grace, is in
        assert not coming and len(with_latency) == CALLS
    else:  # did not wait: no latency yet, and the console says it is coming
        assert coming and not with_latency


CAP_MB = 0.5


def _traffic(url: str, **kw: Any) -> Any:
    return asyncio.run(_source(url, max_response_mb=CAP_MB, **kw).traffic(60))


def _figures(traffic: Any) -> dict[tuple[str, str], tuple[float, float, dict[str, float]]]:
    return {
        e.key: (e.stats.rps, e.stats.error_rate, dict(e.stats.response_codes))
        for e in traffic.edges
        if e.stats.rps
    }


def test_a_latency_answer_over_the_cap_leaves_the_edges_without_latency() -> None:
    with _serving() as url:
        whole = _traffic(url)
    with _serving(latency="big") as url:
        partial = _traffic(url)
    assert len(partial.edges) == len(whole.edges) == CALLS + 3
    assert _figures(partial) == _figures(whole)
    http = [e for e in partial.edges if e.stats.rps]
    assert all(e.stats.p50_ms is None and e.stats.p99_ms is None for e in http)
    assert all(e.stats.p99_ms is not None for e in whole.edges if e.stats.rps)
    said = [w for w in partial.warnings if "unavailable" in w]
    assert said == [
        f"latency unavailable: Prometheus at {url} answered more than {CAP_MB:g} MiB; "
        "raise [prometheus] max_response_mb if a query really needs it"
    ]
    assert not whole.warnings


def test_a_tcp_answer_over_the_cap_leaves_the_http_edges_whole() -> None:
    with _serving() as url:
        whole = _traffic(url)
    with _serving(tcp="big") as url:
        partial = _traffic(url)
    assert {e.key: e.stats for e in partial.edges} == {
        e.key: e.stats for e in whole.edges if e.stats.rps
    }
    assert len(partial.edges) == CALLS
    assert [w.split(":")[0] for w in partial.warnings] == ["TCP unavailable"]


def test_a_latency_query_that_never_answers_leaves_the_edges_in_time() -> None:
    with _serving(latency="slow") as url:
        started = time.monotonic()
        partial = _traffic(url, timeout_s=2.0)
        took = time.monotonic() - started
    assert took < 2.0  # the refresh's deadline: mesh.refresh gives up on it past that
    assert len(partial.edges) == CALLS + 3
    assert all(e.stats.p99_ms is None for e in partial.edges)
    said = [w for w in partial.warnings if "unavailable" in w]
    assert len(said) == 1
    assert re.fullmatch(
        rf"latency unavailable: Prometheus at {re.escape(url)} did not answer within "
        r"1\.[5-8]s, the time left for it in a refresh of 2s \(--timeout\)",
        said[0],
    ), said  # 2 s less the time to make the edges (and the probe's)


def test_the_first_latency_query_leaves_out_the_buckets_above_a_second() -> None:
    with _serving() as url:
        source = _source(url)
        traffic = asyncio.run(source.traffic(60))
    assert len(_Prometheus.asked) == 1 and 'le!~"2500|5000"' in _Prometheus.asked[0]
    assert all(e.stats.p99_ms is not None for e in traffic.edges if e.stats.rps)


@pytest.mark.parametrize("how", ["slow", "garbage", "keys", "many"])
def test_a_bounds_lookup_that_fails_leaves_the_first_latency_query_whole(how: str) -> None:
    """The first latency query leaves out the buckets above a second by the bounds the
    backend says its buckets have; where it does not say within a second, or says
    something else, the query asks for every bucket, in time."""
    with _serving(bounds=how) as url:
        started = time.monotonic()
        traffic = _traffic(url, timeout_s=5.0)
        took = time.monotonic() - started
    assert took < source_module.BOUNDS_S + 1.0
    assert len(_Prometheus.asked) == 1 and "le!~" not in _Prometheus.asked[0]
    assert all(e.stats.p99_ms is not None for e in traffic.edges if e.stats.rps)
    assert not traffic.warnings


def test_a_scrape_interval_read_from_samples_without_labels_is_unknown() -> None:
    """The console reads the proxies' scrape interval from one series' samples: a sample
    answered without its labels is the backend's error (not a crash that failed the
    console's refresh), and the interval unknown (0: every refresh asks)."""
    with _serving(spacing="unlabelled") as url:
        source = _source(url)
        with pytest.raises(BackendError, match="not what the queries ask for"):
            asyncio.run(source._sample_spacing("istio_requests_total"))
        assert asyncio.run(source._scrape_interval()) == 0.0


def test_a_requests_answer_over_the_cap_still_fails_the_refresh() -> None:
    with _serving(requests="big") as url, pytest.raises(BackendError, match=r"more than 0\.5 MiB"):
        _traffic(url)


def test_an_answer_over_the_cap_is_refused_without_what_was_read() -> None:
    """The error a refused answer raises does not keep the one it was raised from (its
    traceback held the frame that read, with every chunk read so far: 64 MiB at the
    default cap, for as long as the error lived)."""
    import requests

    from meshtop.config import PrometheusConfig
    from meshtop.errors import BackendError
    from meshtop.sources.prometheus.wire import BoundedSession

    class Endless:
        def read1(self, n: int, decode_content: bool = True) -> bytes:
            return b"x" * n

        def close(self) -> None:
            pass

    session = BoundedSession(PrometheusConfig("http://127.0.0.1:9", max_response_mb=1))
    response = requests.Response()
    response.raw = Endless()
    with pytest.raises(BackendError, match="more than 1 MiB") as refused:
        session.read_body(response)
    assert refused.value.__context__ is None and refused.value.__cause__ is None
