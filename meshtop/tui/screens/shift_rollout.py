"""The shift dialog's guarded rollout (`R`): its settings as typed, the preview of its
steps before `y`, and the rollout itself (`meshtop.rollout`, as `meshtop rollout` runs
it), awaited on the console's loop and said step by step in the dialog, which keeps the
rollout's state (`pending`, `rolling`, `stopping`, `progress`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual.widgets import Input

from meshtop.canary import WEIGHT, Plan, Split
from meshtop.change.workflow import Workflow
from meshtop.errors import MeshtopError, UsageError
from meshtop.gates import parse_gate
from meshtop.model import Route
from meshtop.rollout import Gates, Stopped, rollout, workloads_behind
from meshtop.units import duration, parse_duration

if TYPE_CHECKING:
    from meshtop.tui.screens.shift import ShiftScreen


def preview(split: Split, to: str, step: int, interval_s: float) -> str:
    """What a rollout will do, before it starts: each step's weights, from the stable
    destination alone, and what an abort restores."""
    canary = split.names.index(to)
    others = [j for j in range(len(split.names)) if j != canary]
    if not others:
        return f"{to} is the only destination: nothing to roll out"
    stable = max(others, key=lambda j: (split.weights[j], -j))
    steps = [split]
    while steps[-1].weights[stable] > 0 and len(steps) <= 100:
        steps.append(steps[-1].move(stable, canary, step))
    shown_steps = [s.text() for s in steps[1:4]] + (["…", steps[-1].text()] if len(steps) > 5
                                                   else [s.text() for s in steps[4:]])  # fmt: skip
    return (
        f"rollout of {to}: {step}% from {split.names[stable]} every {duration(interval_s)}: "
        f"{split.text()} → {' → '.join(shown_steps)}; a breach restores {split.text()}. "
        "y starts it, esc cancels"
    )


def rollout_words(text: str) -> tuple[int, float, Gates]:
    """`step 10 interval 1m max-error 1% max-p99 500ms`: the rollout's settings."""
    words = text.split()
    given = dict(zip(words[::2], words[1::2], strict=False))
    unknown = set(given) - {"step", "interval", "max-error", "max-p99"}
    if unknown or len(words) % 2:
        raise UsageError("write: step 10 interval 1m max-error 1% [max-p99 500ms]")
    step = given.get("step", "10")
    if not WEIGHT.fullmatch(step) or not 1 <= int(step) <= 100:
        raise UsageError(f"step {step!r}: give 1 to 100 (percent per step)")
    gates = Gates(
        max_error_rate=parse_gate(f"error_rate>{given.get('max-error', '1%')}").value,
        max_p99_ms=parse_gate(f"p99>{given['max-p99']}").value if "max-p99" in given else None,
    )
    return int(step), parse_duration(given.get("interval", "1m"), what="interval"), gates


def ask_settings(dialog: ShiftScreen) -> None:
    """`R`: the prompt for the rollout's settings, for the selected destination."""
    if dialog.everywhere:
        dialog.say("a rollout steps this copy alone: A first, for this copy only")
        return
    if dialog.rolling or dialog.busy or dialog.rollout_with is None:
        if dialog.rollout_with is None:
            dialog.say("no metrics to judge a rollout by here")
        return
    prompt = dialog.query_one("#rollout-prompt", Input)
    prompt.value = "step 10 interval 1m max-error 1%"
    prompt.add_class("shown")
    prompt.focus()


def take_settings(dialog: ShiftScreen, text: str) -> None:
    """The settings typed: the rollout previewed, for `y` to start it."""
    try:
        settings = rollout_words(text)
    except MeshtopError as exc:
        dialog.say(str(exc))
        return
    to = dialog.split.names[dialog.selected]
    dialog.pending = (to, *settings)
    dialog.say(preview(dialog.read, to, settings[0], settings[1]))


def start(dialog: ShiftScreen) -> None:
    """`y` after the preview: the rollout starts."""
    assert dialog.pending is not None
    to, step, interval_s, gates = dialog.pending
    dialog.pending = None
    dialog.rolling = True
    dialog.stopping = False
    dialog.progress = []
    dialog.say("rolling out: s stops between two steps")
    rolling = roll(dialog, to, step, interval_s, gates)
    dialog.run_worker(rolling, group="rollout", exclusive=True, exit_on_error=False)


def _rolled(dialog: ShiftScreen, text: str, now: Route | None) -> None:
    """The rollout has ended: how, and the route as it is now (None: unread)."""
    dialog.rolling = False
    if now is not None:
        dialog.route = now
        dialog.read = dialog.split = Split.of(now, now.rules[dialog.rule])
    dialog.say(text)


async def roll(dialog: ShiftScreen, to: str, step: int, interval_s: float, gates: Gates) -> None:
    """The rollout of `to` on the dialog's route, said step by step in the dialog; `s`
    stops it between two steps. The whole rollout is one change for `:undo`."""
    assert dialog.rollout_with is not None
    metrics, snapshot = dialog.rollout_with
    route = dialog.route

    async def sleep(seconds: float) -> None:
        waited = 0.0
        while waited < seconds:
            if dialog.stopping:
                raise Stopped
            await asyncio.sleep(min(0.2, seconds - waited))
            waited += 0.2

    change = Workflow(dialog.change.copies, by="rollout")
    taken: list[Plan] = []
    try:
        outcome = await rollout(
            change, metrics, cluster=route.cluster, kind=route.kind,
            namespace=route.namespace, name=route.name, to=to, step=step,
            interval_s=interval_s, gates=gates, nodes=workloads_behind(snapshot),
            sleep=sleep, say=dialog.add_progress, rule=str(dialog.rule),
        )  # fmt: skip
        text = outcome.reason
        if outcome.taken_back is not None:
            taken.append(outcome.taken_back)
    except MeshtopError as exc:
        text = f"rollout not done: {exc}"
    dialog.applied.extend(taken)  # the whole rollout, as one change :undo takes back
    store = dialog.change.copies[route.cluster].store
    try:
        now, _ = await store.read(route.kind, route.namespace, route.name)
        text += f" (now {Split.of(now, now.rules[dialog.rule]).text()})"
    except MeshtopError as exc:
        _rolled(dialog, f"{text}; the route could not be read: {exc}", None)
        return
    _rolled(dialog, text, now)
