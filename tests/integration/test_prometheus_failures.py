"""Every way a backend can fail, against a real HTTP server on loopback (or a real closed
port): one clear line, exit code 3 from `export`, and no credential in any message."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from meshtop.config import PrometheusConfig
from meshtop.errors import BackendError
from meshtop.sources.prometheus import PrometheusMetrics

from ..conftest import need
from ..test_cli import meshtop
from .prometheus import free_port

EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}
SECRET = "s3cr3t-t0ken"


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers by the first path segment, the way a misconfigured or broken backend would."""

    seen_headers: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        FakePrometheus.seen_headers.append(dict(self.headers))
        mode = self.path.strip("/").split("/")[0]
        if mode == "ok":
            self._json(200, EMPTY)
        elif mode == "auth":
            ok = self.headers.get("Authorization") == f"Bearer {SECRET}"
            ok = ok and self.headers.get("X-Scope-OrgID") == "team-a"
            self._json(200, EMPTY) if ok else self._json(401, {"status": "error", "error": "no"})
        elif mode == "unauthorized":
            self._json(401, {"status": "error", "errorType": "unauthorized", "error": "no token"})
        elif mode == "forbidden":
            self._json(403, {"status": "error", "errorType": "forbidden", "error": "tenant"})
        elif mode == "broken":
            self._json(500, {"status": "error", "errorType": "internal", "error": "disk full"})
        elif mode == "html":
            self._send(200, b"<html><body>Grafana login</body></html>", "text/html")
        elif mode == "error":
            self._json(
                400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
            )
        elif mode == "warn":
            self._json(
                200, {**EMPTY, "warnings": ["store gateway eu-1 unavailable: partial response"]}
            )
        elif mode == "matrix":
            self._json(
                200, {"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}}
            )
        elif mode == "oddmatrix":  # a matrix whose samples are not numbers
            result = [{"metric": {"quantile": "abc"}, "values": [[1, "x"]]}]
            kind = "matrix" if "query_range" in self.path else "vector"
            if kind == "vector":
                result = [{"metric": {"quantile": "abc"}, "value": [1, "x"]}]
            self._json(200, {"status": "success", "data": {"resultType": kind, "result": result}})
        elif mode == "slow":
            time.sleep(2)
            self._json(200, EMPTY)
        else:
            self._send(404, b"404 page not found", "text/plain")

    def _json(self, status: int, body: object) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _start(server: ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "https" if isinstance(server.socket, ssl.SSLSocket) else "http"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    yield from _start(ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus))


def _traffic(url: str, **kw: object) -> None:
    config = PrometheusConfig(url, dialect="istio", **kw)  # type: ignore[arg-type]
    asyncio.run(PrometheusMetrics(config).traffic(60))


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("unauthorized", "refused the credentials (HTTP 401): check the token or user"),
        ("forbidden", "forbids this query (HTTP 403): check the token's permissions"),
        ("broken", "rejected a query: internal: disk full"),
        ("html", "with something that is not JSON ('<html><body>Grafana login"),
        ("error", "rejected a query: bad_data: parse error at char 5"),
        ("nowhere", "no Prometheus API at"),
        ("matrix", "answered something other than an instant vector"),
    ],
)
def test_bad_answers_are_one_clear_line(fake: str, path: str, message: str) -> None:
    with pytest.raises(BackendError, match=r"^Prometheus|^no Prometheus") as err:
        _traffic(f"{fake}/{path}", token=SECRET)
    assert message in str(err.value)
    assert SECRET not in str(err.value)
    result = meshtop("export", "--prometheus", f"{fake}/{path}", "--dialect", "istio")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert result.stdout == ""


def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackendError, match=f"cannot reach Prometheus at {url}: connection refused"):
        _traffic(url)
    result = meshtop("export", "--prometheus", url)
    assert (result.returncode, result.stderr.count("\n")) == (3, 1)


def test_timeout(fake: str) -> None:
    with pytest.raises(BackendError, match=r"did not answer within 0\.5s"):
        _traffic(f"{fake}/slow", timeout_s=0.5)
    result = meshtop(
        "export", "--prometheus", f"{fake}/slow", "--dialect", "istio", "--timeout", "500ms"
    )
    assert result.returncode == 3 and "did not answer within 0.5s" in result.stderr


def test_warnings_are_said_and_the_export_goes_on(fake: str) -> None:
    result = meshtop("export", "--prometheus", f"{fake}/warn", "--dialect", "istio")
    assert result.returncode == 0
    assert result.stderr.startswith("meshtop: warning: prometheus")
    assert "store gateway eu-1 unavailable: partial response" in result.stderr
    doc = json.loads(result.stdout)
    assert "partial response" in doc["sources"]["metrics"]["reason"]
    assert doc["sources"]["metrics"]["state"] == "fresh"


def test_no_mesh_metrics_is_said(fake: str) -> None:
    result = meshtop("export", "--prometheus", f"{fake}/ok")  # dialect auto finds nothing
    assert result.returncode == 3
    assert "no Istio or Linkerd metrics at" in result.stderr


def test_token_file_and_tenant_header_are_sent(fake: str, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(SECRET + "\n")
    FakePrometheus.seen_headers.clear()
    result = meshtop(
        "export", "--prometheus", f"{fake}/auth", "--dialect", "istio",
        "--prometheus-token-file", str(token), "--prometheus-header", "X-Scope-OrgID: team-a",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["edges"] == []
    assert all(h.get("Authorization") == f"Bearer {SECRET}" for h in FakePrometheus.seen_headers)
    # from the environment too, and a wrong one is refused without being echoed
    env_ok = meshtop("export", "--prometheus", f"{fake}/auth", "--dialect", "istio",
                     "--prometheus-header", "X-Scope-OrgID: team-a",
                     env={"MESHTOP_PROMETHEUS_TOKEN": SECRET})  # fmt: skip
    assert env_ok.returncode == 0, env_ok.stderr
    wrong = meshtop("export", "--prometheus", f"{fake}/auth", "--dialect", "istio",
                    env={"MESHTOP_PROMETHEUS_TOKEN": "wrong-secret"})  # fmt: skip
    assert (
        wrong.returncode == 3 and "HTTP 401" in wrong.stderr and "wrong-secret" not in wrong.stderr
    )


def test_basic_auth_is_sent(fake: str, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("hunter2")
    FakePrometheus.seen_headers.clear()
    result = meshtop(
        "export", "--prometheus", f"{fake}/ok", "--dialect", "istio",
        "--prometheus-user", "alice", "--prometheus-password-file", str(password),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert FakePrometheus.seen_headers[-1]["Authorization"] == "Basic YWxpY2U6aHVudGVyMg=="


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    need(shutil.which("openssl") is not None, "openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for url in _start(server):
        yield url, cert


def test_tls_needs_the_ca_or_an_explicit_opt_out(tls: tuple[str, Path]) -> None:
    url, cert = tls
    unknown_ca = meshtop("export", "--prometheus", f"{url}/ok", "--dialect", "istio")
    assert unknown_ca.returncode == 3
    assert "TLS to Prometheus" in unknown_ca.stderr and "--prometheus-ca" in unknown_ca.stderr
    with_ca = meshtop(
        "export", "--prometheus", f"{url}/ok", "--dialect", "istio", "--prometheus-ca", str(cert)
    )
    assert with_ca.returncode == 0, with_ca.stderr
    insecure = meshtop("export", "--prometheus", f"{url}/ok", "--dialect", "istio", "--insecure")
    assert insecure.returncode == 0, insecure.stderr


def test_a_history_that_is_not_samples_is_one_clear_line(fake: str) -> None:
    source = PrometheusMetrics(PrometheusConfig(f"{fake}/oddmatrix", dialect="istio"))
    with pytest.raises(BackendError, match="answered a range query with something that is not"):
        asyncio.run(source.history("c/ns/a", "c/ns/b", 300))


# A namespace's members, asked together: three sets of history queries (8 a set)
MEMBERS = [(None, f"c/ns/w{i}") for i in range(20)]


def test_histories_asked_together_that_are_not_samples_are_one_clear_line(fake: str) -> None:
    """Answers without the workload label they are split by are not a namespace's
    histories: one clear line, never histories quietly empty."""
    source = PrometheusMetrics(PrometheusConfig(f"{fake}/oddmatrix", dialect="istio"))
    with pytest.raises(BackendError, match="answered a range query with something that is not"):
        asyncio.run(source.histories(MEMBERS, 300))


def test_histories_asked_together_end_at_the_deadline(fake: str) -> None:
    """A Prometheus that does not answer holds a namespace's histories no longer than
    the deadline of one set of queries: one clear line, whatever the sets still waiting."""
    source = PrometheusMetrics(PrometheusConfig(f"{fake}/slow", dialect="istio", timeout_s=0.5))
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"did not answer within 0\.5s"):
        asyncio.run(source.histories(MEMBERS, 300))
    assert time.monotonic() - started < 1.9  # the server answers after 2 s
