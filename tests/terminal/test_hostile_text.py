"""Outside text in a real terminal (issue 15): a metrics backend on loopback whose label
values carry terminal escapes (a window title, an OSC 52 clipboard write), a C1 CSI and a
bidi override. The console shows them as visible symbols (`␛`) and not one of those bytes
reaches the terminal."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from .term import Terminal

HOSTILE = "shop\x1b]2;PWNED\x1b\\\x1b]52;c;cHduZWQ=\x1b\\"
FLAG = "UH\x9b31m\u202eevil"
JOIN = re.compile(r'label_join\(.*?,\s*"meshtop_edge",\s*"([^"]*)",\s*((?:"[^"]*"\s*,?\s*)+)\)')
LABELS = {
    "source_workload_namespace": "bookinfo",
    "source_workload": "productpage-v1",
    "source_app": "productpage",
    "source_version": "v1",
    "destination_workload_namespace": HOSTILE,
    "destination_workload": "reviews-v1",
    "destination_app": "reviews",
    "destination_version": "v1",
    "destination_service": "reviews.shop.svc.cluster.local",
    "destination_service_name": "reviews",
}


def _answer(query: str) -> list[dict[str, object]]:
    """What a Prometheus whose proxies publish HOSTILE would answer: the request rate
    series, with its labels joined as the query asks; nothing for anything else."""
    join = JOIN.search(query)
    if "_requests_total" not in query or "histogram_quantile" in query or join is None:
        return []
    separator, names = join.group(1), re.findall(r'"([^"]*)"', join.group(2))
    metric = {
        **LABELS,
        "meshtop_edge": separator.join(LABELS.get(n, "") for n in names),
        "reporter": "source",
        "response_code": "503",
        "response_flags": FLAG,
        "connection_security_policy": "unknown",
    }
    return [{"metric": metric, "value": [1_700_000_000, "2.5"]}]


class _Prometheus(BaseHTTPRequestHandler):
    def _reply(self, params: dict[str, list[str]]) -> None:
        path = urlsplit(self.path).path
        if path.endswith("/query"):
            data: object = {"resultType": "vector", "result": _answer(params["query"][0])}
        elif path.endswith("/query_range"):
            data = {"resultType": "matrix", "result": []}
        else:
            data = {}
        body = json.dumps({"status": "success", "data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(parse_qs(urlsplit(self.path).query))

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        self._reply(parse_qs(self.rfile.read(size).decode()))

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_hostile_label_values_are_shown_never_sent(prometheus: str) -> None:
    with Terminal(["--prometheus", prometheus, "--dialect", "istio", "--refresh", "1s"],
                  cols=160, rows=48) as t:  # fmt: skip
        t.ready()
        t.wait_for("shop␛]2;PWNED")  # the namespace, visible, in the graph
        t.press("2")  # the edge table
        t.wait_for("SOURCE", "DESTINATION")
        t.press("enter")  # the edge's detail: its codes and Envoy flags
        t.wait_for("productpage v1 → reviews v1")
        t.press("esc", "q")
        assert t.exit_code() == 0
        out = t.output()
    assert "\x1b]2;PWNED" not in out
    assert "\x1b]52;" not in out
    assert "\x9b" not in out and "\u202e" not in out
    assert "PWNED" in out
