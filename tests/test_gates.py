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
    return asyncio.run(refresh(sim.metrics, sim.control_plane, window_s=60))


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
    piped = io.StringIO()
    monkeypatch.setattr("sys.stderr", piped)
    with output.progress("asking the backend…"):
        time.sleep(0.2)
    assert piped.getvalue() == ""
