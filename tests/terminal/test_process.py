"""The console as a process (issue 14): `NO_COLOR` gives a monochrome console that still
draws the graph and quits cleanly; an exception the console does not handle ends in one
line on stderr and exit 70, never Textual's traceback and never exit 0; and a terminal
that goes away ends meshtop within seconds even when SIGHUP is ignored."""

from __future__ import annotations

import re
import shlex
import sys
import textwrap
from pathlib import Path

import pytest

from .term import MESHTOP, Terminal

ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


# -- a line's blank end ----------------------------------------------------------------


def _backgrounds(term: str) -> tuple[list[list[str]], bytes]:
    """Every cell's background on a node's detail (its tables on the screen's
    background, the title's and the key line's own), and the bytes written."""
    with Terminal(["demo"], cols=160, rows=48, env={"TERM": term}) as t:
        t.ready()
        t.press("enter")
        t.wait_for("esc back", "Calls now", "at the end", "Over the last")  # its history
        return [[t.cell(x, y).bg for x in range(t.cols)] for y in range(t.rows)], bytes(t.raw)


def test_blanks_are_erased_only_where_the_terminal_erases_in_its_background() -> None:
    """On an xterm (terminfo's `bce`) runs of blanks are sent as erases, and the screen
    has every cell's background as on a terminal sent the blanks (GNU screen's entry,
    which is sent them); and far fewer blanks written."""
    erased, erases = _backgrounds("xterm-256color")
    blanked, blanks = _backgrounds("screen-256color")
    erase = re.compile(rb"\x1b\[\d+X")
    assert erase.search(erases) and not erase.search(blanks)
    # how many frames each console wrote depends on the machine's load: compare the
    # share of what each wrote that is blanks (about 4% and 48% at 160x48)
    shares = erases.count(b" ") / len(erases), blanks.count(b" ") / len(blanks)
    assert shares[0] < shares[1] / 3, shares
    # but the scroll bar's columns: its thumb follows the body's height, which grows as
    # the detail's history comes in, read at another moment in each console
    differ = [(x, y) for y, row in enumerate(erased) for x, bg in enumerate(row[:-3])
              if bg != blanked[y][x]]  # fmt: skip
    assert not differ, f"backgrounds that differ at {differ[:8]}"


# -- NO_COLOR ---------------------------------------------------------------------------


def _grey(colour: str) -> bool:
    """pyte's colour of a cell: `default` (the terminal's own), a named colour, or hex."""
    if colour == "default":
        return True
    if len(colour) != 6:
        return False  # a named ANSI colour: red, green, …
    r, g, b = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
    return r == g == b


def _side_of(t: Terminal, name: str) -> str:
    """The first thing drawn left of `name` on its row: its box's side."""
    y = t.row_of(name)
    assert y is not None, t.text()
    x = t.column_in(y, name) - 1  # a cell: `🔒▶┃reviews v3┃` at the compact zoom
    while x > 0 and t.cell(x, y).data == " ":
        x -= 1
    return str(t.cell(x, y).data)


def test_no_color_draws_the_graph_in_grey_and_quits_cleanly() -> None:
    with Terminal(["demo"], cols=160, rows=48, env={"NO_COLOR": "1"}) as t:
        t.ready()
        t.wait_for("productpage", "reviews v3")
        # health still reads from the borders, at any zoom level: the side before a
        # node's name is plain for a healthy node, heavy or dashed for reviews v3
        assert _side_of(t, "productpage") == "│", t.text()
        assert _side_of(t, "reviews v3") in ("┃", "╎"), t.text()
        # and no colour carries anything: every cell on screen is grey or the default
        hues = {
            (c.fg, c.bg)
            for y in range(t.rows)
            for x in range(t.cols)
            if not (_grey((c := t.cell(x, y)).fg) and _grey(c.bg))
        }
        assert not hues, f"colours used under NO_COLOR: {sorted(hues)[:5]}"
        t.press("q")
        assert t.exit_code() == 0
        assert "Traceback" not in t.output()


def test_no_color_draws_a_waterfall() -> None:
    with Terminal(["demo"], cols=120, rows=40, env={"NO_COLOR": "1"}) as t:
        t.ready()
        t.press("2")
        t.wait_for("SOURCE", "DESTINATION")
        t.press("enter")  # the worst edge, productpage → reviews v3
        t.wait_for("productpage v1 → reviews v3", "Requests")
        t.press("t")
        t.wait_for("slowest first")
        t.press("enter")
        t.wait_for_re(r"\d+ spans, \d+ services")
        t.wait_for("tag ")  # the first span's detail: the waterfall is drawn


# -- a bug in the console: one line, exit 70 ----------------------------------------------

# Each runs `meshtop demo` through meshtop's own entry point, with one of the console's
# methods replaced by one that raises, as a bug in it would.
BUGS = {
    "a message handler": (
        "from meshtop.tui.app import MeshtopApp as Where\nname = 'on_snapshot_ready'\n"
        "error = ZeroDivisionError"
    ),
    "drawing the graph": (
        "from meshtop.tui.widgets.graph import GraphCanvas as Where\nname = 'render_line'\n"
        "error = ZeroDivisionError"
    ),
    # one of meshtop's own errors that the console let through: a bug all the same, not
    # the user's (it once ended as exit 2, a usage error)
    "our own error let through": (
        "from meshtop.tui.app import MeshtopApp as Where\nname = 'on_snapshot_ready'\n"
        "from meshtop.errors import UsageError as error"
    ),
}


@pytest.mark.parametrize("where", sorted(BUGS))
def test_a_bug_in_the_console_is_one_line_and_exit_70(where: str, tmp_path: Path) -> None:
    script = BUGS[where] + textwrap.dedent(
        """
        import sys
        from meshtop.cli import main

        def broken(*args, **kwargs):
            raise error("the bug under test")

        setattr(Where, name, broken)
        sys.argv = ["meshtop", "demo"]
        main()
        """
    )
    state = tmp_path / "state"
    wide = 300  # the line is long (it names the report's path): one row of the screen
    with Terminal(
        [], cols=wide, command=[sys.executable, "-c", script], env={"XDG_STATE_HOME": str(state)}
    ) as t:
        t.wait_for(": the bug under test")
        assert t.exit_code() == 70
        output = t.output()
    # what is written once the console has left the alternate screen: one line
    after = ESCAPES.sub("", output.rsplit("\x1b[?1049l", 1)[-1])
    said = [line for line in after.splitlines() if line.strip()]
    assert len(said) == 1, said
    line = said[0]
    assert line.startswith("meshtop: unexpected error, a bug in meshtop: "), line
    assert "Error: the bug under test" in line and "please report it" in line
    assert "Traceback" not in output
    # the traceback is kept for the report, in the state directory, in the file named
    reports = list(state.rglob("crash-*.txt"))
    assert len(reports) == 1, reports
    assert f"the traceback is in {reports[0]};" in line
    kept = reports[0].read_text()
    assert "Traceback" in kept and "Error: the bug under test" in kept


# -- a lost terminal ---------------------------------------------------------------------


def test_a_lost_terminal_ends_meshtop_even_with_sighup_ignored() -> None:
    ignoring = f"trap '' HUP; exec {shlex.quote(MESHTOP)} demo"
    with Terminal([], command=["bash", "-c", ignoring]) as t:
        t.ready()
        t.hang_up()
        # within 5 s, and not 0: a script that started it sees a dropped session
        assert t.exit_code(limit=5.0) == 129


def test_no_color_every_screen_draws() -> None:
    """Help, the edge table, the routes tab and the shift dialog, monochrome: each is
    drawn and the console is still there after (a widget that drew an unstyled segment
    took the console down under NO_COLOR)."""
    with Terminal(["demo"], cols=120, rows=40, env={"NO_COLOR": "1"}) as t:
        t.ready()
        t.press("?")
        t.wait_for("this help")
        t.press("esc")
        t.wait_gone("this help")
        t.press("2")
        t.wait_for("SOURCE", "DESTINATION")
        t.press("3")
        t.wait_for("configured", "actual")
        t.press("1")
        t.press("n")  # the failing node
        t.wait_for_re(r"1/\d+:? reviews v3 failing")
        t.press("w")
        t.wait_for("Shift VirtualService bookinfo/reviews")
        t.press("esc")
        t.wait_gone("Shift VirtualService")
        t.press("q")
        assert t.exit_code() == 0
        assert "Traceback" not in t.output()
