"""`meshtop edge --format json`: an edge's series and its window summed up, as one JSON
document (README, "meshtop edge"). Gaps in the data are `null`, never 0."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from meshtop.detail import Detail
from meshtop.export.json_report import (
    SCHEMA,
    figures,
    one_item_per_line,
    rates_by,
    rfc3339,
    rounded,
)
from meshtop.model import History, WindowSummary
from meshtop.units import duration


def _summary(s: WindowSummary) -> dict[str, Any]:
    return {
        **figures(s),
        "errors": rates_by(s.errors),
        "by_reporter": rates_by(s.by_reporter),
        "source_principals": list(s.source_principals),
        "destination_principals": list(s.destination_principals),
    }


def _points(h: History) -> list[dict[str, Any]]:
    out = []
    for i, t in enumerate(h.times):
        errors: Mapping[str, Any] = {k: rounded(s[i], 4) for k, s in h.errors.items()}
        out.append(
            {
                "time": rfc3339(datetime.fromtimestamp(t, UTC)),
                "rps": rounded(h.rps[i], 4),
                "error_rate": rounded(h.error_rate[i], 6),
                "p50_ms": rounded(h.p50_ms[i], 3),
                "p95_ms": rounded(h.p95_ms[i], 3),
                "p99_ms": rounded(h.p99_ms[i], 3),
                "errors": errors,
            }
        )
    return out


def render(detail: Detail, source: str, destination: str) -> str:
    h = detail.history
    total = sum(v.summary.rps for _, v in detail.canary) or 1.0
    doc = {
        "schema": SCHEMA,
        "source": source,
        "destination": destination,
        "window": duration(h.window_s),
        "window_seconds": h.window_s,
        "step_seconds": h.step_s,
        "summary": _summary(h.summary),
        "points": _points(h),
        "canary": [
            {"version": version, "share": rounded(v.summary.rps / total, 4), **_summary(v.summary)}
            for version, v in detail.canary
        ],
    }
    return one_item_per_line(doc)
