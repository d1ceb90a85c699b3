"""The console on a Prometheus that starts dripping its answers one byte every 0.2 s
(issue 15): the refresh ends at the deadline, the status says stale with the reason, `r`
brings it back when the backend answers again, and `q`, ctrl+q and ctrl+c quit at once
while a refresh hangs on the backend."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from .term import Terminal

TIMEOUT_S = 2.0
REFRESH_S = 1.0
DRIP_EVERY_S = 0.2
SERVE_FOR_S = 30.0  # no answer drips for longer than this, whatever the client does
EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}
ISTIO = {  # what the dialect's probe finds: an Istio mesh's Prometheus
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


class Switchable(BaseHTTPRequestHandler):
    """A minimal Istio Prometheus (the probe finds Istio; every query answers no traffic)
    that answers at once, or, with `dripping` set, one byte every 0.2 s."""

    protocol_version = "HTTP/1.1"
    dripping: ClassVar[bool] = False

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query).get("query", [""])[0]
        body = json.dumps(ISTIO if query.startswith("group by") else EMPTY).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if not Switchable.dripping:
                self.wfile.write(body)
                return
            end = time.monotonic() + SERVE_FOR_S
            for i in range(len(body)):
                if time.monotonic() > end:
                    return
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(DRIP_EVERY_S)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    Switchable.dripping = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), Switchable)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        Switchable.dripping = False
        server.shutdown()
        server.server_close()


def _console(url: str) -> Terminal:
    args = ["--prometheus", url, "--timeout", f"{TIMEOUT_S:g}s", "--refresh", f"{REFRESH_S:g}s"]
    return Terminal(args, cols=120, rows=40)


def _status(t: Terminal) -> str:
    row = t.row_of(" edges ")
    return t.lines()[row] if row is not None else ""


def test_a_dripping_backend_goes_stale_with_the_reason_and_comes_back(prometheus: str) -> None:
    with _console(prometheus) as t:
        t.ready()
        t.wait("the metrics fresh", lambda: "metrics" not in _status(t) or "fresh" in _status(t))
        Switchable.dripping = True
        started = time.monotonic()
        # the next refresh starts within REFRESH_S and ends at its deadline
        t.wait_for(
            "metrics stale",
            f"Prometheus at {prometheus} did not finish answering within 2s",
            limit=REFRESH_S + TIMEOUT_S + 2,
        )
        assert time.monotonic() - started < REFRESH_S + TIMEOUT_S + 2
        Switchable.dripping = False
        t.press("r")  # asks again at once, not after the retry's back-off
        t.wait("the stale mark gone", lambda: "stale" not in _status(t), limit=TIMEOUT_S + 3)
        t.wait_gone("did not finish answering", limit=TIMEOUT_S + 3)
        t.press("q")
        assert t.exit_code(limit=3) == 0


@pytest.mark.parametrize("key", ["q", "\x11", "\x03"], ids=["q", "ctrl+q", "ctrl+c"])
def test_quitting_while_a_refresh_hangs_is_at_once(prometheus: str, key: str) -> None:
    with _console(prometheus) as t:
        t.ready()
        Switchable.dripping = True
        t.press("r")
        time.sleep(REFRESH_S + 0.5)  # a refresh is now waiting on the dripping backend
        started = time.monotonic()
        t.press(key)
        code = t.exit_code(limit=3)
        took = time.monotonic() - started
        assert took < 1.0, f"took {took:.1f}s to quit"
        assert code == 0, code
