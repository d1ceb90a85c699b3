"""The latency against a real Prometheus, as an operator sees it in a real terminal (issue
17), where the latency query takes longer than a refresh (here every one is made late
by a proxy in front of Prometheus; at 2,000 services on two cores it takes 3-6 s): the
edges come at once, each refresh without waiting for it; the line under the status says
the first answer is still coming, and once it is in, the edge table has every call's p99,
the line is gone and the status line says how old the latency is, the refreshes after
carrying it. (The console used to queue a latency query behind the one coming at every
refresh, and threw each answer away: no latency was shown for 14-50 s.)"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from meshtop.units import DASH
from tests.integration.prometheus import scraped_mesh
from tests.integration.test_prometheus_first_frame import _Late
from tests.loopback import serving

from .term import Terminal

WINDOW_S = 10
LATE_S = 7.0  # every latency answer's lateness: several refreshes of 1 s go by


@pytest.fixture(scope="module")
def late(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scraped_mesh(tmp_path_factory.mktemp("p"), WINDOW_S) as prom:
        _Late.upstream, _Late.delays, _Late.asked = prom.url, [], []
        with serving(_Late) as url:
            yield url
        _Late.delays = []


def _p99s(t: Terminal) -> list[str]:
    """The edge table's p99 cells of the calls on screen (HTTP and gRPC: TCP has no
    latency), one look: its rows' words are the health, the two ends, the protocol, the
    rate, the error and 4xx shares, errors/s, p50, p95, p99 and mTLS."""
    lines = t.lines()
    head = next((i for i, line in enumerate(lines) if "P99" in line and "SOURCE" in line), None)
    if head is None:
        return []
    assert lines[head].split()[-4:] == ["P50", "P95", "P99", "MTLS"], lines[head]
    rows = (line.split() for line in lines[head + 1 :])
    return [row[10] for row in rows if len(row) >= 12 and row[3] in ("http", "grpc")]


def test_the_edges_come_before_the_latency_and_the_latency_once_in(late: str) -> None:
    _Late.delays = [LATE_S] * 20
    args = ["--prometheus", late, "--dialect", "istio", "--window", f"{WINDOW_S}s"]
    with Terminal([*args, "--refresh", "1s"], cols=160, rows=48) as t:
        t.wait_for_re(r"latency: the first answer \(\d+ calls\) is still coming")
        t.ready()
        t.press("2")
        t.wait("the edge table's rows", lambda: len(_p99s(t)) > 5)
        # the refreshes go on meanwhile (the clock on the status line moves), no p99 yet
        clock = re.search(r"\d\d:\d\d:\d\d", t.text())
        assert clock is not None
        t.wait("a later refresh", lambda: clock.group() not in t.lines()[0])
        assert "is still coming" in t.text()
        assert set(_p99s(t)) == {DASH}, _p99s(t)
        assert len(_Late.asked) == 1
        # then the answer: every call's p99, and nothing said about the latency
        t.wait_gone("is still coming", limit=LATE_S + 10)
        t.wait("the p99s", lambda: all(re.fullmatch(r"[\d.]+m?s", c) for c in _p99s(t)))
        assert len(_p99s(t)) > 5
        # nothing said under the status; on it, how much older the latency is than the
        # rates beside it: asked about 7 s before the refresh that drew these
        assert "latency" not in "\n".join(t.lines()[2:])
        age = re.search(r"metrics fresh, latency (\d+)s old", t.lines()[1])
        assert age is not None and int(age.group(1)) >= LATE_S, t.lines()[1]
        # the refreshes after carry it, and the next query waits for its turn
        clock = re.search(r"\d\d:\d\d:\d\d", t.text())
        assert clock is not None
        t.wait("a later refresh", lambda: clock.group() not in t.lines()[0])
        assert all(re.fullmatch(r"[\d.]+m?s", c) for c in _p99s(t)) and _p99s(t)
        assert len(_Late.asked) == 1  # the next is due 4 x 7 s after the first was asked


def test_a_latency_query_that_fails_after_a_good_answer_leaves_its_figures_said_stale(
    late: str,
) -> None:
    """The second latency query refused (Prometheus overloaded): the edge table keeps the
    first answer's p99s, the line under the status says the latency is stale and why, the
    status line how old it is; the next answer clears it."""
    _Late.delays, _Late.asked = [1.0, ("fail", 1.0), 4.0, 4.0, 4.0], []
    args = ["--prometheus", late, "--dialect", "istio", "--window", f"{WINDOW_S}s"]
    with Terminal([*args, "--refresh", "1s"], cols=160, rows=48) as t:
        t.ready()
        t.press("2")
        t.wait("the p99s", lambda: _timed(_p99s(t)))
        # due again 4 x 1 s after the first was asked; refused a second later
        said = f"latency stale: Prometheus at {late} rejected a query: unavailable: overloaded"
        t.wait("the stale latency said", lambda: said in t.text(), limit=20)
        assert _timed(_p99s(t)), _p99s(t)
        age = re.search(r"metrics fresh, latency (\d+)s old", t.lines()[1])
        assert age is not None and int(age.group(1)) >= 4, t.lines()[1]
        # asked again 4 x 1 s after the refusal was asked, in 4 s later: said no more
        t.wait_gone("latency stale", limit=20)
        assert len(_Late.asked) >= 3
        assert _timed(_p99s(t)), _p99s(t)


def _timed(p99s: list[str]) -> bool:
    """More than five calls on screen, each with a p99."""
    return len(p99s) > 5 and all(re.fullmatch(r"[\d.]+m?s", c) for c in p99s)
