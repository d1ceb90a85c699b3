"""A frame written as its styles' changes (`meshtop.tui.sgr`) leaves a terminal emulator
with the same screen, cell for cell (character, colours, flags), in fewer bytes."""

from __future__ import annotations

import random

import pyte  # type: ignore[import-untyped]
import pytest
from rich.color import ColorSystem
from rich.style import Style

from meshtop.tui.sgr import between, compact

COLS, ROWS = 60, 8
COLOURS = [None, "red", "bright_green", "color(200)", "#1e1e1e", "#d8dee9", "default"]
FLAGS = ["bold", "dim", "italic", "underline", "reverse", "strike", "blink", "underline2"]


def _style(rng: random.Random) -> Style:
    flags = {flag: True for flag in rng.sample(FLAGS, rng.choice([0, 0, 0, 1, 1, 2]))}
    return Style(color=rng.choice(COLOURS), bgcolor=rng.choice(COLOURS), **flags)


def _frame(rng: random.Random) -> str:
    """Rows of runs of text, each in a style of its own, as Textual writes a frame:
    every run as Rich renders it (its style, then a reset), a row placed by a cursor
    move."""
    rows = []
    for y in range(ROWS):
        runs, x = [], 0
        while x < COLS:
            n = min(rng.randint(1, 9), COLS - x)
            text = "".join(rng.choice("ab │█ ") for _ in range(n))
            runs.append(_style(rng).render(text, color_system=ColorSystem.TRUECOLOR))
            x += n
        rows.append(f"\x1b[{y + 1};1H" + "".join(runs))
    return "".join(rows)


def _screen(data: str) -> list[list[pyte.screens.Char]]:
    screen = pyte.Screen(COLS, ROWS)
    pyte.Stream(screen).feed(data)
    return [[screen.buffer[y][x] for x in range(COLS)] for y in range(ROWS)]


@pytest.mark.parametrize("seed", range(40))
def test_the_screen_is_the_same_and_never_longer(seed: int) -> None:
    """Every run in a style of its own (flags and both colours): the worst case."""
    frame = _frame(random.Random(seed))
    written = compact(frame)
    assert _screen(written) == _screen(frame)
    assert len(written) <= len(frame)


def test_a_table_on_one_background_is_written_in_fewer_bytes() -> None:
    """Rows of cells on one background, some words in a colour of their own or bold, as
    the edge table draws them."""
    rng = random.Random(7)
    bg, words = "#16191f", ["#d8dee9", "#8fcb6b", "#f0616d", "#777c84"]
    rows = []
    for y in range(ROWS):
        runs = [
            Style(color=rng.choice(words), bgcolor=bg, bold=rng.random() < 0.2).render(
                f"{rng.randint(0, 999):>5} ", color_system=ColorSystem.TRUECOLOR
            )
            for _ in range(COLS // 6)
        ]
        rows.append(f"\x1b[{y + 1};1H" + "".join(runs))
    frame = "".join(rows)
    written = compact(frame)
    assert _screen(written) == _screen(frame)
    assert len(written) < 0.7 * len(frame), (len(written), len(frame))


def test_a_change_of_colour_alone_is_written_alone() -> None:
    bg = "48;2;22;26;31"
    assert between(bg, f"38;2;216;222;233;{bg}") == "\x1b[38;2;216;222;233m"
    assert between(f"38;2;216;222;233;{bg}", bg) == "\x1b[39m"  # the default again
    assert between(bg, bg) == ""  # the same style: nothing
    # after a reset, what is in effect is known (before it, not)
    frame = f"\x1b[0m\x1b[{bg}ma\x1b[0m\x1b[{bg}mb\x1b[0m"
    assert compact(frame) == f"\x1b[0m\x1b[{bg}mab\x1b[0m"


def test_bold_off_keeps_faint() -> None:
    """22 turns off bold and faint both: faint is turned on again."""
    assert between("1;2", "2") == "\x1b[22;2m"


def test_styles_it_does_not_read_are_written_as_they_came() -> None:
    for unread in ("4:3", "58;2;1;2;3", "38;2;1", "73"):
        frame = f"\x1b[1mx\x1b[0m\x1b[{unread}my\x1b[0m\x1b[1mz\x1b[0m"
        assert compact(frame) == frame
    # a style set on top of another, not after a reset: what is in effect is not known
    stacked = "\x1b[0m\x1b[1mx\x1b[3my\x1b[0m\x1b[1mz"
    assert compact(stacked) == stacked
