"""The command as a user runs it: a real process, its exit code and what it prints."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def meshtop(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshtop", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


def test_help_lists_every_command_with_a_description() -> None:
    result = meshtop("--help")
    assert result.returncode == 0
    for command in ("demo", "export", "sim"):
        line = next(ln for ln in result.stdout.splitlines() if ln.strip().startswith(command + " "))
        assert len(line.split(None, 1)[1]) > 10, line


def test_start_up_imports_nothing_heavy() -> None:
    """`meshtop --help` must not pay for Textual, networkx, httpx, YAML or the simulator."""
    code = (
        "import sys\n"
        "from meshtop.cli import app\n"
        "try:\n    app(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "heavy = ('textual', 'networkx', 'httpx', 'yaml', 'prometheus_api_client', 'meshtop.sim')\n"
        "loaded = [m for m in sys.modules\n"
        "          if m.split('.')[0] in heavy or m.startswith('meshtop.sim')]\n"
        "print(sorted(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "--demo", "--format", "xml"], "'xml' is not one of 'json', 'markdown'"),
        (["export", "--demo", "--services", "-3"], "Invalid value for '--services'"),
        (["export", "--demo", "--services", "lots"], "Invalid value for '--services'"),
        (["export", "--bogus"], "No such option: --bogus"),
        (["export", "--demo", "--window", "5x"], "window '5x' is not a positive duration"),
        (["export"], "no metrics backend is configured: give --prometheus URL"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["--config", "/nonexistent/meshtop.toml", "export", "--demo"], "cannot be read"),
        (["demo"], "the console needs a terminal; for scripts use `meshtop export`"),
        (["sim", "serve", "--port", "70000"], "Invalid value for '--port'"),
    ],
)
def test_bad_input_ends_in_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = meshtop(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("meshtop: ")
    assert message in lines[0]
    assert result.stdout == ""


def test_bad_config_file_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("window = [1, 2\n")
    result = meshtop("--config", str(config), "export", "--demo")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "is not valid TOML" in result.stderr


def test_export_demo_prints_json_and_markdown() -> None:
    doc = json.loads(meshtop("export", "--demo").stdout)
    assert doc["schema"] == 1 and len(doc["edges"]) == 10  # the VM's call to ratings among them
    text = meshtop("export", "--demo", "--format", "markdown", "--window", "5m").stdout
    assert text.startswith("# meshtop report") and "over a 5m window" in text


def test_export_of_a_generated_mesh() -> None:
    doc = json.loads(meshtop("export", "--demo", "--services", "40", "--seed", "2").stdout)
    services = {
        n["app"]
        for n in doc["nodes"]
        if n["kind"] == "workload" and n["namespace"] != "istio-system"
    }
    assert len(services) == 40


def test_version() -> None:
    result = meshtop("--version")
    assert result.returncode == 0 and result.stdout.startswith("meshtop ")


def test_options_before_the_command_reach_it() -> None:
    text = meshtop("--window", "5m", "export", "--demo", "--format", "markdown").stdout
    assert "over a 5m window" in text
    bad = meshtop("--window", "bogus", "export", "--demo")
    assert bad.returncode == 2 and "window 'bogus'" in bad.stderr
    # the command's own option wins
    assert (
        "over a 2m window"
        in meshtop("--window", "5m", "export", "--demo", "-f", "markdown", "--window", "2m").stdout
    )


@pytest.mark.parametrize("services", ["1", "25", "300"])
def test_every_generated_export_meets_the_schema(services: str) -> None:
    from importlib import resources

    import jsonschema

    schema = json.loads(
        resources.files("meshtop.export").joinpath("snapshot.schema.json").read_text()
    )
    result = meshtop("export", "--demo", "--services", services)
    assert result.returncode == 0 and result.stderr == ""
    checker = jsonschema.FormatChecker()
    jsonschema.Draft202012Validator(schema, format_checker=checker).validate(
        json.loads(result.stdout)
    )


def test_export_grades_with_the_configured_thresholds(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[health]\nerrors_degraded = "20%"\nerrors_failing = "50%"\n')
    doc = json.loads(meshtop("--config", str(config), "export", "--demo").stdout)
    v3 = next(
        e
        for e in doc["edges"]
        if e["destination"].endswith("reviews-v3") and "productpage" in e["source"]
    )
    assert v3["health"] == "healthy"  # 10.5 to 19.5% errors: under the lenient 20%


def test_edge_prints_the_panels_of_an_edge() -> None:
    result = meshtop("edge", "--demo", "productpage-v1", "bookinfo/reviews-v3", "--window", "1h")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("bookinfo/productpage-v1 → bookinfo/reviews-v3   window 1h")
    # v3's error rate drifts around 15% with the live clock (10.5 to 19.5%): failing
    assert re.search(r"^(failing|degraded): errors \d+\.\d\d%", out, re.MULTILINE)
    for seen in ("Requests", "Errors", "HTTP 5xx", "Latency", "-30m",
                 "upstream connection failure", "never arrived", "client identity",
                 "reviews: versions side by side", "v3 ◂"):  # fmt: skip
        assert seen in out, seen
    assert "\x1b[" not in out  # no colour into a pipe


def test_edge_json_has_every_point_and_nulls_for_gaps() -> None:
    result = meshtop("edge", "--demo", "productpage-v1", "reviews-v3", "-f", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == 1 and doc["window"] == "15m" and doc["step_seconds"] == 10
    assert doc["source"] == "Kubernetes/bookinfo/productpage-v1"
    assert len(doc["points"]) == 91
    assert doc["points"][-1]["time"].endswith("Z") and doc["points"][-1]["errors"]["5xx"] > 0
    assert doc["summary"]["by_reporter"]["source"] > doc["summary"]["by_reporter"]["destination"]
    assert [c["version"] for c in doc["canary"]] == ["v1", "v2", "v3"]
    assert sum(c["share"] for c in doc["canary"]) == pytest.approx(1, abs=0.01)
    # a node that has no traffic to the edge's other end: every point a gap, never 0
    quiet = json.loads(meshtop("edge", "--demo", "reviews-v1", "ratings-v1", "-f", "json").stdout)
    assert {p["rps"] for p in quiet["points"]} == {None}
    assert quiet["summary"]["error_rate"] is None


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("--demo", "nope", "reviews-v3"), 2, "no node 'nope' in the mesh"),
        (("--demo", "productpage-v1", "reviews-v3", "--window", "2s"), 2, "choose between 1m"),
        (("--demo", "productpage-v1", "reviews-v3", "-f", "yaml"), 2, "'yaml' is not one of"),
        (("productpage-v1", "reviews-v3"), 2, "no metrics backend is configured"),
        (("--prometheus", "http://127.0.0.1:9", "a", "b"), 3, "cannot reach Prometheus"),
    ],
)
def test_edge_errors_are_one_line_and_an_exit_code(
    args: tuple[str, ...], code: int, says: str
) -> None:
    result = meshtop("edge", *args)
    assert result.returncode == code
    assert result.stderr.startswith("meshtop: ") and says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout


# -- export: formats, selection, gates, files ----------------------------------------

PAST = "2025-10-09T08:53:20Z"


def test_export_writes_every_format_to_stdout() -> None:
    for fmt, starts in (("html", "<!DOCTYPE html>"), ("csv", "source,destination"),
                        ("dot", "digraph mesh {"), ("mermaid", "flowchart LR"),
                        ("svg", "<?xml")):  # fmt: skip
        result = meshtop("export", "--demo", "--at", PAST, "-f", fmt)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(starts) and result.stderr == ""


def test_export_selects_the_worst_edges_one_edge_or_a_namespace() -> None:
    top = json.loads(meshtop("export", "--demo", "--top", "2").stdout)
    assert len(top["edges"]) == 2 and top["scope"] == ["the 2 worst edges"]
    assert top["edges"][0]["destination"].endswith("reviews-v3") or top["edges"][1][
        "destination"
    ].endswith("reviews-v3")
    one = json.loads(meshtop("export", "--demo", "--edge", "productpage-v1", "details-v1").stdout)
    assert [(e["source"], e["destination"]) for e in one["edges"]] == [
        ("Kubernetes/bookinfo/productpage-v1", "Kubernetes/bookinfo/details-v1")
    ]
    assert {n["id"] for n in one["nodes"]} == {
        "Kubernetes/bookinfo/productpage-v1", "Kubernetes/bookinfo/details-v1",
    }  # fmt: skip
    gateway = json.loads(
        meshtop("export", "--demo", "--services", "30", "-n", "istio-system").stdout
    )
    assert gateway["edges"] and all(
        "/istio-system/" in e["source"] or "/istio-system/" in e["destination"]
        for e in gateway["edges"]
    )


def test_export_at_a_past_moment_is_that_moment() -> None:
    a = json.loads(meshtop("export", "--demo", "--at", PAST).stdout)
    b = json.loads(meshtop("export", "--demo", "--at", "1760000000").stdout)
    assert a["generated_at"] == b["generated_at"] == PAST
    assert a["edges"] == b["edges"]  # the same moment, the same traffic


def test_gates_pass_and_fail_with_every_violation_said(tmp_path: Path) -> None:
    ok = meshtop("export", "--demo", "--fail-on", "error_rate>50%", "--fail-on", "p99>5s")
    assert ok.returncode == 0 and ok.stderr == ""
    out = tmp_path / "report.md"
    bad = meshtop(
        "export", "--demo", "-f", "markdown", "-o", str(out),
        "--fail-on", "error_rate>1%", "--fail-on", "mtls<100%", "--fail-on", "bookinfo/*:p99>100ms",
    )  # fmt: skip
    assert bad.returncode == 1
    lines = bad.stderr.splitlines()
    assert lines[0] == "meshtop: 4 gate violations:"
    assert (
        "  error_rate>1%: bookinfo/productpage-v1 → bookinfo/reviews-v3 has error_rate"
        in (lines[1])
    )
    assert any("mtls<100%: unknown → bookinfo/productpage-v1 has mtls 0.00%" in ln for ln in lines)
    assert any("mtls<100%: bookinfo/details-v1 → www.googleapis.com" in ln for ln in lines)
    assert any(
        ln.startswith("  bookinfo/*:p99>100ms: bookinfo/productpage-v1 → bookinfo/reviews-v3")
        for ln in lines
    )
    assert out.read_text().startswith("# meshtop report")  # the report is written all the same


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("--fail-on", "latency>1s"), 2, "no metric 'latency'"),
        (("--fail-on", "p99>fast"), 2, "'fast' is not a value for p99"),
        (("--fail-on", "error_rate"), 2, "write METRIC OP VALUE"),
        (("--at", "yesterday"), 2, "is not a time"),
        (("--at", "2099-01-01T00:00:00Z"), 2, "is in the future"),
        (("--at", "2025-10-09T08:53:20"), 2, "give a time zone"),
        (("--edge", "productpage-v1", "nope"), 2, "no node 'nope' in the mesh"),
        (("--top", "0"), 2, "--top"),
        (("-f", "pdf"), 2, "'pdf' is not one of"),
        (("-o", "/nonexistent/dir/report.json"), 2, "cannot write the report to"),
        (("--edge", "reviews-v1", "ratings-v1", "--fail-on", "rps<1"), 1, "no edges to check"),
    ],
)
def test_export_errors_are_one_line_and_an_exit_code(
    args: tuple[str, ...], code: int, says: str
) -> None:
    result = meshtop("export", "--demo", *args)
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("meshtop: ") and says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_backend_fails_fast_and_leaves_the_old_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    out.write_text("yesterday's report\n")
    result = meshtop(
        "export", "--prometheus", "http://127.0.0.1:9", "-o", str(out), "--fail-on", "p99>1s"
    )
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "meshtop: cannot reach Prometheus at http://127.0.0.1:9: connection refused"
    )
    assert result.stdout == "" and out.read_text() == "yesterday's report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left over


def test_output_file_is_replaced_whole(tmp_path: Path) -> None:
    out = tmp_path / "mesh.html"
    out.write_text("old")
    result = meshtop("export", "--demo", "-f", "html", "-o", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # a normal file, not mkstemp's
    assert [p.name for p in tmp_path.iterdir()] == ["mesh.html"]


# -- export: where the report goes --------------------------------------------------


def test_output_follows_a_symlink_and_keeps_a_private_file_private(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    real.chmod(0o600)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert meshtop("export", "--demo", "-o", str(link)).returncode == 0
    assert link.is_symlink() and json.loads(real.read_text())["schema"] == 1
    assert real.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]


def test_output_to_a_pipe_or_dash_is_written_not_replaced(tmp_path: Path) -> None:
    dash = meshtop("export", "--demo", "-f", "csv", "-o", "-")
    assert dash.returncode == 0 and dash.stdout.startswith("source,destination")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    result = meshtop("export", "--demo", "-f", "csv", "-o", str(fifo))
    out, _ = reader.communicate(timeout=30)
    assert result.returncode == 0 and out.startswith("source,destination")
    assert fifo.is_fifo()  # still the pipe, not a file put in its place


def test_on_a_terminal_progress_goes_to_stderr_and_the_report_to_stdout(tmp_path: Path) -> None:
    import pty

    leader, follower = pty.openpty()
    out = tmp_path / "report.csv"
    with out.open("w") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "meshtop", "export", "--demo", "--services", "8000",
             "-f", "csv"],
            stdout=stdout, stderr=follower, stdin=subprocess.DEVNULL, timeout=120, check=False,
        )  # fmt: skip
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert done.returncode == 0
    text = out.read_text()
    assert text.startswith("source,destination") and text.count("\n") > 1000
    assert b"source,destination" not in seen  # the report never went to the terminal
    assert b"asking simulated" in seen or b"rendering csv" in seen  # the spinner did


def test_gates_judge_the_whole_scope_when_only_the_worst_edges_are_shown() -> None:
    result = meshtop("export", "--demo", "--top", "1", "-f", "markdown", "--fail-on", "mtls<100%")
    assert result.returncode == 1 and "2 gate violations" in result.stderr
    assert "Every call is on mutual TLS" not in result.stdout
    assert "| unknown | bookinfo/productpage-v1 |" in result.stdout  # the posture still says


def test_a_gate_whose_scope_matches_nothing_fails() -> None:
    result = meshtop("export", "--demo", "--fail-on", "shopp/*:error_rate>0%")
    assert result.returncode == 1
    assert "its scope matches no edge to check" in result.stderr


def test_a_selection_that_matches_nothing_says_so() -> None:
    result = meshtop("export", "--demo", "-n", "nosuchns")
    assert result.returncode == 0
    assert "meshtop: warning: no edge matched namespace nosuchns" in result.stderr


# -- traces ---------------------------------------------------------------------------


def test_traces_of_an_edge_then_one_of_them() -> None:
    listed = meshtop("traces", "--demo", "--edge", "productpage-v1", "reviews-v3", "-f", "json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)["traces"]
    assert found and [t["duration_us"] for t in found] == sorted(
        (t["duration_us"] for t in found), reverse=True
    )
    shown = meshtop("trace", "--demo", found[0]["trace_id"])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"trace {found[0]['trace_id']}")
    # the server span of reviews, indented under its caller (how deep: whoever started it)
    assert re.search(r"\n {2,}reviews\.bookinfo reviews\.bookinfo\.", shown.stdout)
    spans = json.loads(meshtop("trace", "--demo", found[0]["trace_id"], "-f", "json").stdout)
    assert (
        spans["trace_id"] == found[0]["trace_id"] and len(spans["spans"]) == found[0]["span_count"]
    )
    first = spans["spans"][0]
    assert set(first) == {"span_id", "parent_id", "service", "operation", "kind", "start_us",
                          "duration_us", "error", "tags"}  # fmt: skip


def test_trace_reads_a_real_zipkin_payload_over_http(tmp_path: Path, fixtures: Path) -> None:
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    (tmp_path / "api" / "v2" / "trace").mkdir(parents=True)
    payload = (fixtures / "zipkin" / "skew.json").read_bytes()
    (tmp_path / "api" / "v2" / "trace" / "1e223ff1f80f1c69").write_bytes(payload)

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(tmp_path), **kw)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"zipkin=http://127.0.0.1:{server.server_address[1]}"
        result = meshtop("trace", "1E223FF1F80F1C69", "--tracing", url)
        assert result.returncode == 0, result.stderr
        assert "(skew" in result.stdout and "serviceb async" in result.stdout
        missing = meshtop("trace", "0000000000000001", "--tracing", url)
        assert missing.returncode == 3
        assert missing.stderr.strip().startswith(
            "meshtop: trace 0000000000000001 not found in Zipkin"
        )
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("trace", "xyz", "--demo"), 2, "is not a trace id"),
        (("trace", "00" * 16), 2, "no trace backend is configured"),
        (("trace", "00" * 16, "--tracing", "jaeger"), 2, "write jaeger=URL"),
        (("trace", "00" * 16, "--tracing", "jaeger=http://127.0.0.1:9"), 3, "cannot reach Jaeger"),
        (("trace", "00" * 16, "--demo"), 3, "not found in the simulated mesh"),
        (("traces", "--demo"), 2, "give --edge SRC DST or --node NODE"),
        (("traces", "--demo", "--node", "nope"), 2, "no node 'nope'"),
    ],
)
def test_trace_errors_are_one_line_and_an_exit_code(
    args: tuple[str, ...], code: int, says: str
) -> None:
    result = meshtop(*args)
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("meshtop: ") and says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- rollout --------------------------------------------------------------------------


def test_rollout_promotes_a_good_canary_and_refuses_one_that_already_fails(
    tmp_path: Path,
) -> None:
    """The demo's v3 fails ~10% of its requests at its 10%: moving it to 60% (as the
    issue saw) is refused before any write, with the figures, exit 1 (a gate)."""
    env = {"XDG_STATE_HOME": str(tmp_path)}
    good = meshtop("rollout", "--demo", "bookinfo/reviews", "--to", "v2", "--step", "50",
                   "--interval", "1s", "--max-p99", "500ms", "--yes", env=env)  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines()[-1] == "promoted: v2 takes all of v1's traffic"
    log = [
        json.loads(line) for line in (tmp_path / "meshtop" / "audit.jsonl").read_text().splitlines()
    ]
    assert log and all(e["by"] == "rollout" for e in log)
    applied = [e["after"] for e in log if e["outcome"] == "applied"]
    assert applied == [{"v1": 20, "v2": 70, "v3": 10}, {"v1": 0, "v2": 90, "v3": 10}]
    bad = meshtop("rollout", "--demo", "bookinfo/reviews", "--to", "v3", "--step", "50",
                  "--interval", "1s", "--yes", env=env)  # fmt: skip
    assert bad.returncode == 1, bad.stderr
    last = bad.stdout.splitlines()[-1]
    assert last.startswith("refused: v3 already breaks the gates at v1=70,v2=20,v3=10 (errors ")
    assert last.endswith("> 1.00%); nothing was written")
    after = (tmp_path / "meshtop" / "audit.jsonl").read_text().splitlines()
    assert len(after) == len(log)  # nothing was written, nothing was logged


def test_rollout_asks_or_needs_yes() -> None:
    result = meshtop("rollout", "--demo", "bookinfo/reviews", "--to", "v2")
    assert result.returncode == 2 and "give --yes" in result.stderr


def test_clusters_is_for_the_simulated_mesh_and_its_names_are_checked() -> None:
    result = meshtop("export", "--clusters", "2", "--prometheus", "http://127.0.0.1:9")
    assert result.returncode == 2 and "give it with --demo" in result.stderr
    result = meshtop("sim", "serve", "--clusters", "2", "--cluster", "north", "--port", "0")
    assert result.returncode == 2
    assert "no cluster 'north' in the simulated mesh; it has east, west" in result.stderr
    result = meshtop("export", "--demo", "--clusters", "3", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert {"east", "west", "south"} <= {
        line.split(",")[0].split("/")[0] for line in result.stdout.splitlines()[1:]
    }
