"""Collapsing in place: a laid-out graph with a namespace or a cluster drawn as one box
where its band was, the lines that end there cut at its border, nothing else moved."""

from __future__ import annotations

from itertools import pairwise

from meshtop.layout.geometry import Box, Layout, Point


def collapsed(
    lay: Layout,
    boxes: dict[str, Box],
    edges: dict[tuple[str, str], tuple[str, str]],
) -> Layout:
    """`lay` with some of its areas drawn as one node each, in place: `boxes` gives each
    such node (a collapsed namespace or cluster) the box of its band or cluster, and
    `edges` gives each edge to draw the edge of `lay` whose route it follows, cut where
    it enters or leaves a collapsed box. Nothing else moves: collapsing and expanding
    keep every other box where it was."""

    def cells(points: tuple[Point, ...]) -> list[Point]:
        out: list[Point] = [points[0]]
        for (x0, y0), (x1, y1) in pairwise(points):
            dx, dy = (x1 > x0) - (x1 < x0), (y1 > y0) - (y1 < y0)
            x, y = x0, y0
            while (x, y) != (x1, y1):
                x, y = x + dx, y + dy
                out.append((x, y))
        return out

    def corners(path: list[Point]) -> tuple[Point, ...]:
        """The polyline again: the path's ends and the cells where it turns."""
        keep = [path[0]]
        for a, b, c in zip(path, path[1:], path[2:], strict=False):
            if (b[0] - a[0], b[1] - a[1]) != (c[0] - b[0], c[1] - b[1]):
                keep.append(b)
        keep.append(path[-1])
        return tuple(keep)

    routes: dict[tuple[str, str], tuple[Point, ...]] = {}
    for key, followed in edges.items():
        points = lay.routes.get(followed)
        if points is None:
            continue
        path = cells(points)
        # cut at the ends that are collapsed: from the last cell out of the source's
        # box, to the cell before the destination's; a line that only passes a
        # collapsed box goes on (drawn across it, as behind a band)
        source, destination = boxes.get(key[0]), boxes.get(key[1])
        while path and source is not None and source.contains(*path[0]):
            path.pop(0)
        while path and destination is not None and destination.contains(*path[-1]):
            path.pop()
        if len(path) >= 2:
            routes[key] = corners(path)
    nodes = {n: b for n, b in lay.nodes.items()} | boxes
    return Layout(
        nodes=nodes,
        groups=lay.groups,
        routes=routes,
        order=lay.order,
        group_order=lay.group_order,
        width=lay.width,
        height=lay.height,
        clusters=lay.clusters,
        group_of=lay.group_of | {n: "" for n in boxes},
        density=lay.density,
        framed=frozenset(boxes),
    )
