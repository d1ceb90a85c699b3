"""`meshtop steer`, `route-test`, `fault`, `resilience` and `breaker` (issue 21) against a
REAL Kubernetes API server (tests/servers/kube.py): Istio's CRDs with their real
schemas, RBAC on (admin; reader, who may only read; restricted, who may change
DestinationRules but not patch VirtualServices), Bookinfo in a namespace of each test's
own; every change checked by the server's dry run, audited, written with a JSON patch
that tests what was read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ..servers import kube as real
from ..servers.kube import KubeServer, interposed

kube = real.kube
bookinfo = real.bookinfo

VS, DR = "VirtualService", "DestinationRule"
REGEX = "^(.*?;)?(iPhone)(;.*)?$"  # the issue's
IPHONE = f"header:user-agent~{REGEX}"
EXPIRES = "meshtop.io/fault-expires"
# Bookinfo's reviews at 90/10, as the server holds it before any change
REVIEWS_SPEC: dict[str, Any] = {
    "hosts": ["reviews"],
    "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                        {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10}]}],
}  # fmt: skip


def _meshtop(
    kubeconfig: Path, state: Path, *args: str, first: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    command, *rest = args
    return subprocess.run(
        [sys.executable, "-m", "meshtop", *first, command, "--kubeconfig", str(kubeconfig), *rest],
        capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def _audit(state: Path) -> list[dict[str, Any]]:
    """Every audit line but the intents (each applied line has its intent before it)."""
    path = state / "meshtop" / "audit.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    for i, entry in enumerate(lines):
        if entry["outcome"] == "applied":
            intents = [e for e in lines[:i] if e["outcome"] == "about to apply"]
            assert intents and intents[-1]["after"] == entry["after"], lines
    return [e for e in lines if e["outcome"] != "about to apply"]


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stderr.startswith("meshtop: "), result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr.strip()


def _spec(kube: KubeServer, kind: str, namespace: str, name: str = "reviews") -> dict[str, Any]:
    spec: dict[str, Any] = kube.get(kind, namespace, name)["spec"]
    return spec


def _annotations(kube: KubeServer, namespace: str) -> dict[str, str]:
    found: dict[str, str] = kube.get(VS, namespace, "reviews")["metadata"].get("annotations") or {}
    return found


# -- steering and the route test: the "done when" ---------------------------------


def test_steer_iphones_to_v3_then_route_test_says_which_rule_takes_a_request(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """The iPhone rule goes before the default rule; a user-agent that is the regex's
    whole match goes to v3, any other to the default rule, with why rule 0 passed it
    over. Envoy matches a regex against the WHOLE value: a browser's "Mozilla/5.0
    (iPhone; …)" is NOT matched by this regex (nothing but `iPhone` may stand between
    the start or a `;` and the next `;` or the end), and route-test says so. route-test
    writes nothing, so the read-only user and --read-only may run it."""
    state = tmp_path / "state"
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    done = _meshtop(config, state, "steer", f"{bookinfo}/reviews", "--match", IPHONE,
                    "--to", "v3", "--yes")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"+        regex: {REGEX}" in done.stdout  # the diff
    assert f"  0. header user-agent ~ {REGEX} → v3\n" in done.stdout  # the rules after it
    assert "  1. every other request → v1 90%, v2 10%\n" in done.stdout
    stored = kube.get(VS, bookinfo, "reviews")
    assert stored["spec"]["http"] == [
        {"match": [{"headers": {"user-agent": {"regex": REGEX}}}],
         "route": [{"destination": {"host": "reviews", "subset": "v3"}}]},
        REVIEWS_SPEC["http"][0],
    ]  # fmt: skip
    assert f"resourceVersion {stored['metadata']['resourceVersion']}" in done.stdout
    log = _audit(state)
    assert [(e["by"], e["action"], e["outcome"]) for e in log] == [("steer", "steer", "applied")]
    assert log[0]["before"] == REVIEWS_SPEC and log[0]["after"] == stored["spec"]

    reader = kube.kubeconfig(tmp_path / "reader", "reader")
    for user_agent, first in (("iPhone", ()), ("iPhone; CPU iPhone OS 17_0", ("--read-only",))):
        said = _meshtop(reader, state, "route-test", f"{bookinfo}/reviews",
                        f"user-agent={user_agent}", first=first)  # fmt: skip
        assert said.returncode == 0, said.stderr
        assert f"rule 0 takes it (header user-agent ~ {REGEX}) → v3" in said.stdout
    for user_agent in ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)", "curl/8.5"):
        said = _meshtop(reader, state, "route-test", f"{bookinfo}/reviews",
                        f"user-agent={user_agent}")  # fmt: skip
        assert said.returncode == 0, said.stderr
        assert "rule 1 takes it (every other request) → v1 90%, v2 10%" in said.stdout
        assert "passed over rule 0: header user-agent does not match" in said.stdout
    none = _meshtop(reader, state, "route-test", f"{bookinfo}/reviews")  # no header at all
    assert "rule 1 takes it" in none.stdout and none.returncode == 0
    assert len(_audit(state)) == 1  # route-test wrote nothing


def test_steer_edits_moves_and_removes_rules_and_checks_subsets(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    target = f"{bookinfo}/reviews"
    unknown = _meshtop(config, state, "steer", target, "--match", "header:end-user=jason",
                       "--to", "v9", "--yes")  # fmt: skip
    assert unknown.returncode == 2
    assert "no subset v9 in its DestinationRules (they define v1, v2, v3)" in _one_line(unknown)
    bad = _meshtop(config, state, "steer", target, "--match", "header:user-agent~(?=iPhone)",
                   "--to", "v3", "--yes")  # fmt: skip
    assert bad.returncode == 2 and "not an RE2 regex" in _one_line(bad)
    assert _spec(kube, VS, bookinfo) == REVIEWS_SPEC and _audit(state) == []

    for args in (["--match", "header:end-user=jason", "--to", "v2"],
                 ["--match", "uri^=/api", "--to", "v1=50,v3=50", "--position", "0"],
                 ["--edit", "1", "--to", "v3"],
                 ["--move", "0", "--position", "1"]):  # fmt: skip
        result = _meshtop(config, state, "steer", target, *args, "--yes")
        assert result.returncode == 0, result.stderr
    http = _spec(kube, VS, bookinfo)["http"]
    assert [r.get("match") for r in http] == [
        [{"headers": {"end-user": {"exact": "jason"}}}], [{"uri": {"prefix": "/api"}}], None,
    ]  # fmt: skip
    assert http[0]["route"] == [{"destination": {"host": "reviews", "subset": "v3"}}]
    assert [d["weight"] for d in http[1]["route"]] == [50, 50]
    shadowed = _meshtop(config, state, "steer", target, "--move", "2", "--position", "0", "--yes")
    assert shadowed.returncode == 2 and "would never match" in _one_line(shadowed)
    last = _meshtop(config, state, "steer", target, "--remove", "2", "--yes")
    assert last.returncode == 2 and "default route" in _one_line(last)
    removed = _meshtop(config, state, "steer", target, "--remove", "0", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert [r.get("match") for r in _spec(kube, VS, bookinfo)["http"]] == [
        [{"uri": {"prefix": "/api"}}], None,
    ]  # fmt: skip
    assert [e["by"] for e in _audit(state)] == ["steer"] * 5


def test_steer_in_conflict_with_a_real_second_writer_writes_nothing(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """Between meshtop's read (and its dry run) and its write, the admin changes the
    route: the server refuses meshtop's patch (its `test`), exit 4, the other change
    stands, the audit log says conflict."""
    state = tmp_path / "state"
    other = [{"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 70},
             {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 30}]  # fmt: skip

    def second_writer() -> None:
        kube.patch(VS, bookinfo, "reviews", other)

    with interposed(kube) as proxy:
        proxy.before_next_write = second_writer
        config = kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url)
        result = _meshtop(config, state, "steer", f"{bookinfo}/reviews", "--match", IPHONE,
                          "--to", "v3", "--yes")  # fmt: skip
    assert proxy.before_next_write is None
    assert result.returncode == 4, result.stdout + result.stderr
    said = _one_line(result)
    assert "changed since it was read" in said and "nothing was written" in said
    http = _spec(kube, VS, bookinfo)["http"]
    assert len(http) == 1 and [d["weight"] for d in http[0]["route"]] == [70, 30]
    assert [e["outcome"].partition(":")[0] for e in _audit(state)] == ["conflict"]


@pytest.mark.parametrize(
    "args",
    [
        ("steer", "{ns}/reviews", "--match", IPHONE, "--to", "v3", "--yes"),
        ("fault", "{ns}/reviews", "--abort", "503:10%", "--yes"),
        ("fault", "--expire"),
        ("resilience", "{ns}/reviews", "--timeout", "2s", "--yes"),
        ("breaker", "{ns}/reviews", "--max-connections", "1", "--yes"),
    ],
)
def test_read_only_refuses_every_change_before_any_request(
    kube: KubeServer, bookinfo: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    with interposed(kube) as proxy:
        config = kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url)
        result = _meshtop(config, tmp_path, *(a.format(ns=bookinfo) for a in args),
                          first=("--read-only",))  # fmt: skip
    assert result.returncode == 2 and "read-only" in _one_line(result)
    assert proxy.requests == []  # not even a read
    assert _spec(kube, VS, bookinfo) == REVIEWS_SPEC


def test_a_user_rbac_refuses_is_one_line_exit_3_and_a_permitted_edit_goes_through(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """`restricted` may change DestinationRules, not VirtualServices: steering, a fault
    and a timeout are refused by the server's dry run (403, exit 3, nothing written);
    its circuit breaker is written. `reader` may change nothing."""
    state = tmp_path / "state"
    restricted = kube.kubeconfig(tmp_path / "restricted", "restricted")
    target = f"{bookinfo}/reviews"
    for args in (("steer", target, "--match", IPHONE, "--to", "v3"),
                 ("fault", target, "--delay", "2s:50%", "--detach"),
                 ("resilience", target, "--timeout", "2s")):  # fmt: skip
        result = _meshtop(restricted, state, *args, "--yes")
        assert result.returncode == 3, result.stdout + result.stderr
        said = _one_line(result)
        assert "forbidden by RBAC in restricted" in said and "cannot patch" in said
    assert _spec(kube, VS, bookinfo) == REVIEWS_SPEC and _annotations(kube, bookinfo) == {}
    done = _meshtop(restricted, state, "breaker", target, "--max-connections", "10", "--yes")
    assert done.returncode == 0, done.stderr
    assert _spec(kube, DR, bookinfo)["trafficPolicy"] == {
        "connectionPool": {"tcp": {"maxConnections": 10}}
    }
    reader = kube.kubeconfig(tmp_path / "reader", "reader")
    refused = _meshtop(reader, state, "breaker", target, "--max-connections", "1", "--yes")
    assert refused.returncode == 3 and "forbidden by RBAC in reader" in _one_line(refused)
    outcomes = [e["outcome"].partition(":")[0] for e in _audit(state)]
    assert outcomes == ["refused by the server's dry run"] * 3 + ["applied"] + [
        "refused by the server's dry run"
    ]


# -- faults, time-boxed -------------------------------------------------------------------


def test_a_fault_for_2s_is_gone_after_2s_with_an_audit_record_of_its_removal(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    started = time.monotonic()
    result = _meshtop(config, state, "fault", f"{bookinfo}/reviews", "--abort", "503:10%",
                      "--for", "2s", "--yes")  # fmt: skip
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert took >= 2.0, took
    assert "+      httpStatus: 503" in result.stdout and f"+annotation {EXPIRES}: " in result.stdout
    assert "waiting until " in result.stdout
    assert "the fault's time was up; removed" in result.stdout
    assert _spec(kube, VS, bookinfo) == REVIEWS_SPEC and EXPIRES not in _annotations(kube, bookinfo)
    log = _audit(state)
    assert [(e["by"], e["action"], e["outcome"]) for e in log] == [
        ("fault", "fault", "applied"), ("expiry", "expire fault", "applied"),
    ]  # fmt: skip
    assert log[0]["after"]["http"][0]["fault"] == {
        "abort": {"httpStatus": 503, "percentage": {"value": 10.0}}
    }
    ends = datetime.fromisoformat(log[0]["annotations"][EXPIRES])
    applied_at = datetime.fromisoformat(log[0]["time"].replace("Z", "+00:00"))
    assert (ends - applied_at).total_seconds() >= 1.9  # time-boxed at 2 s, not less
    assert datetime.fromisoformat(log[1]["time"].replace("Z", "+00:00")) >= ends
    assert log[1]["after"] == REVIEWS_SPEC and log[1]["annotations"] == {EXPIRES: None}


def test_a_detached_fault_is_removed_by_fault_expire_and_one_removed_first_is_left(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """--detach returns at once; `fault --expire` before the end leaves it, after it
    removes it (by: expiry); a fault someone else removed first is said, nothing written,
    exit 0."""
    state = tmp_path / "state"
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    target = f"{bookinfo}/reviews"
    detached = _meshtop(config, state, "fault", target, "--delay", "2s:25%", "--match",
                        "header:end-user=jason", "--for", "2s", "--detach", "--yes")  # fmt: skip
    assert detached.returncode == 0, detached.stderr
    assert "meshtop fault --expire" in detached.stdout
    http = _spec(kube, VS, bookinfo)["http"]
    assert http[0]["name"] == "meshtop-fault" and http[0]["fault"]["delay"] == {
        "fixedDelay": "2s", "percentage": {"value": 25.0}
    }  # fmt: skip
    early = _meshtop(config, state, "fault", "--expire", "-n", bookinfo)
    assert early.returncode == 0 and "no fault is past its end" in early.stdout
    time.sleep(3)
    expired = _meshtop(config, state, "fault", "--expire", "-n", bookinfo)
    assert expired.returncode == 0, expired.stderr
    assert f"VirtualService {bookinfo}/reviews: the fault's time was up; removed" in expired.stdout
    assert _spec(kube, VS, bookinfo) == REVIEWS_SPEC
    assert [e["by"] for e in _audit(state)] == ["fault", "expiry"]

    # a second fault, removed by someone else between meshtop's read and its write
    again = _meshtop(config, state, "fault", target, "--abort", "500:1%", "--for", "1s",
                     "--detach", "--yes")  # fmt: skip
    assert again.returncode == 0, again.stderr
    time.sleep(2)
    annotation = f"/metadata/annotations/{EXPIRES.replace('/', '~1')}"
    by_hand = [{"op": "remove", "path": "/spec/http/0/fault"},
               {"op": "remove", "path": annotation}]  # fmt: skip

    def removed_by_hand() -> None:
        kube.patch(VS, bookinfo, "reviews", by_hand)

    with interposed(kube) as proxy:
        proxy.before_next_write = removed_by_hand
        via = kube.kubeconfig(tmp_path / "via", server=proxy.url)
        late = _meshtop(via, state, "fault", "--expire", target)
    assert late.returncode == 0, late.stdout + late.stderr
    assert "someone removed the fault first; nothing written" in late.stdout
    assert _spec(kube, VS, bookinfo) == REVIEWS_SPEC
    gone = _meshtop(config, state, "fault", "--expire", target)  # nothing left to expire
    assert gone.returncode == 0 and "no fault end set" in gone.stdout
    assert [e["outcome"].partition(":")[0] for e in _audit(state)][-2:] == ["applied", "conflict"]


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT as a terminal's Ctrl-C finds it: a test suite run as a background job (`&`
    in a script) has it ignored, which a child inherits, and Python then sets no
    KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_while_waiting_leaves_the_fault_and_says_how_to_remove_it(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    target = f"{bookinfo}/reviews"
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshtop", "fault", target, "--kubeconfig", str(config),
         "--abort", "503:50%", "--for", "10m", "--yes"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=env, preexec_fn=_ctrl_c_as_in_a_terminal,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("waiting until"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted; the fault stays until removed" in err
    assert f"`meshtop fault {target} --clear`" in err
    assert _spec(kube, VS, bookinfo)["http"][0]["fault"]["abort"]["httpStatus"] == 503
    cleared = _meshtop(config, tmp_path / "state", "fault", target, "--clear", "--yes")
    assert cleared.returncode == 0, cleared.stderr
    assert _spec(kube, VS, bookinfo) == REVIEWS_SPEC and EXPIRES not in _annotations(kube, bookinfo)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--abort", "503:150%"), "not a percentage above 0 and at most 100"),
        (("--abort", "700:10%"), "a status from 200 to 599"),
        (("--delay", "soon:10%"), "not a positive duration"),
        (("--abort", "503:10%", "--for", "0s"), "--for '0s' is not a positive duration"),
        (("--clear", "--abort", "503:10%"), "give --abort and/or --delay, or --clear"),
    ],
)
def test_fault_values_are_checked_before_any_request(
    kube: KubeServer, bookinfo: str, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    with interposed(kube) as proxy:
        config = kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url)
        result = _meshtop(config, tmp_path, "fault", f"{bookinfo}/reviews", *args, "--yes")
    assert result.returncode == 2 and says in _one_line(result)
    assert proxy.requests == []


# -- timeouts, retries and circuit breakers -----------------------------------------------


def test_timeout_and_retries_are_set_then_taken_off(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    target = f"{bookinfo}/reviews"
    done = _meshtop(config, state, "resilience", target, "--timeout", "2s", "--retries", "3",
                    "--per-try-timeout", "500ms", "--retry-on", "5xx,reset", "--yes")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "rule 0: timeout 2s, retries: 3 attempts, 500ms each, on 5xx,reset" in done.stdout
    rule = _spec(kube, VS, bookinfo)["http"][0]
    assert rule["timeout"] == "2s"
    assert rule["retries"] == {"attempts": 3, "perTryTimeout": "500ms", "retryOn": "5xx,reset"}
    bad = _meshtop(config, state, "resilience", target, "--retry-on", "5xx,sometimes", "--yes")
    assert bad.returncode == 2 and "sometimes is not a condition Envoy retries on" in _one_line(bad)
    off = _meshtop(config, state, "resilience", target, "--timeout", "off", "--retries", "default",
                   "--yes")  # fmt: skip
    assert off.returncode == 0, off.stderr
    assert _spec(kube, VS, bookinfo) == REVIEWS_SPEC
    assert [(e["by"], e["outcome"]) for e in _audit(state)] == [("resilience", "applied")] * 2


def test_a_circuit_breaker_on_a_subset_and_the_schemas_own_refusal_in_the_dry_run(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """meshtop lets any positive count through; Istio's schema bounds consecutive5xxErrors
    at 2^32-1: the server's dry run refuses it (422), said as the server says it, exit 2,
    not a conflict, nothing written. Then a valid one for subset v3, and --clear."""
    state = tmp_path / "state"
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    target = f"{bookinfo}/reviews"
    before = _spec(kube, DR, bookinfo)
    refused = _meshtop(config, state, "breaker", target, "--subset", "v3",
                       "--consecutive-errors", "5000000000", "--yes")  # fmt: skip
    said = _one_line(refused)
    assert refused.returncode == 2, said
    assert "should be less than or equal to 4294967295" in said
    assert "changed since it was read" not in said
    assert _spec(kube, DR, bookinfo) == before
    done = _meshtop(config, state, "breaker", target, "--subset", "v3", "--max-connections", "1",
                    "--max-pending", "1", "--consecutive-errors", "5", "--interval", "10s",
                    "--ejection", "30s", "--max-ejection", "50", "--yes")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "interval 10s" in done.stdout and "for subset v3" in done.stdout
    v3 = next(s for s in _spec(kube, DR, bookinfo)["subsets"] if s["name"] == "v3")
    assert v3["trafficPolicy"] == {
        "connectionPool": {"tcp": {"maxConnections": 1}, "http": {"http1MaxPendingRequests": 1}},
        "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s",
                             "baseEjectionTime": "30s", "maxEjectionPercent": 50},
    }  # fmt: skip
    cleared = _meshtop(config, state, "breaker", target, "--subset", "v3", "--clear", "--yes")
    assert cleared.returncode == 0, cleared.stderr
    assert _spec(kube, DR, bookinfo) == before
    assert [e["outcome"].partition(":")[0] for e in _audit(state)] == [
        "refused by the server's dry run", "applied", "applied",
    ]  # fmt: skip
