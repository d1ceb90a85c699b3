"""The main screen's routes tab and the changes made from the console: the table filled
from `routes_view`, the route a key acts on, the shift dialog opened on it, what the dialog
wrote (for `:undo`), an mTLS mode set by `:mtls`, what a traffic-policy command wrote
(`tui/policy.py`), and `:undo` itself, shown before it is made. Every write goes through
the change workflow; reads and writes are awaited on the console's own event loop.
Over 400 lines: the routes tab, the shift dialog's result, `:mtls` and `:undo` of every
kind share the console's copies of each cluster's stores."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import DataTable

from meshtop import routes_view
from meshtop.canary import Plan, splittable
from meshtop.change import edits, workflow
from meshtop.change.workflow import Copy, EditOutcome, PolicyCopy, Workflow
from meshtop.copies import same_route
from meshtop.detail import routes_to
from meshtop.errors import MeshtopError, UsageError
from meshtop.federation import where
from meshtop.graphview import GraphView
from meshtop.model import MeshSnapshot, Route
from meshtop.posture import MtlsMode, MtlsPlan, plan_mode
from meshtop.sources.protocols import ControlPlane
from meshtop.tui.screens.confirm import ConfirmScreen
from meshtop.tui.screens.shift import ShiftScreen
from meshtop.tui.travel import clock_words, past_moment
from meshtop.tui.widgets.posture import read_configs
from meshtop.tui.widgets.tables import fill

if TYPE_CHECKING:
    from meshtop.tui.policy import Policy
    from meshtop.tui.screens.main import MainScreen

ROUTE_COLUMNS = [(title, title) for title in routes_view.COLUMNS]
LISTED = 6  # of a long list in a preview (the workloads a mode changes), the first ones


def condensed(lines: list[str], most: int = LISTED) -> list[str]:
    """A preview that fits a screen: of each list (the indented lines under a line of its
    own), the first `most` and how many more."""
    out: list[str] = []
    run = 0
    for i, line in enumerate(lines):
        run = run + 1 if line.startswith("  ") else 0
        if run <= most:
            out.append(line)
        nested = i + 1 < len(lines) and lines[i + 1].startswith("  ")
        if run > most and not nested:
            out.append(f"  … and {run - most} more")
    return out


def previews(plans: Mapping[str, MtlsPlan], several: bool) -> list[str]:
    """Each cluster's mode change as a person reviews it, under its name when there are
    several clusters."""
    lines: list[str] = []
    for cluster, plan in plans.items():
        lines += [f"{cluster}:"] if several else []
        lines += [("  " if several else "") + line for line in condensed(plan.preview())]
    return lines


def _route_cells(row: routes_view.RouteRow) -> list[str | Text]:
    """A row of the routes tab, its problem in bold red, a fault past its end too."""
    *cells, problem, policy = row.cells
    late = "bold red" if "EXPIRED" in policy else ""
    return [*cells, Text(problem, style="bold red") if problem else "", Text(policy, style=late)]


async def show_routes(
    table: DataTable[str | Text],
    snapshot: MeshSnapshot,
    planes: Mapping[str, ControlPlane],
    timeout_s: float,
) -> None:
    """The routes tab (`routes_view`): every rule's destinations, configured beside
    observed, and what is wrong with them, from each cluster's control plane. At a past
    moment the routes are still as they are now (the control plane keeps no past): one
    line says so."""
    if not planes:
        return
    moment = past_moment(table.app)
    main = getattr(table.app, "main", None)
    if moment is not None and main is not None:
        when = clock_words(*moment)
        main.say(f"routes as they are now, not at {when}: the control plane keeps no past")
    found = await routes_view.rows(snapshot, planes, timeout_s)
    keep = table.cursor_row
    fill(table, ROUTE_COLUMNS, ((row.key, _route_cells(row)) for row in found))
    if table.row_count:
        table.move_cursor(row=min(keep, table.row_count - 1))


def row_route(
    table: DataTable[str | Text], snapshot: MeshSnapshot | None
) -> tuple[Route, int, int] | None:
    """The route, rule and destination of the routes tab's selected row."""
    if snapshot is None or not table.row_count:
        return None
    key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
    route_id, rule, destination = key.rsplit("|", 2)
    route = next((r for r in snapshot.routes if r.id == route_id), None)
    return (route, int(rule), int(destination)) if route is not None else None


def node_route(
    view: GraphView | None, snapshot: MeshSnapshot | None, selected: str | None
) -> tuple[Route, int, int] | None:
    """The route that splits the selected node's traffic, with the node's version."""
    if view is None or snapshot is None or selected is None:
        return None
    node = view.nodes.get(selected)
    if node is None:
        return None
    versions = {snapshot.nodes[m].version for m in node.members if m in snapshot.nodes}
    for route in routes_to(snapshot, node.members):
        for i in splittable(route.rules):
            names = [d.subset or d.host for d in route.rules[i].destinations]
            hit = next((j for j, n in enumerate(names) if n in versions), 0)
            if not route.rules[i].matches:
                return route, i, hit
    return None


class Changes:
    """The changes of one console session: the shift dialog opened on a route, `:mtls`,
    and `:undo` of the last change, whichever kind: `last_plans` (a route's copy per
    cluster, maybe in rounds), `last_modes` (a PeerAuthentication per cluster) or
    `last_edits` (an object's spec per cluster: a steering rule, a fault, a timeout or
    retries, a circuit breaker); one change leaves the others empty."""

    def __init__(self, screen: MainScreen) -> None:
        self.screen = screen
        self.last_plans: list[Plan] = []
        self.last_modes: dict[str, MtlsPlan] = {}
        self.last_edits: tuple[dict[str, Copy], list[EditOutcome]] | None = None

    @cached_property
    def policy(self) -> Policy:
        """The traffic-policy commands (`:steer`, `:fault`, …) and the end of a fault."""
        from meshtop.tui.policy import Policy

        return Policy(self.screen)

    def shift(self, found: tuple[Route, int, int] | None) -> None:
        """`w`: the shift dialog for `found` (a route, its rule, the destination to
        select), once it has been read as it is now."""
        screen = self.screen
        if not screen.app.stores:
            screen.say("no control plane to write to: the console reads metrics only here")
            return
        if found is None:
            screen.say("no route splits this one's traffic by weight")
            return
        route, rule, selected = found
        if len(route.rules[rule].destinations) < 2:
            screen.say(f"{route.name} rule {rule} has one destination: nothing to shift")
            return
        screen.run_worker(
            self._open_shift(route, rule, selected),
            group="shift-open",
            exclusive=True,
            exit_on_error=False,
        )

    def copies_of(self, route: Route) -> dict[str, Copy]:
        """Where each cluster's copy of `route` is read and written: every cluster with a
        copy of it over several clusters (`A` in the dialog changes them all), else the
        one store there is."""
        snapshot = self.screen.app.snapshot
        clusters = [route.cluster]
        if len(self.screen.app.stores) > 1 and snapshot is not None:
            same = same_route(route)  # in the snapshot's order of clusters
            clusters = [c.cluster for c in snapshot.routes if same_route(c) == same]
            clusters += [] if route.cluster in clusters else [route.cluster]
        return {c: self.copy_of(c) for c in clusters}

    def copy_of(self, cluster: str) -> Copy:
        """Where the copy of a route in `cluster` is read and written."""
        stores = self.screen.app.stores
        # a mesh of one has one store, "" (its routes name their cluster as the API does)
        store = stores.get("" if list(stores) == [""] else cluster)
        if store is None:
            raise UsageError(f"no cluster {cluster!r} here; the clusters are {', '.join(stores)}")
        return Copy(cluster, store, where(store))

    async def _open_shift(self, route: Route, rule: int, selected: int) -> None:
        """Read the route as it is now (the dialog tests that version), and leave alone a
        route that Flagger or Argo Rollouts steers: a change there would fight it."""
        app = self.screen.app
        copies = self.copies_of(route)
        mine = {route.cluster: copies[route.cluster]}
        try:
            reading = await workflow.read(mine, [route.kind], route.namespace, route.name)
        except MeshtopError as exc:
            self.screen.say(f"cannot read {route.name}: {exc}")
            return
        if reading.unread:
            self.screen.say(f"cannot read {route.name}: {reading.unread[route.cluster]}")
            return
        now, steered = reading.found[route.cluster]
        if steered:
            what = f"{route.kind} {route.namespace}/{route.name}"
            self.screen.say(f"{what} is steered by {steered}: meshtop leaves it alone here "
                            "(meshtop shift --force changes it)")  # fmt: skip
            return
        dialog = ShiftScreen(
            Workflow(copies, by="console"), now, rule, selected, (app.metrics, app.snapshot)
        )
        app.push_screen(dialog, lambda plan: self._shifted(dialog, plan))

    def _shifted(self, dialog: ShiftScreen, plan: Plan | None) -> None:
        """After the dialog: what it wrote (one copy, or several, maybe in rounds), for
        `:undo`, and said once per cluster with the weights written last."""
        if not dialog.applied:
            return
        self.last_plans, self.last_modes, self.last_edits = list(dialog.applied), {}, None
        last = {p.route.cluster: p for p in dialog.applied}  # the last write in each
        r = dialog.applied[-1].route
        where_ = f" in {', '.join(last)}" if dialog.stores else ""
        done = f"applied to {r.kind} {r.namespace}/{r.name}{where_}: "
        done += "; ".join(dict.fromkeys(p.after.text() for p in last.values()))
        if dialog.report and plan is None:  # not every copy: say which were not
            done += f" ({dialog.report})"
        self.screen.say(f"{done}; :undo takes it back")
        self.screen.app.request_refresh()

    def undo(self) -> None:
        """`:undo`: the last change of this session taken back, once shown and confirmed."""
        app = self.screen.app
        if app.settings.read_only or not (app.stores or app.policies):
            raise UsageError("read-only: nothing to undo here")
        if self.last_edits is not None:
            work = self._undo_edits(*self.last_edits)
            self.screen.run_worker(work, group="undo", exit_on_error=False)
            return
        if self.last_modes:
            work = self._undo_mode(self.last_modes)
            self.screen.run_worker(work, group="undo", exit_on_error=False)
            return
        if not self.last_plans:
            raise UsageError(
                "nothing to undo: no weight change in this session, no mTLS mode, no traffic policy"
            )
        self.screen.run_worker(self._undo(self.last_plans), group="undo", exit_on_error=False)

    async def _undo(self, plans: list[Plan]) -> None:
        """Each copy's way back to what it was, planned from the route as it is now (a
        copy no longer as meshtop left it is said and left alone), shown for `y`."""
        last = {p.route.cluster: p for p in plans}  # each copy's last change, on the first's
        first = {p.route.cluster: p for p in reversed(plans)}
        copies = {c: self.copy_of(c) for c in last}
        back: dict[str, Plan] = {}
        failed: list[str] = []
        for cluster, plan in last.items():
            r = plan.route
            whole = Plan(r, plan.rule, first[cluster].before, plan.after)  # every round
            try:
                now, _ = await copies[cluster].store.read(r.kind, r.namespace, r.name)
                back[cluster] = workflow.undo_plan(now, whole)
            except MeshtopError as exc:
                failed.append(f"{cluster}: {exc}" if len(last) > 1 else str(exc))
        if not back:
            self.last_plans = []
            self.screen.say(f"cannot undo: {'; '.join(failed)}")
            return
        lines = [line for p in back.values() for line in p.diff()]
        name = plans[0].route.name
        self._offer_undo(copies, back, failed, lines, name, name)

    def _forget(self) -> None:
        """The session's last change, once taken back: nothing left to undo."""
        self.last_plans, self.last_modes, self.last_edits = [], {}, None

    def _offer_undo(
        self,
        copies: Mapping[str, Copy | PolicyCopy],
        back: Mapping[str, Any],
        failed: list[str],
        lines: list[str],
        title: str,
        name: str,
    ) -> None:
        """Every kind of change's way back, shown (with what cannot be undone) for `y`,
        then written through the workflow (by `undo`) and said in one line."""

        def confirmed(yes: bool | None) -> None:
            if yes:
                work = self._apply_undo(copies, back, failed, name)
                self.screen.run_worker(work, group="undo", exit_on_error=False)

        lines = lines + [f"not undone: {why}" for why in failed]
        self.screen.app.push_screen(ConfirmScreen(f"undo the last change of {title}", lines),
                                    confirmed)  # fmt: skip

    async def _apply_undo(
        self,
        copies: Mapping[str, Copy | PolicyCopy],
        back: Mapping[str, Any],
        failed: list[str],
        name: str,
    ) -> None:
        try:
            mine: dict[str, Any] = {c: copies[c] for c in back}
            outcomes = await Workflow(mine, by="undo").apply(back)
        except MeshtopError as exc:  # the audit log: nothing was written
            self.screen.say(f"cannot undo: {exc}")
            return
        self._forget()
        undone = [o.cluster for o in outcomes if o.ok]
        failed = failed + [
            f"{o.cluster}: {o.error or o.result}" if len(back) > 1 else str(o.error or o.result)
            for o in outcomes
            if not o.ok
        ]
        if failed:
            done = f"; undone in {', '.join(undone)}" if undone else ""
            self.screen.say(f"cannot undo: {'; '.join(failed)}{done}")
        else:
            self.screen.say(f"undone: {name} is back to what it was")
        self.screen.app.request_refresh()

    # -- an mTLS mode (:mtls) ---------------------------------------------------------------

    def mtls(self, namespace: str, workload: str, mode: MtlsMode) -> None:
        """`:mtls NAMESPACE[/WORKLOAD] strict|permissive`: planned from each cluster's
        PeerAuthentications as they are now and the traffic on screen, shown with the
        workloads whose mode changes and what STRICT would refuse; `y` writes it."""
        app = self.screen.app
        if app.settings.read_only:
            raise UsageError("read-only: :mtls writes nothing here")
        if not app.policies:
            raise UsageError(
                "no control plane to write to: PeerAuthentications are written to the "
                "cluster of --context"
            )
        if app.snapshot is None:
            raise UsageError("no traffic read yet to judge the change by: try again")
        work = self._plan_mode(app.snapshot, namespace, workload, mode)
        self.screen.run_worker(work, group="mtls", exclusive=True, exit_on_error=False)

    def _policy_copy(self, cluster: str) -> PolicyCopy:
        store = self.screen.app.policies[cluster]
        return PolicyCopy(cluster, store, where(store))

    async def _plan_mode(
        self, snapshot: MeshSnapshot, namespace: str, workload: str, mode: MtlsMode
    ) -> None:
        app = self.screen.app
        target = f"{namespace}/{workload}" if workload else namespace
        configs, failed = await read_configs(app.policies, app.settings.timeout_s)
        plans: dict[str, MtlsPlan] = {}
        for cluster, config in configs.items():
            try:  # on a thread: at 20,000 services a namespace's effect takes a while
                plans[cluster] = await asyncio.to_thread(
                    plan_mode, snapshot, config, cluster, namespace, workload, mode
                )
            except UsageError as exc:
                failed[cluster] = str(exc)
        if not plans:
            self.screen.say(f"cannot plan :mtls {target}: {'; '.join(failed.values())}")
            return
        if not any(p.changed for p in plans.values()):
            self.screen.say(f"nothing to change: {target} is {mode.value} already")
            return
        lines = previews(plans, len(app.policies) > 1)
        lines += [f"not planned in {c or 'the cluster'}: {why}" for c, why in failed.items()]
        self.screen.app.push_screen(
            ConfirmScreen(f"set {target} to {mode.value}", lines),
            lambda yes: self._mode_confirmed(plans, target) if yes else None,
        )

    def _mode_confirmed(self, plans: dict[str, MtlsPlan], target: str) -> None:
        work = self._apply_mode(plans, target)
        self.screen.run_worker(work, group="mtls", exclusive=True, exit_on_error=False)

    async def _apply_mode(self, plans: dict[str, MtlsPlan], target: str) -> None:
        copies = {c: self._policy_copy(c) for c in plans}
        try:
            outcomes = await Workflow(copies, by="console").apply(plans)
        except MeshtopError as exc:  # the audit log: nothing was written
            self.screen.say(f"cannot set the mode of {target}: {exc}")
            return
        done = {o.cluster: o.plan for o in outcomes if o.result == "applied" and o.plan}
        if done:
            self.last_modes, self.last_plans, self.last_edits = done, [], None
        several = len(plans) > 1
        failed = [f"{o.cluster}: {o.result}" if several else o.result for o in outcomes if not o.ok]
        if done:
            where_ = f" in {', '.join(done)}" if several else ""
            said = f"{target} is {next(iter(done.values())).mode.value}{where_}"
            said += f"; NOT in {'; '.join(failed)}" if failed else ""
            said += "; :undo takes it back"
        else:
            said = f"nothing was written: {'; '.join(failed)}"
        self.screen.say("; ".join([said, *(o.note for o in outcomes if o.note)]))
        self.screen.app.request_refresh()

    async def _undo_mode(self, plans: dict[str, MtlsPlan]) -> None:
        """Each cluster's way back, planned from its PeerAuthentication as it is now (one
        no longer as meshtop left it is said and left alone), shown for `y`."""
        copies = {c: self._policy_copy(c) for c in plans}
        configs, unread = await read_configs(
            {c: copy.store for c, copy in copies.items()}, self.screen.app.settings.timeout_s
        )
        back: dict[str, MtlsPlan] = {}
        failed = [f"{c or 'the cluster'}: {why}" for c, why in unread.items()]
        for cluster, config in configs.items():
            plan = plans[cluster]
            key = (plan.policy.namespace, plan.policy.name)
            now = next(
                (p for p in config.peer_authentications if (p.namespace, p.name) == key), None
            )
            try:
                back[cluster] = workflow.undo_mode(now, plan)
            except MeshtopError as exc:
                failed.append(f"{cluster}: {exc}" if len(plans) > 1 else str(exc))
        if not back:
            self.last_modes = {}
            self.screen.say(f"cannot undo: {'; '.join(failed)}")
            return
        first = next(iter(plans.values()))
        lines = previews(back, len(plans) > 1)
        self._offer_undo(copies, back, failed, lines, first.policy.ref,
                         next(iter(back.values())).target)  # fmt: skip

    # -- a route's or a DestinationRule's spec (tui/policy.py) ------------------------------

    def edited(self, copies: dict[str, Copy], outcomes: list[EditOutcome]) -> None:
        """What a traffic-policy command wrote, for `:undo`."""
        self.last_edits, self.last_plans, self.last_modes = (copies, outcomes), [], {}

    async def _undo_edits(self, copies: dict[str, Copy], outcomes: list[EditOutcome]) -> None:
        """Each copy's way back, planned from the object as it is now (one no longer as
        meshtop left it is said and left alone), shown for `y`."""
        try:
            back, refused = await edits.undo_plans(copies, outcomes)
        except MeshtopError as exc:
            self.screen.say(f"cannot undo: {exc}")
            return
        several = len(copies) > 1
        failed = [f"{c}: {why}" if several else str(why) for c, why in refused.items()]
        if not back:
            self.last_edits = None
            self.screen.say(f"cannot undo: {'; '.join(failed) or 'nothing was applied'}")
            return
        lines: list[str] = []
        for cluster, plan in back.items():
            lines += [f"{cluster}:"] if several else []
            lines += [("  " if several else "") + line for line in plan.diff()]
        first = next(iter(back.values()))
        self._offer_undo(copies, back, failed, lines, first.ref, first.ref)
