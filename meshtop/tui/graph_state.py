"""What the console's graph draws, without the screen: the view options (filter, focus,
cluster, collapsed, grouping), the view they make of each snapshot, its layout, and the
changes to them that the keys and `:` commands ask for, each checked against the
snapshot. The main screen draws the result and says what these say."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from textual.geometry import Size

from meshtop.errors import MeshtopError, UsageError
from meshtop.graphview import GraphView, ViewOptions, apply_filter, build, resolve
from meshtop.health import HealthMemory, Problem, Thresholds, problems
from meshtop.layout import Layout
from meshtop.model import MeshSnapshot, NodeKind, clusters
from meshtop.tui.placement import Placement, level_options


class GraphState:
    def __init__(self, thresholds: Thresholds) -> None:
        self.options = ViewOptions(thresholds=thresholds)
        self.memory = HealthMemory()  # health that does not flap between refreshes
        self.view: GraphView | None = None
        self.placement = Placement()

    def draw(self, snapshot: MeshSnapshot, size: Size) -> tuple[GraphView, Layout, str]:
        """The view of `snapshot` and its layout in `size` cells, and what to say about
        it ("" for nothing): a filter, focus or cluster that no longer fits is cleared."""
        view, lay, told = self.make(snapshot, size, self.options)
        self.view = view
        return view, lay, told

    def make(
        self, snapshot: MeshSnapshot, size: Size, o: ViewOptions
    ) -> tuple[GraphView, Layout, str]:
        """`draw` with the options `o` (cleared there as need be), leaving `view` as it
        is: what a worker makes for a large mesh, on a copy of the options, while the
        screen keeps the view it shows (`options_copy`)."""
        memory, told = self.memory, ""
        if self.placement.levels(snapshot, o) == ("namespaces",) and not (
            o.filter or o.focus or o.cluster
        ):
            # drawn at namespaces only (a large mesh at fit, issue 17): that level's view
            # alone, built once, not the workloads' first and the level's twice more
            view = build(snapshot, level_options(o, snapshot, "namespaces"), memory)
            return view, self.placement.place(snapshot, view, o, size, level_view=view), told
        try:
            view = build(snapshot, o, memory)
        except MeshtopError as exc:  # a filter, focus or cluster that no longer fits
            o.focus, o.filter = None, ""
            told = f"{exc}; filter and focus cleared"
            try:
                view = build(snapshot, o, memory)
            except MeshtopError:  # the cluster itself is gone
                told = f"{exc}; filter, focus and cluster cleared"
                o.cluster = ""
                view = build(snapshot, o, memory)
        lay = self.placement.place(snapshot, view, o, size)
        if self.placement.zoom_shown == "namespaces":  # every namespace drawn as one box
            level = level_options(o, snapshot, "namespaces")
            try:
                view = build(snapshot, level, memory)
            except MeshtopError:  # a focus on a workload, which this level does not draw
                view = build(snapshot, replace(level, focus=None), memory)
                told = "the namespaces zoom level draws no workload to focus on: + does"
        return view, lay, told

    def options_copy(self) -> ViewOptions:
        """The options as they are, for a worker: the keys change the screen's own."""
        o = self.options
        return replace(o, collapsed=set(o.collapsed), collapsed_clusters=set(o.collapsed_clusters))

    def why_empty(self) -> str:
        """What the canvas says when nothing is shown."""
        o = self.options
        if o.filter.startswith(("ns=", "namespace=")) and " " not in o.filter:
            ns = o.filter.split("=", 1)[1]
            return f" no namespace {ns!r} in the graph: esc shows every namespace"
        if o.filter:
            return f" nothing matches the filter {o.filter!r}: esc clears it"
        if o.cluster:
            return f" nothing in cluster {o.cluster!r}: :cluster all shows every cluster"
        return " no traffic in the window yet"

    def set_filter(self, text: str, snapshot: MeshSnapshot | None) -> None:
        apply_filter(GraphView({}, {}), text)  # the words make sense, snapshot or not
        o = self.options
        o.filter = text
        # a filter may hide the focused node: then the focus goes, not the filter
        unfocused = replace(o, focus=None)
        if (
            o.focus
            and snapshot is not None
            and not set(o.focus[0]) <= set(build(snapshot, unfocused).nodes)
        ):
            o.focus = None

    def set_focus(self, words: list[str], snapshot: MeshSnapshot | None) -> None:
        """`NODE [HOPS]`: a node and what is up to HOPS calls away; no words: no focus."""
        if not words:
            self.options.focus = None
            return
        if snapshot is None:
            raise UsageError("no graph yet: wait for the first refresh")
        hops = 1
        if len(words) > 1 and re.fullmatch(r"\d{1,3}", words[-1], re.ASCII):
            hops, words = int(words[-1]), words[:-1]
        # any node of the graph, not only those the current focus shows
        whole = build(snapshot, replace(self.options, focus=None))
        self.options.focus = (resolve(whole, " ".join(words)), hops)

    def set_cluster(self, name: str, snapshot: MeshSnapshot | None) -> None:
        """One cluster of several, or every one (`all`)."""
        cluster = "" if name == "all" else name
        there = clusters(snapshot.nodes.values()) if snapshot is not None else []
        if cluster and snapshot is not None and cluster not in there:
            raise UsageError(f"no cluster {cluster!r} in the mesh; there are {', '.join(there)}")
        self.options.cluster = cluster

    def collapse(self, words: list[str], collapse: bool = True) -> None:
        """`NS` or `cluster NAME` collapsed into one box, or expanded."""
        o = self.options
        if words[:1] == ["cluster"] and len(words) == 2:
            names, name = o.collapsed_clusters, words[1]
        elif len(words) == 1:
            names, name = o.collapsed, words[0]
        else:
            raise UsageError(f"{'collapse' if collapse else 'expand'} takes NS or cluster NAME")
        (names.add if collapse else names.discard)(name)

    def toggle_collapsed(self, node_id: str, what: str) -> str:
        """The `namespace` or `cluster` of the node collapsed into one box, or back; the
        key of what was toggled. A node without one raises, saying why."""
        assert self.view is not None
        node = self.view.nodes[node_id]
        if node.kind in (NodeKind.UNKNOWN, NodeKind.EXTERNAL, NodeKind.SERVICE_ENTRY):
            raise UsageError(f"unknown peers and external hosts have no {what} to collapse")
        if what == "namespace" and node.namespace == "*":
            raise UsageError("this box is a whole cluster: C expands it")
        key = node.namespace if what == "namespace" else node.cluster
        o = self.options
        (o.collapsed if what == "namespace" else o.collapsed_clusters).symmetric_difference_update(
            {key}
        )
        return key

    def nodes_in(self, what: str, key: str) -> list[str]:
        """The nodes of the view in the namespace or cluster `key`, in order."""
        assert self.view is not None
        return sorted(
            n for n, v in self.view.nodes.items()
            if (v.namespace if what == "namespace" else v.cluster) == key
        )  # fmt: skip

    def problems(self, snapshot: MeshSnapshot) -> list[Problem]:
        """The nodes drawn that are failing or degraded, worst first (`health.problems`)."""
        view = self.view
        if view is None:
            return []
        return problems(snapshot, view.grades, {n: v.members for n, v in view.nodes.items()})

    @staticmethod
    def find(
        text: str, view: GraphView | None, order: Callable[[str], object] | None = None
    ) -> list[str]:
        """The nodes drawn whose name is `text` (any case), then those it starts, then
        those that hold it; by `order` (where they are drawn) within each. A name is the
        label drawn (`reviews v3`) or a member's workload name, alone or with its
        namespace (`reviews-v3`, `bookinfo/reviews-v3`)."""
        needle = text.strip().lower()
        if view is None or not needle:
            return []
        tiers: dict[str, int] = {}
        for n, v in view.nodes.items():
            names = [v.label.lower()]
            for m in v.members:  # `cluster/namespace/workload`
                parts = m.lower().split("/")
                names += [parts[-1], "/".join(parts[-2:])]
            tier = min(
                (
                    0 if x == needle else 1 if x.startswith(needle) else 2
                    for x in names
                    if needle in x
                ),
                default=None,
            )
            if tier is not None:
                tiers[n] = tier
        key = order or (lambda n: view.nodes[n].label)
        return sorted(tiers, key=lambda n: (tiers[n], key(n), n))
