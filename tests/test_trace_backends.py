"""The trace adapters read the real payloads of Jaeger, Tempo and Zipkin (the shared
fixtures, see SOURCES.md there) over HTTP from a local server, through their own HTTP
client: no client is monkeypatched. Every way a backend can fail is one clear line."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from meshtop.errors import BackendError, UsageError
from meshtop.model import TraceQuery
from meshtop.sources.tracing import TracingConfig, hex_id, parse_tracing, user_trace_id
from meshtop.sources.tracing.jaeger import JaegerTraces
from meshtop.sources.tracing.tempo import TempoTraces, traceql
from meshtop.sources.tracing.zipkin import ZipkinTraces
from meshtop.waterfall import Tree

from .conftest import FIXTURES


class Backend(BaseHTTPRequestHandler):
    """Answers each path with what the test put in `routes`: a fixture file, a JSON
    value, a status, or a delay; records what it was asked."""

    routes: ClassVar[dict[str, Any]] = {}
    asked: ClassVar[list[tuple[str, dict[str, list[str]], dict[str, str]]]] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        Backend.asked.append((url.path, parse_qs(url.query), dict(self.headers)))
        found = Backend.routes.get(url.path)
        if found is None:
            self._send(404, b"404 page not found", "text/plain")
        elif isinstance(found, Path):
            self._send(200, found.read_bytes(), "application/json")
        elif isinstance(found, tuple):  # (status, body) or ("slow", seconds)
            if found[0] == "slow":
                time.sleep(found[1])
                self._send(200, b"{}", "application/json")
            else:
                self._send(found[0], found[1].encode(), "text/html")
        else:
            self._send(200, json.dumps(found).encode(), "application/json")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def backend(fixtures: Path) -> Iterator[str]:
    Backend.routes, Backend.asked = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _load(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text())


# -- Jaeger ---------------------------------------------------------------------------


def test_jaeger_v3_first(backend: str) -> None:
    Backend.routes.update({
        "/api/v3/services": FIXTURES / "jaeger/apiv3/GetServices.json",
        "/api/v3/traces": FIXTURES / "jaeger/apiv3/FindTraces.json",
        "/api/v3/traces/00000000000000000000000000000001": FIXTURES / "jaeger/apiv3/GetTrace.json",
    })  # fmt: skip
    jaeger = JaegerTraces(TracingConfig("jaeger", backend))
    trace = asyncio.run(jaeger.get_trace("00000000000000000000000000000001"))
    assert jaeger.v3 is True
    (span,) = trace.spans
    assert (span.span_id, span.operation, span.kind, span.error) == (
        "0000000000000002", "foobar", "server", True,  # OTLP status code 2: ERROR
    )  # fmt: skip
    found = asyncio.run(jaeger.find_traces(TraceQuery("unknown", limit=5)))
    assert [t.trace_id for t in found] == ["00000000000000000000000000000001"]
    assert found[0].error is True and found[0].span_count == 1
    search = next(q for p, q, _ in Backend.asked if p == "/api/v3/traces")
    assert search["query.service_name"] == ["unknown"] and "query.start_time_min" in search


def test_jaeger_before_v3_uses_the_older_api(backend: str) -> None:
    Backend.routes.update({
        "/api/services": {"data": ["frontend"]},
        "/api/traces/0000000000000001": {"data": [_load("jaeger/ui_01.json")]},
        "/api/traces": FIXTURES / "jaeger/ui/oltp2jaeger-multi-out.json",
    })  # fmt: skip
    jaeger = JaegerTraces(TracingConfig("jaeger", backend))
    trace = asyncio.run(jaeger.get_trace("0000000000000001"))
    assert jaeger.v3 is False and len(trace.spans) == 5
    errors = [s for s in trace.spans if s.error]
    assert [s.tags["peer.service"] for s in errors] == ["service-y"]
    assert trace.spans[0].events[0].name == "some-event"
    tree = Tree(trace)  # the payload repeats a span id: both are shown
    assert len(tree.rows()) == 5
    found = asyncio.run(jaeger.find_traces(TraceQuery("example-trace", errors_only=False)))
    assert [t.span_count for t in found] == [4]
    search = next(q for p, q, _ in Backend.asked if p == "/api/traces")
    assert search["service"] == ["example-trace"]


def test_jaeger_api_v2_json_has_base64_ids_and_rfc3339_times() -> None:
    from meshtop.sources.tracing.jaeger import v1_trace

    ui, domain = v1_trace(_load("jaeger/ui_01.json")), v1_trace(_load("jaeger/domain_01.json"))
    assert domain.trace_id == "00000000000000000000000000000001"
    assert [s.span_id for s in domain.spans] == [s.span_id for s in ui.spans]
    assert [s.start_us for s in domain.spans] == [s.start_us for s in ui.spans]
    assert [s.duration_us for s in domain.spans] == [s.duration_us for s in ui.spans]


# -- Tempo ----------------------------------------------------------------------------


def test_tempo_search_asks_traceql_for_the_edge(backend: str) -> None:
    Backend.routes["/api/search"] = FIXTURES / "tempo/kiali/response.json"
    config = TracingConfig("tempo", backend, {"X-Scope-OrgID": "team-a"})
    q = TraceQuery("istio-ingressgateway", namespace="istio-system", peer_service="productpage",
                   peer_namespace="bookinfo", errors_only=True)  # fmt: skip
    (found,) = asyncio.run(TempoTraces(config).find_traces(q))
    assert found.trace_id == "100cb753c787ed5657c8d88dafc176ed"
    assert found.duration_us == 9000 and found.span_count is None
    assert found.root.startswith("istio-ingressgateway.istio-system: productpage.bookinfo")
    assert "reviews.bookinfo" in found.services
    _, params, headers = Backend.asked[-1]
    assert params["q"] == [traceql(q)]
    assert traceql(q) == (
        '({ resource.service.name = "istio-ingressgateway.istio-system" } > '
        '{ resource.service.name = "productpage.bookinfo" }) && { status = error }'
    )
    assert headers["X-Scope-OrgID"] == "team-a"
    # the console at a past moment: the search ends there (issue 19)
    asyncio.run(TempoTraces(config).find_traces(replace(q, end_s=1_800_000_000.0)))
    _, params, _ = Backend.asked[-1]
    assert (params["start"], params["end"]) == (["1799996400"], ["1800000001"])


def test_tempo_trace_by_id_v2_then_the_older_api(backend: str) -> None:
    tid = "5b8efff798038103d269b633813fc60c"
    Backend.routes[f"/api/v2/traces/{tid}"] = {"trace": _load("tempo/otlp-trace.json")}
    tempo = TempoTraces(TracingConfig("tempo", backend))
    (span,) = asyncio.run(tempo.get_trace(tid)).spans
    assert (span.service, span.kind, span.parent_id) == ("my.service", "server", "eee19b7ec3c1b173")
    assert span.duration_us == 1_000_000
    Backend.routes.clear()
    Backend.routes[f"/api/traces/{tid}"] = FIXTURES / "tempo/tempopb-trace-batches.json"
    trace = asyncio.run(tempo.get_trace(tid.upper()))
    assert trace.trace_id == tid and Tree(trace).orphans  # its parent is not in the trace


# -- Zipkin ---------------------------------------------------------------------------


def test_zipkin_trace_with_clock_skew_and_a_shared_span(backend: str) -> None:
    Backend.routes["/api/v2/trace/1e223ff1f80f1c69"] = FIXTURES / "zipkin/skew.json"
    trace = asyncio.run(
        ZipkinTraces(TracingConfig("zipkin", backend)).get_trace("1e223ff1f80f1c69")
    )
    tree = Tree(trace)
    rows = tree.rows()
    assert [(r.depth, r.span.service, r.span.kind) for r in rows] == [
        (0, "servicea", "server"),
        (1, "servicea", "client"),
        (2, "serviceb", "server"),  # the server's half of the shared span, under the client's
        (3, "serviceb", ""),  # serviceb's async work, under its server half
    ]
    client, server = rows[1], rows[2]
    assert server.skew_us > 60_000  # serviceb's clock was behind: moved into its caller
    assert client.start_us <= server.start_us
    assert server.start_us + server.span.duration_us <= client.start_us + client.span.duration_us


def test_zipkin_search_keeps_the_service_and_sorts_slowest_first(backend: str) -> None:
    Backend.routes["/api/v2/traces"] = [
        _load(f"zipkin/{n}.json") for n in ("yelp", "messaging", "ascend")
    ]
    zipkin = ZipkinTraces(TracingConfig("zipkin", backend))
    found = asyncio.run(zipkin.find_traces(TraceQuery("frontend", min_duration_ms=1)))
    assert [t.root for t in found] == ["frontend: get /"]
    params = Backend.asked[-1][1]
    assert params["serviceName"] == ["frontend"] and params["minDuration"] == ["1000"]
    every = asyncio.run(zipkin.find_traces(TraceQuery("mobile_api")))
    assert len(every) == 1 and every[0].span_count == 16


def test_an_envoy_span_with_istio_tags_is_read() -> None:
    from meshtop.sources.tracing.zipkin import zipkin_trace

    (span,) = zipkin_trace(_load("zipkin/envoy.json")).spans
    assert span.tags["upstream_cluster"] == "service_google" and not span.error


# -- ids and failures -----------------------------------------------------------------


def test_ids_in_hex_or_base64() -> None:
    assert hex_id("AAAAAAAAAAAAAAAAAAAAAQ==") == "00000000000000000000000000000001"
    assert hex_id("AAAAAAAAAAI=") == "0000000000000002"
    assert hex_id("5B8EFFF798038103D269B633813FC60C") == "5b8efff798038103d269b633813fc60c"
    assert user_trace_id("AAAAAAAAAAAAAAAAAAAAAQ==") == "00000000000000000000000000000001"
    with pytest.raises(UsageError, match="is not a trace id"):
        user_trace_id("not-an-id")


@pytest.mark.parametrize(
    ("route", "says"),
    [
        (None, "trace 0000000000000001 not found in Zipkin"),
        ((500, "<html>oops</html>"), "answered HTTP 500"),
        ((200, "<html>login</html>"), "something that is not JSON"),
        ({"not": "a list"}, "not what its API promises"),
        (("slow", 1.0), "did not answer within 0.3s"),
    ],
)
def test_backend_failures_are_one_clear_line(backend: str, route: Any, says: str) -> None:
    if route is not None:
        Backend.routes["/api/v2/trace/0000000000000001"] = route
    zipkin = ZipkinTraces(TracingConfig("zipkin", backend, timeout_s=0.3))
    with pytest.raises(BackendError, match=says) as err:
        asyncio.run(zipkin.get_trace("0000000000000001"))
    assert "\n" not in str(err.value)


def test_an_unreachable_backend_is_one_line() -> None:
    jaeger = JaegerTraces(TracingConfig("jaeger", "http://127.0.0.1:9"))
    with pytest.raises(BackendError, match=r"cannot reach Jaeger at http://127\.0\.0\.1:9"):
        asyncio.run(jaeger.get_trace("0000000000000001"))


def test_a_url_that_is_no_jaeger_says_so(backend: str) -> None:
    with pytest.raises(BackendError, match="no Jaeger API at"):
        asyncio.run(JaegerTraces(TracingConfig("jaeger", backend)).get_trace("0000000000000001"))


@pytest.mark.parametrize(
    ("text", "says"),
    [("jaeger", "write jaeger=URL"), ("honeycomb=http://x", "write jaeger=URL"),
     ("tempo=ftp://x", "is not an http(s) URL"), ("zipkin=http://u:p@x", "credentials do not go")],
)  # fmt: skip
def test_bad_tracing_flags(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_tracing(text)


def test_ids_that_lost_leading_zeros_or_base64_padding() -> None:
    # Jaeger's and Tempo's JSON drop leading zeros (fixtures: 31 digits)
    assert hex_id("df84e36b9e2ee3815d07f0867a5be1f") == "0df84e36b9e2ee3815d07f0867a5be1f"
    assert user_trace_id("2e299711ce47710289dc6640727404f") == "02e299711ce47710289dc6640727404f"
    assert hex_id("AAAAAAAAAAAAAAAAAAAAAQ") == "00000000000000000000000000000001"  # unpadded
    assert hex_id("AAAAAAAAAAE") == "0000000000000001"
    assert hex_id("trace-123") == "trace-123"  # kept: the span still shows
    with pytest.raises(UsageError):
        user_trace_id("a" * 33)


def test_an_older_jaeger_that_answers_unknown_paths_with_its_ui(backend: str) -> None:
    Backend.routes.update({
        "/api/v3/services": (200, "<!doctype html><html>Jaeger UI</html>"),
        "/api/services": {"data": ["frontend"]},
        "/api/traces/0000000000000001": {"data": [_load("jaeger/ui_01.json")]},
    })  # fmt: skip
    jaeger = JaegerTraces(TracingConfig("jaeger", backend))
    assert len(asyncio.run(jaeger.get_trace("1")).spans) == 5
    assert jaeger.v3 is False


def test_tempo_lists_say_span_counts_and_errors_where_tempo_does(backend: str) -> None:
    Backend.routes["/api/search"] = FIXTURES / "tempo/kiali/responseAmbient.json"
    q = TraceQuery("bookinfo-gateway-istio", namespace="bookinfo", min_duration_ms=2_000_000)
    (found,) = asyncio.run(TempoTraces(TracingConfig("tempo", backend)).find_traces(q))
    assert found.trace_id == "02e299711ce47710289dc6640727404f"  # the dropped zero put back
    assert found.span_count == 4  # serviceStats: 1 + 3
    assert found.error is False  # no errorCount in any service
    assert set(found.services) >= {"bookinfo-gateway-istio.bookinfo", "waypoint.bookinfo"}
    assert "traceDuration >= 2000000000us" in Backend.asked[-1][1]["q"][0]  # not 2e+06ms


def test_every_shared_fixture_reads_and_shows(fixtures: Path) -> None:
    """Each real payload: parsed, built into a tree, its rows all shown."""
    from meshtop.sources.tracing import otlp
    from meshtop.sources.tracing.jaeger import v1_trace
    from meshtop.sources.tracing.zipkin import zipkin_trace

    seen = 0
    for path in sorted((fixtures / "zipkin").glob("*.json")):
        doc = json.loads(path.read_text())
        traces = [zipkin_trace(doc if isinstance(doc, list) else [doc])]
        seen += sum(len(Tree(t).rows()) == len(t.spans) for t in traces)
    for name in ("ui_01.json", "domain_01.json", "ui/TraceGraph-testTrace.json",
                 "ui/spansAmongEachOther.json"):  # fmt: skip
        doc = json.loads((fixtures / "jaeger" / name).read_text())
        trace = v1_trace(doc.get("data", [doc])[0] if "data" in doc else doc)
        assert len(Tree(trace).rows()) == len(trace.spans), name
        seen += 1
    for name in ("jaeger/otlp2jaeger-in.json", "tempo/otlp-trace.json"):
        for trace in otlp.traces(json.loads((fixtures / name).read_text())):
            assert len(Tree(trace).rows()) == len(trace.spans), name
            seen += 1
    assert seen >= 14


def test_a_backends_error_answer_is_its_reason_in_one_line() -> None:
    """Jaeger's older API puts its reason after 60 characters of envelope: cut at 80, the
    line ended before it."""
    from meshtop.sources.tracing import error_reason

    legacy = (
        b'{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":400,'
        b'"msg":"unable to parse param \'minDuration\': time: invalid duration"}]}'
    )
    assert error_reason(legacy) == "unable to parse param 'minDuration': time: invalid duration"
    v3 = b'{"error":{"httpCode":400,"message":"malformed parameter query.duration_min"}}'
    assert error_reason(v3) == "malformed parameter query.duration_min"
    assert error_reason(b"<html>\n oops </html>") == "<html> oops </html>"
    assert len(error_reason(b"x" * 10_000)) == 200


# -- the adapter's client ---------------------------------------------------------------


class KeepAlive(Backend):
    protocol_version = "HTTP/1.1"  # keeps a connection open between requests, as real backends do


class CountingServer(ThreadingHTTPServer):
    """Counts the TCP connections it accepted, and those still open."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), KeepAlive)
        self.accepted = 0
        self.open = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        self.accepted += 1
        self.open += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:  # once its handler saw the client go
        self.open -= 1
        super().shutdown_request(request)

    def wait_closed(self) -> None:
        deadline = time.monotonic() + 5
        while self.open and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.open == 0, "the client left its connection open"


def test_an_adapter_asks_over_one_connection_per_event_loop_and_closes_it() -> None:
    Backend.routes = {"/api/v2/trace/1e223ff1f80f1c69": FIXTURES / "zipkin/skew.json"}
    server = CountingServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        zipkin = ZipkinTraces(TracingConfig("zipkin", f"http://127.0.0.1:{server.server_port}"))

        async def three(close: bool) -> None:
            for _ in range(3):
                assert (await zipkin.get_trace("1e223ff1f80f1c69")).spans
            if close:
                await zipkin.aclose()

        asyncio.run(three(close=True))
        assert server.accepted == 1  # three requests, one connection
        server.wait_closed()  # aclose() closed it
        asyncio.run(three(close=False))
        assert server.accepted == 2  # a new client after aclose(), reused too
        server.wait_closed()  # closed with its event loop, though nobody called aclose()
        asyncio.run(three(close=False))  # the client of a closed loop is not used again
        assert server.accepted == 3
        server.wait_closed()
    finally:
        server.shutdown()
        server.server_close()
