"""A frame written as its styles' changes (`meshtop.tui.sgr`) leaves a terminal emulator
with the same screen, cell for cell (character, colours, flags), in fewer bytes."""

from __future__ import annotations

import random
import re

import pyte  # type: ignore[import-untyped]
import pytest
from rich.color import ColorSystem
from rich.style import Style

from meshtop.tui.sgr import between, compact, erase_blanks

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


# -- runs of blanks as erases (`erase_blanks`) ----------------------------------------


def _line_frame(rng: random.Random) -> str:
    """Rows as Textual writes a frame, then the cursor's move: each row begun by a move
    (at the left edge, or further in as a partial update's piece is), runs of text and
    of blanks (a table's gap), each in a style of its own, and most rows a blank end
    reaching the edge or stopping short; a newline between rows or not."""
    rows = []
    for y in range(ROWS):
        x0 = rng.choice([0, 0, 0, rng.randrange(COLS // 2)])
        runs, x = [], x0
        stop = rng.randrange(x0, COLS)
        while x < stop:
            n = min(rng.randint(1, 16), stop - x)
            if rng.random() < 0.3:
                text = " " * n
            else:
                text = "".join(rng.choice("ab│█ 🔒") for _ in range(n))
                text = text[: max(1, n - 1)] if "🔒" in text else text
            runs.append(_style(rng).render(text, color_system=ColorSystem.TRUECOLOR))
            x += sum(2 if ch == "🔒" else 1 for ch in text)
        blanks = COLS - x - rng.choice([0, 0, 0, 1, 3])
        if blanks > 0:
            runs.append(_style(rng).render(" " * blanks, color_system=ColorSystem.TRUECOLOR))
        rows.append(f"\x1b[{y + 1};{x0 + 1}H" + "".join(runs) + rng.choice(["", "\n"]))
    return "".join(rows).rstrip("\n") + f"\x1b[{rng.randint(1, ROWS)};{rng.randint(1, COLS)}H"


def _screen_and_cursor(data: str) -> tuple[list[list[pyte.screens.Char]], tuple[int, int]]:
    screen = pyte.Screen(COLS, ROWS)
    screen.set_mode(pyte.modes.LNM)  # a newline as the terminal's line discipline writes it
    pyte.Stream(screen).feed(data)
    cells = [[screen.buffer[y][x] for x in range(COLS)] for y in range(ROWS)]
    return cells, (screen.cursor.x, screen.cursor.y)


@pytest.mark.parametrize("seed", range(60))
def test_blanks_erased_leave_the_same_screen(seed: int) -> None:
    """Each cell (character, colours, flags) and the cursor's place as the blanks left
    them."""
    frame = compact(_line_frame(random.Random(seed)))
    written = erase_blanks(frame)
    assert _screen_and_cursor(written) == _screen_and_cursor(frame)
    assert len(written) <= len(frame)


def test_blanks_erased_make_a_frame_shorter() -> None:
    frames = [compact(_line_frame(random.Random(seed))) for seed in range(200)]
    written = [erase_blanks(frame) for frame in frames]
    assert sum(map(len, written)) < 0.95 * sum(map(len, frames))  # a style a run: the worst
    assert sum(len(re.findall(r"\x1b\[\d+C", w)) for w in written) > 100  # a line goes on


def test_blanks_kept_where_an_erase_would_draw_otherwise_or_save_nothing() -> None:
    bg = "\x1b[48;2;22;26;31m"
    line = f"\x1b[0m\x1b[1;1H{bg}abc{' ' * 57}\x1b[0m\n\x1b[2;1H"
    assert erase_blanks(line) == f"\x1b[0m\x1b[1;1H{bg}abc\x1b[57X\x1b[0m\n\x1b[2;1H"
    gap = line.replace(" " * 57, " " * 12 + "d" + " " * 44)
    assert erase_blanks(gap) == line.replace(" " * 57, "\x1b[12X\x1b[12Cd\x1b[44X")
    for kept in (
        line.replace(" " * 57, " " * 5),  # an erase no shorter than the blanks
        line.replace(" " * 57, " " * 11 + "d" + " " * 3),
        line[: line.index("\n")],  # the end of what is written: no move after it
        line.replace(bg, f"{bg}\x1b[7m"),  # a flag shown on a blank: a terminal erases
        line.replace(bg, f"{bg}\x1b[4:3m"),  # in the background alone
        line.replace("\x1b[0m\x1b[1;1H", "\x1b[1;1H"),  # what is in effect: not known
        line.replace("abc", "a\tc"),
    ):
        assert erase_blanks(kept) == kept, repr(kept)
    # a flag turned off again before the blanks: erased
    off = line.replace("abc", "\x1b[7mabc\x1b[27m")
    assert "\x1b[57X" in erase_blanks(off)


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


def test_the_writer_thread_writes_frames_in_fewer_bytes_and_a_failure_as_they_came(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The driver's file, written by Textual's writer thread off the screen's thread:
    the styles as their changes, blanks as erases where the terminal erases in its
    background; should the compaction fail, the frame as it came, the thread alive."""
    import io

    from meshtop.tui import driver

    frame = ("\x1b[0m\x1b[1;1H\x1b[0m\x1b[1;38;2;1;2;3mab\x1b[0m\x1b[38;2;1;2;3mcd"
             + " " * 20 + "\x1b[0m\x1b[2;1H")  # fmt: skip
    for erases in (False, True):
        out = io.StringIO()
        file = driver.FewerBytes(out, erases)
        file.write(frame)
        expected = erase_blanks(compact(frame)) if erases else compact(frame)
        assert out.getvalue() == expected
        assert len(expected) < len(frame)
    assert "\x1b[20X" in erase_blanks(compact(frame))

    def broken(text: str) -> str:
        raise ValueError("a bug")

    monkeypatch.setattr(driver, "compact", broken)
    out = io.StringIO()
    driver.FewerBytes(out, True).write(frame)
    assert out.getvalue() == frame
