"""Every report format, from a snapshot whose names, codes, flags, routes and source
reasons were written by an attacker: no control byte gets through, SVG and HTML stay
valid, CSV cells are no formulas, Markdown starts nothing, DOT stays Graphviz's."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from meshtop.export import renderer
from meshtop.model import (
    Edge,
    EdgeStats,
    MeshSnapshot,
    Route,
    RouteRule,
    SourceHealth,
    SourceState,
    WeightedDestination,
    Workload,
)
from meshtop.report import Report

from .conftest import need

ESCAPES = "shop\x1b]2;PWNED\x1b\\\x1b]52;c;cHduZWQ=\x1b\\"
HOSTILE = ESCAPES + "\n# Owned\r<img src=x onerror=alert(1)>`\u202e\x9b[x](javascript:alert(1))"
FORMULA = "=cmd|' /C calc'!A0"
RAW = ("\x1b", "\x9b", "\u202e")
WHEN = datetime(2025, 10, 9, 8, 53, 20, tzinfo=UTC)


def _report() -> Report:
    a = Workload("", HOSTILE, FORMULA, app="a", version="v1")
    b = Workload("", "bookinfo", HOSTILE, app="b", version="v2")
    c = Workload("", "bookinfo", "reviews-v1", app="reviews", version="v1")
    stats = EdgeStats(rps=10.0, error_rate=0.5, p50_ms=1.0, p95_ms=2.0, p99_ms=3.0, mtls=0.5,
                      response_codes={HOSTILE: 5.0, "200": 5.0},
                      response_flags={HOSTILE: 5.0})  # fmt: skip
    rule = RouteRule((WeightedDestination(HOSTILE, HOSTILE, 100),), (HOSTILE,))
    route = Route("VirtualService", "", HOSTILE, FORMULA, (HOSTILE,), (rule,), "1")
    health = SourceHealth(HOSTILE, SourceState.FRESH, WHEN, reason=HOSTILE)
    snapshot = MeshSnapshot(
        generated_at=WHEN,
        window_s=60,
        nodes={w.id: w for w in (a, b, c)},
        edges=(Edge(a.id, b.id, stats, service=FORMULA), Edge(b.id, c.id, stats, service=HOSTILE)),
        routes=(route,),
        sources={"metrics": health},
    )
    return Report(snapshot)


@pytest.mark.parametrize("fmt", ["markdown", "csv", "dot", "mermaid", "svg", "html"])
def test_no_control_or_bidi_character_gets_through(fmt: str) -> None:
    out = renderer(fmt)(_report())
    assert "PWNED" in out  # the text is there, shown
    for raw in RAW:
        assert raw not in out, (fmt, raw)
    assert "\r" not in out


def test_json_keeps_the_values_exact() -> None:
    doc = json.loads(renderer("json")(_report()))
    assert HOSTILE in {n["namespace"] for n in doc["nodes"]}


def test_svg_is_valid_xml() -> None:
    root = ET.fromstring(renderer("svg")(_report()))
    assert root.tag.endswith("svg")
    assert any(HOSTILE.split("\n")[0].replace("\x1b", "␛") in (t.text or "") for t in root.iter())


class _Strict(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_html_has_no_injected_element() -> None:
    page = renderer("html")(_report())
    parser = _Strict()
    parser.feed(page)
    assert "img" not in parser.tags
    assert "<img" not in page
    svg = page[page.index("<svg") : page.index("</svg>") + len("</svg>")]
    ET.fromstring(svg)  # the drawing inside is valid XML too


def test_csv_cells_are_no_formulas() -> None:
    rows = list(csv.reader(io.StringIO(renderer("csv")(_report()))))
    assert len(rows) == 3  # header and one line per edge: a newline in a name is shown
    for row in rows[1:]:
        for cell in row[:3]:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
        assert float(row[4]) == 10.0  # our own numbers stay numbers


def test_csv_keeps_our_negative_numbers_as_numbers() -> None:
    from meshtop.export.csv_report import number

    assert number(-1.5) == "-1.5"


def test_markdown_starts_nothing() -> None:
    out = renderer("markdown")(_report())
    assert "<img" not in out
    assert not re.search(r"(?<!\\)\]\(javascript:", out)  # a link needs an unescaped ]
    assert not [line for line in out.splitlines() if line.startswith("# Owned")]
    assert not [line for line in out.splitlines() if "Owned" in line and line.startswith("#")]
    for line in out.splitlines():  # every table row keeps its columns
        if line.startswith("| ") and "Owned" in line:
            cells = [c for c in line.replace("\\|", "").split("|")]
            header_width = {4, 5, 11}  # sources and routes, plaintext, edges
            assert len(cells) - 2 in header_width, line


def test_markdown_code_span_is_not_broken_out_of() -> None:
    from dataclasses import replace

    from meshtop.export.markdown_report import render
    from meshtop.model import NodeKind

    report = _report()
    node = next(iter(report.snapshot.nodes.values()))
    peer = replace(node, name="x`<img src=x>`y", kind=NodeKind.UNKNOWN)
    snapshot = replace(report.snapshot, nodes={**report.snapshot.nodes, node.id: peer})
    out = render(Report(snapshot))
    assert "<img" not in out.replace("``x`<img src=x>`y``", "")
    assert "``x`<img src=x>`y``" in out or "<img" not in out


def test_dot_passes_graphviz() -> None:
    dot = shutil.which("dot")
    need(dot is not None, "Graphviz's dot is not installed (make tools)")
    assert dot is not None
    out = subprocess.run(
        [dot, "-Tsvg"], input=renderer("dot")(_report()).encode(), capture_output=True, check=True
    ).stdout
    ET.fromstring(out)
    for raw in RAW:
        assert raw.encode() not in out


def test_mermaid_labels_stay_quoted() -> None:
    out = renderer("mermaid")(_report())
    for line in out.splitlines():
        if "PWNED" in line:
            assert line.count('"') % 2 == 0, line
            assert "<" not in line and "`" not in line


# The other text sinks: `meshtop edge`'s panels, `meshtop trace`'s waterfall, stderr.


def test_edge_panels_show_hostile_codes_flags_and_routes() -> None:
    from rich.console import Console, Group

    from meshtop.model import WindowSummary
    from meshtop.panels import canary_view, routes_view, window_view

    summary = WindowSummary(rps=1.0, error_rate=0.0, response_codes={HOSTILE: 1.0},
                            response_flags={HOSTILE: 1.0}, source_principals=(HOSTILE,),
                            grpc_statuses={HOSTILE: 1.0})  # fmt: skip
    route = _report().snapshot.routes[0]
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=300, color_system=None)
    console.print(Group(window_view(summary, 60), routes_view([route]),
                        canary_view(HOSTILE, [], HOSTILE)))  # fmt: skip
    printed = out.getvalue()
    assert "PWNED" in printed and "␛]2;PWNED" in printed
    for raw in RAW:
        assert raw not in printed


def test_trace_waterfall_text_shows_hostile_span_fields() -> None:
    from meshtop.model import Span, Trace
    from meshtop.waterfall import Tree, text

    trace = Trace("t", (Span("a", None, ESCAPES, "\x9b\u202eop", 0, 10),))
    lines = "\n".join(text(Tree(trace), 200))
    assert "␛]2;PWNED" in lines
    for raw in RAW:
        assert raw not in lines


def test_an_error_is_said_shown_and_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshtop import cli
    from meshtop.errors import BackendError

    def fail(**_: object) -> None:
        raise BackendError(f"http://admin:P@ss/w#rd?x@host:9090/x answered {HOSTILE}")

    monkeypatch.setattr(cli, "app", fail)
    with pytest.raises(SystemExit) as ended:
        cli.main(["export"])
    assert ended.value.code == 3
    err = capsys.readouterr().err
    assert "http://admin:***@host:9090/x answered shop␛]2;PWNED" in err
    assert "P@ss" not in err and "w#rd" not in err
    for raw in RAW:
        assert raw not in err


def test_a_malformed_header_is_not_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    from meshtop import cli

    with pytest.raises(SystemExit) as ended:
        cli.main(["export", "--demo", "--prometheus-header", "Bearer s3cr3t-token"])
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert "NAME: VALUE" in err
    assert "s3cr3t" not in err
