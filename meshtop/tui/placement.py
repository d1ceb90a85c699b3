"""Where the console's graph puts its boxes, so that nothing moves that need not: a layout
per view shape (zoom level, grouping, collapsed, width) of everything that shape has
shown, a collapsed namespace or cluster drawn in place of its band, and at `fit` the most
detailed zoom level that fits the terminal."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from textual.geometry import Size

from meshtop import units
from meshtop.graphview import GraphView, ViewNode, ViewOptions, build
from meshtop.health import severity
from meshtop.layout import COMPACT, FULL, Box, Density, Layout, collapsed, layout
from meshtop.model import MeshSnapshot

ZOOMS = ("full", "compact", "namespaces")  # the most detailed first
SHAPES_KEPT = 12  # view shapes (level, grouping, width) whose layout is kept to go back to
# A mesh of more workloads opens at the namespaces level, worst namespaces first, without
# laying the workloads out first to see whether they fit (issue 17; README)
OPEN_AT_NAMESPACES = 1_000


def band(v: ViewNode, several: bool) -> str:
    """The band a node is drawn in: its namespace, inside its cluster's box when there
    are several clusters (`east/bookinfo`); peers outside every cluster in their own."""
    name = "all namespaces" if v.namespace == "*" else v.namespace
    return f"{v.cluster}/{name}" if several and v.cluster else name


@dataclass
class Seen:
    """Every node and call a view shape has shown since it was first drawn, and their
    layout: what goes keeps its place for when it comes back."""

    labels: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    layout: Layout | None = None

    def add(self, view: GraphView) -> bool:
        """Take in what `view` shows; whether anything was new."""
        several = len({v.cluster for v in view.nodes.values() if v.cluster}) > 1
        grew = False
        for n, v in view.nodes.items():
            group = band(v, several)
            if self.labels.get(n) != v.label or self.groups.get(n) != group:
                self.labels[n], self.groups[n] = v.label, group
                grew = True
        if not view.edges.keys() <= self.edges:
            self.edges |= view.edges.keys()
            grew = True
        return grew

    def lay_out(
        self, width: int, density: Density, room: int = 0, seed: Layout | None = None
    ) -> Layout:
        """The layout, each box as wide as its label, or `room` cells at most (the
        canvas cuts a longer name with `…`)."""
        return layout(
            self.labels,
            self.edges,
            label=lambda n: units.clip(self.labels[n], room) if room else self.labels[n],
            group=self.groups.__getitem__,
            previous=self.layout or seed,
            density=density,
            width=width,
        )


def _by_grouping(v: ViewNode) -> bool:
    """Whether the grouping names this node: one of a cluster, not a collapsed box (a
    peer outside every cluster is named by its own id whatever the grouping)."""
    return bool(v.cluster) and not v.id.endswith("/*")


def worst_first(view: GraphView) -> Layout:
    """A layout that seeds another with the bands of `view` worst first (then by name):
    a large mesh opens with its failing namespaces on screen."""
    several = len({v.cluster for v in view.nodes.values() if v.cluster}) > 1
    worst: dict[str, int] = {}
    for v in view.nodes.values():
        g = band(v, several)
        worst[g] = max(worst.get(g, 0), severity(v.health))
    order = tuple(sorted(worst, key=lambda g: (-worst[g], g)))
    return Layout({}, {}, {}, {}, order, 0, 0)


def level_options(options: ViewOptions, snapshot: MeshSnapshot, level: str) -> ViewOptions:
    """The options a zoom level draws with: `namespaces` collapses every namespace."""
    if level != "namespaces":
        return options
    every = {w.namespace for w in snapshot.nodes.values() if w.namespace}
    return replace(options, collapsed=options.collapsed | every)


class Placement:
    """The layouts of one graph on screen, kept between refreshes: `zoom` is the level
    asked for (or `fit`), `zoom_shown` the level drawn, `layout` the last one made."""

    def __init__(self) -> None:
        self.zoom = "fit"  # a level of ZOOMS, or fit: the most detailed that fits
        self.zoom_shown = ZOOMS[0]
        self.layout: Layout | None = None
        # what each view shape (zoom level, grouping, collapsed) has shown, and its layout
        self.seen: dict[tuple[object, ...], Seen] = {}
        # the last collapsed layout: the layout under it, what it was made for, and it
        self._in_place: tuple[Layout, object, Layout] | None = None

    def levels(self, snapshot: MeshSnapshot, o: ViewOptions) -> tuple[str, ...]:
        """The zoom levels `place` tries, the most detailed first: the level asked for,
        or at `fit` those a view may be drawn at (a filter or focus names workloads: they
        stay drawn; a large mesh opens at namespaces)."""
        if self.zoom != "fit":
            return (self.zoom,)
        if o.filter or o.focus:
            return ZOOMS[:-1]
        return ZOOMS[-1:] if len(snapshot.nodes) > OPEN_AT_NAMESPACES else ZOOMS

    def place(
        self,
        snapshot: MeshSnapshot,
        view: GraphView,
        o: ViewOptions,
        size: Size,
        *,
        level_view: GraphView | None = None,
    ) -> Layout:
        """Where the boxes of `view` (the snapshot drawn with the options `o`) go, in
        `size` cells. The layout is of everything the view's grouping has shown since it
        last changed, not of what the filter, focus or cluster leave: those hide boxes,
        they never move the others. A node or call that goes (a weight shifted to 0, a
        filter) keeps its place for when it comes back; a new one is placed around the
        rest. A collapsed namespace or cluster is drawn in place, as one box where its
        band was (`layout.collapsed`), so collapsing and expanding move nothing else. At
        `fit`, the most detailed zoom level that fits is chosen when the layout is made
        (a new node, a new size), never on a refresh. `level_view`: the namespaces
        level's view of the snapshot with `o` (no filter, focus or cluster), made
        already: laid out as it is rather than built again."""
        levels = self.levels(snapshot, o)
        large = len(snapshot.nodes) > OPEN_AT_NAMESPACES
        chosen: Layout | None = None
        # what is laid out: the view without filter, focus, cluster (or collapse, drawn
        # in place), one for full and compact, one for namespaces; the view on screen
        # when it is that already
        plain = not (o.filter or o.focus or o.cluster or o.collapsed or o.collapsed_clusters)
        bases: dict[bool, GraphView] = {}
        for level in levels:
            options = level_options(o, snapshot, level)
            in_place = level != "namespaces"  # that level is every namespace collapsed
            if in_place:
                options = replace(options, collapsed=set(), collapsed_clusters=set())
            if not in_place and level_view is not None:
                bases[in_place] = level_view
            if in_place not in bases:
                # a large mesh lays out what the filter, focus or cluster leave: the
                # whole of it would take longer than a key may (it is still kept for
                # when they come back)
                shown = {} if large else {"filter": "", "focus": None, "cluster": ""}
                bases[in_place] = (
                    view if plain and in_place else build(snapshot, replace(options, **shown))  # type: ignore[arg-type]
                )
            base = bases[in_place]
            # every namespace collapsed, the grouping names only the boxes left open: a
            # level with none the same for every grouping, laid out once (`g` at 20,000
            # services laid the same boxes out again, 1.5 s each)
            grouped = in_place or any(_by_grouping(v) for v in base.nodes.values())
            shape = (level, options.grouping if grouped else None, frozenset(options.collapsed),
                     frozenset(options.collapsed_clusters), size.width)  # fmt: skip
            seen = self.seen.pop(shape, None) or Seen()
            self.seen[shape] = seen  # the most recent last; the oldest shapes go
            while len(self.seen) > SHAPES_KEPT:
                del self.seen[next(iter(self.seen))]
            grew = seen.add(base)
            if grew or seen.layout is None:
                density = COMPACT if level != "full" else FULL
                # compact names give up their ends before a level is given up
                seed = self.layout
                if seed is None and large and level == "namespaces":
                    seed = worst_first(base)
                for room in (0, 16, 14, 13, 12, 10) if level == "compact" else (0,):
                    seen.layout = seen.lay_out(size.width, density, room, seed)
                    if seen.layout.width <= size.width:
                        break
            chosen = seen.layout
            assert chosen is not None
            if chosen.width <= size.width and chosen.height <= size.height:
                break
        assert chosen is not None
        self.zoom_shown = level
        if in_place and (o.collapsed or o.collapsed_clusters):
            chosen = self._collapse_in_place(snapshot, o, chosen, base)
        self.layout = chosen
        return chosen

    def _collapse_in_place(
        self, snapshot: MeshSnapshot, o: ViewOptions, lay: Layout, expanded: GraphView
    ) -> Layout:
        """The collapsed namespaces and clusters over `lay`, the layout of `expanded`."""
        key = (expanded.topology(), frozenset(o.collapsed), frozenset(o.collapsed_clusters))
        if self._in_place is not None and self._in_place[0] is lay and self._in_place[1] == key:
            return self._in_place[2]  # the same on a refresh: the canvas keeps its rows
        whole = build(snapshot, replace(o, filter="", focus=None, cluster=""))
        several = len({v.cluster for v in expanded.nodes.values() if v.cluster}) > 1
        boxes: dict[str, Box] = {}
        for n, v in whole.nodes.items():
            if n.endswith("/*/*") and v.namespace == "*":
                box = lay.clusters.get(v.cluster)
            elif n.endswith("/*"):
                box = lay.groups.get(band(v, several))
            else:
                continue
            if box is not None:
                boxes[n] = box
        member_of = {m: k for k, e in expanded.edges.items() for m in e.members}
        follows = {}
        for k, e in whole.edges.items():
            followed = next((member_of[m] for m in e.members if m in member_of), None)
            if followed is not None:
                follows[k] = followed
        placed = collapsed(lay, boxes, follows)
        self._in_place = (lay, key, placed)
        return placed
