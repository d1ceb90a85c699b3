"""A change to a route's or a DestinationRule's spec (issue 21): an `EditPlan` holds the
spec as read, the spec to write and meshtop's annotations (the fault's expiry); its JSON
patch tests the resource version and the spec read, so a concurrent change is refused,
never overwritten; `undo_edit` takes one back. The plans are made by pure functions of
the object as read: `steering.edit` (a route's rules, faults, timeouts and retries) and
`steering.breaker` (a DestinationRule's circuit breaker). The change workflow
(`meshtop.change.workflow`) checks, audits and writes them like a weight change."""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshtop.errors import ConflictError, UsageError
from meshtop.model.policy import FAULT_EXPIRES


@dataclass(frozen=True, slots=True)
class EditPlan:
    """`before` and `after` are the whole spec; `annotations` are meshtop's to set
    (None: to remove) and `had` what those keys held when read (absent: not there)."""

    kind: str  # "VirtualService", "HTTPRoute" or "DestinationRule"
    cluster: str
    namespace: str
    name: str
    resource_version: str
    action: str  # "steer", "fault", "clear fault", "expire fault", "timeout", "retries", …
    what: str  # the change in words
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    annotations: Mapping[str, str | None] = field(default_factory=dict)
    had: Mapping[str, str] = field(default_factory=dict)
    annotated: bool = False  # whether the object had an annotations map when read

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def changed(self) -> bool:
        return dict(self.before) != dict(self.after) or any(
            self.had.get(k) != v for k, v in self.annotations.items()
        )

    def diff(self) -> list[str]:
        """The change as a unified diff of the spec (YAML), then the annotations."""
        import yaml  # not at start-up: `meshtop --help` pays for no YAML

        def lines(spec: Mapping[str, Any]) -> list[str]:
            return yaml.safe_dump(dict(spec), sort_keys=False, width=1000).splitlines()

        out = list(
            difflib.unified_diff(
                lines(self.before), lines(self.after), "before", "after", n=2, lineterm=""
            )
        )
        for key, value in self.annotations.items():
            if self.had.get(key) != value:
                if key in self.had:
                    out.append(f"-annotation {key}: {self.had[key]}")
                if value is not None:
                    out.append(f"+annotation {key}: {value}")
        return out

    def json_patch(self) -> list[dict[str, Any]]:
        """RFC 6902: the resource version and the spec as read are tested first (a change
        since is refused by the server), then the spec and the annotations written."""
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": self.resource_version},
            {"op": "test", "path": "/spec", "value": dict(self.before)},
            {"op": "replace", "path": "/spec", "value": dict(self.after)},
        ]
        todo = {k: v for k, v in self.annotations.items() if self.had.get(k) != v}
        if not self.annotated and any(v is not None for v in todo.values()):
            ops.append({"op": "add", "path": "/metadata/annotations",
                        "value": {k: v for k, v in todo.items() if v is not None}})  # fmt: skip
            return ops
        for key, value in todo.items():
            path = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
            if value is None:
                if key in self.had:
                    ops.append({"op": "remove", "path": path})
            else:
                ops.append({"op": "add", "path": path, "value": value})
        return ops


def read(
    obj: Mapping[str, Any],
) -> tuple[str, str, str, str, dict[str, Any], dict[str, str], bool]:
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations")
    mine = {k: str(v) for k, v in (annotations or {}).items() if k == FAULT_EXPIRES}
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise UsageError(f"{obj.get('kind', 'the object')} has no spec to change")
    return (
        str(obj.get("kind", "")),
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
        str(meta.get("resourceVersion", "")),
        copy.deepcopy(dict(spec)),
        mine,
        isinstance(annotations, Mapping),
    )


def plan_of(
    obj: Mapping[str, Any],
    cluster: str,
    action: str,
    what: str,
    after: Mapping[str, Any],
    annotations: Mapping[str, str | None] | None = None,
) -> EditPlan:
    kind, namespace, name, version, before, had, annotated = read(obj)
    return EditPlan(kind, cluster, namespace, name, version, action, what, before, after,
                    dict(annotations or {}), had, annotated)  # fmt: skip


def undo_edit(
    now: Mapping[str, Any], plan: EditPlan, applied: Mapping[str, Any] | None = None
) -> EditPlan:
    """The change that takes `plan` back, from the object as it is `now`: refused (a
    `ConflictError`) when its spec is no longer as the change left it (`applied`, the
    object the server answered the write with, else the plan's own `after`)."""
    _, _, _, version, spec, had, annotated = read(now)
    left = dict((applied or {}).get("spec") or plan.after)
    if spec != left:
        raise ConflictError(f"{plan.ref} changed since meshtop's change; :undo leaves it as it is")
    back = {k: plan.had.get(k) for k in plan.annotations}
    before = copy.deepcopy(dict(plan.before))
    what = f"undo: {plan.what}"
    return EditPlan(plan.kind, plan.cluster, plan.namespace, plan.name, version, plan.action,
                    what, spec, before, back, had, annotated)  # fmt: skip
