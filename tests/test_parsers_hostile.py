"""No input makes meshtop raise anything but its own errors: property tests over what
parses outside text (hypothesis), and the answers that used to end as "a bug" (exit 70)."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshtop.canary import Split, parse_set
from meshtop.errors import MeshtopError
from meshtop.gates import parse_gate
from meshtop.sources.routing import route_from_httproute, route_from_virtual_service
from meshtop.sources.tracing import GARBLED, otlp
from meshtop.sources.tracing.jaeger import v1_trace
from meshtop.sources.tracing.zipkin import zipkin_trace
from meshtop.units import parse_duration

from .test_cli import meshtop

# JSON as a backend may send it: any shape, any value, numbers too big for an int
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)  # fmt: skip
# ... and shaped enough to reach past the first key
SPANISH = st.fixed_dictionaries(
    {"traceID": st.text(max_size=8), "spans": st.lists(
        st.dictionaries(st.sampled_from(["spanID", "operationName", "startTime", "duration",
                                          "references", "tags", "processID"]), JSON),
        max_size=3), "processes": JSON}
)  # fmt: skip
ROUTE = st.fixed_dictionaries(
    {"metadata": st.fixed_dictionaries({"name": st.text(min_size=1, max_size=8)}),
     "spec": st.dictionaries(st.sampled_from(["hosts", "http", "rules", "parentRefs"]), JSON)}
)  # fmt: skip
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ours_or_garbled(call: Any, *args: Any) -> None:
    """`call` returns, or raises our own error, or what its caller turns into ours."""
    try:
        call(*args)
    except MeshtopError:
        pass
    except GARBLED:
        pass


@FAST
@given(st.one_of(JSON, SPANISH))
def test_a_jaeger_trace_raises_nothing_its_caller_does_not_turn_into_ours(raw: Any) -> None:
    _ours_or_garbled(v1_trace, raw)


@FAST
@given(st.one_of(JSON, st.lists(st.dictionaries(st.sampled_from(
    ["traceId", "id", "parentId", "name", "timestamp", "duration", "localEndpoint", "tags",
     "kind", "shared"]), JSON), max_size=3)))  # fmt: skip
def test_a_zipkin_trace_likewise(raw: Any) -> None:
    _ours_or_garbled(zipkin_trace, raw)


@FAST
@given(JSON)
def test_otlp_traces_likewise(raw: Any) -> None:
    _ours_or_garbled(otlp.traces, raw)


@FAST
@given(st.one_of(JSON, ROUTE))
def test_a_route_from_the_cluster_is_ours_or_our_error(raw: Any) -> None:
    for parse in (route_from_virtual_service, route_from_httproute):
        with contextlib.suppress(MeshtopError):
            parse(raw, "c", "ns")


@FAST
@given(st.text())
def test_what_a_user_types_is_read_or_refused_in_our_words(text: str) -> None:
    for call in (
        lambda: parse_set(text, Split("VirtualService", ("v1", "v2"), (90, 10))),
        lambda: parse_gate(text),
        lambda: parse_duration(text),
    ):
        with contextlib.suppress(MeshtopError):
            call()


@pytest.fixture
def jaeger_answering() -> Iterator[tuple[int, list[bytes]]]:
    """A Jaeger 1.x on loopback that answers every request with the next body queued."""
    bodies: list[bytes] = []

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/api/v3"):
                self.send_response(404)  # no v3: the v1 API
                self.end_headers()
                return
            body = bodies[0]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], bodies
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"[" * 200_000, "nested too deep"),
        (b'{"data": [{"traceID": "ab", "spans": [{"traceID": "ab", "spanID": "01", '
         b'"operationName": "x", "startTime": 1, "duration": 1e400, "processID": "p1"}], '
         b'"processes": {"p1": {"serviceName": "s"}}}]}', "OverflowError"),
    ],
    ids=["200k nested brackets", "a duration of 1e400"],  # the body is no name for a test
)  # fmt: skip
def test_a_trace_answer_that_once_crashed_is_one_line_and_exit_3(
    jaeger_answering: tuple[int, list[bytes]], body: bytes, said: str
) -> None:
    port, bodies = jaeger_answering
    bodies.append(body)
    done = meshtop("trace", "ab", "--tracing", f"jaeger=http://127.0.0.1:{port}")
    assert done.returncode == 3, done.stderr
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
