"""The numbers issue 18 added, as an operator sees them in a real terminal: the 4xx share
beside the error rate in the edge table (and sorted by), and in the edge's detail; an
edge with two protocols says both; nodes the telemetry named only in part are marked on
the graph; and a console with no edge says why."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.integration.prometheus import Prometheus, running_prometheus
from tests.integration.test_numbers_kiali_cases import SERIES, Telemetry

from .term import Terminal


def _table_row(t: Terminal, needle: str) -> str:
    y = t.row_of(needle)
    assert y is not None, t.text()
    return t.lines()[y]


def test_the_edge_table_shows_the_4xx_share_beside_the_errors_at_80x24() -> None:
    with Terminal(["demo"], cols=80, rows=24) as t:
        t.ready()
        t.press("2")
        t.wait_for("ERR%", "4XX%", "gateway")
        header = _table_row(t, "4XX%")
        assert header.index("ERR%") < header.index("4XX%") < header.index("P99")
        # the ingress's callers get 1% 404s in the simulated Bookinfo: not errors, 4xx
        column = header.index("4XX%")
        # the row once drawn whole (a look at the screen may fall between two writes)
        t.wait("the gateway's row", lambda: "%" in _table_row(t, "gateway")[column - 2 :])
        row = _table_row(t, "gateway")  # cut to istio-…gateway at 80 columns
        assert "1.00%" in row[column - 2 : column + 6], (header, row)
        assert "0.00%" in row[header.index("ERR%") - 2 : column - 1]


def test_s_sorts_the_edge_table_by_the_4xx_share() -> None:
    with Terminal(["demo"], cols=120, rows=30) as t:
        t.ready()
        t.press("2")
        t.wait_for("SOURCE", "4XX%")
        for name in ("source", "destination", "proto", "rps", "errors", "4xx"):
            t.press("s")  # from the default, health: each press the next column
            t.wait_for(f"sort {name}")

        # the two edges with 4xx, the busier first: ingress (20rps) before the unmeshed one
        def sorted_by_4xx() -> bool:
            lines = t.lines()  # one look at the screen, not two of a redraw
            head = next((i for i, line in enumerate(lines) if "4XX%" in line), None)
            if head is None or head + 2 >= len(lines):
                return False
            first, second = lines[head + 1], lines[head + 2]
            return "istio-ingressgateway" in first and second.split()[1:2] == ["unknown"]

        t.wait("the 4xx edges first, the busier one first", sorted_by_4xx)


def test_the_edge_detail_shows_the_4xx_share() -> None:
    with Terminal(["demo"], cols=100, rows=40) as t:
        t.ready()
        t.press("2")
        t.wait_for("SOURCE", "DESTINATION")
        t.press("enter")  # the worst edge first: productpage → reviews v3
        t.wait_for("productpage v1 → reviews v3", "4xx", "the callers' mistakes, not errors")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus scraping the hand-written telemetry of Kiali's cases."""
    with ExitStack() as stack:
        server = Telemetry(SERIES)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        target = f"127.0.0.1:{server.server_address[1]}"
        workdir: Path = tmp_path_factory.mktemp("prom")
        prom = stack.enter_context(running_prometheus([target], workdir))
        prom.wait_for(
            "a rate", lambda: prom.scalar("sum(rate(istio_requests_total[5s]))") is not None
        )
        yield prom


def test_marked_nodes_and_two_protocols_on_screen(recorded: Prometheus) -> None:
    """A raw IP destination and an unroutable call's destination are drawn marked, not as
    ordinary nodes; the edge table says both protocols of an edge that carries two."""
    args = ["--prometheus", recorded.url, "--dialect", "istio", "--window", "10s"]
    with Terminal(args, cols=160, rows=48) as t:
        t.wait_for("10.1.2.3 (IP)", "unknown (no route)")
        t.press("2")
        t.wait_for("PROTO", "4XX%", "http+grpc")  # once laid out for 160 columns
        assert "http+grpc" in _table_row(t, "catalog")
        assert "grpc" in _table_row(t, "checkout")  # failed with DC only: still gRPC


def test_a_console_with_no_edge_says_why(recorded: Prometheus) -> None:
    args = ["--prometheus", recorded.url, "--dialect", "linkerd", "--window", "10s"]
    with Terminal(args, cols=120, rows=30) as t:
        t.wait_for("no Linkerd series")
        t.wait_for("--dialect istio")
