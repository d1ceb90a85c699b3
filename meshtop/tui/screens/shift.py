"""`w`: the shift dialog. Weights move with keys and stay valid at every step; `enter`
shows the change as a diff, the server checks it (a dry run), `y` applies it as a patch
that tests the version it was read at. If the route changed meanwhile, nothing is
written: the dialog reads it again, shows what is there now, and says so."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from meshtop.canary import PRESETS, Plan, Split, parse_set, stable_index
from meshtop.change import workflow
from meshtop.change.workflow import Workflow
from meshtop.errors import ConflictError, MeshtopError
from meshtop.model import Route
from meshtop.rollout import Gates
from meshtop.sanitize import said, shown
from meshtop.tui.screens.shift_copies import (
    CopiesRead,
    DoneEverywhere,
    others,
    read_copies,
    write_everywhere,
)
from meshtop.tui.screens.shift_rollout import ask_settings, start, take_settings
from meshtop.tui.screens.sparing import Sparing

BAR = 40


@dataclass
class Done(Message):
    route: Route | None
    plan: Plan | None
    problem: str
    conflict: bool = False


class ShiftScreen(Sparing, ModalScreen[Plan | None]):
    """Dismissed with the plan it applied, or None."""

    AUTO_FOCUS = ""  # the keys are the dialog's; its prompt takes focus only when shown

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back"),
        # the destinations are listed top to bottom: ↑ ↓ as well as ← →
        Binding("up,k,left,h", "select(-1)", "prev", show=False),
        Binding("down,j,right,l,tab", "select(1)", "next", show=False),
        Binding("plus,equals_sign", "nudge(1)", "+1", key_display="+"),
        Binding("minus", "nudge(-1)", "-1", key_display="-"),
        Binding("full_stop", "nudge(5)", "+5", key_display="."),
        Binding("comma", "nudge(-5)", "-5", key_display=","),
        Binding("right_square_bracket", "nudge(10)", "+10", key_display="]"),
        Binding("left_square_bracket", "nudge(-10)", "-10", key_display="["),
        *(Binding(str(i), f"preset({p})", f"{p}%", show=False) for i, p in enumerate(PRESETS)),
        Binding("p", "promote", "promote"),
        Binding("a", "abort", "abort"),
        Binding("enter", "review", "review"),
        Binding("y", "apply", "apply", show=False),
        Binding("R", "rollout", "rollout"),
        Binding("A", "everywhere", "all copies"),
        Binding("s", "stop", "stop", show=False),
        # a modal screen hides the app's keys: its own `?`, for the dialog's keys
        Binding("question_mark", "app.help", "help", key_display="?"),
    ]

    def __init__(
        self,
        change: Workflow,
        route: Route,
        rule: int,
        selected: int = 0,
        rollout_with: tuple[Any, Any] | None = None,
    ) -> None:
        """`change`: the workflow over every cluster's copy of the route (`A` changes
        them all when there are several); `rollout_with`: the metrics source and the
        snapshot a rollout judges by."""
        super().__init__()
        self.change = change
        self.stores = change.copies if len(change.copies) > 1 else {}
        self.everywhere = False
        self.known: dict[str, Route] = {}  # every copy, as read when `A` was pressed
        self.unread: dict[str, str] = {}  # copies that could not be read, and why
        self.report = ""  # what happened in each cluster, when all copies were changed
        self.applied: list[Plan] = []  # the copies written, for :undo
        self.rollout_with = rollout_with
        self.progress: list[str] = []
        self.rolling = False
        self.pending: tuple[str, int, float, Gates] | None = None  # a rollout previewed
        self.stopping = False
        self.route = route
        self.rule = rule
        self.read = Split.of(route, route.rules[rule])  # as read: what the patch tests
        self.split = self.read
        self.selected = min(selected, len(self.read.names) - 1)
        self.reviewing = False
        self.busy = False
        self.message = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="shift"):
            yield Static(id="shift-body")
            yield Input(
                id="rollout-prompt", placeholder="step 10 interval 1m max-error 1% max-p99 500ms"
            )

    def on_mount(self) -> None:
        self._draw()

    def _draw(self) -> None:
        r = self.route
        rule = r.rules[self.rule]
        there = f" in {r.cluster}" if self.stores else ""
        head = Text(shown(f"Shift {r.kind} {r.namespace}/{r.name}{there}"), style="bold")
        head.append(shown(f"  rule {self.rule}{' ' + rule.name if rule.name else ''}"
                          f"  (resourceVersion {r.resource_version})"), style="dim")  # fmt: skip
        lines: list[Any] = [head]
        if self.stores:
            names = shown(", ".join(self.stores))
            lines.append(
                Text(f"applies to every copy: {names}   A this copy only", style="bold")
                if self.everywhere
                else Text(
                    f"applies to this copy ({r.cluster})   A every copy: {names}", style="dim"
                )
            )
        lines.append(Text(""))
        for j, (name, w) in enumerate(zip(self.split.names, self.split.weights, strict=True)):
            share = self.split.share(j)
            filled = round(share * BAR)
            row = Text("▸ " if j == self.selected else "  ", style="bold")
            row.append(f"{shown(name):<14}", style="bold" if j == self.selected else "")
            row.append("█" * filled + "░" * (BAR - filled))
            was = self.read.weights[j]
            row.append(f"  {w:>3}" + ("" if r.kind == "VirtualService" else f" ({share:.0%})"))
            if w != was:
                row.append(f"  was {was}", style="dim")
            lines.append(row)
        lines.append(Text(""))
        if self.reviewing:
            plan = Plan(self.route, self.rule, self.read, self.split)
            lines += [Text(shown(line)) for line in plan.diff()]
            if self.everywhere:
                for cluster, then in self._others().items():
                    copy = f"{cluster}'s copy: {then.text()} → {self.split.text()}"
                    lines.append(Text(shown(copy)))
                lines.append(Text("each copy is checked at the version its cluster has when "
                                  "written", style="dim"))  # fmt: skip
            lines.append(Text("y apply   esc back to editing", style="bold"))
        else:
            keys = ("↑↓←→ select  + - ±1  . , ±5  ] [ ±10  0-4 presets 0/10/25/50/100%  "
                    "p promote  a abort  R rollout  enter review  esc cancel  ? help")  # fmt: skip
            lines.append(Text(keys, style="dim"))
        if self.progress:
            lines += [Text(""), *(Text(said(line)) for line in self.progress[-8:])]
        if self.message:
            lines += [Text(""), Text(said(self.message), style="bold")]
        self.query_one("#shift-body", Static).update(Group(*lines))

    def say(self, message: str) -> None:
        """`message` under the bars, until the next."""
        self.message = message
        self._draw()

    # -- editing ---------------------------------------------------------------------

    def _edit(self, new: Split) -> None:
        if self.busy or self.reviewing or self.rolling:
            return
        self.split = new
        self.say("")

    def action_select(self, step: int) -> None:
        if self.query_one("#rollout-prompt", Input).has_class("shown"):
            return  # ↑ ↓ while the rollout's settings are typed: its target stays
        self.selected = (self.selected + step) % len(self.split.names)
        self._draw()

    def action_nudge(self, delta: int) -> None:
        self._edit(self.split.shift(self.selected, delta))

    def action_preset(self, percent: int) -> None:
        self._edit(self.split.set(self.selected, percent))

    def action_promote(self) -> None:
        self._edit(self.split.promote(self.selected))

    def action_abort(self) -> None:
        self._edit(self.split.abort(stable_index(self.read)))

    def action_back(self) -> None:
        if self.rolling:
            self.say("a rollout is running: s stops it between two steps")
            return
        prompt = self.query_one("#rollout-prompt", Input)
        if prompt.has_class("shown"):
            prompt.remove_class("shown")
            self.set_focus(None)
            return
        if self.pending is not None:
            self.pending = None
            self.say("rollout not started")
            return
        if self.reviewing:
            self.reviewing = False
            self._draw()
        elif not self.busy:
            self.dismiss(None)

    def action_review(self) -> None:
        if self.rolling:  # the rollout writes this route: nothing else does meanwhile
            return
        changes = self.split.weights != self.read.weights
        if self.everywhere:  # or another copy's: after a partial write, the ones left
            changes = changes or any(
                parse_set(self.split.text(), then) != then for then in self._others().values()
            )
        if changes:
            self.reviewing = True
        else:
            self.message = "nothing to change"
        self._draw()

    def _others(self) -> dict[str, Split]:
        """The other copies' splits of the rule being edited, as read when `A` was
        pressed."""
        return others(self.route, self.rule, self.known)

    def action_everywhere(self) -> None:
        """`A`: the change for every cluster's copy of the route, or for this one. The
        other copies are read now: the review shows them as read, and each is written
        only if it is still at the version read here."""
        if not self.stores:
            self.message = "this route has no copy in another cluster"
        elif not (self.busy or self.rolling or self.reviewing):
            self.everywhere = not self.everywhere
            self.message = ""
            if self.everywhere:
                self.busy = True
                self.report = ""
                self.message = "reading every copy…"
                self._read_copies()
        self._draw()

    @work(exclusive=True, group="shift", exit_on_error=False)
    async def _read_copies(self, mine_too: bool = False) -> None:
        """Every other copy as it is now (and this one too, after a write)."""
        self.post_message(await read_copies(self.stores, self.route, mine_too))

    def on_copies_read(self, message: CopiesRead) -> None:
        self.busy = False
        self.known = {c: message.found[c] for c in self.stores if c in message.found}
        self.unread = message.unread
        mine = self.known.get(self.route.cluster)
        if mine is not None and mine is not self.route:  # read again after a write
            self.route = mine
            self.read = self.split = Split.of(mine, mine.rules[self.rule])
        said = [f"{c}: {why}" for c, why in self.unread.items()]
        self.say("; ".join([self.report, *said] if self.report else said))

    def action_apply(self) -> None:
        if self.pending is not None and not (self.busy or self.rolling):
            start(self)
            return
        if not self.reviewing or self.busy or self.rolling:
            return
        self.busy = True
        self.say("the server checks the change (dry run)…")
        if self.everywhere:
            self._write_everywhere(self.split)
        else:
            self._write(Plan(self.route, self.rule, self.read, self.split))

    @work(exclusive=True, group="shift", exit_on_error=False)
    async def _write_everywhere(self, target: Split) -> None:
        """Every copy given the same weights, each at the version read when `A` was
        pressed."""
        change, route, rule = self.change, self.route, self.rule
        try:
            done = await write_everywhere(change, route, rule, self.known, self.unread, target)
        except Exception as exc:  # a bug must not take the console down mid-write
            self.post_message(Done(None, None, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(done)

    def on_done_everywhere(self, message: DoneEverywhere) -> None:
        self.busy = False
        self.reviewing = False
        said = workflow.summary(message.outcomes, message.unread)
        self.report = said
        written = [o.plan for o in message.outcomes if o.result == "applied" and o.plan]
        self.applied += written  # every write of this dialog, for :undo
        if all(o.ok for o in message.outcomes) and not message.unread:
            self.dismiss(written[-1] if written else None)
            return
        self.progress = [f"{o.cluster}: {o.result}" for o in message.outcomes]
        self.progress += [f"{c}: not changed: {why}" for c, why in message.unread.items()]
        self.message = said
        self.busy = True  # every copy read again: edit on from what each has now
        self._read_copies(mine_too=True)
        self._draw()

    @work(exclusive=True, group="shift", exit_on_error=False)
    async def _write(self, plan: Plan) -> None:
        route = plan.route
        try:
            (outcome,) = await self.change.apply({route.cluster: plan})
            if outcome.error is not None:
                raise outcome.error
        except ConflictError as exc:
            try:
                store = self.change.copies[route.cluster].store
                now, _ = await store.read(route.kind, route.namespace, route.name)
            except MeshtopError:
                now = None
            self.post_message(Done(now, None, str(exc), conflict=True))
        except MeshtopError as exc:
            self.post_message(Done(None, None, str(exc)))
        except Exception as exc:  # a bug must not take the console down mid-write
            self.post_message(Done(None, None, f"{type(exc).__name__}: {exc}"))
        else:
            note = f" ({outcome.note})" if outcome.note else ""
            self.post_message(Done(outcome.applied, plan, note))

    def on_done(self, message: Done) -> None:
        self.busy = False
        self.reviewing = False
        if message.plan is not None:
            self.applied.append(message.plan)
            if message.problem:  # written, but the audit log could not say so
                self.app.notify(said(message.problem), severity="warning")
            self.dismiss(message.plan)
            return
        if message.conflict and message.route is not None:
            self.route = message.route  # what is there now: edit from it, or leave
            self.read = self.split = Split.of(message.route, message.route.rules[self.rule])
            now = ",".join(
                f"{n}={w}" for n, w in zip(self.read.names, self.read.weights, strict=True)
            )
            self.message = f"someone changed it meanwhile; nothing was written. Now: {now}"
        else:
            self.message = f"not applied: {message.problem}"
        self._draw()

    # -- a guarded rollout from here ---------------------------------------------------

    def action_rollout(self) -> None:
        """`R`: roll the selected destination out, step by step, inside the gates."""
        ask_settings(self)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.remove_class("shown")
        self.set_focus(None)
        take_settings(self, event.value)

    def action_stop(self) -> None:
        if self.rolling:
            self.stopping = True
            self.say("stopping at the next step…")

    def add_progress(self, text: str) -> None:
        """A step of the rollout, said."""
        self.progress.append(text)
        self._draw()
