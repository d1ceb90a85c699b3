"""Route, the last phase of the layout: an orthogonal polyline per edge. Every hop leaves
and enters a box on a port row of its own, so no two lines share a segment and each line's
last stretch has room for its label; it turns in the gap after its layer, at a column of
its own among the hops that leave that layer."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

from meshtop.layout.geometry import Density, Point
from meshtop.layout.order import Proper
from meshtop.layout.place import Placement
from meshtop.layout.rank import Edge, Ranking


def routes(
    nodes: list[str], ranking: Ranking, p: Proper, at: Placement, density: Density
) -> dict[Edge, tuple[Point, ...]]:
    """Each edge's polyline, source first (a turned edge runs its chain backwards), in the
    ranking's order of edges."""
    boxes, dummy_row, cols = at.boxes, at.dummy_row, at.columns
    port_out, port_in = _ports(nodes, p, at, density)
    ends: dict[Edge, tuple[Point, Point]] = {}  # hop -> where it leaves, where it enters
    for hop in p.hops:
        a, b = hop
        box = boxes.get(a)
        if box is not None:
            start = (box.x + box.w, port_out[hop])  # right after its right border
        else:
            start = (cols.right(p.layer[a]), dummy_row[a])
        box = boxes.get(b)
        if box is not None:
            end = (box.x - 1, port_in[hop])
        else:
            end = (cols.x[p.layer[b]], dummy_row[b])
        ends[hop] = (start, end)

    # Lines going down turn lowest-first and lines going up highest-first, so that a
    # fan-out's vertical runs do not cross each other's horizontal stretches.
    def turn_order(h: Edge) -> tuple[int, int, int]:
        (_, y0), (_, y1) = ends[h]
        return (0, -y0, -y1) if y1 >= y0 else (1, y0, y1)

    by_layer: dict[int, list[Edge]] = defaultdict(list)
    for hop in p.hops:
        by_layer[p.layer[hop[0]]].append(hop)
    segment: dict[Edge, tuple[Point, ...]] = {}  # hop -> its polyline
    for lay, these in by_layer.items():
        these.sort(key=turn_order)
        first = cols.right(lay) + 2
        usable = cols.gap[lay] - 3 - (0 if density.compact else 1)  # a column per line at least
        for i, hop in enumerate(these):
            tx = first + (i * usable // max(len(these), 1))
            (x0, y0), (x1, y1) = ends[hop]
            if not x0 < tx < x1:  # never, as the gap has room; then only a corner repeats
                segment[hop] = _distinct([(x0, y0), (tx, y0), (tx, y1), (x1, y1)])
            elif y0 == y1:
                segment[hop] = ((x0, y0), (tx, y0), (x1, y1))
            else:
                segment[hop] = ((x0, y0), (tx, y0), (tx, y1), (x1, y1))

    lines: dict[Edge, tuple[Point, ...]] = {}
    turned, chains = ranking.turned, p.chains
    for u, v in ranking.edges:
        flipped = (u, v) in turned
        chain = chains[(v, u) if flipped else (u, v)]
        if len(chain) == 2:
            points = segment[(chain[0], chain[1])]
        else:
            points = _distinct([pt for hop in pairwise(chain) for pt in segment[hop]])
        lines[(u, v)] = points[::-1] if flipped else points
    return lines


def _distinct(points: list[Point]) -> tuple[Point, ...]:
    """`points` without a point that repeats the one before."""
    return tuple(pt for i, pt in enumerate(points) if i == 0 or pt != points[i - 1])


def _ports(
    nodes: list[str], p: Proper, at: Placement, density: Density
) -> tuple[dict[Edge, int], dict[Edge, int]]:
    """The row each hop leaves its source's box on, and the row it enters its
    destination's on: in the order of the other ends, top to bottom, for fewer crossings
    at a box."""
    boxes = at.boxes
    row = at.dummy_row | {n: box.y for n, box in boxes.items()}  # slot -> its top row
    port_out: dict[Edge, int] = {}
    port_in: dict[Edge, int] = {}
    first = density.node_frame // 2
    for n in nodes:
        top = boxes[n].y + first
        outs, ins = p.outs.get(n, ()), p.ins.get(n, ())
        if len(outs) > 1:
            outs = sorted(outs, key=lambda h: (row[h[1]], h[1]))
        for i, hop in enumerate(outs):
            port_out[hop] = top + i
        if len(ins) > 1:
            ins = sorted(ins, key=lambda h: (row[h[0]], h[0]))
        for i, hop in enumerate(ins):
            port_in[hop] = top + i
    return port_out, port_in
