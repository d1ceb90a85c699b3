"""A detail's tables laid out as lines from their cells' widths (`panels.Laid`): what Rich's
Table draws, cell for cell and style for style, without Rich rendering each cell, which
took a node's detail at 20,000 services 0.1 s a time, twice as it opened (issue 17)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from rich.console import Console, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Span, Text

from meshtop.model import Route, RouteRule, WeightedDestination
from meshtop.panels import Laid, routes_view


def _calls() -> Table:
    """The shape of a node's calls (meshtop.tui.screens.detail_intro)."""
    t = Table(box=None, padding=(0, 1), header_style="bold")
    for column in ("", "peer", "rps", "errors", "p50"):
        t.add_column(column, justify="right" if column in ("rps", "errors", "p50") else "left")
    t.add_row("from", Text("réviews-v1 ◂ 名前", style="red"), "1.2rps", "0.1%", "3ms")
    t.add_row("to", Text("x"), "12.2rps", Text("10.1%", style="bold"), "300ms")
    return t


def _routes() -> Table:
    split = (WeightedDestination("reviews", "v1", 90), WeightedDestination("reviews", "v2", 10))
    rules = (RouteRule(split, ("uri regex ^/api/[a-z]+",), "api"), RouteRule(split[:1]))
    route = Route("VirtualService", "", "bookinfo", "reviews", ("reviews",), rules, "1")
    return routes_view([route], "v2")


def _cells(renderable: RenderableType, width: int) -> list[list[tuple[str, Style]]]:
    """Each character on each line with its style (no style and the null style alike)."""
    console = Console(width=200, color_system="truecolor")
    lines = console.render_lines(renderable, console.options.update_width(width), pad=False)
    return [[(ch, seg.style or Style.null()) for seg in line for ch in seg.text] for line in lines]


@pytest.mark.parametrize("make", [_calls, _routes])
@pytest.mark.parametrize("width", [200, 80, 56, 44, 40, 20])
def test_a_laid_table_draws_what_rich_draws(make: object, width: int) -> None:
    assert callable(make)
    assert _cells(Laid(make()), width) == _cells(make(), width)


@pytest.fixture
def rich_table_drawn(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many times Rich's Table drew itself."""
    drawn: list[int] = []
    draw = Table.__rich_console__

    def counted(self: Table, console: Console, options: object) -> object:
        drawn.append(self.row_count)
        return draw(self, console, options)  # type: ignore[arg-type]

    monkeypatch.setattr(Table, "__rich_console__", counted)
    yield drawn


def test_a_table_that_fits_is_laid_without_rich_drawing_it(rich_table_drawn: list[int]) -> None:
    text = "\n".join("".join(ch for ch, _ in line) for line in _cells(Laid(_calls()), 160))
    assert rich_table_drawn == []
    said = " from  réviews-v1 ◂ 名前   1.2rps    0.1%    3ms"  # 名前: four cells wide
    assert text.splitlines()[1].rstrip() == said


def test_a_table_too_wide_is_shrunk_and_wrapped_as_rich_does_it(
    rich_table_drawn: list[int],
) -> None:
    assert _cells(Laid(_calls()), 30) == _cells(_calls(), 30)
    assert rich_table_drawn == [2]  # the table itself, for the comparison
    wrapped = ["".join(ch for ch, _ in line).rstrip() for line in _cells(Laid(_calls()), 30)]
    assert len(wrapped) > 3  # its two rows take more lines than one each


_WORDS = [
    "a",
    "réviews-v1",
    "名前",
    "→",
    "accounts-34/accounts-rank-3-v2",
    "0.6rps",
    "inside,",
    "x" * 23,
]


def _random_table(rng: random.Random) -> Table:
    """A table of text cells: several words, wide characters, styles and spans, long
    words; columns that fold, crop, cut with an ellipsis or wrap not at all; now and
    then a shape Laid leaves to Rich (a cell let overflow uncut, one aligned to the
    middle or bottom of its row, highlighting)."""
    t = Table(
        box=None,
        padding=(0, rng.choice([0, 1, 2, 3]), 0, rng.choice([0, 1, 2])),
        highlight=rng.random() < 0.05,
        header_style=rng.choice(["bold", "", "italic red"]),
        pad_edge=rng.random() < 0.5,
        show_header=rng.random() < 0.8,
    )
    for _ in range(rng.randint(1, 6)):
        t.add_column(
            rng.choice(["", "peer", "a long heading"]),
            justify=rng.choice(["left", "right"]),
            overflow=rng.choice(["fold", "crop", "ellipsis", "fold", "crop", "ellipsis", "ignore"]),
            no_wrap=rng.random() < 0.15,
            vertical=rng.choice(["top"] * 10 + ["middle", "bottom"]),
        )
    for _ in range(rng.randint(0, 5)):
        row = []
        for _ in t.columns:
            words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4)))
            style = rng.choice(["", "red", "bold", "dim"])
            overflow = rng.choice([None, None, "fold", "ellipsis", None, None, "ignore"])
            no_wrap = rng.choice([None, None, True, False])
            text = Text(words, style=style, overflow=overflow, no_wrap=no_wrap)
            if rng.random() < 0.2:  # a span over part of it
                start = rng.randint(0, len(words) - 1)
                end = rng.randint(start + 1, len(words))
                text.spans.append(Span(start, end, "underline"))
            row.append(text if rng.random() < 0.7 else words)
        t.add_row(*row)
    return t


@pytest.mark.parametrize("seed", range(200))
def test_any_plain_table_at_any_width_is_drawn_as_rich_draws_it(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(5):
        state = rng.getstate()
        width = rng.randint(1, 120)
        laid = _cells(Laid(_random_table(rng)), width)
        rng.setstate(state)
        rng.randint(1, 120)
        assert laid == _cells(_random_table(rng), width), (seed, width)


@pytest.mark.parametrize(
    "cell",
    [
        "[bold]markup[/bold]",  # a string cell is Rich markup
        Text("trailing  "),  # Rich trims a right-justified cell
        Text("two\nlines"),
        Text("a\ttab"),
        Text("centred", justify="center"),  # its own justification
        Table(),  # any other renderable
    ],
)
def test_cells_rich_would_change_are_drawn_by_rich(
    cell: RenderableType, rich_table_drawn: list[int]
) -> None:
    t = Table(box=None, padding=(0, 1), header_style="bold")
    t.add_column("name")
    t.add_column("n", justify="right")
    t.add_row(cell, cell)
    assert _cells(Laid(t), 100) == _cells(t, 100)
    assert rich_table_drawn[0] == 1  # drawn by Rich, not laid


def test_a_grid_with_collapsed_padding_is_drawn_by_rich(rich_table_drawn: list[int]) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("requests", "1.2rps")
    assert _cells(Laid(grid), 100) == _cells(grid, 100)
    assert rich_table_drawn[0] == 1
