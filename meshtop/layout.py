"""Where the topology graph's boxes and lines go, in terminal cells: layered left to right
in the spirit of Sugiyama (cycles broken, longest-path layers, long edges through dummy
slots, barycentre sweeps against crossings), one horizontal band per namespace, and the
bands of one cluster inside a box of their own (a group `cluster/namespace`). Computed
from the topology alone, so a change of numbers never moves a box; seeded with the
previous layout, so a node that comes or goes leaves the rest where they were."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise

NODE_HEIGHT = 3  # border, label, border; taller where more lines come in or go out
GAP = 14  # columns between layers: room for edge labels and the vertical runs
BAND_PAD = 1  # rows inside a namespace box, above and below its slots
CLUSTER_PAD = 2  # columns between a cluster's box and its namespaces' boxes
SWEEPS = 4


@dataclass(frozen=True, slots=True)
class Density:
    """How much room a node and a band take. Full: a node is a box (border, label,
    border) and a band has a row of padding inside and a blank row after it. Compact:
    a node is its label between two bars, one row per line in or out, and a band costs
    its two border rows and nothing more."""

    compact: bool = False

    @property
    def node_frame(self) -> int:  # rows a node takes besides its port rows
        return 0 if self.compact else NODE_HEIGHT - 1

    @property
    def side(self) -> int:  # columns a node takes besides its label
        return 2 if self.compact else 4

    @property
    def band_pad(self) -> int:
        return 0 if self.compact else BAND_PAD

    @property
    def band_gap(self) -> int:  # blank rows after a band
        return 0 if self.compact else 1

    def gap(self, turning: int) -> int:
        """Columns between a layer and the next, for `turning` lines that turn there."""
        return max(5, turning + 4) if self.compact else max(GAP, turning + 6)


FULL = Density()
COMPACT = Density(compact=True)


@dataclass(frozen=True, slots=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w - 1

    @property
    def bottom(self) -> int:
        return self.y + self.h - 1

    def contains(self, x: int, y: int) -> bool:
        return self.x <= x <= self.right and self.y <= y <= self.bottom

    def overlaps(self, other: Box) -> bool:
        return not (
            self.right < other.x
            or other.right < self.x
            or self.bottom < other.y
            or other.bottom < self.y
        )


Point = tuple[int, int]


@dataclass(frozen=True)
class Layout:
    nodes: dict[str, Box]
    groups: dict[str, Box]  # namespace (or any group) -> the box around its band
    routes: dict[tuple[str, str], tuple[Point, ...]]  # edge -> orthogonal polyline, source first
    order: dict[str, tuple[int, int]]  # node -> (layer, slot in its band and layer)
    group_order: tuple[str, ...]
    width: int
    height: int
    clusters: dict[str, Box] = field(default_factory=dict)  # cluster -> box around its bands
    group_of: dict[str, str] = field(default_factory=dict)  # node -> its group
    density: Density = FULL
    framed: frozenset[str] = frozenset()  # nodes drawn as a framed box whatever the density

    @staticmethod
    def topology_key(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> Hashable:
        """Equal for equal topologies: the cache key of a layout."""
        return (frozenset(nodes), frozenset(edges))


def _break_cycles(nodes: list[str], edges: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Edges to turn around so the graph has no cycle: the back edges of a depth-first
    search (iterative, so deep meshes cannot exhaust the stack)."""
    succ: dict[str, list[str]] = defaultdict(list)
    for u, v in edges:
        succ[u].append(v)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[tuple[str, str]] = set()
    for root in nodes:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, children = stack[-1]
            for child in children:
                seen = state.get(child)
                if seen is None:
                    state[child] = 1
                    stack.append((child, iter(succ[child])))
                    break
                if seen == 1:
                    back.add((node, child))
            else:
                state[node] = 2
                stack.pop()
    return back


def _layers(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest path from the sources: every edge goes at least one layer right."""
    preds: dict[str, list[str]] = defaultdict(list)
    indegree = dict.fromkeys(nodes, 0)
    succ: dict[str, list[str]] = defaultdict(list)
    for u, v in edges:
        preds[v].append(u)
        succ[u].append(v)
        indegree[v] += 1
    layer = dict.fromkeys(nodes, 0)
    ready = [n for n in nodes if indegree[n] == 0]
    while ready:
        node = ready.pop()
        for v in succ[node]:
            layer[v] = max(layer[v], layer[node] + 1)
            indegree[v] -= 1
            if indegree[v] == 0:
                ready.append(v)
    return layer


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
    node_list = sorted(set(nodes))
    known = set(node_list)
    edge_list = sorted({(u, v) for u, v in edges if u != v and u in known and v in known})
    reversed_edges = _break_cycles(node_list, edge_list)
    dag = [(v, u) if (u, v) in reversed_edges else (u, v) for u, v in edge_list]
    layer = _layers(node_list, dag)

    # Bands: the previous order first, then by where a group starts, then by name.
    groups: dict[str, list[str]] = defaultdict(list)
    for n in node_list:
        groups[group(n)].append(n)
    before = {g: i for i, g in enumerate(previous.group_order)} if previous else {}
    group_order = sorted(
        groups,
        key=lambda g: (before.get(g, len(before)), min(layer[n] for n in groups[g]), g),
    )
    # A cluster's bands together, the clusters in the order of their first band; bands
    # outside every cluster (unknown peers, external hosts) last.
    cluster_of = {g: g.rpartition("/")[0] for g in group_order}
    first = {c: i for i, c in reversed(list(enumerate(cluster_of[g] for g in group_order)))}
    group_order.sort(key=lambda g: (not cluster_of[g], first[cluster_of[g]]))
    inset = CLUSTER_PAD if any(cluster_of.values()) else 0

    # Long edges run through one dummy slot per layer they cross, in the source's band.
    slot_group = {n: group(n) for n in node_list}
    chains: dict[tuple[str, str], list[str]] = {}
    hops: list[tuple[str, str]] = []
    for u, v in dag:
        chain = [u]
        for i in range(layer[u] + 1, layer[v]):
            dummy = f"\0{u}\0{v}\0{i}"
            layer[dummy] = i
            slot_group[dummy] = slot_group[u]
            chain.append(dummy)
        chain.append(v)
        hops.extend(pairwise(chain))
        chains[(u, v)] = chain

    # Ordering within each band and layer: seeded by the previous layout, then sweeps
    # that move each slot to the mean position of its neighbours in the layer before
    # (or after), against crossings. Ties keep the seed order, for stability.
    slots: dict[tuple[str, int], list[str]] = defaultdict(list)
    for s, lay in layer.items():
        slots[(slot_group[s], lay)].append(s)
    seed = previous.order if previous else {}

    def seed_key(s: str) -> tuple[int, int, str]:
        if s in seed:
            return (0, seed[s][1], s)
        return (1, 0, s)

    for key in slots:
        slots[key].sort(key=seed_key)
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for a, b in hops:
        if slot_group[a] == slot_group[b]:
            down[a].append(b)
            up[b].append(a)
    n_layers = max(layer.values(), default=-1) + 1
    position: dict[str, float] = {}

    def place(key: tuple[str, int]) -> None:
        for i, s in enumerate(slots[key]):
            position[s] = i

    for key in slots:
        place(key)
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        neighbours = up if forward else down
        lays = range(1, n_layers) if forward else range(n_layers - 2, -1, -1)
        for lay in lays:
            for g in group_order:
                key = (g, lay)
                if key not in slots:
                    continue
                current = slots[key]
                rank = {s: i for i, s in enumerate(current)}

                def bary(
                    s: str,
                    rank: dict[str, int] = rank,
                    neighbours: dict[str, list[str]] = neighbours,
                ) -> tuple[float, int]:
                    near = neighbours.get(s)
                    if not near:
                        return (float(rank[s]), rank[s])
                    return (sum(position[x] for x in near) / len(near), rank[s])

                current.sort(key=bary)
                place(key)

    if seed:
        # Stability beats fewer crossings for what was already on screen: nodes seen
        # before keep their order; new ones go where the sweeps would put them.
        for key, current in slots.items():
            survivors = sorted((s for s in current if s in seed), key=lambda s: seed[s][1])
            merged: list[str] = []
            taken = 0
            for s in current:
                if s in seed:
                    merged.append(survivors[taken])
                    taken += 1
                else:
                    merged.append(s)
            slots[key] = merged

    # Ports: every hop leaves and enters a box on a row of its own, so no two lines share
    # a segment and each line's last stretch has room for its label.
    outs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    ins: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for a, b in hops:
        outs[a].append((a, b))
        ins[b].append((a, b))
    height_of = {
        n: density.node_frame + max(1, len(outs[n]), len(ins[n])) for n in node_list
    }  # border + ports + border, or the ports alone

    # Coordinates: layer columns as wide as their widest box; bands stacked top down.
    width_of = {n: len(label(n)) + density.side for n in node_list}
    col_width = [0] * n_layers
    for n in node_list:
        col_width[layer[n]] = max(col_width[layer[n]], width_of[n])
    # A gap is wide enough for a column of its own for every line that turns in it.
    leaving = [0] * n_layers
    for a, _ in hops:
        leaving[layer[a]] += 1
    gap = [density.gap(n) for n in leaving]
    spare = width - (2 + inset) * 2 - sum(max(w, 1) for w in col_width) - sum(gap[:-1])
    if n_layers > 1 and spare > 0:  # a wide screen: the gaps share the room left
        for lay in range(n_layers - 1):
            gap[lay] += spare // (n_layers - 1)
    col_x = []
    x = 2 + inset  # inside the band's border (and the cluster's)
    for lay, w in enumerate(col_width):
        col_x.append(x)
        x += max(w, 1) + gap[lay]
    total_width = max(x - gap[-1], 3) if gap else 3

    boxes: dict[str, Box] = {}
    dummy_row: dict[str, int] = {}
    group_boxes: dict[str, Box] = {}
    cluster_boxes: dict[str, Box] = {}
    order: dict[str, tuple[int, int]] = {}
    y = 0
    for k, g in enumerate(group_order):
        cluster = cluster_of[g]
        if cluster and (k == 0 or cluster_of[group_order[k - 1]] != cluster):
            cluster_top = y
            y += 1  # the cluster's border row
        top = y + 1 + density.band_pad  # the band's border row, then padding
        deepest = top  # the last row anything in the band takes
        for lay in range(n_layers):
            row = top
            for i, s in enumerate(slots.get((g, lay), ())):
                if s in width_of:
                    boxes[s] = Box(col_x[lay], row, width_of[s], height_of[s])
                    order[s] = (lay, i)
                    deepest = max(deepest, row + height_of[s] - 1)
                    row += height_of[s] + 1
                else:
                    dummy_row[s] = row
                    deepest = max(deepest, row)
                    row += 2
        bottom = deepest + density.band_pad + 1  # padding, then the border row
        group_boxes[g] = Box(inset, y, total_width + 2 - inset, bottom - y + 1)
        y = bottom + 1 + density.band_gap
        if cluster and (k == len(group_order) - 1 or cluster_of[group_order[k + 1]] != cluster):
            height = bottom + 2 - cluster_top
            cluster_boxes[cluster] = Box(0, cluster_top, total_width + 2 + inset, height)
            y = cluster_top + height + density.band_gap

    # Port rows, in the order of the other ends, top to bottom: fewer crossings at a box.
    def other_end_row(s: str) -> int:
        return boxes[s].y if s in boxes else dummy_row[s]

    port_out: dict[tuple[str, str], int] = {}
    port_in: dict[tuple[str, str], int] = {}
    for n in node_list:
        for i, hop in enumerate(sorted(outs[n], key=lambda h: (other_end_row(h[1]), h[1]))):
            port_out[hop] = boxes[n].y + density.node_frame // 2 + i
        for i, hop in enumerate(sorted(ins[n], key=lambda h: (other_end_row(h[0]), h[0]))):
            port_in[hop] = boxes[n].y + density.node_frame // 2 + i

    def anchor_out(hop: tuple[str, str]) -> Point:
        s = hop[0]
        if s in boxes:
            return (boxes[s].right + 1, port_out[hop])
        return (col_x[layer[s]] + col_width[layer[s]], dummy_row[s])

    def anchor_in(hop: tuple[str, str]) -> Point:
        s = hop[1]
        if s in boxes:
            return (boxes[s].x - 1, port_in[hop])
        return (col_x[layer[s]], dummy_row[s])

    # Each hop turns in the gap after its layer, at a column of its own among the hops
    # that leave that layer, so that vertical runs do not lie on top of each other.
    by_layer: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for hop in hops:
        by_layer[layer[hop[0]]].append(hop)

    # Lines going down turn lowest-first and lines going up highest-first, so that a
    # fan-out's vertical runs do not cross each other's horizontal stretches.
    def turn_order(h: tuple[str, str]) -> tuple[int, int, int]:
        y0, y1 = anchor_out(h)[1], anchor_in(h)[1]
        return (0, -y0, -y1) if y1 >= y0 else (1, y0, y1)

    turn: dict[tuple[str, str], int] = {}
    for lay, these in by_layer.items():
        these.sort(key=turn_order)
        start = col_x[lay] + col_width[lay] + 2
        usable = gap[lay] - 3 - (0 if density.compact else 1)  # a column per line at least
        for i, hop in enumerate(these):
            turn[hop] = start + (i * usable // max(len(these), 1))

    routes: dict[tuple[str, str], tuple[Point, ...]] = {}
    for u, v in edge_list:
        flipped = (u, v) in reversed_edges
        chain = chains[(v, u) if flipped else (u, v)]
        points: list[Point] = []
        for hop in pairwise(chain):
            (x0, y0), (x1, y1) = anchor_out(hop), anchor_in(hop)
            tx = turn[hop]
            points += [(x0, y0), (tx, y0), (tx, y1), (x1, y1)]
        deduped = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
        routes[(u, v)] = tuple(reversed(deduped)) if flipped else tuple(deduped)

    return Layout(
        nodes=boxes,
        groups=group_boxes,
        routes=routes,
        order=order,
        group_order=tuple(group_order),
        width=total_width + 2 + inset,
        height=max(y - density.band_gap, 0),
        clusters=cluster_boxes,
        group_of={n: slot_group[n] for n in node_list},
        density=density,
    )


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
