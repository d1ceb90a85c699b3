"""A node's detail shows the first rows of each of its lists and says how many more: a
namespace's box in a large mesh has hundreds of members, calls and routes, which Rich laid
out in full on the screen's thread as the screen opened (issue 17)."""

from __future__ import annotations

import asyncio
import io

import pytest
from rich.console import Console, Group, RenderableType
from rich.text import Text

from meshtop.graphview import ViewOptions, build
from meshtop.health import DEFAULT_THRESHOLDS
from meshtop.mesh import refresh
from meshtop.model import Edge
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated
from meshtop.tui.placement import level_options
from meshtop.tui.screens import detail_intro
from meshtop.tui.screens.detail_intro import node_screen

LISTED = 5  # of 20: the generated mesh's namespaces call 19 others at most


def _text(renderable: RenderableType | None) -> str:
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(renderable)
    return out.getvalue()


def test_a_namespaces_detail_lists_its_busiest_and_says_how_many_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(detail_intro, "LISTED", LISTED)
    sim = Simulation(generated(1000, seed=1), clock=lambda: 1.8e9)
    snapshot = asyncio.run(refresh(sim.clusters))
    view = build(snapshot, level_options(ViewOptions(), snapshot, "namespaces"))
    node = max(view.nodes, key=lambda n: len(view.nodes[n].members))
    members = view.nodes[node].members
    outbound = sorted(
        (e for e in view.edges.values() if e.source == node), key=lambda e: -e.stats.rps
    )
    assert len(members) > LISTED and len(outbound) > LISTED  # the case in point

    screen = node_screen(sim.metrics, snapshot, view, node, 300, DEFAULT_THRESHOLDS)
    intro = _text(screen.intro)

    assert isinstance(screen.intro, Group)
    said = screen.intro.renderables[0]  # the namespace, the kind and the members
    assert isinstance(said, Text)
    # by name, the cluster and namespace they share said once before them
    names = [m.split("/", 2)[2] for m in members]
    assert said.plain.startswith(f"{members[0].rsplit('/', 1)[0]} · workload · {names[0]}, ")
    assert said.plain.endswith(f", {names[LISTED - 1]} and {len(members) - LISTED:,} more")
    assert names[LISTED] not in said.plain and members[0] not in said.plain
    calls = [line for line in intro.splitlines() if line.lstrip().startswith("to ")]
    assert len(calls) == LISTED  # the busiest outbound calls
    busiest = view.nodes[outbound[0].destination].label
    quietest_shown = view.nodes[outbound[LISTED - 1].destination].label
    assert busiest in calls[0] and quietest_shown in calls[-1]
    assert f"{len(outbound) - LISTED:,} outbound" in intro
    assert "the edge table (2) lists each" in intro


def test_a_nodes_detail_makes_no_key_for_each_edge_of_the_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whether the worst call's health is held by the console's memory is found from its
    own calls: a node's detail made a mapping of every edge's key to its figures as it
    opened (51,239 edges at 20,000 services)."""
    sim = Simulation(generated(200, seed=1), clock=lambda: 1.8e9)
    snapshot = asyncio.run(refresh(sim.clusters))
    view = build(snapshot, ViewOptions())
    node = next(n for n, v in view.nodes.items() if len(v.members) == 1 and v.health.value
                != "idle" and any(e.destination == n for e in view.edges.values()))  # fmt: skip
    members = view.nodes[node].members
    into = sum(1 for e in snapshot.edges if e.destination in members)
    made: list[Edge] = []
    key = Edge.key

    def counted(e: Edge) -> tuple[str, str]:
        made.append(e)
        return key.__get__(e)  # type: ignore[no-any-return]

    monkeypatch.setattr(Edge, "key", property(counted))
    said = _text(node_screen(sim.metrics, snapshot, view, node, 300, DEFAULT_THRESHOLDS).intro)

    assert "its worst inbound call" in said
    assert 0 < len(made) <= into < len(snapshot.edges) // 10  # its calls', not every edge's
