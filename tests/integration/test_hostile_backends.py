"""Backends that never finish, answer without end, or answer too much: against a crafted
server on loopback, `meshtop export`, `trace` and `traces` end within their deadline
(`--timeout`, for the whole request: connect, send and every byte of the body) plus a
second, with exit 3 and one line that names the cause, and their memory stays bounded."""

from __future__ import annotations

import functools
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

TIMEOUT_S = 2.0
SLACK_S = 1.0  # how far past its deadline a command may end
RSS_LIMIT_MB = 300
SERVE_FOR_S = 30.0  # no handler runs longer than this, whatever the client does
DRIP_EVERY_S = 0.2
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"

# One series of Istio's, so that any query (the dialect's probe included) has a valid answer.
VECTOR = {
    "status": "success",
    "data": {
        "resultType": "vector",
        "result": [
            {
                "metric": {"__name__": "istio_requests_total", "reporter": "source"},
                "value": [1700000000, "1"],
            }
        ],
    },
}


def _jaeger_trace(spans: int) -> dict[str, object]:
    return {
        "data": [
            {
                "traceID": TRACE_ID,
                "processes": {"p1": {"serviceName": "productpage.bookinfo", "tags": []}},
                "spans": [
                    {
                        "traceID": TRACE_ID,
                        "spanID": f"{i + 1:016x}",
                        "operationName": "GET /",
                        "references": [],
                        "startTime": 1_700_000_000_000_000 + i,
                        "duration": 10,
                        "tags": [],
                        "processID": "p1",
                    }
                    for i in range(spans)
                ],
            }
        ]
    }


class Hostile(BaseHTTPRequestHandler):
    """`/drip/…` sends a valid answer one byte every 0.2 s (`/headers/…`: its headers too);
    `/endless/…` sends a body that never ends; `/big/…` sends 100 MB; `/spans/…` is a
    Jaeger (no v3) whose trace has 50 spans. Every handler gives up after `SERVE_FOR_S` or
    when the client goes."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        mode, _, rest = self.path.strip("/").partition("/")
        try:
            if mode == "drip":
                self._drip()
            elif mode == "headers":
                self._drip_headers()
            elif mode == "endless":
                self._endless()
            elif mode == "big":
                self._big()
            elif mode == "spans":
                self._spans(rest)
            else:
                self._send(404, b"404 page not found")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _body(self) -> bytes:
        if self.path.startswith("/drip/api/"):  # a Jaeger: no v3, no services
            return json.dumps({"data": [], "errors": None}).encode()
        return json.dumps(VECTOR).encode()

    def _drip(self) -> None:
        body = self._body()
        self._head(200, len(body))
        end = time.monotonic() + SERVE_FOR_S
        for i in range(len(body)):
            if time.monotonic() > end:
                return
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()
            time.sleep(DRIP_EVERY_S)

    def _drip_headers(self) -> None:
        """The answer's status line and headers themselves, one byte every 0.2 s."""
        body = self._body()
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        end = time.monotonic() + SERVE_FOR_S
        for i in range(len(head)):
            if time.monotonic() > end:
                return
            self.wfile.write(head[i : i + 1])
            self.wfile.flush()
            time.sleep(DRIP_EVERY_S)
        self.wfile.write(body)

    def _endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[')
        row = b'{"metric":{"__name__":"istio_requests_total"},"value":[1,"1"]},' * 1000
        end = time.monotonic() + SERVE_FOR_S
        while time.monotonic() < end:
            self.wfile.write(row)

    def _big(self) -> None:
        size = 100 * 1024 * 1024
        head = b'{"status":"success","data":{"resultType":"vector","result":[]},"pad":"'
        tail = b'"}'
        self._head(200, size)
        self.wfile.write(head)
        left = size - len(head) - len(tail)
        block = b"x" * (1024 * 1024)
        while left > 0:
            self.wfile.write(block[: min(left, len(block))])
            left -= len(block)
        self.wfile.write(tail)

    def _spans(self, rest: str) -> None:
        if rest.startswith("api/traces/"):
            self._send(200, json.dumps(_jaeger_trace(50)).encode())
        elif rest == "api/services":
            self._send(200, json.dumps({"data": ["productpage.bookinfo"]}).encode())
        else:
            self._send(404, b"404 page not found")

    def _head(self, status: int, length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, data: bytes) -> None:
        self._head(status, len(data))
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` on a free loopback port, in a thread of its own: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    with serving(Hostile) as url:
        yield url


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float


def _run(*args: str, env: dict[str, str] | None = None) -> Run:
    """`meshtop ARGS` as a subprocess: its exit code, output, wall time and peak RSS (from
    `wait4`, this child's own). Killed, whatever it does, well after any deadline; its
    address space is limited so that an unbounded read cannot take the machine down."""

    def limit() -> None:
        cap = 4 * 1024**3
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "meshtop", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env={**os.environ, **(env or {})},
            preexec_fn=limit,
        )
        killer = threading.Timer(TIMEOUT_S + 15, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            seconds,
            usage.ru_maxrss / 1024,
        )


@functools.cache
def startup_s() -> float:
    """What `meshtop export` takes on this machine before it asks a backend, and to say
    one that refuses it at once: the interpreter, the imports, the one line. The deadline
    is the request's, not the process's: on a slow machine the start alone took 1.3 s."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens there once it is closed
    run = _export(f"http://127.0.0.1:{closed}")
    assert run.code == 3 and "cannot reach" in run.stderr, run.stderr
    return run.seconds


def _assert_bounded(run: Run, cause: str) -> None:
    past = run.seconds - startup_s()  # from when it could first ask
    assert past < TIMEOUT_S + SLACK_S, (
        f"took {run.seconds:.1f}s, {startup_s():.1f}s of them to start: {run.stderr[-300:]}"
    )
    assert run.peak_rss_mb < RSS_LIMIT_MB, f"peak RSS {run.peak_rss_mb:.0f} MB"
    assert run.code == 3, (run.code, run.stderr[-300:])
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("meshtop: "), run.stderr
    assert cause in run.stderr, run.stderr
    assert run.stdout == ""


def _export(url: str) -> Run:
    timeout = f"{TIMEOUT_S:g}s"
    return _run("export", "--prometheus", url, "--timeout", timeout, "--format", "json")


def test_a_dripping_prometheus_ends_at_the_deadline(hostile: str) -> None:
    run = _export(f"{hostile}/drip")
    _assert_bounded(run, f"Prometheus at {hostile}/drip did not finish answering within 2s")


def test_dripping_headers_end_at_the_deadline_too(hostile: str) -> None:
    run = _export(f"{hostile}/headers")
    _assert_bounded(run, f"Prometheus at {hostile}/headers did not answer within 2s")
    run = _trace(f"{hostile}/headers")
    _assert_bounded(run, f"Jaeger at {hostile}/headers did not answer within 2s")


def test_an_endless_prometheus_answer_is_cut_off(hostile: str) -> None:
    run = _export(f"{hostile}/endless")
    # Loopback is fast: the body passes the size cap before the deadline, or the deadline
    # comes first on a slow machine. Either is one clear line.
    assert "answered more than 64 MiB" in run.stderr or "did not finish" in run.stderr
    _assert_bounded(run, f"Prometheus at {hostile}/endless")


def test_a_huge_prometheus_answer_is_refused(hostile: str) -> None:
    run = _export(f"{hostile}/big")
    _assert_bounded(
        run,
        f"Prometheus at {hostile}/big answered more than 64 MiB; raise [prometheus] "
        "max_response_mb if a query really needs it",
    )


def test_the_prometheus_size_cap_is_a_setting(hostile: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[prometheus]\nmax_response_mb = 200\n")
    run = _export(f"{hostile}/big")
    assert "more than 64 MiB" in run.stderr
    raised = _run(
        "export", "--prometheus", f"{hostile}/big", "--dialect", "istio", "--format", "json",
        env={"MESHTOP_CONFIG": str(config)},
    )  # fmt: skip
    assert raised.code == 0, raised.stderr


def _trace(url: str, *, env: dict[str, str] | None = None) -> Run:
    timeout = f"{TIMEOUT_S:g}s"
    return _run(
        "trace", TRACE_ID, "--tracing", f"jaeger={url}", "--timeout", timeout,
        "--format", "json", env=env,
    )  # fmt: skip


def test_a_dripping_trace_backend_ends_at_the_deadline(hostile: str) -> None:
    run = _trace(f"{hostile}/drip")
    _assert_bounded(run, f"Jaeger at {hostile}/drip did not finish answering within 2s")
    listed = _run(
        "traces", "--node", "bookinfo/productpage-v1", "--tracing", f"jaeger={hostile}/drip",
        "--timeout", f"{TIMEOUT_S:g}s", "--format", "json",
    )  # fmt: skip
    _assert_bounded(listed, f"Jaeger at {hostile}/drip did not finish answering within 2s")


def test_an_endless_trace_answer_is_cut_off(hostile: str) -> None:
    run = _trace(f"{hostile}/endless")
    assert "answered more than 64 MiB" in run.stderr or "did not finish" in run.stderr
    _assert_bounded(run, f"Jaeger at {hostile}/endless")


def test_a_trace_over_the_span_cap_is_refused(hostile: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[tracing]\nmax_spans = 10\n")
    run = _trace(f"{hostile}/spans", env={"MESHTOP_CONFIG": str(config)})
    _assert_bounded(
        run,
        f"Jaeger at {hostile}/spans answered a trace of more than 10 spans; raise [tracing] "
        "max_spans if a trace really has that many",
    )
    config.write_text("[tracing]\nmax_spans = 50\n")
    fits = _trace(f"{hostile}/spans", env={"MESHTOP_CONFIG": str(config)})
    assert fits.code == 0, fits.stderr
    assert len(json.loads(fits.stdout)["spans"]) == 50


def test_every_trace_format_has_the_span_cap() -> None:
    from meshtop.sources.tracing import TooManySpans, otlp
    from meshtop.sources.tracing.jaeger import v1_trace
    from meshtop.sources.tracing.zipkin import zipkin_trace

    jaeger: Any = _jaeger_trace(11)["data"]
    zipkin: Any = [{"traceId": TRACE_ID, "id": f"{i + 1:016x}", "name": "GET"} for i in range(11)]
    spans = [{"traceId": TRACE_ID, "spanId": f"{i + 1:016x}", "name": "GET"} for i in range(11)]
    doc: Any = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]}
    with pytest.raises(TooManySpans):
        v1_trace(jaeger[0], 10)
    with pytest.raises(TooManySpans):
        zipkin_trace(zipkin, 10)
    with pytest.raises(TooManySpans):
        otlp.traces(doc, 10)
    assert len(v1_trace(jaeger[0], 11).spans) == 11
    assert len(zipkin_trace(zipkin, 11).spans) == 11
    assert len(otlp.traces(doc, 11)[0].spans) == 11


@pytest.mark.parametrize(
    ("table", "setting", "value"),
    [
        ("tracing", "max_spans", "0"),
        ("tracing", "max_spans", '"many"'),
        ("tracing", "max_response_mb", "-1"),
        ("prometheus", "max_response_mb", '"big"'),
    ],
)
def test_a_bad_cap_is_a_configuration_error(
    tmp_path: Path, table: str, setting: str, value: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[{table}]\n{setting} = {value}\n")
    run = _run("export", "--demo", "--format", "json", env={"MESHTOP_CONFIG": str(config)})
    assert run.code == 2, run.stderr
    assert f"{table} {setting}" in run.stderr and run.stderr.count("\n") == 1, run.stderr
