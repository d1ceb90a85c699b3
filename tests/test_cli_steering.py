"""`meshtop steer`, `route-test`, `fault`, `resilience` and `breaker` (issue 21) on the
simulated mesh, in process: one simulation kept across the commands (as a cluster
keeps its objects between two runs), so that a rule steered is the rule tested, a fault
applied is the fault that expires. The same against a real API server, with conflicts
and RBAC, is tests/kube/test_real_steering.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meshtop import connect
from meshtop.cli import main
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo

REGEX = "^(.*?;)?(iPhone)(;.*)?$"
IPHONE = f"header:user-agent~{REGEX}"
EXPIRES = "meshtop.io/fault-expires"

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Simulation:
    """One simulated Bookinfo for every command of the test; the audit log in tmp_path."""
    shared = Simulation(bookinfo())
    monkeypatch.setattr(connect, "simulation", lambda *a, **k: shared)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    return shared


@pytest.fixture
def run(sim: Simulation, capsys: pytest.CaptureFixture[str]) -> Run:
    def meshtop(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as ended:
            main(list(args))
        out = capsys.readouterr()
        return int(ended.value.code or 0), out.out, out.err

    return meshtop


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "meshtop" / "audit.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [e for e in lines if e["outcome"] != "about to apply"]


def _reviews(sim: Simulation) -> dict[str, Any]:
    return sim.get("VirtualService", "bookinfo", "reviews")


def test_steered_iphones_go_to_v3_and_route_test_says_so(
    sim: Simulation, run: Run, tmp_path: Path
) -> None:
    before = _reviews(sim)["spec"]
    code, out, err = run("steer", "bookinfo/reviews", "--demo", "--match", IPHONE, "--to", "v3",
                         "--yes")  # fmt: skip
    assert code == 0, err
    assert f"  0. header user-agent ~ {REGEX} → v3" in out
    assert "  1. every other request → v1 70%, v2 20%, v3 10%" in out
    http = _reviews(sim)["spec"]["http"]
    assert http[0]["match"] == [{"headers": {"user-agent": {"regex": REGEX}}}]
    assert http[1:] == before["http"]
    code, out, err = run("route-test", "bookinfo/reviews", "--demo",
                         "user-agent=iPhone; CPU iPhone OS 17_0")  # fmt: skip
    assert code == 0, err
    assert f"rule 0 takes it (header user-agent ~ {REGEX}) → v3" in out
    # Envoy matches the whole value: a browser's user-agent is not this regex's
    browser = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"
    code, out, _ = run("route-test", "bookinfo/reviews", "--demo", f"user-agent={browser}")
    assert code == 0
    assert "rule 1 takes it (every other request)" in out
    assert "passed over rule 0: header user-agent does not match" in out
    assert [(e["by"], e["outcome"]) for e in _audit(tmp_path)] == [("steer", "applied")]


def test_a_regex_that_matches_only_a_part_is_said_so(run: Run) -> None:
    code, _, err = run("steer", "bookinfo/reviews", "--demo", "--match",
                       "header:user-agent~iPhone", "--to", "v3", "--yes")  # fmt: skip
    assert code == 0, err
    _, out, _ = run("route-test", "bookinfo/reviews", "--demo", "user-agent=Mozilla (iPhone)")
    assert "the regex matches a part, Envoy needs the whole value" in out


def test_a_dry_run_and_a_declined_change_write_nothing(
    sim: Simulation, run: Run, tmp_path: Path
) -> None:
    before = _reviews(sim)
    code, out, err = run("steer", "bookinfo/reviews", "--demo", "--match", IPHONE, "--to", "v3",
                         "--dry-run")  # fmt: skip
    assert code == 0, err
    assert "nothing was written" in out
    code, _, err = run("steer", "bookinfo/reviews", "--demo", "--match", IPHONE, "--to", "v3")
    assert code == 2 and "give --yes" in err  # no terminal to ask on
    assert _reviews(sim) == before
    assert [e["outcome"] for e in _audit(tmp_path)] == ["dry run: the server accepted it"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("steer", "bookinfo/reviews", "--match", "header:x~(?=a)", "--to", "v3"),
         "not an RE2 regex"),
        (("steer", "bookinfo/reviews", "--match", "header:x=1", "--to", "v7"),
         "no subset v7 in its DestinationRules (they define v1, v2, v3)"),
        (("steer", "bookinfo/reviews", "--match", "header:x=1", "--to", "v1=50,v3=40"),
         "add up to 90, not 100"),
        (("steer", "bookinfo/reviews", "--move", "0"), "--move needs --position"),
        (("steer", "bookinfo/reviews", "--remove", "0"), "rule 0 is the default route"),
        (("fault", "bookinfo/reviews", "--abort", "503:0%"), "not a percentage above 0"),
        (("fault", "bookinfo/reviews", "--delay", "2x:5%"), "not a positive duration"),
        (("fault", "bookinfo/reviews"), "give --abort and/or --delay, or --clear, or --expire"),
        (("resilience", "bookinfo/reviews", "--timeout", "soon"), "not a positive duration"),
        (("resilience", "bookinfo/reviews", "--retries", "many"), "not a number of attempts"),
        (("resilience", "bookinfo/reviews", "--timeout", "2d"), "not from 1ms to under a day"),
        (("breaker", "bookinfo/reviews", "--subset", "v9", "--max-connections", "1"),
         "has no subset v9"),
        (("breaker", "bookinfo/reviews", "--max-connections", "0"), "greater than or equal to 1"),
        (("breaker", "bookinfo/reviews"), "give a connection pool setting"),
        (("route-test", "bookinfo/reviews", "user-agent"), "is not NAME=VALUE"),
    ],
)  # fmt: skip
def test_bad_values_are_one_line_exit_2_and_write_nothing(
    sim: Simulation, run: Run, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    before = (_reviews(sim), sim.get("DestinationRule", "bookinfo", "reviews"))
    yes = () if args[0] == "route-test" else ("--yes",)
    code, _, err = run(args[0], "--demo", *args[1:], *yes)
    assert code == 2, err
    assert err.startswith("meshtop: ") and len(err.strip().splitlines()) == 1, err
    assert says in err
    assert (_reviews(sim), sim.get("DestinationRule", "bookinfo", "reviews")) == before
    assert _audit(tmp_path) == []


def test_read_only_refuses_each_change_but_not_the_route_test(run: Run, tmp_path: Path) -> None:
    for args in (("steer", "bookinfo/reviews", "--match", IPHONE, "--to", "v3"),
                 ("fault", "bookinfo/reviews", "--abort", "503:10%"), ("fault", "--expire"),
                 ("resilience", "bookinfo/reviews", "--timeout", "1s"),
                 ("breaker", "bookinfo/reviews", "--max-connections", "1")):  # fmt: skip
        code, _, err = run("--read-only", args[0], "--demo", *args[1:], "--yes")
        assert code == 2 and "read-only" in err, err
    code, out, _ = run("--read-only", "route-test", "bookinfo/reviews", "--demo", "user-agent=x")
    assert code == 0 and "rule 0 takes it" in out
    assert _audit(tmp_path) == []


def test_a_fault_waits_its_time_then_is_removed_by_expiry(
    sim: Simulation, run: Run, tmp_path: Path
) -> None:
    before = _reviews(sim)["spec"]
    code, out, err = run("fault", "bookinfo/reviews", "--demo", "--abort", "503:10%",
                         "--match", "header:end-user=jason", "--for", "1s", "--yes")  # fmt: skip
    assert code == 0, err
    assert "waiting until" in out and "the fault's time was up; removed" in out
    assert _reviews(sim)["spec"] == before
    assert EXPIRES not in (_reviews(sim)["metadata"].get("annotations") or {})
    log = _audit(tmp_path)
    assert [(e["by"], e["action"]) for e in log] == [("fault", "fault"), ("expiry", "expire fault")]
    assert log[0]["after"]["http"][0]["name"] == "meshtop-fault"


def test_ctrl_c_while_waiting_leaves_the_fault_and_says_how_to_remove_it(
    sim: Simulation, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("meshtop.cli.fault.time.sleep", interrupted)
    code, _, err = run("fault", "bookinfo/reviews", "--demo", "--delay", "3s:50%", "--yes")
    assert code == 130
    assert "the fault stays until removed: `meshtop fault bookinfo/reviews --clear`" in err
    assert _reviews(sim)["spec"]["http"][0]["fault"]["delay"]["fixedDelay"] == "3s"
    code, _, err = run("fault", "bookinfo/reviews", "--demo", "--clear", "--yes")
    assert code == 0, err
    assert "fault" not in _reviews(sim)["spec"]["http"][0]


def test_resilience_and_breaker_write_what_they_say(sim: Simulation, run: Run) -> None:
    code, out, err = run("resilience", "bookinfo/reviews", "--demo", "--timeout", "1500ms",
                         "--retries", "off", "--yes")  # fmt: skip
    assert code == 0, err
    assert "rule 0: timeout 1500ms, no retries" in out
    rule = _reviews(sim)["spec"]["http"][0]
    assert (rule["timeout"], rule["retries"]) == ("1500ms", {"attempts": 0})
    code, out, err = run("breaker", "bookinfo/reviews", "--demo", "--max-requests", "5",
                         "--consecutive-errors", "3", "--ejection", "1m", "--yes")  # fmt: skip
    assert code == 0, err
    policy = sim.get("DestinationRule", "bookinfo", "reviews")["spec"]["trafficPolicy"]
    assert policy["connectionPool"] == {"http": {"http2MaxRequests": 5}}
    assert policy["outlierDetection"] == {"consecutive5xxErrors": 3, "baseEjectionTime": "1m"}


def test_outside_text_is_made_safe_before_the_terminal(run: Run) -> None:
    evil = "header:x-evil=\x1b]0;pwned\x07\x1b[2J"
    code, out, err = run("steer", "bookinfo/reviews", "--demo", "--match", evil, "--to", "v3",
                         "--yes")  # fmt: skip
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    _, out, _ = run("route-test", "bookinfo/reviews", "--demo", "x-evil=\x1b[2J")
    assert "\x1b" not in out
