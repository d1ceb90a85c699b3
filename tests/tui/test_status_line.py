"""The status line's fitting: never wider than the terminal, never without what is kept."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meshtop.tui.widgets.status import fit_parts, part

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
