"""A body read to its end while its connection goes back to a full pool: urllib3 closes
it there, and the reader must not touch its socket after (it did: EBADF, and every
history of a namespace's detail against a real Prometheus failed with "broke off its
answer: [Errno 9] Bad file descriptor", 24 requests at once in a pool of 10)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
import urllib3

from meshtop.sources import bounded
from tests.loopback import serving

BODY = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'


class Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the connection goes back to its pool

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    with serving(Answer) as url:
        yield url + "/"


def test_a_body_read_as_its_connection_is_closed_by_a_full_pool(url: str) -> None:
    pool = urllib3.PoolManager(maxsize=1, block=False)  # one connection kept
    first = pool.request("GET", url, preload_content=False)
    second = pool.request("GET", url, preload_content=False)  # a second connection
    until = time.monotonic() + 5
    # the second read first: its connection fills the pool, so the first one's is
    # closed as its body ends
    assert bounded.read_all(second, until=until, cap=1 << 20) == BODY
    assert bounded.read_all(first, until=until, cap=1 << 20) == BODY
    assert first.connection is None  # handed back, and closed: the reader was done
