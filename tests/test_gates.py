"""`--fail-on` gates: how they are written, what they match, and what they leave alone."""

from __future__ import annotations

import asyncio
import io
import time

import pytest

from meshtop import output
from meshtop.errors import UsageError
from meshtop.gates import check, parse_gate
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot
from meshtop.sim.sources import Simulation


@pytest.mark.parametrize(
    ("text", "scope", "metric", "op", "value"),
    [
        ("error_rate>1%", "", "error_rate", ">", 0.01),
        ("error_rate >= 0.05", "", "error_rate", ">=", 0.05),
        ("p99>500ms", "", "p99", ">", 500.0),
        ("p95>1.5s", "", "p95", ">", 1500.0),
        ("p50>20", "", "p50", ">", 20.0),
        ("mtls<100%", "", "mtls", "<", 1.0),
        ("rps<0.1", "", "rps", "<", 0.1),
        ("shop/*:error_rate>1%", "shop/*", "error_rate", ">", 0.01),
    ],
)
def test_gates_read_as_written(text: str, scope: str, metric: str, op: str, value: float) -> None:
    g = parse_gate(text)
    assert (g.scope, g.metric, g.op) == (scope, metric, op)
    assert g.value == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "error_rate", "errors>1%", "p99>soon", "mtls<lots%", ">1"])
def test_bad_gates_say_how_to_write_one(text: str) -> None:
    with pytest.raises(UsageError, match="--fail-on"):
        parse_gate(text)


def _snap(sim: Simulation) -> MeshSnapshot:
    return asyncio.run(refresh(sim.clusters, window_s=60))


def test_gates_find_every_edge_that_breaks_them(sim: Simulation) -> None:
    snapshot = _snap(sim)
    broken = check(snapshot, [parse_gate("error_rate>1%")])
    assert [v.edge.key[1] for v in broken] == ["Kubernetes/bookinfo/reviews-v3"]
    assert broken[0].value > 0.05
    mtls = check(snapshot, [parse_gate("mtls<100%")])
    assert {v.edge.key for v in mtls} == {
        ("unknown/unknown/unknown", "Kubernetes/bookinfo/productpage-v1"),
        ("Kubernetes/bookinfo/details-v1", "external/external/www.googleapis.com"),
    }


def test_a_scope_limits_a_gate_to_edges_from_or_to_its_workloads(sim: Simulation) -> None:
    snapshot = _snap(sim)
    assert check(snapshot, [parse_gate("istio-system/*:p99>1ms")])  # the gateway's call
    assert not check(snapshot, [parse_gate("istio-system/*:error_rate>1%")])
    only = check(snapshot, [parse_gate("bookinfo/ratings-*:p50>1ms")])
    assert {v.edge.key[1] for v in only} == {"Kubernetes/bookinfo/ratings-v1"}


def test_a_gate_leaves_alone_what_it_cannot_judge(sim: Simulation) -> None:
    snapshot = _snap(sim)
    tcp = ("Kubernetes/bookinfo/details-v1", "external/external/www.googleapis.com")
    for text in ("p99>0ms", "rps<1000", "error_rate>=0%"):
        assert tcp not in {v.edge.key for v in check(snapshot, [parse_gate(text)])}, text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_only_after_a_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "SHOW_AFTER_S", 0.05)
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with output.progress("asking the backend…"):
        pass  # quick: nothing shown
    assert terminal.getvalue() == ""
    with output.progress("asking the backend…") as say:
        time.sleep(0.3)
        say("rendering html…")
        time.sleep(0.2)
    assert "asking the backend…" in terminal.getvalue()
    hostile = _Terminal()
    monkeypatch.setattr("sys.stderr", hostile)
    with output.progress("asking prometheus http://u:pw@h/[bold]x\x1b]2;PWNED\x07…"):
        time.sleep(0.3)
    shown = hostile.getvalue()
    assert "[bold]x␛]2;PWNED␇" in shown and "http://u:***@h" in shown, shown
    assert "\x1b]2" not in shown and "pw@" not in shown
    piped = io.StringIO()
    monkeypatch.setattr("sys.stderr", piped)
    with output.progress("asking the backend…"):
        time.sleep(0.2)
    assert piped.getvalue() == ""


def _tcp_snapshot(connections: float, mtls: float = 1.0) -> MeshSnapshot:
    from datetime import UTC, datetime

    from meshtop.mesh import build_snapshot
    from meshtop.model import Edge, EdgeStats, Protocol

    nan = float("nan")
    return build_snapshot(
        generated_at=datetime(2027, 1, 1, tzinfo=UTC),
        window_s=60,
        workloads=[],
        edges=[
            # a pooled connection: bytes flow, nothing opened in the window
            Edge(
                "c/a/app",
                "c/a/db",
                EdgeStats(
                    protocol=Protocol.TCP,
                    mtls=mtls,
                    tcp_request_bps=500.0,
                    tcp_connections_per_s=connections,
                ),
            ),
            Edge("c/a/app", "c/a/api", EdgeStats(rps=5.0, error_rate=nan, p99_ms=nan, mtls=1.0)),
            Edge("c/a/app", "c/a/idle", EdgeStats(rps=0.0)),
        ],
        routes=[],
        sources={},
    )


def test_tcp_edges_are_not_judged_on_requests_even_without_new_connections() -> None:
    snapshot = _tcp_snapshot(connections=0.0)
    for text in ("rps<0.1", "error_rate>=0%", "p99>0ms"):
        broken = {v.edge.key[1] for v in check(snapshot, [parse_gate(text)])}
        assert "c/a/db" not in broken, text
    plain = check(_tcp_snapshot(connections=0.0, mtls=0.0), [parse_gate("mtls<100%")])
    assert [v.edge.key[1] for v in plain] == ["c/a/db"]  # bytes flow in plain text


def test_what_has_no_figure_passes_no_gate_and_fails_none_but_an_unknown_rate_fails() -> None:
    snapshot = _tcp_snapshot(connections=1.0)
    assert not check(snapshot, [parse_gate("p99>1ms")])  # no latency (NaN): nothing to judge
    # requests flow but their error rate is not a number: unknown, so the gate fails (it
    # used to pass: a backend's garbage must not read as "no errors")
    (unknown,) = check(snapshot, [parse_gate("error_rate>1%")])
    assert unknown.edge.key[1] == "c/a/api"
    assert "c/a/idle" not in {v.edge.key[1] for v in check(snapshot, [parse_gate("mtls<100%")])}


@pytest.mark.parametrize(
    ("text", "says"),
    [("mtls<100", "a share from 0 to 1"), ("error_rate>5", "a share from 0 to 1"),
     ("error_rate>nan", "a share from 0 to 1"), ("rps>inf", "is not a value"),
     ("p99>-5ms", "is not a value")],
)  # fmt: skip
def test_gates_refuse_values_that_cannot_mean_anything(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        parse_gate(text)


def test_an_overflowing_rate_is_unknown_and_fails_the_gate_not_passes_it(sim: Simulation) -> None:
    """Two series at 1e308 add up to an infinite rate: any share of it comes out 0. The
    edge is graded failing (unknown is never healthy) and an error gate fails on it."""
    import math
    from dataclasses import replace

    from meshtop.health import edge_health, explain
    from meshtop.model import Health

    snapshot = _snap(sim)
    e = next(e for e in snapshot.edges if e.stats.rps > 0 and e.stats.error_rate == 0)
    inf = replace(e, stats=replace(e.stats, rps=math.inf, error_rate=0.0))
    broken = replace(snapshot, edges=(inf, *snapshot.edges[1:]))
    assert edge_health(inf.stats) is Health.FAILING
    assert "unknown" in explain(inf.stats)
    (violation,) = [v for v in check(broken, [parse_gate("error_rate>1%")]) if v.edge is inf]
    assert "has error_rate unknown" in violation.describe(broken)
    nan = replace(e, stats=replace(e.stats, error_rate=math.nan))
    assert check(replace(snapshot, edges=(nan,)), [parse_gate("error_rate>50%")])
