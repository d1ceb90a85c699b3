"""The shapes a layout is made of, in terminal cells: how much room a node and a band take
(`Density`), a `Box`, and the finished `Layout` that the canvas and the SVG report draw."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

NODE_HEIGHT = 3  # border, label, border; taller where more lines come in or go out
GAP = 14  # columns between layers: room for edge labels and the vertical runs
BAND_PAD = 1  # rows inside a namespace box, above and below its slots
CLUSTER_PAD = 2  # columns between a cluster's box and its namespaces' boxes


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
