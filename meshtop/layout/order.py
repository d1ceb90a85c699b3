"""Order, the second phase of the layout: the bands top to bottom, and the slots of each
band and layer top to bottom. Long edges first get a dummy slot in each layer they cross;
then barycentre sweeps, seeded by the previous layout, reduce the crossings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from meshtop.layout.geometry import Layout
from meshtop.layout.rank import Edge, Ranking

SWEEPS = 4

Slots = dict[tuple[str, int], list[str]]  # (band, layer) -> its slots, top to bottom


@dataclass(frozen=True, slots=True)
class Proper:
    """The ranked graph made proper: every hop goes from one layer to the next."""

    layer: dict[str, int]  # node or dummy slot -> its layer
    band: dict[str, str]  # node or dummy slot -> its band (a dummy is in its source's)
    chains: dict[Edge, list[str]]  # edge of the DAG -> the slots it runs through
    hops: list[Edge]  # every hop of every chain (twice over for an edge and its turned twin)
    outs: dict[str, list[Edge]]  # slot -> the hops that leave it
    ins: dict[str, list[Edge]]  # slot -> the hops that enter it

    @property
    def layers(self) -> int:
        return max(self.layer.values(), default=-1) + 1


def proper(nodes: list[str], ranking: Ranking, group: Callable[[str], str]) -> Proper:
    """Long edges through one dummy slot per layer they cross, in the source's band."""
    layer = {n: ranking.layer[n] for n in nodes}
    band = {n: group(n) for n in nodes}
    chains: dict[Edge, list[str]] = {}
    hops: list[Edge] = []
    for u, v in ranking.dag:
        chain = [u]
        for i in range(layer[u] + 1, layer[v]):
            dummy = f"\0{u}\0{v}\0{i}"
            layer[dummy] = i
            band[dummy] = band[u]
            chain.append(dummy)
        chain.append(v)
        hops.extend(pairwise(chain))
        chains[(u, v)] = chain
    outs: dict[str, list[Edge]] = defaultdict(list)
    ins: dict[str, list[Edge]] = defaultdict(list)
    for hop in hops:
        outs[hop[0]].append(hop)
        ins[hop[1]].append(hop)
    return Proper(layer, band, chains, hops, outs, ins)


def bands(nodes: list[str], p: Proper, previous: Layout | None) -> list[str]:
    """The bands top to bottom: the previous order first, then by where a band starts,
    then by name; a cluster's bands together, the clusters in the order of their first
    band; bands outside every cluster (unknown peers, external hosts) last."""
    start: dict[str, int] = {}
    for n in nodes:
        g, lay = p.band[n], p.layer[n]
        if start.get(g, lay) >= lay:
            start[g] = lay
    before = {g: i for i, g in enumerate(previous.group_order)} if previous else {}
    order = sorted(start, key=lambda g: (before.get(g, len(before)), start[g], g))
    cluster_of = {g: g.rpartition("/")[0] for g in order}
    first = {c: i for i, c in reversed(list(enumerate(cluster_of[g] for g in order)))}
    order.sort(key=lambda g: (not cluster_of[g], first[cluster_of[g]]))
    return order


def slots(p: Proper, group_order: list[str], previous: Layout | None) -> Slots:
    """The slots of each band and layer, top to bottom: seeded by the previous layout,
    then sweeps against crossings; what was on screen before keeps its order."""
    seed = previous.order if previous else {}
    placed: Slots = defaultdict(list)
    for s, lay in p.layer.items():
        placed[(p.band[s], lay)].append(s)

    def seed_key(s: str) -> tuple[int, int, str]:
        if s in seed:
            return (0, seed[s][1], s)
        return (1, 0, s)

    for column in placed.values():
        column.sort(key=seed_key)
    _sweep(placed, p, group_order)
    if seed:
        _keep_seen(placed, seed)
    return placed


def _sweep(slots: Slots, p: Proper, group_order: list[str]) -> None:
    """Move each slot to the mean position of its neighbours in the layer before (or
    after), within its band, sweeping right then left. Ties keep the order they had."""
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for a, b in p.hops:
        if p.band[a] == p.band[b]:
            down[a].append(b)
            up[b].append(a)
    position: dict[str, float] = {}
    for column in slots.values():
        for i, s in enumerate(column):
            position[s] = i
    n_layers = p.layers
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        neighbours = up if forward else down
        lays = range(1, n_layers) if forward else range(n_layers - 2, -1, -1)
        for lay in lays:
            for g in group_order:
                current = slots.get((g, lay))
                if current is None or len(current) < 2:  # one slot stays where it is
                    continue
                # (mean position of the neighbours, or its own; then its own), which
                # sorts ties by the order they had
                keyed = []
                for i, s in enumerate(current):
                    near = neighbours.get(s)
                    mean = sum([position[x] for x in near]) / len(near) if near else float(i)
                    keyed.append((mean, i, s))
                keyed.sort()
                current[:] = [s for _, _, s in keyed]
                for i, s in enumerate(current):
                    position[s] = i


def _keep_seen(slots: Slots, seed: dict[str, tuple[int, int]]) -> None:
    """Stability beats fewer crossings for what was already on screen: nodes seen before
    keep their order; new ones go where the sweeps would put them."""
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
