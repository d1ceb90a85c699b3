"""The hand-off to other tools in the console: `y` copies the selection (a node, an edge,
a trace) to the clipboard and says it, `:promql` lists the queries behind it, `:open`
links to it in Grafana, Jaeger or Zipkin; `[console] clipboard = false`, and no `[links]`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from textual.pilot import Pilot
from textual.widgets import OptionList

from meshtop.config import Settings
from meshtop.config.links import Links
from meshtop.connect import Sources
from meshtop.graphview import Grouping, ViewOptions, build
from meshtop.history import history_step
from meshtop.mesh import refresh
from meshtop.model import Edge, EdgeStats, MeshSnapshot, Workload
from meshtop.sim.sources import Simulation
from meshtop.sources.dialects import ISTIO
from meshtop.sources.prometheus import history_queries
from meshtop.sources.protocols import ClusterSources
from meshtop.tui import handoff
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.handoff import HandoffScreen
from meshtop.tui.widgets.notice import Notice

from .test_console import _first_snapshot, keys, until
from .test_detail import PAGE, V3, _text
from .test_traces import drawn, listed

LINKS = Links(grafana="https://grafana.example/", grafana_datasource="prom",
              jaeger="https://jaeger.example/")  # fmt: skip


def _app(sim: Simulation, **settings: Any) -> MeshtopApp:
    sources = ClusterSources.one(sim.metrics, sim.control_plane, sim.traces)
    return MeshtopApp(Sources(sources, True, sim.clock), settings=Settings(**settings))


def _said(app: MeshtopApp) -> str:
    return " ".join(app.main.query_one(Notice).said)


async def _select(app: MeshtopApp, pilot: Pilot[None], node: str, peer: str = "") -> None:
    """The graph's node that draws `node` selected (or its edge to `peer`'s)."""
    view = app.main.graph.view
    assert view is not None
    at = next(n for n, v in view.nodes.items() if node in v.members)
    edge = next((k for k, e in view.edges.items() if (node, peer) in e.members), None)
    app.main._canvas().select(at, edge)
    await pilot.pause()


async def test_y_copies_the_selected_node_and_edge_and_says_so(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        await _select(app, pilot, V3)
        await keys(pilot, "y")
        assert app.clipboard == "reviews-v3"
        assert _said(app) == "copied: reviews-v3"
        await _select(app, pilot, PAGE, V3)
        await keys(pilot, "y")
        assert app.clipboard == "productpage-v1 → reviews-v3"
        assert _said(app) == "copied: productpage-v1 → reviews-v3"
        await keys(pilot, "g")  # by app: a node of three versions is named by its app
        await until(pilot, lambda: app.main.graph.options.grouping is Grouping.APP, "app graph")
        await _select(app, pilot, V3)
        await keys(pilot, "y")
        assert app.clipboard == "reviews"


async def test_with_the_clipboard_off_y_only_shows_the_name(sim: Simulation) -> None:
    app = _app(sim, clipboard=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        await _select(app, pilot, V3)
        await keys(pilot, "y")
        assert app.clipboard == ""  # nothing was written to the terminal
        assert _said(app) == "reviews-v3   (not copied: [console] clipboard = false)"


async def test_promql_lists_the_queries_and_y_copies_the_one_highlighted(
    sim: Simulation,
) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _select(app, pilot, PAGE, V3)
        await keys(pilot, "colon", *"promql", "enter")
        await until(pilot, lambda: isinstance(app.screen, HandoffScreen), "the queries")
        assert _text(app, "#handoff-title").strip() == "PromQL: productpage-v1 → reviews-v3"
        assert "simulated mesh" in _text(app, "#handoff-note")
        assert app.screen.query_one(OptionList).option_count == 3
        await keys(pilot, "down", "y")
        expected = history_queries(ISTIO, PAGE, V3, 60, history_step(900))
        assert app.clipboard == expected["latency"]
        assert _text(app, "#handoff-note").startswith("copied: latency p50 p95 p99")
        await keys(pilot, "escape")
        assert app.screen is app.main


async def test_open_without_links_says_which_key_to_set(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "colon", *"open", "enter")
        assert _said(app) == (
            "no link to open: set grafana or jaeger or zipkin under [links] in the config file"
        )
        await keys(pilot, "colon", *"open kibana", "enter")
        assert _said(app) == "open takes one of grafana, jaeger, zipkin, or nothing"
        assert app.clipboard == ""


async def test_open_links_the_selection_and_copies_the_link(sim: Simulation) -> None:
    app = _app(sim, links=LINKS)
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        await _select(app, pilot, V3)
        await keys(pilot, "colon", *"open jaeger", "enter")
        url = "https://jaeger.example/search?service=reviews.bookinfo&lookback=1h&limit=20"
        assert (app.clipboard, _said(app)) == (url, f"copied: {url}")
        await keys(pilot, "colon", *"open zipkin", "enter")
        assert _said(app).startswith(
            'no zipkin link: set zipkin = "https://zipkin.example/zipkin/"'
        )
        # Grafana by default: the detail's charts' queries, too long for the notice's lines
        await _select(app, pilot, PAGE, V3)
        await keys(pilot, "colon", *"open", "enter")
        await until(pilot, lambda: isinstance(app.screen, HandoffScreen), "the whole link")
        assert _said(app).startswith("copied: https://grafana.example/explore?schemaVersion=1&")
        panes = json.loads(parse_qs(urlsplit(app.clipboard).query)["panes"][0])
        expected = history_queries(ISTIO, PAGE, V3, 60, history_step(900))
        queries = panes["meshtop"]["queries"]
        assert [q["expr"] for q in queries] == [expected["codes"], expected["latency"]]
        assert panes["meshtop"]["datasource"] == "prom"
        assert _text(app, "#handoff-title").strip() == (
            "Link: productpage-v1 → reviews-v3 in Grafana"
        )
        assert _text(app, "#handoff-note").strip() == (
            f"copied: the whole link below, {len(app.clipboard):,} characters"
        )


async def test_y_and_o_on_the_trace_list_and_the_waterfall(sim: Simulation) -> None:
    app = _app(sim, links=LINKS)
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _select(app, pilot, PAGE, V3)
        await keys(pilot, "enter", "t")
        screen = await listed(app, pilot)
        first = screen.shown_traces()[0].trace_id
        await keys(pilot, "y")
        assert app.clipboard == first
        assert _text(app, "#traces-note").strip() == f"copied: {first}"
        await keys(pilot, "O")
        assert app.clipboard == f"https://jaeger.example/trace/{first}"
        await keys(pilot, "enter")
        await drawn(app, pilot)
        await keys(pilot, "y")
        assert app.clipboard == first
        assert _text(app, "#waterfall-note").strip() == f"copied: {first}"


async def test_o_on_a_trace_without_a_trace_link_says_which_key(sim: Simulation) -> None:
    app = _app(sim, links=Links(grafana="https://grafana.example/"))
    async with app.run_test(size=(120, 40)) as pilot:
        await _first_snapshot(app)
        await _select(app, pilot, PAGE, V3)
        await keys(pilot, "enter", "t")
        await listed(app, pilot)
        await keys(pilot, "O")
        assert _text(app, "#traces-note").strip() == (
            "no link to open: set jaeger or zipkin under [links] in the config file"
        )
        assert app.clipboard == ""


# -- the queries, as built for a selection --------------------------------------------------


def _console() -> Any:
    """What `promql` asks of the console: whether the mesh is simulated, the settings."""
    return SimpleNamespace(simulated=True, settings=Settings(), metrics=None, clusters={})


async def test_promql_of_an_edge_is_the_sources_own_for_its_two_ends(sim: Simulation) -> None:
    snapshot = await refresh(sim.clusters, window_s=60, timeout_s=5, clock=sim.clock)
    view = build(snapshot, ViewOptions())
    key = next(k for k, e in view.edges.items() if (PAGE, V3) in e.members)
    sel = handoff.selected(snapshot, view, None, key)
    assert sel is not None and sel.name == "productpage-v1 → reviews-v3"
    whose, found = handoff.promql(_console(), sel, 900)
    assert "simulated mesh" in whose and "Istio's metrics" in whose
    # the figures over the console's window (1m), the charts at the detail's step (15m)
    expected = history_queries(ISTIO, PAGE, V3, 60, history_step(900))
    assert [q.promql for q in found] == [expected[k] for k in ("codes", "latency", "window")]
    assert [q.ranged for q in found] == [True, True, False]
    assert 'destination_workload="reviews-v3"' in found[0].promql


def test_label_values_are_promql_strings_whatever_they_hold() -> None:
    """A label value with a quote, a backslash, a newline and an ESC in it, as a hostile
    or broken exporter may write: each query holds it as a PromQL string (Go's escapes,
    of which JSON's are a subset) that reads back as the value itself; the name copied
    shows its control characters instead of carrying them."""
    name = 'rev"iews\\v3\n\x1b[31m'
    a = Workload("Kubernetes", "bookinfo", "productpage-v1")
    b = Workload("Kubernetes", "bookinfo", name)
    edge = Edge(a.id, b.id, EdgeStats(rps=1.0))
    snapshot = MeshSnapshot(datetime.now(UTC), 60, {a.id: a, b.id: b}, (edge,), (), {})
    view = build(snapshot, ViewOptions(grouping=Grouping.WORKLOAD))
    sel = handoff.selected(snapshot, view, None, next(iter(view.edges)))
    assert sel is not None
    _, found = handoff.promql(_console(), sel, 900)
    for q in found:
        written = re.findall(r'destination_workload="((?:[^"\\]|\\.)*)"', q.promql)
        assert written and all(json.loads(f'"{w}"') == name for w in written), q.promql
        assert "\n" not in q.promql and "\x1b" not in q.promql
    copied: list[str] = []
    console = SimpleNamespace(settings=Settings(), copy_to_clipboard=copied.append)
    handoff.copy(console, sel.name)  # type: ignore[arg-type]
    assert copied == ['productpage-v1 → rev"iews\\v3␊␛[31m']
