"""A long query goes to Prometheus as a POST of a form, as its API takes a large query,
not in a GET's URL (issue 17): requests and urllib3 walk a URL a character at a time,
three times over, and a namespace's history queries, begun together on their threads,
held the console's thread. A short query is still a GET; a server that refuses a POST
(405, 501) is asked by GET, and only by GET after that."""

from __future__ import annotations

import asyncio
import json
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

from meshtop.config import PrometheusConfig
from meshtop.sources.prometheus import PrometheusMetrics
from meshtop.sources.prometheus.wire import POSTED_CHARS
from tests.loopback import serving


class _Prometheus(BaseHTTPRequestHandler):
    """Empty answers to every query; `asked`: (method, path, fields in the URL, fields in
    the body); a POST answered `refuse` (0: taken)."""

    asked: ClassVar[list[tuple[str, str, dict[str, list[str]], dict[str, list[str]]]]] = []
    refuse: ClassVar[int] = 0
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer("GET", {})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        form = self.headers.get("Content-Type") == "application/x-www-form-urlencoded"
        self._answer("POST", parse_qs(body.decode()) if form else {"?": [body.decode()]})

    def _answer(self, method: str, body: dict[str, list[str]]) -> None:
        url = urlparse(self.path)
        self.asked.append((method, url.path, parse_qs(url.query), body))
        if method == "POST" and self.refuse:
            self.send_response(self.refuse)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        kind = "matrix" if url.path.endswith("query_range") else "vector"
        answer = json.dumps({"status": "success", "data": {"resultType": kind, "result": []}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())


Asked = list[tuple[str, str, dict[str, list[str]], dict[str, list[str]]]]


def _asked(refuse: int = 0) -> tuple[Asked, Asked]:
    """What a node's history and a short query asked of a server that refuses a POST
    with `refuse` (0: takes it), the first time and the second."""
    handler = type("Handler", (_Prometheus,), {"asked": [], "refuse": refuse})
    with serving(handler) as url:
        source = PrometheusMetrics(PrometheusConfig(url, dialect="istio"))
        for time in (1, 2):
            history = asyncio.run(source.history(None, "c1/shop/front-v1", 900.0))
            assert history.window_s == 900.0  # read from the (empty) answers
            assert source._client.custom_query("up") == []
            if time == 1:
                first, handler.asked = handler.asked, []
    return first, handler.asked


def test_a_long_query_is_posted_as_a_form_and_a_short_one_is_a_get() -> None:
    first, second = _asked()
    asked = first + second
    posted = [a for a in asked if a[0] == "POST"]
    assert len(posted) >= 6  # a history's three queries, twice
    for _, path, in_url, form in posted:
        assert path in ("/api/v1/query", "/api/v1/query_range")
        assert not in_url  # nothing in the URL
        assert len(form["query"][0]) > POSTED_CHARS
        assert "front-v1" in form["query"][0]  # the query whole, its node named
        if path.endswith("query_range"):
            assert {"start", "end", "step"} <= form.keys()
    got = [a for a in asked if a[0] == "GET"]
    assert [(a[1], a[2]["query"]) for a in got] == [("/api/v1/query", ["up"])] * 2


def test_a_server_that_refuses_a_post_is_asked_by_get_from_then_on() -> None:
    """The history's three queries go together: each may be posted once, before the
    first refusal is back; everything after is a GET."""
    for refuse in (405, 501):
        first, second = _asked(refuse)
        assert 1 <= [a[0] for a in first].count("POST") <= 3, refuse
        assert all(a[0] == "GET" for a in second), refuse
        for asked in (first, second):  # each history whole, asked by GET
            long = [a for a in asked if a[0] == "GET" and len(a[2]["query"][0]) > POSTED_CHARS]
            assert len(long) == 3, refuse
            assert all("front-v1" in a[2]["query"][0] and not a[3] for a in long)
