"""Place, the third phase of the layout: coordinates. Layer columns as wide as their widest
box, with a gap after each wide enough for the lines that turn in it; bands stacked top
down, a cluster's bands inside its box; a node as tall as its ports (a row per line in or
out), a dummy slot two rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from meshtop.layout.geometry import CLUSTER_PAD, Box, Density
from meshtop.layout.order import Proper, Slots


@dataclass(frozen=True, slots=True)
class Columns:
    x: list[int]  # layer -> its left column
    width: list[int]  # layer -> the width of its widest box
    gap: list[int]  # layer -> columns between it and the next
    inset: int  # columns between a cluster's box and its bands' (0 without clusters)
    total: int  # the width of the bands' insides

    def right(self, layer: int) -> int:
        """The first column after the widest box of `layer`."""
        return self.x[layer] + self.width[layer]


@dataclass(frozen=True, slots=True)
class Placement:
    columns: Columns
    boxes: dict[str, Box]  # node -> its box
    dummy_row: dict[str, int]  # dummy slot -> the row its line runs along
    groups: dict[str, Box]  # band -> its box
    clusters: dict[str, Box]  # cluster -> its box
    order: dict[str, tuple[int, int]]  # node -> (layer, slot in its band and layer)
    height: int


def columns(
    nodes: list[str],
    p: Proper,
    widths: dict[str, int],
    density: Density,
    group_order: list[str],
    width: int,
) -> Columns:
    """Layer columns, and the gaps between them: a gap is wide enough for a column of its
    own for every line that turns in it; on a wide screen the gaps share the room left."""
    n_layers = p.layers
    inset = CLUSTER_PAD if any(g.rpartition("/")[0] for g in group_order) else 0
    col_width = [0] * n_layers
    for n in nodes:
        lay = p.layer[n]
        col_width[lay] = max(col_width[lay], widths[n])
    leaving = [0] * n_layers
    for a, _ in p.hops:
        leaving[p.layer[a]] += 1
    gap = [density.gap(n) for n in leaving]
    spare = width - (2 + inset) * 2 - sum(max(w, 1) for w in col_width) - sum(gap[:-1])
    if n_layers > 1 and spare > 0:
        for lay in range(n_layers - 1):
            gap[lay] += spare // (n_layers - 1)
    col_x = []
    x = 2 + inset  # inside the band's border (and the cluster's)
    for lay, w in enumerate(col_width):
        col_x.append(x)
        x += max(w, 1) + gap[lay]
    total = max(x - gap[-1], 3) if gap else 3
    return Columns(col_x, col_width, gap, inset, total)


def placement(
    nodes: list[str],
    p: Proper,
    slots: Slots,
    group_order: list[str],
    *,
    label: Callable[[str], str],
    density: Density,
    width: int,
) -> Placement:
    """Every node's box and every dummy slot's row, the bands stacked top down."""
    widths = {n: len(label(n)) + density.side for n in nodes}
    heights = {  # border + ports + border, or the ports alone
        n: density.node_frame + max(1, len(p.outs.get(n, ())), len(p.ins.get(n, ()))) for n in nodes
    }
    cols = columns(nodes, p, widths, density, group_order, width)
    inset, n_layers = cols.inset, p.layers
    boxes: dict[str, Box] = {}
    dummy_row: dict[str, int] = {}
    group_boxes: dict[str, Box] = {}
    cluster_boxes: dict[str, Box] = {}
    order: dict[str, tuple[int, int]] = {}
    cluster_of = [g.rpartition("/")[0] for g in group_order]
    y = cluster_top = 0
    for k, g in enumerate(group_order):
        cluster = cluster_of[k]
        if cluster and (k == 0 or cluster_of[k - 1] != cluster):
            cluster_top = y
            y += 1  # the cluster's border row
        top = y + 1 + density.band_pad  # the band's border row, then padding
        deepest = top  # the last row anything in the band takes
        for lay in range(n_layers):
            row = top
            for i, s in enumerate(slots.get((g, lay), ())):
                if s in widths:
                    boxes[s] = Box(cols.x[lay], row, widths[s], heights[s])
                    order[s] = (lay, i)
                    deepest = max(deepest, row + heights[s] - 1)
                    row += heights[s] + 1
                else:
                    dummy_row[s] = row
                    deepest = max(deepest, row)
                    row += 2
        bottom = deepest + density.band_pad + 1  # padding, then the border row
        group_boxes[g] = Box(inset, y, cols.total + 2 - inset, bottom - y + 1)
        y = bottom + 1 + density.band_gap
        if cluster and (k == len(group_order) - 1 or cluster_of[k + 1] != cluster):
            height = bottom + 2 - cluster_top
            cluster_boxes[cluster] = Box(0, cluster_top, cols.total + 2 + inset, height)
            y = cluster_top + height + density.band_gap
    return Placement(
        cols, boxes, dummy_row, group_boxes, cluster_boxes, order, max(y - density.band_gap, 0)
    )
