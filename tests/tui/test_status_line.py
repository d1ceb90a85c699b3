"""The status line's fitting: never wider than the terminal, never without what is kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from meshtop.model import MeshSnapshot, SourceHealth, SourceState
from meshtop.tui.widgets.status import fit_parts, part, status_text

PARTS = [
    part("SIMULATED", "SIM"),
    part("metrics fresh  control plane fresh", "fresh"),
    part("9 edges 70rps", "9 edges"),
    part("05:00:00"),
    part("filter !reviews ns=bookinfo", "/!reviews ns=bookinfo"),
    part("▸ istio-ingressgateway→productpage v1 20rps 0.00% p99 61ms", "▸ istio-ing…→prod… 20rps"),
    part("zoom compact (fit)", kept=False),
    part("graph version", kept=False),
    part("sort health", kept=False),
]


@given(st.integers(min_value=20, max_value=300))
def test_never_wider_than_its_width(width: int) -> None:
    assert fit_parts(PARTS, width).cell_len <= width


def test_kept_parts_abbreviate_but_stay_and_optional_ones_come_back_when_there_is_room() -> None:
    narrow = fit_parts(PARTS, 98).plain
    assert "/!reviews ns=bookinfo" in narrow and "05:00:00" in narrow and "▸ " in narrow
    assert "metrics fresh" not in narrow and "zoom" not in narrow
    assert "sort health" in narrow  # left out first, back once the short forms made room
    wide = fit_parts(PARTS, 220).plain
    assert "filter !reviews ns=bookinfo" in wide and "zoom compact (fit)" in wide
    assert "sort health" in wide and "p99 61ms" in wide


def test_too_narrow_cuts_at_the_end_with_an_ellipsis() -> None:
    text = fit_parts(PARTS, 40).plain
    assert text.startswith("SIM fresh 9 edges 05:00:00") and text.endswith("…")


WHEN = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)


def _line(sources: dict[str, SourceHealth], width: int = 10_000) -> str:
    snapshot = MeshSnapshot(WHEN, 60.0, {}, (), (), sources)
    line = status_text(snapshot, simulated=False, paused=False, sort_name="health", width=width)
    return line.plain


def test_latency_older_than_the_rates_is_said_long_and_short() -> None:
    """A large mesh's latency figures, from an earlier query than its rates (behind the
    refreshes), are said with their age, as a stale source's are; in the short form too."""
    sources = {
        "metrics": SourceHealth("prometheus", SourceState.FRESH, WHEN, latency_age_s=34.6),
        "control_plane": SourceHealth("kubernetes", SourceState.FRESH, WHEN),
    }
    assert _line(sources).startswith("metrics fresh, latency 35s old  control plane fresh  0 ")
    assert _line(sources, 60).startswith("fresh, latency 35s old  0 edges")
    # beside another source's state, short, the metrics are named
    sources["control_plane"] = replace(sources["control_plane"], state=SourceState.FAILED)
    assert _line(sources, 60).startswith("control plane failed, metrics latency 35s old 0 ")
    sources["metrics"] = replace(sources["metrics"], latency_age_s=None)
    assert "latency" not in _line(sources) and "latency" not in _line(sources, 60)


def test_a_clusters_late_latency_is_named_by_the_cluster() -> None:
    stale = SourceHealth("k", SourceState.STALE, WHEN, fresh_at=WHEN - timedelta(seconds=5))
    sources = {
        "metrics:east": SourceHealth("p-east", SourceState.FRESH, WHEN, latency_age_s=12.2),
        "control_plane:east": stale,
        "metrics:west": SourceHealth("p-west", SourceState.FRESH, WHEN),
        "control_plane:west": SourceHealth("k", SourceState.FRESH, WHEN),
    }
    assert _line(sources).startswith("east stale 5s, latency 12s old  west fresh  0 ")
    assert _line(sources, 60).startswith("east stale 5s, east latency 12s old  0 edges")
    # several clusters' late: one word short, their oldest, the edges and time still whole
    sources["metrics:west"] = replace(sources["metrics:west"], latency_age_s=31.0)
    assert _line(sources).startswith(
        "east stale 5s, latency 12s old  west fresh, latency 31s old  0 "
    )
    assert _line(sources, 70).startswith("east stale 5s, latency up to 31s old  0 edges  14:00:00")
