"""Every export format, from the simulated Bookinfo at a fixed moment: compared with its
golden file (`MESHTOP_UPDATE_GOLDEN=1` writes them anew after a deliberate change; read the
diff), and each checked by what reads it: HTML parsed, DOT by Graphviz, SVG as XML, CSV by
the csv module, JSON by its schema."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from importlib import resources

import jsonschema
import pytest

from meshtop.export import FORMATS, renderer
from meshtop.mesh import refresh
from meshtop.report import Report
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, generated, spread

from .conftest import ROOT, need

AT = 1_760_000_000.0  # 2025-10-09T08:53:20Z: a fixed, past moment
GOLDEN = ROOT / "tests" / "golden"
SUFFIX = {"markdown": "md", "mermaid": "mmd"}


def _report(services: int | None = None) -> Report:
    sim = Simulation(generated(services, seed=3) if services else bookinfo(), clock=lambda: AT)
    return Report(asyncio.run(refresh(sim.clusters, window_s=60, clock=lambda: AT)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_matches_its_golden_file(fmt: str) -> None:
    text = renderer(fmt)(_report())
    golden = GOLDEN / f"bookinfo.{SUFFIX.get(fmt, fmt)}"
    if os.environ.get("MESHTOP_UPDATE_GOLDEN") == "1":
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden.name}: run with MESHTOP_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.rows: dict[str, int] = {}
        self._table = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("id") or ""
        if tag == "tr" and self._table and "tbody" in self.open:
            self.rows[self._table] = self.rows.get(self._table, 0) + 1
        if tag not in ("meta", "br", "img", "input", "link", "path", "rect", "polyline"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            while self.open.pop() != tag:
                pass


def test_html_is_one_self_contained_page_with_the_drawing_and_sortable_tables() -> None:
    report = _report()
    page = _Html()
    page.feed(renderer("html")(report))
    names = [t for t, _ in page.tags]
    assert names[0] == "html" and "svg" in names and "script" in names and "style" in names
    # nothing fetched from elsewhere: no stylesheet link, no script or image source
    assert not any(t == "link" or "src" in a for t, a in page.tags)
    hrefs = [a.get("href") for _, a in page.tags if "href" in a]
    assert all(h is None or h.startswith("#") for h in hrefs)
    assert page.rows["edges-table"] == len(report.snapshot.edges)
    assert page.rows["plaintext"] == len(report.plaintext) == 2
    tables = [a.get("class") for t, a in page.tags if t == "table"]
    assert tables and all(c == "sortable" for c in tables)
    nodes = [a for t, a in page.tags if t == "g" and (a.get("class") or "").startswith("node ")]
    assert len(nodes) == len(report.snapshot.nodes)
    assert any(a.get("class") == "node failing" for a in nodes)


def test_svg_is_well_formed_and_draws_every_node_and_call() -> None:
    report = _report(services=40)
    root = ET.fromstring(renderer("svg")(report))
    ns = "{http://www.w3.org/2000/svg}"
    groups = [g.get("class", "") for g in root.iter(f"{ns}g")]
    assert sum(c.startswith("node ") for c in groups) == len(report.snapshot.nodes)
    assert sum(c.startswith("edge ") for c in groups) == len(report.snapshot.edges)


def test_dot_is_read_by_graphviz() -> None:
    dot = shutil.which("dot")
    need(dot is not None, "Graphviz's dot is not installed (make test installs it as root)")
    assert dot is not None
    for report in (_report(), _report(services=40)):
        done = subprocess.run(
            [dot, "-Tsvg"], input=renderer("dot")(report), capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # no warnings either
        assert done.stdout.count('class="node"') == len(report.snapshot.nodes)
        assert done.stdout.count('class="edge"') == len(report.snapshot.edges)


def test_csv_has_one_row_per_edge_worst_first_with_plain_numbers() -> None:
    report = _report()
    rows = list(csv.DictReader(io.StringIO(renderer("csv")(report))))
    assert len(rows) == len(report.snapshot.edges)
    assert rows[0]["destination"] == "Kubernetes/bookinfo/reviews-v3"
    assert rows[0]["health"] == "failing"
    assert 0.05 < float(rows[0]["error_rate"]) < 0.2
    tcp = next(r for r in rows if r["protocol"] == "tcp")
    assert tcp["rps"] == "" and tcp["p99_ms"] == "" and float(tcp["tcp_connections_per_s"]) > 0


def test_mermaid_names_every_node_and_styles_every_link() -> None:
    report = _report()
    text = renderer("mermaid")(report)
    assert text.startswith("flowchart LR\n")
    assert text.count(" -->|") == len(report.snapshot.edges)
    assert text.count("  linkStyle ") == len(report.snapshot.edges)
    v3 = re.search(r'(n\d+)\["reviews-v3"\]', text)
    assert v3 is not None and f"class {v3.group(1)} failing" in text


def test_json_carries_the_security_posture_within_its_schema() -> None:
    schema = json.loads(
        resources.files("meshtop.export").joinpath("snapshot.schema.json").read_text("utf-8")
    )
    doc = json.loads(renderer("json")(_report()))
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)
    plain = {(e["source"], e["destination"]) for e in doc["security"]["plaintext_edges"]}
    assert ("unknown/unknown/unknown", "Kubernetes/bookinfo/productpage-v1") in plain
    assert {p["id"] for p in doc["security"]["without_proxy"]} == {
        "unknown/unknown/unknown", "external/external/www.googleapis.com",
    }  # fmt: skip


def _odd_report() -> Report:
    """Names a renderer must escape, and a workload that calls itself."""
    from datetime import UTC, datetime

    from meshtop.mesh import build_snapshot
    from meshtop.model import Edge, EdgeStats

    odd = 'c/ns/`tick` "quoted" <b>#quot;'
    snapshot = build_snapshot(
        generated_at=datetime(2027, 1, 1, tzinfo=UTC),
        window_s=60,
        workloads=[],
        edges=[
            Edge("c/ns/a", odd, EdgeStats(rps=1.0, mtls=1.0)),
            Edge("c/ns/a", "c/ns/a", EdgeStats(rps=2.0, mtls=1.0)),
        ],
        routes=[],
        sources={},
    )
    return Report(snapshot)


def test_mermaid_escapes_what_it_would_read_as_markup() -> None:
    text = renderer("mermaid")(_odd_report())
    assert '["#96;tick#96; #quot;quoted#quot; #lt;b#gt;#35;quot;"]' in text
    assert "`" not in text and "<b>" not in text


def test_svg_draws_a_workload_calling_itself_and_escapes_names() -> None:
    report = _odd_report()
    svg = renderer("svg")(report)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    edges = [g for g in root.iter(f"{ns}g") if g.get("class", "").startswith("edge ")]
    assert len(edges) == len(report.snapshot.edges) == 2
    assert "<b>" not in svg


def _clusters_report() -> Report:
    sim = Simulation(spread(bookinfo(), ("east", "west")), clock=lambda: AT)
    return Report(asyncio.run(refresh(sim.clusters, window_s=60, clock=lambda: AT)))


def test_every_format_over_two_clusters_names_the_cluster() -> None:
    report = _clusters_report()
    doc = json.loads(renderer("json")(report))
    assert {n["cluster"] for n in doc["nodes"]} >= {"east", "west"}
    assert all(n["id"].startswith(n["cluster"] + "/") for n in doc["nodes"])
    assert {(r["cluster"], r["name"]) for r in doc["routes"] if r["name"] == "reviews"} == {
        ("east", "reviews"),
        ("west", "reviews"),
    }
    assert set(doc["sources"]) == {"metrics", "control_plane:east", "control_plane:west"}
    # a table row names the cluster: the same workload runs in both
    markdown = renderer("markdown")(report)
    assert "| west/bookinfo/productpage-v1 | east/bookinfo/reviews-v3 |" in markdown
    rows = list(csv.DictReader(io.StringIO(renderer("csv")(report))))
    assert {r["source"] for r in rows} >= {
        "east/bookinfo/productpage-v1",
        "west/bookinfo/productpage-v1",
    }
    mermaid = renderer("mermaid")(report)
    assert 'subgraph cl0["cluster east"]' in mermaid and 'subgraph cl1["cluster west"]' in mermaid
    assert "⇄ west → east" in mermaid
    svg = renderer("svg")(report)
    root = ET.fromstring(svg)
    clusters = [
        g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "cluster"
    ]
    assert len(clusters) == 2
    assert svg.count(" ⇄</text>") == 2  # the two calls between clusters


def test_dot_over_two_clusters_nests_namespaces_in_clusters() -> None:
    dot = shutil.which("dot")
    need(dot is not None, "Graphviz's dot is not installed (make test installs it as root)")
    assert dot is not None
    report = _clusters_report()
    text = renderer("dot")(report)
    assert 'label="cluster east"' in text and 'label="cluster west"' in text
    done = subprocess.run(
        [dot, "-Tsvg"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    # Graphviz draws a box per namespace per cluster, and one per mesh cluster round them
    assert done.stdout.count('class="cluster"') == 2 + 2 * 2 + 2  # + external, unknown
