"""Rank, the first phase of the layout: the layer (column) of each node. The drawn graph is
a networkx DiGraph; its cycles are broken by turning around the back edges of a
depth-first search, and a node's layer is its longest path from a source, which is its
topological generation once those edges are set aside."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx

Edge = tuple[str, str]


def drawn(nodes: Iterable[str], edges: Iterable[Edge]) -> nx.DiGraph:
    """The graph to lay out, nodes and edges each in order of name: which edges of a
    cycle turn around depends on the order of the search, so one topology always ranks
    the same whatever order it came in. A self-loop, or an edge to a node not given, is
    not drawn."""
    node_list = sorted(set(nodes))
    known = set(node_list)
    g = nx.DiGraph()
    g.add_nodes_from(node_list)
    g.add_edges_from(sorted({(u, v) for u, v in edges if u != v and u in known and v in known}))
    return g


def back_edges(g: nx.DiGraph) -> set[Edge]:
    """The edges to turn around so that `g` has no cycle: those a depth-first search (in
    the graph's order of nodes and neighbours) finds going back to a node on its path.
    A self-loop is one of them."""
    on_path: set[str] = set()
    back: set[Edge] = set()
    for u, v, kind in nx.dfs_labeled_edges(g):
        if kind == "forward":
            on_path.add(v)
        elif kind == "reverse":
            on_path.discard(v)
        elif v in on_path:  # nontree: back to the path, rather than across to a finished node
            back.add((u, v))
    return back


@dataclass(frozen=True, slots=True)
class Ranking:
    layer: dict[str, int]  # node -> its layer, 0 for a source
    turned: frozenset[Edge]  # the edges turned around to break the cycles (no self-loop)
    edges: list[Edge]  # the graph's edges, in its order (self-loops left out)
    dag: list[Edge]  # the same edges, each pointing right (a turned one turned around)


def ranking(g: nx.DiGraph) -> Ranking:
    """Layers by longest path from the sources, every edge at least one layer right once
    the back edges are turned around. Turned or set aside, they rank alike: a back edge
    (u, v) has a path from v to u in the search's tree, so u is right of v either way,
    and the generations of the graph without them are the layers."""
    back = back_edges(g)
    acyclic = nx.restricted_view(g, (), back) if back else g
    layer = {
        n: i for i, generation in enumerate(nx.topological_generations(acyclic)) for n in generation
    }
    edges = [(u, v) for u, v in g.edges if u != v]
    dag = [(v, u) if (u, v) in back else (u, v) for u, v in edges] if back else edges
    return Ranking(layer, frozenset((u, v) for u, v in back if u != v), edges, dag)
