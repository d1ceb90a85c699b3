from __future__ import annotations

import pytest

from meshtop import units
from meshtop.errors import UsageError
from meshtop.units import duration, parse_duration


def test_units_write_durations_promql_reads() -> None:
    for seconds, text in (
        (60, "1m"),
        (90, "90s"),
        (1.5, "1500ms"),
        (86400, "1d"),
        (1234567, "1234567s"),
    ):
        assert duration(seconds) == text
        assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0rps"), (0.05, "0.05rps"), (12.34, "12.3rps"), (250, "250rps"), (1500, "1.5krps")],
)
def test_rates_read_like_linkerd_viz(value: float, text: str) -> None:
    assert units.rps(value) == text


@pytest.mark.parametrize("bad", ["", "5", "5x", "-1m", "0s", "1.5.2m"])
def test_bad_durations_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError, match="is not a positive duration"):
        parse_duration(bad)
