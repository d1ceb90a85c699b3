"""`meshtop sim serve`: the simulated mesh's metrics over HTTP at `/metrics`, for a real
Prometheus to scrape as it would scrape Envoy sidecars."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from meshtop.sim.exposition import MeshExposition

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, exposition: MeshExposition, host: str = "127.0.0.1", port: int = 0):
        self.exposition = exposition
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/metrics"

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(
            target=self.serve_forever, name="meshtop-sim-metrics", daemon=True
        )
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self._reply(404, "not found: the metrics are at /metrics\n")
            return
        self._reply(200, self.server.exposition.render())

    def _reply(self, status: int, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Scrapes every second would drown the terminal; stay quiet."""
