"""Plots in terminal cells: gaps stay blank, zeros show as a floor, axes carry units."""

from __future__ import annotations

from meshtop import units
from meshtop.plot import (
    BAND,
    axis_sparkline,
    band,
    bars,
    columns,
    nice_top,
    plot,
    ruler,
    sparkline,
)


def test_a_gap_is_blank_and_a_zero_is_a_floor() -> None:
    assert sparkline((1.0, None, 0.0, 0.5), 4) == "█ ▁▄"


def test_columns_average_points_and_leave_out_gaps() -> None:
    assert columns((1.0, 3.0, None, None, 2.0, None), 3) == [2.0, None, 2.0]
    assert columns((1.0, 2.0), 4) == [1.0, 1.0, 2.0, 2.0]  # few points: each spans columns
    assert columns((), 3) == [None, None, None]


def test_bars_fill_rows_in_eighths() -> None:
    assert bars([1.0, 0.5, None], 2, 1.0) == ["█  ", "██ "]
    assert bars([0.75], 1, 1.0) == ["▆"]


def test_axis_tops_are_round() -> None:
    assert [nice_top(v) for v in (0.0, 0.07, 19.1, 200.0, 201.0)] == [1.0, 0.1, 20.0, 200.0, 250.0]


def test_plot_has_units_on_the_axis_and_a_time_ruler() -> None:
    lines = plot((1.0, 2.0, 4.0), (0.0, 450.0, 900.0), 40, 3, units.rps)
    assert lines[0].startswith(" 5.0rps┤") and lines[2].startswith("   0rps┤")
    assert "-15m" in lines[-1] and lines[-1].rstrip().endswith("now")
    assert len(lines) == 4  # three rows and the ruler


def test_small_values_do_not_fill_a_plot_alone() -> None:
    lines = plot((0.0, 0.0), (0.0, 60.0), 20, 2, units.percent, least_top=0.01)
    assert lines[0].startswith("  1.00%")


def test_latency_band_shades_each_quantile_and_keeps_the_tail() -> None:
    rows = band([10.0, None], [30.0, None], [35.0, None], 4, 40.0)
    assert [r[0] for r in rows] == [BAND[2], BAND[1], BAND[1], BAND[0]]
    assert [r[1] for r in rows] == [" "] * 4  # no data: a gap


def test_ruler_ticks_at_round_times_before_now() -> None:
    line = ruler([0.0, 3600.0], 60)
    assert line.rstrip().endswith("now")
    assert "-30m" in line and "-1h" in line


def test_ruler_of_a_long_window_has_round_ticks() -> None:
    line = ruler([0.0, 30 * 86400.0], 90)
    assert line.startswith("-30d") and "-14d" in line and line.rstrip().endswith("now")
    assert "ms" not in line


def test_a_sparkline_under_a_plot_takes_its_columns_and_times() -> None:
    """One column of the sparkline for each of the plot's, over the same time: a gap in
    the same place, the label where the y axis is."""
    series = (1.0, 2.0, None, 4.0, 0.0, 3.0, None, 1.0, 2.0)
    times = tuple(60.0 * i for i in range(len(series)))
    lines = plot(series, times, 30, 2, units.rps)
    under = axis_sparkline("no response", series, 30, 4.0)
    assert len(under) == len(lines[0]) == 30
    assert under.startswith("no resp│") and lines[0][7] == lines[1][7] == "┤"
    for floor, spark in zip(lines[1][8:], under[8:], strict=True):
        assert (floor == " ") == (spark == " ")  # a gap in the plot is one in the sparkline
    assert under[8:] == sparkline(series, 22, 4.0)
