"""The audit log of weight changes: one JSON line per attempt (applied, refused, in
conflict, dry run), in the user's state directory, so that what meshtop wrote, and who
asked, can be read back later (`changes`: the weight changes applied, for the detail
screens' charts)."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def path() -> Path:
    """`audit.jsonl` in the user's state directory (`$XDG_STATE_HOME/meshtop` on Linux)."""
    from platformdirs import user_state_path

    return user_state_path("meshtop") / "audit.jsonl"


def record(entry: Mapping[str, Any]) -> Path:
    """Append one attempt, with the time and the user, and return the log's path. A log
    that cannot be written is said, not ignored: an untracked write is not one to make."""
    where = path()
    line = {
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "user": _user(),
        **entry,
    }
    # who changed what, and when, is the user's alone to read: the directory 0700 and the
    # log 0600 when meshtop makes them (a log made earlier, wider, is narrowed too)
    where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(json.dumps(line, sort_keys=True) + "\n")
        out.flush()
        os.fsync(out.fileno())
    return where


def describe(plan: Any, context: str) -> dict[str, Any]:
    """What an audit line says of a weight change: where, which rule, from what to what."""
    route = plan.route
    return {
        "context": context,
        "resource": f"{route.kind} {route.namespace}/{route.name}",
        "rule": plan.rule,
        "resource_version": route.resource_version,
        "before": dict(zip(plan.before.names, plan.before.weights, strict=True)),
        "after": dict(zip(plan.after.names, plan.after.weights, strict=True)),
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True, slots=True)
class WeightChange:
    """A weight change the log says was applied. Its text is as the log has it: outside
    text, for `sanitize.shown` before it reaches a terminal."""

    time: float  # seconds since the epoch
    resource: str  # `VirtualService bookinfo/reviews`, as `describe` names it
    before: tuple[tuple[str, int], ...]  # destination -> weight, as the log lists them
    after: tuple[tuple[str, int], ...]
    by: str  # shift, rollout, console, undo
    context: str


def changes(where: Path | None = None) -> list[WeightChange]:
    """The weight changes applied, in the log's order: lines of anything else (an intent,
    a refusal, a mode, a line cut short) left out. No log: none. Raises `OSError` when
    there is a log that cannot be read."""
    try:
        with (where or path()).open(encoding="utf-8", errors="replace") as log:
            lines = log.readlines()
    except FileNotFoundError:
        return []
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
            if entry.get("outcome") != "applied":
                continue
            found.append(
                WeightChange(
                    datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp(),
                    str(entry["resource"]),
                    tuple((str(k), int(v)) for k, v in entry["before"].items()),
                    tuple((str(k), int(v)) for k, v in entry["after"].items()),
                    str(entry.get("by", "")),
                    str(entry.get("context", "")),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # not a weight change as meshtop writes one
    return found
