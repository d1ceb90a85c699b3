"""Real Jaeger (v2) and real Zipkin for the tests, and Istio-shaped traces to send them.

`jaeger` and `zipkin` are session fixtures: each server is started once, on free loopback
ports with in-memory storage, waited for until it answers, and stopped at the end of the
session. Their binaries come from `make tools` (tests/servers/jaeger.sh, zipkin.sh); when
one is not there the tests that need it skip, and fail under CI=true.

`bookinfo()` builds the traces as Istio's proxies write them (ingress gateway →
productpage → details and reviews → ratings: a client span by the caller's sidecar, a
server span by the callee's, Istio's tags); `otlp_json()` and `zipkin_json()` write them
in each server's own format: OTLP/JSON for Jaeger (its OTLP/HTTP receiver), Zipkin's v2
JSON for Zipkin, where the two halves of a call share one span id (`shared`), as Envoy's
Zipkin tracer writes them (`shared_span_context`, on by default)."""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import need
from tests.servers import CACHE

HERE = Path(__file__).resolve().parent
READY_S = 90.0  # how long a server may take to start (Zipkin's JVM: seconds) before we fail


def _version(script: str) -> str:
    """The version a script of ours builds or fetches (its `VERSION=` line): one source."""
    found = re.search(r"^VERSION=v?(\S+)", (HERE / script).read_text(), re.M)
    assert found, f"no VERSION= in {script}"
    return found[1]


def jaeger_binary() -> Path:
    path = CACHE / f"jaeger-{_version('jaeger.sh')}" / "jaeger"
    need(path.is_file(), f"Jaeger is not built at {path}: run `make tools` (needs go)")
    return path


def zipkin_jar() -> Path:
    version = _version("zipkin.sh")
    path = CACHE / f"zipkin-{version}" / f"zipkin-server-{version}-exec.jar"
    need(path.is_file(), f"Zipkin is not fetched at {path}: run `make tools` (needs mvn)")
    need(shutil.which("java") is not None, "no `java` on PATH to run Zipkin (Java 17 or later)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """`check()`'s first true answer, asked again until then; fails naming `what`. Each
    try is an HTTP round trip, so this waits on the server, not on a clock."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:g}s")
        time.sleep(0.05)


# -- the servers -------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str  # what meshtop is given: --tracing jaeger=URL / zipkin=URL
    ingest: str  # where spans are sent
    started_s: float  # how long it took to answer
    proc: subprocess.Popen[bytes]
    log: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(timeout=10)

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"{self.name} exited ({self.proc.returncode}): {self.log.read_text()[-3000:]}"
            )


def _start(name: str, argv: list[str], workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    return proc, log


def _stop(server: Server) -> None:
    server.client.close()
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def _wait_ready(server: Server, path: str) -> None:
    def ready() -> bool:
        server.alive()
        try:
            return server.client.get(server.url + path).status_code == 200
        except httpx.TransportError:
            return False

    poll(f"{server.name} answering {path}", ready, READY_S)


JAEGER_CONFIG = """\
# Jaeger v2 for meshtop's tests: OTLP/HTTP in, memory storage, the query service's HTTP
# API (the older /api/traces and /api/v3) out; every port on loopback.
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn

extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:{health}
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query}
    grpc:
      endpoint: 127.0.0.1:{grpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000

receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


class PortTaken(Exception):
    """A port another process took between our look and the server's bind."""


def _launch(
    name: str, workdir: Path, start: Callable[[], Server], ready: Callable[[Server], None]
) -> Server:
    """A server started by `start()` on free ports and waited for by `ready()`; when one of
    its ports was taken between the look and the bind, started again on others (three
    tries). Its start-up time is from the last start to its first answer."""
    for _ in range(3):
        begun = time.monotonic()
        server = start()
        try:
            ready(server)
        except AssertionError:
            _stop(server)
            if "address already in use" in server.log.read_text().lower():
                continue
            raise
        except BaseException:
            _stop(server)
            raise
        server.started_s = time.monotonic() - begun
        return server
    raise AssertionError(f"{name}: its ports were taken three times over")


@contextmanager
def running_jaeger(workdir: Path) -> Iterator[Server]:
    binary = jaeger_binary()
    config = workdir / "jaeger.yaml"

    def start() -> Server:
        ports = {name: free_port() for name in ("health", "query", "grpc", "otlp")}
        config.write_text(JAEGER_CONFIG.format(**ports))
        proc, log = _start("jaeger", [str(binary), "--config", f"file:{config}"], workdir)
        query, otlp = f"http://127.0.0.1:{ports['query']}", f"http://127.0.0.1:{ports['otlp']}"
        return Server("Jaeger", query, f"{otlp}/v1/traces", 0.0, proc, log)

    def ready(server: Server) -> None:
        _wait_ready(server, "/api/v3/services")

        def receiving() -> bool:  # the receiver may open after the query service
            server.alive()
            try:
                empty = server.client.post(server.ingest, json={"resourceSpans": []})
                return empty.status_code == 200
            except httpx.TransportError:
                return False

        poll("Jaeger's OTLP receiver", receiving, READY_S)

    server = _launch("Jaeger", workdir, start, ready)
    try:
        yield server
    finally:
        _stop(server)


@contextmanager
def running_zipkin(workdir: Path) -> Iterator[Server]:
    jar = zipkin_jar()

    def start() -> Server:
        port = free_port()
        argv = [
            "java",
            "-XX:TieredStopAtLevel=1",  # starts sooner; the tests send little
            "-XX:+UseSerialGC",
            "-Xmx256m",
            "-jar",
            str(jar),
            "--zipkin.storage.type=mem",
            "--armeria.ports[0].ip=127.0.0.1",
            f"--armeria.ports[0].port={port}",
            "--armeria.ports[0].protocols[0]=http",
            "--spring.main.banner-mode=off",
            "--logging.level.root=WARN",
        ]
        proc, log = _start("zipkin", argv, workdir)
        url = f"http://127.0.0.1:{port}"
        return Server("Zipkin", url, f"{url}/api/v2/spans", 0.0, proc, log)

    server = _launch("Zipkin", workdir, start, lambda server: _wait_ready(server, "/health"))
    try:
        yield server
    finally:
        _stop(server)


# Startup times, for the report at the end of the session (`-rA` / the terminal summary).
STARTUP: dict[str, float] = {}


@pytest.fixture(scope="session")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_jaeger(tmp_path_factory.mktemp("jaeger")) as server:
        STARTUP["jaeger"] = server.started_s
        yield server


@pytest.fixture(scope="session")
def zipkin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_zipkin(tmp_path_factory.mktemp("zipkin")) as server:
        STARTUP["zipkin"] = server.started_s
        yield server


# -- Istio-shaped traces -----------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One span as a proxy (or the app) writes it. `start_us` is by the writer's clock,
    from the trace's start; `peer` is the service a client span calls."""

    key: str  # the scenario's name for it: "gateway", "productpage>details", "details", …
    parent: str | None
    app: str
    namespace: str
    version: str
    kind: str  # client, server or internal
    operation: str
    start_us: int
    duration_us: int
    status: int = 200  # the HTTP status the proxy saw (0: none, an internal span)
    flags: str = "-"  # Envoy's response flags: UF when the upstream could not be reached
    error: str = ""  # a message, when it failed
    peer: str = ""
    peer_version: str = ""

    @property
    def service(self) -> str:
        """The name Istio's proxies report under: `app.namespace`."""
        return f"{self.app}.{self.namespace}"


@dataclass(frozen=True)
class Built:
    """One trace of the scenario: its id, its start (µs since the epoch) and its hops,
    with the id each hop gets in OTLP."""

    name: str
    trace_id: str
    t0_us: int
    hops: tuple[Hop, ...]
    ids: dict[str, str]

    def hop(self, key: str) -> Hop:
        return next(h for h in self.hops if h.key == key)

    @property
    def duration_us(self) -> int:
        return max(h.start_us + h.duration_us for h in self.hops) - min(
            h.start_us for h in self.hops
        )


HOST = "{}.bookinfo.svc.cluster.local"


def bookinfo(
    name: str,
    t0_us: int,
    *,
    ratings_us: int = 2_000,
    details_fails: bool = False,
    ratings_unreached: bool = False,
    reviews_skew_us: int = 0,
) -> Built:
    """One request through Bookinfo. `ratings_us`: how long ratings takes; `details_fails`:
    details answers 500 (productpage still answers 200, without the details, and its own
    span says why); `ratings_unreached`: reviews' proxy cannot reach ratings (503 UF, no
    span from ratings); `reviews_skew_us`: reviews' clock is that far behind everyone's."""
    q = 1_000 if ratings_unreached else ratings_us + 600  # reviews → ratings, the call
    r = q + 1_600  # productpage → reviews
    total = r + 9_400
    gw = "istio-ingressgateway", "istio-system", ""
    pp, dt = ("productpage", "bookinfo", "v1"), ("details", "bookinfo", "v1")
    rv, rt = ("reviews", "bookinfo", "v2"), ("ratings", "bookinfo", "v1")
    skew = -reviews_skew_us
    page = HOST.format("productpage") + ":9080/productpage"
    hops = [
        Hop("gateway", None, *gw, "client", page, 0, total, peer="productpage"),
        Hop("productpage", "gateway", *pp, "server", page, 400, total - 800),
        Hop("productpage>details", "productpage", *pp, "client",
            HOST.format("details") + ":9080/*", 2_000, 4_000,
            status=500 if details_fails else 200,
            error="500 Internal Server Error" if details_fails else "",
            peer="details", peer_version="v1"),
        Hop("details", "productpage>details", *dt, "server",
            HOST.format("details") + ":9080/*", 2_300, 3_400,
            status=500 if details_fails else 200,
            error="details: database unavailable" if details_fails else ""),
        Hop("productpage>reviews", "productpage", *pp, "client",
            HOST.format("reviews") + ":9080/*", 7_000, r, peer="reviews", peer_version="v2"),
        Hop("reviews", "productpage>reviews", *rv, "server",
            HOST.format("reviews") + ":9080/*", 7_300 + skew, r - 600),
        Hop("reviews>ratings", "reviews", *rv, "client",
            HOST.format("ratings") + ":9080/*", 8_000 + skew, q,
            status=503 if ratings_unreached else 200,
            flags="UF" if ratings_unreached else "-",
            error="upstream connect error or disconnect/reset before headers"
            if ratings_unreached else "",
            peer="ratings", peer_version="v1"),
    ]  # fmt: skip
    if not ratings_unreached:
        hops.append(
            Hop("ratings", "reviews>ratings", *rt, "server",
                HOST.format("ratings") + ":9080/*", 8_300, q - 600)
        )  # fmt: skip
    if details_fails:  # the app's own span: an error said only by its message
        hops.append(
            Hop("productpage/render", "productpage", *pp, "internal", "render productpage",
                6_100, 700, status=0, error="product details unavailable: HTTP 500")
        )  # fmt: skip
    ids = {h.key: secrets.token_hex(8) for h in hops}
    return Built(name, secrets.token_hex(16), t0_us, tuple(hops), ids)


def scenario(now_us: int) -> dict[str, Built]:
    """The traces the tests send: distinct durations, all in the last minute, but one two
    hours old (for the lookback)."""
    t = now_us - 30_000_000
    built = [
        bookinfo("ok", t),
        bookinfo("slow", t + 1_000_000, ratings_us=1_200_000),
        bookinfo("failing", t + 2_000_000, ratings_us=3_000, details_fails=True),
        bookinfo("skewed", t + 3_000_000, ratings_us=5_000, reviews_skew_us=50_000),
        bookinfo("unreached", t + 4_000_000, ratings_unreached=True),
        bookinfo("old", now_us - 2 * 3600 * 1_000_000, ratings_us=7_000),
    ]
    return {b.name: b for b in built}


def _envoy_tags(b: Built, h: Hop) -> dict[str, str]:
    """The tags Istio's proxies write on a span (an app's own span has few)."""
    if h.kind == "internal":
        return {"component": "productpage", "istio.canonical_service": h.app,
                "istio.namespace": h.namespace}  # fmt: skip
    if h.kind == "client":
        upstream = f"outbound|9080|{h.peer_version}|{HOST.format(h.peer)}"
        if h.app == "istio-ingressgateway":
            upstream = f"outbound|9080||{HOST.format(h.peer)}"
    else:
        upstream = "inbound|9080||"
    tags = {
        "component": "proxy",
        "node_id": f"sidecar~10.1.0.7~{h.app}-{h.version or 'gw'}-7d4b9.{h.namespace}"
        f"~{h.namespace}.svc.cluster.local",
        "guid:x-request-id": b.trace_id[:8] + "-4c4a-9b3b-" + b.trace_id[8:20],
        "http.url": f"http://{HOST.format('productpage')}:9080/productpage",
        "http.method": "GET",
        "http.protocol": "HTTP/1.1",
        "http.status_code": str(h.status),
        "response_flags": h.flags,
        "upstream_cluster": upstream,
        "istio.canonical_service": h.app,
        "istio.namespace": h.namespace,
        "istio.mesh_id": "cluster.local",
    }
    if h.version:
        tags["istio.canonical_revision"] = h.version
    return tags


OTLP_KINDS = {"internal": 1, "server": 2, "client": 3}


def otlp_json(built: list[Built]) -> dict[str, Any]:
    """The traces as one OTLP/JSON export request: a resource per service, hex ids, times
    in nanoseconds as strings, Envoy's tags as string attributes, status ERROR with the
    message for a failed span."""
    by_service: dict[str, list[dict[str, Any]]] = {}
    for b in built:
        for h in b.hops:
            start_ns = (b.t0_us + h.start_us) * 1000
            span: dict[str, Any] = {
                "traceId": b.trace_id,
                "spanId": b.ids[h.key],
                "name": h.operation,
                "kind": OTLP_KINDS[h.kind],
                "startTimeUnixNano": str(start_ns),
                "endTimeUnixNano": str(start_ns + h.duration_us * 1000),
                "attributes": [
                    {"key": k, "value": {"stringValue": v}} for k, v in _envoy_tags(b, h).items()
                ],
            }
            if h.parent:
                span["parentSpanId"] = b.ids[h.parent]
            if h.error:
                span["status"] = {"code": 2, "message": h.error}
                if h.kind == "internal":
                    span["events"] = [{
                        "timeUnixNano": str(start_ns + 500_000),
                        "name": "exception",
                        "attributes": [{"key": "exception.message",
                                        "value": {"stringValue": h.error}}],
                    }]  # fmt: skip
            by_service.setdefault(h.service, []).append(span)
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": service}},
                    ]
                },
                "scopeSpans": [{"scope": {"name": "envoy"}, "spans": spans}],
            }
            for service, spans in by_service.items()
        ]
    }


def zipkin_json(built: list[Built]) -> list[dict[str, Any]]:
    """The traces as Zipkin v2 JSON spans, as Envoy's Zipkin tracer writes them: the
    server's half of a call under the client's span id (`shared`), the service in the
    local endpoint, the peer in the remote one; a failed span carries an `error` tag whose
    value is the message (Zipkin's convention), an app's own span that and nothing else."""
    out = []
    for b in built:
        hops = {h.key: h for h in b.hops}

        def zid(key: str, b: Built = b, hops: dict[str, Hop] = hops) -> str:
            h = hops[key]
            shared = h.kind == "server" and h.parent is not None
            return b.ids[h.parent] if shared and h.parent else b.ids[key]

        for h in b.hops:
            span: dict[str, Any] = {
                "traceId": b.trace_id,
                "id": zid(h.key),
                "name": h.operation,
                "timestamp": b.t0_us + h.start_us,
                "duration": h.duration_us,
                "localEndpoint": {"serviceName": h.service, "ipv4": "10.1.0.7"},
                "tags": _envoy_tags(b, h),
            }
            if h.kind != "internal":
                span["kind"] = h.kind.upper()
            tags = span["tags"]
            if h.kind == "internal":
                tags.clear()
                tags["lc"] = "productpage"
            if h.error:
                tags["error"] = h.error
            if h.kind == "client":
                span["remoteEndpoint"] = {"serviceName": f"{h.peer}.bookinfo"}
            if h.kind == "server" and h.parent:
                span["shared"] = True
                client = hops[h.parent]
                if client.parent:
                    span["parentId"] = zid(client.parent)
            elif h.parent:
                span["parentId"] = zid(h.parent)
            out.append(span)
    return out


def send_to_jaeger(server: Server, built: list[Built]) -> None:
    """Each trace in a request of its own, oldest first, as a proxy would send them (the
    memory store keeps them in the order they came, and a search answers the newest)."""
    for b in sorted(built, key=lambda b: b.t0_us):
        answer = server.client.post(server.ingest, json=otlp_json([b]))
        assert answer.status_code == 200, answer.text
        assert "rejectedSpans" not in answer.text, answer.text
    for b in built:  # the collector stores them a moment later: ask until all are there

        def stored(b: Built = b) -> bool:
            got = server.client.get(f"{server.url}/api/v3/traces/{b.trace_id}")
            if got.status_code != 200:
                return False
            spans = sum(
                len(scope.get("spans", []))
                for rs in got.json()["result"]["resourceSpans"]
                for scope in rs.get("scopeSpans", [])
            )
            return spans == len(b.hops)

        poll(f"Jaeger storing trace {b.name} ({b.trace_id})", stored)


def send_to_zipkin(server: Server, built: list[Built]) -> None:
    for b in sorted(built, key=lambda b: b.t0_us):
        answer = server.client.post(server.ingest, json=zipkin_json([b]))
        assert answer.status_code == 202, answer.text
    for b in built:

        def stored(b: Built = b) -> bool:
            got = server.client.get(f"{server.url}/api/v2/trace/{b.trace_id}")
            return got.status_code == 200 and len(got.json()) == len(b.hops)

        poll(f"Zipkin storing trace {b.name} ({b.trace_id})", stored)


# -- what meshtop asked, and what the server answered ------------------------------------


@dataclass(frozen=True)
class Exchange:
    path: str
    params: dict[str, str]
    status: int
    body: Any  # the server's JSON (or its text when it is not JSON)


class Recorder:
    """A loopback proxy in front of a real server: meshtop is pointed at it, it forwards
    each GET as it is and keeps the question and the server's answer, so a test can tell
    what the server filtered from what meshtop did."""

    def __init__(self, upstream: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qsl, urlsplit

        self.asked: list[Exchange] = []
        recorder = self
        client = httpx.Client(timeout=30)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                answer = client.get(upstream + self.path)
                url = urlsplit(self.path)
                try:
                    body: Any = answer.json()
                except ValueError:
                    body = answer.text
                params = dict(parse_qsl(url.query))
                recorder.asked.append(Exchange(url.path, params, answer.status_code, body))
                self.send_response(answer.status_code)
                for name in ("Content-Type",):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._client = client
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def searches(self) -> list[Exchange]:
        """The searches asked (not a single trace, nor the services)."""
        return [e for e in self.asked if e.path in ("/api/v3/traces", "/api/traces",
                                                    "/api/v2/traces")]  # fmt: skip

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


def answered_ids(e: Exchange) -> set[str]:
    """The trace ids in a server's answer to a search, in the server's own format."""
    if e.status != 200:
        return set()
    if e.path == "/api/v3/traces":
        return {
            span["traceId"]
            for rs in e.body["result"]["resourceSpans"]
            for scope in rs.get("scopeSpans", [])
            for span in scope.get("spans", [])
        }
    if e.path == "/api/traces":
        return {t["traceID"] for t in e.body["data"]}
    return {t[0]["traceId"] for t in e.body}
