"""`meshtop trace --format json` and `meshtop traces --format json`: a trace's normalised
spans, and a trace list, whatever backend they came from (README, "Traces")."""

from __future__ import annotations

from collections.abc import Sequence

from meshtop.export.json_report import one_item_per_line
from meshtop.model import Trace, TraceSummary


def render(trace: Trace) -> str:
    return one_item_per_line(
        {
            "trace_id": trace.trace_id,
            "spans": [
                {
                    "span_id": s.span_id,
                    "parent_id": s.parent_id,
                    "service": s.service,
                    "operation": s.operation,
                    "kind": s.kind or None,
                    "start_us": s.start_us,
                    "duration_us": s.duration_us,
                    "error": s.error,
                    "tags": dict(sorted(s.tags.items())),
                }
                for s in sorted(trace.spans, key=lambda s: (s.start_us, s.span_id))
            ],
        }
    )


def render_list(found: Sequence[TraceSummary]) -> str:
    return one_item_per_line(
        {
            "traces": [
                {
                    "trace_id": t.trace_id,
                    "start_us": t.start_us,
                    "duration_us": t.duration_us,
                    "root": t.root,
                    "services": list(t.services),
                    "span_count": t.span_count,
                    "error": t.error,
                }
                for t in found
            ]
        }
    )
