"""Where the topology graph's boxes and lines go, in terminal cells: layered left to right
in the spirit of Sugiyama, one phase per module. `rank`: cycles broken and layers by
longest path, through networkx on the drawn graph; `order`: long edges through dummy
slots, bands, barycentre sweeps against crossings; `place`: columns, bands and boxes, one
horizontal band per namespace and the bands of one cluster inside a box of their own (a
group `cluster/namespace`); `route`: orthogonal lines through ports. Computed from the
topology alone, so a change of numbers never moves a box; seeded with the previous
layout, so a node that comes or goes leaves the rest where they were. `collapse` draws a
band or a cluster as one box in place."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from meshtop.layout.collapse import collapsed
from meshtop.layout.geometry import (
    BAND_PAD,
    CLUSTER_PAD,
    COMPACT,
    FULL,
    GAP,
    NODE_HEIGHT,
    Box,
    Density,
    Layout,
    Point,
)
from meshtop.layout.order import SWEEPS, bands, proper, slots
from meshtop.layout.place import placement
from meshtop.layout.rank import Ranking, back_edges, drawn, ranking
from meshtop.layout.route import routes

__all__ = [
    "BAND_PAD",
    "CLUSTER_PAD",
    "COMPACT",
    "FULL",
    "GAP",
    "NODE_HEIGHT",
    "SWEEPS",
    "Box",
    "Density",
    "Layout",
    "Point",
    "Ranking",
    "back_edges",
    "collapsed",
    "drawn",
    "layout",
    "ranking",
]


def layout(
    nodes: Iterable[str],
    edges: Iterable[tuple[str, str]],
    *,
    label: Callable[[str], str],
    group: Callable[[str], str],
    previous: Layout | None = None,
    density: Density = FULL,
    width: int = 0,
) -> Layout:
    """Lay out `nodes` (ids) and `edges` (source, destination). `label` gives a node's
    text (its box is that wide plus borders); `group` its namespace band, or
    `cluster/namespace` for a band inside its cluster's box. Given the `width` of the
    screen, the gaps between layers share what room is left, so a wide terminal is used."""
    g = drawn(nodes, edges)
    node_list: list[str] = list(g)
    ranked = ranking(g)
    p = proper(node_list, ranked, group)
    group_order = bands(node_list, p, previous)
    ordered = slots(p, group_order, previous)
    at = placement(node_list, p, ordered, group_order, label=label, density=density, width=width)
    return Layout(
        nodes=at.boxes,
        groups=at.groups,
        routes=routes(node_list, ranked, p, at, density),
        order=at.order,
        group_order=tuple(group_order),
        width=at.columns.total + 2 + at.columns.inset,
        height=at.height,
        clusters=at.clusters,
        group_of={n: p.band[n] for n in node_list},
        density=density,
    )
