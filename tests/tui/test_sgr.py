"""A frame written as its styles' changes (`meshtop.tui.sgr`) leaves a terminal emulator
with the same screen, cell for cell (character, colours, flags), in fewer bytes."""

from __future__ import annotations

import random

import pyte  # type: ignore[import-untyped]
import pytest
from rich.color import ColorSystem
from rich.style import Style

from meshtop.tui.sgr import between, blank_tails, compact

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


# -- a line's blank end as an erase (`blank_tails`) -----------------------------------

BLANK_FLAGS = ["underline", "reverse", "strike", "overline"]  # what shows on a blank


def _line_frame(rng: random.Random) -> tuple[str, int]:
    """Rows as Textual writes a frame, then the cursor's move: each row begun by a move
    (at the left edge, or further in as a partial update's piece is), its runs, and
    most rows a blank end in a style of its own, reaching the edge or stopping short;
    a newline between rows or not. Also how many of the blank ends may be erased."""
    rows, erasable = [], 0
    for y in range(ROWS):
        x0 = rng.choice([0, 0, 0, rng.randrange(COLS // 2)])
        runs, x = [], x0
        stop = rng.randrange(x0, COLS)
        while x < stop:
            n = min(rng.randint(1, 9), stop - x)
            text = "".join(rng.choice("ab│█ 🔒") for _ in range(n))
            text = text[: max(1, n - 1)] if "🔒" in text else text
            runs.append(_style(rng).render(text, color_system=ColorSystem.TRUECOLOR))
            x += sum(2 if ch == "🔒" else 1 for ch in text)
        blanks = COLS - x - rng.choice([0, 0, 0, 1, 3])
        if blanks > 0:
            style = _style(rng)
            runs.append(style.render(" " * blanks, color_system=ColorSystem.TRUECOLOR))
            shows = any(getattr(style, flag) for flag in BLANK_FLAGS)
            erasable += blanks >= 4 and x + blanks == COLS and not shows
        rows.append(f"\x1b[{y + 1};{x0 + 1}H" + "".join(runs) + rng.choice(["", "\n"]))
    cursor = f"\x1b[{rng.randint(1, ROWS)};{rng.randint(1, COLS)}H"
    return "".join(rows).rstrip("\n") + cursor, erasable


def _screen_and_cursor(data: str) -> tuple[list[list[pyte.screens.Char]], tuple[int, int]]:
    screen = pyte.Screen(COLS, ROWS)
    screen.set_mode(pyte.modes.LNM)  # a newline as the terminal's line discipline writes it
    pyte.Stream(screen).feed(data)
    return [[screen.buffer[y][x] for x in range(COLS)] for y in range(ROWS)], (
        screen.cursor.x,
        screen.cursor.y,
    )


@pytest.mark.parametrize("seed", range(60))
def test_blank_ends_erased_leave_the_same_screen(seed: int) -> None:
    """Each cell (character, colours, flags) and the cursor's place as the blanks left
    them: a blank end erased only where it reaches the edge before a cursor move."""
    frame, _ = _line_frame(random.Random(seed))
    frame = compact(frame)
    written = blank_tails(frame, COLS)
    assert _screen_and_cursor(written) == _screen_and_cursor(frame)
    assert len(written) <= len(frame)


def test_blank_ends_are_erased_wherever_they_may_be() -> None:
    """Over many frames, every blank end that reaches the edge in a style that shows
    nothing on a blank is erased, but a row's first after the frame's start (what is in
    effect there is not known)."""
    erased = expected = 0
    for seed in range(200):
        frame, erasable = _line_frame(random.Random(seed))
        erased += blank_tails(compact(frame), COLS).count("\x1b[K")
        expected += erasable
    assert 0.8 * expected <= erased <= expected, (erased, expected)


def test_blank_ends_kept_where_an_erase_would_draw_otherwise() -> None:
    bg = "\x1b[48;2;22;26;31m"
    line = f"\x1b[0m\x1b[1;1H{bg}abc{' ' * 57}\x1b[0m\n\x1b[2;1H"
    assert blank_tails(line, COLS) == f"\x1b[0m\x1b[1;1H{bg}abc\x1b[K\x1b[0m\n\x1b[2;1H"
    # short of the edge; with no move after it; after a flag that shows on a blank
    # (xterm erases in the background alone); where the line's start is not known
    for kept in (
        line.replace(" " * 57, " " * 56),
        line[: line.index("\n")],
        line.replace(bg, f"{bg}\x1b[7m"),
        line.replace(bg, f"{bg}\x1b[4:3m"),
        line.replace("\x1b[0m\x1b[1;1H", "\x1b[1;1H"),
        line.replace("abc", "a\tc"),
    ):
        assert blank_tails(kept, COLS) == kept, repr(kept)
    # a flag turned off again before the blanks: erased
    off = line.replace("abc", "\x1b[7mabc\x1b[27m")
    assert "\x1b[K" in blank_tails(off, COLS)


def test_only_a_terminal_that_erases_in_the_background_is_sent_erases() -> None:
    """terminfo's `bce`, read once in a process (curses reads one entry a process)."""
    import subprocess
    import sys

    def erases(term: str) -> str:
        code = f"from meshtop.tui.driver import erases_in_background as e; print(e({term!r}))"
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=True).stdout.strip()  # fmt: skip

    assert erases("xterm-256color") == "True"
    assert erases("screen-256color") == "False"  # GNU screen's and tmux's entries say not
    assert erases("no-such-terminal") == "False"
    assert erases("") == "False"
