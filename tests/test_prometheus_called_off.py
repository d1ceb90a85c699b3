"""A detail's history queries are cut off once nobody waits for their answers (issue 17):
the detail closed or given another window (its task cancelled), or one of them failed.
A request's thread goes on after its task is cancelled, and Prometheus went on
evaluating a closed namespace's histories, on the console's own two cores where it ran
beside it, for half a second or more. Cut off, a connection is closed, which Prometheus
takes as the end of the query; and no request starts after. So are a refresh's queries
once a newer refresh cancels it (`r` while one is under way)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from meshtop import mesh
from meshtop.config import PrometheusConfig
from meshtop.errors import BackendError
from meshtop.sources import bounded
from meshtop.sources.prometheus import PrometheusMetrics
from meshtop.sources.protocols import ClusterSources
from tests.loopback import serving

HELD_S = 20.0  # how long the server holds a query: longer than any test waits
WORKLOADS = [f"c1/shop/w{i}" for i in range(40)]  # a namespace's: five sets of histories


class _Holding(BaseHTTPRequestHandler):
    """A Prometheus that holds every query until its client closes the connection (or
    `HELD_S`), and answers one whose query starts with `fail` with a 400 at once. `held`: the
    queries it holds; `closed`: when each held one's client went."""

    protocol_version = "HTTP/1.1"
    fail: ClassVar[str] = ""
    held: ClassVar[list[str]] = []
    closed: ClassVar[list[float]] = []
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._hold(parse_qs(urlparse(self.path).query))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._hold(parse_qs(body.decode()))

    def _hold(self, form: dict[str, list[str]]) -> None:
        query = form.get("query", [""])[0]
        if self.fail and query.startswith(self.fail):
            body = json.dumps({"status": "error", "errorType": "bad_data", "error": "no"})
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())
            return
        with self.lock:
            self.held.append(query)
        self.connection.settimeout(HELD_S)
        try:
            gone = self.connection.recv(1) == b""  # the client sends nothing more
        except (TimeoutError, OSError):
            gone = False
        if gone:
            with self.lock:
                self.closed.append(time.monotonic())
        self.close_connection = True


@pytest.fixture
def holding() -> Iterator[tuple[type[_Holding], str]]:
    handler = type("Handler", (_Holding,), {"held": [], "closed": [], "fail": ""})
    with serving(handler) as url:
        yield handler, url


async def _until(what: str, done: Callable[[], object], within: float = 10.0) -> None:
    end = time.monotonic() + within
    while not done():
        assert time.monotonic() < end, f"waited {within:g}s for {what}"
        await asyncio.sleep(0.01)


async def _cancelled_and_cut_off(handler: type[_Holding], task: asyncio.Future[Any]) -> None:
    """`task` cancelled: every query held so far has its connection closed within 2 s,
    and none is asked after."""
    held = len(handler.held)
    cancelled = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _until("every held query's connection closed", lambda: len(handler.closed) == held)
    assert max(handler.closed) - cancelled < 2.0
    await asyncio.sleep(0.3)
    assert len(handler.held) == held  # none asked after


def test_histories_cancelled_are_cut_off_at_the_backend_and_no_more_start(
    holding: tuple[type[_Holding], str],
) -> None:
    handler, url = holding
    source = PrometheusMetrics(PrometheusConfig(url, dialect="istio", timeout_s=HELD_S))

    async def run() -> None:
        task = asyncio.ensure_future(source.histories([(w, None) for w in WORKLOADS], 900.0))
        # three queries a set, as many sets at a time as there are threads to ask them
        await _until("the first set's queries", lambda: len(handler.held) >= 3)
        await asyncio.sleep(0.3)  # the others that start; none goes until cut off
        assert handler.closed == [] and len(handler.held) < 3 * 5
        await _cancelled_and_cut_off(handler, task)

    asyncio.run(run())


def test_one_history_query_failing_cuts_off_the_others(
    holding: tuple[type[_Holding], str],
) -> None:
    handler, url = holding
    handler.fail = "label_replace(histogram_quantile"  # the latency's range query fails
    source = PrometheusMetrics(PrometheusConfig(url, dialect="istio", timeout_s=HELD_S))

    async def run() -> None:
        started = time.monotonic()
        with pytest.raises(BackendError, match="rejected a query: bad_data"):
            await source.history(None, "c1/shop/front-v1", 900.0)
        assert time.monotonic() - started < HELD_S / 2  # not held by the others
        await _until("the others' connections closed", lambda: len(handler.closed) == 2)
        assert len(handler.held) == 2

    asyncio.run(run())


def test_a_refresh_cancelled_cuts_off_its_queries_at_the_backend(
    holding: tuple[type[_Holding], str],
) -> None:
    handler, url = holding
    source = PrometheusMetrics(PrometheusConfig(url, dialect="istio", timeout_s=HELD_S))

    async def run() -> None:
        task = asyncio.ensure_future(mesh.refresh({"c1": ClusterSources(source)}, timeout_s=HELD_S))
        await _until("the refresh's queries", lambda: len(handler.held) >= 1)
        await asyncio.sleep(0.3)  # the others that start
        assert handler.closed == []
        await _cancelled_and_cut_off(handler, task)

    asyncio.run(run())


def test_called_off_inside_another_set_goes_with_it() -> None:
    """A set of requests inside another (a source's call inside a refresh): calling off
    the outer calls off the inner; ending the inner leaves the outer alone."""
    with bounded.called_off_on_error() as outer:
        with bounded.called_off_on_error() as inner:
            pass
        assert not outer.off and not inner.off
        with bounded.called_off_on_error() as inner:
            outer.call_off()
            assert inner.off
    with pytest.raises(ValueError), bounded.called_off_on_error() as outer:
        with pytest.raises(KeyError), bounded.called_off_on_error() as inner:
            raise KeyError
        assert inner.off and not outer.off
        raise ValueError
    assert outer.off


def test_a_request_called_off_before_it_starts_never_connects() -> None:
    """No connection is opened for a request whose set was called off already."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.5)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    source = PrometheusMetrics(PrometheusConfig(url, dialect="istio", timeout_s=5.0))
    try:
        with bounded.called_off_on_error() as called:
            called.call_off()
            with pytest.raises(BackendError):
                source._query("up")
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody came
    finally:
        listener.close()
